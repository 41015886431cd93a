package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
)

// FlexString is an id or a code that an API may send as a JSON string or
// as an integer (none of the API documents gives their JSON type); an
// integer is kept as its digits, null is "". Anything else is an error
// that names no value from the answer.
type FlexString string

// errNotStringOrInteger is a FlexString of another JSON type.
const errNotStringOrInteger = DecodeError("an id is neither a string nor an integer")

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
		return nil
	}
	digits := bytes.TrimPrefix(b, []byte("-"))
	if len(digits) == 0 {
		return errNotStringOrInteger
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return errNotStringOrInteger
		}
	}
	*f = FlexString(b)
	return nil
}

// LooseWord is a JSON string, trimmed and lower-cased, for reading a
// status or state word tolerantly: a value of another type is "", and it
// never fails to decode.
type LooseWord string

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (w *LooseWord) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		s = ""
	}
	*w = LooseWord(strings.ToLower(strings.TrimSpace(s)))
	return nil
}

// LooseFlag is a JSON boolean that decodes from anything: true, a
// non-zero number, or the string "true", "1", "yes", "y" or "on" in any
// case is true; any other value is false.
type LooseFlag bool

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *LooseFlag) UnmarshalJSON(b []byte) error {
	var v any
	_ = json.Unmarshal(b, &v)
	switch v := v.(type) {
	case bool:
		*f = LooseFlag(v)
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "yes", "y", "on":
			*f = true
		default:
			*f = false
		}
	case float64:
		*f = v != 0 // 1 for true, as many APIs send a flag
	default:
		*f = false
	}
	return nil
}

// LooseStamp reports whether a JSON value holds a time: a string that is
// not blank, a word for none ("null", "none", "false", "0") or a zero date
// ("0000-00-00 00:00:00", "0001-01-01T00:00:00Z", as databases write an
// unset time), or a non-zero number. null, 0, false and any other value do
// not.
type LooseStamp bool

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (p *LooseStamp) UnmarshalJSON(b []byte) error {
	var v any
	_ = json.Unmarshal(b, &v)
	switch v := v.(type) {
	case string:
		s := strings.ToLower(strings.TrimSpace(v))
		switch {
		case s == "", s == "null", s == "none", s == "false", s == "0",
			strings.HasPrefix(s, "0000-00-00"), strings.HasPrefix(s, "0001-01-01"):
			*p = false
		default:
			*p = true
		}
	case float64:
		*p = v != 0
	default:
		*p = false
	}
	return nil
}
