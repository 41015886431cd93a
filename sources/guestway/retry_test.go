package guestway_test

import (
	"context"
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
	tests := []adaptertest.Retry[struct{}]{
		{
			Name:     "list answered 503 twice, then 200",
			Steps:    []http.HandlerFunc{unavailable, unavailable, empty},
			Requests: 3, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			Name:     "list answered 500, then 200, through a pacer",
			Steps:    []http.HandlerFunc{reply(500, jsonCT, echo), empty},
			Paced:    true,
			Requests: 2, Sleeps: []time.Duration{250 * time.Millisecond},
		},
		adaptertest.WaitTooLong(struct{}{}, empty, reconcile.ErrUnavailable),
		{
			Name:     "list always 503",
			Steps:    []http.HandlerFunc{unavailable},
			Requests: 4, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			Is: []error{reconcile.ErrUnavailable}, IsNot: []error{reconcile.ErrUnknownOutcome},
		},
		{
			Name:     "list always 502, two attempts",
			Steps:    []http.HandlerFunc{reply(502, "", "")},
			Attempts: 2,
			Requests: 2, Sleeps: []time.Duration{250 * time.Millisecond},
			Is: []error{reconcile.ErrUnavailable},
		},
		{
			Name:     "list answered 200 as HTML is not retried",
			Steps:    []http.HandlerFunc{reply(200, "text/html", "<html>login</html>"), empty},
			Requests: 1, Sleeps: []time.Duration{},
			IsNot: []error{reconcile.ErrUnavailable},
		},
		{
			Name: "list cut off mid-body is not retried",
			Steps: []http.HandlerFunc{func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", jsonCT)
				w.Header().Set("Content-Length", "500")
				_, _ = io.WriteString(w, `{"data":[`)
			}, empty},
			Requests: 1, Sleeps: []time.Duration{},
			IsNot: []error{reconcile.ErrUnavailable},
		},
		{
			Name:     "list answered malformed JSON is not retried",
			Steps:    []http.HandlerFunc{jsonReply(`{"data":[`), empty},
			Requests: 1, Sleeps: []time.Duration{},
			IsNot: []error{reconcile.ErrUnavailable},
		},
		{
			Name:     "list answered 401 is not retried",
			Steps:    []http.HandlerFunc{reply(401, jsonCT, `{}`), empty},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnauthorized}, IsNot: []error{reconcile.ErrUnavailable},
		},
		{
			// The first page refused is asked for once more without
			// per_page (the document names no page size), not retried.
			Name: "list answered 400 is not retried",
			Steps: []http.HandlerFunc{reply(400, jsonCT, `{}`), func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Has("per_page") {
					t.Errorf("the list was asked again with per_page: %s", r.URL.RawQuery)
				}
				reply(400, jsonCT, `{}`)(w, r)
			}, empty},
			Requests: 2, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrRejected}, IsNot: []error{reconcile.ErrUnavailable},
		},
	}
	tests = append(tests, adaptertest.Waits(struct{}{}, empty, "200")...)
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			srv := tc.Serve(t, t0)
			meter := &reconcile.Meter{Clock: srv.Clock}
			src := newSource(t, srv.URL, func(o *guestway.Options) {
				o.Meter, o.Retry, o.Pacer = meter, tc.Retry(srv), tc.Pacer(srv)
			})
			_, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))

			if n, got := len(srv.Script.Times()), meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != n || got.Writes != 0 {
				t.Errorf("meter %+v, want %d reads: every attempt counts", got, n)
			}
			if !tc.Check(t, srv, err) {
				return
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
	clk := clocktest.New(t0)
	meter := &reconcile.Meter{}
	_, err := newSource(t, adaptertest.ClosedURL(t), func(o *guestway.Options) {
		o.Meter, o.Retry = meter, retryOn(clk)
	}).StaysByID(context.Background(), []string{"R1"})
	if !errors.Is(err, reconcile.ErrUnavailable) || !strings.Contains(err.Error(), "get reservation R1: no answer") {
		t.Errorf("refused connection: %v", err)
	}
	if got := meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != 4 || len(clk.Sleeps()) != 3 {
		t.Errorf("meter %+v, sleeps %v: want 4 attempts and 3 backoffs", got, clk.Sleeps())
	}
}
