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
