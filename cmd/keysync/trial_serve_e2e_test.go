package main

// A soak of the real-time path: `keysync serve` in-process, its business
// clock following the world's, through simulated days of a small hotel
// (PIN, QR and key-storage rooms) and a few Guestway apartments, with the
// sandbox 3RPMS's own webhooks, hand-made deliveries (duplicated, out of
// order, badly signed), nightly runs beside it, stops and faults. After
// every step the e2e invariants (checkInvariants) must hold.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/state"
)

// soakOnly skips a soak that waits in real time (serve's cron schedule,
// a webhook run's retry after 30 s, Guestway's shortest poll, days of
// debounces) unless KEYSYNC_SOAK is set: .ci/run runs them in a step of
// their own, so the README's test command stays quick.
func soakOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("KEYSYNC_SOAK") == "" {
		t.Skip("a soak in real time: set KEYSYNC_SOAK=1 to run it (CI does)")
	}
}

// soakServe is serve whose now() follows the world's clock.
type soakServe struct {
	*faultWorld
	t      *testing.T
	mu     sync.Mutex
	clock  time.Time
	setAt  time.Time
	addr   string
	stderr *syncBuffer
	// stopServe stops the serve start started (launchServe); nil when none
	// runs.
	stopServe func() error
	// foreignAtStart is fw.foreign() before serve started (invariant 6).
	foreignAtStart string
}

func newSoakServe(t *testing.T, fw *faultWorld, debounce string) *soakServe {
	t.Helper()
	listenFor(t, fw, debounce)
	ss := &soakServe{faultWorld: fw, t: t, clock: fw.now, setAt: time.Now()}
	t.Cleanup(func() { ss.stop() })
	return ss
}

// setNow moves the world's and serve's clocks.
func (ss *soakServe) setNow(at time.Time) {
	ss.mu.Lock()
	ss.clock, ss.setAt = at, time.Now()
	ss.mu.Unlock()
	ss.faultWorld.setNow(at)
}

// now is serve's clock: the world's instant, ticking from when it was set
// (events queued later than a run began are received after it).
func (ss *soakServe) now() time.Time {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.clock.Add(time.Since(ss.setAt))
}

// start starts serve and points the sandbox's webhooks at it.
func (ss *soakServe) start() {
	ss.t.Helper()
	ss.stderr = &syncBuffer{}
	addr, stop := launchServe(ss.t, ss.faultWorld, ss.now, ss.stderr)
	ss.mu.Lock()
	ss.addr, ss.stopServe = addr, stop
	ss.mu.Unlock()
}

// stop cancels serve (SIGTERM) and waits for it.
func (ss *soakServe) stop() error {
	ss.mu.Lock()
	stop := ss.stopServe
	ss.stopServe = nil
	ss.mu.Unlock()
	if stop == nil {
		return nil
	}
	return stop()
}

// post delivers a webhook body to serve, signed with secret.
func (ss *soakServe) post(body, secret string) int {
	ss.t.Helper()
	return postWebhook(ss.t, ss.addr, body, secret)
}

// queue returns the pending events and whether a run is in progress.
func (ss *soakServe) queue() (pending int, running bool) {
	t := ss.t
	t.Helper()
	db := openState(t, ss.statePath(), state.Options{ReadOnly: true})
	defer db.Close()
	ev, err := db.PendingEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	runs, err := db.Runs(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Status == state.RunRunning {
			running = true
		}
	}
	return len(ev), running
}

// settle waits until the sandbox has delivered what it had to send and
// serve has run every event it queued: nothing pending, no run going,
// the deliveries unchanged for half a second.
func (ss *soakServe) settle(what string) {
	t := ss.t
	t.Helper()
	stable, last := 0, -1
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		d := len(ss.sb.rpms.Deliveries())
		p, r := ss.queue()
		if d == last && p == 0 && !r {
			stable++
		} else {
			stable = 0
		}
		last = d
		if stable >= 5 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p, r := ss.queue()
	t.Fatalf("%s: serve did not settle within 60 s (pending %d, running %v)\n%s", what, p, r, ss.stderr.String())
}

