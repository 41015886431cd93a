package reconcile

import "log/slog"

// Secret holds a PIN, a token or a key-box compartment. Every way of printing
// it (fmt, slog, JSON) shows "[redacted]"; only Reveal gives the value, so a
// secret reaches a log or a report only where code asks for it by name.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value, for the wire and for --show-secrets.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer with a redacted value.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer with a redacted value.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer with a redacted value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps secrets out of JSON reports and plans.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + redacted + `"`), nil
}
