package sandboxkit

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

// The limits every API document of the four systems gives (the OpenApp one
// names none, so its sandbox takes the same): 5 requests a second with
// bursts of 10, and 10,000 a UTC day, per caller.
const (
	// SeedPerSecond is the sustained request rate per caller.
	SeedPerSecond = 5.0
	// SeedBurst is the burst per caller; it is also the burst of a Limits
	// whose Burst is zero or less.
	SeedBurst = 10
	// SeedDailyCap is the number of requests per caller per UTC day.
	SeedDailyCap = 10000
)

// FillSeedLimits sets each of rate, burst and daily that is zero to the API
// documents' limit (SeedPerSecond, SeedBurst, SeedDailyCap): the body of
// Rates.WithSeedLimits.
func FillSeedLimits(rate *float64, burst, daily *int) {
	if *rate == 0 {
		*rate = SeedPerSecond
	}
	if *burst == 0 {
		*burst = SeedBurst
	}
	if *daily == 0 {
		*daily = SeedDailyCap
	}
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

// NewQuota returns a Quota enforcing l.
func NewQuota(l Limits) *Quota {
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
