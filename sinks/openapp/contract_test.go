package openapp_test

import (
	"net/http"
	"testing"

	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
	"github.com/keysync/keysync/sinks/openapp/sandbox"
)

// TestContract runs the suite every sink passes against the OpenApp
// sandbox: invites to room r101 for stays s1…s3, and deletes.
func TestContract(t *testing.T) {
	t.Parallel()
	var sb *sandbox.Server
	stay := sinktest.Stay
	sinktest.Run(t, sinktest.Harness{
		Start: func(t *testing.T, wrap func(http.Handler) http.Handler) reconcile.Sink {
			var opts openapp.Options
			sb, _, opts = newSandbox(t, wrap)
			return newSink(t, opts)
		},
		Create: func(n int) *reconcile.Action {
			return action(reconcile.OpCreate, stay(n), "r101", "2026-06-01", "2026-06-05", "")
		},
		Withdraw: func(n int, remoteID string) *reconcile.Action {
			return action(reconcile.OpDelete, stay(n), "r101", "2026-06-01", "2026-06-05", remoteID)
		},
		Missing: func(n int) *reconcile.Action {
			return action(reconcile.OpDelete, stay(n), "r101", "2026-06-01", "2026-06-05", "01J0MISSING")
		},
		Live: func() int {
			return sinktest.Live(sb.Invites(), func(v sandbox.InviteView) bool {
				return v.CreatedBy == sandbox.KeyFingerprint(canaryKey) && !v.Deleted
			})
		},
		Write:           func(r *http.Request) bool { return r.Method != http.MethodGet },
		WithdrawRetried: true,
	})
}
