package threerpms

import (
	"context"

	"github.com/Khan/genqlient/graphql"

	"github.com/keysync/keysync/internal/turn"
	"github.com/keysync/keysync/reconcile"
)

// Chain sends the mutations of every property that reaches 3RPMS through
// one endpoint and token (one hotel split into several properties) in
// shared documents, so ten small properties take about the requests of one
// property of their size rather than each paying its own part-full
// documents. Each property's Sink (Chain.Sink) hands its batch to the
// Chain; documents are filled with the queued batches' mutations, in the
// order they came, up to the Chain's limit (a batch may be split across
// two documents). One document is in flight at a time: batches that arrive
// meanwhile (while it waits for its turn under the rate limit, say) share
// the next one. Each mutation's outcome is its own; a request that fails
// as a whole fails the mutations in it, and a batch all of whose
// mutations were in failed requests fails as a whole, as it would have
// alone.
//
// Batches of different properties are independent (each property's steps
// follow one another within the property), so sharing a document does not
// change what any of them does; GraphQL runs the fields in document order.
//
// A document the queued batches do not fill waits turn.GatherFor for
// more before it goes (once: it then goes with what has come): properties
// that plan at about the same time (a small hotel split in three, say, whose
// batches each fit in a document with room to spare, under no rate limit
// that would queue them) then share it instead of each sending its own.
type Chain struct {
	gql    graphql.Client
	maxOps int
	limit  *sizes // shared by its sinks: one server
	queue  turn.Queue[*submission]
	gather turn.Gather
}

// NewChain returns a Chain sending through gql up to maxOps mutations a
// document (0 means DefaultMaxOps), waiting on clock for batches to share
// a document that is not full (nil: it never waits).
func NewChain(gql graphql.Client, maxOps int, clock reconcile.Clock) *Chain {
	if maxOps <= 0 {
		maxOps = DefaultMaxOps
	}
	c := &Chain{gql: gql, maxOps: maxOps, limit: &sizes{}}
	if clock != nil {
		c.gather = turn.Gather{Sleep: clock.Sleep, For: turn.GatherFor}
	}
	return c
}

// Sink returns a property's Sink whose batches go through the Chain.
func (c *Chain) Sink() *Sink {
	return &Sink{gql: c.gql, maxOps: c.maxOps, chain: c, limit: c.limit}
}

// apply queues sub and sends documents until sub has gone in one: whoever
// holds the turn sends a document of what is queued, its own batch or
// others', so a batch waits at most for the documents ahead of it. A
// document carries other properties' batches, so it is not cut short by
// the sender's context (its deadline counts the time spent queued); the
// transport's own timeout bounds it.
func (c *Chain) apply(ctx context.Context, sub *submission) ([]reconcile.Outcome, error) {
	c.queue.Wait(sub, sub.done, func(queued []*submission) []*submission {
		if c.gather.Hold(ctx, c.full(queued)) {
			return queued // to go with the batches that came meanwhile
		}
		parts, left := c.next(queued)
		sendDocument(context.WithoutCancel(ctx), c.gql, c.limit, parts)
		return left
	})
	return sub.out, sub.err
}

// full reports whether queued fill a document.
func (c *Chain) full(queued []*submission) bool {
	n := 0
	for _, sub := range queued {
		n += len(sub.sent) - sub.taken
	}
	return n >= c.maxOps
}

// next fills a document from the queued batches: up to maxOps mutations,
// in the order the batches came. It returns the document's parts and the
// batches left with mutations to send.
func (c *Chain) next(queued []*submission) (parts []part, left []*submission) {
	room := c.maxOps
	for i, sub := range queued {
		if room == 0 {
			return parts, queued[i:]
		}
		n := min(room, len(sub.sent)-sub.taken)
		parts = append(parts, part{sub: sub, from: sub.taken, to: sub.taken + n})
		sub.taken += n
		room -= n
		if sub.taken < len(sub.sent) {
			return parts, queued[i:]
		}
	}
	return parts, nil
}