// stopDuringFirstMutation stops serve, as SIGTERM does, while the first
// 3RPMS mutation after do (which makes serve write) is in flight, and
// waits until it has stopped.
func (ss *soakServe) stopDuringFirstMutation(do func()) {
	t := ss.t
	t.Helper()
	var once sync.Once
	stopped := make(chan struct{})
	ss.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		if mutationNaming(r, "") {
			once.Do(func() {
				go func() { ss.stop(); close(stopped) }()
				time.Sleep(200 * time.Millisecond)
			})
		}
		next.ServeHTTP(rw, r)
	})
	do()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("serve was not stopped")
	}
	ss.setFault(nil)
}

// metrics scrapes serve's /metrics.
func (ss *soakServe) metrics() map[string]float64 {
	ss.t.Helper()
	return parseMetrics(ss.t, scrape(ss.t, "http://"+ss.addr+"/metrics"))
}

// step runs one scenario step, settles, and checks the invariants.
func (ss *soakServe) step(what string, do func()) {
	ss.t.Helper()
	ss.t.Logf("step: %s (now %s)", what, ss.now().Format(time.RFC3339))
	do()
	ss.settle(what)
	ss.checkInvariants(ss.foreignAtStart)
	if ss.t.Failed() {
		ss.t.Fatalf("after step %q\n%s", what, ss.stderr.String())
	}
}

func (ss *soakServe) mustSandbox(err error) {
	ss.t.Helper()
	if err != nil {
		ss.t.Fatal(err)
	}
}

// soakRooms: a small hotel, PIN, QR and key-storage rooms; two apartments.
var (
	soakHotel = map[string]string{"r101": "pin", "r102": "pin", "r103": "pin", "r104": "pin",
		"r201": "qr", "r202": "qr", "r301": "key_storage", "r302": "key_storage"}
	soakApartments = map[string]string{"L1": "qr", "L2": "key_storage"}
)

// at is day n at hh:mm in the hotel's zone.
func at(n, hh, mm int) time.Time {
	loc, err := time.LoadLocation("Europe/Ljubljana")
	if err != nil {
		panic(err)
	}
	d := t0.AddDate(0, 0, n)
	return time.Date(d.Year(), d.Month(), d.Day(), hh, mm, 0, 0, loc)
}

// soakHotelServing books the soak hotel's and apartments' first stays,
// backfills, and starts serve at 10:00 on day 0.
func soakHotelServing(t *testing.T) (*faultWorld, *soakServe) {
	t.Helper()
	fw := newFaultWorld(t, soakHotel, soakApartments)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r201", 0, 3)
	fw.hotelStay("s3", "r301", 1, 3)
	fw.hotelStay("s4", "r102", 2, 5)
	fw.addReservation("g1", "L1", 0, 2)
	fw.addReservation("g2", "L2", 1, 4)
	fw.mustExec(ExitOK, "backfill")
	ss := newSoakServe(t, fw, "100ms")
	ss.foreignAtStart = fw.foreign()
	ss.setNow(at(0, 10, 0))
	ss.start()
	return fw, ss
}

