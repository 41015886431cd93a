package main

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// TestRunPrunesSettledState: with `retention: 3d`, a run forgets the keys
// it withdrew more than three days before, with their audit entries,
// ledger rows and older runs, and keeps every live key and the last run of
// each mode. A dry run prunes nothing.
func TestRunPrunesSettledState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	b, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfgPath, append([]byte("retention: 3d\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	h.stay("s1", "r101", 0, 1)  // leaves tomorrow
	h.stay("s2", "r102", 0, 12) // stays on
	h.mustRun(ExitOK, "backfill")
	h.setNow(t0.Add(2 * 24 * time.Hour))
	h.mustRun(ExitOK, "run") // withdraws s1's key

	statuses := func() []string {
		var out []string
		for _, c := range h.credentials() {
			out = append(out, c.Stay.ID+" "+string(c.Status))
		}
		return out
	}
	settled := []string{"s1 deleted", "s2 active"}
	if got := statuses(); !slices.Equal(got, settled) {
		t.Fatalf("credentials after the departure: %q, want %q", got, settled)
	}

	h.setNow(t0.Add(6 * 24 * time.Hour))
	h.mustRun(ExitOK, "plan")
	if got := statuses(); !slices.Equal(got, settled) {
		t.Errorf("a dry run pruned: %q", got)
	}
	h.mustRun(ExitOK, "run")
	if got := statuses(); !slices.Equal(got, []string{"s2 active"}) {
		t.Errorf("credentials after a run three days past the withdrawal: %q, want only s2's", got)
	}

	ctx := context.Background()
	db := openState(t, h.cfg.State, state.Options{ReadOnly: true})
	defer db.Close()
	cut := h.now.Add(-3 * 24 * time.Hour)
	runs, err := db.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, r := range runs {
		modes = append(modes, string(r.Mode)+" "+r.StartedAt.UTC().Format(time.DateOnly))
	}
	if want := []string{"backfill " + t0.Format(time.DateOnly), "run " + h.now.UTC().Format(time.DateOnly)}; !slices.Equal(modes, want) {
		t.Errorf("runs left %q, want %q (the last of each mode)", modes, want)
	}
	log, err := db.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range log {
		if a.At.Before(cut) {
			t.Errorf("audit entry of %s kept past the retention: %+v", a.At, a)
		}
	}
	all, recent := mustSpent(t, db, time.Unix(0, 1)), mustSpent(t, db, cut)
	if systemSpent(all, reconcile.System3RPMS) == 0 || systemSpent(all, reconcile.System3RPMS) != systemSpent(recent, reconcile.System3RPMS) {
		t.Errorf("ledger holds %v in all and %v since %s; want only requests younger than the retention", all, recent, cut)
	}
}

func mustSpent(t *testing.T, db *state.DB, since time.Time) map[reconcile.Account]int {
	t.Helper()
	m, err := db.Spent(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
