package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
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
	setCap := func(n int) {
		t.Helper()
		cfg, err := os.ReadFile(fw.cfg)
		if err != nil {
			t.Fatal(err)
		}
		const at = "      webhook_secret: ${KEYSYNC_3RPMS_WEBHOOK_SECRET}\n"
		s := string(cfg)
		if i := strings.Index(s, "      daily_cap: "); i >= 0 {
			j := strings.Index(s[i:], "\n")
			s = s[:i] + "      daily_cap: " + strconv.Itoa(n) + s[i+j:]
		} else {
			s = strings.Replace(s, at, at+"      daily_cap: "+strconv.Itoa(n)+"\n      reserve_for_revocations: 0\n", 1)
		}
		if err := os.WriteFile(fw.cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setCap(1000)
	fw.mustExec(ExitOK, "backfill")
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 1, 3)
	fw.hotelStay("s3", "r103", 1, 3)
	plan := fw.mustExec(ExitOK, "plan")
	used := onlyAccount(t, plan.rep.Budget, reconcile.System3RPMS).UsedToday
	// What the day has used, the run's reads (the plan's) and its two
	// writes (the creates, then the assigns): nothing to spare.
	limit := used + plan.rep.Requests[reconcile.System3RPMS].Reads + plan.rep.PlannedRequests
	setCap(limit)

	var mutations reqCounter
	fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "") && mutations.add("mutation") == 1 },
		func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) {
			rw.Header().Set("Retry-After", "1")
			rw.WriteHeader(http.StatusTooManyRequests)
		}))
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
