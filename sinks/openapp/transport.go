package openapp

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
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/keysync/keysync/internal/reach"
	"github.com/keysync/keysync/reconcile"
)

// maxErrorBytes caps how much of an error answer is read for its message.
const maxErrorBytes = 64 << 10

// maxMessageRunes caps a server message quoted in an error.
const maxMessageRunes = 300

// tokenLike matches words that may be an invite token. Those mixing upper
// and lower case (as base64 tokens do) are cut from server messages, in
// case a server quotes the token of the invite an update concerns; ULIDs
// (upper case) and UUIDs (lower case), the likely ids, are kept.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{20,}`)

// do sends one request, paced by Options.Pacer and retried as
// Options.Retry allows (a GET, PUT or DELETE after an outage; a create
// never is), and returns the body of a 2xx answer (nil when empty). actErr
// is the server's refusal of this one action, which becomes the Outcome's
// Err; err is a failure of the request as a whole. A GET is counted as a
// read, every other request as a write. secrets are removed from any
// server message quoted.
func (s *Sink) do(ctx context.Context, what, method, u string, body any, secrets []string) (raw []byte, actErr, err error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("openapp: %s: encode request: %w", what, err)
		}
		payload = b
	}
	idempotent := method != http.MethodPost
	var last error // the last exchange's error
	err = s.opts.Retry.Do(ctx, s.opts.Pacer, idempotent, func() error {
		raw, actErr, last = s.exchange(ctx, what, method, u, payload, secrets)
		return last
	})
	var rl *reconcile.RateLimitedError
	switch {
	case err == nil:
		return raw, actErr, nil
	case errors.Is(err, reconcile.ErrWaitTooLong) && errors.As(err, &rl):
		return nil, nil, fmt.Errorf("openapp: %s: HTTP 429: %w: %w", what, reconcile.ErrWaitTooLong, rl)
	case last == nil || !errors.Is(err, last):
		// The pacer's wait failed: this attempt was not sent.
		return nil, nil, fmt.Errorf("openapp: %s: waiting for rate limit: %w", what, err)
	}
	return nil, nil, err
}

