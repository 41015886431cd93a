package keybox_test

import (
	"net/http"
	"testing"

	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/keybox/sandbox"
)

// TestContract runs the suite every sink passes against the key-box
// sandbox: creates of accesses to key K1 for stays s1…s3, and cancels.
func TestContract(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, sinktest.Harness[*sandbox.Server]{
		Start: func(t *testing.T, wrap func(http.Handler) http.Handler) (*sandbox.Server, reconcile.Sink) {
			sb, url := newSandbox(t, sandbox.Options{}, wrap)
			return sb, newSink(t, options(url, lj))
		},
		Create: func(n int) *reconcile.Action {
			return create(sinktest.Stay(n), "204", s1Start, s1End, "Ana")
		},
		Withdraw:  func(n int, remoteID string) *reconcile.Action { return cancel(sinktest.Stay(n), remoteID) },
		MissingID: "acc_missing",
		Live: func(sb *sandbox.Server) int {
			return sinktest.Live(sb.Accesses(), func(a sandbox.AccessView) bool { return a.Creator == ourUser && !a.Cancelled })
		},
		WithdrawRetried: true,
	})
}
