package httpapi_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/keysync/keysync/internal/httpapi"
)

// TestFlexString: an id or code is taken as a JSON string or an integer
// (its digits as sent), null as ""; any other JSON type, a fraction or an
// exponent is a DecodeError that quotes nothing of the answer.
func TestFlexString(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		err      bool
	}{
		{in: `"acc_1"`, want: "acc_1"},
		{in: `""`, want: ""},
		{in: `null`, want: ""},
		{in: `42`, want: "42"},
		{in: `-7`, want: "-7"},
		{in: `123456789012345678901234567890`, want: "123456789012345678901234567890"},
		{in: `1.5`, err: true},
		{in: `1e3`, err: true},
		{in: `true`, err: true},
		{in: `["secret-9"]`, err: true},
		{in: `{"pin":"secret-9"}`, err: true},
	} {
		var v struct {
			ID httpapi.FlexString `json:"id"`
		}
		err := json.Unmarshal([]byte(`{"id":`+c.in+`}`), &v)
		var de httpapi.DecodeError
		switch {
		case c.err && (!errors.As(err, &de) || de.Error() != "an id is neither a string nor an integer"):
			t.Errorf("%s: err %v, want the DecodeError", c.in, err)
		case !c.err && (err != nil || string(v.ID) != c.want):
			t.Errorf("%s: %q, %v; want %q", c.in, v.ID, err, c.want)
		}
	}
}

// TestLooseWord: a status word is read trimmed and lower-cased; a value of
// any other JSON type reads as "" and never fails the answer.
func TestLooseWord(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{`" Disabled "`: "disabled", `"CANCELLED"`: "cancelled", `7`: "", `null`: "", `["disabled"]`: "", `{"s":1}`: ""} {
		var v struct {
			Status httpapi.LooseWord `json:"status"`
		}
		if err := json.Unmarshal([]byte(`{"status":`+in+`}`), &v); err != nil || string(v.Status) != want {
			t.Errorf("%s: %q, %v; want %q", in, v.Status, err, want)
		}
	}
}

// TestLooseFlagAndStamp: a flag reads true from true, a non-zero number or
// a word for yes; a time from a non-zero number or a string that is not a
// word for none or a database's zero date. Neither ever fails the answer.
func TestLooseFlagAndStamp(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		`true`: true, `1`: true, `"true"`: true, `"TRUE"`: true, `"1"`: true, `"yes"`: true, `"y"`: true, `" on "`: true,
		`false`: false, `0`: false, `"false"`: false, `"0"`: false, `"no"`: false, `""`: false, `null`: false, `{}`: false,
	} {
		var v struct {
			F httpapi.LooseFlag `json:"f"`
		}
		if err := json.Unmarshal([]byte(`{"f":`+in+`}`), &v); err != nil || bool(v.F) != want {
			t.Errorf("flag %s: %v, %v; want %v", in, v.F, err, want)
		}
	}
	for in, want := range map[string]bool{
		`"2026-01-29T10:00:00Z"`: true, `"2026-01-29 10:00:00"`: true, `1769680800`: true, `"1769680800"`: true,
		`""`: false, `"  "`: false, `null`: false, `"null"`: false, `"None"`: false, `"false"`: false, `"0"`: false, `0`: false,
		`"0000-00-00 00:00:00"`: false, `"0000-00-00"`: false, `"0001-01-01T00:00:00Z"`: false, `false`: false, `[]`: false,
	} {
		var v struct {
			T httpapi.LooseStamp `json:"t"`
		}
		if err := json.Unmarshal([]byte(`{"t":`+in+`}`), &v); err != nil || bool(v.T) != want {
			t.Errorf("stamp %s: %v, %v; want %v", in, v.T, err, want)
		}
	}
}
