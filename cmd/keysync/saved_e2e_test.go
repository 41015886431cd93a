package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSavedPlan: `plan --out FILE --show-secrets` shows the PINs that
// `apply FILE` then issues, and the file holds none of them in clear; a
// saved plan the world moved away from (a new booking) is refused, naming
// the stay, and writes nothing; a plan applied once cannot be applied
// again, because the record moved on.
func TestSavedPlan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 5, "")
	h.stay("s1", "r101", 0, 2)
	exec := h.text
	dir := t.TempDir()
	file := filepath.Join(dir, "tonight.plan")
	h.mustRun(ExitOK, "backfill")
	// Without the state file (moved away) there is no record to plan
	// against: plan alone plans against an empty one, plan --out refuses.
	aside := h.cfg.State + ".aside"
	if err := os.Rename(h.cfg.State, aside); err != nil {
		t.Fatal(err)
	}
	if out := exec(ExitConfig, "plan", "--out", file); !strings.Contains(out, "plan --out needs the state file") {
		t.Errorf("plan --out without the state file does not say it needs it:\n%s", out)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("plan --out without the state file left %s (%v)", file, err)
	}
	if err := os.Rename(aside, h.cfg.State); err != nil {
		t.Fatal(err)
	}
	h.stay("s2", "r102", 0, 3)
	h.stay("s3", "r103", 1, 3)
	shown := exec(ExitOK, "plan", "--out", file, "--show-secrets")
	if strings.Contains(shown, pinWhenApplied) {
		t.Errorf("a saved plan shows %q instead of the PINs apply issues:\n%s", pinWhenApplied, shown)
	}
	// A file that exists is never overwritten, and nothing is planned
	// (or shown) for it.
	if out := exec(ExitConfig, "plan", "--out", file, "--show-secrets"); strings.Contains(out, "create") || !strings.Contains(out, "never overwritten") {
		t.Errorf("plan --out over an existing file:\n%s", out)
	}
	// A directory that does not exist is named as such, not as a file
	// that would be overwritten.
	if out := exec(ExitConfig, "plan", "--out", filepath.Join(file+".d", "x.plan")); strings.Contains(out, "never overwritten") || !strings.Contains(out, "its directory exists") {
		t.Errorf("plan --out in a missing directory:\n%s", out)
	}
	before := len(h.ours())
	exec(ExitOK, "apply", file)
	keys := h.ours()
	if len(keys) != before+2 {
		t.Fatalf("%d keys after apply, want %d", len(keys), before+2)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(k.StayIDs) == 0 || k.StayIDs[0] == "s1" {
			continue
		}
		if !strings.Contains(shown, k.PIN) {
			t.Errorf("stay %s got a PIN the saved plan did not show", k.StayIDs[0])
		}
		if bytes.Contains(raw, []byte(k.PIN)) {
			t.Errorf("the plan file holds stay %s's PIN in clear", k.StayIDs[0])
		}
	}
	h.mustRun(ExitOK, "plan") // nothing left

	// Applied once: the record moved on, so the file is stale.
	if out := exec(ExitUnsafe, "apply", file); !strings.Contains(out, "record changed") {
		t.Errorf("re-applying a plan: %s", out)
	}

	// The world moved on: a booking made after the plan.
	h.stay("s4", "r104", 1, 3)
	stale := filepath.Join(dir, "stale.plan")
	exec(ExitOK, "plan", "--out", stale)
	h.stay("s5", "r105", 1, 3)
	before = len(h.ours())
	out := exec(ExitUnsafe, "apply", stale)
	if !strings.Contains(out, "s5") || strings.Contains(out, "s4,") {
		t.Errorf("stale plan: the refusal does not name s5 alone:\n%s", out)
	}
	if !strings.Contains(out, "saved plan no longer holds: nothing was applied") || strings.Contains(out, "next run retries") {
		t.Errorf("stale plan: the report does not say the plan was not applied, or says a run retries it:\n%s", out)
	}
	if n := len(h.ours()); n != before {
		t.Errorf("a refused plan wrote %d key(s)", n-before)
	}
	// A fresh plan goes through.
	fresh := filepath.Join(dir, "fresh.plan")
	exec(ExitOK, "plan", "--out", fresh)
	exec(ExitOK, "apply", fresh)
	if n := len(h.ours()); n != before+2 {
		t.Errorf("%d keys after the fresh plan, want %d", n, before+2)
	}
	// Without --now, apply acts at the plan's instant: a plan made for a
	// day ahead (plan --now, to preview tomorrow) is refused, not applied
	// now, where it would withdraw what guests hold until then; so is one
	// made more than six hours ago.
	for _, at := range []time.Duration{24 * time.Hour, -7 * time.Hour} {
		name := filepath.Join(dir, fmt.Sprintf("at%s.plan", at))
		mustRunText(t, ExitOK, h.getenv, "plan", "--config", h.cfgPath, "--out", name, "--now", time.Now().Add(at).Format(time.RFC3339))
		want := map[bool]string{true: "from now; apply acts at the plan's instant", false: "ago (more than 6h0m0s)"}[at > 0]
		if r := mustRunText(t, ExitConfig, h.getenv, "apply", "--config", h.cfgPath, name); !strings.Contains(r.stdout+r.stderr+errString(r.err), want) {
			t.Errorf("apply of a plan made for %s from now: %s%s%v, want %q", at, r.stdout, r.stderr, r.err, want)
		}
	}
	if n := len(h.ours()); n != before+2 {
		t.Errorf("%d keys after the refused plans, want %d", n, before+2)
	}
}

