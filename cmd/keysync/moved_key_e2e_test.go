package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// End-to-end scenarios of a 3RPMS key keysync issued that hotel staff
// then change in 3RPMS.

// runAt runs keysync at instant at, logging what it did and what 3RPMS
// and the state file then hold, and returns the run.
func (fw *faultWorld) runAt(at time.Time) faultRun {
	fw.t.Helper()
	fw.setNow(at)
	r := fw.exec("run", nil)
	if r.rep == nil {
		fw.t.Fatalf("run at %s printed no report (exit %d): %v\n%s", at, r.code, r.err, r.stderr)
	}
	fw.t.Logf("run at %s: exit %d", at.Format(time.RFC3339), r.code)
	for _, a := range r.rep.Actions() {
		fw.t.Logf("  %s %s %s step %d: %s %s (%s)", a.System, a.Op, a.Stay.ID, a.Step, a.Result, a.Error, a.Reason)
	}
	for _, n := range r.rep.Notes() {
		fw.t.Logf("  note %s %s attention=%v: %s", n.Kind, n.Stay.ID, n.Attention, n.Detail)
	}
	fw.t.Logf("  3RPMS: %s", fw.keysOnStays())
	fw.t.Logf("  state: %s", fw.recordedKeys())
	return r
}

// keysOnStays is every key of ours in 3RPMS: its stays, or how it was deleted.
func (fw *faultWorld) keysOnStays() string {
	var out []string
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner != fw.ourIntegration() {
			continue
		}
		s := fmt.Sprintf("%s on %v", k.ID, k.StayIDs)
		if k.Deleted {
			s = fmt.Sprintf("%s deleted by %s", k.ID, k.DeletedBy)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// recordedKeys is every 3RPMS credential the state file records.
func (fw *faultWorld) recordedKeys() string {
	var out []string
	for _, c := range fw.credentials() {
		if c.System == reconcile.System3RPMS {
			out = append(out, fmt.Sprintf("%s:%s %s assigned=%v", c.Stay.ID, c.RemoteID, c.Status, c.Assigned))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// night is day n at 02:00 UTC (03:00 in Ljubljana), the nightly run.
func night(n int) time.Time { return t0.AddDate(0, 0, n) }

// liveKeys returns the live 3RPMS credentials recorded for stay, and
// whether any credential at all (live or ended) is recorded for stay B.
func (fw *faultWorld) liveKeys(stay string) (live []reconcile.Credential, anyForB bool) {
	for _, c := range fw.credentials() {
		if c.Stay.ID == "B" {
			anyForB = true
		}
		if c.Stay.ID == stay && c.System == reconcile.System3RPMS && c.Status.Live() {
			live = append(live, c)
		}
	}
	return live, anyForB
}

// noActions fails when the run planned anything.
func noActions(t *testing.T, r faultRun) {
	t.Helper()
	for _, a := range r.rep.Actions() {
		t.Errorf("unexpected %s %s %s: %s", a.System, a.Op, a.Stay.ID, a.Reason)
	}
}

// TestKeyStaffDeletedBeforeArrivalIsReplacedByTheRetry: staff delete
// keysync's key of a stay arriving today or tomorrow. The next run, not
// knowing a key taken off from one deleted (an unassigned key cannot be
// read), puts it back: 3RPMS refuses, the key is retired and the run exits
// 3 (partial); the retry 10 minutes later gives the stay a new key and
// exits 0, and the stay then holds exactly one working key, recorded once.
func TestKeyStaffDeletedBeforeArrivalIsReplacedByTheRetry(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("A", "r101", 0, 2)
		fw.hotelStay("C", "r102", 1, 3)
		fw.mustExec(ExitOK, "backfill")
		deleted := map[string]string{"A": fw.key("A").ID, "C": fw.key("C").ID}
		for _, k := range deleted {
			if err := fw.sb.rpms.DeleteKey(k); err != nil {
				t.Fatal(err)
			}
		}
		r := fw.runAt(night(0).Add(time.Hour))
		if r.code != ExitPartial || countOps(r.rep, reconcile.OpAssign, reconcile.ResultFailed) != 2 || len(r.rep.Actions()) != 2 {
			t.Errorf("run after the deletes: exit %d, want %d with the two put-backs failed", r.code, ExitPartial)
		}
		for stay, k := range deleted {
			if live, _ := fw.liveKeys(stay); len(live) != 1 || live[0].RemoteID != k || live[0].Status != reconcile.StatusRetired {
				t.Errorf("%s after the refused put-back: %s", stay, fw.recordedKeys())
			}
		}
		r = fw.runAt(night(0).Add(time.Hour + 10*time.Minute))
		if r.code != ExitOK {
			t.Errorf("the retry exited %d", r.code)
		}
		for stay, k := range deleted {
			now := fw.key(stay)
			if now.ID == k || now.Deleted || now.Owner != fw.ourIntegration() || !slices.Equal(now.StayIDs, []string{stay}) {
				t.Errorf("%s holds %+v after the retry", stay, now)
			}
			if live, _ := fw.liveKeys(stay); len(live) != 1 || live[0].RemoteID != now.ID || live[0].Status != reconcile.StatusActive {
				t.Errorf("%s recorded: %s", stay, fw.recordedKeys())
			}
		}
		if n := len(fw.ourKeys()); n != 2 {
			t.Errorf("%d keys of ours exist, want 2: %s", n, fw.keysOnStays())
		}
		for _, at := range []time.Time{night(0).Add(time.Hour + 20*time.Minute), night(1)} {
			r := fw.runAt(at)
			if r.code != ExitOK {
				t.Errorf("run at %s exited %d", at, r.code)
			}
			noActions(t, r)
		}
		fw.checkInvariants("")
	})
}
