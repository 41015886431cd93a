package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// procOverlapRooms: PIN doors, one QR door and six key-box rooms.
var procOverlapRooms = map[string]string{
	"r101": "pin", "r102": "pin", "r103": "pin",
	"r201": "qr",
	"r301": "key_storage", "r302": "key_storage", "r303": "key_storage",
	"r304": "key_storage", "r305": "key_storage", "r306": "key_storage",
}

// procOverlapWorld backfills a world (one stay) and then adds work for the
// next run: two PIN arrivals, a QR arrival and six key-box arrivals.
func procOverlapWorld(t *testing.T, wrap func(http.Handler) http.Handler) (*procWorld, string) {
	w := newProcWorld(t, procOverlapRooms, wrap)
	w.hotelStay("p0", "r103", -1, 2)
	w.run(ExitOK, "backfill")
	w.hotelStay("p1", "r101", 0, 2)
	w.hotelStay("p2", "r102", 1, 3)
	w.hotelStay("q1", "r201", 0, 3)
	for i := range 6 {
		w.hotelStay(fmt.Sprintf("k%d", i+1), fmt.Sprintf("r30%d", i+1), i%3, i%3+2)
	}
	return w, w.foreign()
}

type procChildResult struct {
	code    int
	took    time.Duration
	stdout  string
	stderr  string
	signal  bool
	started time.Time
}

// TestProcOverlappingRunsOneTakesTheLock starts ten runs on one state file
// at once while the key box answers slowly (200 ms a request, six to
// send, the first held until the others are done): one takes the lock and
// reconciles, the nine others exit 4 at once saying the state file is
// locked.
func TestProcOverlappingRunsOneTakesTheLock(t *testing.T) {
	if testing.Short() {
		t.Skip("ten child processes; skipped in -short")
	}
	const n = 10
	var slow atomic.Bool
	var exited atomic.Int32
	var gate sync.Once
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if slow.Load() && isKeyBoxAPI(r) {
				// The run holding the lock holds it at least until the
				// nine others have given up (or 10 s), however slowly
				// a loaded machine starts them.
				gate.Do(func() {
					for deadline := time.Now().Add(10 * time.Second); exited.Load() < n-1 && time.Now().Before(deadline); {
						time.Sleep(10 * time.Millisecond)
					}
				})
				time.Sleep(200 * time.Millisecond)
			}
			next.ServeHTTP(rw, r)
		})
	}
	w, foreign := procOverlapWorld(t, wrap)
	slow.Store(true)

	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	errs := make([]*strings.Builder, n)
	for i := range n {
		c, _, _ := w.childCmd("run")
		outs[i], errs[i] = &strings.Builder{}, &strings.Builder{}
		c.Stdout, c.Stderr = outs[i], errs[i]
		cmds[i] = c
	}
	results := make([]procChildResult, n)
	var wg sync.WaitGroup
	for i, c := range cmds {
		results[i].started = time.Now()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			err := c.Wait()
			exited.Add(1)
			r := &results[i]
			r.took = time.Since(r.started)
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Errorf("child %d: %v", i, err)
			}
			r.code = c.ProcessState.ExitCode()
			r.signal = r.code == -1
			r.stdout, r.stderr = outs[i].String(), errs[i].String()
		})
	}
	wg.Wait()
	slow.Store(false)

	var winners, locked int
	for i, r := range results {
		switch {
		case r.signal:
			t.Errorf("child %d died of a signal: %s", i, r.stderr)
		case r.code == ExitOK || r.code == ExitPartial:
			winners++
			t.Logf("child %d reconciled: exit %d in %v", i, r.code, r.took.Round(time.Millisecond))
			var rep reconcile.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Errorf("child %d: report is not JSON: %v", i, err)
				continue
			}
			if done := countOps(&rep, reconcile.OpCreate, reconcile.ResultDone); done < 9 {
				t.Errorf("the run holding the lock created %d credentials, want at least 9: %v", done, rep.Counts())
			}
		case r.code == ExitLocked:
			locked++
			if !strings.Contains(strings.ToLower(r.stderr), "lock") {
				t.Errorf("child %d exited %d without saying why: %q", i, r.code, r.stderr)
			}
			if r.took > 2*time.Second {
				t.Errorf("child %d took %v to report the lock; want at once (< 2 s)", i, r.took)
			}
			if r.stdout != "" {
				t.Errorf("child %d was locked out but printed a report: %s", i, r.stdout)
			}
		default:
			t.Errorf("child %d exited %d after %v\n%s", i, r.code, r.took, r.stderr)
		}
	}
	var slowest time.Duration
	for _, r := range results {
		if r.code == ExitLocked {
			slowest = max(slowest, r.took)
		}
	}
	t.Logf("%d reconciled, %d locked out (slowest %v)", winners, locked, slowest.Round(time.Millisecond))
	if winners != 1 || locked != n-1 {
		t.Errorf("%d runs reconciled and %d were locked out, want 1 and %d", winners, locked, n-1)
	}
	// The runs the lock turned away wrote nothing: one run in the state.
	db := openState(t, w.statePath(), state.Options{ReadOnly: true})
	runs, err := db.Runs(t.Context(), 0)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 { // the backfill and the winner
		t.Errorf("state records %d runs, want 2 (the backfill and the one that held the lock)", len(runs))
	}
	w.settle()
	w.checkInvariants(foreign)
}

// TestProcKilledLockHolderFreesTheLock holds a run mid-way (its second
// key-box request waits) to show it holds the lock, then lets it go on and
// be SIGKILLed right after that request: the kernel drops its flock, so the
// next run takes the lock, with no stale-lock clean-up, and finishes the job.
func TestProcKilledLockHolderFreesTheLock(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a child process killed mid-run; skipped in -short")
	}
	held, release := make(chan struct{}), make(chan struct{})
	var creates atomic.Int32
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if isKeyBoxAPI(r) && r.Method == http.MethodPost && creates.Add(1) == 2 {
				close(held)
				<-release
			}
			next.ServeHTTP(rw, r)
		})
	}
	w, foreign := procOverlapWorld(t, wrap)
	creates.Store(0) // count the child's requests only

	c, _, stderr := w.childCmd("run", "KEYSYNC_CRASH_AT="+reconcile.CrashAfterRequest+":keybox:2")
	done := startUntil(t, c, held, "its second key-box request", stderr)
	// Mid-run, the child holds the lock.
	_, code, msg := w.tryRun("run")
	if code != ExitLocked || !strings.Contains(msg, "lock") {
		t.Errorf("a run while the child is mid-run exited %d (%q), want %d and a word about the lock", code, msg, ExitLocked)
	}
	close(release)
	waitChild(t, c, done, "the child did not reach its crash point within 10 s", stderr)
	if !procKilled(c) {
		t.Fatalf("the child was not killed at its crash point: exit %d\n%s", c.ProcessState.ExitCode(), stderr.String())
	}
	// The lock file stays behind; its presence means nothing.
	if _, err := os.Stat(w.statePath() + ".lock"); err != nil {
		t.Logf("lock file: %v", err)
	}
	lock, err := state.Lock(w.statePath())
	if err != nil {
		t.Fatalf("the lock is still held after its holder was SIGKILLed: %v", err)
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	runs := w.settle()
	t.Logf("the next run took the lock and converged after %d run(s)", runs)
	w.checkInvariants(foreign)
}
