package guestway_test

import (
	"context"
	"testing"

	"github.com/keysync/keysync/sources/guestway/sandbox"
)

// TestCancelledNegatedIsLive: a status that names a cancellation only to
// deny or undo it ("not_cancelled", "un_cancelled",
// "cancelled_reverted") is no cancellation: read as
// one, the guest's access is withdrawn and the guest is locked out.
// Unknown statuses must never revoke a guest's door.
func TestCancelledNegatedIsLive(t *testing.T) {
	t.Parallel()
	sb, _, base := newSandbox(t, sandbox.Options{})
	portfolio(t, sb)
	src := newSource(t, base, nil)
	for status, want := range map[string]bool{
		"not_cancelled": false, "un_cancelled": false, "un_canceled": false, "never_cancelled": false,
		"cancelled_reverted": false, "canceled_undone": false, "cancelled_reinstated": false, "cancelled_reversed": false,
		"cancelled_by_guest": true, "host_cancelled": true, "cancelled": true, "canceled_by_host": true,
	} {
		if err := sb.SetStatus("G6", status); err != nil {
			t.Fatal(err)
		}
		got, err := src.StaysByID(context.Background(), []string{"G6"})
		if err != nil || (len(got) == 0) != want {
			t.Errorf("status %q: %v, %v; want cancelled %v", status, got, err, want)
		}
	}
}
