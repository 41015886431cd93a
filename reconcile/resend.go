package reconcile

import (
	"context"
	"fmt"
)

// resendsKey is the context key of a request's re-send budget.
type resendsKey struct{}

// WithResends returns ctx carrying spend, the budget of the re-sends of
// the writes made with it: the plan's price pays for each batch's request
// once, and each time a transport would send a write again (a 429 waited
// out, an idempotent write after an outage, a document sent again in
// parts) it first calls spend, which takes one request from the day's
// budget and reports whether there was one. A nil spend, or none, means
// re-sends are not budgeted.
func WithResends(ctx context.Context, spend func() bool) context.Context {
	return context.WithValue(ctx, resendsKey{}, spend)
}

// Resends returns the re-send budget ctx carries (WithResends), nil when
// there is none.
func Resends(ctx context.Context) func() bool {
	spend, _ := ctx.Value(resendsKey{}).(func() bool)
	return spend
}

// Resend takes one request from ctx's re-send budget for a write about to
// be sent again: nil when it may go, an error wrapping ErrOverBudget when
// the budget has nothing left, and the write must not go.
func Resend(ctx context.Context) error {
	if spend := Resends(ctx); spend != nil && !spend() {
		return fmt.Errorf("not sent again: %w", ErrOverBudget)
	}
	return nil
}
