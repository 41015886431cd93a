package openapp_test

import (
	"net/http"
	"testing"

	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp/sandbox"
)

// TestContract runs the suite every sink passes against the OpenApp
// sandbox: invites to room r101 for stays s1…s3, and deletes.
func TestContract(t *testing.T) {
	t.Parallel()
	stay := sinktest.Stay
	sinktest.Run(t, sinktest.Harness[*sandbox.Server]{
		Start: func(t *testing.T, wrap func(http.Handler) http.Handler) (*sandbox.Server, reconcile.Sink) {
			sb, _, opts := newSandbox(t, wrap)
			return sb, newSink(t, opts)
		},
		Create: func(n int) *reconcile.Action {
			return action(reconcile.OpCreate, stay(n), "r101", "2026-06-01", "2026-06-05", "")
		},
		Withdraw: func(n int, remoteID string) *reconcile.Action {
			return action(reconcile.OpDelete, stay(n), "r101", "2026-06-01", "2026-06-05", remoteID)
		},
		MissingID: "01J0MISSING",
		Live: func(sb *sandbox.Server) int {
			return sinktest.Live(sb.Invites(), func(v sandbox.InviteView) bool {
				return v.CreatedBy == sandbox.KeyFingerprint(canaryKey) && !v.Deleted
			})
		},
		WithdrawRetried: true,
	})
}
