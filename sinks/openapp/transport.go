package openapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/keysync/keysync/internal/httpapi"
)

// maxMessageRunes caps a server message quoted in an error.
const maxMessageRunes = 300

// tokenLike matches words that may be an invite token. Those mixing upper
// and lower case (as base64 tokens do), or lower case and digits (as hex
// tokens do), are cut from server messages, in case a server quotes the
// token of an invite: the one an update concerns, or another one a create
// collides with, which keysync cannot name. UUIDs, upper-case ids (ULIDs
// and the like) and the ids of the request's path are kept.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{20,}`)

// uuid matches a whole UUID.
var uuid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tokenish reports whether a token-like word w may be a token.
func tokenish(w string) bool {
	if uuid.MatchString(w) || !strings.ContainsAny(w, "abcdefghijklmnopqrstuvwxyz") {
		return false
	}
	return strings.ContainsAny(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
}

// do sends one request through the shared client (paced, retried as the
// policy allows: a GET, PUT or DELETE after an outage, a create never) and
// returns the body of a 2xx answer (nil when empty). path is below
// Options.BaseURL. actErr is the server's refusal of this one action (a
// 4xx but 401, 403 and 429), which becomes the Outcome's Err; err is a
// failure of the request as a whole. A GET is counted as a read, every
// other request as a write. secrets are removed from any server message
// quoted.
func (s *Sink) do(ctx context.Context, what, method, path string, body any, secrets []string) (raw []byte, actErr, err error) {
	// The words of the request's path (an invite id) are ids, not tokens:
	// keysync's requests never carry a token in the path.
	keep := pathWords(path)
	raw, err = s.http.Do(ctx, httpapi.Request{
		Call: what, Method: method, Path: path, Body: body,
		Write: method != http.MethodGet, Idempotent: method != http.MethodPost,
		Reason: func(code int, b []byte) string {
			switch code {
			case http.StatusUnauthorized:
				return "the API key was refused; check the OpenApp API key (sent as Authorization: Bearer)"
			case http.StatusForbidden:
				if method == http.MethodPut || method == http.MethodDelete {
					// A change to one invite: OpenApp may guard that
					// invite (reconcile retries it, and names it for a
					// person when it keeps failing).
					return fmt.Sprintf("forbidden: OpenApp will not let this key change the invite; if creates work, change or delete it by hand in OpenApp, else check that X-Org (%q) is the org id the key belongs to", s.opts.OrgID)
				}
				return fmt.Sprintf("the API key may not act for organisation %q; check that X-Org is the org id the key belongs to", s.opts.OrgID)
			}
			return s.message(b, secrets, keep)
		},
	})
	if httpapi.Refusal(err) != nil {
		return nil, err, nil
	}
	return raw, nil, err
}

// message extracts the server's error message for the operator, without
// the API key, the given secrets, token-like words (but for the ids in
// keep), control characters or more than maxMessageRunes runes.
func (s *Sink) message(raw []byte, secrets []string, keep map[string]bool) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return "no error message in the answer"
	}
	var msg string
	if json.Unmarshal(e.Error, &msg) != nil || msg == "" {
		var nested struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(e.Error, &nested)
		msg = nested.Message
	}
	if msg == "" {
		msg = e.Message
	}
	if msg == "" {
		return "no error message in the answer"
	}
	msg = httpapi.RedactFold(msg, append(secrets, s.opts.APIKey.Reveal())...)
	msg = tokenLike.ReplaceAllStringFunc(msg, func(w string) string {
		if !keep[w] && tokenish(w) {
			return "[redacted]"
		}
		return w
	})
	return "server says: " + httpapi.CleanMessage(msg, maxMessageRunes)
}

// pathWords returns the token-like words of a request path.
func pathWords(path string) map[string]bool {
	words := map[string]bool{}
	for _, w := range tokenLike.FindAllString(path, -1) {
		words[w] = true
	}
	return words
}

// jsonErrorWithoutValue keeps a JSON syntax or type error's position and
// kind but not the offending value, which could be a secret.
func jsonErrorWithoutValue(err error) error { return httpapi.JSONError(err) }
