package webhook

import (
	"errors"
	"testing"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"room_stay.created","data":{"id":"rs_1"}}`)
	sig := Sign(body, "s3cret")
	for _, tc := range []struct {
		name, header, secret string
		body                 []byte
		ok                   bool
	}{
		{"good", sig, "s3cret", body, true},
		{"upper-case hex", "sha256=" + upper(sig[7:]), "s3cret", body, true},
		{"wrong secret", sig, "other", body, false},
		{"body changed", sig, "s3cret", []byte(`{"event":"room_stay.created","data":{"id":"rs_2"}}`), false},
		{"missing", "", "s3cret", body, false},
		{"no prefix", sig[7:], "s3cret", body, false},
		{"no secret configured", sig, "", body, false},
	} {
		err := Verify(tc.body, tc.header, tc.secret)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrSignature)) {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body  string
		ok    bool
		known bool
	}{
		{`{"event":"room_stay.updated","data":{"id":"rs_1"},"extra":1}`, true, true},
		{`{"event":"reservation.updated","data":{"id":"res_1"}}`, true, true},
		{`{"event":"invoice.paid","data":{"id":"x"}}`, true, false},
		{`{"event":"room_stay.deleted","data":{}}`, false, true},
		{`{"data":{"id":"rs_1"}}`, false, false},
		{`not json`, false, false},
	} {
		e, err := Parse([]byte(tc.body))
		if (err == nil) != tc.ok || (err == nil && e.Known() != tc.known) {
			t.Errorf("Parse(%s): %+v, %v; want ok %v known %v", tc.body, e, err, tc.ok, tc.known)
		}
	}
}
