package main

// Fault-injection scenarios: the faithful sandboxes behind a middleware
// that answers 429 or 503, loses answers, rewrites answers, or changes the
// world between keysync's read and its first write. Every scenario ends
// with the invariants (checkInvariants) once it is back in a
// consistent state, and asserts each run's exit code. keysync runs on a
// fake clock (faultWorld.exec), so waits and backoff take no real time.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// --- 4. 429 and Retry-After ------------------------------------------------

// TestFault429RetryAfterWaitedOut answers the first 3RPMS mutation with 429
// and a Retry-After within the run's patience (60 s): keysync waits it out
// on its clock (at least the value, at least 1 s for 0, negative or
// malformed values), sends the mutation again, and finishes the run.
func TestFault429RetryAfterWaitedOut(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		value func(now time.Time) string
		want  time.Duration
	}{
		{"seconds", func(time.Time) string { return "7" }, 7 * time.Second},
		{"http-date", func(now time.Time) string {
			// Round up: an HTTP date has whole seconds.
			at := now.Add(3 * time.Second)
			if t := at.Truncate(time.Second); !t.Equal(at) {
				at = t.Add(time.Second)
			}
			return at.UTC().Format(http.TimeFormat)
		}, 3 * time.Second},
		{"zero", func(time.Time) string { return "0" }, time.Second},
		{"negative", func(time.Time) string { return "-1" }, time.Second},
		{"garbage", func(time.Time) string { return "garbage" }, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fw, foreign := hotelWorld(t, map[string]string{"r101": "pin", "r102": "pin"}, booking{"s1", "r101", 0, 2}, booking{"s2", "r102", 1, 3})
			var mutations reqCounter
			var (
				sent     string
				sleepsAt = -1
				clockAt  time.Time
				runClock = fw.clockForNextRun()
			)
			fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "") && mutations.add("mutation") == 1 },
				func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) {
					clockAt = runClock.Now()
					sleepsAt = len(runClock.Sleeps())
					sent = tc.value(clockAt)
					rw.Header().Set("Retry-After", sent)
					rw.Header().Set("Content-Type", "application/json")
					rw.WriteHeader(http.StatusTooManyRequests)
					rw.Write([]byte(`{"errors":[{"message":"too many requests"}]}`))
				}))
			run := fw.mustExec(ExitOK, "backfill")
			fw.setFault(nil)

			if sleepsAt < 0 {
				t.Fatal("keysync sent no mutation")
			}
			var waited time.Duration
			for _, d := range run.clock.Sleeps()[sleepsAt:] {
				waited = max(waited, d)
			}
			if waited < tc.want || waited >= 60*time.Second {
				t.Errorf("Retry-After %q: longest wait after the 429 was %s, want ≥ %s (and within the run's 60 s patience); sleeps %v",
					sent, waited, tc.want, run.clock.Sleeps())
			}
			t.Logf("Retry-After %q: waited %s", sent, waited)
			if el := run.clock.Now().Sub(clockAt); el < tc.want {
				t.Errorf("Retry-After %q: the clock moved %s after the 429, want ≥ %s", sent, el, tc.want)
			}
			// The refused mutation was sent again: create and assign landed.
			if n := mutations.get("mutation"); n < 3 {
				t.Errorf("%d mutation requests, want the refused one again plus the assign (≥ 3)", n)
			}
			allDone(t, "backfill", run.rep)
			if fw.key("s1").Type != rpmsandbox.KeyTypePin || fw.key("s2").Type != rpmsandbox.KeyTypePin {
				t.Error("stays not keyed after the wait")
			}
			fw.checkInvariants(foreign)
		})
	}
}

// TestFault429TooLongDefersThatSystem answers the first 3RPMS mutation with
// Retry-After: 86400, far beyond the run's patience: 3RPMS is deferred for
// the run (its writes skipped, the report's failure says rate limited,
// exit 3) while OpenApp's invite and the key box's access of the same run
// land; the next run finishes.
func TestFault429TooLongDefersThatSystem(t *testing.T) {
	t.Parallel()
	fw, foreign := hotelWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"},
		booking{"s1", "r101", 0, 2},
		booking{"s2", "r201", 0, 2},
		booking{"s3", "r301", 0, 2},
	)
	mutations := fw.refuseFirstMutation("86400")
	run := fw.mustExec(ExitPartial, "backfill")
	fw.setFault(nil)

	if n := mutations.get("mutation"); n != 1 {
		t.Errorf("%d 3RPMS mutation requests, want 1 (the refused one; the rest deferred)", n)
	}
	for _, d := range run.clock.Sleeps() {
		if d >= 60*time.Second {
			t.Errorf("keysync waited %s although the Retry-After is beyond its patience", d)
		}
	}
	var failure *reconcile.Failure
	for i, f := range run.rep.Failures {
		if f.System == reconcile.System3RPMS {
			failure = &run.rep.Failures[i]
		}
	}
	if failure == nil || !strings.Contains(strings.ToLower(failure.Err), "rate limit") {
		t.Errorf("want a 3RPMS failure saying it was rate limited, got %+v", run.rep.Failures)
	}
	for _, a := range run.rep.Actions() {
		switch {
		case a.System == reconcile.System3RPMS && a.Result == reconcile.ResultDone:
			t.Errorf("3RPMS %s %s done although 3RPMS was deferred", a.Op, a.Stay.ID)
		case a.System != reconcile.System3RPMS && a.Result != reconcile.ResultDone:
			t.Errorf("%s %s %s: %s (%s); the other systems' work must still land", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
		}
	}
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner == sandboxIntegration {
			t.Errorf("3RPMS key %s written although 3RPMS was deferred", k.ID)
		}
	}
	if n, m := len(fw.invites()), len(fw.accesses()); n != 1 || m != 1 {
		t.Errorf("%d invites and %d key-box accesses, want 1 and 1 (OpenApp and key box not deferred)", n, m)
	}
	fw.checkSafe(foreign)

	fw.mustExec(ExitOK, "run")
	if fw.key("s1").Type != rpmsandbox.KeyTypePin || fw.key("s2").Type != rpmsandbox.KeyTypeQR || fw.key("s3").Type != rpmsandbox.KeyTypeKeyStorage {
		t.Error("the next run did not finish the 3RPMS work")
	}
	fw.checkInvariants(foreign)
}

// --- 5. 5xx storms ----------------------------------------------------------

