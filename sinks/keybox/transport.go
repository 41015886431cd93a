package keybox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// maxMessageRunes is how much of a server message reaches an error.
const maxMessageRunes = 200

// send makes one request through the shared client: paced, a 429 waited
// out, and after an outage a list (GET) or a cancel sent again unless its
// method is POST; a create never is. A GET is counted in the Meter as a
// read, any other request as a write. path is below Options.BaseURL. On a
// 2xx it decodes the answer into out (when out is non-nil). verdict is the
// server's refusal of this action alone (a 4xx but 401, 403, 405 and 429); err
// is a failure of the request as a whole. Neither ever quotes a body
// beyond a scrubbed server message, from which codes (the access codes the
// request concerns, whatever their form) are removed too.
func (s *Sink) send(ctx context.Context, what, method, path string, body, out any, codes ...reconcile.Secret) (verdict, err error) {
	// Numbers the request carried (the access id in the path, the key id
	// in the body) are ids, not codes: a server message keeps them.
	payload, _ := json.Marshal(body)
	keep := digitRuns(s.base + path + " " + string(payload))
	_, err = s.http.Do(ctx, httpapi.Request{
		Call: what, Method: method, Path: path, Body: body, Out: out, Discard: out == nil,
		Write: method != http.MethodGet, Idempotent: method != http.MethodPost,
		Reason: func(code int, b []byte) string {
			switch code {
			case http.StatusUnauthorized:
				return fmt.Sprintf("the key box refused user %q and its password; check the key-box username and password (sent as HTTP Basic auth)", s.opts.Username)
			case http.StatusForbidden:
				return fmt.Sprintf("user %q lacks a permission this call needs (listing, creating and cancelling accesses)", s.opts.Username)
			}
			return s.message(b, keep, codes)
		},
	})
	if httpapi.Refusal(err) != nil {
		return err, nil
	}
	return nil, err
}

// message extracts the server's message from an error answer, scrubbed of
// secrets and cut short, or says there is none. Only a JSON "message",
// "error" (or error.message) or errors[].message string is ever used; keep
// holds the digit runs that are ids, not codes.
func (s *Sink) message(raw []byte, keep map[string]bool, codes []reconcile.Secret) string {
	var m struct {
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return "no message in the answer"
	}
	var parts []string
	if m.Message != "" {
		parts = append(parts, m.Message)
	}
	var e struct {
		Message string `json:"message"`
	}
	var es string
	switch {
	case json.Unmarshal(m.Error, &es) == nil && es != "":
		parts = append(parts, es)
	case json.Unmarshal(m.Error, &e) == nil && e.Message != "":
		parts = append(parts, e.Message)
	}
	for _, e := range m.Errors {
		if e.Message != "" {
			parts = append(parts, e.Message)
		}
	}
	if len(parts) == 0 {
		return "no message in the answer"
	}
	return s.scrub(strings.Join(parts, "; "), keep, codes)
}

// scrub makes a server message safe for an error: it removes the password,
// every compartment and the codes given, masks runs of four or more digits (an access code
// the server might quote; a year in a date and the ids in keep are kept),
// replaces control characters and cuts the message short.
func (s *Sink) scrub(msg string, keep map[string]bool, codes []reconcile.Secret) string {
	for _, secret := range slices.Concat(s.secrets, codes) {
		msg = httpapi.RedactFold(msg, secret.Reveal())
	}
	msg = maskDigits(msg, keep)
	return httpapi.CleanMessage(msg, maxMessageRunes)
}

// maskDigits replaces each run of four or more ASCII digits with "[redacted]",
// except a run of exactly four followed by "-" (the year of a date) and the
// runs in keep (ids).
func maskDigits(msg string, keep map[string]bool) string {
	var b strings.Builder
	for i := 0; i < len(msg); {
		j := i
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(msg[i])
			i++
			continue
		}
		year := j-i == 4 && j < len(msg) && msg[j] == '-'
		if j-i >= 4 && !year && !keep[msg[i:j]] {
			b.WriteString("[redacted]")
		} else {
			b.WriteString(msg[i:j])
		}
		i = j
	}
	return b.String()
}

// digitRuns returns the runs of ASCII digits in s. A request carries no
// access code (the key box makes it), so the numbers in a request are ids.
func digitRuns(s string) map[string]bool {
	runs := map[string]bool{}
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j > i {
			runs[s[i:j]] = true
			i = j
			continue
		}
		i++
	}
	return runs
}
