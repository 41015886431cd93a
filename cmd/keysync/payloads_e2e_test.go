package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// TestNonNullPayloadsServer: the 3RPMS Room Access Key API shows what each
// mutation selects, never whether its payload may be null. A 3RPMS that
// declares them non-null (the sandbox's NonNullPayloads) answers a
// document one of whose fields fails with "data": null beside the error,
// which names the field (the GraphQL spec carries the failed field's null
// up to the root). The error is that field's refusal; the other fields
// may have run or not: a create's outcome is unknown (the next read
// decides), the others go again in the same run. A backfill beside another integration's keys settles the
// refused claims (not ours) and keys every other guest by the run after
// it; a run whose assign meets a reservation cancelled after the read
// settles that assign; no key is left unrecorded, no guest holds two and
// nothing of the other integration's changes. On main every field of such
// an answer had an unknown outcome: the claims were never answered, so
// each run claimed again and lost the creates sharing their document, and
// the guests of those creates were never keyed.
//
// Errors without a path (the sandbox's message-only errors) do not say
// which field failed, and "data": null beside them may as well be the
// refusal of the whole request: keysync takes no field as refused then
// (TestApplyDataNullIsNeverSentAgain), so this runs with codes and paths.
func TestNonNullPayloadsServer(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(6), nil)
	fw.sb.rpms.SetMessageOnlyErrors(false) // whatever KEYSYNC_TEST_3RPMS_ERRORS says: see above
	fw.sb.rpms.SetNonNullPayloads(true)
	fw.sb.rpms.SetRollbackDocuments(rollback3RPMS)
	foreign := bookBesideForeignKeys(fw)
	// The refused claims of s2 and s3 share a document with the creates of
	// s1, s4 and s5, answered "data": null: whether those creates ran is
	// unknown (a key they made is recorded abandoned), so the backfill is
	// partial, and the run after it keys them.
	rep := fw.mustExec(ExitPartial, "backfill").rep
	for _, a := range rep.Actions() {
		lost := a.Op == reconcile.OpCreate || a.Op == reconcile.OpAssign && a.Result == reconcile.ResultSkipped
		if a.Result != reconcile.ResultDone && !(lost && slices.Contains([]string{"s1", "s4", "s5"}, a.Stay.ID)) {
			t.Errorf("backfill: %s %s %s: %s %s; only the creates of s1, s4 and s5 (and their assigns) may be left undone", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
		}
	}
	fw.checkSafe(foreign)
	fw.mustExec(ExitAttention, "run") // s2, in house, holds another integration's key
	fw.checkInvariants(foreign)       // s1, s4 and s5 hold keys

	for _, a := range runCancellingAnArrival(t, fw).Actions() {
		if a.Stay.ID == "s6" && a.Op == reconcile.OpAssign && a.Result != reconcile.ResultFailed {
			t.Errorf("run: the cancelled stay's assign: %s %s, want its refusal", a.Result, a.Error)
		}
	}
	fw.checkSafe(foreign)
	fw.mustExec(ExitAttention, "run") // s2, in house, holds another integration's key
	fw.checkInvariants(foreign)
}

// TestNonNullPayloadsRevocationsSettleInTheRun: against a 3RPMS whose
// mutation payloads are non-null, one refused field nulls the whole
// answer. A night's revocations (ten departures, each a remove and a
// delete) share a document with the revoke of a deleted stay, which
// 3RPMS refuses (no such stay): the other fields ran,
// and each one sent again is refused in turn as already done, one
// refusal per answer. Every revocation must still be settled in the run:
// it exits 0, and the next plan is empty. Found by the soak test with
// non_null_payloads on (seed 7, night 1): the resends stopped at the
// depth bound, leaving revocations that had run "outcome unknown", and
// the run exited 3.
func TestNonNullPayloadsRevocationsSettleInTheRun(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(11), nil)
	fw.sb.rpms.SetMessageOnlyErrors(false) // errors name their fields: see TestNonNullPayloadsServer
	fw.sb.rpms.SetNonNullPayloads(true)
	for i := range 10 {
		fw.hotelStay(fmt.Sprintf("s%d", i+1), roomID(i), -2, 0)
	}
	fw.hotelStay("s11", roomID(10), 2, 4)
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	if err := fw.sb.rpms.DeleteStay("s11"); err != nil {
		t.Fatal(err)
	}
	fw.setNow(t0.Add(24 * time.Hour))
	r := fw.exec("run", nil)
	if r.code != ExitOK {
		for _, a := range r.rep.Actions() {
			if a.Result != reconcile.ResultDone {
				t.Logf("%s %s %s: %s %s", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
			}
		}
		t.Errorf("the run revoking ten departures and a deleted stay exited %d, want 0", r.code)
	}
	fw.checkInvariants(foreign)
}
