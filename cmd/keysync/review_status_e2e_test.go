package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestStatusKeepsAnEarlierTargetedRunsUnkeyedArrival: after the nightly
// run, a targeted run for "late" (arriving today) has its key create
// refused; a later targeted run for another stay (a Guestway poll, another
// webhook, run --stay) succeeds. late still holds no key, so status must
// still name it among the arrivals without a credential, until a run keys
// it.
func TestStatusKeepsAnEarlierTargetedRunsUnkeyedArrival(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(3), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	fw.mustExec(ExitOK, "run")
	unkeyed := func() []string {
		t.Helper()
		r := fw.runOn(clocktest.New(fw.now), nil, "status", "--json")
		var st statusReport
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		var out []string
		for _, s := range st.Unkeyed {
			out = append(out, s.ID)
		}
		return out
	}
	fw.hotelStay("late", "r102", 0, 1)
	fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "createRoomAccessKey") },
		answerJSON(`{"data":{"a0":null},"errors":[{"message":"room cannot hold a key","path":["a0"]}]}`)))
	fw.mustExec(ExitPartial, "run", "--stay", "late")
	fw.setFault(nil)
	if got := unkeyed(); len(got) != 1 || got[0] != "late" {
		t.Fatalf("after late's failed targeted run, status names %q without a credential, want [late]", got)
	}
	fw.mustExec(ExitOK, "run", "--stay", "s1")
	if s, _ := fw.sb.rpms.Stay("late"); s.KeyID != "" {
		t.Fatal("late was keyed: the test cannot tell")
	}
	if got := unkeyed(); len(got) != 1 || got[0] != "late" {
		t.Errorf("after another stay's targeted run, status names %q without a credential, want [late]: late, arriving today, still holds no key", got)
	}
	// late's own targeted run keys it: status no longer names it.
	fw.mustExec(ExitOK, "run", "--stay", "late")
	if s, _ := fw.sb.rpms.Stay("late"); s.KeyID == "" {
		t.Fatal("late's targeted run did not key it")
	}
	if got := unkeyed(); len(got) != 0 {
		t.Errorf("after late's targeted run keyed it, status names %q without a credential, want none", got)
	}
}