// TestTrialServeSoak drives serve through three simulated days.
func TestTrialServeSoak(t *testing.T) {
	soakOnly(t)
	t.Parallel()
	fw, ss := soakHotelServing(t)

	ss.step("same-day booking", func() {
		ss.mustSandbox(fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "late1", RoomID: "r103", Arrival: day(0), Departure: day(1), ReservationID: "res-late1"}))
	})
	ss.step("date change on a QR stay", func() { ss.mustSandbox(fw.sb.rpms.ChangeDates("s2", day(0), day(4))) })
	ss.step("room move PIN->PIN", func() { ss.mustSandbox(fw.sb.rpms.MoveStay("s1", "r104")) })
	ss.step("room move key storage->QR", func() { ss.mustSandbox(fw.sb.rpms.MoveStay("s3", "r202")) })
	ss.step("key deleted by 3RPMS", func() { ss.mustSandbox(fw.sb.rpms.DeleteKey(fw.key("s4").ID)) })
	ss.step("cancellation", func() { ss.mustSandbox(fw.sb.rpms.CancelReservation("res-s4")) })
	ss.step("reactivation", func() { ss.mustSandbox(fw.sb.rpms.ReactivateReservation("res-s4")) })
	ss.step("burst for one stay", func() {
		for i := range 5 {
			ss.mustSandbox(fw.sb.rpms.ChangeDates("late1", day(0), day(1+i%3)))
			room := "r103"
			if i%2 == 0 {
				room = "r302"
			}
			ss.mustSandbox(fw.sb.rpms.MoveStay("late1", room))
		}
	})
	ss.step("reservation cancelled and another stay's key deleted in one batch", func() {
		fw.hotelStay("s5", "r302", 0, 2)
		ss.settle("s5 booked")
		ss.mustSandbox(fw.sb.rpms.CancelReservation("res-late1"))
		ss.mustSandbox(fw.sb.rpms.DeleteKey(fw.key("s5").ID))
	})
	ss.step("stay outside the window", func() {
		ss.mustSandbox(fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "far", RoomID: "r103", Arrival: day(20), Departure: day(22), ReservationID: "res-far"}))
	})
	ss.step("stay moved out of the window", func() { ss.mustSandbox(fw.sb.rpms.ChangeDates("s2", day(20), day(23))) })
	ss.step("stay moved back into the window", func() { ss.mustSandbox(fw.sb.rpms.ChangeDates("s2", day(0), day(3))) })
	ss.step("duplicated and out-of-order deliveries", func() {
		for _, b := range []string{
			`{"event":"room_stay.deleted","data":{"id":"s1"}}`, // stale: s1 lives
			`{"event":"room_stay.created","data":{"id":"late1"}}`,
			`{"event":"room_stay.created","data":{"id":"late1"}}`,
			`{"event":"room_access_key.deleted","data":{"id":"` + fw.key("s1").ID + `"}}`, // not deleted at all
			`{"event":"reservation.updated","data":{"id":"res-s4"}}`,
		} {
			if code := ss.post(b, sandboxWebhookSecret); code != http.StatusAccepted {
				t.Errorf("%s answered %d", b, code)
			}
		}
	})
	ss.step("bad signatures", func() {
		if code := ss.post(`{"event":"room_stay.deleted","data":{"id":"s1"}}`, "nope"); code != http.StatusUnauthorized {
			t.Errorf("bad signature answered %d", code)
		}
	})
	m := ss.metrics()
	t.Logf("metrics: %v", m)
	if m[`keysync_webhooks_total{result="bad_signature"}`] != 1 {
		t.Errorf("bad_signature = %v", m[`keysync_webhooks_total{result="bad_signature"}`])
	}
}

// TestTrialServeKeyDeletedAfterAReservationEvent: a reservation.updated
// (another guest's cancellation) and then a room_access_key.deleted for a
// stay arriving today, within one debounce, become one targeted run of the
// whole property. The deleted key's stay must be keyed again by it: the
// guest arrives today and no other event will come for the stay.
func TestTrialServeKeyDeletedAfterAReservationEvent(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(4), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	ss := newSoakServe(t, fw, "300ms")
	ss.setNow(at(0, 10, 0))
	ss.start()
	old := fw.key("s2").ID
	ss.mustSandbox(fw.sb.rpms.CancelReservation("res-s1")) // reservation.updated
	ss.mustSandbox(fw.sb.rpms.DeleteKey(old))              // room_access_key.deleted, same batch
	ss.settle("the batch")
	if s, _ := fw.sb.rpms.Stay("s2"); s.KeyID == "" || s.KeyID == old {
		t.Errorf("s2, arriving today, holds no key after its key was deleted (key %q, old %s)\n%s", s.KeyID, old, ss.stderr.String())
	}
	fw.checkInvariants("")
}

