package guestway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/sources/guestway"
)

// TestRetry checks the retry policy on a fake clock: every call is a GET,
// so a 5xx is retried with backoff up to Retry.Attempts, a 429 is waited
// out unless its Retry-After is longer than the run waits, and an answer
// that cannot be read or a refusal is not retried.
func TestRetry(t *testing.T) {
	t.Parallel()
	const jsonCT = "application/json"
	empty := jsonReply(listPage(1, false))
	unavailable := reply(503, "text/html", "<html>down</html>")
	tests := []struct {
		name     string
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
			name:     "list answered 503 twice, then 200",
			steps:    []http.HandlerFunc{unavailable, unavailable, empty},
			requests: 3, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			name:     "list answered 500, then 200, through a pacer",
			steps:    []http.HandlerFunc{reply(500, jsonCT, echo), empty},
			pacer:    true,
			requests: 2, sleeps: []time.Duration{250 * time.Millisecond},
		},
		{
			name:     "429 with Retry-After 2, then 200",
			steps:    []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "2"), empty},
			requests: 2, minGap: 2 * time.Second, sleeps: []time.Duration{2 * time.Second},
		},
		{
			name:     "429 with Retry-After 2, then 200, through a pacer",
			steps:    []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "2"), empty},
			pacer:    true,
			requests: 2, minGap: 2 * time.Second,
		},
		{
			name:     "429 with Retry-After 86400 is not waited out",
			steps:    []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "86400"), empty},
			requests: 1, sleeps: []time.Duration{},
			is: []error{httpapi.ErrWaitTooLong}, isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name:     "list always 503",
			steps:    []http.HandlerFunc{unavailable},
			requests: 4, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			is: []error{reconcile.ErrUnavailable}, isNot: []error{reconcile.ErrUnknownOutcome},
		},
		{
			name:     "list always 502, two attempts",
			steps:    []http.HandlerFunc{reply(502, "", "")},
			attempts: 2,
			requests: 2, sleeps: []time.Duration{250 * time.Millisecond},
			is: []error{reconcile.ErrUnavailable},
		},
		{
			name:     "list answered 200 as HTML is not retried",
			steps:    []http.HandlerFunc{reply(200, "text/html", "<html>login</html>"), empty},
			requests: 1, sleeps: []time.Duration{},
			isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name: "list cut off mid-body is not retried",
			steps: []http.HandlerFunc{func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", jsonCT)
				w.Header().Set("Content-Length", "500")
				_, _ = io.WriteString(w, `{"data":[`)
			}, empty},
			requests: 1, sleeps: []time.Duration{},
			isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name:     "list answered malformed JSON is not retried",
			steps:    []http.HandlerFunc{jsonReply(`{"data":[`), empty},
			requests: 1, sleeps: []time.Duration{},
			isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name:     "list answered 401 is not retried",
			steps:    []http.HandlerFunc{reply(401, jsonCT, `{}`), empty},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrUnauthorized}, isNot: []error{reconcile.ErrUnavailable},
		},
		{
			name:     "list answered 400 is not retried",
			steps:    []http.HandlerFunc{reply(400, jsonCT, `{}`), empty},
			requests: 1, sleeps: []time.Duration{},
			is: []error{reconcile.ErrRejected}, isNot: []error{reconcile.ErrUnavailable},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			sc := &fault.Script{Now: clk.Now, Steps: tc.steps}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			meter := &reconcile.Meter{Clock: clk}
			src := newSource(t, srv.URL, func(o *guestway.Options) {
				o.Meter, o.Retry = meter, retryOn(clk)
				o.Retry.Attempts = tc.attempts
				if tc.pacer {
					o.Pacer = httpapi.NewPacer(10, 10, clk)
				}
			})
			_, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))

			times := sc.Times()
			if len(times) != tc.requests {
				t.Errorf("%d requests, want %d", len(times), tc.requests)
			}
			if got := meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != len(times) || got.Writes != 0 {
				t.Errorf("meter %+v, want %d reads: every attempt counts", got, len(times))
			}
			if tc.sleeps != nil && !slices.Equal(clk.Sleeps(), tc.sleeps) {
				t.Errorf("fake clock slept %v, want %v", clk.Sleeps(), tc.sleeps)
			}
			if tc.minGap > 0 && len(times) >= 2 && times[1].Sub(times[0]) < tc.minGap {
				t.Errorf("second request %s after the first, want at least %s", times[1].Sub(times[0]), tc.minGap)
			}
			if tc.is == nil && tc.isNot == nil {
				if err != nil {
					t.Fatalf("Stays: %v", err)
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
			var ge *guestway.Error
			if !errors.As(err, &ge) || !strings.HasPrefix(err.Error(), "guestway: list reservations page 1: ") {
				t.Errorf("not a *guestway.Error naming the call: %v", err)
			}
			secretFree(t, err)
		})
	}
}

// TestRetryConcurrentAccesses retries one reservation's accesses after a
// 503 while the others are read alongside it, through one shared pacer.
func TestRetryConcurrentAccesses(t *testing.T) {
	t.Parallel()
	clk := clocktest.New(t0)
	var mu sync.Mutex
	failed := map[string]bool{}
	srv := httptest.NewServer(byPath(
		jsonReply(listPage(1, false, res("R1", "2026-01-30", "2026-02-01"), res("R2", "2026-01-30", "2026-02-01"), res("R3", "2026-01-30", "2026-02-01"))),
		func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first := r.URL.Path == "/open/v1/reservations/R2/accesses" && !failed[r.URL.Path]
			failed[r.URL.Path] = true
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			jsonReply(`{"data":[{"id":1,"lock_id":"lk","pin":"`+canaryPIN+`"}]}`)(w, r)
		}))
	defer srv.Close()
	meter := &reconcile.Meter{Clock: clk}
	src := newSource(t, srv.URL, func(o *guestway.Options) {
		o.Meter, o.Retry, o.Pacer, o.Concurrency = meter, retryOn(clk), httpapi.NewPacer(100, 10, clk), 3
	})
	stays, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stays {
		if len(st.Locks) != 1 {
			t.Errorf("%s: locks %+v", st.Ref.ID, st.Locks)
		}
	}
	if got := meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != 1+3+1 {
		t.Errorf("meter %+v, want 5 reads (one list, three accesses, one retry)", got)
	}
}

// TestRetryRefusedConnection tries a refused connection (a dial failure:
// nothing sent, and every call is a GET anyway) Retry.Attempts times.
func TestRetryRefusedConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	clk := clocktest.New(t0)
	meter := &reconcile.Meter{}
	_, err = newSource(t, "http://"+addr, func(o *guestway.Options) {
		o.Meter, o.Retry = meter, retryOn(clk)
	}).StaysByID(context.Background(), []string{"R1"})
	if !errors.Is(err, reconcile.ErrUnavailable) || !strings.Contains(err.Error(), "get reservation R1: no answer") {
		t.Errorf("refused connection: %v", err)
	}
	if got := meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != 4 || len(clk.Sleeps()) != 3 {
		t.Errorf("meter %+v, sleeps %v: want 4 attempts and 3 backoffs", got, clk.Sleeps())
	}
}
