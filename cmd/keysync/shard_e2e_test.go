package main

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/threerpms/sandbox"
)

// TestShardRunTouchesOnlyItsProperties: hotel and annex on their own 3RPMS
// sandboxes; among 4 shards hotel is shard 0 and annex shard 3 (pinned in
// TestShardAssignmentStableAndComplete). Each shard's backfill and run
// reconcile only its property, into its own state file; the configured
// state file is never created.
func TestShardRunTouchesOnlyItsProperties(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	var annexRequests atomic.Int64
	annex := h.addAnnex(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			annexRequests.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	hotelState, annexState := shardState(h.cfg.State, shardSpec{0, 4}), shardState(h.cfg.State, shardSpec{3, 4})
	h.stay("h1", "r101", 1, 3)
	if err := annex.AddStay(sandbox.Stay{ID: "a1", RoomID: "r101", Arrival: day(1), Departure: day(3), ReservationID: "res-a1", ReservationCode: "C-a1"}); err != nil {
		t.Fatal(err)
	}

	// Shards 1 and 2 of 4 hold neither property: nothing to do, and no
	// state file made.
	if _, code, stderr := h.run("run", "--shard", "1/4"); code != ExitOK {
		t.Errorf("empty shard exited %d, want %d: %s", code, ExitOK, stderr)
	}
	if _, err := os.Stat(shardState(h.cfg.State, shardSpec{1, 4})); !os.IsNotExist(err) {
		t.Errorf("the empty shard made a state file (%v)", err)
	}
	// Each shard needs its own backfill: shard 0's does not make shard 3's.
	h.mustRun(ExitOK, "backfill", "--shard", "0/4")
	if _, code, stderr := h.run("run", "--shard", "3/4"); code != ExitConfig || !strings.Contains(stderr, "keysync backfill --config FILE --shard 3/4") {
		t.Errorf("shard 3 ran without its own state file (exit %d), or did not name its backfill:\n%s", code, stderr)
	}

	rep := h.mustRun(ExitOK, "run", "--shard", "0/4")
	for _, a := range rep.Actions() {
		if a.Stay.Property != "hotel" {
			t.Errorf("shard 0 acted on %s/%s", a.Stay.Property, a.Stay.ID)
		}
	}
	if s, _ := h.sb.Stay("h1"); s.KeyID == "" {
		t.Error("shard 0 did not key hotel's stay")
	}
	if s, _ := annex.Stay("a1"); s.KeyID != "" {
		t.Error("shard 0 keyed annex's stay, which is shard 3's")
	}
	if n := annexRequests.Load(); n != 0 {
		t.Errorf("shard 0 sent %d requests to annex's 3RPMS", n)
	}
	if _, err := os.Stat(h.cfg.State); !os.IsNotExist(err) {
		t.Errorf("the unsharded state file %s exists (%v)", h.cfg.State, err)
	}
	if _, err := os.Stat(annexState); !os.IsNotExist(err) {
		t.Errorf("shard 3's state file exists before its backfill (%v)", err)
	}
	for _, c := range readCredentials(t, hotelState) {
		if c.Stay.Property != "hotel" {
			t.Errorf("shard 0's state holds %s/%s", c.Stay.Property, c.Stay.ID)
		}
	}

	h.mustRun(ExitOK, "backfill", "--shard", "3/4")
	h.mustRun(ExitOK, "run", "--shard", "3/4")
	if s, _ := annex.Stay("a1"); s.KeyID == "" {
		t.Error("shard 3 did not key annex's stay")
	}
	creds := readCredentials(t, annexState)
	if len(creds) == 0 {
		t.Fatal("shard 3's state records no credential")
	}
	for _, c := range creds {
		if c.Stay.Property != "annex" {
			t.Errorf("shard 3's state holds %s/%s", c.Stay.Property, c.Stay.ID)
		}
	}
	// Both shards converge on their own.
	for _, s := range []string{"0/4", "3/4"} {
		if rep := h.mustRun(ExitOK, "plan", "--shard", s); len(rep.Actions()) != 0 {
			t.Errorf("shard %s: plan left %d actions", s, len(rep.Actions()))
		}
	}

	// The commands that operate on the record read the shard's own file:
	// each shard's history, show and backup hold its stays and no other's;
	// without --shard there is no (unsharded) state file to read.
	operate := func(args ...string) (string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		err := Run(context.Background(), append([]string{args[0], "--config", h.cfgPath}, args[1:]...), &out, &errb, h.getenv)
		return out.String() + errb.String() + errString(err), exitCode(err)
	}
	for _, tc := range []struct{ shard, ours, theirs string }{{"0/4", "h1", "a1"}, {"3/4", "a1", "h1"}} {
		if out, code := operate("history", "--shard", tc.shard); code != ExitOK || !strings.Contains(out, " "+tc.ours+" ") || strings.Contains(out, " "+tc.theirs+" ") {
			t.Errorf("history --shard %s (exit %d), want %s's actions only:\n%s", tc.shard, code, tc.ours, out)
		}
		if out, code := operate("show", "--shard", tc.shard, "--stay", tc.ours); code != ExitOK || !strings.Contains(out, "active") {
			t.Errorf("show --shard %s --stay %s (exit %d), want its active key:\n%s", tc.shard, tc.ours, code, out)
		}
		copyPath := filepath.Join(t.TempDir(), "copy.db")
		if out, code := operate("backup", "--shard", tc.shard, "--to", copyPath); code != ExitOK {
			t.Errorf("backup --shard %s exited %d:\n%s", tc.shard, code, out)
		} else if creds := readCredentials(t, copyPath); len(creds) == 0 || creds[0].Stay.ID != tc.ours {
			t.Errorf("backup --shard %s holds %v, want %s's credentials", tc.shard, creds, tc.ours)
		}
	}
	for _, cmd := range [][]string{{"history"}, {"show", "--stay", "h1"}, {"backup", "--to", filepath.Join(t.TempDir(), "copy.db")}} {
		if out, code := operate(cmd...); code != ExitConfig || !strings.Contains(out, "backfill") {
			t.Errorf("%s without --shard exited %d, want %d naming the missing (unsharded) state file:\n%s", cmd[0], code, ExitConfig, out)
		}
	}

	// Without --shard, a backfill would make the unsharded file and give
	// every property a second owner beside the shards: it, run and plan
	// are refused, pointing at --shard, and make no file.
	for _, cmd := range []string{"backfill", "run", "plan"} {
		if _, code, stderr := h.run(cmd); code != ExitConfig || !strings.Contains(stderr, "--shard I/N") || !strings.Contains(stderr, hotelState) {
			t.Errorf("%s without --shard beside shard files exited %d, want %d naming them and --shard:\n%s", cmd, code, ExitConfig, stderr)
		}
	}
	if _, err := os.Stat(h.cfg.State); !os.IsNotExist(err) {
		t.Errorf("a command without --shard made the unsharded state file %s (%v)", h.cfg.State, err)
	}

	// The shards share the config's key file: rekey refuses, naming
	// their files, and moves no key (their runs go on).
	if out, code := operate("rekey"); code != ExitConfig || !strings.Contains(out, shardState(h.cfg.State, shardSpec{3, 4})) {
		t.Errorf("rekey beside shard files exited %d, want %d naming them:\n%s", code, ExitConfig, out)
	}
	h.mustRun(ExitOK, "run", "--shard", "3/4")
}

// TestShardBesideABusyFile: a run that finds another layout's state file
// held by another process (a shard opening or writing it as the shards
// start together) past its busy timeout exits 1, to be run again, and does
// not call the file foreign or advise moving it aside.
func TestShardBesideABusyFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	h.stay("s1", "r101", 0, 2)
	name := h.cfg.Properties[0].Name
	two, three := shardSpec{shardOf(name, 2), 2}, shardSpec{shardOf(name, 3), 3}
	h.mustRun(ExitOK, "backfill", "--shard", three.String())
	h.mustRun(ExitOK, "backfill", "--shard", two.String())
	held, err := sql.Open("sqlite", "file:"+shardState(h.cfg.State, three)+"?_pragma=locking_mode(EXCLUSIVE)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetMaxOpenConns(1)
	if _, err := held.Exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('held', 'yes')"); err != nil {
		t.Fatal(err)
	}
	h.busy = 100 * time.Millisecond
	_, code, stderr := h.run("run", "--shard", two.String())
	if code != ExitFailure || !strings.Contains(stderr, "another shard is most likely opening or writing it") || strings.Contains(stderr, "move it aside") {
		t.Errorf("run beside a held file: exit %d, want %d saying another shard holds it, not to move it aside:\n%s", code, ExitFailure, stderr)
	}
}
