// Package adaptertest holds what the tests of the HTTP adapters (the sinks
// in sinks/ and the sources in sources/) share: canned answers, the retry
// policy on a fake clock, and the retry table every adapter runs against a
// scripted server. Only tests import it.
package adaptertest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// JSON is the Content-Type of a JSON answer.
const JSON = "application/json"

// Reply returns a handler that reads the request's body, then answers
// status with body, of content type ct (none when empty), and the header
// pairs given (name, value, name, value…).
func Reply(status int, ct, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// OutageCancels starts a server that cancels the context it returns, then
// answers 503, to every request: a run stopped during an outage, which
// must neither wait out the backoff nor try again. The server closes when
// t ends.
func OutageCancels(t testing.TB) (ctx context.Context, url string) {
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		stop()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return ctx, srv.URL
}

// ClosedURL returns an http URL of a loopback port nothing listens on: a
// request to it is refused at the dial, before anything is sent.
func ClosedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// RetryOn is the default retry policy on clk with the jitter fixed at its
// middle, so that the backoffs are exact.
func RetryOn(clk *clocktest.Clock) httpapi.Retry {
	return httpapi.Retry{Clock: clk, Rand: func() float64 { return 0.5 }}
}

// Retry is one case of an adapter's retry table: what the server answers,
// request by request, and what the adapter must make of it. Arg is what
// the adapter's test sends (an action, a kind of call).
type Retry[A any] struct {
	Name     string
	Arg      A
	Steps    []http.HandlerFunc
	Paced    bool // a Pacer on the fake clock, else none
	Attempts int  // Retry.Attempts; 0 is the default, 4
	Requests int
	Sleeps   []time.Duration // the fake clock's waits, exactly; nil: not checked
	MinGap   time.Duration   // between the first two requests
	Is       []error         // the error wraps each; with IsNot nil: success
	IsNot    []error
}

// Waits are the cases of a 429 that every adapter's retry table holds:
// Retry-After 2 is waited out, directly and through a pacer, and the
// request is sent again, to be answered by then (named thenName in the
// cases' names). arg is what the adapter's test sends.
func Waits[A any](arg A, then http.HandlerFunc, thenName string) []Retry[A] {
	wait := Reply(http.StatusTooManyRequests, JSON, `{}`, "Retry-After", "2")
	return []Retry[A]{
		{
			Name: "429 with Retry-After 2, then " + thenName, Arg: arg,
			Steps:    []http.HandlerFunc{wait, then},
			Requests: 2, MinGap: 2 * time.Second, Sleeps: []time.Duration{2 * time.Second},
		},
		{
			Name: "429 with Retry-After 2, then " + thenName + ", through a pacer", Arg: arg, Paced: true,
			Steps:    []http.HandlerFunc{wait, then},
			Requests: 2, MinGap: 2 * time.Second,
		},
	}
}

// WaitTooLong is the case of a 429 with Retry-After 86400, longer than
// any run waits: it is not waited out, and the error wraps
// httpapi.ErrWaitTooLong and none of isNot. arg is what the adapter's test
// sends; then would answer the request if it were sent again.
func WaitTooLong[A any](arg A, then http.HandlerFunc, isNot ...error) Retry[A] {
	return Retry[A]{
		Name: "429 with Retry-After 86400 is not waited out", Arg: arg,
		Steps:    []http.HandlerFunc{Reply(http.StatusTooManyRequests, JSON, `{}`, "Retry-After", "86400"), then},
		Requests: 1, Sleeps: []time.Duration{},
		Is: []error{httpapi.ErrWaitTooLong}, IsNot: isNot,
	}
}

// FuzzLimits returns tr as a fuzz target's client needs it: answers
// capped at maxBytes, attempts tries per request, and the retry waits on a
// fake clock reading start, so that a retry loop shows as repeated
// requests at no cost in time. The rest of tr is kept.
func FuzzLimits(tr httpapi.Transport, maxBytes int64, attempts int, start time.Time) httpapi.Transport {
	tr.MaxResponseBytes = maxBytes
	tr.Retry = httpapi.Retry{Attempts: attempts, Clock: clocktest.New(start)}
	return tr
}

// FuzzTransport is the transport of a fuzz target's client: FuzzLimits,
// and the transport's clock a fake one reading start too.
func FuzzTransport(maxBytes int64, attempts int, start time.Time) httpapi.Transport {
	return FuzzLimits(httpapi.Transport{Now: clocktest.New(start).Now}, maxBytes, attempts, start)
}

// Scripted is a retry case's steps served over HTTP on a fake clock.
type Scripted struct {
	URL    string
	Clock  *clocktest.Clock
	Script *fault.Script
}

// Serve serves steps as a fault.Script on a fake clock reading start,
// until t ends.
func Serve(t testing.TB, start time.Time, steps ...http.HandlerFunc) *Scripted {
	clk := clocktest.New(start)
	sc := &fault.Script{Now: clk.Now, Steps: steps}
	srv := httptest.NewServer(sc)
	t.Cleanup(srv.Close)
	return &Scripted{URL: srv.URL, Clock: clk, Script: sc}
}

// Serve serves c's steps (see Serve) until t ends.
func (c Retry[A]) Serve(t testing.TB, start time.Time) *Scripted {
	return Serve(t, start, c.Steps...)
}

// Retry is the case's retry policy on s's fake clock: RetryOn with
// c.Attempts.
func (c Retry[A]) Retry(s *Scripted) httpapi.Retry {
	r := RetryOn(s.Clock)
	r.Attempts = c.Attempts
	return r
}

// Pacer is a Pacer on s's fake clock when the case asks for one, else nil.
func (c Retry[A]) Pacer(s *Scripted) *httpapi.Pacer {
	if !c.Paced {
		return nil
	}
	return httpapi.NewPacer(10, 10, s.Clock)
}

// Check checks what every adapter's retry case expects of the call that
// returned err: the number of requests, the fake clock's sleeps, the gap
// between the first two requests, and the error: none when the case
// expects success (Check then returns false), else one wrapping each of Is
// and none of IsNot (Check then returns true, for the adapter's own checks
// of err).
func (c Retry[A]) Check(t *testing.T, s *Scripted, err error) bool {
	t.Helper()
	times, methods := s.Script.Times(), s.Script.Methods()
	if len(times) != c.Requests {
		t.Errorf("%d requests (%q), want %d", len(times), methods, c.Requests)
	}
	if c.Sleeps != nil && !slices.Equal(s.Clock.Sleeps(), c.Sleeps) {
		t.Errorf("fake clock slept %v, want %v", s.Clock.Sleeps(), c.Sleeps)
	}
	if c.MinGap > 0 && len(times) >= 2 && times[1].Sub(times[0]) < c.MinGap {
		t.Errorf("second request %s after the first, want at least %s", times[1].Sub(times[0]), c.MinGap)
	}
	if c.Is == nil && c.IsNot == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return false
	}
	if err == nil {
		t.Fatal("no error")
	}
	Wraps(t, err, c.Is, c.IsNot)
	return true
}

