// Package clocktest provides fake reconcile.Clocks for tests: Clock, whose
// Sleep advances the fake time at once and records the wait, so pacing,
// backoff and Retry-After are tested exactly and without real sleeps; and
// Gate, whose Sleep waits until the test opens it.
package clocktest

import (
	"context"
	"sync"
	"sync/atomic"
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

// Gate is a fake reconcile.Clock whose Sleep blocks until Open is called,
// so a test can hold a wait open while it arranges what happens during
// it: Asleep is closed when the first Sleep begins, and Slept counts
// them. Now stays where NewGate put it.
type Gate struct {
	now     time.Time
	asleep  chan struct{}
	release chan struct{}
	once    sync.Once
	slept   atomic.Int32
}

// NewGate returns a closed Gate reading now.
func NewGate(now time.Time) *Gate {
	return &Gate{now: now, asleep: make(chan struct{}), release: make(chan struct{})}
}

// Now implements reconcile.Clock.
func (g *Gate) Now() time.Time { return g.now }

// Sleep implements reconcile.Clock: it returns once the gate is open (at
// once after Open), or when ctx ends.
func (g *Gate) Sleep(ctx context.Context, _ time.Duration) error {
	if g.slept.Add(1) == 1 {
		close(g.asleep)
	}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Asleep is closed when the first Sleep begins.
func (g *Gate) Asleep() <-chan struct{} { return g.asleep }

// Open lets every Sleep, waiting or to come, return.
func (g *Gate) Open() { g.once.Do(func() { close(g.release) }) }

// Slept returns how many Sleeps began.
func (g *Gate) Slept() int { return int(g.slept.Load()) }
