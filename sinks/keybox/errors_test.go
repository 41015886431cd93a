package keybox_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/keybox"
)

// answer is a canned answer.
var answer = adaptertest.Reply

const jsonCT = adaptertest.JSON

// leaky is a message that quotes every canary.
const leaky = "visitorName: rejected for keysync/" + ourPass + " compartment " + compA + " code " + canaryCode

// TestErrorMapping runs Apply against canned answers and checks each maps to
// the right condition, at the right level, without a secret in its text.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		cancel  bool // a cancel instead of a create
		handler http.HandlerFunc
		// whole: the error is the request's (Apply's err), not the outcome's.
		whole    bool
		is       error // nil: no error at all
		retry    time.Duration
		contains string
		remoteID string
		code     string
		// unavailable: the error wraps reconcile.ErrUnavailable (a 5xx or
		// no answer), which alone makes a cancel retried.
		unavailable bool
		requests    int // sent, retries included; 0 means 1
	}{
		{name: "401", handler: answer(401, jsonCT, `{"message":"`+leaky+`"}`), whole: true, is: reconcile.ErrUnauthorized, contains: "HTTP Basic"},
		{name: "403", handler: answer(403, jsonCT, `{"message":"`+leaky+`"}`), whole: true, is: reconcile.ErrUnauthorized, contains: "permission"},
		{name: "404 create", handler: answer(404, jsonCT, `{"message":"key.id: no key"}`), is: reconcile.ErrNotFound, contains: "key.id: no key"},
		{name: "404 cancel", cancel: true, handler: answer(404, jsonCT, `{"message":"access not found"}`), is: reconcile.ErrNotFound, contains: "access not found"},
		{name: "404 cancel, HTML", cancel: true, handler: answer(404, "text/html", "<h1>"+leaky+"</h1>"), is: reconcile.ErrNotFound, contains: "no message"},
		{name: "410 cancel", cancel: true, handler: answer(410, "", ""), is: reconcile.ErrNotFound},
		{name: "409", handler: answer(409, jsonCT, `{"error":{"message":"key is checked out"}}`), is: reconcile.ErrConflict, contains: "key is checked out"},
		{name: "422 quoting secrets", handler: answer(422, jsonCT, `{"message":"`+leaky+`","field":"visitorName"}`), is: reconcile.ErrRejected, contains: "visitorName: rejected for keysync/[redacted]"},
		{name: "400 error string", handler: answer(400, jsonCT, `{"error":"startTime: want HH:MM on 2026-03-28"}`), is: reconcile.ErrRejected, contains: "startTime: want HH:MM on 2026-03-28"},
		{name: "400 errors list", handler: answer(400, jsonCT, `{"errors":[{"message":"a"},{"message":"b"}]}`), is: reconcile.ErrRejected, contains: "a; b"},
		{name: "400 HTML", handler: answer(400, "text/html", "<p>"+leaky+"</p>"), is: reconcile.ErrRejected, contains: "no message"},
		{name: "400 long message", handler: answer(400, jsonCT, `{"message":"`+strings.Repeat("x", 500)+`"}`), is: reconcile.ErrRejected, contains: "xxx…"},
		{name: "429 seconds", handler: answer(429, jsonCT, `{}`, "Retry-After", "7"), whole: true, retry: 7 * time.Second, requests: 4},
		{name: "429 HTTP date", handler: answer(429, jsonCT, `{}`, "Retry-After", now.Add(30*time.Second).Format(http.TimeFormat)), whole: true, retry: 30 * time.Second, requests: 4},
		{name: "429 no header", handler: answer(429, "", ""), whole: true, retry: time.Second, requests: 4},
		{name: "429 cancel, longer than the run waits", cancel: true, handler: answer(429, "", "", "Retry-After", "120"), whole: true, retry: 2 * time.Minute, is: httpapi.ErrWaitTooLong},
		{name: "500", handler: answer(500, jsonCT, `{"message":"`+leaky+`"}`), whole: true, is: reconcile.ErrUnknownOutcome, contains: "HTTP 500", unavailable: true},
		{name: "502 HTML", handler: answer(502, "text/html", "<html>"+leaky+"</html>"), whole: true, is: reconcile.ErrUnknownOutcome, unavailable: true},
		{name: "503 cancel", cancel: true, handler: answer(503, "", ""), whole: true, is: reconcile.ErrUnknownOutcome, unavailable: true, requests: 4},
		{name: "201 HTML", handler: answer(201, "text/html", "<p>"+leaky+"</p>"), whole: true, is: reconcile.ErrUnknownOutcome, contains: "not JSON"},
		{name: "201 empty", handler: answer(201, jsonCT, ""), whole: true, is: reconcile.ErrUnknownOutcome, contains: "empty"},
		{name: "201 truncated", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", jsonCT)
			w.Header().Set("Content-Length", "200")
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"id":"acc_1","code":"`+canaryCode+`"`)
		}, whole: true, is: reconcile.ErrUnknownOutcome, contains: "reading the answer"},
		{name: "201 oversized", handler: answer(201, jsonCT, `{"id":"acc_1","code":"`+canaryCode+`","pad":"`+strings.Repeat("x", 2000)+`"}`), whole: true, is: reconcile.ErrUnknownOutcome, contains: "larger than 1024 bytes"},
		{name: "201 malformed", handler: answer(201, jsonCT, `{"id":"acc_1","code":"`+canaryCode+`",,}`), whole: true, is: reconcile.ErrUnknownOutcome, contains: "malformed"},
		{name: "201 wrong type", handler: answer(201, jsonCT, `{"id":"acc_1","code":{"pin":"`+canaryCode+`"}}`), whole: true, is: reconcile.ErrUnknownOutcome, contains: "neither a string nor an integer"},
		{name: "201 id a float", handler: answer(201, jsonCT, `{"id":1.5,"code":"`+canaryCode+`"}`), whole: true, is: reconcile.ErrUnknownOutcome},
		{name: "201 no id", handler: answer(201, jsonCT, `{"code":"`+canaryCode+`"}`), whole: true, is: reconcile.ErrUnknownOutcome, contains: "no access id"},
		{name: "201 array", handler: answer(201, jsonCT, `[{"id":"acc_1"}]`), whole: true, is: reconcile.ErrUnknownOutcome},
		{name: "201 strings", handler: answer(201, "application/json; charset=utf-8", `{"id":"acc_9","code":"012345","status":"upcoming"}`), remoteID: "acc_9", code: "012345"},
		{name: "201 numbers", handler: answer(201, jsonCT, `{"id":42,"code":`+canaryCode+`}`), remoteID: "42", code: canaryCode},
		{name: "200 vendor JSON type", handler: answer(200, "application/vnd.keybox+json", `{"id":"acc_9","code":"1234"}`), remoteID: "acc_9", code: "1234"},
		{name: "201 no code: recorded anyway", handler: answer(201, jsonCT, `{"id":"acc_9"}`), remoteID: "acc_9"},
		// The document shows the answer bare; one wrapped is read the same.
		{name: "201 wrapped in access", handler: answer(201, jsonCT, `{"access":{"id":"acc_9","code":"012345"}}`), remoteID: "acc_9", code: "012345"},
		{name: "201 wrapped in data", handler: answer(201, jsonCT, `{"data":{"id":77,"bookingCode":"012345"}}`), remoteID: "77", code: "012345"},
		{name: "204 cancel", cancel: true, handler: answer(204, "", "")},
		{name: "200 cancel with a body", cancel: true, handler: answer(200, "text/plain", "cancelled "+canaryCode)},
		{name: "301", handler: answer(301, "", "", "Location", "https://elsewhere.example/v2/accesses"), whole: true, contains: "redirects"},
		{name: "405", cancel: true, handler: answer(405, "", "", "Allow", "POST"), whole: true, contains: "unexpected HTTP 405"},
		{name: "hang-up after the request", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, whole: true, is: reconcile.ErrUnknownOutcome, contains: "no answer", unavailable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu         sync.Mutex
				seen       int
				user, pass string
				body       string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				seen, body = seen+1, string(b)
				user, pass, _ = r.BasicAuth()
				mu.Unlock()
				r.Body = io.NopCloser(strings.NewReader(string(b)))
				tc.handler(w, r)
			}))
			defer srv.Close()
			opts := options(srv.URL, lj)
			opts.MaxResponseBytes = 1024
			opts.Now = func() time.Time { return now }
			s := newSink(t, opts)
			a := create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana")
			if tc.cancel {
				a = cancel("s1", "acc_1")
			}
			out, err := s.Apply(t.Context(), []*reconcile.Action{a})

			mu.Lock()
			if want := max(tc.requests, 1); seen != want {
				t.Errorf("%d requests reached the server, want %d", seen, want)
			}
			if user != ourUser || pass != ourPass {
				t.Errorf("Basic auth %q/%q", user, pass)
			}
			if strings.Contains(body, compA) {
				t.Errorf("body sends the compartment: %s", body)
			}
			mu.Unlock()

			var e error
			switch {
			case err != nil:
				if !tc.whole {
					t.Fatalf("request-level error %v, want an outcome error", err)
				}
				e = err
			case tc.whole:
				t.Fatalf("no request-level error; outcomes %+v", out)
			case len(out) != 1:
				t.Fatalf("%d outcomes", len(out))
			default:
				e = out[0].Err
				if out[0].RemoteID != tc.remoteID || out[0].Secret.Reveal() != tc.code {
					t.Errorf("outcome %q/%q, want %q/%q", out[0].RemoteID, out[0].Secret.Reveal(), tc.remoteID, tc.code)
				}
			}

			wantErr := tc.is != nil || tc.retry > 0 || tc.contains != ""
			if !wantErr {
				if e != nil {
					t.Fatalf("error %v, want none", e)
				}
				return
			}
			if e == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(e, tc.is) {
				t.Errorf("%v: not %v", e, tc.is)
			}
			if errors.Is(e, reconcile.ErrUnavailable) != tc.unavailable {
				t.Errorf("%v: ErrUnavailable is %v, want %v", e, !tc.unavailable, tc.unavailable)
			}
			var rl *httpapi.RateLimitedError
			if errors.As(e, &rl) != (tc.retry > 0) || tc.retry > 0 && (rl.RetryAfter != tc.retry || rl.System != reconcile.SystemKeyBox) {
				t.Errorf("%v: rate limited %+v, want retry after %s", e, rl, tc.retry)
			}
			for _, other := range []error{reconcile.ErrUnauthorized, reconcile.ErrNotFound, reconcile.ErrConflict, reconcile.ErrRejected, reconcile.ErrUnknownOutcome} {
				if other != tc.is && errors.Is(e, other) {
					t.Errorf("%v: also %v", e, other)
				}
			}
			msg := e.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.contains) {
				t.Errorf("%q does not mention %q", msg, tc.contains)
			}
			if !strings.HasPrefix(msg, "keybox "+property+": ") {
				t.Errorf("%q does not name the system and property", msg)
			}
			for _, canary := range []string{ourPass, compA, compB, canaryCode, "<"} {
				if strings.Contains(msg, canary) {
					t.Errorf("error shows %q: %s", canary, msg)
				}
			}
		})
	}
}

func TestDialFailure(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s := newSink(t, options(url, lj))
	_, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana")})
	if err == nil || errors.Is(err, reconcile.ErrUnknownOutcome) || !errors.Is(err, reconcile.ErrUnavailable) || !strings.Contains(err.Error(), "dial") {
		t.Errorf("dial failure: %v", err)
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("error quotes the URL: %v", err)
	}
}

// TestErrorsKeepIds: access and key ids are not secrets and an operator
// needs them, even when they are runs of digits like an access code. The
// numbers the request itself carried (the access id in the cancel path, the
// key id in the create) stay in a quoted server message; a number the
// request did not carry is masked, as it might be a code.
func TestErrorsKeepIds(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", jsonCT)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"message":"key 48213 is checked out; code `+canaryCode+` in use"}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"access 73920461 not found"}`)
	}))
	defer srv.Close()
	opts := options(srv.URL, lj)
	opts.Rooms = map[string]keybox.KeyRef{"204": {ID: "48213", Compartment: compA}}
	s := newSink(t, opts)
	var out []reconcile.Outcome
	for _, a := range []*reconcile.Action{
		cancel("s1", "73920461"),
		create("s2", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana"),
	} {
		o, err := s.Apply(t.Context(), []*reconcile.Action{a})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o...)
	}
	if e := out[0].Err; e == nil || !strings.Contains(e.Error(), "access 73920461 not found") {
		t.Errorf("cancel: err = %v, want the server's message with the access id", e)
	}
	e := out[1].Err
	if e == nil || !strings.Contains(e.Error(), "key 48213 is checked out") {
		t.Errorf("create: err = %v, want the server's message with the key id", e)
	}
	if e != nil && strings.Contains(e.Error(), canaryCode) {
		t.Errorf("create: err = %v quotes a code the request did not carry", e)
	}
}

