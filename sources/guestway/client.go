package guestway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keysync/keysync/reconcile/scrub"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/reach"
	"github.com/keysync/keysync/reconcile"
)

// Scopes a token needs, as Settings → API Access names them (seed 002).
const (
	// ScopeReservations is the scope that lists and reads reservations.
	ScopeReservations = "Reservations - Read"
	// ScopeAccesses is the scope that reads a reservation's accesses.
	ScopeAccesses = "Reservation Accesses - Read"
)

// codeInvalidAPIKey is the error code with which the API (as keysync
// assumes, see the package comment) rejects a missing or invalid
// Partnership API Key.
const codeInvalidAPIKey = "invalid_api_key"

// Troubleshooting hints, after the seed's Troubleshooting list.
const (
	hintToken = "the Organization Access Token is missing, revoked or incorrect; " +
		"check that Authorization: Bearer gw_... is set on the request with a current token (Settings → API Access)"
	hintPartnerKey = "rejected before the token was checked: the Partnership API Key is missing or invalid; " +
		"check the X-Api-Key Partnership API Key header (support@guestway.io issues partnership keys)"
	hintScope = "the Organization Access Token lacks the %q scope required for this resource; " +
		"check the Permissions column on the token's row (Settings → API Access)"
	hintRate = "Guestway allows 5 requests per second (bursts up to 10) and 10,000 requests per day " +
		"per Partnership API Key; throttle the client or contact support@guestway.io for higher limits"
)

// Error is a failed Guestway request. Its message names guestway, the call
// and the cause, with the seed's troubleshooting hint where there is one; it
// never quotes a response body, the token, the partner key or a PIN.
// Unwrap gives reconcile.ErrUnauthorized (401, 403, rejected partner key),
// reconcile.ErrNotFound (404; with reconcile.ErrEndpoint too when it is
// the first answer, to the reservations list), reconcile.ErrRejected (other 4xx), a
// *reconcile.RateLimitedError (429; wrapped in reconcile.ErrWaitTooLong
// when its Retry-After is longer than the run waits),
// reconcile.ErrUnavailable (5xx; and, with the transport error, no answer),
// or a context error. An answer that cannot be read wraps nothing.
type Error struct {
	// Call is what was being read, such as "list reservations page 2" or
	// "list accesses of reservation 1042".
	Call string
	// Status is the HTTP status, or 0 when there was no answer.
	Status int
	// Reason says what went wrong and what to check.
	Reason string
	// Err is the condition callers can branch on, or nil.
	Err error
}

// Error formats the error as "guestway: call: HTTP n: reason: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("guestway: ")
	b.WriteString(e.Call)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	var rl *reconcile.RateLimitedError
	if e.Err != nil && !errors.As(e.Err, &rl) { // the reason already says it
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the condition.
func (e *Error) Unwrap() error { return e.Err }

// call describes one request: what it reads, for messages, and the scope a
// 403 means is missing.
type call struct {
	what  string
	scope string
	// endpoint: the request is for the reservations collection the config
	// names, where a 404 means the URL is wrong, not that a record is gone.
	endpoint bool
}

// get sends one GET to path (already holding escaped ids) with query, and
// decodes a 200 answer into out. Every other answer is an *Error. The
// request is paced by Options.Pacer and retried as Options.Retry allows: a
// 429 is waited out, and a 5xx or no answer retried with backoff; each
// attempt is counted in the Meter.
func (s *Source) get(ctx context.Context, c call, path string, query url.Values, out any) error {
	var last error // the last exchange's error
	err := s.opts.Retry.Do(ctx, s.opts.Pacer, true, func() error {
		last = s.exchange(ctx, c, path, query, out)
		return last
	})
	var rl *reconcile.RateLimitedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, reconcile.ErrWaitTooLong) && errors.As(err, &rl):
		return &Error{Call: c.what, Status: http.StatusTooManyRequests, Err: err,
			Reason: fmt.Sprintf("rate limited (retry after %s, longer than this run waits): %s", rl.RetryAfter, hintRate)}
	case last == nil || !errors.Is(err, last):
		// The pacer's wait failed: this attempt was not sent.
		return &Error{Call: c.what, Reason: "waiting for the rate limiter", Err: err}
	}
	return err
}

