package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// TestTrialServeEventOfARepeatedFailureIsDone: a same-day stay whose 3RPMS
// key create is refused run after run (repeated_failure: a problem for a
// person) has its webhook event marked done by serve's targeted run, as
// the README says ("an action failing three runs in a row is a problem for
// a person, and its events are done"). The create's assign, skipped for
// want of the key, must not keep the run partial: otherwise the event is
// retried every 10 minutes for ever, each retry a read and a refused write.
func TestTrialServeEventOfARepeatedFailureIsDone(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(2), nil)
	fw.mustExec(ExitOK, "backfill")
	fw.hotelStay("late", "r102", 0, 1)
	fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "createRoomAccessKey") },
		answerJSON(`{"data":{"a0":null},"errors":[{"message":"room cannot hold a key","path":["a0"]}]}`)))
	for i := 0; i < 2; i++ { // reconcile's repeatLimit
		fw.mustExec(ExitPartial, "run", "--stay", "late")
	}
	ss := newSoakServe(t, fw, "100ms")
	ss.setNow(fw.now)
	ss.start()
	before := finishedRuns(t, ss.statePath(), reconcile.ModeTargeted)
	if code := ss.post(`{"event":"room_stay.created","data":{"id":"late"}}`, sandboxWebhookSecret); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for finishedRuns(t, ss.statePath(), reconcile.ModeTargeted) == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if finishedRuns(t, ss.statePath(), reconcile.ModeTargeted) == before {
		t.Fatalf("no targeted run within 20 s\n%s", ss.stderr.String())
	}
	// The event is marked done right after the run (or never: the next
	// try is 30 s away).
	pending := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if pending, _ = ss.queue(); pending == 0 {
			return
		}
	}
	t.Errorf("after a targeted run whose only undone work is a repeated failure (a problem for a person), %d event(s) stay queued, to be retried for ever\n%s", pending, ss.stderr.String())
}
