package openapp_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
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
	tests := []adaptertest.Retry[*reconcile.Action]{
		{
			Name: "delete answered 503 twice, then 204", Arg: deleteOp(),
			Steps:    []http.HandlerFunc{unavailable, unavailable, reply(204, "", "")},
			Requests: 3, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			Name: "create answered 503 is sent once", Arg: createOp(),
			Steps:    []http.HandlerFunc{unavailable, created},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable},
		},
		adaptertest.WaitTooLong(deleteOp(), reply(204, "", ""), reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome),
		{
			Name: "delete always 503", Arg: deleteOp(), Steps: []http.HandlerFunc{unavailable},
			Requests: 4, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			Is: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			Name: "disable always 503, two attempts", Arg: disableOp(), Steps: []http.HandlerFunc{unavailable}, Attempts: 2,
			Requests: 2, Sleeps: []time.Duration{250 * time.Millisecond},
			Is: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			Name: "disable answered 200 as HTML is not retried", Arg: disableOp(),
			Steps:    []http.HandlerFunc{reply(200, "text/html", "<html>login</html>"), reply(200, jsonCT, `{}`)},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnknownOutcome}, IsNot: []error{reconcile.ErrUnavailable},
		},
		{
			Name: "delete answered 404 is not retried", Arg: deleteOp(),
			Steps:    []http.HandlerFunc{reply(404, jsonCT, `{"error":"gone"}`), reply(204, "", "")},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrNotFound}, IsNot: []error{reconcile.ErrUnavailable},
		},
	}
	tests = append(tests, adaptertest.Waits(createOp(), created, "201")...)
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			srv := tc.Serve(t, t0)
			opts := options(srv.URL)
			opts.Retry, opts.Pacer, opts.Now = tc.Retry(srv), tc.Pacer(srv), srv.Clock.Now
			_, err := applyErr(newSink(t, opts), tc.Arg)

			if n, got := len(srv.Script.Times()), opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != n {
				t.Errorf("meter %+v, want %d writes: every attempt counts", got, n)
			}
			if tc.Check(t, srv, err) {
				checkErr(t, err, nil, nil, nil) // names openapp, shows no secret
			}
		})
	}
}

// TestSinkRetryStopsWithTheContext checks a run cancelled during an outage
// neither waits out the backoff nor tries again.
func TestSinkRetryStopsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, url := adaptertest.OutageCancels(t)
	clk := clocktest.New(t0)
	opts := options(url)
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
