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
