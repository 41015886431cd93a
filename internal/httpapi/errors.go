package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// Error is a failed request. Its message names the API, the call and the
// cause ("guestway: list reservations page 2: HTTP 403: reason: cause");
// it never quotes a URL, a credential or an answer's body beyond a
// scrubbed server message. Unwrap gives the condition callers branch on.
type Error struct {
	// API names the adapter, first in the message ("3rpms", "keybox hotel").
	API string
	// Call is what the request did, such as "list reservations page 2".
	Call string
	// Status is the HTTP status, or 0 when there was no answer.
	Status int
	// Reason says what went wrong and what to check.
	Reason string
	// Err is the condition callers can branch on, or nil.
	Err error
	// Field, when set, is the config field under the system's block
	// ("guestway.reservation_path") the error says to fix, where that is
	// not the system's URL.
	Field string
}

// Error formats the error as "api: call: HTTP n: reason: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.API)
	b.WriteString(": ")
	b.WriteString(e.Call)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	var rl *RateLimitedError
	if e.Err != nil && !errors.As(e.Err, &rl) { // the reason already says it
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the condition.
func (e *Error) Unwrap() error { return e.Err }

// Refused reports whether the server refused this request alone (a 4xx
// other than 401, 403, 405 and 429): an answer about the one action it
// carried, not a failure of the API.
func (e *Error) Refused() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusMethodNotAllowed:
		return false
	}
	return e.Status >= 400 && e.Status <= 499 && !errors.Is(e.Err, reconcile.ErrEndpoint)
}

// NoList wraps err, a failed list call, with reconcile.ErrNoList when the
// server answered it 405: the path takes no GET, so the API has no such
// call, which no retry changes. A 404 may as well be a wrong id or base
// URL; it is left a failure, with option named as the way to say the API
// has no list. Any other err is returned as it is.
func NoList(err error, option string) error {
	var e *Error
	switch {
	case !errors.As(err, &e):
	case e.Status == http.StatusMethodNotAllowed:
		return fmt.Errorf("%w (%w)", err, reconcile.ErrNoList)
	case e.Status == http.StatusNotFound:
		return fmt.Errorf("%w; if this API has no call that lists them, set %s", err, option)
	}
	return err
}

// RefusedInput reports whether the server refused the request's input:
// HTTP 400 or 422.
func RefusedInput(err error) bool {
	e := Refusal(err)
	return e != nil && (e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity)
}

// Refusal returns err's *Error when the server refused the request alone
// (Error.Refused), or nil.
func Refusal(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.Refused() {
		return e
	}
	return nil
}

// RateLimitedError is a request the system refused for its rate limit
// (HTTP 429). It wraps reconcile.ErrRateLimited.
type RateLimitedError struct {
	System     reconcile.System
	RetryAfter time.Duration
}

// Error implements error.
func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%s: rate limited (retry after %s)", e.System, e.RetryAfter)
}

// Unwrap returns reconcile.ErrRateLimited.
func (e *RateLimitedError) Unwrap() error { return reconcile.ErrRateLimited }