// Wraps checks err wraps each of is and none of isNot.
func Wraps(t testing.TB, err error, is, isNot []error) {
	t.Helper()
	for _, want := range is {
		if !errors.Is(err, want) {
			t.Errorf("%v: not %v", err, want)
		}
	}
	for _, no := range isNot {
		if errors.Is(err, no) {
			t.Errorf("%v: is %v", err, no)
		}
	}
}

// Mentions checks err's text holds each of subs.
func Mentions(t testing.TB, err error, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(err.Error(), sub) {
			t.Errorf("error does not mention %q: %v", sub, err)
		}
	}
}

// NoSecrets checks err's text holds none of secrets (canaries an API
// answer echoed, credentials the adapter was given).
func NoSecrets(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the secret %q: %v", secret, err)
		}
	}
}

// Leaks checks that the text of each of errs starts with prefix, the
// adapter's system (what, when not empty, names the call in the failure),
// and returns the texts that hold any of secrets, for a fuzz check to
// tell a known fault from a new one.
func Leaks(t testing.TB, what string, errs []error, prefix string, secrets ...string) []string {
	t.Helper()
	if what != "" {
		what += ": "
	}
	var leaks []string
	for _, e := range errs {
		msg := e.Error()
		if !strings.HasPrefix(msg, prefix) {
			t.Errorf("%serror does not name the system: %q", what, msg)
		}
		if slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(msg, s) }) {
			leaks = append(leaks, msg)
		}
	}
	return leaks
}

// Leaked ends a fuzz check whose errors hold a secret (leaks, from Leaks;
// nothing is checked when there are none or the test has failed already):
// where the answer was not HTTP at all (status 0), net/http's error quotes
// the line it could not read, and the test stops on transportBug, which
// names the adapter's known fault and the test that shows it; else the
// leak is a new one and fails the test.
func Leaked(t testing.TB, status int, leaks []string, transportBug string) {
	t.Helper()
	if t.Failed() || len(leaks) == 0 {
		return
	}
	if status == 0 {
		t.Fatal(transportBug)
	}
	t.Errorf("error holds a secret: %q", leaks)
}

// RateLimited checks err is an *httpapi.RateLimitedError of system asking
// for a wait of retryAfter; the test stops when it is none at all.
func RateLimited(t testing.TB, err error, system reconcile.System, retryAfter time.Duration) {
	t.Helper()
	var rl *httpapi.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("err = %v (%T), want a *httpapi.RateLimitedError", err, err)
	}
	if rl.System != system || rl.RetryAfter != retryAfter {
		t.Errorf("RateLimitedError %+v, want %s and %s", *rl, system, retryAfter)
	}
}

// Must returns v, failing the test when err (from building v) is not nil:
// adaptertest.Must(t, keybox.New(opts)) does not compile, so a test calls
// Must(keybox.New(opts))(t).
func Must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%v", err)
		}
		return v
	}
}

// Day parses a YYYY-MM-DD date, failing the test if it does not parse.
func Day(t testing.TB, s string) reconcile.Date {
	t.Helper()
	d, err := reconcile.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// StayIDs returns the source ids of stays, in order.
func StayIDs(stays []reconcile.Stay) []string {
	ids := make([]string, len(stays))
	for i, st := range stays {
		ids[i] = st.Ref.ID
	}
	return ids
}