// TestFaultOpenAppDownForARun answers every OpenApp write with 503 for a
// whole backfill (its reads pass: the backfill's look for invites already
// issued finds none): the invite create (POST) is sent once and never
// again, OpenApp is cut off for the rest of the run, the 3RPMS PIN key and
// the key-box access still land, and the run exits 3. A second run with
// every OpenApp request refused cannot read the lost create back and
// sends no second one. The next run without faults converges.
func TestFaultOpenAppDownForARun(t *testing.T) {
	t.Parallel()
	fw, foreign := hotelWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r202": "qr", "r301": "key_storage"},
		booking{"s1", "r101", 0, 2},
		booking{"s2", "r201", 0, 2},
		booking{"s3", "r202", 1, 3},
		booking{"s4", "r301", 0, 2},
	)
	// storm answers OpenApp requests 503 (every one, or with reads false
	// all but GETs), counting them in seen by method and by method and
	// body.
	storm := func(seen *reqCounter, reads bool) faultFunc {
		return when(func(r *http.Request) bool {
			return requestTo(r, reconcile.SystemOpenApp, "") && (reads || r.Method != http.MethodGet)
		},
			func(rw http.ResponseWriter, r *http.Request, _ http.Handler) {
				seen.add(r.Method + " " + string(fault.Body(r)))
				seen.add(r.Method)
				fault.Answer503(rw)
			})
	}
	var seen reqCounter
	fw.setFault(storm(&seen, false))
	run := fw.mustExec(ExitPartial, "backfill")
	fw.setFault(nil)

	if n := seen.get(http.MethodPost); n != 1 {
		t.Errorf("%d OpenApp POSTs, want 1: the first create, then OpenApp cut off for the run (%v)", n, seen.all())
	}
	for label, n := range seen.all() {
		if strings.HasPrefix(label, "POST {") && n != 1 {
			t.Errorf("an invite create was sent %d times; a create must never be re-sent", n)
		}
	}
	if w := run.rep.Requests[reconcile.SystemOpenApp].Writes; w != 1 {
		t.Errorf("report counts %d OpenApp requests, want 1", w)
	}
	if !slices.ContainsFunc(run.rep.Failures, func(f reconcile.Failure) bool { return f.System == reconcile.SystemOpenApp }) {
		t.Errorf("no OpenApp failure in the report: %+v", run.rep.Failures)
	}
	if fw.key("s1").Type != rpmsandbox.KeyTypePin || fw.key("s4").Type != rpmsandbox.KeyTypeKeyStorage {
		t.Error("the PIN key and the key-box part did not land while OpenApp was down")
	}
	if len(fw.accesses()) != 1 {
		t.Errorf("%d key-box accesses, want 1", len(fw.accesses()))
	}
	for _, id := range []string{"s2", "s3"} {
		if s, _ := fw.sb.rpms.Stay(id); s.KeyID != "" {
			t.Errorf("QR stay %s got a key although its invite failed", id)
		}
	}
	fw.checkSafe(foreign)

	// A second run in the storm: reading back the lost create is a read,
	// tried 4 times in all; that stay gets no second create while its first
	// one's outcome is unknown.
	var seen2 reqCounter
	fw.setFault(storm(&seen2, true))
	run = fw.mustExec(ExitPartial, "run")
	fw.setFault(nil)
	t.Logf("second storm run: %v", seen2.all())
	if n := seen2.get(http.MethodGet); n != 4 {
		t.Errorf("%d OpenApp GETs reading back the lost create, want 4 (%v)", n, seen2.all())
	}
	if n := seen2.get(http.MethodPost); n > 1 {
		t.Errorf("%d OpenApp POSTs in the second storm run, want at most 1", n)
	}
	for label := range seen2.all() {
		for prev := range seen.all() {
			if strings.HasPrefix(label, "POST {") && label == prev {
				t.Errorf("the create whose outcome is unknown was sent again")
			}
		}
	}
	fw.checkSafe(foreign)

	fw.mustExec(ExitOK, "run")
	if fw.key("s2").Type != rpmsandbox.KeyTypeQR || fw.key("s3").Type != rpmsandbox.KeyTypeQR || len(fw.invites()) != 2 {
		t.Errorf("next run: %d invites", len(fw.invites()))
	}
	fw.checkInvariants(foreign)
}

// TestFaultOpenAppDownRetriesIdempotentCalls: an invite update (PUT) and an
// invite delete (DELETE) under a 100% 503 storm are each tried 4 times in
// all, with exponential backoff on keysync's clock, then OpenApp is cut
// off and the run exits 3; the next run without faults converges.
func TestFaultOpenAppDownRetriesIdempotentCalls(t *testing.T) {
	t.Parallel()
	fw, foreign := hotelWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r202": "qr"},
		booking{"s1", "r101", 0, 2},
		booking{"s2", "r201", 0, 2},
		booking{"s3", "r202", 0, 1},
	)
	fw.mustExec(ExitOK, "backfill")
	fw.converges()

	storm := func(seen *reqCounter) {
		fw.setFault(when(func(r *http.Request) bool { return requestTo(r, reconcile.SystemOpenApp, "") },
			func(rw http.ResponseWriter, r *http.Request, _ http.Handler) {
				seen.add(r.Method)
				fault.Answer503(rw)
			}))
	}
	backoff := func(run faultRun) {
		t.Helper()
		// Full jitter at 0.5 of 500 ms·2^n: 250 ms, 500 ms, 1 s.
		var got []time.Duration
		for _, d := range run.clock.Sleeps() {
			if d == 250*time.Millisecond || d == 500*time.Millisecond || d == time.Second {
				got = append(got, d)
			}
		}
		if !slices.Equal(got, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}) {
			t.Errorf("backoff waits %v, want 250ms 500ms 1s (all sleeps %v)", got, run.clock.Sleeps())
		}
	}

	// An extension: the invite is updated in place, PUT.
	if err := fw.sb.rpms.ChangeDates("s2", day(0), day(4)); err != nil {
		t.Fatal(err)
	}
	var seen reqCounter
	storm(&seen)
	run := fw.mustExec(ExitPartial, "run")
	fw.setFault(nil)
	if got := seen.all(); got[http.MethodPut] != 4 || len(got) != 1 {
		t.Errorf("OpenApp requests under the storm: %v, want exactly 4 PUTs", got)
	}
	backoff(run)
	fw.checkSafe(foreign)
	fw.mustExec(ExitOK, "run")
	for _, inv := range fw.invites() {
		if strings.Contains(inv.Name, ":s2]") && !inv.ValidTo.Equal(lj(day(4), 13)) {
			t.Errorf("s2's invite ends %s after the recovery run, want %s", inv.ValidTo, lj(day(4), 13))
		}
	}
	fw.checkInvariants(foreign)

	// s3 departs today; after check-out and grace its invite is deleted,
	// DELETE.
	fw.setNow(lj(day(1), 14))
	var seen2 reqCounter
	storm(&seen2)
	run = fw.mustExec(ExitPartial, "run")
	fw.setFault(nil)
	if got := seen2.all(); got[http.MethodDelete] != 4 || len(got) != 1 {
		t.Errorf("OpenApp requests under the storm: %v, want exactly 4 DELETEs", got)
	}
	backoff(run)
	if s, _ := fw.sb.rpms.Stay("s3"); s.KeyID != "" {
		t.Error("the departed stay's 3RPMS key was not revoked while only OpenApp was down")
	}
	fw.checkSafe(foreign)
	fw.mustExec(ExitOK, "run")
	for _, inv := range fw.invites() {
		if strings.Contains(inv.Name, ":s3]") {
			t.Errorf("departed stay's invite %s not deleted by the recovery run", inv.ID)
		}
	}
	fw.checkInvariants(foreign)
}

