package reconcile_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

func TestPINPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  reconcile.PINPolicy
		wantErr string // substring; empty means valid
	}{
		{"default", reconcile.DefaultPINPolicy, ""},
		{"shortest", reconcile.PINPolicy{Length: 4, Alphabet: "0123456789"}, ""},
		{"longest", reconcile.PINPolicy{Length: 10, Alphabet: "0123456789"}, ""},
		{"upper case and digits", reconcile.PINPolicy{Length: 6, Alphabet: "0123456789ABCDEF"}, ""},
		{"lower case and digits", reconcile.PINPolicy{Length: 6, Alphabet: "abcdef0123"}, ""},
		{"two characters", reconcile.PINPolicy{Length: 8, Alphabet: "12"}, ""},
		{"too short", reconcile.PINPolicy{Length: 3, Alphabet: "0123456789"}, "length 3"},
		{"zero length", reconcile.PINPolicy{Alphabet: "0123456789"}, "length 0"},
		{"too long", reconcile.PINPolicy{Length: 11, Alphabet: "0123456789"}, "length 11"},
		{"empty alphabet", reconcile.PINPolicy{Length: 6}, "at least 2"},
		{"one character", reconcile.PINPolicy{Length: 6, Alphabet: "7"}, "at least 2"},
		{"mixed case", reconcile.PINPolicy{Length: 6, Alphabet: "abcD12"}, "mixes upper and lower case"},
		{"duplicate character", reconcile.PINPolicy{Length: 6, Alphabet: "0123453"}, "appears twice"},
		{"punctuation", reconcile.PINPolicy{Length: 6, Alphabet: "0123-5"}, "not an ASCII letter or digit"},
		{"space", reconcile.PINPolicy{Length: 6, Alphabet: "012 34"}, "not an ASCII letter or digit"},
		{"non-ASCII letter", reconcile.PINPolicy{Length: 6, Alphabet: "abcdč"}, "not an ASCII letter or digit"},
		{"non-ASCII digit", reconcile.PINPolicy{Length: 6, Alphabet: "0123٤"}, "not an ASCII letter or digit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidPIN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pin  string
		want bool
	}{
		{"1234567890", true}, // the 3RPMS Room Access Key API's example
		{"ABCD12", true},
		{"abcd12", true},
		{"0", true},
		{"ZZZZZZZZZZ", true},
		{"abCD12", false},      // mixed case
		{"12345678901", false}, // 11 characters
		{"12-34", false},
		{"12 34", false},
		{"", false},
		{"1234č", false},
		{"١٢٣٤", false}, // Arabic-Indic digits
	}
	for _, tc := range tests {
		if got := reconcile.ValidPIN(tc.pin); got != tc.want {
			t.Errorf("ValidPIN(%q) = %v, want %v", tc.pin, got, tc.want)
		}
	}
}

func TestGuessable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pin, room string
		want      bool
	}{
		{"000000", "101", true},
		{"999999", "101", true},
		{"123456", "101", true},
		{"654321", "101", true},
		{"456789", "101", true},
		{"abcdef", "101", true},
		{"FEDCBA", "101", true},
		{"7", "101", true},          // too short to be anything else
		{"920471", "204", true},     // contains the room number
		{"204718", "204", true},     // starts with it
		{"581204", "204", true},     // ends with it
		{"920471", " 204 ", true},   // room name trimmed
		{"XA12B9", "a12", true},     // case-insensitive
		{"582917", "204", false},    // an ordinary PIN
		{"582917", "", false},       // no room name
		{"172839", "7", false},      // a one-character room name says nothing
		{"123457", "101", false},    // almost a run
		{"246802", "101", false},    // a run with step 2 is not rejected
		{"000001", "101", false},    // almost repeated
		{"9012", "101", false},      // a run does not wrap around
		{"2049", "Room 204", false}, // the whole room name must appear
	}
	for _, tc := range tests {
		if got := reconcile.Guessable(tc.pin, tc.room); got != tc.want {
			t.Errorf("Guessable(%q, %q) = %v, want %v", tc.pin, tc.room, got, tc.want)
		}
	}
}

// TestPINUniformity draws 20,000 digits from the planner's PIN generator
// with crypto/rand and checks their frequencies with a chi-square test.
// With 9 degrees of freedom, P(χ² > 70) ≈ 1.5e-11 for a uniform source,
// so the test does not flake; it catches gross bias, such as a digit never
// or twice as often drawn (χ² in the thousands).
func TestPINUniformity(t *testing.T) {
	t.Parallel()
	const (
		length = 10
		stays  = 2000 // 20,000 digits
		bound  = 70.0
	)
	prop := testProperty()
	prop.PIN = reconcile.PINPolicy{Length: length, Alphabet: "0123456789"}
	prop.DefaultMethod = reconcile.MethodPIN
	var in []reconcile.Stay
	for i := range stays {
		s := stay(fmt.Sprintf("s%04d", i), "x", "2026-06-11", "2026-06-12") // one-letter room: never in a PIN
		in = append(in, s)
	}
	plan, err := reconcile.Compute(reconcile.Input{Now: tonight, Property: prop, Stays: in, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	var counts [10]int
	var n int
	for _, a := range plan.Actions {
		if a.Op != reconcile.OpCreate {
			continue
		}
		for _, r := range a.Cred.PIN.Reveal() {
			counts[r-'0']++
			n++
		}
	}
	if n != stays*length {
		t.Fatalf("drew %d digits, want %d", n, stays*length)
	}
	expected := float64(n) / 10
	var chi2 float64
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
	}
	if chi2 > bound {
		t.Errorf("digit counts %v: χ² = %.1f > %.0f, not uniform", counts, chi2, bound)
	}
	t.Logf("digit counts %v, χ² = %.2f", counts, chi2)
}
