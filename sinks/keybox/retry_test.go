package keybox_test

import (
	"cmp"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
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
	tests := []adaptertest.Retry[kbCall]{
		{
			Name: "cancel answered 503 twice, then 204", Arg: kbCall{cancel: true},
			Steps:    []http.HandlerFunc{unavailable, unavailable, cancelled},
			Requests: 3, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			Name: "cancel by PATCH answered 503, then 200", Arg: kbCall{cancel: true, method: "PATCH"},
			Steps:    []http.HandlerFunc{unavailable, answer(200, "", "")},
			Requests: 2, Sleeps: []time.Duration{250 * time.Millisecond},
		},
		{
			Name:     "create answered 503 is sent once",
			Steps:    []http.HandlerFunc{unavailable, created},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable},
		},
		{
			Name: "cancel by POST answered 503 is sent once", Arg: kbCall{cancel: true, method: "POST"},
			Steps:    []http.HandlerFunc{unavailable, cancelled},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable},
		},
		adaptertest.WaitTooLong(kbCall{}, created, reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome),
		{
			Name: "cancel always 503", Arg: kbCall{cancel: true}, Steps: []http.HandlerFunc{unavailable},
			Requests: 4, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			Is: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			Name: "cancel always 502, three attempts", Arg: kbCall{cancel: true}, Steps: []http.HandlerFunc{answer(502, "", "")}, Attempts: 3,
			Requests: 3, Sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
			Is: []error{reconcile.ErrUnavailable},
		},
		{
			Name:     "create answered 200 as HTML is not retried",
			Steps:    []http.HandlerFunc{answer(200, "text/html", "<html>login</html>"), created},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnknownOutcome}, IsNot: []error{reconcile.ErrUnavailable},
		},
		{
			Name: "cancel answered 405 is not retried", Arg: kbCall{cancel: true},
			Steps:    []http.HandlerFunc{answer(405, "", ""), cancelled},
			Requests: 1, Sleeps: []time.Duration{},
			IsNot: []error{reconcile.ErrUnavailable, reconcile.ErrUnknownOutcome},
		},
		{
			Name: "cancel answered 401 is not retried", Arg: kbCall{cancel: true},
			Steps:    []http.HandlerFunc{answer(401, "", ""), cancelled},
			Requests: 1, Sleeps: []time.Duration{},
			Is: []error{reconcile.ErrUnauthorized}, IsNot: []error{reconcile.ErrUnavailable},
		},
	}
	tests = append(tests, adaptertest.Waits(kbCall{}, created, "201")...)
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			srv := tc.Serve(t, t0)
			opts := options(srv.URL, lj)
			opts.Meter = &reconcile.Meter{Clock: srv.Clock}
			opts.Retry, opts.Pacer = tc.Retry(srv), tc.Pacer(srv)
			opts.CancelMethod = tc.Arg.method
			a := mk()
			if tc.Arg.cancel {
				a = cancel("s1", "acc_1")
			}
			out, err := newSink(t, opts).Apply(t.Context(), []*reconcile.Action{a})
			if err == nil && len(out) == 1 {
				err = out[0].Err
			}

			methods := srv.Script.Methods()
			if want := cmp.Or(tc.Arg.method, "DELETE"); tc.Arg.cancel && len(methods) > 0 && methods[0] != want {
				t.Errorf("cancel sent as %s, want %s", methods[0], want)
			}
			if got := opts.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != len(methods) {
				t.Errorf("meter %+v, want %d writes: every attempt counts", got, len(methods))
			}
			if !tc.Check(t, srv, err) {
				return
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "keybox "+property+": ") || strings.Contains(msg, canaryCode) || strings.Contains(msg, ourPass) {
				t.Errorf("error %q does not name the key box, or shows a secret", msg)
			}
		})
	}
}

// kbCall is what a retry case sends: a create, or a cancel by method ("" is
// DELETE).
type kbCall struct {
	cancel bool
	method string
}

// TestRetryStopsWithTheContext checks a run cancelled during an outage
// neither waits out the backoff nor tries again.
func TestRetryStopsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, url := adaptertest.OutageCancels(t)
	clk := clocktest.New(t0)
	opts := options(url, lj)
	opts.Meter = &reconcile.Meter{}
	opts.Retry = retryOn(clk)
	if _, err := newSink(t, opts).Apply(ctx, []*reconcile.Action{cancel("s1", "acc_1")}); err == nil {
		t.Fatal("no error")
	}
	if got := opts.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != 1 || len(clk.Sleeps()) != 0 {
		t.Errorf("meter %+v, sleeps %v: retried after the context was cancelled", got, clk.Sleeps())
	}
}