// TestFaultKeyBoxEveryOtherRequest503 answers every other key-box request
// with 503 (deterministically, the first one included): the run ends in a
// consistent state (nothing orphaned or duplicated) and the next run
// without faults converges.
func TestFaultKeyBoxEveryOtherRequest503(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t,
		map[string]string{"r101": "pin", "r301": "key_storage", "r302": "key_storage", "r303": "key_storage"},
		map[string]string{"L1": "key_storage", "L2": "key_storage"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r301", 0, 2)
	fw.hotelStay("s3", "r302", 0, 1)
	fw.hotelStay("s4", "r303", 1, 3)
	for i, l := range []string{"L1", "L2"} {
		if err := fw.sb.guestway.AddReservation(gwsandbox.Reservation{ID: fmt.Sprintf("G%d", i+1), Status: "confirmed",
			ArrivalDate: day(0), DepartureDate: day(2), ListingID: l, GuestName: "Guest"}); err != nil {
			t.Fatal(err)
		}
	}
	foreign := fw.foreign()
	var seen reqCounter
	fw.setFault(when(func(r *http.Request) bool { return sysOf(r) == reconcile.SystemKeyBox && seen.add("keybox")%2 == 1 }, sinktest.Unavailable))
	run := fw.mustExec(ExitPartial, "backfill")
	fw.setFault(nil)
	t.Logf("faulty run: %v; failures %+v", run.rep.Counts(), run.rep.Failures)
	if seen.get("keybox") == 0 {
		t.Fatal("no key-box request was made")
	}
	if fw.key("s1").Type != rpmsandbox.KeyTypePin {
		t.Error("the PIN key did not land while the key box failed")
	}
	fw.checkSafe(foreign)

	run = fw.mustExec(ExitOK, "run")
	t.Logf("recovery run: %v", run.rep.Counts())
	if n := len(fw.accesses()); n != 5 {
		t.Errorf("%d key-box accesses after the recovery run, want 5", n)
	}
	fw.checkInvariants(foreign)
}

// TestFaultRevocationFirstAfter3RPMSOutage: a stay departs while 3RPMS is
// down (every request 503, or only its mutations); the run cannot revoke
// its key and exits 3. The next run revokes it before anything else: the
// revoke is the first action of the plan and comes first in the first
// 3RPMS mutation, ahead of the create for the next guest of the room.
func TestFaultRevocationFirstAfter3RPMSOutage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"all-requests", "mutations-only"} {
		t.Run(mode, func(t *testing.T) {
			// The apartments keep a source readable, so the run is partial
			// rather than failed as a whole.
			fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "pin"}, map[string]string{"L1": "pin"})
			fw.hotelStay("s1", "r101", -2, 0) // departs today 11:00, grace to 13:00
			fw.hotelStay("s2", "r102", 0, 2)
			foreign := fw.foreign()
			fw.mustExec(ExitOK, "backfill")
			departed := fw.key("s1").ID

			fw.setNow(lj(day(0), 14))
			fw.hotelStay("s3", "r101", 0, 3) // the room's next guest
			var seen reqCounter
			fw.setFault(when(func(r *http.Request) bool {
				if r.URL.Path != "/graphql" {
					return false
				}
				kind := "query"
				if mutationNaming(r, "") {
					kind = "mutation"
				}
				seen.add(kind)
				return kind == "mutation" || mode == "all-requests"
			}, sinktest.Unavailable))
			run := fw.mustExec(ExitPartial, "run")
			fw.setFault(nil)
			if mode == "all-requests" {
				if got := seen.all(); got["query"] != 4 || got["mutation"] != 0 {
					t.Errorf("3RPMS requests during the outage: %v, want the read tried 4 times and no mutation", got)
				}
			} else if n := seen.get("mutation"); n != 1 {
				t.Errorf("%d mutations during the outage, want 1 (never re-sent, then 3RPMS cut off)", n)
			}
			if !slices.ContainsFunc(run.rep.Failures, func(f reconcile.Failure) bool { return f.System == reconcile.System3RPMS }) {
				t.Errorf("no 3RPMS failure reported: %+v", run.rep.Failures)
			}
			if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != departed {
				t.Fatalf("s1 holds %q; the outage should have kept the revoke from landing", s.KeyID)
			}
			fw.checkSafe(foreign)

			var first []byte
			fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
				if b := fault.Body(r); isGQLMutation(r, b) && first == nil {
					first = b
				}
				next.ServeHTTP(rw, r)
			})
			run = fw.mustExec(ExitOK, "run")
			fw.setFault(nil)
			var remote []reconcile.ActionReport
			for _, a := range run.rep.Actions() {
				if a.Op.Remote() {
					remote = append(remote, a)
				}
			}
			if len(remote) == 0 || remote[0].Op != reconcile.OpRevoke || remote[0].Stay.ID != "s1" {
				var ops []string
				for _, a := range run.rep.Actions() {
					ops = append(ops, fmt.Sprintf("%s %s", a.Op, a.Stay.ID))
				}
				t.Errorf("next run's actions %v; want the departed stay's revoke first", ops)
			}
			var doc struct {
				Query string `json:"query"`
			}
			json.Unmarshal(first, &doc)
			rm, cr := strings.Index(doc.Query, "removeRoomAccessKey"), strings.Index(doc.Query, "createRoomAccessKey")
			if rm < 0 || (cr >= 0 && cr < rm) {
				t.Errorf("first mutation of the next run does not revoke first:\n%s", doc.Query)
			}
			if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != "" {
				t.Error("departed stay still holds its key after the recovery run")
			}
			if fw.key("s3").Type != rpmsandbox.KeyTypePin {
				t.Error("the room's next guest has no key")
			}
			fw.checkInvariants(foreign)
		})
	}
}