// failFirst answers the first n requests match picks with answer, then
// passes everything on.
func failFirst(n int, match func(r *http.Request) bool, answer faultFunc) faultFunc {
	var mu sync.Mutex
	left := n
	return func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		hit := left > 0 && match(r)
		if hit {
			left--
		}
		mu.Unlock()
		if hit {
			answer(rw, r, next)
			return
		}
		next.ServeHTTP(rw, r)
	}
}

// TestTrialServeWebhookRunWith5xxIsRetried: a same-day booking whose
// targeted run meets a 503 on its 3RPMS write (or on the key box's
// create, a QR invite's too) has done nothing for the stay: its event must
// stay queued and be run again (after 30 s), not be marked done, or the
// guest waits for the nightly run.
func TestTrialServeWebhookRunWith5xxIsRetried(t *testing.T) {
	soakOnly(t)
	t.Parallel()
	for _, tc := range []struct {
		name  string
		room  string
		match func(r *http.Request) bool
	}{
		{"3rpms mutation", "r101", func(r *http.Request) bool { return mutationNaming(r, "") }},
		{"key-box create", "r301", func(r *http.Request) bool { return requestTo(r, reconcile.SystemKeyBox, http.MethodPost) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fw := newFaultWorld(t, map[string]string{"r101": "pin", "r301": "key_storage"}, nil)
			fw.mustExec(ExitOK, "backfill")
			ss := newSoakServe(t, fw, "100ms")
			ss.setNow(at(0, 10, 0))
			ss.start()
			fw.setFault(failFirst(1, tc.match, func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) {
				http.Error(rw, "unavailable", http.StatusServiceUnavailable)
			}))
			ss.mustSandbox(fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "late", RoomID: tc.room, Arrival: day(0), Departure: day(1), ReservationID: "res-late"}))
			deadline := time.Now().Add(50 * time.Second)
			for time.Now().Before(deadline) {
				if s, _ := fw.sb.rpms.Stay("late"); s.KeyID != "" {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if s, _ := fw.sb.rpms.Stay("late"); s.KeyID == "" {
				p, _ := ss.queue()
				t.Fatalf("a same-day booking whose webhook run met one 503 is not keyed 50 s later (events pending: %d)\n%s", p, ss.stderr.String())
			}
			ss.settle("the retry")
			fw.checkInvariants("")
		})
	}
}

