package main

import (
	"os"
	"strings"
	"testing"
	"time"

	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
)

// TestRenamedPropertyKeepsItsCredentials: a property renamed in the config
// takes its credentials over under its new name: the 3RPMS keys it claims,
// the key-box accesses and the OpenApp invites (tagged with the old name)
// it adopts, none issued again, so no guest holds two invites or a new QR
// link; the old name's records of them are released, not named every run
// as a removed property's live credentials. Renamed back, the same again.
func TestRenamedPropertyKeepsItsCredentials(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"}, nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r201", 0, 3)
	fw.hotelStay("s3", "r301", 1, 3)
	fw.mustExec(ExitOK, "backfill")
	stays := []string{"s1", "s2", "s3"}
	keys := map[string]string{}
	for _, s := range stays {
		keys[s] = fw.key(s).ID
	}
	invites, accesses := fw.invites(), fw.accesses()
	if len(invites) != 1 || len(accesses) != 1 {
		t.Fatalf("after the backfill: %d invites, %d accesses; want 1 each", len(invites), len(accesses))
	}
	for _, names := range [][2]string{{"sandbox-hotel", "hotel-renamed"}, {"hotel-renamed", "sandbox-hotel"}} {
		fw.rename(names[0], names[1])
		for run := range 2 {
			rep := fw.run(ExitOK, "run")
			for _, a := range rep.Actions() {
				if a.Op != reconcile.OpClaim && a.Op != reconcile.OpAdopt {
					t.Errorf("renamed to %s, run %d: %s %s %s for stay %s: want nothing but claims and adoptions", names[1], run, a.System, a.Op, a.Result, a.Stay.ID)
				}
			}
		}
		for _, s := range stays {
			if got := fw.key(s).ID; got != keys[s] {
				t.Errorf("renamed to %s: stay %s holds 3RPMS key %q, want %q still", names[1], s, got, keys[s])
			}
		}
		if got := fw.invites(); len(got) != 1 || got[0].ID != invites[0].ID || got[0].Token != invites[0].Token {
			t.Errorf("renamed to %s: invites %+v, want the one the guest holds, %s", names[1], got, invites[0].ID)
		}
		if got := fw.accesses(); len(got) != 1 || got[0].ID != accesses[0].ID {
			t.Errorf("renamed to %s: accesses %+v, want the one of the backfill, %s", names[1], got, accesses[0].ID)
		}
		creds := readCredentials(t, fw.statePath())
		for _, c := range creds {
			if c.Status.Live() && c.Stay.Property != names[1] {
				t.Errorf("renamed to %s: %s credential %d of %s is still %s", names[1], c.System, c.ID, c.Stay.Property, c.Status)
			}
		}
		fw.checkInvariants("")
	}
	// The invite still carries the first name's tag, which is the config's
	// again: nothing was rewritten remotely.
	if ref, ok := openapp.ParseOwnerTag(fw.invites()[0].Name); !ok || ref.Property != "sandbox-hotel" {
		t.Errorf("the invite's tag names %+v", ref)
	}
	if r := mustRunText(t, ExitOK, fw.getenv, "history", "--config", fw.cfg, "--stay", "s2"); !strings.Contains(r.stdout, "property hotel-renamed holds it now") || !strings.Contains(r.stdout, "property sandbox-hotel holds it now") {
		t.Errorf("history of s2 does not show the releases:\n%s", r.stdout)
	}
}

// TestRenamedBackWithALeftoverRecord: renamed, the old name keeps a live
// record its new name does not take over (a key of a reservation cancelled
// around the rename); renamed back, its first run still claims and adopts
// its guests' credentials again, and withdraws them at checkout.
func TestRenamedBackWithALeftoverRecord(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "pin", "r201": "qr", "r301": "key_storage"}, nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r201", 0, 3)
	fw.hotelStay("s3", "r301", 1, 3)
	fw.hotelStay("s4", "r102", 1, 3)
	fw.mustExec(ExitOK, "backfill")
	fw.rename("sandbox-hotel", "hotel-renamed")
	if err := fw.sb.rpms.CancelReservation("res-s4"); err != nil {
		t.Fatal(err)
	}
	fw.exec("run", nil)
	fw.rename("hotel-renamed", "sandbox-hotel")
	r := fw.exec("run", nil)
	for _, n := range r.rep.Notes() {
		if n.Kind == reconcile.NoteConflict {
			t.Errorf("renamed back: conflict on %s: %s", n.Stay.ID, n.Detail)
		}
	}
	for _, p := range r.rep.Problems {
		if p.Kind == reconcile.ProblemPropertyRemoved && p.Property == "hotel-renamed" {
			t.Errorf("renamed back: %s", p.Detail)
		}
	}
	fw.setNow(t0.AddDate(0, 0, 2).Add(12 * time.Hour)) // past s1's checkout and grace
	fw.exec("run", nil)
	if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != "" {
		t.Errorf("after s1's checkout its 3RPMS key %s is still on the stay", s.KeyID)
	}
}

// TestRemovedHotelKeepsItsKeyOfAnotherHotelsID: two hotels on their own
// 3RPMS, whose key ids are only unique within each; the annex removed from
// the config, its guest's key is still named as live every run, though
// the hotel records a key of the same id (for its own stay).
func TestRemovedHotelKeepsItsKeyOfAnotherHotelsID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	annex := h.addAnnex(nil)
	h.stay("h1", "r101", 0, 3)
	if err := annex.AddStay(rpmsandbox.Stay{ID: "a1", RoomID: "r101", Arrival: day(0), Departure: day(3), ReservationID: "res-a1", ReservationCode: "C-a1"}); err != nil {
		t.Fatal(err)
	}
	h.mustRun(ExitOK, "backfill")
	hk, _ := h.sb.Stay("h1")
	ak, _ := annex.Stay("a1")
	if hk.KeyID == "" || hk.KeyID != ak.KeyID {
		t.Fatalf("want both hotels' keys with one id: hotel %q, annex %q", hk.KeyID, ak.KeyID)
	}
	h.removeAnnex()
	rep := h.mustRun(ExitAttention, "run")
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != reconcile.ProblemPropertyRemoved || rep.Problems[0].Property != "annex" {
		t.Errorf("problems %+v, want the annex named as removed", rep.Problems)
	}
	live := 0
	for _, c := range h.credentials() {
		if c.Stay.Property == "annex" && c.Status.Live() {
			live++
		}
	}
	if live != 1 {
		t.Errorf("the annex's live records: %d, want its guest's key", live)
	}
}

// rename renames the hotel property in the config file from one name to
// another.
func (w *world) rename(from, to string) {
	w.t.Helper()
	text, err := os.ReadFile(w.cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	next := strings.Replace(string(text), "name: "+from+"\n", "name: "+to+"\n", 1)
	if next == string(text) {
		w.t.Fatalf("no property %s in\n%s", from, text)
	}
	if err := os.WriteFile(w.cfg, []byte(next), 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.hotel = to
}

// removeAnnex takes the annex (addAnnex) out of the config.
func (h *harness) removeAnnex() {
	h.t.Helper()
	yaml, err := os.ReadFile(h.cfgPath)
	if err != nil {
		h.t.Fatal(err)
	}
	i := strings.Index(string(yaml), "  - name: annex\n")
	if i < 0 {
		h.t.Fatal("no annex in the config")
	}
	if err := os.WriteFile(h.cfgPath, yaml[:i], 0o600); err != nil {
		h.t.Fatal(err)
	}
	if h.cfg, err = LoadConfig(h.cfgPath, h.getenv); err != nil {
		h.t.Fatal(err)
	}
}
