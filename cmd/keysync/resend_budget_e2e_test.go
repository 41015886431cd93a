package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
)

// The config lines the API budgets of 3RPMS and OpenApp follow.
const (
	after3RPMS   = "      webhook_secret: ${KEYSYNC_3RPMS_WEBHOOK_SECRET}\n"
	afterOpenApp = "      guest_url: https://open.example/i/{token}\n"
)

// setBudget sets the daily_cap and reserve_for_revocations of the API
// whose config section has the line after.
func (fw *faultWorld) setBudget(after string, cap, reserve int) {
	fw.t.Helper()
	cfg, err := os.ReadFile(fw.cfg)
	if err != nil {
		fw.t.Fatal(err)
	}
	s := string(cfg)
	i := strings.Index(s, after)
	if i < 0 {
		fw.t.Fatalf("no line %q in the config to put the budget after", after)
	}
	head, tail := s[:i+len(after)], s[i+len(after):]
	for strings.HasPrefix(tail, "      daily_cap: ") || strings.HasPrefix(tail, "      reserve_for_revocations: ") {
		tail = tail[strings.Index(tail, "\n")+1:]
	}
	s = head + "      daily_cap: " + strconv.Itoa(cap) + "\n      reserve_for_revocations: " + strconv.Itoa(reserve) + "\n" + tail
	if err := os.WriteFile(fw.cfg, []byte(s), 0o600); err != nil {
		fw.t.Fatal(err)
	}
}

// capAtPlan sets sys's daily_cap (its section has the line after) to what
// the day has used, the plan's reads and its writes there, plus reserve,
// which it keeps for revocations: a run has nothing to spare beyond the
// reserve. It returns the cap.
func (fw *faultWorld) capAtPlan(sys reconcile.System, after string, reserve int) int {
	fw.t.Helper()
	plan := fw.mustExec(ExitOK, "plan")
	used := onlyAccount(fw.t, plan.rep.Budget, sys).UsedToday
	limit := used + plan.rep.Requests[sys].Reads + plan.rep.Planned[sys] + reserve
	fw.setBudget(after, limit, reserve)
	return limit
}

// refuseFirstMutation answers the run's first 3RPMS mutation 429 with
// Retry-After retryAfter and passes every other request on; it counts the
// mutations sent.
func (fw *faultWorld) refuseFirstMutation(retryAfter string) *reqCounter {
	var mutations reqCounter
	fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "") && mutations.add("mutation") == 1 },
		func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) {
			rw.Header().Set("Retry-After", retryAfter)
			rw.WriteHeader(http.StatusTooManyRequests)
		}))
	return &mutations
}

// runRefusingFirstMutation runs keysync's run with the first 3RPMS mutation
// answered 429 with Retry-After 1 (refuseFirstMutation), then removes the
// fault. It returns the run and the mutations it sent.
func (fw *faultWorld) runRefusingFirstMutation() (faultRun, *reqCounter) {
	fw.t.Helper()
	mutations := fw.refuseFirstMutation("1")
	run := fw.exec("run", nil)
	fw.setFault(nil)
	return run, mutations
}

// threeArrivalsAtTheCap is a hotel of three PIN rooms, backfilled, then
// three arrivals whose run's writes fit exactly what is left of the 3RPMS
// daily_cap (no reserve). It returns the cap.
func threeArrivalsAtTheCap(t *testing.T) (*faultWorld, int) {
	t.Helper()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "pin", "r103": "pin"}, nil)
	fw.setBudget(after3RPMS, 1000, 0)
	fw.mustExec(ExitOK, "backfill")
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 1, 3)
	fw.hotelStay("s3", "r103", 1, 3)
	// What the day has used, the run's reads (the plan's) and its two
	// writes (the creates, then the assigns): nothing to spare.
	return fw, fw.capAtPlan(reconcile.System3RPMS, after3RPMS, 0)
}

// TestBudgetRetryWithNothingLeftIsDeferred: arrivals whose writes fit
// exactly what is left of daily_cap, the first mutation answered 429. The
// budget has no request to send it again, so it is not: the creates and
// the assigns that wait on them are deferred (listed, exit 3), nothing is
// created, failed or left unknown, the ledger counts the refused request,
// and the next run, with a budget again, keys the stays.
func TestBudgetRetryWithNothingLeftIsDeferred(t *testing.T) {
	t.Parallel()
	fw, limit := threeArrivalsAtTheCap(t)
	run, mutations := fw.runRefusingFirstMutation()
	if run.code != ExitPartial || run.rep == nil {
		t.Fatalf("run exited %d (report: %v), want %d: %v\n%s", run.code, run.rep != nil, ExitPartial, run.err, run.stderr)
	}
	if n := mutations.get("mutation"); n != 1 {
		t.Errorf("%d mutations sent, want the refused one alone", n)
	}
	deferred := map[string]int{}
	for _, a := range run.rep.Deferred() {
		deferred[a.Stay.ID]++
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		if deferred[id] != 2 {
			t.Errorf("stay %s: %d actions deferred, want its create and assign (deferred: %v)", id, deferred[id], deferred)
		}
	}
	for _, a := range run.rep.Actions() {
		if a.Result != reconcile.ResultDeferred {
			t.Errorf("%s %s for %s: %s %s, want deferred", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
		}
	}
	if len(run.rep.Failures) != 0 {
		t.Errorf("failures %+v: a re-send the budget has no request for cuts nothing off", run.rep.Failures)
	}
	b := onlyAccount(t, run.rep.Budget, reconcile.System3RPMS)
	if b.UsedToday > limit || b.Deferred != 6 {
		t.Errorf("budget %+v: want at most the cap of %d used and 6 actions deferred", b, limit)
	}
	if w := run.rep.Requests[reconcile.System3RPMS].Writes; w != 1 {
		t.Errorf("the run counted %d writes, want the one refused 429", w)
	}
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner == fw.ourIntegration() && !k.Deleted {
			t.Errorf("key %s exists: nothing was to be created", k.ID)
		}
	}
	fw.checkSafe("")

	// The next day, with room in the budget, the deferred stays go first.
	fw.setBudget(after3RPMS, 1000, 0)
	fw.setNow(fw.now.Add(24 * time.Hour))
	fw.mustExec(ExitOK, "run")
	fw.checkInvariants("")
}

