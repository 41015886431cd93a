package openapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
)

// reply is a canned answer.
var reply = adaptertest.Reply

// echo is an error body quoting both canaries, as a careless server might.
const echo = `{"error":"bad request from ` + canaryKey + ` for invite ` + canaryToken + `"}`

// keyEcho quotes only the API key, which the sink knows to remove.
const keyEcho = `{"error":"portal_ids[0]: portal \"door-9\" is not a portal of integration \"int_a\" (key ` + canaryKey + `)"}`

const jsonCT = "application/json"

// createOp, deleteOp and disableOp return fresh actions on stay s1's
// invite in room r101 over June 1–5; the last two on invite inv_1.
func createOp() *reconcile.Action {
	return action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
}

func deleteOp() *reconcile.Action {
	return action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")
}

func disableOp() *reconcile.Action {
	return action(reconcile.OpDisable, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")
}

func TestSinkErrors(t *testing.T) {
	t.Parallel()
	// An update of an invite whose token keysync holds (lower case, so
	// only knowing it removes it from a message).
	const heldToken = "oat_lower_case_token_held"
	updateHeld := action(reconcile.OpUpdate, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")
	updateHeld.Cred.Secret = heldToken
	retryDate := t0.Add(30 * time.Second).Format(http.TimeFormat)
	padded := `{"invite_token":"` + canaryToken + `","invite_link_id":"inv_1","pad":"` + strings.Repeat("x", 4096) + `"}`

	tests := []struct {
		name     string
		action   *reconcile.Action // nil: create
		handler  http.HandlerFunc
		request  bool     // the error is the request's, not the outcome's
		is       []error  // errors.Is must hold for each
		isNot    []error  // and for none of these
		contains []string // in err.Error()
		check    func(t *testing.T, err error)
		ok       bool // no error expected
		// unavailable: the error wraps reconcile.ErrUnavailable (a 5xx or
		// a lost answer), which alone makes a PUT or DELETE retried.
		unavailable bool
		requests    int // sent, retries included; 0 means 1
	}{
		{
			name: "401", handler: reply(401, jsonCT, echo), request: true,
			is: []error{reconcile.ErrUnauthorized}, isNot: []error{reconcile.ErrUnknownOutcome},
			contains: []string{"401", "API key", "Authorization: Bearer"},
		},
		{
			name: "403", handler: reply(403, jsonCT, echo), request: true,
			is: []error{reconcile.ErrUnauthorized}, isNot: []error{reconcile.ErrUnknownOutcome},
			contains: []string{"403", "X-Org", orgA},
		},
		{
			name: "404 on delete", action: deleteOp(), handler: reply(404, jsonCT, `{"error":"access invite \"inv_1\" not found"}`),
			is: []error{reconcile.ErrNotFound}, isNot: []error{reconcile.ErrUnknownOutcome, reconcile.ErrRejected},
			contains: []string{"404", `access invite "inv_1" not found`, "delete invite for stay hotel-ljubljana/3rpms/s1"},
		},
		{
			name: "404 quoting a token", action: disableOp(), handler: reply(404, jsonCT, echo),
			is: []error{reconcile.ErrNotFound}, contains: []string{"[redacted]"},
		},
		{
			name: "404 keeps ids", action: deleteOp(), handler: reply(404, jsonCT, `{"error":"integration 01HINTEGRATION00000000000000 has no invite 3f2b6c1e-8d4a-4c2e-9b7a-1d2e3f4a5b6c"}`),
			is: []error{reconcile.ErrNotFound}, contains: []string{"01HINTEGRATION00000000000000", "3f2b6c1e-8d4a-4c2e-9b7a-1d2e3f4a5b6c"},
		},
		{
			// A mixed-case invite id looks like a token, but the request
			// carried it in its path: it is an id, kept.
			name: "404 keeps the invite id of the path", action: action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "invLink_7Hq2MzX9pRwK4tNb"),
			handler: reply(404, jsonCT, `{"error":"invite invLink_7Hq2MzX9pRwK4tNb not found"}`),
			is:      []error{reconcile.ErrNotFound}, contains: []string{"invite invLink_7Hq2MzX9pRwK4tNb not found"},
		},
		{
			name: "409 quoting the held token", action: updateHeld, handler: reply(409, jsonCT, `{"error":"invite `+heldToken+` is locked"}`),
			is: []error{reconcile.ErrConflict}, contains: []string{"invite [redacted] is locked"},
			check: func(t *testing.T, err error) {
				if strings.Contains(err.Error(), heldToken) {
					t.Errorf("error leaks the held token: %v", err)
				}
			},
		},
		{
			// A create colliding with another invite: its token, lower-case
			// hex, is none keysync could name.
			name: "409 quoting another invite's hex token", handler: reply(409, jsonCT, `{"error":"an invite with this name already exists: 0000a1b2c3d4e5f6a7b8c9d0abcdef12cf01"}`),
			is: []error{reconcile.ErrConflict}, contains: []string{"an invite with this name already exists: [redacted]"},
		},
		{
			name: "409 quoting the held token lower-cased", action: updateHeld, handler: reply(409, jsonCT, `{"error":"invite `+strings.ToLower(heldToken)+` is locked"}`),
			is: []error{reconcile.ErrConflict}, contains: []string{"invite [redacted] is locked"},
			check: func(t *testing.T, err error) {
				if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(heldToken)) {
					t.Errorf("error leaks the held token: %v", err)
				}
			},
		},
		{
			name: "409", handler: reply(409, jsonCT, `{"error":"invite is being changed"}`),
			is: []error{reconcile.ErrConflict}, isNot: []error{reconcile.ErrUnknownOutcome}, contains: []string{"409", "invite is being changed"},
		},
		{
			name: "422 quoting the API key", handler: reply(422, jsonCT, keyEcho),
			is: []error{reconcile.ErrRejected}, isNot: []error{reconcile.ErrUnknownOutcome},
			contains: []string{"422", `portal_ids[0]: portal "door-9" is not a portal of integration "int_a"`, "[redacted]"},
		},
		{
			name: "400 with message", handler: reply(400, "application/problem+json", `{"message":"valid_to: want RFC 3339"}`),
			is: []error{reconcile.ErrRejected}, contains: []string{"400", "valid_to: want RFC 3339"},
		},
		{
			name: "400 with nested error", handler: reply(400, jsonCT, `{"error":{"code":"invalid","message":"name: required"}}`),
			is: []error{reconcile.ErrRejected}, contains: []string{"name: required"},
		},
		{
			name: "400 as HTML", handler: reply(400, "text/html", "<html>"+canaryKey+canaryToken+"</html>"),
			is: []error{reconcile.ErrRejected}, contains: []string{"no error message"},
		},
		{
			name: "400 with a long message", handler: reply(400, jsonCT, `{"error":"`+strings.Repeat("bad ", 200)+`\u0007"}`),
			is: []error{reconcile.ErrRejected},
			check: func(t *testing.T, err error) {
				if len(err.Error()) > 500 || strings.ContainsRune(err.Error(), '\a') {
					t.Errorf("message not trimmed: %d bytes", len(err.Error()))
				}
			},
		},
		{
			name: "415", handler: reply(415, jsonCT, `{"error":"Content-Type must be application/json"}`),
			is: []error{reconcile.ErrRejected}, isNot: []error{reconcile.ErrUnknownOutcome},
		},
		{
			name: "429 with Retry-After seconds", handler: reply(429, jsonCT, echo, "Retry-After", "7"), request: true,
			isNot: []error{reconcile.ErrUnknownOutcome, httpapi.ErrWaitTooLong}, requests: 4,
			check: retryAfter(7 * time.Second),
		},
		{
			name: "429 with Retry-After date", action: deleteOp(), handler: reply(429, jsonCT, echo, "Retry-After", retryDate), request: true,
			check: retryAfter(30 * time.Second), requests: 4,
		},
		{
			name: "429 without Retry-After", handler: reply(429, jsonCT, echo), request: true,
			check: retryAfter(time.Second), requests: 4,
		},
		{
			name: "429 with a huge Retry-After", handler: reply(429, jsonCT, echo, "Retry-After", "99999999999999"), request: true,
			is: []error{httpapi.ErrWaitTooLong}, check: retryAfter(httpapi.MaxRetryAfter),
		},
		{
			name: "500", handler: reply(500, jsonCT, echo), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"500"}, unavailable: true,
		},
		{
			name: "503 as HTML on delete", action: deleteOp(), handler: reply(503, "text/html", "<html>"+canaryToken+"</html>"), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"503"}, unavailable: true, requests: 4,
		},
		{
			name: "201 as HTML", handler: reply(201, "text/html; charset=utf-8", "<html>Maintenance "+canaryToken+"</html>"), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"not JSON", "text/html"},
		},
		{
			name: "200 as HTML on disable", action: disableOp(), handler: reply(200, "text/html", "<html>login</html>"), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"not JSON"},
		},
		{
			name: "201 empty", handler: reply(201, jsonCT, ""),
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"invite_token or invite_link_id"},
		},
		{
			name: "201 without a link id", handler: reply(201, jsonCT, `{"invite_token":"`+canaryToken+`"}`),
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"may exist"},
		},
		{
			name: "201 without a token", handler: reply(201, jsonCT, `{"invite_link_id":"inv_1"}`),
			is: []error{reconcile.ErrUnknownOutcome},
		},
		{
			name: "201 with a token of the wrong type", handler: reply(201, jsonCT, `{"invite_token":["`+canaryToken+`"],"invite_link_id":"inv_1"}`),
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"invite_token"},
		},
		{
			name: "201 malformed JSON", handler: reply(201, jsonCT, `{"invite_token":"`+canaryToken+`","invite_li`), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"openapp", "malformed JSON"},
		},
		{
			name: "201 truncated by the connection", request: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", jsonCT)
				w.Header().Set("Content-Length", "200")
				w.WriteHeader(201)
				_, _ = io.WriteString(w, `{"invite_token":"`+canaryToken+`"`)
			},
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"openapp", "read response"},
		},
		{
			name: "201 oversized", handler: reply(201, jsonCT, padded), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"larger than 2048 bytes"},
		},
		{
			name: "no answer", request: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"no answer"}, unavailable: true,
		},
		{
			name: "unexpected 3xx", handler: reply(304, "", ""), request: true,
			is: []error{reconcile.ErrUnknownOutcome}, contains: []string{"304"},
		},
		// The document shows the create's answer bare; one wrapped as the
		// list's invites are is read the same.
		{name: "201 wrapped in data", handler: reply(201, jsonCT, `{"data":{"invite_token":"`+canaryToken+`","invite_link_id":"inv_1"}}`), ok: true},
		// A server that changes no invite in place: a refusal of this
		// invite (replaced instead), not a wrong path for every request.
		{
			name: "405 on update", action: updateHeld, handler: reply(405, jsonCT, `{"error":"method not allowed"}`),
			is: []error{reconcile.ErrRejected}, isNot: []error{reconcile.ErrUnknownOutcome}, contains: []string{"405", "takes no PUT"},
		},
		{
			name: "405 on disable", action: disableOp(), handler: reply(405, jsonCT, `{"error":"method not allowed"}`),
			is: []error{reconcile.ErrRejected}, isNot: []error{reconcile.ErrUnknownOutcome}, contains: []string{"405", "takes no PUT"},
		},
		{name: "204 on delete", action: deleteOp(), handler: reply(204, "", ""), ok: true},
		{name: "200 with an empty body on disable", action: disableOp(), handler: reply(200, "text/plain", ""), ok: true},
		{name: "200 with JSON on disable", action: disableOp(), handler: reply(200, jsonCT, `{"invite_link_id":"inv_1","is_enabled":false}`), ok: true},
		{name: "200 create", handler: reply(200, "application/json; charset=utf-8", `{"invite_token":"`+canaryToken+`","invite_link_id":"inv_1","extra":{}}`), ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			opts := options(srv.URL)
			opts.MaxResponseBytes = 2048
			a := tc.action
			if a == nil {
				a = createOp()
			}
			out, err := newSink(t, opts).Apply(context.Background(), []*reconcile.Action{a})
			if tc.ok {
				if err != nil || len(out) != 1 || out[0].Err != nil {
					t.Fatalf("Apply = %+v, %v", out, err)
				}
				return
			}
			switch {
			case tc.request && err == nil:
				t.Fatalf("no request error; outcomes %+v", out)
			case !tc.request && err != nil:
				t.Fatalf("request error %v, want an outcome error", err)
			case !tc.request:
				if len(out) != 1 || out[0].Err == nil {
					t.Fatalf("outcomes %+v, want one with an error", out)
				}
				err = out[0].Err
			}
			checkErr(t, err, tc.is, tc.isNot, tc.contains)
			if tc.check != nil {
				tc.check(t, err)
			}
			if errors.Is(err, reconcile.ErrUnavailable) != tc.unavailable {
				t.Errorf("%v: ErrUnavailable is %v, want %v", err, !tc.unavailable, tc.unavailable)
			}
			if got, want := opts.Meter.Snapshot()[reconcile.SystemOpenApp], max(tc.requests, 1); got.Writes != want {
				t.Errorf("meter %+v, want %d writes", got, want)
			}
		})
	}
}