// TestSavedPlanOfAShard: a plan saved in a shard says to apply it with its
// --shard; applied with another --shard (another N), or without one, it is
// refused before anything is written, naming the shard it was made for;
// with its own it goes through.
func TestSavedPlanOfAShard(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 5, "")
	h.stay("s1", "r101", 0, 2)
	exec := h.text
	name := h.cfg.Properties[0].Name
	two, three := shardSpec{shardOf(name, 2), 2}, shardSpec{shardOf(name, 3), 3}
	exec(ExitOK, "backfill", "--shard", two.String())
	h.stay("s2", "r102", 0, 3)
	file := filepath.Join(t.TempDir(), "tonight.plan")
	if out := exec(ExitOK, "plan", "--shard", two.String(), "--out", file); !strings.Contains(out, "keysync apply --config "+h.cfgPath+" --shard "+two.String()+" "+file) {
		t.Errorf("plan --out in shard %s does not say to apply it with its --shard:\n%s", two, out)
	}
	before := len(h.ours())
	if out := exec(ExitConfig, "apply", "--shard", three.String(), file); !strings.Contains(out, "the plan was made for shard "+two.String()+", not shard "+three.String()) {
		t.Errorf("applying shard %s's plan in shard %s:\n%s", two, three, out)
	}
	if _, err := os.Stat(shardState(h.cfg.State, three)); !os.IsNotExist(err) {
		t.Errorf("the refused apply made or touched %s (%v)", shardState(h.cfg.State, three), err)
	}
	exec(ExitConfig, "apply", file)
	if n := len(h.ours()); n != before {
		t.Errorf("refused applies wrote %d key(s)", n-before)
	}
	exec(ExitOK, "apply", "--shard", two.String(), file)
	if n := len(h.ours()); n != before+1 {
		t.Errorf("%d keys after applying the plan in its shard, want %d", n, before+1)
	}
}

// text runs keysync's args, which must exit want, on h's config at h's
// instant, without --json, and returns all it said: its output, its log
// and its error.
func (h *harness) text(want int, args ...string) string {
	h.t.Helper()
	r := mustRunText(h.t, want, h.getenv, append(args, "--config", h.cfgPath, "--now", h.now.Format(time.RFC3339))...)
	return r.stdout + r.stderr + errString(r.err)
}

// TestSavedPlanRecordsWhenApplied: a plan applied two hours after it was
// made acts at the plan's instant (its windows), but records when it acted:
// the run's start in status and the audit lines in history are the apply's
// time, so an operator tracing a guest's key sees when it was issued.
func TestSavedPlanRecordsWhenApplied(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 3, "", booking{"s1", "r101", 0, 2})
	h.stay("s2", "r102", 0, 3)
	file := filepath.Join(t.TempDir(), "earlier.plan")
	h.text(ExitOK, "plan", "--out", file)
	applied := h.now.Add(2 * time.Hour)
	var out, errb bytes.Buffer
	env := newEnvironment(&out, &errb, h.getenv)
	env.now = func() time.Time { return applied }
	if err := env.run(context.Background(), []string{"apply", "--config", h.cfgPath, file}); err != nil {
		t.Fatalf("apply two hours after the plan: %v\n%s%s", err, out.String(), errb.String())
	}
	if want := "at " + applied.Format(time.RFC3339) + ", of a plan made for " + h.now.Format(time.RFC3339); !strings.Contains(out.String(), want) {
		t.Errorf("the apply's report does not say %q:\n%s", want, out.String())
	}
	since := applied.Add(-time.Minute).Format(time.RFC3339)
	if got := mustRunText(t, ExitOK, h.getenv, "history", "--config", h.cfgPath, "--stay", "s2", "--since", since).stdout; !strings.Contains(got, "create") {
		t.Errorf("history since the apply does not hold s2's create (recorded at the plan's instant?):\n%s", got)
	}
	var st statusReport
	if err := json.Unmarshal([]byte(mustRunText(t, ExitOK, h.getenv, "status", "--json", "--config", h.cfgPath, "--now", applied.Format(time.RFC3339)).stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) == 0 || !st.Runs[0].Started.Equal(applied) {
		t.Errorf("the apply's run is recorded as started %+v, want %v (the plan was made for %v)", st.Runs, applied, h.now)
	}
}
