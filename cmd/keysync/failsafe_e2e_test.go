package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// TestSourceOutageRefusedWithoutForce backfills eight in-house guests, then
// has 3RPMS answer an empty window (an outage, a wrong filter): the run
// refuses to revoke their keys, exits 5 naming the source and what to do,
// and writes nothing; with --force it applies.
func TestSourceOutageRefusedWithoutForce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 8, "")
	h.bookInHouse(8, 2)
	h.mustRun(ExitOK, "backfill")
	if n := len(h.ours()); n != 8 {
		t.Fatalf("backfill keyed %d stays, want 8", n)
	}
	// Every room_stays answer is empty from here on.
	h.sb.ResetRequests()
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := readAll(r)
		if r.URL.Path == "/graphql" && !strings.Contains(string(body), "mutation") {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"data":{"room_stays":{"edges":[],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`))
			return
		}
		h.sb.ServeHTTP(w, r)
	})
	rep, code, stderr := h.run("run")
	if code != ExitUnsafe || !strings.Contains(stderr, "--force") || !strings.Contains(stderr, "3rpms") {
		t.Fatalf("exit %d, stderr %q; want %d naming the source and --force", code, stderr, ExitUnsafe)
	}
	for _, q := range h.sb.Requests() {
		if q.Operation == "mutation" {
			t.Fatalf("the refused run sent a mutation: %+v", q)
		}
	}
	if n := len(h.ours()); n != 8 || rep == nil {
		t.Fatalf("keys after the refused run: %d, want all 8 kept", n)
	}
	// A plan the fail-safe refuses is not saved: a saved plan holds every
	// property's work or none.
	saved := filepath.Join(t.TempDir(), "refused.plan")
	if _, code, stderr := h.run("plan", "--out", saved); code != ExitUnsafe || !strings.Contains(stderr, "not saved") {
		t.Errorf("plan --out refused by the fail-safe: exit %d, want %d\n%s", code, ExitUnsafe, stderr)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("a refused plan left a file: %v", err)
	}
	// One saved with --force needs --force to apply, and says so: the
	// command plan prints to apply it too.
	if _, code, stderr := h.run("plan", "--out", saved, "--force"); code != ExitOK || !strings.Contains(stderr, "review it, then: keysync apply --config ") || !strings.Contains(stderr, " --force "+saved) {
		t.Errorf("plan --out --force: exit %d, want %d and the apply command with --force\n%s", code, ExitOK, stderr)
	}
	if _, code, stderr := h.run("apply", saved); code != ExitUnsafe || !strings.Contains(stderr, "the plan was made with --force, past the fail-safe; apply it with --force too") {
		t.Errorf("apply without --force of a plan saved with it: exit %d, want %d naming --force\n%s", code, ExitUnsafe, stderr)
	}
	if n := len(h.ours()); n != 8 {
		t.Fatalf("keys after the refused apply: %d, want all 8 kept", n)
	}
	rep = h.mustRun(ExitOK, "run", "--force")
	if got := countOps(rep, reconcile.OpRevoke, reconcile.ResultDone); got != 8 {
		t.Errorf("--force revoked %d keys, want 8", got)
	}
}

// TestPINUnchangedWhenOnlyDatesChange extends and shortens a stay: the
// guest keeps the same key and PIN, and no request is written.
func TestPINUnchangedWhenOnlyDatesChange(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 1, "", booking{"s1", "r101", 0, 2})
	s1, _ := h.sb.Stay("s1")
	pin := keyByID(t, h.sb, s1.KeyID).PIN
	for _, dep := range []int{4, 1} {
		if err := h.sb.ChangeDates("s1", day(0), day(dep)); err != nil {
			t.Fatal(err)
		}
		rep := h.mustRun(ExitOK, "run")
		after, _ := h.sb.Stay("s1")
		if after.KeyID != s1.KeyID || writes(rep) != 0 {
			t.Errorf("departure %s: key %s → %s, %d writes; want the same key and none", day(dep), s1.KeyID, after.KeyID, writes(rep))
		}
	}
	if keyByID(t, h.sb, s1.KeyID).PIN != pin {
		t.Error("the PIN changed")
	}
}

// TestFailSafeHoldsOnlyTheWithdrawals: eight in-house guests' reservations
// are cancelled at once (a wave the fail-safe doubts), while one guest has
// departed and another arrives. The run exits 5 and keeps the eight keys,
// but the departed guest's key is withdrawn and the arriving guest keyed:
// the fail-safe holds the withdrawals it doubts, not the night's other
// work.
func TestFailSafeHoldsOnlyTheWithdrawals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 10, "")
	h.bookInHouse(8, 3)
	h.stay("gone", "r109", -1, 1)
	h.mustRun(ExitOK, "backfill")
	keyOf := func(id string) string {
		t.Helper()
		s, ok := h.sb.Stay(id)
		if !ok {
			t.Fatalf("no stay %s", id)
		}
		return s.KeyID
	}
	held := map[string]string{}
	for i := range 8 {
		id := fmt.Sprintf("s%d", i)
		held[id] = keyOf(id)
		if err := h.sb.CancelReservation("res-" + id); err != nil {
			t.Fatal(err)
		}
	}
	goneKey := keyOf("gone")
	if goneKey == "" {
		t.Fatal("the backfill did not key the stay that departs")
	}
	// Past the departed guest's end (11:00 and 2 h of grace in Ljubljana),
	// at the arriving guest's check-in.
	h.setNow(t0.AddDate(0, 0, 1).Add(12 * time.Hour))
	h.stay("arrives", "r110", 1, 3)

	rep, code, stderr := h.run("run")
	if code != ExitUnsafe || rep == nil {
		t.Fatalf("exit %d, want %d (the fail-safe)\n%s", code, ExitUnsafe, stderr)
	}
	for id, key := range held {
		k := keyByID(t, h.sb, key)
		if k.Deleted || !slices.Contains(k.StayIDs, id) {
			t.Errorf("the cancelled stay %s lost key %s (deleted %v, stays %v): the fail-safe let a doubted withdrawal through", id, key, k.Deleted, k.StayIDs)
		}
	}
	for _, a := range rep.Actions() {
		switch a.Stay.ID {
		case "gone", "arrives":
			if a.Result != reconcile.ResultDone {
				t.Errorf("%s %s of stay %s: %s %s; want done, the fail-safe holds only the withdrawals it doubts", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
			}
		default:
			if a.Result != reconcile.ResultSkipped || !strings.Contains(a.Error, "held by the fail-safe") {
				t.Errorf("%s %s of stay %s: %s %q; want skipped, held by the fail-safe", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
			}
		}
	}
	if k := keyByID(t, h.sb, goneKey); !k.Deleted && len(k.StayIDs) > 0 {
		t.Errorf("the departed guest's key %s is still on stays %v", goneKey, k.StayIDs)
	}
	if key := keyOf("arrives"); key == "" {
		t.Error("the arriving guest was not keyed")
	}
	if !strings.Contains(stderr, "--force") {
		t.Errorf("stderr does not say how to apply the held withdrawals:\n%s", stderr)
	}
}

// TestFailSafePlanShowsWhatItHolds: keysync plan marks the actions the
// fail-safe holds, beside the ones that would go ahead.
func TestFailSafePlanShowsWhatItHolds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 10, "")
	h.bookInHouse(8, 3)
	h.mustRun(ExitOK, "backfill")
	for i := range 8 {
		if err := h.sb.CancelReservation(fmt.Sprintf("res-s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.stay("arrives", "r110", 0, 2)
	var out, errb strings.Builder
	env := newEnvironment(&out, &errb, h.getenv)
	err := env.run(t.Context(), []string{"plan", "--config", h.cfgPath, "--now", h.now.Format(time.RFC3339)})
	if code := exitCode(err); code != ExitUnsafe {
		t.Fatalf("plan exited %d, want %d: %v\n%s", code, ExitUnsafe, err, errb.String())
	}
	var held, ahead int
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.Contains(line, "held by the fail-safe"):
			held++
		case strings.Contains(line, "arrives") && strings.Contains(line, "create"):
			ahead++
		}
	}
	if held < 8 || ahead != 1 || !strings.Contains(out.String(), "RESULT") {
		t.Errorf("the plan marks %d actions held (want the 8 cancelled stays' at least) and shows %d arrival create (want 1), with a RESULT column:\n%s", held, ahead, out.String())
	}
}

// bookInHouse books n guests, s0, s1, … in rooms r101, r102, …, in house
// since yesterday until day depart.
func (h *harness) bookInHouse(n, depart int) {
	for i := range n {
		h.stay(fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", 101+i), -1, depart)
	}
}
