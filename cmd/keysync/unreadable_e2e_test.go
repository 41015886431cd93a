package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// unitWorld is six guests in house, each in unit Ui of listing L1, keyed
// by a backfill; the config keys the rooms by unit id (U1..U6, qr), as
// for a multi-unit listing.
func unitWorld(t *testing.T) *faultWorld {
	t.Helper()
	units := map[string]string{}
	for i := 1; i <= 6; i++ {
		units[fmt.Sprintf("U%d", i)] = "qr"
	}
	fw := newFaultWorld(t, nil, units)
	fw.sb.guestway.AddListing("L1", "Building")
	for i := 1; i <= 6; i++ {
		if err := fw.sb.guestway.AddReservation(gwsandbox.Reservation{ID: fmt.Sprintf("G%d", i), Status: "confirmed", ArrivalDate: day(0),
			DepartureDate: day(3), ListingID: "L1", UnitID: fmt.Sprintf("U%d", i), GuestName: "Guest"}); err != nil {
			t.Fatal(err)
		}
	}
	fw.mustExec(ExitOK, "backfill")
	return fw
}

// TestUnitsDroppedAreWeighedByTheFailSafe: a server that stops sending
// unit_id puts every guest in listing L1, a room no config names. The
// fail-safe holds the withdrawals (exit 5) whether the reservations'
// dates can be read or not: an unreadable stay's move out of its room is
// a withdrawal it weighs too.
func TestUnitsDroppedAreWeighedByTheFailSafe(t *testing.T) {
	t.Parallel()
	for _, unreadable := range []bool{false, true} {
		t.Run(fmt.Sprintf("unreadable %v", unreadable), func(t *testing.T) {
			t.Parallel()
			fw := unitWorld(t)
			for i := 1; i <= 6; i++ {
				id := fmt.Sprintf("G%d", i)
				if err := fw.sb.guestway.MoveUnit(id, "", ""); err != nil {
					t.Fatal(err)
				}
				if err := fw.sb.guestway.SetUnreadableDates(id, unreadable); err != nil {
					t.Fatal(err)
				}
			}
			r := fw.exec("run", nil)
			live := 0
			for i := 1; i <= 6; i++ {
				live += len(fw.liveInvitesOf(fmt.Sprintf("G%d", i)))
			}
			if r.code != ExitUnsafe || live != 6 {
				t.Errorf("exit %d, %d live invites; want the fail-safe (exit 5) to hold all 6\n%s", r.code, live, r.output())
			}
		})
	}
}

// TestUnreadableReservationReadAgain: a reservation unreadable for a run
// while its dates changed (extended to day 5), then readable: one invite,
// the same one, updated in place (the guest's link kept).
func TestUnreadableReservationReadAgain(t *testing.T) {
	t.Parallel()
	fw, inv := keyedThenUnreadable(t)
	if err := fw.sb.guestway.ChangeDates("G1", day(0), day(5)); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitAttention, "run")
	if err := fw.sb.guestway.SetUnreadableDates("G1", false); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitOK, "run")
	if got := fw.liveInvitesOf("G1"); !slices.Equal(got, inv) {
		t.Errorf("G1's invites %v after the flip, want %v (the same, updated)", got, inv)
	}
	fw.mustExec(ExitOK, "run")
}

// TestStatusCountsAnUnreadableArrival: a new reservation arriving today
// that Guestway lists unreadable has nothing issued: status's
// arrivals_without_credential (and the metric of the same name) name it.
func TestStatusCountsAnUnreadableArrival(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr"})
	fw.mustExec(ExitOK, "backfill")
	fw.addReservation("G5", "L2", 0, 2)
	if err := fw.sb.guestway.SetUnreadableDates("G5", true); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitAttention, "run")
	r := fw.runOn(clocktest.New(fw.now), nil, "status", "--json")
	var st statusReport
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if !slices.ContainsFunc(st.Unkeyed, func(s reconcile.StayRef) bool { return s.ID == "G5" }) {
		t.Errorf("status's arrivals without a credential %v: G5 (unreadable, nothing issued, arriving today) is missing", st.Unkeyed)
	}
}

// rewriteGuestway is fault middleware that passes Guestway requests on and
// rewrites the bodies of their answers with f.
func rewriteGuestway(f func(string) string) faultFunc {
	return func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		if sysOf(r) != reconcile.SystemGuestway {
			next.ServeHTTP(rw, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				rw.Header()[k] = v
			}
		}
		rw.WriteHeader(rec.Code)
		rw.Write([]byte(f(rec.Body.String())))
	}
}

