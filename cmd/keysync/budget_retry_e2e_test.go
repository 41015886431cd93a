package main

import (
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestBudgetRetriedWritesStayInsideTheCap: a run whose 3RPMS writes fit
// exactly what is left of daily_cap (no reserve), one of whose mutations
// is answered 429 and sent again after its Retry-After, must not take the
// day past the cap: daily_cap bounds the writes (README, "Requests: pace,
// budget and report"), and keysync's own ledger counts the refused
// request, as a server that meters 429s does.
func TestBudgetRetriedWritesStayInsideTheCap(t *testing.T) {
	t.Parallel()
	fw, limit := threeArrivalsAtTheCap(t)
	run, _ := fw.runRefusingFirstMutation()
	if run.rep == nil {
		t.Fatalf("run exited %d without a report: %v\n%s", run.code, run.err, run.stderr)
	}
	b := onlyAccount(t, run.rep.Budget, reconcile.System3RPMS)
	if b.UsedToday > limit {
		t.Errorf("the day used %d requests of a daily_cap of %d (this run: %+v, exit %d): a retried write took it past the cap",
			b.UsedToday, limit, run.rep.Requests[reconcile.System3RPMS], run.code)
	}
}
