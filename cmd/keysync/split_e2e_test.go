package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// TestSplitHotel: one 3RPMS hotel (one endpoint and token) split into two
// properties that list their own rooms. Each keys only the stays in its
// rooms, once; the window is read once for both; a stay moved into the
// other property's room is withdrawn by the one and keyed by the other,
// and the plan then has nothing left to do. The move is settled in the run
// that sees it: the key goes with the stay to the annex, which replaces it
// for the new room (as within one property); the hotel only lets go of its
// record, so the stay is never without a key.
func TestSplitHotel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4, "")
	yaml, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := h.srv.URL + "/graphql"
	split := strings.Replace(string(yaml), "    default_method: pin\n", "    rooms: {r101: pin, r102: pin}\n", 1) + `  - name: annex
    timezone: Europe/Ljubljana
    threerpms:
      endpoint: ` + endpoint + `
      token: ${KEYSYNC_3RPMS_TOKEN}
      rate_per_second: 1000
      burst: 1000
    rooms: {r103: pin, r104: pin}
`
	if err := os.WriteFile(h.cfgPath, []byte(split), 0o600); err != nil {
		t.Fatal(err)
	}
	if h.cfg, err = LoadConfig(h.cfgPath, h.getenv); err != nil {
		t.Fatal(err)
	}
	for _, s := range [][2]string{{"h1", "r101"}, {"h2", "r102"}, {"a1", "r103"}, {"a2", "r104"}} {
		h.stay(s[0], s[1], 1, 3)
	}
	owner := map[string]string{"h1": "hotel", "h2": "hotel", "a1": "annex", "a2": "annex"}
	check := func(when string) {
		t.Helper()
		keys := map[string]bool{}
		for id := range owner {
			v, _ := h.sb.Stay(id)
			if v.KeyID == "" {
				t.Errorf("%s: stay %s holds no key", when, id)
			}
			if keys[v.KeyID] {
				t.Errorf("%s: key %s is on two stays", when, v.KeyID)
			}
			keys[v.KeyID] = true
		}
		live := map[string]int{}
		for _, c := range readCredentials(t, h.cfg.State) {
			if !c.Status.Live() {
				continue
			}
			live[c.Stay.ID]++
			if c.Stay.Property != owner[c.Stay.ID] {
				t.Errorf("%s: %s holds a credential of stay %s, which is in %s's rooms", when, c.Stay.Property, c.Stay.ID, owner[c.Stay.ID])
			}
		}
		for id := range owner {
			if live[id] != 1 {
				t.Errorf("%s: stay %s has %d live credentials, want 1", when, id, live[id])
			}
		}
		if rep := h.mustRun(ExitOK, "plan"); len(rep.Actions()) != 0 {
			t.Errorf("%s: the plan still has %d actions", when, len(rep.Actions()))
		}
	}

	h.sb.ResetRequests()
	rep := h.mustRun(ExitOK, "backfill")
	for _, a := range rep.Actions() {
		if a.Stay.Property != owner[a.Stay.ID] {
			t.Errorf("backfill: %s acted on stay %s", a.Stay.Property, a.Stay.ID)
		}
	}
	windowReads := 0
	for _, r := range h.sb.Requests() {
		if r.Operation == "query" && r.Name == "RoomStays" {
			windowReads++
		}
	}
	if windowReads != 1 {
		t.Errorf("the window was read %d times for the two properties, want once", windowReads)
	}
	check("after the backfill")

	if err := h.sb.MoveStay("h1", "r103"); err != nil {
		t.Fatal(err)
	}
	owner["h1"] = "annex"
	old, _ := h.sb.Stay("h1")
	var released, adopted, issued bool
	for _, a := range h.mustRun(ExitOK, "run").Actions() {
		if a.Stay.ID != "h1" || a.Result != reconcile.ResultDone {
			continue
		}
		if a.Stay.Property == "hotel" && a.Op != reconcile.OpRelease {
			t.Errorf("after the move: hotel %s h1's key; it should only let go of its record", a.Op)
		}
		released = released || (a.Stay.Property == "hotel" && a.Op == reconcile.OpRelease)
		adopted = adopted || (a.Stay.Property == "annex" && a.Op == reconcile.OpAdopt)
		issued = issued || (a.Stay.Property == "annex" && a.Op == reconcile.OpCreate)
	}
	if !released || !adopted || !issued {
		t.Errorf("after the move: hotel released h1's key %v, annex adopted it %v and issued one for the new room %v; want all three", released, adopted, issued)
	}
	if now, _ := h.sb.Stay("h1"); now.KeyID == "" || now.KeyID == old.KeyID {
		t.Errorf("after the move h1 holds key %q (before: %q); want a new key for the new room", now.KeyID, old.KeyID)
	}
	check("after h1 moved into the annex")

	// A run targeted at the property the stay left (a webhook for it) takes
	// in the property it joined too.
	if err := h.sb.MoveStay("h2", "r104"); err != nil {
		t.Fatal(err)
	}
	owner["h2"] = "annex"
	rep = h.mustRun(ExitOK, "run", "--stay", "h2", "--property", "hotel")
	var annexActed bool
	for _, a := range rep.Actions() {
		annexActed = annexActed || (a.Stay.ID == "h2" && a.Stay.Property == "annex" && a.Op == reconcile.OpAdopt && a.Result == reconcile.ResultDone)
	}
	if !annexActed {
		t.Errorf("a run targeted at hotel's h2 did not have the annex adopt its key: %d actions", len(rep.Actions()))
	}
	check("after h2 moved into the annex, targeted")
}

// TestSplitHotelMovesKeysCarryingInvitesAndCodes: a split hotel's QR and
// key-box stays moved into the other property's rooms. The property they
// left lets go of their keys without a request; the one they joined
// replaces each with one carrying its own invite or code, and is the only
// one to revoke and delete the old key. At departure the property they
// left claims nothing: the key on the stay is the other's.
func TestSplitHotelMovesKeysCarryingInvitesAndCodes(t *testing.T) {
	t.Parallel()
	fw, old := movedInSplitHotel(t)
	ends := map[string]int{} // revokes and deletes of each stay's 3RPMS key
	for _, a := range fw.mustExec(ExitOK, "run").rep.Actions() {
		if a.System != reconcile.System3RPMS || a.Result != reconcile.ResultDone {
			continue
		}
		switch {
		case a.Stay.Property == "hotel-a" && a.Op != reconcile.OpRelease:
			t.Errorf("hotel-a, which stay %s left: %s of its key, want a release alone", a.Stay.ID, a.Op)
		case a.Op == reconcile.OpRevoke || a.Op == reconcile.OpDelete:
			ends[a.Stay.ID]++
		}
	}
	for stay, id := range old {
		if ends[stay] != 2 {
			t.Errorf("stay %s's old key: %d revokes and deletes, want one of each (by hotel-b)", stay, ends[stay])
		}
		if now := fw.key(stay).ID; now == id {
			t.Errorf("stay %s still holds key %s, want hotel-b's new one", stay, id)
		}
	}
	// hotel-a keeps its invite for the old room, disabled, until its
	// window ends; the invariants would count it live, so they are checked
	// once it is gone.
	fw.converges()
	fw.departed(t)
}

// TestSplitHotelStayLeavesBeforeAnyRunSeesItsMove: the same moves, but the
// stays leave before a run sees them. The property they left, which alone
// records their keys, withdraws them; the one they joined neither claims
// nor withdraws them, and no key is called another integration's.
func TestSplitHotelStayLeavesBeforeAnyRunSeesItsMove(t *testing.T) {
	t.Parallel()
	fw, _ := movedInSplitHotel(t)
	fw.departed(t)
}

// movedInSplitHotel is a fault world whose hotel is split into hotel-a
// (r101 QR, r103 key-box) and hotel-b (r102 QR, r104 key-box), on one
// endpoint and token, with stay qr and stay box keyed in hotel-a's rooms,
// then moved into hotel-b's. It returns their keys before the move.
func movedInSplitHotel(t *testing.T) (*faultWorld, map[string]string) {
	t.Helper()
	split := func(cfg string) string {
		head, hotel, _ := strings.Cut(cfg, "  - name: sandbox-hotel\n")
		hotel = "  - name: sandbox-hotel\n" + hotel
		keep := func(name string, rooms ...string) string {
			var out []string
			for _, line := range strings.SplitAfter(hotel, "\n") {
				if id, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.HasPrefix(line, "      r") && !slices.Contains(rooms, id) {
					continue
				}
				out = append(out, line)
			}
			return strings.Replace(strings.Join(out, ""), "name: sandbox-hotel", "name: "+name, 1)
		}
		return head + keep("hotel-a", "r101", "r103") + keep("hotel-b", "r102", "r104")
	}
	fw := &faultWorld{faults: sinktest.NewWrites(func(*http.Request) bool { return true }, nil)}
	fw.world = newWorld(t, map[string]string{"r101": "qr", "r102": "qr", "r103": "key_storage", "r104": "key_storage"}, nil,
		withMiddleware(fw.faults.Wrap), withConfigEdit(split))
	fw.hotel = "hotel-b"
	fw.hotelStay("qr", "r101", 0, 2)
	fw.hotelStay("box", "r103", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	old := map[string]string{"qr": fw.key("qr").ID, "box": fw.key("box").ID}
	for stay, room := range map[string]string{"qr": "r102", "box": "r104"} {
		if err := fw.sb.rpms.MoveStay(stay, room); err != nil {
			t.Fatal(err)
		}
	}
	return fw, old
}

// departed runs past the moved stays' checkout: one property withdraws
// each key, none claims another's, and every invariant holds.
func (fw *faultWorld) departed(t *testing.T) {
	t.Helper()
	fw.setNow(t0.AddDate(0, 0, 2).Add(14 * time.Hour)) // past checkout and grace
	r := fw.exec("run", nil)
	if r.code != ExitOK {
		t.Fatalf("departure run exited %d:\n%s", r.code, r.output())
	}
	by := map[string]map[string]bool{} // stay → the properties that withdrew or claimed its key
	for _, a := range r.rep.Actions() {
		if a.System == reconcile.System3RPMS && (a.Op == reconcile.OpRevoke || a.Op == reconcile.OpDelete || a.Op == reconcile.OpClaim) {
			if by[a.Stay.ID] == nil {
				by[a.Stay.ID] = map[string]bool{}
			}
			by[a.Stay.ID][a.Stay.Property] = true
		}
		if a.Op == reconcile.OpClaim {
			t.Errorf("departure: %s claims stay %s's key", a.Stay.Property, a.Stay.ID)
		}
	}
	for stay, props := range by {
		if len(props) > 1 {
			t.Errorf("departure: stay %s's key is withdrawn by %d properties, want one", stay, len(props))
		}
	}
	for _, n := range r.rep.Notes() {
		if n.Kind == reconcile.NoteConflict {
			t.Errorf("departure: conflict on %s %s: %s", n.Stay.Property, n.Stay.ID, n.Detail)
		}
	}
	fw.checkInvariants("")
}

// TestSplitGuestwayOrganisation: one Guestway organisation token split into
// two properties that list their own listings. Each keys only its
// listings' guests, none is "unmapped" in the other (which would need a
// person every night), and a guest moved to the other property's listing
// is withdrawn by the one and keyed by the other in one run.
func TestSplitGuestwayOrganisation(t *testing.T) {
	t.Parallel()
	fw := splitOrgWorld(t)
	fw.addReservation("G2", "L2", 0, 2)
	fw.addAccess("G2", gwsandbox.Access{LockID: "lock-l2", LockName: "L2 door", PIN: "4711"})
	rep := fw.mustExec(ExitOK, "run").rep
	for _, n := range rep.Notes() {
		if n.Kind == reconcile.NoteUnmappedRoom || n.Stay.Property == "apartments-east" && n.Stay.ID == "G2" {
			t.Errorf("%s: %s stay %s: %s (west's guest, none of east's business)", n.Kind, n.Stay.Property, n.Stay.ID, n.Detail)
		}
	}
	if got := activeBy(fw); got["G1"] != "apartments-east" || got["G2"] != "apartments-west" {
		t.Fatalf("active credentials by stay: %v, want G1 apartments-east's, G2 apartments-west's", got)
	}
	if len(fw.invites()) != 2 {
		t.Errorf("%d invites, want one per guest", len(fw.invites()))
	}
	// check too takes each guest for its own property's, not the other
	// property's guest in a room it has no method for.
	if r := mustRunText(t, ExitOK, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339)); !strings.Contains(r.stdout, "Checked 2 stay(s)") {
		t.Errorf("check of the split organisation said:\n%s%s", r.stdout, r.stderr)
	}
	fw.moveG1()
	fw.mustExec(ExitOK, "run")
	if got := activeBy(fw); got["G1"] != "apartments-west" {
		t.Errorf("G1 moved to L2: active credentials by stay %v, want G1 apartments-west's alone", got)
	}
	fw.converges()
}

// TestSplitGuestwayOrganisationMovesInOneRead: the guest moved to the other
// property's listing is handed over whichever way keysync looks: serve's
// poll of the property the guest left (a targeted run of the property,
// which takes in its sibling) or a run targeted at the stay. The guest is
// never left without a door, nor with the old one.
func TestSplitGuestwayOrganisationMovesInOneRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		targets map[string][]string
	}{
		{"poll of the property left", map[string][]string{"apartments-east": nil}},
		{"run targeted at the stay", map[string][]string{"apartments-east": {"G1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fw := splitOrgWorld(t)
			fw.moveG1()
			if _, err := fw.poll(tc.targets, 2); err != nil {
				t.Fatal(err)
			}
			if got := activeBy(fw); got["G1"] != "apartments-west" {
				t.Errorf("active credentials by stay %v, want G1 apartments-west's alone", got)
			}
			enabled := 0
			for _, inv := range fw.invites() {
				if inv.Enabled {
					enabled++
				}
			}
			if enabled != 1 {
				t.Errorf("G1 holds %d enabled invites, want 1 (the new listing's)", enabled)
			}
		})
	}
}

// splitOrgWorld is a fault world whose Guestway apartments are split into
// two properties on one organisation token, apartments-east (L1) and
// apartments-west (L2), both QR rooms, with guest G1 in L1 keyed.
func splitOrgWorld(t *testing.T) *splitOrg {
	t.Helper()
	w := splitOrgConfig(t, func(east string) string { return east })
	w.mustExec(ExitOK, "backfill")
	return w
}

// splitOrgConfig is splitOrgWorld before its backfill, with east's part of
// the config passed through editEast.
func splitOrgConfig(t *testing.T, editEast func(string) string) *splitOrg {
	t.Helper()
	split := func(cfg string) string {
		head, apts, _ := strings.Cut(cfg, "  - name: sandbox-apartments\n")
		apts = "  - name: sandbox-apartments\n" + apts
		keep := func(name, listing string) string {
			var out []string
			for _, line := range strings.SplitAfter(apts, "\n") {
				if id, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.HasPrefix(line, "      L") && id != listing {
					continue
				}
				out = append(out, line)
			}
			return strings.Replace(strings.Join(out, ""), "name: sandbox-apartments", "name: "+name, 1)
		}
		return head + editEast(keep("apartments-east", "L1")) + keep("apartments-west", "L2")
	}
	fw := &faultWorld{faults: sinktest.NewWrites(func(*http.Request) bool { return true }, nil)}
	fw.world = newWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr"}, withMiddleware(fw.faults.Wrap), withConfigEdit(split))
	fw.addReservation("G1", "L1", 0, 2)
	return &splitOrg{fw}
}

// TestShardMoveWithoutChangingN: apartments-east and apartments-west, on
// one Guestway organisation but not yet known to be (east spells its base
// URL with localhost), are in shards 1 and 2 of 3. Once the config spells
// it alike they are a split organisation, which goes to east's shard: west
// moves there with N unchanged. Its guest G2, whose booking is deleted
// meanwhile (gone from Guestway's reads, so only the record knows the
// invite), loses the invite in shard 1's first run of west: west's record
// comes over from shard 2's file, which reconciled it last.
func TestShardMoveWithoutChangingN(t *testing.T) {
	t.Parallel()
	w := splitOrgConfig(t, func(east string) string { return strings.Replace(east, "127.0.0.1", "localhost", 1) })
	if shardOf("apartments-east", 3) == shardOf("apartments-west", 3) {
		t.Fatal("east and west share a shard of 3 by their names: the test needs them apart")
	}
	w.addReservation("G2", "L2", 0, 3)
	// Until they are known to share it, each finds the other's guests in
	// listings it does not map: exit 6, needing a person.
	all := func(want int) {
		t.Helper()
		for i := range 3 {
			for _, cmd := range []string{"backfill", "run"} {
				if r := w.exec(cmd, nil, "--shard", fmt.Sprintf("%d/3", i)); r.code != want && r.code != ExitOK {
					t.Fatalf("%s --shard %d/3 exited %d, want %d or 0:\n%s", cmd, i, r.code, want, r.output())
				}
			}
		}
	}
	all(ExitAttention)
	g2 := recordedHolds(t, []string{shardState(w.statePath(), shardSpec{shardOf("apartments-west", 3), 3})}, "G2")
	yaml, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.cfg, []byte(strings.ReplaceAll(string(yaml), "localhost", "127.0.0.1")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.sb.guestway.DeleteReservation("G2"); err != nil {
		t.Fatal(err)
	}
	all(ExitOK)
	if on := stillOn(t, w.faultWorld, g2); len(on) > 0 || len(g2) == 0 {
		t.Errorf("deleted G2 still holds %v (of %d)", on, len(g2))
	}
}

// splitOrg is splitOrgWorld's world.
type splitOrg struct{ *faultWorld }

// moveG1 moves guest G1 to L2, apartments-west's listing.
func (w splitOrg) moveG1() {
	w.t.Helper()
	if err := w.sb.guestway.MoveUnit("G1", "L2", ""); err != nil {
		w.t.Fatal(err)
	}
}

// activeBy names, by stay, the properties that hold an active credential of it.
func activeBy(w *splitOrg) map[string]string {
	out := map[string]string{}
	for _, c := range w.credentials() {
		if c.Status == reconcile.StatusActive {
			out[c.Stay.ID] += c.Stay.Property
		}
	}
	return out
}