// TestCancellationTheReadCanStillTell: G1 (in house, keyed) is cancelled;
// the server says so with is_cancelled beside a status sent as an object,
// sends the cancelled reservation, the only one of its property's window,
// without its dates, or with a unit_id of another type ahead of its
// status. Each way its invite is withdrawn.
func TestCancellationTheReadCanStillTell(t *testing.T) {
	t.Parallel()
	dates := regexp.MustCompile(`"(arrival|departure)_date":"[^"]*",?`)
	for _, tc := range []struct {
		name    string
		rewrite func(string) string
	}{
		{"status as a string", nil},
		{"status as an object beside is_cancelled", func(b string) string {
			return strings.ReplaceAll(b, `"status":"cancelled"`, `"status":{"code":"cancelled"},"is_cancelled":true`)
		}},
		{"the only reservation, without dates", func(b string) string { return dates.ReplaceAllString(b, "") }},
		{"a unit_id object before the status", func(b string) string {
			return strings.ReplaceAll(b, `"status":"cancelled"`, `"unit_id":{"id":7,"name":"Loft"},"status":"cancelled"`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fw := listingsWorld(t, nil, map[string]string{"L1": "qr"})
			fw.mustExec(ExitOK, "backfill")
			if inv := fw.liveInvitesOf("G1"); len(inv) != 1 {
				t.Fatalf("G1 invites %v", inv)
			}
			if err := fw.sb.guestway.SetStatus("G1", "cancelled"); err != nil {
				t.Fatal(err)
			}
			if tc.rewrite != nil {
				fw.setFault(rewriteGuestway(tc.rewrite))
			}
			r := fw.exec("run", nil)
			if got := fw.liveInvitesOf("G1"); len(got) != 0 {
				t.Errorf("exit %d: cancelled G1 still holds live invites %v\n%s", r.code, got, r.output())
			}
		})
	}
}

// TestDepartedUnreadableIsNoArrival: G1 departed yesterday; its
// reservation, still listed (the read reaches back two days), is
// unreadable. What was issued ended with its recorded stay; neither that
// run nor the next (its credentials ended, its window known from them)
// counts it as an arrival without a credential in status or the metric,
// nor tells staff to let it in.
func TestDepartedUnreadableIsNoArrival(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr"})
	fw.mustExec(ExitOK, "backfill")
	if err := fw.sb.guestway.SetUnreadableDates("G1", true); err != nil {
		t.Fatal(err)
	}
	fw.setNow(fw.now.Add(4 * 24 * time.Hour))
	for run := 1; run <= 2; run++ {
		r := fw.exec("run", nil)
		if got := fw.liveInvitesOf("G1"); len(got) != 0 {
			t.Fatalf("run %d: G1 departed, holds %v", run, got)
		}
		for _, n := range r.rep.Notes() {
			if n.Stay.ID == "G1" && (n.Unkeyed || !strings.Contains(n.Detail, "ended with its stay as recorded")) {
				t.Errorf("run %d: G1's note (unkeyed %v) %q; want it to say its recorded stay ended", run, n.Unkeyed, n.Detail)
			}
		}
		s := fw.runOn(clocktest.New(fw.now), nil, "status", "--json")
		var st statusReport
		if err := json.Unmarshal([]byte(s.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, s.stdout)
		}
		if slices.ContainsFunc(st.Unkeyed, func(s reconcile.StayRef) bool { return s.ID == "G1" }) {
			t.Errorf("run %d: status counts G1 (departed, its invite ended as recorded) as an arrival without a credential: %v", run, st.Unkeyed)
		}
	}
}

// TestOddUnitIDKeepsTheGuestsKey: G1, in house in unit U1 of listing L1,
// now sends its unit_id as an object. Its room cannot be told: its invite
// is held as recorded, not withdrawn as a move to listing L1.
func TestOddUnitIDKeepsTheGuestsKey(t *testing.T) {
	t.Parallel()
	fw := unitWorld(t)
	before := fw.liveInvitesOf("G1")
	fw.setFault(rewriteGuestway(func(b string) string {
		return strings.ReplaceAll(b, `"unit_id":"U1"`, `"unit_id":{"id":"U1","name":"Loft"}`)
	}))
	r := fw.exec("run", nil)
	if got := fw.liveInvitesOf("G1"); len(before) != 1 || !slices.Equal(got, before) {
		t.Errorf("exit %d: G1 in house held %v, now %v; want its invite kept\n%s", r.code, before, got, r.output())
	}
}