func checkErr(t *testing.T, err error, is, isNot []error, contains []string) {
	t.Helper()
	adaptertest.Wraps(t, err, is, isNot)
	adaptertest.Mentions(t, err, contains...)
	if msg := err.Error(); !strings.HasPrefix(msg, "openapp") {
		t.Errorf("error %q does not name openapp", msg)
	}
	adaptertest.NoSecrets(t, err, canaryKey, canaryToken)
}

func retryAfter(want time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		adaptertest.RateLimited(t, err, reconcile.SystemOpenApp, want)
	}
}

// TestSinkTransportErrors covers requests that get no HTTP answer.
func TestSinkTransportErrors(t *testing.T) {
	t.Parallel()
	// Nothing listens: the request never left, so the outcome is known.
	closed := adaptertest.ClosedURL(t)
	opts := options(closed)
	_, err := applyErr(newSink(t, opts), action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", ""))
	if err == nil {
		t.Fatal("no error")
	}
	checkErr(t, err, []error{reconcile.ErrUnavailable}, []error{reconcile.ErrUnknownOutcome}, []string{"dial"})
	if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != 1 {
		t.Errorf("meter %+v: a create was tried again", got)
	}
	if strings.Contains(err.Error(), closed) {
		t.Errorf("error quotes the URL: %v", err)
	}

	// A server that never answers: the client gives up after sending, and
	// the disable (a PUT) is tried again, Retry.Attempts times in all.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-hang
	}))
	defer srv.Close()
	defer close(hang)
	opts = options(srv.URL)
	opts.HTTP = &http.Client{Timeout: 50 * time.Millisecond}
	_, err = applyErr(newSink(t, opts), action(reconcile.OpDisable, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1"))
	if err == nil {
		t.Fatal("no error")
	}
	checkErr(t, err, []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable}, nil, []string{"no answer"})
	if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != 4 {
		t.Errorf("meter %+v, want 4 writes", got)
	}
}