// --- 12. Churn between read and write ---------------------------------------

// TestFaultChurnBetweenReadAndWrite changes the hotel just before keysync's
// first write (its first 3RPMS mutation): stays move, swap rooms, are
// extended, shortened or cancelled after keysync read them. After at most
// one more run the invariants hold and no stay holds a credential for a
// room it is not in: 3RPMS keys (by the state's record of their room),
// invite portals and key-box keys.
func TestFaultChurnBetweenReadAndWrite(t *testing.T) {
	t.Parallel()
	hotel := map[string]string{
		"r101": "pin", "r102": "pin", "r103": "pin",
		"r201": "qr", "r202": "qr", "r203": "qr",
		"r301": "key_storage", "r302": "key_storage", "r303": "key_storage",
	}
	// Pairs of stays per method: a in the first room, b in the second; the
	// third room is free.
	pairs := [][3]string{{"r101", "r102", "r103"}, {"r201", "r202", "r203"}, {"r301", "r302", "r303"}}
	// want is the churned run's exit code: keysync cannot see a change made
	// after its read, so its writes land as planned (0) and the next run
	// corrects them; an assign to a stay cancelled meanwhile is refused (3).
	churns := []struct {
		name  string
		want  int
		churn func(fw *faultWorld, a, b string, rooms [3]string) error
	}{
		{"moved", ExitOK, func(fw *faultWorld, a, b string, rooms [3]string) error {
			return fw.sb.rpms.MoveStay(a, rooms[2])
		}},
		{"swapped", ExitOK, func(fw *faultWorld, a, b string, rooms [3]string) error {
			return cmpErr(fw.sb.rpms.MoveStay(a, rooms[2]), fw.sb.rpms.MoveStay(b, rooms[0]), fw.sb.rpms.MoveStay(a, rooms[1]))
		}},
		{"extended", ExitOK, func(fw *faultWorld, a, b string, rooms [3]string) error {
			return fw.sb.rpms.ChangeDates(a, day(0), day(4))
		}},
		{"shortened", ExitOK, func(fw *faultWorld, a, b string, rooms [3]string) error {
			return fw.sb.rpms.ChangeDates(a, day(0), day(1))
		}},
		{"cancelled", ExitPartial, func(fw *faultWorld, a, b string, rooms [3]string) error {
			return fw.sb.rpms.CancelReservation("res-" + a)
		}},
	}
	for _, c := range churns {
		t.Run(c.name, func(t *testing.T) {
			fw := newFaultWorld(t, hotel, nil)
			for i, rooms := range pairs {
				fw.hotelStay(fmt.Sprintf("a%d", i), rooms[0], 0, 2)
				fw.hotelStay(fmt.Sprintf("b%d", i), rooms[1], 0, 3)
			}
			foreign := fw.foreign()
			churned := false
			fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
				if b := fault.Body(r); !churned && isGQLMutation(r, b) {
					churned = true
					for i, rooms := range pairs {
						if err := c.churn(fw, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i), rooms); err != nil {
							t.Errorf("churn: %v", err)
						}
					}
				}
				next.ServeHTTP(rw, r)
			})
			first := fw.exec("backfill", nil)
			fw.setFault(nil)
			if !churned {
				t.Fatal("keysync sent no mutation")
			}
			if first.code != c.want {
				t.Fatalf("backfill exited %d, want %d: %v\n%s", first.code, c.want, first.err, first.stderr)
			}
			if c.name == "cancelled" {
				for _, a := range first.rep.Actions() {
					if a.Result != reconcile.ResultDone && !(a.Op == reconcile.OpAssign && strings.HasPrefix(a.Stay.ID, "a")) {
						t.Errorf("%s %s %s: %s %s; only the cancelled stays' assigns should fail", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
					}
				}
			}
			fw.checkSafe(foreign)

			// The churn landed between read and write: the next run has
			// something to correct.
			second := fw.mustExec(ExitOK, "run")
			if len(second.rep.Actions()) == 0 {
				t.Error("the run after the churn had nothing to correct; the churn did not land between read and write")
			}
			fw.checkInvariants(foreign)
			fw.checkRooms()
		})
	}
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkRooms asserts that no stay holds a credential for a room it is not
// in, that no cancelled stay holds an enabled one, and that invites and
// key-box accesses span exactly their stay's window.
func (fw *faultWorld) checkRooms() {
	fw.t.Helper()
	t := fw.t
	stays := fw.stays()
	cfg, err := LoadConfig(fw.cfg, fw.getenv)
	if err != nil {
		t.Fatal(err)
	}
	window := func(s stayState) reconcile.Window {
		for i := range cfg.Properties {
			if cfg.Properties[i].Name == s.ref.Property {
				return cfg.Properties[i].policy().Window(s.arrival, s.departure)
			}
		}
		t.Fatalf("no property %s", s.ref.Property)
		return reconcile.Window{}
	}
	byRemote := map[string]reconcile.Credential{}
	for _, c := range fw.credentials() {
		if c.RemoteID != "" && c.Status.Live() {
			byRemote[string(c.System)+" "+c.RemoteID] = c
		}
	}
	for _, s := range fw.sb.rpms.Stays() {
		if s.KeyID == "" {
			continue
		}
		c, ok := byRemote["3rpms "+s.KeyID]
		switch {
		case !ok:
			t.Errorf("stay %s holds key %s that keysync has no live record of", s.ID, s.KeyID)
		case c.RoomID != s.RoomID:
			t.Errorf("stay %s is in %s but holds key %s issued for %s", s.ID, s.RoomID, s.KeyID, c.RoomID)
		}
	}
	for _, inv := range fw.invites() {
		ref, ours := openapp.ParseOwnerTag(inv.Name)
		if !ours || !inv.Enabled {
			continue
		}
		s := stays[ref.ID]
		if s.gone {
			t.Errorf("cancelled stay %s holds enabled invite %s", ref.ID, inv.ID)
		}
		for _, p := range inv.PortalIDs {
			if p != "portal-lobby" && p != "portal-garage" && p != "portal-"+s.room {
				t.Errorf("stay %s is in %s but its invite %s opens %s", ref.ID, s.room, inv.ID, p)
			}
		}
		if !slices.Contains(inv.PortalIDs, "portal-"+s.room) && fw.sb.hotel[s.room] == "qr" {
			t.Errorf("stay %s is in %s but its invite %s does not open it: %v", ref.ID, s.room, inv.ID, inv.PortalIDs)
		}
		if w := window(s); !s.gone && (!inv.ValidFrom.Equal(w.Start) || !inv.ValidTo.Equal(w.End)) {
			t.Errorf("stay %s (%s→%s) has invite %s valid %s→%s, want %s→%s", ref.ID, s.arrival, s.departure, inv.ID, inv.ValidFrom, inv.ValidTo, w.Start, w.End)
		}
	}
	for _, a := range fw.accesses() {
		c, ok := byRemote["keybox "+a.ID]
		if !ok {
			continue // reported by the invariants
		}
		s := stays[c.Stay.ID]
		if s.gone && a.End.After(fw.now) {
			t.Errorf("cancelled stay %s holds key-box access %s", c.Stay.ID, a.ID)
		}
		if a.KeyID != "key-"+s.room {
			t.Errorf("stay %s is in %s but its key-box access %s is for %s", c.Stay.ID, s.room, a.ID, a.KeyID)
		}
		if w := window(s); !s.gone && (!a.Start.Equal(w.Start) || !a.End.Equal(w.End)) {
			t.Errorf("stay %s (%s→%s) has key-box access %s %s→%s, want %s→%s", c.Stay.ID, s.arrival, s.departure, a.ID, a.Start, a.End, w.Start, w.End)
		}
	}
}

