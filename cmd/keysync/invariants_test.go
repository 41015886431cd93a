package main

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
)

// foreign is a snapshot of every credential keysync did not create, in all
// four sandboxes, to prove invariant 6 (only ours).
func (w *world) foreign() string {
	var b strings.Builder
	for _, k := range w.sb.rpms.Keys() {
		if k.Owner != w.ourIntegration() {
			fmt.Fprintf(&b, "3rpms %s %s %v %v|", k.ID, k.Type, k.StayIDs, k.Deleted)
		}
	}
	for _, i := range w.sb.openapp.Invites() {
		if _, ours := openapp.ParseOwnerTag(i.Name); !ours {
			fmt.Fprintf(&b, "openapp %s %v %v %s %s %v|", i.ID, i.PortalIDs, i.Enabled, i.ValidFrom, i.ValidTo, i.Deleted)
		}
	}
	for _, a := range w.sb.keybox.Accesses() {
		if a.Creator != sandboxBoxUser {
			fmt.Fprintf(&b, "keybox %s %s %s %v|", a.ID, a.Start, a.End, a.Cancelled)
		}
	}
	return b.String()
}

// stayState is what the invariants need of a stay, whichever source.
type stayState struct {
	ref       reconcile.StayRef
	room      string
	arrival   reconcile.Date
	departure reconcile.Date
	gone      bool // deleted or cancelled
	key       string
}

func (w *world) stays() map[string]stayState {
	out := map[string]stayState{}
	for _, s := range w.sb.rpms.Stays() {
		a, _ := reconcile.ParseDate(s.Arrival)
		d, _ := reconcile.ParseDate(s.Departure)
		out[s.ID] = stayState{ref: reconcile.StayRef{Property: cmp.Or(w.hotel, "sandbox-hotel"), Source: reconcile.System3RPMS, ID: s.ID},
			room: s.RoomID, arrival: a, departure: d, gone: s.Deleted || s.Cancelled, key: s.KeyID}
	}
	for _, r := range w.sb.guestway.Reservations() {
		a, _ := reconcile.ParseDate(r.ArrivalDate)
		d, _ := reconcile.ParseDate(r.DepartureDate)
		room := r.UnitID
		if room == "" {
			room = r.ListingID
		}
		out[r.ID] = stayState{ref: reconcile.StayRef{Property: "sandbox-apartments", Source: reconcile.SystemGuestway, ID: r.ID},
			room: room, arrival: a, departure: d, gone: strings.EqualFold(r.Status, "cancelled")}
	}
	return out
}

