package threerpms_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	rpmsapi "github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/sources/threerpms"
)

// TestThousandCallsNoRateLimit sends 1,000 reads through the client's
// pacer to a sandbox enforcing the API document's 5 requests/s with bursts of 10,
// both on one fake clock: not one 429, and after the first burst never more
// than 5 requests in any 1-second window.
func TestThousandCallsNoRateLimit(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	clock := clocktest.New(start)
	sb := sandbox.New(sandbox.Options{
		Integrations: map[string]string{ourToken: ourID},
		Now:          start,
		Rates:        sandboxkit.Rates{RateNow: clock.Now},
	}.WithSeedLimits())
	sb.AddRoom("r101", "101")
	srv := sandboxtest.Serve(t, sb)
	meter := &reconcile.Meter{Clock: clock}
	c := mustClient(rpmsapi.ClientOptions{
		Endpoint: srv.URL + "/graphql", Token: ourToken, Transport: httpapi.Transport{
			Now: clock.Now, Meter: meter,
			Pacer: httpapi.NewPacer(5*0.95, 10, clock),
			// One attempt: a 429 must fail the test, not be retried away.
			Retry: httpapi.Retry{Attempts: 1, Clock: clock},
		},
	})
	src := threerpms.NewSource(c, "p", 20)
	from, to := reconcile.Date{Year: 2026, Month: 11, Day: 22}, reconcile.Date{Year: 2026, Month: 11, Day: 29}
	for i := range 1000 {
		if _, err := src.Stays(t.Context(), from, to); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	reqs := sb.Requests()
	if len(reqs) != 1000 {
		t.Fatalf("sandbox saw %d requests, want 1000", len(reqs))
	}
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			t.Fatalf("a request was refused with 429 at %s", r.Time)
		}
	}
	// After the first burst of 10, at most 5 in any 1-second window.
	lo := 10
	for hi := 10; hi < len(reqs); hi++ {
		for reqs[hi].Time.Sub(reqs[lo].Time) >= time.Second {
			lo++
		}
		if n := hi - lo + 1; n > 5 {
			t.Fatalf("%d requests in the second before %s", n, reqs[hi].Time)
		}
	}
	// The first second holds the burst of 10 and what refills during it.
	if p := meter.Snapshot()[reconcile.System3RPMS].Peak; p < 10 || p > 15 {
		t.Errorf("meter's peak per second = %d, want the burst of 10 plus at most 5", p)
	}
}