// --- 13. Bad credentials ----------------------------------------------------

// TestFaultBadCredentials runs with one wrong secret at a time: the run
// exits 2, the error names the header or setting to check, the wrong
// secret appears nowhere in the output, and when the source system refuses
// (3RPMS, Guestway) nothing at all is written anywhere.
func TestFaultBadCredentials(t *testing.T) {
	t.Parallel()
	hotel := map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"}
	apartments := map[string]string{"L1": "qr", "L2": "key_storage", "L3": "pin"}
	cases := []struct {
		name   string
		hotel  bool // else apartments
		env    string
		value  string
		setup  func(fw *faultWorld)
		hints  []string // one of them must appear
		source bool
	}{
		{name: "3rpms-token", hotel: true, env: "KEYSYNC_3RPMS_TOKEN", value: "wrong-3rpms-token-8f2k", hints: []string{"Authorization: Bearer"}, source: true},
		{name: "guestway-token", env: "KEYSYNC_GUESTWAY_TOKEN", value: "gw_wrongtoken7d3k9q", hints: []string{"gw_"}, source: true},
		{name: "guestway-partner-key", env: "KEYSYNC_GUESTWAY_PARTNER_KEY", value: "wrong-partner-key-55x", hints: []string{"X-Api-Key"}, source: true},
		{name: "guestway-scope", env: "KEYSYNC_GUESTWAY_TOKEN", value: "gw_readonlyreservations4q",
			setup: func(fw *faultWorld) {
				fw.sb.guestway.AddToken("gw_readonlyreservations4q", gwsandbox.ScopeReservationsRead)
			}, hints: []string{"scope"}, source: true},
		{name: "openapp-key", hotel: true, env: "KEYSYNC_OPENAPP_API_KEY", value: "wrong-openapp-key-3jd8", hints: []string{"Authorization: Bearer"}},
		{name: "keybox-password", hotel: true, env: "KEYSYNC_KEYBOX_PASSWORD", value: "wrong-box-password-9aa", hints: []string{"HTTP Basic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fw *faultWorld
			if tc.hotel {
				fw = newFaultWorld(t, hotel, nil)
				fw.hotelStay("s1", "r101", 0, 2)
			} else {
				fw = newFaultWorld(t, nil, apartments)
				fw.addReservation("G1", "L3", 0, 2)
			}
			if tc.setup != nil {
				tc.setup(fw)
			}
			// A good backfill first, so the faulty run has state and work.
			fw.mustExec(ExitOK, "backfill")
			if tc.hotel {
				fw.hotelStay("s2", "r101", 2, 4)
				fw.hotelStay("s3", "r201", 0, 2)
				fw.hotelStay("s4", "r301", 0, 2)
			} else {
				fw.addReservation("G2", "L1", 0, 2)
				fw.addReservation("G3", "L2", 0, 2)
				fw.addReservation("G4", "L3", 2, 4)
				fw.addAccess("G4", gwsandbox.Access{ID: "A4", LockID: "lock-3", LockName: "Front door", PIN: "493817"})
			}
			foreign := fw.foreign()
			keys, invites, accesses := len(fw.sb.rpms.Keys()), len(fw.sb.openapp.Invites()), len(fw.sb.keybox.Accesses())
			fw.sb.rpms.ResetRequests()
			fw.sb.openapp.ResetRequests()
			fw.sb.keybox.ResetRequests()
			getenv := func(k string) string {
				if k == tc.env {
					return tc.value
				}
				return sandboxEnv[k]
			}
			run := fw.exec("run", getenv)
			if run.code != ExitConfig {
				t.Errorf("exit %d, want %d (config/credentials): %v\n%s", run.code, ExitConfig, run.err, run.stderr)
			}
			msg := errString(run.err)
			t.Logf("exit %d: %s", run.code, msg)
			if !slices.ContainsFunc(tc.hints, func(h string) bool { return strings.Contains(msg, h) }) {
				t.Errorf("error %q names none of %q", msg, tc.hints)
			}
			// The report says what to fix, not that running again helps.
			if r := mustRunText(t, ExitConfig, getenv, "run", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339)); !strings.Contains(r.stdout, "A system refused a credential") || strings.Contains(r.stdout, "retries it") {
				t.Errorf("the report does not say a credential must be fixed:\n%s", r.stdout)
			}
			for k := range sandboxEnv {
				for _, secret := range []string{getenv(k), sandboxEnv[k]} {
					if strings.Contains(run.output(), secret) {
						t.Errorf("a secret (%s) appears in the output", k)
					}
				}
			}
			if strings.Contains(run.output(), tc.value) {
				t.Errorf("the wrong secret appears in the output")
			}
			if tc.source {
				if n := len(fw.sb.rpms.Keys()); n != keys {
					t.Errorf("3RPMS keys went from %d to %d although the source refused keysync", keys, n)
				}
				for _, q := range fw.sb.rpms.Requests() {
					if q.Operation == "mutation" {
						t.Errorf("3RPMS mutation %s sent although the source refused keysync", q.Name)
					}
				}
				if n := len(fw.sb.openapp.Invites()); n != invites {
					t.Errorf("OpenApp invites went from %d to %d although the source refused keysync", invites, n)
				}
				for _, q := range fw.sb.openapp.Requests() {
					t.Errorf("OpenApp %s %s sent although the source refused keysync", q.Method, q.Path)
				}
				if n := len(fw.sb.keybox.Accesses()); n != accesses {
					t.Errorf("key-box accesses went from %d to %d although the source refused keysync", accesses, n)
				}
				for _, q := range fw.sb.keybox.Requests() {
					t.Errorf("key-box %s %s sent although the source refused keysync", q.Method, q.Path)
				}
			}
			fw.checkSafe(foreign)

			fw.mustExec(ExitOK, "run")
			fw.checkInvariants(foreign)
		})
	}
}