// exchange sends one GET and reads its answer; see get.
func (s *Source) exchange(ctx context.Context, c call, path string, query url.Values, out any) error {
	fail := func(status int, err error, format string, args ...any) error {
		return &Error{Call: c.what, Status: status, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(0, context.Cause(ctx), "not sent")
	}
	u := s.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(0, nil, "build request: check BaseURL and the paths")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Api-Key", s.opts.PartnerKey.Reveal())
	req.Header.Set("Authorization", "Bearer "+s.opts.Token.Reveal())

	s.opts.Meter.Count(reconcile.SystemGuestway, false)
	resp, err := s.opts.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil { // the run stopped, not the server
			return fail(0, scrubURL(err), "no answer")
		}
		return fail(0, reach.Wrap(fmt.Errorf("%w (%w)", scrubURL(err), reconcile.ErrUnavailable), s.reach.Failed(err)), "no answer")
	}
	defer resp.Body.Close()
	if cond := s.reach.Answer(resp.StatusCode, c.endpoint); cond != nil {
		return fail(resp.StatusCode, reach.Wrap(reconcile.ErrNotFound, cond), "nothing at the reservations path; check the base URL and reservations_path")
	}

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusTooManyRequests:
		rl := &reconcile.RateLimitedError{
			System:     reconcile.SystemGuestway,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.opts.Now()),
		}
		return fail(code, rl, "rate limited (retry after %s): %s", rl.RetryAfter, hintRate)
	case (code == http.StatusUnauthorized || code == http.StatusForbidden) && errorCode(resp.Body) == codeInvalidAPIKey:
		return fail(code, reconcile.ErrUnauthorized, "%s", hintPartnerKey)
	case code == http.StatusUnauthorized:
		return fail(code, reconcile.ErrUnauthorized, "%s", hintToken)
	case code == http.StatusForbidden:
		return fail(code, reconcile.ErrUnauthorized, hintScope, c.scope)
	case code == http.StatusNotFound:
		return fail(code, reconcile.ErrNotFound, "not found")
	case code >= 500:
		return fail(code, reconcile.ErrUnavailable, "server error; try again later")
	case code >= 400:
		return fail(code, reconcile.ErrRejected, "the request was refused")
	default:
		return fail(code, nil, "unexpected status (redirects are not followed; check BaseURL)")
	}

	if mt := mediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return fail(resp.StatusCode, nil, "response is not JSON (content type %q)", mt)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBytes+1))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(resp.StatusCode, nil, "truncated response (connection closed mid-body)")
	case err != nil:
		return fail(resp.StatusCode, scrubURL(err), "read response")
	case int64(len(raw)) > s.opts.MaxResponseBytes:
		return fail(resp.StatusCode, nil, "response larger than %d bytes", s.opts.MaxResponseBytes)
	case len(bytes.TrimSpace(raw)) == 0:
		return fail(resp.StatusCode, nil, "empty response")
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fail(resp.StatusCode, nil, "%s", describeJSONError(err, len(raw)))
	}
	return nil
}

// errorCode reads the "error" (or "code") member of a small JSON error
// body. Only the one code keysync acts on is returned; anything else gives
// "", so nothing from the body can reach a message.
func errorCode(body io.Reader) string {
	raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var v struct {
		Error any    `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	code := v.Code
	switch e := v.Error.(type) {
	case string:
		code = e
	case map[string]any: // {"error":{"code":"invalid_api_key"}}
		if c, ok := e["code"].(string); ok {
			code = c
		}
	}
	if strings.EqualFold(code, codeInvalidAPIKey) {
		return codeInvalidAPIKey
	}
	return ""
}

// retryAfter parses a Retry-After header (seconds or an HTTP date) relative
// to now. Missing, negative or malformed values give one second; values
// above a day (the daily cap resets within one) are capped there.
func retryAfter(v string, now time.Time) time.Duration {
	return reconcile.ParseRetryAfter(v, now, 24*time.Hour)
}

// mediaType returns the media type of a Content-Type header, lower case, or
// "" when there is none or it does not parse. It holds only token
// characters, so it is safe to quote.
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || len(mt) > 100 {
		return ""
	}
	return mt
}

// scrubURL drops the URL that net/http puts in its errors: it is in the
// config, and a URL could carry credentials.
func scrubURL(err error) error { return scrub.Transport(err) }

// describeJSONError keeps a JSON error's position and kind but not the
// offending value, which could be a secret. n is the length of the input.
func describeJSONError(err error, n int) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset >= int64(n) {
			return "truncated JSON response"
		}
		return fmt.Sprintf("malformed JSON response (invalid JSON at byte %d)", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("malformed JSON response: field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("malformed JSON response: expected %s, got JSON %s", te.Type, te.Value)
	}
	var ie *idError
	if errors.As(err, &ie) {
		return "malformed JSON response: " + ie.Error()
	}
	return "malformed JSON response"
}
