package httpapi

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestPacerKeepsToTheBucketWhateverHappens drives Pacers of several rates
// and bursts (5 a second, keysync's 4.75, a shard's share, slower) through
// random sequences of requests, time passing, waits given up (a cancelled
// run) and 429 holds, and checks what went out: never more than the API's
// bucket allows in any interval (burst + rate × its length), and, after
// the first burst, never more than the rate rounded up in any second.
func TestPacerKeepsToTheBucketWhateverHappens(t *testing.T) {
	t.Parallel()
	type req struct {
		at        time.Time
		undo      func()
		cancelled bool
	}
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 7))
		perSecond := []float64{5, 4.75, 2.375, 1.2, 0.3}[rng.IntN(5)]
		burst := []int{10, 5, 2}[rng.IntN(3)]
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := clocktest.New(start)
		p := NewPacer(perSecond, burst, clock)
		var reqs []*req
		for range 80 {
			switch n := rng.IntN(10); {
			case n < 2:
				clock.Advance(time.Duration(rng.IntN(400)) * time.Millisecond)
			case n < 3: // a waiter gives up before its turn
				var waiting []*req
				for _, r := range reqs {
					if !r.cancelled && r.at.After(clock.Now()) {
						waiting = append(waiting, r)
					}
				}
				if len(waiting) > 0 {
					r := waiting[rng.IntN(len(waiting))]
					p.mu.Lock()
					r.undo()
					p.mu.Unlock()
					r.cancelled = true
				}
			case n < 4 && rng.IntN(4) == 0: // a 429 holds the API
				p.Hold(clock.Now().Add(time.Duration(1+rng.IntN(3)) * time.Second))
			default:
				p.mu.Lock()
				now := clock.Now()
				at, undo, err := p.take(now.Add(max(p.hold.Sub(now), 0)))
				p.mu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
				reqs = append(reqs, &req{at: at, undo: undo})
			}
		}
		var sent []time.Time
		for _, r := range reqs {
			if !r.cancelled {
				sent = append(sent, r.at)
			}
		}
		slices.SortFunc(sent, time.Time.Compare)
		if why := PaceBroken(sent, burst, perSecond); why != "" {
			t.Fatalf("seed %d (%.3g/s, burst %d): %s", seed, perSecond, burst, why)
		}
	}
}

// PaceBroken says how the request times sent (in order) break the API's
// bucket of burst at perSecond, or the rate rounded up in any second after
// the first burst; "" when they keep to both. (Exported for the httpapi_test
// package's tests.)
func PaceBroken(sent []time.Time, burst int, perSecond float64) string {
	for i := range sent {
		for j := i; j < len(sent); j++ {
			if n, allowed := j-i+1, float64(burst)+perSecond*sent[j].Sub(sent[i]).Seconds(); float64(n) > allowed+1e-6 {
				return fmt.Sprintf("requests %d to %d: %d in %s, more than the bucket allows (%.2f)", i+1, j+1, n, sent[j].Sub(sent[i]), allowed)
			}
		}
	}
	if most := int(math.Ceil(perSecond)); len(sent) > burst {
		if n := reconcile.PeakPerSecond(sent[burst:]); n > most {
			return fmt.Sprintf("%d requests in a second after the burst; want at most %d", n, most)
		}
	}
	return ""
}