// --- 7. Forward compatibility -----------------------------------------------

// TestFaultUnknownKeyTypeOnAStay: another integration's key on s1 comes
// back as a key type keysync does not know (RoomAccessNFC). The page reads
// without error, s1 is reported as a conflict and left alone, the other
// stays are keyed.
func TestFaultUnknownKeyTypeOnAStay(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "pin", "r103": "pin"}, nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 0, 2)
	fw.hotelStay("s3", "r103", 1, 3)
	planted, err := fw.sb.rpms.InjectKey("other-integration", rpmsandbox.Key{Type: rpmsandbox.KeyTypePin, PIN: "482913"}, "s1")
	if err != nil {
		t.Fatal(err)
	}
	foreign := fw.foreign()
	rewrote := 0
	fw.setFault(nfcFault(func() map[string]bool { return map[string]bool{planted: true} }, func() { rewrote++ }))
	// s1, in house, holds a key of another integration: a person is needed.
	rep := fw.mustExec(ExitAttention, "backfill").rep
	if rewrote == 0 {
		t.Fatal("the planted key never appeared in a room_stays answer")
	}
	check := func(rep *reconcile.Report) {
		t.Helper()
		var conflicts []string
		for _, n := range rep.Notes() {
			if n.Kind == reconcile.NoteConflict {
				conflicts = append(conflicts, n.Stay.ID)
			}
		}
		if !slices.Equal(conflicts, []string{"s1"}) {
			t.Errorf("conflict notes for %v, want [s1]", conflicts)
		}
		for _, a := range rep.Actions() {
			if a.Stay.ID == "s1" && a.Op != reconcile.OpClaim {
				t.Errorf("keysync acted on the stay holding the unknown key: %s", a.Op)
			}
			if a.Result != "" && a.Result != reconcile.ResultDone {
				t.Errorf("%s %s: %s %s", a.Op, a.Stay.ID, a.Result, a.Error)
			}
		}
		if s1, _ := fw.sb.rpms.Stay("s1"); s1.KeyID != planted {
			t.Errorf("s1 holds %q, want the planted key %q", s1.KeyID, planted)
		}
	}
	check(rep)
	if fw.key("s2").Type != rpmsandbox.KeyTypePin || fw.key("s3").Type != rpmsandbox.KeyTypePin {
		t.Error("the other stays were not keyed")
	}
	// s1 arrives today in a room the config says keysync keys, holding
	// another integration's key: done, but a person is needed (6).
	r := fw.mustExec(ExitAttention, "run")
	rep = r.rep
	check(rep)
	if len(rep.Actions()) != 0 {
		t.Errorf("second run planned %d actions", len(rep.Actions()))
	}
	if want := "a person is needed (see the report's Needs a person): sandbox-hotel: stay s1 in room "; r.err == nil || !strings.HasPrefix(r.err.Error(), want) {
		t.Errorf("the exit error does not name the property and the stay: %v, want it to begin %q", r.err, want)
	}
	fw.checkInvariants(foreign)
}

// nfcFault rewrites every 3RPMS read answer so that the keys ids() names
// come back as RoomAccessNFC, a type keysync does not know (the query's
// fragments select no field of it); seen is called for each answer that
// held one.
func nfcFault(ids func() map[string]bool, seen func()) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		if b := fault.Body(r); r.URL.Path != "/graphql" || isGQLMutation(r, b) {
			next.ServeHTTP(rw, r)
			return
		}
		fault.Rewrite(rw, r, next, func(doc []byte) []byte {
			want := ids()
			if !slices.ContainsFunc(slices.Collect(maps.Keys(want)), func(id string) bool { return bytes.Contains(doc, []byte(`"`+id+`"`)) }) {
				return doc // none of the keys in this answer
			}
			var v any
			if json.Unmarshal(doc, &v) != nil {
				return doc
			}
			if nfc(v, want) {
				seen()
			}
			out, _ := json.Marshal(v)
			return out
		})
	}
}

// nfc turns the keys with the given ids, wherever they are in an answer,
// into RoomAccessNFC keys, and reports whether it found one.
func nfc(v any, ids map[string]bool) bool {
	found := false
	switch v := v.(type) {
	case map[string]any:
		if k, ok := v["roomAccessKey"].(map[string]any); ok {
			if id, _ := k["id"].(string); ids[id] {
				k["__typename"] = "RoomAccessNFC"
				delete(k, "pin")
				found = true
			}
		}
		for _, x := range v {
			found = nfc(x, ids) || found
		}
	case []any:
		for _, x := range v {
			found = nfc(x, ids) || found
		}
	}
	return found
}

// TestFaultUnknownResponseFieldsIgnored adds a field keysync does not know
// to every object of every 3RPMS, OpenApp and Guestway answer: nothing
// changes, the runs succeed and converge.
func TestFaultUnknownResponseFieldsIgnored(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t,
		map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"},
		map[string]string{"L1": "qr", "L2": "key_storage", "L3": "pin"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r201", 0, 2)
	fw.hotelStay("s3", "r301", 1, 3)
	fw.addReservation("G1", "L1", 0, 2)
	fw.addReservation("G2", "L2", 0, 2)
	fw.addReservation("G3", "L3", 0, 2)
	fw.addAccess("G3", gwsandbox.Access{ID: "A1", LockID: "lock-1", LockName: "Front door", PIN: "493817"})
	foreign := fw.foreign()
	var edited reqCounter
	fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		sys := sysOf(r)
		if sys == reconcile.SystemKeyBox {
			next.ServeHTTP(rw, r)
			return
		}
		fault.Rewrite(rw, r, next, func(doc []byte) []byte {
			edited.add(string(sys))
			return addUnknownField(doc)
		})
	})
	run := fw.mustExec(ExitOK, "backfill")
	for _, sys := range []reconcile.System{reconcile.System3RPMS, reconcile.SystemOpenApp, reconcile.SystemGuestway} {
		if edited.get(string(sys)) == 0 {
			t.Errorf("no %s answer was given the unknown field", sys)
		}
	}
	allDone(t, "backfill", run.rep)
	if fw.key("s1").Type != rpmsandbox.KeyTypePin || fw.key("s2").Type != rpmsandbox.KeyTypeQR || fw.key("s3").Type != rpmsandbox.KeyTypeKeyStorage {
		t.Error("the hotel was not keyed")
	}
	if n, m := len(fw.invites()), len(fw.accesses()); n != 4 || m != 2 {
		t.Errorf("%d invites and %d accesses, want 4 (s2, G1-G3: shared portals) and 2 (s3, G2)", n, m)
	}
	if rep := fw.mustExec(ExitOK, "run").rep; len(rep.Actions()) != 0 {
		for _, a := range rep.Actions() {
			t.Errorf("second run: %s %s %s: %s", a.System, a.Op, a.Stay.ID, a.Reason)
		}
	}
	fw.checkInvariants(foreign) // the unknown fields still added
	fw.setFault(nil)
}

