package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// A child started with KEYSYNC_TEST_MAIN_ARGS runs keysync's real main():
// unlike TestMain's KEYSYNC_TEST_ARGS child (which passes Run a background
// context), it stops on SIGTERM and SIGINT the way the installed binary
// does. It runs from init, before the testing package starts.
func init() {
	args := os.Getenv("KEYSYNC_TEST_MAIN_ARGS")
	if args == "" {
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		fmt.Fprintln(os.Stderr, "bad KEYSYNC_TEST_MAIN_ARGS:", err)
		os.Exit(99)
	}
	os.Args = append([]string{"keysync"}, argv...)
	main()
	os.Exit(0) // main exits itself
}

// mainChildCmd is a keysync child running main() (see init above).
func (w *procWorld) mainChildCmd(cmd string, extra ...string) *exec.Cmd {
	return w.argsCmd("KEYSYNC_TEST_MAIN_ARGS", cmd, extra...)
}

// isKeyBoxAPI says whether a request is keysync calling the key box (not
// the sandbox's admin API).
func isKeyBoxAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/keybox/") && !strings.HasPrefix(r.URL.Path, "/keybox/_sandbox")
}

// TestProcSIGTERMFinishesInFlightRequest stops a run with SIGTERM while its
// first key-box request is in flight (every key-box request takes 300 ms,
// and there are twelve to send): the run sends no new batch, lets the
// request in flight finish and records its outcome, exits 3 (partial) well
// within 10 s, and the next run finishes the job.
func TestProcSIGTERMFinishesInFlightRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("a child process with slow key-box requests; skipped in -short")
	}
	var slow atomic.Bool
	slow.Store(true)
	first := make(chan struct{})
	var once sync.Once
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if isKeyBoxAPI(r) && slow.Load() {
				once.Do(func() { close(first) })
				time.Sleep(300 * time.Millisecond)
			}
			next.ServeHTTP(rw, r)
		})
	}
	const boxes = 12
	rooms := map[string]string{"r101": "pin", "r102": "pin", "r201": "qr"}
	for i := range boxes {
		rooms[fmt.Sprintf("r3%02d", i+1)] = "key_storage"
	}
	w := newProcWorld(t, rooms, wrap)
	w.run(ExitOK, "backfill") // the state file, nothing to do yet
	w.hotelStay("p1", "r101", 0, 2)
	w.hotelStay("p2", "r102", 1, 3)
	w.hotelStay("q1", "r201", 0, 2)
	for i := range boxes {
		w.hotelStay(fmt.Sprintf("k%02d", i+1), fmt.Sprintf("r3%02d", i+1), i%3, i%3+2)
	}
	foreign := w.foreign()

	c := w.mainChildCmd("run")
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	done := startUntil(t, c, first, "its first key-box request", &stderr)
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	waitChild(t, c, done, "the child was still running 10 s after SIGTERM", &stderr)
	took := time.Since(sent)
	slow.Store(false)
	t.Logf("child exited %d %v after SIGTERM", c.ProcessState.ExitCode(), took.Round(time.Millisecond))
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the child died of %v: it did not handle SIGTERM\n%s", ws.Signal(), stderr.String())
	}
	if code := c.ProcessState.ExitCode(); code != ExitPartial {
		t.Errorf("exit code %d after SIGTERM, want %d (partial)\nstderr: %s", code, ExitPartial, stderr.String())
	}
	var rep reconcile.Report
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Errorf("no JSON report after SIGTERM: %v\n%s", err, stdout.String())
	} else {
		stopped := 0
		for _, a := range rep.Actions() {
			if a.Result == reconcile.ResultSkipped && strings.Contains(a.Error, "stopping") {
				stopped++
			}
		}
		if stopped == 0 {
			t.Errorf("the report shows no action skipped because the run was stopping: %v", rep.Counts())
		}
	}

	// The request in flight at SIGTERM finished and is recorded: exactly
	// one access of ours, recorded live with its id; every intent of the
	// run has its outcome.
	acc := w.accesses()
	if len(acc) != 1 {
		t.Errorf("the key box holds %d accesses of ours after SIGTERM, want 1 (the request in flight)", len(acc))
	}
	db := openState(t, w.statePath(), state.Options{ReadOnly: true})
	creds, err := db.AllCredentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	runs, err := db.Runs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	last := runs[len(runs)-1]
	audit, err := db.AuditLog(context.Background(), last.ID)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		ok := false
		for _, c := range creds {
			ok = ok || (c.System == reconcile.SystemKeyBox && c.RemoteID == a.ID && c.Status == reconcile.StatusActive)
		}
		if !ok {
			t.Errorf("access %s, created by the request in flight at SIGTERM, is not recorded active", a.ID)
		}
	}
	if last.Status == state.RunRunning {
		t.Errorf("the stopped run %d is still recorded running: it did not finish its records", last.ID)
	}
	type key struct {
		sys  reconcile.System
		op   reconcile.Op
		stay string
		cred int64
	}
	open := map[key]int{}
	intents := 0
	for _, a := range audit {
		k := key{a.System, a.Op, a.Stay.ID, a.CredentialID}
		switch a.Phase {
		case reconcile.PhaseIntent:
			open[k]++
			intents++
		case reconcile.PhaseDone, reconcile.PhaseFailed, reconcile.PhaseUnknown:
			if open[k] > 0 {
				open[k]--
			}
		}
	}
	if intents == 0 {
		t.Error("the stopped run recorded no intent at all")
	}
	for k, n := range open {
		if n > 0 {
			t.Errorf("audit: %s %s for stay %s (credential %d) has an intent and no outcome", k.sys, k.op, k.stay, k.cred)
		}
	}

	runsTaken := w.settle()
	t.Logf("converged after %d run(s)", runsTaken)
	w.checkInvariants(foreign)
}
