package reconcile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"unicode"
)

// PINPolicy says what PINs the locks accept. 3RPMS allows up to 10
// alphanumeric characters, not mixed upper and lower case (the 3RPMS Room Access Key API).
type PINPolicy struct {
	Length   int
	Alphabet string
}

// DefaultPINPolicy is six digits, which every keypad lock accepts.
var DefaultPINPolicy = PINPolicy{Length: 6, Alphabet: "0123456789"}

// Validate checks the policy against 3RPMS's PIN rules, and that it leaves
// enough PINs to choose from.
func (p PINPolicy) Validate() error {
	if p.Length < 4 || p.Length > 10 {
		return fmt.Errorf("length %d: must be 4 to 10 (3RPMS allows up to 10 characters)", p.Length)
	}
	if len(p.Alphabet) < 2 {
		return errors.New("alphabet: needs at least 2 characters")
	}
	seen := map[rune]bool{}
	var upper, lower bool
	for _, r := range p.Alphabet {
		if r > unicode.MaxASCII || !(unicode.IsDigit(r) || unicode.IsLetter(r)) {
			return fmt.Errorf("alphabet: %q is not an ASCII letter or digit", r)
		}
		if seen[r] {
			return fmt.Errorf("alphabet: %q appears twice", r)
		}
		seen[r] = true
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
	}
	if upper && lower {
		return errors.New("alphabet: mixes upper and lower case, which 3RPMS rejects")
	}
	return nil
}

// ValidPIN reports whether pin meets 3RPMS's rule: 1 to 10 ASCII letters or
// digits, not both upper and lower case.
func ValidPIN(pin string) bool {
	if len(pin) == 0 || len(pin) > 10 {
		return false
	}
	var upper, lower bool
	for _, r := range pin {
		if r > unicode.MaxASCII || !(unicode.IsDigit(r) || unicode.IsLetter(r)) {
			return false
		}
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
	}
	return !(upper && lower)
}

// pinGenerator draws PINs uniformly from a policy's alphabet, rejecting
// guessable ones and ones already in use.
type pinGenerator struct {
	policy PINPolicy
	rand   io.Reader
	used   map[string]bool
}

// maxPINTries bounds the search for an unused PIN; hitting it means the
// policy's space is nearly exhausted, which Validate's minimums make
// practically impossible for one property.
const maxPINTries = 1000

// next returns a fresh PIN for a room, unique among used, and marks it used.
func (g *pinGenerator) next(roomName string) (Secret, error) {
	alphabet := []rune(g.policy.Alphabet)
	n := big.NewInt(int64(len(alphabet)))
	for range maxPINTries {
		var b strings.Builder
		for range g.policy.Length {
			i, err := rand.Int(g.rand, n)
			if err != nil {
				return "", fmt.Errorf("generate pin: %w", err)
			}
			b.WriteRune(alphabet[i.Int64()])
		}
		pin := b.String()
		if g.used[pin] || Guessable(pin, roomName) {
			continue
		}
		g.used[pin] = true
		return Secret(pin), nil
	}
	return "", errors.New("generate pin: no unused PIN found; lengthen the PIN policy")
}

// Guessable reports PINs a passer-by would try first: one repeated
// character, a straight run up or down (1234, 4321, abcd), or one that
// contains the room's number.
func Guessable(pin, roomName string) bool {
	if len(pin) < 2 {
		return true
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		d := int(pin[i]) - int(pin[i-1])
		same = same && d == 0
		up = up && d == 1
		down = down && d == -1
	}
	if same || up || down {
		return true
	}
	room := strings.TrimSpace(roomName)
	return len(room) >= 2 && strings.Contains(strings.ToLower(pin), strings.ToLower(room))
}
