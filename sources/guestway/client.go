package guestway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/keysync/keysync/internal/httpapi"
)

// Scopes a token needs, as Settings → API Access names them (the Guestway Open API).
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

// Troubleshooting hints, after the Guestway Open API's Troubleshooting list.
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
// and the cause, with the API document's troubleshooting hint where there
// is one; it never quotes a response body, the token, the partner key or a
// PIN. Unwrap gives reconcile.ErrUnauthorized (401, 403, rejected partner
// key), reconcile.ErrNotFound (404; with reconcile.ErrEndpoint too when it
// is the first answer, to the reservations list), reconcile.ErrRejected
// (other 4xx), a *httpapi.RateLimitedError (429; wrapped in
// httpapi.ErrWaitTooLong when its Retry-After is longer than the run
// waits), reconcile.ErrUnavailable (5xx; and, with the transport error, no
// answer), or a context error. An answer that cannot be read wraps nothing.
type Error = httpapi.Error

// api names Guestway in errors.
const api = "guestway"

// call describes one request: what it reads, for messages, and the scope a
// 403 means is missing.
type call struct {
	what  string
	scope string
	// endpoint, when set, says what to check: the request is for
	// something that exists (the reservations collection the config names,
	// a reservation the list returned), so a 404 means the URL is wrong,
	// not that a record is gone.
	endpoint string
	// header, when set, is given a 200 answer's header.
	header func(http.Header)
}

// get sends one GET to path (already holding escaped ids) with query, and
// decodes a 200 answer into out. Every other answer is an *Error. The
// request goes through the shared client: paced, retried (a 429 waited
// out, a 5xx or no answer retried with backoff), each attempt metered.
func (s *Source) get(ctx context.Context, c call, path string, query url.Values, out any) error {
	r := httpapi.Request{
		Call: c.what, Path: path, Query: query, Idempotent: true, Out: out,
		Reason: func(code int, body []byte) string { return reason(c, code, body) },
	}
	r.Endpoint, r.Header = c.endpoint, c.header
	_, err := s.http.Do(ctx, r)
	return err
}

// reason is what a Guestway error answer means, with the API document's
// troubleshooting hint.
func reason(c call, code int, body []byte) string {
	switch {
	case (code == http.StatusUnauthorized || code == http.StatusForbidden) && errorCode(body) == codeInvalidAPIKey:
		return hintPartnerKey
	case code == http.StatusUnauthorized:
		return hintToken
	case code == http.StatusForbidden:
		return fmt.Sprintf(hintScope, c.scope)
	case code == http.StatusNotFound:
		return "not found"
	}
	return ""
}

// errorCode reads the "error" (or "code") member of a small JSON error
// body. Only the one code keysync acts on is returned; anything else gives
// "", so nothing from the body can reach a message.
func errorCode(raw []byte) string {
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
