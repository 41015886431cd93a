package sandboxkit

import (
	"sync"
	"time"
)

// Clock is a sandbox's business clock: the "now" its stores act at, which
// tests and the admin API set and move. The rate limiter keeps its own clock
// (a Limiter's now), so moving the business clock never refills a bucket. A
// Clock is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start; a zero start means time.Now().
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = time.Now()
	}
	return &Clock{now: start}
}

// Now returns the business clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SetNow sets the business clock. The rate limiter's clock
// (Rates.RateNow) is not affected.
func (c *Clock) SetNow(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the business clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
