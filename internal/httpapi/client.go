// Package httpapi is the one HTTP client every keysync adapter sends
// through (3RPMS, Guestway, OpenApp and the key box): it encodes the JSON
// body, paces each request through the API's Pacer, retries only what may
// be repeated, counts every attempt in the run's Meter, reads answers
// through a size cap, classifies the status into reconcile's sentinel
// errors, reads Retry-After by one policy and keeps secrets out of every
// error. An adapter adds only its auth headers and how to read its error
// bodies.
package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/reach"
	"github.com/keysync/keysync/reconcile"
)

// DefaultTimeout bounds one exchange when Transport.HTTP is nil.
const DefaultTimeout = 60 * time.Second

// maxErrorBytes caps how much of an error answer is read for its message.
const maxErrorBytes = 64 << 10

// Transport is what an adapter's Options carry for its HTTP client; every
// field may be left zero.
type Transport struct {
	// HTTP is the client to use; nil means one with DefaultTimeout that
	// does not follow redirects (a redirected POST would arrive as a GET).
	HTTP *http.Client
	// Pacer paces requests to this API; shared by everything in the
	// process that calls it; nil means no pacing.
	Pacer *Pacer
	// Retry is how one exchange is retried: 429s waited out, idempotent
	// calls retried after an outage, others never; the zero value is the
	// default policy.
	Retry Retry
	// Meter counts requests for the run report.
	Meter *reconcile.Meter
	// Account is the metered credential the requests count against in the
	// Meter and the daily ledger; "" counts against every account of the
	// system.
	Account reconcile.Account
	// MaxResponseBytes caps response bodies; 0 means the adapter's default.
	MaxResponseBytes int64
	// Now is the clock for Retry-After dates; nil means Retry.Clock's, or
	// time.Now without one.
	Now func() time.Time
}

// Options configures a Client.
type Options struct {
	Transport
	// System is the API the Client calls, for the Meter and rate limits.
	System reconcile.System
	// Name starts every error message ("3rpms", "keybox hotel"); "" means
	// System.
	Name string
	// BaseURL is the API's scheme, host and any path prefix; a Request's
	// Path is appended to it.
	BaseURL string
	// MaxResponseBytes is the cap when Transport.MaxResponseBytes is 0.
	MaxResponseBytes int64
	// Auth sets the request's credentials (headers); it is called for
	// every attempt.
	Auth func(*http.Request)
	// RateLimitHint follows a 429's reason: what the API allows.
	RateLimitHint string
	// Refusal, when set, is the sentinel for a 4xx answer other than 401,
	// 403 and 429; nil means reconcile.ErrNotFound for 404 and 410,
	// reconcile.ErrConflict for 409 and reconcile.ErrRejected otherwise.
	Refusal func(status int) error
}

// transport is the connection pool every Client without its own
// http.Client shares. Go's default keeps 2 idle connections per host: a
// portfolio's properties, applying at once against one API host, closed
// and reopened connections (a TLS handshake each) on most requests.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}()

// Client sends an adapter's requests. It is safe for concurrent use.
type Client struct {
	opts  Options
	reach reach.Tracker
}

