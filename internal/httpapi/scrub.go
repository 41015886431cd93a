package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
)

// CleanMessage makes a server message, already rid of secrets, fit for an
// error: control characters become spaces and a message longer than
// maxRunes is cut there, with an ellipsis.
func CleanMessage(msg string, maxRunes int) string {
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	if r := []rune(msg); len(r) > maxRunes {
		msg = string(r[:maxRunes]) + "…"
	}
	return msg
}

var quoted = regexp.MustCompile(`"[^"]*"`)

// RedactFold replaces every copy of each secret in msg with "[redacted]",
// whatever its case: a server may echo a token or code upper- or
// lower-cased.
func RedactFold(msg string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			msg = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(secret)).ReplaceAllLiteralString(msg, "[redacted]")
		}
	}
	return msg
}

// scrubTransport returns err's message without the request URL (it is in
// the config, and a URL may carry credentials) and without quoted text (a
// malformed status or header line that echoes a token). The cause stays
// reachable for errors.Is and errors.As (context.Canceled, *net.OpError).
func scrubTransport(err error) error {
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

// DecodeError is an error an adapter's own JSON decoding (an UnmarshalJSON
// method) returns. Its message is written by the adapter and holds no
// value from the answer, so the client shows it; any other decoding error
// is described by position and kind only.
type DecodeError string

// Error implements error.
func (e DecodeError) Error() string { return string(e) }

// JSONError describes a JSON decoding error by its position and kind,
// never by the offending value, which could be a secret the server put
// there; a DecodeError keeps its message.
func JSONError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("expected %s, got JSON %s", te.Type, te.Value)
		}
		return fmt.Errorf("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	var de DecodeError
	if errors.As(err, &de) {
		return de
	}
	return errors.New("invalid JSON")
}

// describeJSON describes a JSON decoding error of an answer n bytes long
// for an *Error's reason (see JSONError).
func describeJSON(err error, n int) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && se.Offset >= int64(n):
		return fmt.Sprintf("truncated JSON response (malformed JSON: it ends at byte %d)", n)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON response (%v)", JSONError(err))
	}
	return "malformed JSON response: " + JSONError(err).Error()
}