// TestCancelRefusalKeepsTheCodeOut: the key-box document says nothing of
// what its codes look like (the sandbox's are digits, which every message
// has masked); a box whose codes hold letters, quoting the code of the
// access a cancel concerns in its refusal, must not put that code in the
// error, which reaches the report and the logs.
func TestCancelRefusalKeepsTheCodeOut(t *testing.T) {
	t.Parallel()
	const code = "KX7P2Q"
	srv := httptest.NewServer(answer(409, jsonCT, `{"message":"access acc_1 (code `+code+`) has already started and cannot be cancelled"}`))
	defer srv.Close()
	s := newSink(t, options(srv.URL, lj))
	a := cancel("s1", "acc_1")
	a.Cred.Secret = code
	out := apply(t, s, a)
	if err := out.Err; err == nil || !errors.Is(err, reconcile.ErrConflict) || !strings.Contains(err.Error(), "acc_1") {
		t.Fatalf("cancel refused 409: err = %v, want ErrConflict naming the access", err)
	}
	if err := out.Err.Error(); strings.Contains(err, code) {
		t.Errorf("the access's code is in the error: %s", err)
	}
}

// TestCancelNotFoundWhenTheListFails: a cancel answered 404 is done only
// when the list does not show the access live (a box without the cancel
// call answers 404 while the access lives on). When that list cannot be
// read (a 5xx, no answer), nothing shows the access gone: the cancel is
// not done, and the next run tries again, instead of recording the access
// cancelled while it may open the box for good.
func TestCancelNotFoundWhenTheListFails(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	lists := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			lists++
			mu.Unlock()
			answer(503, "", "")(w, r)
			return
		}
		answer(404, jsonCT, `{"message":"not found"}`)(w, r)
	}))
	defer srv.Close()
	s := newSink(t, options(srv.URL, lj))
	a := cancel("s1", "acc_1")
	a.RoomID, a.Cred.RoomID = "204", "204"
	out, err := s.Apply(t.Context(), []*reconcile.Action{a})
	if err == nil && len(out) == 1 {
		err = out[0].Err
	}
	mu.Lock()
	defer mu.Unlock()
	if lists == 0 {
		t.Fatalf("the cancel answered 404 did not look at the list: %v", err)
	}
	if err == nil || errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("cancel answered 404 with the list unreadable: %v; want a failure that is not \"already gone\" (the access may be live)", err)
	}
}
