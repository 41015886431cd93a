package openapp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestSinkRetry checks the retry policy on a fake clock: 429s are waited
// out (a create included: it was refused, not run), a PUT or DELETE is
// retried after an outage with backoff, a create never, and an answer that
// cannot be read is not an outage.
func TestSinkRetry(t *testing.T) {
	t.Parallel()
	created := reply(201, jsonCT, `{"invite_token":"`+canaryToken+`","invite_link_id":"inv_1"}`)
	unavailable := reply(503, "text/html", "<html>down</html>")
	createOp := func() *reconcile.Action {
		return action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	}
	deleteOp := func() *reconcile.Action {
		return action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")
	}
	disableOp := func() *reconcile.Action {
		return action(reconcile.OpDisable, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")
	}
	tests := []struct {
		name     string
		action   *reconcile.Action
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
			name: "delete answered 503 twice, then 204", action: deleteOp(),
			steps:    []http.HandlerFunc{unavailable, unavailable, reply(204, "", "")},
			requests: 3, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			name: "create answered 503 is sent once", action: createOp(),
			steps:    []http.HandlerFunc{unavailable, created},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable},
		},
		{
			name: "429 with Retry-After 2, then 201", action: createOp(),
			steps:    []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "2"), created},
			requests: 2, minGap: 2 * time.Second, sleeps: []time.Duration{2 * time.Second},
		},
		{
			name: "429 with Retry-After 2, then 201, through a pacer", action: createOp(), pacer: true,
			steps:    []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "2"), created},
			requests: 2, minGap: 2 * time.Second,
		},
		{
			name: "429 with Retry-After 86400 is not waited out", action: deleteOp(),
			steps:    []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "86400"), reply(204, "", "")},
			requests: 1, sleeps: []time.Duration{},
			is: []error{httpapi.ErrWaitTooLong}, isNot: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			name: "delete always 503", action: deleteOp(), steps: []http.HandlerFunc{unavailable},
			requests: 4, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			is: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			name: "disable always 503, two attempts", action: disableOp(), steps: []http.HandlerFunc{unavailable}, attempts: 2,
			requests: 2, sleeps: []time.Duration{250 * time.Millisecond},
			is: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			name: "disable answered 200 as HTML is not retried", action: disableOp(),
			steps:    []http.HandlerFunc{reply(200, "text/html", "<html>login</html>"), reply(200, jsonCT, `{}`)},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnknownOutcome}, isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name: "delete answered 404 is not retried", action: deleteOp(),
			steps:    []http.HandlerFunc{reply(404, jsonCT, `{"error":"gone"}`), reply(204, "", "")},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrNotFound}, isNot: []error{reconcile.ErrUnavailable},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			sc := &fault.Script{Now: clk.Now, Steps: tc.steps}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			opts := options(srv.URL)
			opts.Retry = retryOn(clk)
			opts.Retry.Attempts = tc.attempts
			opts.Now = clk.Now
			if tc.pacer {
				opts.Pacer = httpapi.NewPacer(10, 10, clk)
			}
			_, err := applyErr(newSink(t, opts), tc.action)

			times := sc.Times()
			if len(times) != tc.requests {
				t.Errorf("%d requests, want %d", len(times), tc.requests)
			}
			if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != len(times) {
				t.Errorf("meter %+v, want %d writes: every attempt counts", got, len(times))
			}
			if tc.sleeps != nil && !slices.Equal(clk.Sleeps(), tc.sleeps) {
				t.Errorf("fake clock slept %v, want %v", clk.Sleeps(), tc.sleeps)
			}
			if tc.minGap > 0 && len(times) >= 2 && times[1].Sub(times[0]) < tc.minGap {
				t.Errorf("second request %s after the first, want at least %s", times[1].Sub(times[0]), tc.minGap)
			}
			if tc.is == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			checkErr(t, err, tc.is, tc.isNot, nil)
		})
	}
}

// TestSinkRetryStopsWithTheContext checks a run cancelled during an outage
// neither waits out the backoff nor tries again.
func TestSinkRetryStopsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktest.New(t0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	opts := options(srv.URL)
	opts.Retry = retryOn(clk)
	_, err := newSink(t, opts).Apply(ctx, []*reconcile.Action{action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")})
	if err == nil {
		t.Fatal("no error")
	}
	if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != 1 {
		t.Errorf("meter %+v: retried after the context was cancelled", got)
	}
	if errors.Is(err, httpapi.ErrWaitTooLong) || len(clk.Sleeps()) != 0 {
		t.Errorf("err %v, sleeps %v", err, clk.Sleeps())
	}
}
