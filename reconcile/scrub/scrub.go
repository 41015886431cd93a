// Package scrub cleans the errors adapters get from net/http before they
// reach logs, reports and the audit trail: a transport error can carry the
// URL (which may hold credentials) and quoted text a server sent back (a
// malformed status or header line that echoes a token).
package scrub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
)

var quoted = regexp.MustCompile(`"[^"]*"`)

// Transport returns err's message without the request URL and without
// quoted text. The cause stays reachable for errors.Is and errors.As
// (context.Canceled, *net.OpError).
func Transport(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Op + ": " + ue.Err.Error()
	}
	return &scrubbed{msg: quoted.ReplaceAllString(msg, `"…"`), err: err}
}

// scrubbed shows a cleaned message but keeps its cause.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// JSON describes a JSON decoding error by its position and kind, never by
// the offending value, which could be a secret the server put there.
func JSON(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return errors.New("invalid JSON")
}
