package main

import (
	"context"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// TestBudgetNearlySpentDefersCreationsNotRevocations seeds the ledger at
// 9,990 of 3RPMS's 10,000 daily requests: the next run still revokes and
// deletes the departed guest's key (revocations may use the reserve), defers
// the new arrivals' keys, reports them and exits partial; once the ledger's
// day has passed, the deferred stays are keyed first.
func TestBudgetNearlySpentDefersCreationsNotRevocations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4, "")
	h.stay("leaving", "r101", -2, 0)
	h.mustRun(ExitOK, "backfill")
	h.stay("new1", "r102", 1, 3)
	h.stay("new2", "r103", 2, 4)

	// Past checkout (10:00Z + 2 h grace), with the day's budget nearly gone.
	h.setNow(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC))
	db, err := state.Open(context.Background(), h.cfg.State, state.Options{Key: stateKeyOf(t, h.cfg)})
	if err != nil {
		t.Fatal(err)
	}
	spent := make([]reconcile.RequestRecord, 9990)
	for i := range spent {
		spent[i] = reconcile.RequestRecord{System: reconcile.System3RPMS, At: h.now.Add(-time.Hour), Write: i%2 == 0}
	}
	if err := db.Save(context.Background(), nil, nil, spent...); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rep := h.mustRun(ExitPartial, "run")
	if countOps(rep, reconcile.OpRevoke, reconcile.ResultDone) != 1 || countOps(rep, reconcile.OpDelete, reconcile.ResultDone) != 1 {
		t.Errorf("revocations not done: %v", rep.Counts())
	}
	deferred := map[string]bool{}
	for _, a := range rep.Deferred() {
		deferred[a.Stay.ID] = true
	}
	if !deferred["new1"] || !deferred["new2"] || countOps(rep, reconcile.OpCreate, reconcile.ResultDone) != 0 {
		t.Errorf("want new1 and new2 deferred and nothing created; deferred %v, counts %v", deferred, rep.Counts())
	}
	b := rep.Budget[reconcile.System3RPMS]
	if b.Cap != 10000 || b.UsedToday < 9991 || b.Left > 9 || b.Deferred != 4 {
		t.Errorf("budget report = %+v", b)
	}
	if s, _ := h.sb.Stay("new1"); s.KeyID != "" {
		t.Error("a deferred stay was keyed")
	}

	// A day later the ledger's requests have aged out: the deferred stays
	// come first in the plan, before new0, which arrives with new1 and
	// would sort before it by id.
	h.stay("new0", "r104", 1, 3)
	h.setNow(h.now.Add(24 * time.Hour))
	rep = h.mustRun(ExitOK, "run")
	var order []string
	for _, a := range rep.Actions() {
		if a.Op == reconcile.OpCreate {
			order = append(order, a.Stay.ID)
		}
	}
	if len(order) != 3 || !deferred[order[0]] || !deferred[order[1]] || order[2] != "new0" {
		t.Errorf("creates in order %v, want the deferred stays first", order)
	}
	h.checkInvariants("")
}