// exchange sends one request and reads its answer; do's results.
func (s *Sink) exchange(ctx context.Context, what, method, u string, payload []byte, secrets []string) (raw []byte, actErr, err error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, fmt.Errorf("openapp: %s: build request: %w", what, scrubURL(err))
	}
	req.Header.Set("Authorization", "Bearer "+s.opts.APIKey.Reveal())
	req.Header.Set("X-Org", s.opts.OrgID)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	s.opts.Meter.Count(reconcile.SystemOpenApp, method != http.MethodGet)
	resp, err := s.opts.HTTP.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil && neverSent(err): // the run stopped, not the server
			return nil, nil, fmt.Errorf("openapp: %s: %w", what, scrubURL(err))
		case ctx.Err() != nil:
			return nil, nil, fmt.Errorf("openapp: %s: no answer: %w (%w)", what, scrubURL(err), reconcile.ErrUnknownOutcome)
		case neverSent(err):
			return nil, nil, reach.Wrap(fmt.Errorf("openapp: %s: %w (%w)", what, scrubURL(err), reconcile.ErrUnavailable), s.reach.Failed(err))
		}
		return nil, nil, reach.Wrap(fmt.Errorf("openapp: %s: no answer: %w (%w, %w)", what, scrubURL(err), reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome), s.reach.Failed(err))
	}
	defer resp.Body.Close()
	s.reach.Answer(resp.StatusCode, false)
	// The words of the request's path (an invite id) are ids, not tokens:
	// keysync's requests never carry a token in the path.
	keep := pathWords(req.URL.Path)
	unknown := func(format string, args ...any) error {
		return fmt.Errorf("openapp: %s: "+format+": %w", append([]any{what}, append(args, reconcile.ErrUnknownOutcome)...)...)
	}

	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized:
		return nil, nil, fmt.Errorf("openapp: %s: HTTP 401: the API key was refused; check the OpenApp API key (sent as Authorization: Bearer): %w", what, reconcile.ErrUnauthorized)
	case code == http.StatusForbidden:
		return nil, nil, fmt.Errorf("openapp: %s: HTTP 403: the API key may not act for organisation %q; check that X-Org is the org id the key belongs to: %w", what, s.opts.OrgID, reconcile.ErrUnauthorized)
	case code == http.StatusTooManyRequests:
		return nil, nil, &reconcile.RateLimitedError{System: reconcile.SystemOpenApp, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), s.opts.Now())}
	case code >= 500:
		return nil, nil, fmt.Errorf("openapp: %s: HTTP %d from server: %w (%w)", what, code, reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome)
	case code == http.StatusNotFound:
		return nil, fmt.Errorf("openapp: %s: HTTP 404: %s: %w", what, s.message(resp.Body, secrets, keep), reconcile.ErrNotFound), nil
	case code == http.StatusConflict:
		return nil, fmt.Errorf("openapp: %s: HTTP 409: %s: %w", what, s.message(resp.Body, secrets, keep), reconcile.ErrConflict), nil
	case code >= 400:
		return nil, fmt.Errorf("openapp: %s: HTTP %d: %s: %w", what, code, s.message(resp.Body, secrets, keep), reconcile.ErrRejected), nil
	case code < 200 || code > 299:
		return nil, nil, unknown("unexpected HTTP %d", code)
	}

	raw, err = io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBytes+1))
	switch {
	case err != nil:
		return nil, nil, unknown("read response: %v", scrubURL(err))
	case int64(len(raw)) > s.opts.MaxResponseBytes:
		return nil, nil, unknown("response larger than %d bytes", s.opts.MaxResponseBytes)
	case len(bytes.TrimSpace(raw)) == 0:
		return nil, nil, nil
	}
	if ct := resp.Header.Get("Content-Type"); !isJSON(ct) {
		mt, _, _ := mime.ParseMediaType(ct)
		return nil, nil, unknown("response is not JSON (content type %q)", mt)
	}
	if !json.Valid(raw) {
		var v any
		return nil, nil, unknown("malformed JSON response: %v", jsonErrorWithoutValue(json.Unmarshal(raw, &v)))
	}
	return raw, nil, nil
}

// message extracts the server's error message for the operator, without
// the API key, the given secrets, token-like words (but for the ids in
// keep), control characters or more than maxMessageRunes runes.
func (s *Sink) message(body io.Reader, secrets []string, keep map[string]bool) string {
	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBytes))
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
	for _, secret := range append(secrets, s.opts.APIKey.Reveal()) {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	msg = tokenLike.ReplaceAllStringFunc(msg, func(w string) string {
		if !keep[w] && strings.ContainsAny(w, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return "[redacted]"
		}
		return w
	})
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	if r := []rune(msg); len(r) > maxMessageRunes {
		msg = string(r[:maxMessageRunes]) + "…"
	}
	return "server says: " + msg
}

// pathWords returns the token-like words of a request path.
func pathWords(path string) map[string]bool {
	words := map[string]bool{}
	for _, w := range tokenLike.FindAllString(path, -1) {
		words[w] = true
	}
	return words
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date) relative
// to now. Missing, negative or malformed values give one second; values
// above ten minutes are capped there.
func RetryAfter(v string, now time.Time) time.Duration {
	return reconcile.ParseRetryAfter(v, now, 10*time.Minute)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// neverSent reports errors that happen before a request leaves the machine,
// so it certainly did not run.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// scrubURL drops the URL that net/http puts in its errors; the base URL is
// in the config, and a URL could carry credentials.
func scrubURL(err error) error { return scrub.Transport(err) }

// jsonErrorWithoutValue keeps a JSON syntax or type error's position and
// kind but not the offending value, which could be a secret.
func jsonErrorWithoutValue(err error) error { return scrub.JSON(err) }