// New returns a Client, or an error when the options cannot work.
func New(opts Options) (*Client, error) {
	if opts.System == "" {
		return nil, errors.New("httpapi: System must be set")
	}
	if opts.Transport.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("%s: max response bytes must not be negative", opts.System)
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{
			Transport: transport,
			Timeout:   DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	opts.Transport.MaxResponseBytes = cmp.Or(opts.Transport.MaxResponseBytes, opts.MaxResponseBytes, 8<<20)
	if opts.Now == nil {
		opts.Now = time.Now
		if opts.Retry.Clock != nil {
			opts.Now = opts.Retry.Clock.Now
		}
	}
	opts.Name = cmp.Or(opts.Name, string(opts.System))
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	return &Client{opts: opts}, nil
}

// MaxResponseBytes is the cap on the bodies the Client reads.
func (c *Client) MaxResponseBytes() int64 { return c.opts.Transport.MaxResponseBytes }

// Request is one call to the API.
type Request struct {
	// Call says what the request does, for messages ("list reservations
	// page 2", "create invite for stay s1").
	Call string
	// Method is the HTTP method; "" means GET.
	Method string
	// Path is appended to Options.BaseURL; ids in it are already escaped.
	Path string
	// Query, when not empty, is the URL's query.
	Query url.Values
	// Body is encoded as JSON and sent; nil sends no body.
	Body any
	// Write says the request changes something: it is metered as a write,
	// and a failure after it was sent leaves its outcome unknown
	// (reconcile.ErrUnknownOutcome).
	Write bool
	// Idempotent says the request may be sent again after an outage (a
	// 5xx, no answer); a rate-limited request is always sent again.
	Idempotent bool
	// Endpoint, when set, marks the request as one for the endpoint the
	// config names, where a 404 as the system's first answer means the
	// URL is wrong (reconcile.ErrEndpoint); it says what to check.
	Endpoint string
	// Out, when set, receives the decoded answer, which must then be a
	// non-empty JSON document.
	Out any
	// Discard drops a successful answer's body unread.
	Discard bool
	// Header, when set, is given the header of a 2xx answer whose body
	// was read, before it is decoded (a list's Link header, say).
	Header func(http.Header)
	// RateLimited, when set, reports whether a 2xx answer's body is the
	// API's refusal for its rate limit all the same (a GraphQL server's
	// error in a 200 that ran nothing): it is then a *RateLimitedError,
	// waited out and sent again as a 429 is.
	RateLimited func(body []byte) bool
	// Reason, when set, reads an error answer (any status but 2xx, 429 and
	// 5xx) for the operator: the text after "HTTP n: ". It must keep
	// secrets out; "" means the Client's default.
	Reason func(status int, body []byte) string
}

// Do sends r, paced by the Pacer and retried as the Retry policy allows,
// each attempt counted in the Meter, and returns the body of a 2xx answer
// (nil when empty, discarded or decoded into r.Out).
//
// Every failure is an *Error naming the API and r.Call, whose Err is the
// sentinel callers branch on: reconcile.ErrUnauthorized (401, 403), a
// *RateLimitedError (429; wrapped in ErrWaitTooLong when its Retry-After
// is longer than the run waits), reconcile.ErrUnavailable (a 5xx, no
// answer; with reconcile.ErrUnknownOutcome for a write that was sent),
// the refusal of the request alone for other 4xx but 405 (Error.Refused;
// a 405 and a redirect are whole-request errors naming the config to
// check, an unexpected status leaves a write's outcome unknown), and
// reconcile.ErrEndpoint or reconcile.ErrUnreachable while the system has
// never answered (package reach). An answer that cannot be read wraps
// reconcile.ErrUnknownOutcome for a write and nothing for a read; a
// failure while waiting for the Pacer, or before sending, means nothing
// was sent. A write is sent again (a 429 waited out, an idempotent write
// after an outage) only when ctx's re-send budget has a request for it
// (reconcile.WithResends); otherwise the last failure comes back wrapped
// with reconcile.ErrOverBudget. No error quotes a URL, a credential or an
// answer's body beyond what r.Reason returns.
func (c *Client) Do(ctx context.Context, r Request) ([]byte, error) {
	var payload []byte
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, c.fail(r, 0, "encode request", err)
		}
		payload = b
	}
	var (
		raw  []byte
		last error // the last exchange's error
	)
	var again func() error
	if r.Write {
		// The plan paid for a write once: each re-send comes out of the
		// day's budget, and goes only when it has a request left.
		again = func() error { return reconcile.Resend(ctx) }
	}
	err := c.opts.Retry.do(ctx, c.opts.Pacer, r.Idempotent, again, func() error {
		raw, last = c.exchange(ctx, r, payload)
		return last
	})
	var rl *RateLimitedError
	switch {
	case err == nil:
		return raw, nil
	case errors.Is(err, ErrWaitTooLong) && errors.As(err, &rl):
		what := fmt.Sprintf("rate limited (retry after %s, longer than this run waits)", rl.RetryAfter)
		if errors.Is(err, errBarred) {
			what = fmt.Sprintf("rate limited: not sent, an earlier 429 asked to wait %s more, longer than this run waits", rl.RetryAfter.Round(time.Second))
		}
		return nil, c.fail(r, http.StatusTooManyRequests, c.rateReason(what), err)
	case last == nil || !errors.Is(err, last):
		// The pacer's wait failed: this attempt was not sent.
		return nil, c.fail(r, 0, "waiting for rate limit (waiting for the rate limiter failed; nothing was sent)", err)
	}
	return nil, err
}

// fail builds an *Error.
func (c *Client) fail(r Request, status int, reason string, err error) *Error {
	return &Error{API: c.opts.Name, Call: r.Call, Status: status, Reason: reason, Err: err}
}

// rateLimited is the failure of an answer refused for the rate limit (a
// 429, or a 2xx that Request.RateLimited reads as one): a
// *RateLimitedError with the answer's Retry-After, the reason what.
func (c *Client) rateLimited(r Request, resp *http.Response, what string) *Error {
	rl := &RateLimitedError{System: c.opts.System, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now())}
	return c.fail(r, resp.StatusCode, c.rateReason(fmt.Sprintf("%s (retry after %s)", what, rl.RetryAfter)), rl)
}

// rateReason adds the API's rate-limit hint to a 429's reason.
func (c *Client) rateReason(reason string) string {
	if c.opts.RateLimitHint == "" {
		return reason
	}
	return reason + ": " + c.opts.RateLimitHint
}

// unknown is the condition of a request whose answer cannot be read: for
// a write, the server may have acted.
func unknown(r Request, err error) error {
	if !r.Write {
		return err
	}
	if err == nil {
		return reconcile.ErrUnknownOutcome
	}
	return fmt.Errorf("%w (%w)", err, reconcile.ErrUnknownOutcome)
}

