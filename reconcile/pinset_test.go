package reconcile

import (
	"math/rand/v2"
	"testing"
)

// TestPINSet checks each of pinSet's representations against a set of
// strings: what the generator can draw is found once added, and PINs it
// cannot draw (another length, a character outside the alphabet) are
// never reported in use.
func TestPINSet(t *testing.T) {
	t.Parallel()
	policies := map[string]PINPolicy{
		"bitset":  {Length: 6, Alphabet: "0123456789"},
		"numbers": {Length: 10, Alphabet: "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"},
		"strings": {Length: 10, Alphabet: string(alphabet256())},
	}
	for name, policy := range policies {
		t.Run(name, func(t *testing.T) {
			set := newPINSet(policy, 100)
			if uses := map[string]bool{"bitset": set.bits != nil, "numbers": set.nums != nil, "strings": set.strs != nil}; !uses[name] {
				t.Fatalf("newPINSet(%+v) does not use %s", policy, name)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			draw := func() []byte {
				pin := make([]byte, policy.Length)
				for i := range pin {
					pin[i] = policy.Alphabet[rng.IntN(len(policy.Alphabet))]
				}
				return pin
			}
			want := map[string]bool{}
			for range 200 {
				pin := draw()
				if set.has(pin) != want[string(pin)] {
					t.Fatalf("has(%q) = %v before add", pin, !want[string(pin)])
				}
				set.add(pin)
				want[string(pin)] = true
				if !set.has(pin) {
					t.Fatalf("has(%q) = false after add", pin)
				}
			}
			for pin := range want {
				if !set.has([]byte(pin)) {
					t.Errorf("has(%q) = false", pin)
				}
			}
			for _, other := range []string{"12345", "12345678901", "12-456", "abcdef"} {
				if len(other) == policy.Length && name == "strings" {
					continue // every byte is in that alphabet
				}
				set.add([]byte(other))
				if set.has([]byte(other)) {
					t.Errorf("has(%q) = true for a PIN the policy cannot draw", other)
				}
			}
		})
	}
}

func alphabet256() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}