// --- 3. Response lost after the request was sent ----------------------------

// TestFaultCreateAnswerLost lets 3RPMS carry out keysync's first create
// mutation and then drops the answer (the connection is closed before a
// byte of it is sent). The creates' outcome is unknown, the run exits 3;
// the next run leaves no duplicate: each stay holds one key of ours, the
// keys the lost request made stay unassigned (they grant nothing) and the
// lost creates are recorded abandoned, and the invariants hold.
func TestFaultCreateAnswerLost(t *testing.T) {
	t.Parallel()
	fw, foreign := hotelWorld(t, map[string]string{"r101": "pin", "r102": "pin"}, booking{"s1", "r101", 0, 2}, booking{"s2", "r102", 1, 3})
	var dropped atomic.Bool
	fw.setFault(when(func(r *http.Request) bool {
		return mutationNaming(r, "createRoomAccessKey") && dropped.CompareAndSwap(false, true)
	}, fault.Drop))
	run := fw.mustExec(ExitPartial, "backfill")
	fw.setFault(nil)
	if !dropped.Load() {
		t.Fatal("no answer was dropped")
	}
	for _, a := range run.rep.Actions() {
		if a.Op == reconcile.OpCreate && a.Result != reconcile.ResultUnknown {
			t.Errorf("create for %s: %s, want %s (the answer was lost)", a.Stay.ID, a.Result, reconcile.ResultUnknown)
		}
		if a.Op == reconcile.OpAssign && a.Result == reconcile.ResultDone {
			t.Errorf("assign for %s done although its create's outcome is unknown", a.Stay.ID)
		}
	}
	var lost []string
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner == sandboxIntegration {
			lost = append(lost, k.ID)
			if len(k.StayIDs) > 0 {
				t.Errorf("key %s of the lost request is assigned to %v", k.ID, k.StayIDs)
			}
		}
	}
	if len(lost) != 2 {
		t.Fatalf("the lost request made %d keys, want 2", len(lost))
	}
	fw.checkSafe(foreign)

	fw.mustExec(ExitOK, "run")
	perStay := map[string]int{}
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner != sandboxIntegration || k.Deleted {
			continue
		}
		for _, s := range k.StayIDs {
			perStay[s]++
		}
	}
	for _, s := range []string{"s1", "s2"} {
		if perStay[s] != 1 {
			t.Errorf("stay %s holds %d keys of ours, want 1", s, perStay[s])
		}
	}
	// 3RPMS keys are invisible until assigned and no query lists them, so
	// keysync can never learn the lost keys' ids: what it records is the
	// lost create itself, abandoned (no remote id), and nothing pending.
	abandoned := map[string]int{}
	for _, c := range fw.credentials() {
		if c.System != reconcile.System3RPMS {
			continue
		}
		if c.Status == reconcile.StatusPending {
			t.Errorf("credential of stay %s still pending after the next run", c.Stay.ID)
		}
		if c.Status == reconcile.StatusAbandoned && c.RemoteID == "" {
			abandoned[c.Stay.ID]++
		}
		if slices.Contains(lost, c.RemoteID) && c.Status.Live() {
			t.Errorf("lost key %s recorded live for %s", c.RemoteID, c.Stay.ID)
		}
	}
	if abandoned["s1"] != 1 || abandoned["s2"] != 1 {
		t.Errorf("lost creates recorded abandoned per stay: %v, want one each for s1 and s2", abandoned)
	}
	for _, id := range lost {
		if k := keyByID(t, fw.sb.rpms, id); len(k.StayIDs) > 0 || k.Deleted {
			t.Errorf("lost key %s: assigned to %v, deleted %v; want unassigned (3RPMS deletes it after two days)", id, k.StayIDs, k.Deleted)
		}
	}

	// checkInvariants looks unassigned keys up by remote id, which a lost
	// 3RPMS create never has: let 3RPMS's own rule delete them (two days
	// unassigned, on the sandbox's business clock only), then check.
	fw.sb.rpms.SetNow(fw.now.Add(rpmsandbox.CleanupUnassigned + time.Hour))
	fw.sb.rpms.SetNow(fw.now)
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner != sandboxIntegration {
			continue
		}
		if gone := slices.Contains(lost, k.ID); k.Deleted != gone {
			t.Errorf("after 3RPMS's cleanup: key %s on %v deleted=%v", k.ID, k.StayIDs, k.Deleted)
		}
	}
	fw.checkInvariants(foreign)
}

// TestCancelledStayStillFoundByID: a 3RPMS that leaves a cancelled
// reservation's stays out of its lists yet answers for them by id (the
// sandbox's cancelled_by_id; the API document selects no status). The
// window's read decides once it has left the stay out twice in a row: the
// first run keeps the key (a read may miss a stay once) and says so; the
// second takes the stay as gone, takes its key off and deletes it, where
// before the look-up by id kept the cancelled guest's PIN on the door.
func TestCancelledStayStillFoundByID(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(2), nil)
	fw.hotelStay("s1", "r101", 1, 3)
	fw.mustExec(ExitOK, "backfill")
	before, _ := fw.sb.rpms.Stay("s1")
	if before.KeyID == "" {
		t.Fatal("the backfill did not key s1")
	}
	fw.sb.rpms.SetCancelledByID(true)
	if err := fw.sb.rpms.CancelReservation("res-s1"); err != nil {
		t.Fatal(err)
	}
	noted := func(r faultRun, kind reconcile.NoteKind) bool {
		for _, p := range r.rep.Plans {
			for _, n := range p.Notes {
				if n.Kind == kind && n.Stay.ID == "s1" {
					return true
				}
			}
		}
		return false
	}
	r := fw.mustExec(ExitOK, "run")
	if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != before.KeyID {
		t.Errorf("after one read that left s1 out: key %q, want %s kept", s.KeyID, before.KeyID)
	}
	if !noted(r, reconcile.NoteUnlistedOnce) {
		t.Errorf("no %s note keeping s1\n%s", reconcile.NoteUnlistedOnce, r.output())
	}
	// A plan now shows what the next run does: the withdrawal.
	if p := fw.mustExec(ExitOK, "plan"); countOps(p.rep, reconcile.OpRevoke, "") != 1 {
		t.Errorf("the plan after one read that left s1 out does not revoke its key\n%s", p.output())
	}
	r = fw.mustExec(ExitOK, "run")
	if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != "" {
		t.Errorf("cancelled s1 still holds key %s after two reads left it out", s.KeyID)
	}
	for _, k := range fw.sb.rpms.Keys() {
		if k.ID == before.KeyID && !k.Deleted {
			t.Errorf("the cancelled stay's key %s is not deleted", k.ID)
		}
	}
	if !noted(r, reconcile.NoteUnlisted) {
		t.Errorf("no %s note withdrawing s1\n%s", reconcile.NoteUnlisted, r.output())
	}
	fw.checkInvariants("")
}