// TestBudgetRetriedRevocationSpendsTheReserve: a departed guest's key, the
// day's budget down to what the plan needs and the reserve, and the
// revocation's request answered 429. A revocation's re-send may spend the
// reserve: with one, it is sent again and done; with none, it is not sent
// again but deferred (exit 3), and the next run revokes.
func TestBudgetRetriedRevocationSpendsTheReserve(t *testing.T) {
	t.Parallel()
	for _, reserve := range []int{1, 0} {
		t.Run("reserve "+strconv.Itoa(reserve), func(t *testing.T) {
			t.Parallel()
			fw := newFaultWorld(t, map[string]string{"r101": "pin"}, nil)
			fw.setBudget(after3RPMS, 1000, 0)
			fw.hotelStay("gone", "r101", -2, 0)
			fw.mustExec(ExitOK, "backfill")
			fw.setNow(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)) // past checkout
			limit := fw.capAtPlan(reconcile.System3RPMS, after3RPMS, reserve)

			run, mutations := fw.runRefusingFirstMutation()
			if run.rep == nil {
				t.Fatalf("run exited %d without a report: %v\n%s", run.code, run.err, run.stderr)
			}
			b := onlyAccount(t, run.rep.Budget, reconcile.System3RPMS)
			if b.UsedToday > limit {
				t.Errorf("the day used %d requests of a daily_cap of %d", b.UsedToday, limit)
			}
			revoked := countOps(run.rep, reconcile.OpRevoke, reconcile.ResultDone)
			switch reserve {
			case 1:
				if run.code != ExitOK || revoked != 1 || mutations.get("mutation") != 2 {
					t.Errorf("exit %d, %d revoked, %d mutations: want the revocation sent again from the reserve and done (%v)",
						run.code, revoked, mutations.get("mutation"), run.rep.Counts())
				}
				if b.UsedToday != limit {
					t.Errorf("the day used %d requests, want the whole cap of %d: the re-send spent the reserve", b.UsedToday, limit)
				}
			case 0:
				if run.code != ExitPartial || revoked != 0 || countOps(run.rep, reconcile.OpRevoke, reconcile.ResultDeferred) != 1 || mutations.get("mutation") != 1 {
					t.Errorf("exit %d, %d mutations: want the revocation deferred, not sent again (%v)", run.code, mutations.get("mutation"), run.rep.Counts())
				}
				fw.setBudget(after3RPMS, 1000, 0)
				fw.setNow(fw.now.Add(time.Hour))
				if rep := fw.mustExec(ExitOK, "run").rep; countOps(rep, reconcile.OpRevoke, reconcile.ResultDone) != 1 {
					t.Errorf("the next run did not revoke: %v", rep.Counts())
				}
			}
			if reserve == 1 || !t.Failed() {
				fw.checkInvariants("")
			}
		})
	}
}

// TestBudgetRetried5xxWriteWithNothingLeftIsUnknown: an invite extended
// in place (an idempotent PUT) whose request is answered 503, with
// OpenApp's budget down to what the plan needs. The budget has no request
// to send it again, so it is not: its outcome stays unknown (it may have
// run), for the next run's read to decide, and that run extends it.
func TestBudgetRetried5xxWriteWithNothingLeftIsUnknown(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r201": "qr"}, nil)
	fw.hotelStay("s2", "r201", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	fw.converges()
	if err := fw.sb.rpms.ChangeDates("s2", day(0), day(4)); err != nil {
		t.Fatal(err)
	}
	limit := fw.capAtPlan(reconcile.SystemOpenApp, afterOpenApp, 0)

	var puts reqCounter
	fw.setFault(when(func(r *http.Request) bool {
		return requestTo(r, reconcile.SystemOpenApp, http.MethodPut) && puts.add("put") == 1
	}, func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) { fault.Answer503(rw) }))
	run := fw.mustExec(ExitPartial, "run")
	fw.setFault(nil)
	if n := puts.get("put"); n != 1 {
		t.Errorf("%d PUTs sent, want the 503'd one alone", n)
	}
	if n := countOps(run.rep, reconcile.OpUpdate, reconcile.ResultUnknown); n != 1 {
		t.Errorf("want the update's outcome unknown: %v", run.rep.Counts())
	}
	if len(run.rep.Deferred()) != 0 {
		t.Errorf("deferred %+v: a write that may have run is never deferred", run.rep.Deferred())
	}
	if b := onlyAccount(t, run.rep.Budget, reconcile.SystemOpenApp); b.UsedToday > limit {
		t.Errorf("OpenApp's day used %d requests of a daily_cap of %d", b.UsedToday, limit)
	}
	fw.checkSafe("")

	fw.setBudget(afterOpenApp, 1000, 0)
	fw.setNow(fw.now.Add(time.Hour))
	fw.mustExec(ExitOK, "run")
	for _, inv := range fw.invites() {
		if strings.Contains(inv.Name, ":s2]") && !inv.ValidTo.Equal(lj(day(4), 13)) {
			t.Errorf("s2's invite ends %s after the next run, want %s", inv.ValidTo, lj(day(4), 13))
		}
	}
	fw.checkInvariants("")
}
