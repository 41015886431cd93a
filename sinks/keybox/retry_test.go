package keybox_test

import (
	"cmp"
	"context"
	"errors"
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

// TestRetry checks the retry policy on a fake clock: 429s are waited out
// (a create included: it was refused, not run), a cancel is retried after
// an outage with backoff unless its method is POST, a create never is, and
// an answer that cannot be read or a refusal is not an outage.
func TestRetry(t *testing.T) {
	t.Parallel()
	created := answer(201, jsonCT, `{"id":"acc_1","code":"`+canaryCode+`"}`)
	unavailable := answer(503, "text/html", "<html>down</html>")
	cancelled := answer(204, "", "")
	mk := func() *reconcile.Action {
		return create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana")
	}
	tests := []struct {
		name     string
		cancel   bool   // a cancel instead of a create
		method   string // CancelMethod; "" is DELETE
		steps    []http.HandlerFunc
		pacer    bool // a Pacer on the fake clock, else none
		attempts int  // Retry.Attempts; 0 is the default, 4
		requests int
		sleeps   []time.Duration // the fake clock's waits, exactly; nil: not checked
		minGap   time.Duration   // between the first two requests
		is       []error         // the error wraps each; nil: success
		isNot    []error
	}{
		{
			name: "cancel answered 503 twice, then 204", cancel: true,
			steps:    []http.HandlerFunc{unavailable, unavailable, cancelled},
			requests: 3, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			name: "cancel by PATCH answered 503, then 200", cancel: true, method: "PATCH",
			steps:    []http.HandlerFunc{unavailable, answer(200, "", "")},
			requests: 2, sleeps: []time.Duration{250 * time.Millisecond},
		},
		{
			name:     "create answered 503 is sent once",
			steps:    []http.HandlerFunc{unavailable, created},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable},
		},
		{
			name: "cancel by POST answered 503 is sent once", cancel: true, method: "POST",
			steps:    []http.HandlerFunc{unavailable, cancelled},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable},
		},
		{
			name:     "429 with Retry-After 2, then 201",
			steps:    []http.HandlerFunc{answer(429, jsonCT, `{}`, "Retry-After", "2"), created},
			requests: 2, minGap: 2 * time.Second, sleeps: []time.Duration{2 * time.Second},
		},
		{
			name: "429 with Retry-After 2, then 201, through a pacer", pacer: true,
			steps:    []http.HandlerFunc{answer(429, jsonCT, `{}`, "Retry-After", "2"), created},
			requests: 2, minGap: 2 * time.Second,
		},
		{
			name:     "429 with Retry-After 86400 is not waited out",
			steps:    []http.HandlerFunc{answer(429, jsonCT, `{}`, "Retry-After", "86400"), created},
			requests: 1, sleeps: []time.Duration{},
			is: []error{httpapi.ErrWaitTooLong}, isNot: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			name: "cancel always 503", cancel: true, steps: []http.HandlerFunc{unavailable},
			requests: 4, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			is: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			name: "cancel always 502, three attempts", cancel: true, steps: []http.HandlerFunc{answer(502, "", "")}, attempts: 3,
			requests: 3, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
			is: []error{reconcile.ErrUnavailable},
		},
		{
			name:     "create answered 200 as HTML is not retried",
			steps:    []http.HandlerFunc{answer(200, "text/html", "<html>login</html>"), created},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnknownOutcome}, isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name: "cancel answered 405 is not retried", cancel: true,
			steps:    []http.HandlerFunc{answer(405, "", ""), cancelled},
			requests: 1, sleeps: []time.Duration{},
			isNot: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			name: "cancel answered 401 is not retried", cancel: true,
			steps:    []http.HandlerFunc{answer(401, "", ""), cancelled},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnauthorized}, isNot: []error{reconcile.ErrUnavailable},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			sc := &fault.Script{Now: clk.Now, Steps: tc.steps}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			opts := options(srv.URL, lj)
			opts.Meter = &reconcile.Meter{Clock: clk}
			opts.Retry = retryOn(clk)
			opts.Retry.Attempts = tc.attempts
			opts.CancelMethod = tc.method
			if tc.pacer {
				opts.Pacer = httpapi.NewPacer(10, 10, clk)
			}
			a := mk()
			if tc.cancel {
				a = cancel("s1", "acc_1")
			}
			out, err := newSink(t, opts).Apply(t.Context(), []*reconcile.Action{a})
			if err == nil && len(out) == 1 {
				err = out[0].Err
			}

			times, methods := sc.Times(), sc.Methods()
			if len(times) != tc.requests {
				t.Errorf("%d requests (%q), want %d", len(times), methods, tc.requests)
			}
			if want := cmp.Or(tc.method, "DELETE"); tc.cancel && len(methods) > 0 && methods[0] != want {
				t.Errorf("cancel sent as %s, want %s", methods[0], want)
			}
			if got := opts.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != len(times) {
				t.Errorf("meter %+v, want %d writes: every attempt counts", got, len(times))
			}
			if tc.sleeps != nil && !slices.Equal(clk.Sleeps(), tc.sleeps) {
				t.Errorf("fake clock slept %v, want %v", clk.Sleeps(), tc.sleeps)
			}
			if tc.minGap > 0 && len(times) >= 2 && times[1].Sub(times[0]) < tc.minGap {
				t.Errorf("second request %s after the first, want at least %s", times[1].Sub(times[0]), tc.minGap)
			}
			if tc.is == nil && tc.isNot == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("%v: not %v", err, want)
				}
			}
			for _, no := range tc.isNot {
				if errors.Is(err, no) {
					t.Errorf("%v: is %v", err, no)
				}
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "keybox "+property+": ") || strings.Contains(msg, canaryCode) || strings.Contains(msg, ourPass) {
				t.Errorf("error %q does not name the key box, or shows a secret", msg)
			}
		})
	}
}

// TestRetryStopsWithTheContext checks a run cancelled during an outage
// neither waits out the backoff nor tries again.
func TestRetryStopsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	clk := clocktest.New(t0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stop()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	opts := options(srv.URL, lj)
	opts.Meter = &reconcile.Meter{}
	opts.Retry = retryOn(clk)
	if _, err := newSink(t, opts).Apply(ctx, []*reconcile.Action{cancel("s1", "acc_1")}); err == nil {
		t.Fatal("no error")
	}
	if got := opts.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != 1 || len(clk.Sleeps()) != 0 {
		t.Errorf("meter %+v, sleeps %v: retried after the context was cancelled", got, clk.Sleeps())
	}
}
