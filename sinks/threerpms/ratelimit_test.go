package threerpms_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	sink "github.com/keysync/keysync/sinks/threerpms"
)

// TestApplyRateLimitedInA200: a GraphQL server may refuse a request for
// its rate limit in a 200 (errors, no "data": nothing ran), as the 3RPMS
// document, which says nothing of how its limits are signalled, allows.
// That is a 429 by another name: the document is waited out (at least the
// 1 s floor, on the pacer's clock) and sent again whole, never halved and
// halved again into a request a field against a server that refuses every
// one; a server that goes on refusing gets the retry policy's 4 tries,
// and the error says rate limited.
func TestApplyRateLimitedInA200(t *testing.T) {
	t.Parallel()
	const limited = `{"errors":[{"message":"rate limit exceeded: too many requests","extensions":{"code":"RATE_LIMITED"}}]}`
	for _, tc := range []struct {
		name     string
		refusals int // answers refused before the server takes documents again; -1: all
		wantReqs int
	}{
		{"once", 1, 2},
		{"always", -1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := clocktest.New(time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC))
			var (
				mu    sync.Mutex
				times []time.Time
			)
			sb, _ := newSandbox(t)
			srv := sandboxtest.Serve(t, sb, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/graphql" {
						next.ServeHTTP(w, r)
						return
					}
					mu.Lock()
					times = append(times, clock.Now())
					n := len(times)
					mu.Unlock()
					if tc.refusals < 0 || n <= tc.refusals {
						_, _ = io.Copy(io.Discard, r.Body)
						w.Header().Set("Content-Type", "application/json")
						_, _ = io.WriteString(w, limited)
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			c, err := threerpms.NewClient(threerpms.ClientOptions{Endpoint: srv.URL + "/graphql", Token: ourToken, Transport: httpapi.Transport{
				Now:   clock.Now,
				Pacer: httpapi.NewPacer(5, 10, clock),
				Retry: httpapi.Retry{Clock: clock, Rand: func() float64 { return 0.5 }},
			}})
			if err != nil {
				t.Fatal(err)
			}
			s := sink.New(c, 0)
			var batch []*reconcile.Action
			for i := range 6 {
				batch = append(batch, create(fmt.Sprintf("s%d", 1+i), fmt.Sprintf("%d", 4000+i)))
			}
			out, err := s.Apply(t.Context(), batch)
			mu.Lock()
			defer mu.Unlock()
			if len(times) != tc.wantReqs {
				t.Errorf("%d requests for %d creates against a server refusing for its rate limit, want %d (the document again, whole, as after a 429)", len(times), len(batch), tc.wantReqs)
			}
			for i := 1; i < len(times); i++ {
				if gap := times[i].Sub(times[i-1]); gap < time.Second {
					t.Errorf("request %d went %s after a rate-limit refusal, want at least 1 s", i+1, gap)
				}
			}
			if tc.refusals < 0 {
				if !errors.Is(err, reconcile.ErrRateLimited) {
					t.Errorf("err = %v, want rate limited", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for i, o := range out {
				if o.Err != nil || o.RemoteID == "" {
					t.Errorf("create %d: %+v, want done once the server takes it", i, o)
				}
			}
		})
	}
}
