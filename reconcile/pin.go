package reconcile

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
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
	used   *pinSet
	// buf holds the random bytes of one PIN being drawn.
	buf [maxPINLength]byte
}

// maxPINLength is the longest PIN 3RPMS accepts (PINPolicy.Validate).
const maxPINLength = 10

// maxPINTries bounds the search for an unused PIN; hitting it means the
// policy's space is nearly exhausted, which Validate's minimums make
// practically impossible for one property.
const maxPINTries = 1000

// next returns a fresh PIN for a room, unique among used, and marks it used.
func (g *pinGenerator) next(roomName string) (Secret, error) {
	alphabet := g.policy.Alphabet
	if len(alphabet) < 2 || len(alphabet) > 256 || g.policy.Length < 1 || g.policy.Length > maxPINLength {
		return "", fmt.Errorf("generate pin: invalid policy: length %d, %d-character alphabet", g.policy.Length, len(alphabet))
	}
	for range maxPINTries {
		pin := g.buf[:g.policy.Length]
		if err := drawIndices(g.rand, pin, len(alphabet)); err != nil {
			return "", fmt.Errorf("generate pin: %w", err)
		}
		for i, x := range pin {
			pin[i] = alphabet[x]
		}
		if g.used.has(pin) || Guessable(string(pin), roomName) {
			continue
		}
		g.used.add(pin)
		return Secret(pin), nil
	}
	return "", errors.New("generate pin: no unused PIN found; lengthen the PIN policy")
}

// drawIndices fills dst with indices in [0, n), 2 ≤ n ≤ 256, each uniform
// and independent: one byte from r per try, masked to the bits n-1 needs
// and rejected when ≥ n, so no index is likelier than another. It reads
// the bytes crypto/rand.Int(r, n) would read for each index in turn, and
// never more than it uses.
func drawIndices(r io.Reader, dst []byte, n int) error {
	mask := byte(uint(1)<<bits.Len(uint(n-1)) - 1)
	filled := 0
	for filled < len(dst) {
		// Every byte still to read is needed: at most one index each.
		b := dst[filled:]
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		for _, x := range b {
			if x &= mask; int(x) < n {
				dst[filled] = x
				filled++
			}
		}
	}
	return nil
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

// pinSet is the set of PINs a new one must differ from. Only PINs the
// generator can draw matter: of the policy's length, every character from
// its alphabet. Such a PIN is a number in base len(alphabet), which the
// set keeps in a bitset when the policy's space is small (six digits: 125
// KB), else in a map of numbers; PINs of any other shape are not kept.
type pinSet struct {
	length int
	base   uint64
	// digit is, by character, its index in the alphabet plus one; 0 for
	// characters not in it.
	digit [256]uint16
	bits  []uint64            // by number, when the space is small
	nums  map[uint64]struct{} // else, while the space fits a uint64
	strs  map[string]struct{} // else
}

// maxPINSetBits is the largest space pinSet keeps as a bitset (2 MB), or
// more when the set is expected to hold enough PINs that a map would be
// larger anyway.
const maxPINSetBits = 1 << 24

// newPINSet returns an empty set for the policy's PINs, sized for about
// hint of them.
func newPINSet(policy PINPolicy, hint int) *pinSet {
	s := &pinSet{length: policy.Length, base: uint64(len(policy.Alphabet))}
	for i := len(policy.Alphabet) - 1; i >= 0; i-- {
		s.digit[policy.Alphabet[i]] = uint16(i + 1) // the first occurrence wins
	}
	space, fits := uint64(1), s.base > 0 && s.length > 0
	for range s.length {
		hi, lo := bits.Mul64(space, s.base)
		if hi != 0 {
			fits = false
			break
		}
		space = lo
	}
	switch {
	case fits && space <= max(maxPINSetBits, 128*uint64(hint)):
		s.bits = make([]uint64, (space+63)/64)
	case fits:
		s.nums = make(map[uint64]struct{}, hint)
	default:
		s.strs = make(map[string]struct{}, hint)
	}
	return s
}

// number returns pin as a number in base len(alphabet), and false when the
// generator cannot draw it.
func (s *pinSet) number(pin []byte) (uint64, bool) {
	if len(pin) != s.length {
		return 0, false
	}
	var n uint64
	for _, c := range pin {
		d := s.digit[c]
		if d == 0 {
			return 0, false
		}
		n = n*s.base + uint64(d-1)
	}
	return n, true
}

func (s *pinSet) add(pin []byte) {
	if s.strs != nil {
		if len(pin) == s.length {
			s.strs[string(pin)] = struct{}{}
		}
		return
	}
	n, ok := s.number(pin)
	switch {
	case !ok:
	case s.bits != nil:
		s.bits[n/64] |= 1 << (n % 64)
	default:
		s.nums[n] = struct{}{}
	}
}

func (s *pinSet) has(pin []byte) bool {
	if s.strs != nil {
		_, ok := s.strs[string(pin)]
		return ok
	}
	n, ok := s.number(pin)
	switch {
	case !ok:
		return false
	case s.bits != nil:
		return s.bits[n/64]&(1<<(n%64)) != 0
	default:
		_, ok := s.nums[n]
		return ok
	}
}
