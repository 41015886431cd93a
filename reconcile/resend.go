package reconcile

import (
	"context"
	"fmt"
)

// resendsKey is the context key of a request's re-send budget.
type resendsKey struct{}

// resends is what ctx carries under resendsKey: the day's re-send budget
// and whether the requests made with ctx carry a revocation or cleanup.
type resends struct {
	spend  func(revoke bool) bool
	revoke bool
}

// WithResends returns ctx carrying spend, the budget of the re-sends of
// the writes made with it: the plan's price pays for each batch's request
// once, and each time a transport would send a write again (a 429 waited
// out, an idempotent write after an outage, a document sent again in
// parts) it first calls spend, which takes one request from the day's
// budget and reports whether there was one. A nil spend, or none, means
// re-sends are not budgeted.
//
// spend's revoke says whether the request sent again carries a
// revocation or cleanup action: only such a request may spend the
// revocation reserve. revoke here is the default of the requests made
// with ctx, those of a batch sent whole (whether the batch carries one);
// a sink that sends a batch in several requests says each one's own
// (WithRevocation).
func WithResends(ctx context.Context, spend func(revoke bool) bool, revoke bool) context.Context {
	return context.WithValue(ctx, resendsKey{}, resends{spend: spend, revoke: revoke})
}

// WithRevocation returns ctx with the re-send budget it carries, for
// requests that carry a revocation or cleanup action (revoke) or carry
// none: a part of a batch, sent on its own, whose re-sends are asked for
// at that part's priority, not the batch's. Without a budget it is ctx.
func WithRevocation(ctx context.Context, revoke bool) context.Context {
	r, ok := ctx.Value(resendsKey{}).(resends)
	if !ok || r.revoke == revoke {
		return ctx
	}
	r.revoke = revoke
	return context.WithValue(ctx, resendsKey{}, r)
}

// Resends returns the re-send budget ctx carries (WithResends), nil when
// there is none, and whether the requests made with ctx carry a
// revocation or cleanup.
func Resends(ctx context.Context) (spend func(revoke bool) bool, revoke bool) {
	r, _ := ctx.Value(resendsKey{}).(resends)
	return r.spend, r.revoke
}

// Resend takes one request from ctx's re-send budget for a write about to
// be sent again, at ctx's priority (WithResends, WithRevocation): nil
// when it may go, an error wrapping ErrOverBudget when the budget has
// nothing left for it, and the write must not go.
func Resend(ctx context.Context) error {
	if spend, revoke := Resends(ctx); spend != nil && !spend(revoke) {
		return fmt.Errorf("not sent again: %w", ErrOverBudget)
	}
	return nil
}
