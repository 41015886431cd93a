// Package clocktest provides a fake reconcile.Clock for tests: Sleep
// advances the fake time at once and records the wait, so pacing, backoff
// and Retry-After are tested exactly and without real sleeps.
package clocktest

import (
	"context"
	"sync"
	"time"
)

// Clock is a fake reconcile.Clock. The zero value starts at the zero time;
// use New for a useful start.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

// New returns a fake clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now implements reconcile.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep implements reconcile.Clock: it advances the clock by d at once.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
		c.sleeps = append(c.sleeps, d)
	}
	return nil
}

// Advance moves the clock forward without recording a sleep.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sleeps returns every wait so far.
func (c *Clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}
