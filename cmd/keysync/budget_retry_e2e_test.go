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
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "pin", "r103": "pin"}, nil)
	fw.setBudget(after3RPMS, 1000, 0)
	fw.mustExec(ExitOK, "backfill")
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 1, 3)
	fw.hotelStay("s3", "r103", 1, 3)
	// What the day has used, the run's reads (the plan's) and its two
	// writes (the creates, then the assigns): nothing to spare.
	limit := fw.capAtPlan(reconcile.System3RPMS, after3RPMS, 0)

	fw.refuseFirstMutation()
	run := fw.exec("run", nil)
	fw.setFault(nil)
	if run.rep == nil {
		t.Fatalf("run exited %d without a report: %v\n%s", run.code, run.err, run.stderr)
	}
	b := onlyAccount(t, run.rep.Budget, reconcile.System3RPMS)
	if b.UsedToday > limit {
		t.Errorf("the day used %d requests of a daily_cap of %d (this run: %+v, exit %d): a retried write took it past the cap",
			b.UsedToday, limit, run.rep.Requests[reconcile.System3RPMS], run.code)
	}
}