// TestTrialServeSoakDays: serve through three days with nightly runs
// beside it (another process, holding the lock), faults on the webhook
// runs (a short 429, lost answers), a stop in the middle of a targeted run
// and a restart, and a few assumption switches.
func TestTrialServeSoakDays(t *testing.T) {
	soakOnly(t)
	t.Parallel()
	fw, ss := soakHotelServing(t)
	errorsAsAnswered := func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) {
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, "slow down", http.StatusTooManyRequests)
	}
	ss.step("a short 429 on the webhook run's read", func() {
		fw.setFault(failFirst(1, func(r *http.Request) bool { return r.URL.Path == "/graphql" }, errorsAsAnswered))
		fw.hotelStay("d0a", "r103", 0, 1)
	})
	ss.step("3RPMS create's answer lost", func() {
		fw.setFault(failFirst(1, func(r *http.Request) bool { return mutationNaming(r, "") }, sinktestLose))
		fw.hotelStay("d0b", "r104", 0, 2)
	})
	ss.step("OpenApp create's answer lost", func() {
		fw.setFault(failFirst(1, func(r *http.Request) bool { return requestTo(r, reconcile.SystemOpenApp, http.MethodPost) }, sinktestLose))
		fw.hotelStay("d0c", "r202", 0, 2)
	})
	ss.step("key-box create's answer lost", func() {
		fw.setFault(failFirst(1, func(r *http.Request) bool { return requestTo(r, reconcile.SystemKeyBox, http.MethodPost) }, sinktestLose))
		fw.hotelStay("d0d", "r302", 0, 1)
	})
	fw.setFault(nil)

	ss.step("a booking while the nightly run holds the lock", func() {
		unlock := fw.holdLock()
		ss.mustSandbox(fw.sb.rpms.ChangeDates("d0a", day(0), day(2)))
		time.Sleep(500 * time.Millisecond)
		unlock()
	})

	ss.step("serve stopped in the middle of a targeted run, then started again", func() {
		ss.stopDuringFirstMutation(func() { ss.mustSandbox(fw.sb.rpms.MoveStay("d0b", "r103")) })
		ss.start()
	})

	// Day 1: the nightly run at 04:15, then the day's webhooks.
	ss.setNow(at(1, 4, 15))
	ss.step("nightly run, day 1", func() {
		if r := fw.exec("run", nil); r.code != ExitOK {
			t.Errorf("nightly run exited %d: %v\n%s", r.code, r.err, r.stderr)
		}
	})
	ss.setNow(at(1, 12, 0)) // before the day's departures end (13:00): serve withdraws them at the nightly run
	ss.step("3RPMS message-only errors and rolled-back documents: a move onto another integration's room", func() {
		fw.sb.rpms.SetMessageOnlyErrors(true)
		fw.sb.rpms.SetRollbackDocuments(true)
		fw.hotelStay("d1a", "r104", 1, 3)
		ss.settle("d1a")
		ss.mustSandbox(fw.sb.rpms.MoveStay("d1a", "r101"))
	})
	ss.step("OpenApp PUT only narrows: a QR stay extended", func() {
		fw.sb.openapp.SetPutOnlyNarrows(true)
		ss.mustSandbox(fw.sb.rpms.ChangeDates("s2", day(0), day(5)))
	})
	ss.step("key box lists in UTC and shows cancelled as a status: a key-storage stay cancelled", func() {
		fw.sb.keybox.SetListInUTC(true)
		fw.sb.keybox.SetCancelledAsStatus(true)
		ss.mustSandbox(fw.sb.rpms.CancelReservation("res-s3"))
	})
	ss.step("same-day booking and its delete", func() {
		fw.hotelStay("d1b", "r302", 1, 2)
		ss.settle("d1b")
		ss.mustSandbox(fw.sb.rpms.DeleteStay("d1b"))
	})

	// Day 2.
	ss.setNow(at(2, 4, 15))
	ss.step("nightly run, day 2", func() {
		if r := fw.exec("run", nil); r.code != ExitOK {
			t.Errorf("nightly run exited %d: %v\n%s", r.code, r.err, r.stderr)
		}
	})
	ss.setNow(at(2, 12, 30))
	ss.step("late arrival for tonight and a shortened stay", func() {
		fw.hotelStay("d2a", "r102", 2, 3)
		ss.mustSandbox(fw.sb.rpms.ChangeDates("s4", day(2), day(3)))
	})
	ss.setNow(at(3, 4, 15))
	ss.step("nightly run, day 3", func() {
		if r := fw.exec("run", nil); r.code != ExitOK {
			t.Errorf("nightly run exited %d: %v\n%s", r.code, r.err, r.stderr)
		}
	})
	m := ss.metrics()
	for k, v := range m {
		if strings.HasPrefix(k, "keysync_webhooks_total") || strings.HasPrefix(k, "keysync_last_run_exit") {
			t.Logf("%s = %v", k, v)
		}
	}
}

func sinktestLose(rw http.ResponseWriter, r *http.Request, next http.Handler) {
	fault.Drop(rw, r, next)
}

