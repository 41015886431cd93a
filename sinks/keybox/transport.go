package keybox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keysync/keysync/reconcile/scrub"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/keysync/keysync/internal/reach"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// maxMessageBytes is how much of an error answer is read for its message.
const maxMessageBytes = 64 << 10

// maxMessageRunes is how much of a server message reaches an error.
const maxMessageRunes = 200

// send makes one request, paced by Options.Pacer and retried as
// Options.Retry allows: a 429 is waited out, and after an outage a list
// (GET) or a cancel is sent again unless its method is POST; a create
// never is. A GET is counted in the Meter as a read, any other request as
// a write. On a 2xx it
// decodes the answer into out (when out is non-nil). verdict is the
// server's refusal of this action alone (404, 409, 400, 422); err is a
// failure of the request as a whole. Neither ever quotes a body beyond a
// scrubbed server message.
func (s *Sink) send(ctx context.Context, what, method, target string, body, out any) (verdict, err error) {
	var payload []byte
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: encode request: %w", s.label(), what, err)
		}
		payload = raw
	}
	idempotent := method != http.MethodPost
	var last error // the last exchange's error
	err = s.opts.Retry.Do(ctx, s.opts.Pacer, idempotent, func() error {
		verdict, last = s.exchange(ctx, what, method, target, payload, out)
		return last
	})
	var rl *httpapi.RateLimitedError
	switch {
	case err == nil:
		return verdict, nil
	case errors.Is(err, httpapi.ErrWaitTooLong) && errors.As(err, &rl):
		return nil, fmt.Errorf("%s: %s: HTTP 429: %w: %w", s.label(), what, httpapi.ErrWaitTooLong, rl)
	case last == nil || !errors.Is(err, last):
		// The pacer's wait failed: this attempt was not sent.
		return nil, fmt.Errorf("%s: %s: waiting for rate limit: %w", s.label(), what, err)
	}
	return nil, err
}

// exchange sends one request and reads its answer; send's results.
func (s *Sink) exchange(ctx context.Context, what, method, target string, payload []byte, out any) (verdict, err error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf(s.label()+": "+what+": "+format, args...)
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, errf("build request: %w", scrubURL(err))
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.opts.Username, s.opts.Password.Reveal())

	s.opts.Meter.Count(reconcile.SystemKeyBox, method != http.MethodGet)
	resp, err := s.opts.HTTP.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil && neverSent(err): // the run stopped, not the box
			return nil, errf("%w", scrubURL(err))
		case ctx.Err() != nil:
			return nil, errf("no answer: %w (%w)", scrubURL(err), reconcile.ErrUnknownOutcome)
		case neverSent(err):
			return nil, reach.Wrap(errf("%w (%w)", scrubURL(err), reconcile.ErrUnavailable), s.reach.Failed(err))
		}
		return nil, reach.Wrap(errf("no answer: %w (%w, %w)", scrubURL(err), reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome), s.reach.Failed(err))
	}
	defer resp.Body.Close()
	s.reach.Answer(resp.StatusCode, false)

	code := resp.StatusCode
	// Numbers the request carried (the access id in the path, the key id
	// in the body) are ids, not codes: a server message keeps them.
	keep := digitRuns(target + " " + string(payload))
	switch {
	case code == http.StatusUnauthorized:
		return nil, errf("HTTP 401: the key box refused user %q and its password; check the key-box username and password (sent as HTTP Basic auth): %w",
			s.opts.Username, reconcile.ErrUnauthorized)
	case code == http.StatusForbidden:
		return nil, errf("HTTP 403: user %q lacks a permission this call needs (listing, creating and cancelling accesses): %w",
			s.opts.Username, reconcile.ErrUnauthorized)
	case code == http.StatusTooManyRequests:
		return nil, errf("HTTP 429: %w", &httpapi.RateLimitedError{
			System: reconcile.SystemKeyBox, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), s.opts.Now()),
		})
	case code >= 500:
		return nil, errf("HTTP %d from server (%w, %w)", code, reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome)
	case code == http.StatusNotFound || code == http.StatusGone:
		return errf("HTTP %d: %s: %w", code, s.message(resp.Body, keep), reconcile.ErrNotFound), nil
	case code == http.StatusConflict:
		return errf("HTTP %d: %s: %w", code, s.message(resp.Body, keep), reconcile.ErrConflict), nil
	case code == http.StatusBadRequest || code == http.StatusUnprocessableEntity:
		return errf("HTTP %d: %s: %w", code, s.message(resp.Body, keep), reconcile.ErrRejected), nil
	case code >= 300 && code <= 399:
		return nil, errf("HTTP %d: the key box redirects; check the base URL (https?)", code)
	case code < 200 || code > 299:
		return nil, errf("unexpected HTTP %d: %s", code, s.message(resp.Body, keep))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.opts.MaxResponseBytes))
		return nil, nil
	}

	// unknown: the server acted or may have, but its answer cannot be read.
	unknown := func(format string, args ...any) error {
		return errf(format+" (%w)", append(args, reconcile.ErrUnknownOutcome)...)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBytes+1))
	switch {
	case err != nil:
		return nil, unknown("HTTP %d: reading the answer failed", code)
	case int64(len(raw)) > s.opts.MaxResponseBytes:
		return nil, unknown("HTTP %d: answer larger than %d bytes", code, s.opts.MaxResponseBytes)
	case len(bytes.TrimSpace(raw)) == 0:
		return nil, unknown("HTTP %d: empty answer", code)
	}
	if mt := mediaType(resp.Header.Get("Content-Type")); !isJSON(mt) {
		return nil, unknown("HTTP %d: answer is not JSON (content type %q)", code, mt)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, unknown("HTTP %d: malformed JSON answer: %v", code, jsonErrorWithoutValue(err))
	}
	return nil, nil
}