// TestNumericLinkIDs: the OpenApp document shows invite_link_id only by
// name, never its JSON type; a server that numbers its invites answers a
// create, and lists them, with integers (the key box's and Guestway's ids
// are read either way). The create is done, its id recorded as the
// number's text, and the list reads back the same id.
func TestNumericLinkIDs(t *testing.T) {
	t.Parallel()
	a := createOp()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", jsonCT)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"invite_token":"`+canaryToken+`","invite_link_id":12345}`)
			return
		}
		name, _ := json.Marshal("Guest " + openapp.OwnerTag(a.Stay))
		_, _ = io.WriteString(w, `{"data":[{"invite_link_id":12345,"invite_token":"`+canaryToken+`","name":`+string(name)+
			`,"portal_ids":["door-101"],"valid_from":"2026-06-01T13:00:00Z","valid_to":"2026-06-05T09:00:00Z","is_enabled":true}],"has_more":false}`)
	}))
	defer srv.Close()
	s := newSink(t, options(srv.URL))
	out, err := s.Apply(context.Background(), []*reconcile.Action{a})
	if err != nil || len(out) != 1 || out[0].Err != nil || out[0].RemoteID != "12345" || out[0].Secret.Reveal() != canaryToken {
		t.Fatalf("create answered with a numeric invite_link_id: %+v, %v; want done, id 12345", out, err)
	}
	id, _, found, err := s.Find(context.Background(), a.Cred)
	if err != nil || !found || id != "12345" {
		t.Errorf("Find in a list of numeric ids = %q, %v, %v; want 12345 found", id, found, err)
	}
}