// TestTrialServeStoppedDuringAMove: serve stopped (SIGTERM) while the
// targeted run of a room move has its 3RPMS write in flight, then started
// again: the move must be finished (one live key, on the new room), as a
// run killed at any point is finished by the next one.
func TestTrialServeStoppedDuringAMove(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(4), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	ss := newSoakServe(t, fw, "100ms")
	ss.setNow(at(0, 10, 0))
	ss.start()
	ss.stopDuringFirstMutation(func() { ss.mustSandbox(fw.sb.rpms.MoveStay("s1", "r102")) })
	first := ss.stderr.String()
	ss.start()
	ss.settle("the restart")
	fw.checkInvariants("")
	if t.Failed() {
		t.Logf("first serve:\n%s\nsecond serve:\n%s", first, ss.stderr.String())
	}
}

// TestTrialServeNightlyRunCoversAKeyDeletedEvent: a room_access_key.deleted
// still gathering when serve's own scheduled run starts is covered by that
// full run, which read every stay. The full run must then leave the stay
// with a key, or the event must stay queued for the targeted run that
// gives it one: a guest in house whose key staff deleted is not left
// without one until the next night.
func TestTrialServeNightlyRunCoversAKeyDeletedEvent(t *testing.T) {
	soakOnly(t)
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(3), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	// Every minute, with the longest debounce: the scheduled run starts
	// while the event gathers.
	fw.editConfig("properties:\n", "schedule: \"* * * * *\"\nlisten: 127.0.0.1:0\nwebhook_debounce: 1m\nproperties:\n")
	ss := newSoakServe(t, fw, "1m")
	ss.setNow(at(0, 10, 0))
	if s := time.Now().Second(); s > 50 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	ss.start()
	old := fw.key("s1").ID
	ss.mustSandbox(fw.sb.rpms.DeleteKey(old))
	full := func() int { return finishedRuns(t, ss.statePath(), reconcile.ModeRun) }
	deadline := time.Now().Add(70 * time.Second)
	for full() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if full() == 0 {
		t.Fatalf("no scheduled run within 70 s\n%s", ss.stderr.String())
	}
	ss.settle("the scheduled run and the event")
	if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID == "" {
		p, _ := ss.queue()
		t.Errorf("s1, in house, holds no key after serve's scheduled run covered its room_access_key.deleted (events pending %d)\n%s", p, ss.stderr.String())
	}
}

// TestTrialServeStatusKeepsTheNightsProblems: `keysync status` after a
// nightly run that needs a person (s2 arrives today in a room another
// integration keyed) still names that problem after serve's webhook run
// for another stay, as /metrics does (TestServeMetricsFromTheRecord): a
// targeted run read one stay and did not clear the night's problem.
func TestTrialServeStatusKeepsTheNightsProblems(t *testing.T) {
	t.Parallel()
	fw := nightNeedingAPerson(t)
	status := func() statusReport {
		t.Helper()
		r := fw.runOn(clocktest.New(fw.now), nil, "status", "--json")
		if r.code != ExitOK {
			t.Fatalf("status exited %d: %v\n%s", r.code, r.err, r.stderr)
		}
		var st statusReport
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		return st
	}
	conflicts := func(st statusReport) int {
		n := 0
		for _, note := range st.Notes {
			if note.Kind == reconcile.NoteConflict && note.Stay.ID == "s2" {
				n++
			}
		}
		return n + len(st.Problems)
	}
	if conflicts(status()) == 0 {
		t.Fatal("status after the nightly run does not name s2's conflict: the test cannot tell")
	}
	ss := newSoakServe(t, fw, "100ms")
	ss.setNow(at(0, 10, 0))
	ss.start()
	fw.hotelStay("late", "r103", 0, 1)
	ss.settle("the webhook run")
	if s, _ := fw.sb.rpms.Stay("late"); s.KeyID == "" {
		t.Fatal("late not keyed")
	}
	st := status()
	if conflicts(st) == 0 {
		t.Errorf("after a webhook's run for another stay, keysync status no longer names s2's conflict (needs a person): problems %v, notes %v", st.Problems, st.Notes)
	}
}

