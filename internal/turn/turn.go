// Package turn lets concurrent callers share one piece of work in flight
// at a time without a goroutine of its own: each caller queues its item,
// then takes turns serving whatever is queued (its own items or others')
// until its own is done. Items that queue while a turn is being served go
// together in the next one, which is the point: one state transaction for
// several properties' Saves, one request for several properties' batches.
package turn

import (
	"context"
	"sync"
	"time"
)

// Queue is a queue of items served one turn at a time. The zero Queue is
// ready to use.
type Queue[T any] struct {
	mu    sync.Mutex // guards items
	items []T
	turn  sync.Mutex // held while a turn is served
	// panicked is what a serve panicked with; see take.
	panicked any
}

// Wait queues item and serves turns until done reports it finished. serve
// is given every queued item, in the order they came, and returns those it
// left for a later turn (a prefix of what it was given may be served, the
// rest returned in order); it runs with no other turn in flight. done is
// called between turns, so it may read what serve wrote without more
// locking.
func (q *Queue[T]) Wait(item T, done func() bool, serve func([]T) []T) {
	q.mu.Lock()
	q.items = append(q.items, item)
	q.mu.Unlock()
	for !q.take(done, serve) {
	}
}

// take takes one turn: it reports done, or serves what is queued. A panic
// in serve goes on up, and is raised again in every caller that takes a
// turn after it: the items it took are lost, so their callers would
// otherwise wait for ever.
func (q *Queue[T]) take(done func() bool, serve func([]T) []T) bool {
	q.turn.Lock()
	defer q.turn.Unlock()
	if q.panicked != nil {
		panic(q.panicked)
	}
	defer func() {
		if v := recover(); v != nil {
			q.panicked = v
			panic(v)
		}
	}()
	if done() {
		return true
	}
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	left := serve(items)
	q.mu.Lock()
	q.items = append(left, q.items...)
	q.mu.Unlock()
	return false
}

// Do runs f in a turn of its own, between the turns serving items: work
// that must not overlap them (another write to the same store) without
// being queued as an item. A panic in f goes on up, as in serve.
func (q *Queue[T]) Do(f func()) {
	q.turn.Lock()
	defer q.turn.Unlock()
	if q.panicked != nil {
		panic(q.panicked)
	}
	f()
}

// Len is the number of items waiting for a turn.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// GatherFor is how long a turn that would not be full waits for more
// items (Gather.For): a split hotel's properties read together and plan at
// about the same time, so theirs follow within milliseconds.
const GatherFor = 50 * time.Millisecond

// Gather makes a Queue's turns wait, once, for more items when what is
// queued would not fill one: serve calls Hold first and, when it returns
// true, returns every item unserved; the next turn serves them with those
// that queued meanwhile (other properties that planned at about the same
// time). The turn guards it; the zero Gather never waits.
type Gather struct {
	// Sleep waits d (a reconcile.Clock's Sleep); nil never waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// For is how long a turn waits.
	For    time.Duration
	waited bool
}

// Hold waits For unless the turn is full or has waited already, and
// reports whether it did.
func (g *Gather) Hold(ctx context.Context, full bool) bool {
	if g.Sleep == nil || g.For <= 0 || g.waited || full {
		g.waited = false
		return false
	}
	_ = g.Sleep(ctx, g.For)
	g.waited = true
	return true
}