// TestReadFailingRunAfterRunNeedsAPerson: a 3RPMS whose answer to the
// stays read keysync cannot read (here a page without room_stays), run
// after run: the first two runs are partial (exit 3, retried); the third
// whole run in a row raises a problem for a person (exit 6, the report's
// Needs a person naming the property), where the property stayed partial
// for ever and no one was asked to look. A read that works again ends it.
func TestReadFailingRunAfterRunNeedsAPerson(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(2), nil)
	fw.hotelStay("s1", "r101", 1, 3)
	fw.mustExec(ExitOK, "backfill")
	fw.setFault(when(func(r *http.Request) bool { return r.URL.Path == "/graphql" && !mutationNaming(r, "") }, answerJSON(`{"data":{}}`)))
	for run := 1; run <= 3; run++ {
		want := ExitPartial
		if run == 3 {
			want = ExitAttention
		}
		r := fw.exec("run", nil)
		if r.code != want {
			t.Fatalf("run %d with the read failing: exit %d, want %d\n%s", run, r.code, want, r.output())
		}
		var raised bool
		for _, p := range r.rep.Problems {
			raised = raised || p.Kind == reconcile.ProblemRepeatedReadFailure && p.Property == "sandbox-hotel" && p.Runs == 3
		}
		if raised != (run == 3) {
			t.Errorf("run %d: repeated read failure raised %v, want %v\n%s", run, raised, run == 3, r.output())
		}
	}
	fw.setFault(nil)
	if r := fw.mustExec(ExitOK, "run"); len(r.rep.Problems) != 0 {
		t.Errorf("the read works again, yet problems %+v", r.rep.Problems)
	}
	fw.checkInvariants("")
}

// TestStayMissingFromOneReadKeepsItsKey: in-house guests' stays the
// window's read leaves out once (here: their reservations cancelled and
// reinstated between two runs, on a 3RPMS that still answers for them by
// id) keep their keys and PINs: one read never takes a stay as gone, so
// no guest is locked out until the next run and given a new PIN. That
// holds for s2 too, booked and keyed by a run at the stay (a webhook's)
// since the last whole run, which never listed it.
func TestStayMissingFromOneReadKeepsItsKey(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(2), nil)
	fw.hotelStay("s1", "r101", -1, 2)
	fw.mustExec(ExitOK, "backfill")
	fw.hotelStay("s2", "r102", -1, 2)
	fw.mustExec(ExitOK, "run", "--stay", "s2", "--property", "sandbox-hotel")
	before := map[string]string{}
	for _, id := range []string{"s1", "s2"} {
		s, _ := fw.sb.rpms.Stay(id)
		if s.KeyID == "" {
			t.Fatalf("%s holds no key before the test", id)
		}
		before[id] = s.KeyID
	}
	fw.sb.rpms.SetCancelledByID(true)
	for _, res := range []string{"res-s1", "res-s2"} {
		if err := fw.sb.rpms.CancelReservation(res); err != nil {
			t.Fatal(err)
		}
	}
	if r := fw.mustExec(ExitOK, "run"); len(r.rep.Actions()) != 0 {
		t.Errorf("the read that left in-house s1 and s2 out planned %d actions, want none", len(r.rep.Actions()))
	}
	for _, res := range []string{"res-s1", "res-s2"} {
		if err := fw.sb.rpms.ReactivateReservation(res); err != nil {
			t.Fatal(err)
		}
	}
	if r := fw.mustExec(ExitOK, "run"); len(r.rep.Actions()) != 0 {
		t.Errorf("the read that lists s1 and s2 again planned %d actions, want none", len(r.rep.Actions()))
	}
	for id, key := range before {
		if after, _ := fw.sb.rpms.Stay(id); after.KeyID != key {
			t.Errorf("%s holds key %q, want %s kept", id, after.KeyID, key)
		}
	}
	fw.checkInvariants("")
}

// TestGuestwayStayTheListMissesKeepsItsInvite: a Guestway whose list
// leaves out an in-house reservation (a list that filters by arrival, say)
// while reading it by id shows it confirmed: Guestway says a cancellation
// with a status, so the read by id is the stay as it is, and two runs in
// a row keep its invite, where the rule for a source without statuses
// (3RPMS) would take it as cancelled.
func TestGuestwayStayTheListMissesKeepsItsInvite(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "qr"})
	fw.addReservation("G1", "L1", -1, 3)
	fw.mustExec(ExitOK, "backfill")
	before := fw.invites()
	if len(before) != 1 {
		t.Fatalf("%d invites after the backfill, want 1", len(before))
	}
	fw.setFault(when(func(r *http.Request) bool {
		return requestTo(r, reconcile.SystemGuestway, http.MethodGet) && strings.HasSuffix(r.URL.Path, "/reservations")
	}, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		fault.Rewrite(w, r, next, func(b []byte) []byte {
			var page map[string]any
			if json.Unmarshal(b, &page) != nil {
				return b
			}
			data, _ := page["data"].([]any)
			kept := []any{}
			for _, d := range data {
				if m, _ := d.(map[string]any); fmt.Sprint(m["id"]) != "G1" {
					kept = append(kept, d)
				}
			}
			page["data"] = kept
			out, _ := json.Marshal(page)
			return out
		})
	}))
	for run := 1; run <= 2; run++ {
		if r := fw.mustExec(ExitOK, "run"); len(r.rep.Actions()) != 0 {
			t.Errorf("run %d with G1 left out of the list planned %d actions, want none", run, len(r.rep.Actions()))
		}
	}
	if after := fw.invites(); len(after) != 1 || after[0].ID != before[0].ID || !after[0].Enabled {
		t.Errorf("after two runs: %+v, want invite %s kept", after, before[0].ID)
	}
}