// message extracts the server's message from an error answer, scrubbed of
// secrets and cut short, or says there is none. Only a JSON "message",
// "error" (or error.message) or errors[].message string is ever used; keep
// holds the digit runs that are ids, not codes.
func (s *Sink) message(body io.Reader, keep map[string]bool) string {
	raw, _ := io.ReadAll(io.LimitReader(body, min(maxMessageBytes, s.opts.MaxResponseBytes)))
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
	return s.scrub(strings.Join(parts, "; "), keep)
}

// scrub makes a server message safe for an error: it removes the password
// and every compartment, masks runs of four or more digits (an access code
// the server might quote; a year in a date and the ids in keep are kept),
// replaces control characters and cuts the message short.
func (s *Sink) scrub(msg string, keep map[string]bool) string {
	for _, secret := range s.secrets {
		msg = strings.ReplaceAll(msg, secret.Reveal(), "[redacted]")
	}
	msg = maskDigits(msg, keep)
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	if r := []rune(msg); len(r) > maxMessageRunes {
		msg = string(r[:maxMessageRunes]) + "…"
	}
	return msg
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

// RetryAfter parses a Retry-After header (seconds or an HTTP date) relative
// to now. Missing, negative or malformed values give one second; values
// above a day are capped there.
func RetryAfter(v string, now time.Time) time.Duration {
	return httpapi.ParseRetryAfter(v, now, 24*time.Hour)
}

// flexString is an id or code that the API may send as a JSON string or an
// integer.
type flexString string

var errNotStringOrNumber = errors.New("id or code is neither a string nor an integer")

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
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
		*f = flexString(s)
		return nil
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return errNotStringOrNumber
		}
	}
	if len(b) == 0 {
		return errNotStringOrNumber
	}
	*f = flexString(b)
	return nil
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "unreadable"
	}
	return mt
}

func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// neverSent reports errors that happen before a request leaves the machine,
// so a write certainly did not happen.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// scrubURL drops the URL that net/http puts in its errors; the base URL is
// in the config, and the access id is named by the caller.
func scrubURL(err error) error { return scrub.Transport(err) }

// jsonErrorWithoutValue keeps a JSON syntax or type error's position and
// kind but not the offending value, which could be an access code.
func jsonErrorWithoutValue(err error) error {
	if errors.Is(err, errNotStringOrNumber) {
		return err
	}
	return scrub.JSON(err)
}