// TestTrialServeKeyDeletedWhileLockedRetiresOnce: a room_access_key.deleted
// that arrives while another process's run holds the lock is retried every
// second; the key is retired once, and the stay's history says so once,
// not once a second for as long as the other run takes.
func TestTrialServeKeyDeletedWhileLockedRetiresOnce(t *testing.T) {
	t.Parallel()
	fw, ss, unlock := keyDeletedWhileLocked(t)
	time.Sleep(4 * time.Second)
	unlock()
	ss.settle("the event after the lock")
	fw.checkInvariants("")
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"history", "--config", fw.cfg, "--stay", "s1"}, &out, &errb, fw.getenv); err != nil {
		t.Fatalf("history: %v\n%s", err, errb.String())
	}
	n := strings.Count(out.String(), "room_access_key.deleted")
	if n != 1 {
		t.Errorf("s1's history names the key's deletion %d times, want 1:\n%s", n, out.String())
	}
}

// keyDeletedWhileLocked starts serve on a hotel whose stay s1 holds a
// key, takes the state file's lock as another process's run would, and
// has 3RPMS delete s1's key: its event waits until unlock.
func keyDeletedWhileLocked(t *testing.T) (fw *faultWorld, ss *soakServe, unlock func()) {
	t.Helper()
	fw = newFaultWorld(t, pinRooms(3), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	ss = newSoakServe(t, fw, "100ms")
	ss.setNow(at(0, 10, 0))
	ss.start()
	unlock = fw.holdLock()
	ss.mustSandbox(fw.sb.rpms.DeleteKey(fw.key("s1").ID))
	return fw, ss, unlock
}

// TestTrialServeGuestwayPoll: serve's poll of a Guestway property
// (poll_every: 1m, the least) keys a reservation made today and withdraws
// one cancelled today, within a poll.
func TestTrialServeGuestwayPoll(t *testing.T) {
	soakOnly(t)
	t.Parallel()
	fw := newFaultWorld(t, nil, map[string]string{"L1": "qr", "L2": "key_storage", "L3": "key_storage"})
	fw.addReservation("g1", "L1", 0, 2)
	fw.addReservation("g2", "L2", 0, 3)
	fw.mustExec(ExitOK, "backfill")
	fw.editConfig("      token: ${KEYSYNC_GUESTWAY_TOKEN}\n", "      token: ${KEYSYNC_GUESTWAY_TOKEN}\n      poll_every: 1m\n")
	fw.editConfig("properties:\n", "listen: 127.0.0.1:0\nproperties:\n")
	ss := newSoakServe(t, fw, "100ms")
	ss.setNow(at(0, 10, 0))
	ss.start()
	fw.addReservation("g3", "L3", 0, 1)
	ss.mustSandbox(fw.sb.guestway.SetStatus("g2", "cancelled"))
	waitPoll := func() {
		deadline := time.Now().Add(75 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(ss.stderr.String(), `"mode":"targeted"`) && strings.Contains(ss.stderr.String(), "reconcile finished") {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("no poll within 75 s\n%s", ss.stderr.String())
	}
	waitPoll()
	ss.settle("the poll")
	live := map[string]int{}
	for _, c := range fw.credentials() {
		if c.Status.Live() {
			live[c.Stay.ID]++
		}
	}
	if live["g3"] == 0 {
		t.Errorf("g3, arriving today, has no credential after a poll")
	}
	// g2's invite (shared portals) is disabled, deleted after its window;
	// its key-box access cancelled.
	for _, inv := range fw.invites() {
		if strings.Contains(inv.Name, "g2") && inv.Enabled && inv.ValidTo.After(fw.now) {
			t.Errorf("g2, cancelled today, still holds an enabled invite %s after a poll", inv.ID)
		}
	}
	if n := len(fw.accesses()); n != 1 {
		t.Errorf("%d key-box accesses after the poll, want g3's alone", n)
	}
	fw.checkInvariants("")
}
