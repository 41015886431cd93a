package httpapi_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestRetryResendsPaidFromBudget sends one request to a server whose first
// answer is a 429 or a 503, under a re-send budget (reconcile.WithResends)
// with or without a request left: a write is sent again only when the
// budget has one (a 429 not sent again is still no outcome, so its action
// can be deferred; a 503'd write not sent again stays unknown), a read
// always, and the Meter counts every request sent, the refused one too.
func TestRetryResendsPaidFromBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		first      int // the first answer's status
		write      bool
		idempotent bool
		left       int // the budget's requests for re-sends
		want       int // requests the server gets
		spent      int // requests the budget gave
		wantErr    []error
		notErr     []error
	}{
		{name: "429'd write, budget left", first: http.StatusTooManyRequests, write: true, left: 1, want: 2, spent: 1},
		{name: "429'd write, budget spent", first: http.StatusTooManyRequests, write: true, left: 0, want: 1,
			wantErr: []error{reconcile.ErrOverBudget, reconcile.ErrRateLimited}, notErr: []error{reconcile.ErrUnknownOutcome}},
		{name: "503'd idempotent write, budget left", first: http.StatusServiceUnavailable, write: true, idempotent: true, left: 1, want: 2, spent: 1},
		{name: "503'd idempotent write, budget spent", first: http.StatusServiceUnavailable, write: true, idempotent: true, left: 0, want: 1,
			wantErr: []error{reconcile.ErrOverBudget, reconcile.ErrUnknownOutcome, reconcile.ErrUnavailable}},
		{name: "503'd create: never sent again, budget untouched", first: http.StatusServiceUnavailable, write: true, left: 1, want: 1,
			wantErr: []error{reconcile.ErrUnknownOutcome}, notErr: []error{reconcile.ErrOverBudget}},
		{name: "429'd read, budget spent: reads are never deferred", first: http.StatusTooManyRequests, left: 0, want: 2},
		{name: "503'd read, budget spent", first: http.StatusServiceUnavailable, idempotent: true, left: 0, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := refuseFirst(t, tt.first, "1")
			clock := clocktest.New(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))
			meter := &reconcile.Meter{Clock: clock}
			c, err := httpapi.New(httpapi.Options{
				System: reconcile.SystemOpenApp, BaseURL: srv.URL,
				Transport: httpapi.Transport{Meter: meter, Retry: httpapi.Retry{Clock: clock}},
			})
			if err != nil {
				t.Fatal(err)
			}
			left, spent := tt.left, 0
			ctx := reconcile.WithResends(t.Context(), func(bool) bool {
				if left == 0 {
					return false
				}
				left--
				spent++
				return true
			}, false)
			method := http.MethodGet
			if tt.write {
				method = http.MethodPut
			}
			_, err = c.Do(ctx, httpapi.Request{Call: "call", Method: method, Path: "/x", Write: tt.write, Idempotent: tt.idempotent})
			if n := int(got.Load()); n != tt.want {
				t.Errorf("the server got %d requests, want %d", n, tt.want)
			}
			if spent != tt.spent {
				t.Errorf("the budget gave %d requests, want %d", spent, tt.spent)
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Errorf("err = %v, want none", err)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want one wrapping %v", err, want)
				}
			}
			for _, not := range tt.notErr {
				if errors.Is(err, not) {
					t.Errorf("err = %v wraps %v", err, not)
				}
			}
			rc := meter.Snapshot()[reconcile.SystemOpenApp]
			if n := rc.Reads + rc.Writes; n != tt.want {
				t.Errorf("the meter counted %d requests (%+v), the server got %d", n, rc, tt.want)
			}
		})
	}
}
