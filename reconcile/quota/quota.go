// Package quota enforces, per caller, the limits the seeds give their APIs:
// a request rate with bursts, and a cap per UTC day. The four sandboxes
// (3RPMS, Guestway, OpenApp, the key box) use it to answer 429 exactly as
// the real services would; keysync itself paces with reconcile.Pacer.
package quota

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are one API's limits for each caller. A PerSecond or DailyCap of
// zero or less turns that limit off.
type Limits struct {
	PerSecond float64
	Burst     int
	DailyCap  int
}

// Refusal says why a request was refused and when to retry.
type Refusal struct {
	// RetryAfter is in whole seconds, at least 1.
	RetryAfter int
	// Daily is set when the day's cap, not the rate, refused it.
	Daily bool
}

// Quota counts requests per caller (a token, an API key, a user).
type Quota struct {
	limits  Limits
	mu      sync.Mutex
	callers map[string]*caller
}

type caller struct {
	lim   *rate.Limiter
	day   string
	count int
}

// New returns a Quota enforcing l.
func New(l Limits) *Quota {
	return &Quota{limits: l, callers: map[string]*caller{}}
}

// Limits returns the limits the Quota enforces.
func (q *Quota) Limits() Limits { return q.limits }

// Admit counts one request by who at now, or refuses it. A refused request
// does not count against the day's cap.
func (q *Quota) Admit(who string, now time.Time) (Refusal, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.callers[who]
	if c == nil {
		c = &caller{}
		if q.limits.PerSecond > 0 {
			c.lim = rate.NewLimiter(rate.Limit(q.limits.PerSecond), q.limits.Burst)
		}
		q.callers[who] = c
	}
	if q.limits.DailyCap > 0 {
		day := now.UTC().Format(time.DateOnly)
		if c.day != day {
			c.day, c.count = day, 0
		}
		if c.count >= q.limits.DailyCap {
			y, m, d := now.UTC().Date()
			wait := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC).Sub(now)
			return Refusal{RetryAfter: seconds(wait), Daily: true}, false
		}
	}
	if c.lim != nil {
		rsv := c.lim.ReserveN(now, 1)
		if d := rsv.DelayFrom(now); !rsv.OK() || d > 0 {
			rsv.CancelAt(now)
			return Refusal{RetryAfter: seconds(d)}, false
		}
	}
	c.count++
	return Refusal{}, true
}

func seconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }
