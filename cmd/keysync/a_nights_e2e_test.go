// This file's name sorts first in the package so that its test, the
// longest by far (about 26 s alone under the race detector), is the first of the
// parallel tests to start: go test runs them in the order of its files,
// and started last it ran on alone after all the others had finished.

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
)

// TestThirtyNightsBesideOtherIntegrations runs a 200-room hotel for 30
// nights with churn every day (cancellations, deletions, date changes, room
// moves, new and same-day bookings), where another integration keys some
// rooms, part of them with a key type newer than the 3RPMS API document.
// Every run exits 0, the backfill included, and the invariants hold after
// each. It runs against the sandbox's error codes, and with
// KEYSYNC_TEST_3RPMS_ERRORS=message (as .ci/run does too) against
// message-only errors.
func TestThirtyNightsBesideOtherIntegrations(t *testing.T) {
	t.Parallel()
	h := newHotelSim(t, 200, messageOnly3RPMS)
	h.fw.mustExec(ExitOK, "backfill")
	h.fw.checkInvariants(h.fw.foreign())
	for night := 1; night <= 30; night++ {
		h.fw.setNow(t0.Add(time.Duration(night) * 24 * time.Hour))
		h.churn(night)
		foreign := h.fw.foreign()
		r := h.fw.exec("run", nil)
		if r.code != ExitOK {
			t.Fatalf("night %d: run exited %d, want 0:\n%s", night, r.code, r.output())
		}
		h.fw.checkInvariants(foreign)
		if t.Failed() {
			t.Fatalf("night %d: invariants broken", night)
		}
	}
	if h.nfcSeen.Load() == 0 {
		t.Error("no answer held a key of a type keysync does not know")
	}
}

// hotelSim is a sandbox hotel with bookings that change every day.
type hotelSim struct {
	t     *testing.T
	fw    *faultWorld
	rng   *rand.Rand
	rooms []string
	// foreignRooms are keyed by another integration: every stay booked
	// into one gets its key, a third of them of a type keysync does not
	// know (nfc).
	foreignRooms map[string]bool
	nfc          map[string]bool
	nfcSeen      atomic.Int64 // answers that held an unknown key type
	next         int
	// until is, per room, the day its bookings reach.
	until map[string]int
}

func newHotelSim(t *testing.T, rooms int, messageOnly bool) *hotelSim {
	hotel := map[string]string{}
	h := &hotelSim{t: t, rng: rand.New(rand.NewPCG(7, 11)), foreignRooms: map[string]bool{}, nfc: map[string]bool{}, until: map[string]int{}}
	for i := range rooms {
		id := fmt.Sprintf("r%d", 101+i)
		hotel[id] = demoMethod(i)
		h.rooms = append(h.rooms, id)
		if i%12 == 5 {
			h.foreignRooms[id] = true
		}
	}
	h.fw = newFaultWorld(t, hotel, nil)
	h.fw.sb.rpms.SetMessageOnlyErrors(messageOnly)
	// The rooms the other integration keys are not named in keysync's
	// config: they take its default method, as an operator who shares a
	// hotel would set it up, so their conflicts are reported, not alarms.
	cfg, err := os.ReadFile(h.fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.SplitAfter(string(cfg), "\n") {
		id, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		if !h.foreignRooms[id] {
			kept = append(kept, line)
		}
	}
	text := strings.Replace(strings.Join(kept, ""), "    rooms:\n", "    default_method: pin\n    rooms:\n", 1)
	if err := os.WriteFile(h.fw.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// The fault server reads the set while keysync runs; churn adds to it
	// between runs only.
	h.fw.setFault(nfcFault(func() map[string]bool { return h.nfc }, func() { h.nfcSeen.Add(1) }))
	for _, room := range h.rooms {
		h.until[room] = -3 - h.rng.IntN(4)
	}
	h.bookAhead(0)
	return h
}

// bookAhead books every room a day past the read window of night: stays
// of 1 to 5 nights, each followed by a gap of 0 to 2 nights.
func (h *hotelSim) bookAhead(night int) {
	for _, room := range h.rooms {
		for d := h.until[room]; d < night+8; {
			n := 1 + h.rng.IntN(5)
			h.book(room, d, d+n)
			d += n + h.rng.IntN(3)
			h.until[room] = d
		}
	}
}

// book adds a stay (its own reservation) and, in a foreign room, another
// integration's key on it.
func (h *hotelSim) book(room string, arrive, depart int) {
	h.t.Helper()
	h.next++
	id := fmt.Sprintf("s%d", h.next)
	h.fw.hotelStay(id, room, arrive, depart)
	if !h.foreignRooms[room] {
		return
	}
	typ := rpmsandbox.KeyTypePin
	key, err := h.fw.sb.rpms.InjectKey("other-integration", rpmsandbox.Key{Type: typ, PIN: fmt.Sprintf("%06d", 100000+h.next)}, id)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.next%3 == 0 {
		h.nfc[key] = true
	}
}

// dayOf is a sandbox date as days from t0.
func dayOf(s string) int {
	d, _ := time.Parse(time.DateOnly, s)
	return int(d.Sub(t0.Truncate(24*time.Hour)).Hours() / 24)
}

// free reports whether room has no live stay overlapping [arrive, depart)
// other than except.
func (h *hotelSim) free(stays []rpmsandbox.StayView, room string, arrive, depart int, except string) bool {
	for _, s := range stays {
		if s.RoomID != room || s.ID == except || s.Deleted || s.Cancelled {
			continue
		}
		if dayOf(s.Arrival) < depart && arrive < dayOf(s.Departure) {
			return false
		}
	}
	return true
}

// churn changes about 5% of the stays departing today or later, and books
// new stays, a few of them for today.
func (h *hotelSim) churn(night int) {
	h.t.Helper()
	h.bookAhead(night)
	sb := h.fw.sb.rpms
	stays := sb.Stays()
	var live []rpmsandbox.StayView
	for _, s := range stays {
		if !s.Deleted && !s.Cancelled && dayOf(s.Departure) >= night && dayOf(s.Arrival) <= night+7 {
			live = append(live, s)
		}
	}
	// The changes are mirrored into stays, so later ones see them.
	at := map[string]int{}
	for i, s := range stays {
		at[s.ID] = i
	}
	for _, s := range live {
		if h.rng.IntN(100) >= 5 {
			continue
		}
		v := &stays[at[s.ID]]
		arr, dep := dayOf(s.Arrival), dayOf(s.Departure)
		var err error
		switch k := h.rng.IntN(5); {
		case k == 0 && arr > night:
			err, v.Cancelled = sb.CancelReservation("res-"+s.ID), true
		case k == 1 && arr > night:
			err, v.Deleted = sb.DeleteStay(s.ID), true
		case k == 2 && dep-arr > 1:
			err, v.Departure = sb.ChangeDates(s.ID, s.Arrival, day(dep-1)), day(dep-1)
		case k == 3 && dep < h.until[s.RoomID] && h.free(stays, s.RoomID, dep, dep+1, s.ID):
			err, v.Departure = sb.ChangeDates(s.ID, s.Arrival, day(dep+1)), day(dep+1)
		case k == 4 && !h.foreignRooms[s.RoomID]:
			// Stays in the other integration's rooms stay there: moved
			// into one of keysync's rooms with its key, a stay would be a
			// conflict a person must look at (exit 6), not churn.
			for _, room := range h.rooms {
				if room != s.RoomID && !h.foreignRooms[room] && dep <= h.until[room] && h.free(stays, room, max(arr, night), dep, s.ID) {
					err, v.RoomID = sb.MoveStay(s.ID, room), room
					break
				}
			}
		}
		if err != nil {
			h.t.Fatalf("night %d: churn on %s: %v", night, s.ID, err)
		}
	}
	// New bookings: a few a night, some arriving today.
	for range 6 {
		room := h.rooms[h.rng.IntN(len(h.rooms))]
		arr := night + h.rng.IntN(7)
		dep := arr + 1 + h.rng.IntN(3)
		if dep <= h.until[room] && h.free(stays, room, arr, dep, "") {
			h.book(room, arr, dep)
			stays = append(stays, rpmsandbox.StayView{RoomID: room, Arrival: day(arr), Departure: day(dep)})
		}
	}
}
