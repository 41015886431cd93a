package main

import (
	"slices"
	"testing"

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
