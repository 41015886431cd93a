package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// End-to-end scenarios of a 3RPMS key keysync issued that hotel staff
// then move or share in 3RPMS: taken off its stay and given to a later
// stay of another guest, or given to that stay as well, or deleted.

// staffMoveWorld is a hotel whose stay A (room r101, arriving today) was
// keyed by a backfill, with a later stay B of another guest booked after
// it in room (r101 or r102), nights bArrive to bDepart.
func staffMoveWorld(t *testing.T, room string, bArrive, bDepart int) (fw *faultWorld, k string) {
	t.Helper()
	fw = newFaultWorld(t, map[string]string{"r101": "pin", "r102": "pin"}, nil)
	fw.hotelStay("A", "r101", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	k = fw.key("A").ID
	fw.hotelStay("B", room, bArrive, bDepart)
	return fw, k
}

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

// watchKey records, from now on, every 3RPMS mutation that names key k
// and stay B together: keysync must send none (it never assigns, revokes
// or deletes a key on a stay staff gave it to).
func (fw *faultWorld) watchKey(k string) func() int {
	var mu sync.Mutex
	n := 0
	fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		if mutationNaming(r, `"`+k+`"`) && mutationNaming(r, `"B"`) {
			mu.Lock()
			n++
			mu.Unlock()
		}
		next.ServeHTTP(rw, r)
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

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

// keyGivenToB checks, after a run, what must hold from staff's change to
// B's departure and 3RPMS's cleanup after it: key k stays on B, never
// deleted by keysync, no request of keysync's names k with B, and keysync
// records nothing for B.
func (fw *faultWorld) keyGivenToB(k string, touched func() int) {
	fw.t.Helper()
	kv := keyByID(fw.t, fw.sb.rpms, k)
	if kv.Deleted && kv.DeletedBy != "cleanup" || !kv.Deleted && !slices.Contains(kv.StayIDs, "B") {
		fw.t.Errorf("key %s staff gave to B: on %v, deleted %v by %q", k, kv.StayIDs, kv.Deleted, kv.DeletedBy)
	}
	if n := touched(); n > 0 {
		fw.t.Errorf("keysync sent %d mutation(s) naming key %s and stay B", n, k)
	}
	if _, anyForB := fw.liveKeys("A"); anyForB {
		fw.t.Errorf("keysync recorded a credential for B: %s", fw.recordedKeys())
	}
}

// noteOnB returns the run's note on stay B, failing when there is none.
func noteOnB(t *testing.T, rep *reconcile.Report) reconcile.Note {
	t.Helper()
	for _, n := range rep.Notes() {
		if n.Stay.ID == "B" {
			return n
		}
	}
	t.Fatalf("no note on stay B: %+v", rep.Notes())
	return reconcile.Note{}
}

// noActions fails when the run planned anything.
func noActions(t *testing.T, r faultRun) {
	t.Helper()
	for _, a := range r.rep.Actions() {
		t.Errorf("unexpected %s %s %s: %s", a.System, a.Op, a.Stay.ID, a.Reason)
	}
}

// lentNote checks a run that must leave B alone: it exits 0 and notes
// that B holds keysync's key k, given to it by staff (not for a person:
// B's guest holds a working key).
func lentNote(t *testing.T, r faultRun, k string) {
	t.Helper()
	if r.code != ExitOK {
		t.Errorf("exited %d, want %d", r.code, ExitOK)
	}
	if n := noteOnB(t, r.rep); n.Kind != reconcile.NoteConflict || n.Attention || !strings.Contains(n.Detail, "keysync's") || !strings.Contains(n.Detail, k) || !strings.Contains(n.Detail, "stay A") {
		t.Errorf("note on B: %+v", n)
	}
	for _, a := range r.rep.Actions() {
		if a.Stay.ID == "B" {
			t.Errorf("action on B: %s %s", a.Op, a.Reason)
		}
	}
}

// TestKeyStaffMovedToALaterStayOfAnotherGuest: keysync keyed stay A
// (arriving today); staff then take its key K off A in 3RPMS and give it
// to B, a later stay of another guest booked since, in the same room or
// another. keysync gives A a new key (K put back would give two guests one
// PIN), lets go of its record of K without a request, and never records K
// for B, revokes it from B nor deletes it: 3RPMS's own cleanup deletes it
// two days after B leaves. A's new key is withdrawn when A checks out.
// Every run exits 0, each noting that B holds keysync's key (the released
// record tells, once no live record names it).
func TestKeyStaffMovedToALaterStayOfAnotherGuest(t *testing.T) {
	t.Parallel()
	for _, room := range []string{"r101", "r102"} {
		t.Run("B in "+room, func(t *testing.T) {
			t.Parallel()
			fw, k := staffMoveWorld(t, room, 3, 5)
			pin := keyByID(t, fw.sb.rpms, k).PIN
			if err := fw.sb.rpms.StaffRemoveKey("A"); err != nil {
				t.Fatal(err)
			}
			if err := fw.sb.rpms.StaffAssignKey("B", k); err != nil {
				t.Fatal(err)
			}
			touched := fw.watchKey(k)

			r := fw.runAt(night(0).Add(10 * time.Minute))
			lentNote(t, r, k)
			fw.keyGivenToB(k, touched)
			newKey := fw.key("A")
			if newKey.ID == k || newKey.PIN == pin || newKey.Owner != fw.ourIntegration() {
				t.Errorf("A holds %s (PIN same as K's: %v), want a new key of ours", newKey.ID, newKey.PIN == pin)
			}
			if live, _ := fw.liveKeys("A"); len(live) != 1 || live[0].RemoteID != newKey.ID {
				t.Errorf("A's live 3RPMS records: %s", fw.recordedKeys())
			}
			if countOps(r.rep, reconcile.OpRelease, reconcile.ResultDone) != 1 || countOps(r.rep, reconcile.OpCreate, reconcile.ResultDone) != 1 ||
				countOps(r.rep, reconcile.OpAssign, reconcile.ResultDone) != 1 || len(r.rep.Actions()) != 3 {
				t.Errorf("after the move: want A's record of K released, a new key created and assigned")
			}

			for _, n := range []int{1, 2} {
				r := fw.runAt(night(n))
				lentNote(t, r, k)
				noActions(t, r)
				fw.keyGivenToB(k, touched)
			}

			// A has left: its key is withdrawn; B arrives within 24 hours.
			r = fw.runAt(night(3))
			lentNote(t, r, k)
			if kv := keyByID(t, fw.sb.rpms, newKey.ID); !kv.Deleted || kv.DeletedBy != "integration" {
				t.Errorf("A's key %s after A left: on %v, deleted %v by %q", newKey.ID, kv.StayIDs, kv.Deleted, kv.DeletedBy)
			}
			if live, _ := fw.liveKeys("A"); len(live) != 0 {
				t.Errorf("live after A left: %s", fw.recordedKeys())
			}
			fw.keyGivenToB(k, touched)
			fw.bKeepsKToTheEnd(t, k, touched)
		})
	}
}

// bKeepsKToTheEnd runs the nights after A left: B in house (nights 4 and
// 5), each noting that B holds keysync's key K and doing nothing; B gone
// (night 6), exit 0; and two days later 3RPMS's own cleanup has deleted
// K. keysync never sent a request about K and B.
func (fw *faultWorld) bKeepsKToTheEnd(t *testing.T, k string, touched func() int) {
	t.Helper()
	for _, n := range []int{4, 5} {
		r := fw.runAt(night(n))
		lentNote(t, r, k)
		noActions(t, r)
		fw.keyGivenToB(k, touched)
	}
	if r := fw.runAt(night(6)); r.code != ExitOK {
		t.Errorf("night 6, B left, exited %d", r.code)
	}
	fw.keyGivenToB(k, touched)
	fw.runAt(night(8))
	if kv := keyByID(t, fw.sb.rpms, k); !kv.Deleted || kv.DeletedBy != "cleanup" {
		t.Errorf("K two days after B left: on %v, deleted %v by %q", kv.StayIDs, kv.Deleted, kv.DeletedBy)
	}
	fw.keyGivenToB(k, touched)
}

// TestKeyStaffSharedWithALaterStayOfAnotherGuest: staff give A's key K to
// B, a later stay of another guest, and leave it on A too. keysync leaves
// K on both (A's key is still A's), records nothing for B, and when A
// checks out takes K off A only and lets go of its record without
// deleting K, which 3RPMS's own cleanup deletes two days after B leaves.
// Every run exits 0, each noting that B holds keysync's key.
func TestKeyStaffSharedWithALaterStayOfAnotherGuest(t *testing.T) {
	t.Parallel()
	for _, room := range []string{"r101", "r102"} {
		t.Run("B in "+room, func(t *testing.T) {
			t.Parallel()
			fw, k := staffMoveWorld(t, room, 3, 5)
			if err := fw.sb.rpms.StaffAssignKey("B", k); err != nil {
				t.Fatal(err)
			}
			touched := fw.watchKey(k)
			for _, n := range []int{0, 1, 2} {
				r := fw.runAt(night(n).Add(10 * time.Minute))
				lentNote(t, r, k)
				noActions(t, r)
				if kv := keyByID(t, fw.sb.rpms, k); !slices.Equal(kv.StayIDs, []string{"A", "B"}) {
					t.Errorf("K on %v, want [A B]", kv.StayIDs)
				}
				fw.keyGivenToB(k, touched)
			}

			r := fw.runAt(night(3))
			lentNote(t, r, k)
			if countOps(r.rep, reconcile.OpRevoke, reconcile.ResultDone) != 1 || countOps(r.rep, reconcile.OpRelease, reconcile.ResultDone) != 1 || len(r.rep.Actions()) != 2 {
				t.Errorf("A's departure: want A's key revoked and released, not deleted")
			}
			if kv := keyByID(t, fw.sb.rpms, k); !slices.Equal(kv.StayIDs, []string{"B"}) {
				t.Errorf("K on %v after A left, want [B]", kv.StayIDs)
			}
			if live, _ := fw.liveKeys("A"); len(live) != 0 {
				t.Errorf("live after A left: %s", fw.recordedKeys())
			}
			fw.keyGivenToB(k, touched)
			fw.bKeepsKToTheEnd(t, k, touched)
		})
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