// exchange sends one request and reads its answer; see Do.
func (c *Client) exchange(ctx context.Context, r Request, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.fail(r, 0, "not sent", context.Cause(ctx))
	}
	target := c.opts.BaseURL + r.Path
	if len(r.Query) > 0 {
		target += "?" + r.Query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cmp.Or(r.Method, http.MethodGet), target, body)
	if err != nil {
		return nil, c.fail(r, 0, "build request: check the base URL and the paths", nil)
	}
	if payload != nil || req.Method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.opts.Auth != nil {
		c.opts.Auth(req)
	}

	c.opts.Meter.Count(c.opts.System, c.opts.Account, r.Write)
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		serr := scrubTransport(err)
		switch {
		case ctx.Err() != nil && (neverSent(err) || !r.Write): // the run stopped, not the server
			return nil, c.fail(r, 0, "no answer", serr)
		case ctx.Err() != nil:
			return nil, c.fail(r, 0, "no answer", unknown(r, serr))
		case neverSent(err) || !r.Write:
			return nil, c.fail(r, 0, "no answer", reach.Wrap(fmt.Errorf("%w (%w)", serr, reconcile.ErrUnavailable), c.reach.Failed(err)))
		}
		return nil, c.fail(r, 0, "no answer", reach.Wrap(fmt.Errorf("%w (%w, %w)", serr, reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome), c.reach.Failed(err)))
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if cond := c.reach.Answer(code, r.Endpoint != ""); cond != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		return nil, c.fail(r, code, r.Endpoint, reach.Wrap(c.refusal(code), cond))
	}

	switch {
	case code == http.StatusTooManyRequests:
		return nil, c.rateLimited(r, resp, "rate limited")
	case code >= 500:
		return nil, c.fail(r, code, "server error; try again later", unknown(r, reconcile.ErrUnavailable))
	case code >= 300 && code <= 399 && resp.Header.Get("Location") != "":
		// A redirect: the request was not acted on here.
		return nil, c.fail(r, code, "redirects are not followed; check the base URL (https?)", nil)
	case code == http.StatusMethodNotAllowed:
		// The API takes no such call at this path: a wrong path or method
		// in the config, not a refusal of the action.
		return nil, c.fail(r, code, "unexpected HTTP 405: the server does not allow this method here; check the paths and methods", nil)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, c.fail(r, code, c.reason(r, resp.Body, code), reconcile.ErrUnauthorized)
	case code >= 400 && code <= 499:
		return nil, c.fail(r, code, c.reason(r, resp.Body, code), c.refusal(code))
	case code < 200 || code > 299:
		return nil, c.fail(r, code, fmt.Sprintf("unexpected HTTP %d", code), unknown(r, nil))
	}
	if r.Discard {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, c.MaxResponseBytes()))
		return nil, nil
	}

	max := c.MaxResponseBytes()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, c.fail(r, code, "read response: the connection closed mid-body (truncated response) while reading the answer", unknown(r, nil))
	case err != nil:
		return nil, c.fail(r, code, "read response", unknown(r, scrubTransport(err)))
	case int64(len(raw)) > max:
		return nil, c.fail(r, code, fmt.Sprintf("response larger than %d bytes; raise the API's max_response_bytes, or ask for smaller pages (page_size, per_page)", max), unknown(r, nil))
	case len(bytes.TrimSpace(raw)) == 0:
		if r.Out != nil {
			return nil, c.fail(r, code, "empty response", unknown(r, nil))
		}
		return nil, nil
	}
	if mt := mediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, c.fail(r, code, fmt.Sprintf("response is not JSON (content type %q)", mt), unknown(r, nil))
	}
	if r.RateLimited != nil && r.RateLimited(raw) {
		return nil, c.rateLimited(r, resp, "rate limited: the answer's errors say so")
	}
	if r.Header != nil {
		r.Header(resp.Header)
	}
	if r.Out == nil {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, c.fail(r, code, describeJSON(err, len(raw)), unknown(r, nil))
		}
		return raw, nil
	}
	if err := json.Unmarshal(raw, r.Out); err != nil {
		return nil, c.fail(r, code, describeJSON(err, len(raw)), unknown(r, nil))
	}
	return nil, nil
}

// reason reads an error answer for the operator.
func (c *Client) reason(r Request, body io.Reader, code int) string {
	raw, _ := io.ReadAll(io.LimitReader(body, min(maxErrorBytes, c.MaxResponseBytes())))
	if r.Reason != nil {
		if s := r.Reason(code, raw); s != "" {
			return s
		}
	}
	switch code {
	case http.StatusUnauthorized:
		return "the credentials were refused"
	case http.StatusForbidden:
		return "the credentials lack a permission this call needs"
	}
	return "the request was refused"
}

// refusal is the sentinel of a 4xx answer other than 401, 403 and 429.
func (c *Client) refusal(code int) error {
	if c.opts.Refusal != nil {
		return c.opts.Refusal(code)
	}
	switch code {
	case http.StatusNotFound, http.StatusGone:
		return reconcile.ErrNotFound
	case http.StatusConflict:
		return reconcile.ErrConflict
	}
	return reconcile.ErrRejected
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

// neverSent reports errors that happen before a request leaves the machine,
// so it certainly did not run.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
