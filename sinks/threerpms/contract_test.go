package threerpms_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
)

// TestContract runs the suite every sink passes against the 3RPMS
// sandbox: PIN keys created for stays s1…s3, and deleted. Every write is a
// GraphQL mutation document, which is never re-sent.
func TestContract(t *testing.T) {
	t.Parallel()
	stay := sinktest.Stay
	sinktest.Run(t, sinktest.Harness[*sandbox.Server]{
		Start: func(t *testing.T, wrap func(http.Handler) http.Handler) (*sandbox.Server, reconcile.Sink) {
			return newSandbox(t, wrap)
		},
		Create:    func(n int) *reconcile.Action { return create(stay(n), fmt.Sprintf("47%d1", n)) },
		Withdraw:  func(n int, remoteID string) *reconcile.Action { return onKey(reconcile.OpDelete, stay(n), remoteID) },
		MissingID: "rak_404",
		Live: func(sb *sandbox.Server) int {
			return sinktest.Live(sb.Keys(), func(k sandbox.KeyView) bool { return k.Owner == ourID && !k.Deleted })
		},
		Write: func(r *http.Request) bool {
			return r.URL.Path == "/graphql" && bytes.Contains(fault.Body(r), []byte("mutation"))
		},
		WithdrawRetried: false,
	})
}