// checkInvariants asserts keysync's seven invariants on the sandboxes and
// the state file: 1 no orphans (every key, invite or access of ours is
// recorded), 2 no duplicates (one live credential per stay and system),
// 3 nothing active after checkout, 4 nothing missing (every stay in the
// window holds what its room needs), 5 converges (the next plan is empty),
// 6 only ours (nothing of another integration changed), 7 fails safe (each
// scenario's exit code). foreignBefore is w.foreign() from before the scenario
// ("" skips invariant 6). Keys that a lost create left unassigned in 3RPMS
// are allowed when the state records them abandoned: they grant nothing
// and 3RPMS deletes them after two days (the 3RPMS Room Access Key API).
func (w *world) checkInvariants(foreignBefore string) {
	w.t.Helper()
	t := w.t
	cfg, err := LoadConfig(w.cfg, w.getenv)
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]*reconcile.Property{}
	for i := range cfg.Properties {
		props[cfg.Properties[i].Name] = cfg.Properties[i].policy()
	}
	creds := readCredentials(t, cfg.State)
	recorded := map[string]reconcile.Credential{} // by system + remote id
	perStay := map[string]int{}
	// A 3RPMS create whose answer was lost is recorded abandoned with no
	// remote id: the key it made is invisible until assigned and cannot be
	// read back (the 3RPMS Room Access Key API). Each such record excuses one unassigned,
	// unrecorded key of ours; 3RPMS deletes it after two days.
	lostCreates := 0
	for _, c := range creds {
		if c.System == reconcile.System3RPMS && c.Status == reconcile.StatusAbandoned && c.RemoteID == "" {
			lostCreates++
		}
	}
	for _, c := range creds {
		if c.RemoteID != "" {
			recorded[string(c.System)+" "+c.RemoteID] = c
		}
		if c.Status.Live() {
			perStay[string(c.System)+" "+c.Stay.ID]++
		}
	}
	stays := w.stays()
	ended := func(stayID string) (bool, string) {
		s, ok := stays[stayID]
		if !ok {
			return true, "unknown stay"
		}
		if s.gone {
			return true, "stay deleted or cancelled"
		}
		p := props[s.ref.Property]
		if end := p.Window(s.arrival, s.departure).End; !w.now.Before(end) {
			return true, "stay ended " + end.Format(time.RFC3339)
		}
		return false, ""
	}

	// 1. No orphans, 3. nothing active after checkout.
	for _, k := range w.sb.rpms.Keys() {
		if k.Owner != w.ourIntegration() || k.Deleted {
			continue
		}
		c, ok := recorded["3rpms "+k.ID]
		switch {
		case !ok && len(k.StayIDs) > 0:
			t.Errorf("invariant 1: 3RPMS key %s on %v is not recorded", k.ID, k.StayIDs)
		case !ok && lostCreates > 0:
			lostCreates-- // made by a lost create: grants nothing, 3RPMS deletes it
		case !ok:
			t.Errorf("invariant 1: unassigned 3RPMS key %s is not recorded at all", k.ID)
		case !c.Status.Live() && len(k.StayIDs) > 0:
			t.Errorf("invariant 1: 3RPMS key %s is recorded %s but assigned to %v", k.ID, c.Status, k.StayIDs)
		case !c.Status.Live():
			t.Errorf("invariant 1: 3RPMS key %s is recorded %s but not deleted", k.ID, c.Status)
		}
		for _, sid := range k.StayIDs {
			if done, why := ended(sid); done {
				t.Errorf("invariant 3: 3RPMS key %s still on stay %s: %s", k.ID, sid, why)
			}
		}
	}
	for _, i := range w.sb.openapp.Invites() {
		ref, ours := openapp.ParseOwnerTag(i.Name)
		if !ours || i.Deleted {
			continue
		}
		if c, ok := recorded["openapp "+i.ID]; !ok || !c.Status.Live() {
			t.Errorf("invariant 1: invite %s (%s) is not recorded live", i.ID, i.Name)
		}
		if done, why := ended(ref.ID); done && i.Enabled && i.ValidTo.After(w.now) {
			t.Errorf("invariant 3: invite %s for stay %s still opens doors: %s", i.ID, ref.ID, why)
		}
	}
	for _, a := range w.sb.keybox.Accesses() {
		if a.Creator != sandboxBoxUser || a.Cancelled {
			continue
		}
		c, ok := recorded["keybox "+a.ID]
		if !ok || !c.Status.Live() {
			t.Errorf("invariant 1: key-box access %s is not recorded live", a.ID)
			continue
		}
		if done, why := ended(c.Stay.ID); done && a.End.After(w.now) {
			t.Errorf("invariant 3: key-box access %s for stay %s still open: %s", a.ID, c.Stay.ID, why)
		}
	}
	// 2. No duplicates.
	for k, n := range perStay {
		if n > 1 {
			t.Errorf("invariant 2: %s has %d live credentials", k, n)
		}
	}
	// 4. Nothing missing: every active 3RPMS stay in the window holds a key.
	for id, s := range stays {
		if s.ref.Source != reconcile.System3RPMS {
			continue
		}
		p := props[s.ref.Property]
		_, to := p.ReadRange(w.now)
		if done, _ := ended(id); done || to.Before(s.arrival) {
			continue
		}
		if s.key == "" {
			t.Errorf("invariant 4: stay %s (room %s, %s→%s) holds no key", id, s.room, s.arrival, s.departure)
		}
	}
	// 6. Only ours.
	if foreignBefore != "" && w.foreign() != foreignBefore {
		t.Errorf("invariant 6: credentials keysync did not create changed\nbefore %s\nafter  %s", foreignBefore, w.foreign())
	}
	// 5. Converges; 7 (fails safe) is asserted by each scenario's exit code.
	w.converges()
}
