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
	var sb *sandbox.Server
	sinktest.Run(t, sinktest.Harness{
		Start: func(t *testing.T, wrap func(http.Handler) http.Handler) reconcile.Sink {
			var url string
			sb, url = newSandbox(t, sandbox.Options{}, wrap)
			return newSink(t, options(url, lj))
		},
		Create: func(n int) *reconcile.Action {
			return create(sinktest.Stay(n), "204", s1Start, s1End, "Ana")
		},
		Withdraw: func(n int, remoteID string) *reconcile.Action { return cancel(sinktest.Stay(n), remoteID) },
		Missing:  func(n int) *reconcile.Action { return cancel(sinktest.Stay(n), "acc_missing") },
		Live: func() int {
			return sinktest.Live(sb.Accesses(), func(a sandbox.AccessView) bool { return a.Creator == ourUser && !a.Cancelled })
		},
		Write:           func(r *http.Request) bool { return r.Method != http.MethodGet },
		WithdrawRetried: true,
	})
}
