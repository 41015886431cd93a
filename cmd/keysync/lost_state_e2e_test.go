package main

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
	oasandbox "github.com/keysync/keysync/sinks/openapp/sandbox"
)

// strayInviteWorld: a hotel of two QR rooms, s1 in r201 (arrived today),
// s2 in r202 (tomorrow), backfilled; then a stray invite of a previous
// install tagged for s1, enabled, to r202 (s1 was in r202 before it moved),
// over s1's window shifted by shift; the state is then lost. It returns
// s1's invite and 3RPMS QR data, and the stray.
func strayInviteWorld(t *testing.T, shift time.Duration) (fw *faultWorld, s1inv, stray oasandbox.InviteView, qr string) {
	fw = newFaultWorld(t, map[string]string{"r201": "qr", "r202": "qr"}, nil)
	fw.hotelStay("s1", "r201", 0, 3)
	fw.hotelStay("s2", "r202", 1, 3)
	fw.mustExec(ExitOK, "backfill")
	for _, in := range fw.invites() {
		if ref, _ := openapp.ParseOwnerTag(in.Name); ref.ID == "s1" {
			s1inv = in
		}
	}
	ref, _ := openapp.ParseOwnerTag(s1inv.Name)
	var err error
	stray, err = fw.sb.openapp.AddInvite(oasandbox.Planted{Integration: sandboxOpenAppInt, CreatedBy: sandboxOpenAppKey,
		Name: "Guest " + openapp.OwnerTag(ref), PortalIDs: []string{"portal-r202"}, ValidFrom: s1inv.ValidFrom, ValidTo: s1inv.ValidTo.Add(shift)})
	if err != nil {
		t.Fatal(err)
	}
	qr = fw.key("s1").QRData
	fw.loseState()
	fw.setNow(fw.now.Add(2 * time.Hour))
	return fw, s1inv, stray, qr
}

// TestBackfillStrayInviteOfAMovedStay: a previous install left two
// enabled invites tagged for s1: the one its QR key carries (r201) and an
// older one to r202, where s1 was before it moved (and s2 sleeps from
// tomorrow). After the state is lost, the backfill and the run after it
// must keep the guest's link (the invite the key carries) and leave no
// invite of s1 opening r202.
func TestBackfillStrayInviteOfAMovedStay(t *testing.T) {
	t.Parallel()
	for name, shift := range map[string]time.Duration{"same window": 0, "other window": -24 * time.Hour} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fw, s1inv, stray, qr := strayInviteWorld(t, shift)
			foreign := fw.foreign()
			fw.mustExec(ExitOK, "backfill")
			fw.mustExec(ExitOK, "run")
			for _, in := range fw.sb.openapp.Invites() {
				t.Logf("invite %s %s portals=%v enabled=%v deleted=%v %s..%s", in.ID, in.Name, in.PortalIDs, in.Enabled, in.Deleted, in.ValidFrom, in.ValidTo)
			}
			if in, _ := fw.sb.openapp.Invite(stray.ID); !in.Deleted && in.Enabled && in.ValidTo.After(fw.now) {
				t.Errorf("s1's stray invite %s, not the one its key carries, still opens %v", stray.ID, in.PortalIDs)
			}
			if got := fw.key("s1").QRData; got != qr {
				t.Errorf("s1's QR key was rewritten: the guest's link changed although the invite it carried (%s) was live", s1inv.ID)
			}
			if in, _ := fw.sb.openapp.Invite(s1inv.ID); in.Deleted || !in.Enabled {
				t.Errorf("s1's working invite %s was withdrawn", s1inv.ID)
			}
			fw.checkInvariants(foreign)
		})
	}
}

// TestBackfillKeyBoxAccessOfAChangedStay: a previous install gave s2
// (key-box room r301) an access; while the state is lost the stay is
// shortened by a day, or moved to r302 (another key-box room). The
// backfill cannot take the old access for the stay (its window or key is
// not the stay's), so it issues one; the old one, ours, must not stay
// live past the stay (shortened) or on the key of a room the stay left.
func TestBackfillKeyBoxAccessOfAChangedStay(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(fw *faultWorld) error{
		"shortened": func(fw *faultWorld) error { return fw.sb.rpms.ChangeDates("s2", day(0), day(2)) },
		"moved":     func(fw *faultWorld) error { return fw.sb.rpms.MoveStay("s2", "r302") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fw := newFaultWorld(t, map[string]string{"r301": "key_storage", "r302": "key_storage"}, nil)
			fw.hotelStay("s2", "r301", 0, 3)
			fw.mustExec(ExitOK, "backfill")
			old := fw.accesses()
			if len(old) != 1 {
				t.Fatalf("the backfill made %d accesses, want 1", len(old))
			}
			fw.loseState()
			fw.setNow(fw.now.Add(2 * time.Hour))
			if err := change(fw); err != nil {
				t.Fatal(err)
			}
			foreign := fw.foreign()
			fw.mustExec(ExitOK, "backfill")
			fw.mustExec(ExitOK, "run")
			for _, a := range fw.sb.keybox.Accesses() {
				t.Logf("access %s key=%s %s..%s cancelled=%v visitor=%q", a.ID, a.KeyID, a.Start, a.End, a.Cancelled, a.Visitor)
			}
			if a, _ := fw.sb.keybox.Access(old[0].ID); !a.Cancelled {
				t.Errorf("the previous install's access %s (key %s, %s..%s) of s2 is still live", a.ID, a.KeyID, a.Start, a.End)
			}
			fw.checkInvariants(foreign)
		})
	}
}

// heldSecrets is what the guests hold: the token of each of keysync's
// invites (w.invites) and the code of each of its key-box accesses
// (w.accesses), by the invite's or the access's id.
func (w *world) heldSecrets() map[string]string {
	out := map[string]string{}
	for _, in := range w.invites() {
		out[in.ID] = in.Token
	}
	for _, a := range w.accesses() {
		out[a.ID] = a.Code
	}
	return out
}

// wantOneInviteOrAccess checks that each of who, a stay id (the stay an
// invite is tagged for) or a key-box access's visitor, holds one of
// keysync's invites or accesses (w.invites, w.accesses).
func (w *world) wantOneInviteOrAccess(who ...string) {
	w.t.Helper()
	per := map[string]int{}
	for _, in := range w.invites() {
		ref, _ := openapp.ParseOwnerTag(in.Name)
		per[ref.ID]++
	}
	for _, a := range w.accesses() {
		per[a.Visitor]++
	}
	for _, id := range who {
		if per[id] != 1 {
			w.t.Errorf("%s holds %d invites or accesses, want 1", id, per[id])
		}
	}
}

// TestBackfillAfterAPartialRun: a first backfill beside another
// integration's keys loses the answers to its first OpenApp and key-box
// creates (the credentials exist, keysync does not know their ids), and
// then its state file is lost. The backfill after it and the run after
// that must key every guest once, adopt the lost creates and keep every
// link and code a guest already holds, and touch nothing of the other
// integration.
func TestBackfillAfterAPartialRun(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r103": "pin", "r201": "qr", "r202": "qr", "r301": "key_storage", "r302": "key_storage"}, nil)
	fw.hotelStay("s1", "r201", 0, 3)
	fw.hotelStay("s2", "r202", 0, 3)
	fw.hotelStay("s3", "r301", 0, 3)
	fw.hotelStay("s4", "r302", 1, 3)
	fw.hotelStay("s5", "r101", 0, 3)
	fw.hotelStay("f1", "r103", 1, 3)
	if _, err := fw.sb.rpms.InjectKey("other-integration", rpmsandbox.Key{Type: rpmsandbox.KeyTypePin, PIN: "482913"}, "f1"); err != nil {
		t.Fatal(err)
	}
	foreign := fw.foreign()
	var oa, kb atomic.Bool
	fw.setFault(when(func(r *http.Request) bool {
		return r.Method == http.MethodPost && (requestTo(r, reconcile.SystemOpenApp, "") && oa.CompareAndSwap(false, true) ||
			requestTo(r, reconcile.SystemKeyBox, "") && kb.CompareAndSwap(false, true))
	}, fault.Drop))
	fw.mustExec(ExitPartial, "backfill")
	fw.setFault(nil)
	before := fw.heldSecrets()
	if len(before) == 0 {
		t.Fatal("the first backfill left no invite or access")
	}
	fw.loseState()
	fw.setNow(fw.now.Add(2 * time.Hour))
	fw.mustExec(ExitOK, "backfill")
	fw.mustExec(ExitOK, "run")
	after := fw.heldSecrets()
	for id, sec := range before {
		if after[id] != sec {
			t.Errorf("%s, held before the state was lost, was withdrawn or changed", id)
		}
	}
	fw.wantOneInviteOrAccess("s1", "s2", "Guest s3", "Guest s4")
	for _, s := range []string{"s1", "s2", "s3", "s4", "s5"} {
		k := fw.key(s)
		if k.Owner != sandboxIntegration {
			t.Errorf("stay %s holds %s's key", s, k.Owner)
		}
	}
	fw.checkInvariants(foreign)
}

// TestBackfillKilledThenRunAgain: the backfill after a lost state
// (guests of a QR, a key-box and a PIN room holding what a previous
// install issued, two new arrivals to key) is killed at a crash point, and
// backfill is run again, then run. Every guest holds one credential per
// system, what the guests held before is unchanged, and the invariants
// hold.
func TestBackfillKilledThenRunAgain(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills child processes")
	}
	for _, at := range []string{"after-intent:3rpms:1", "after-request:3rpms:1", "between-steps:1", "after-request:openapp:1", "after-request:keybox:1", "after-intent:keybox:1"} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			w := newProcWorld(t, map[string]string{"r101": "pin", "r102": "pin", "r201": "qr", "r202": "qr", "r301": "key_storage", "r302": "key_storage"}, nil)
			w.hotelStay("s1", "r201", 0, 3)
			w.hotelStay("s2", "r301", 0, 3)
			w.hotelStay("s3", "r101", 0, 3)
			w.run(ExitOK, "backfill")
			held := w.heldSecrets()
			keys := map[string]string{}
			for _, s := range []string{"s1", "s2", "s3"} {
				keys[s] = w.key(s).ID
			}
			w.loseState()
			w.setNow(w.now.Add(2 * time.Hour))
			w.hotelStay("n1", "r202", 0, 2)
			w.hotelStay("n2", "r302", 0, 2)
			foreign := w.foreign()
			killed := w.crashChild("backfill", at)
			t.Logf("killed=%v", killed)
			rep, code, stderr := w.tryRun("backfill")
			if code != ExitOK && code != ExitPartial {
				t.Fatalf("backfill after the kill exited %d\n%s", code, stderr)
			}
			_ = rep
			w.run(ExitOK, "run")
			for id, sec := range held {
				in, iok := w.sb.openapp.Invite(id)
				a, aok := w.sb.keybox.Access(id)
				if iok && (in.Deleted || !in.Enabled || in.Token != sec) || aok && (a.Cancelled || a.Code != sec) {
					t.Errorf("%s, which a guest held, was withdrawn or changed", id)
				}
			}
			for s, id := range keys {
				if got := w.key(s).ID; got != id {
					t.Errorf("stay %s's key %s was replaced by %s", s, id, got)
				}
			}
			w.wantOneInviteOrAccess("s1", "n1", "Guest s2", "Guest n2")
			w.checkInvariants(foreign)
		})
	}
}

// TestBackfillNewerInviteBesideTheOneTheKeyCarries: a previous install
// made s1 a second invite to s1's own room over the same window (a
// replacement it did not finish: made, the QR key not yet rewritten), so
// the OpenApp list's rule (the newest of equals) prefers it. The state
// lost, the backfill must keep the invite s1's QR key carries, the
// guest's link, and withdraw the other: when 3RPMS shows the key's QR
// data (the runner keeps the one the key carries), and when it hides it
// (nothing shows which one the key carries: the invite the guest's key
// may carry is not deleted while the key still carries it).
func TestBackfillNewerInviteBesideTheOneTheKeyCarries(t *testing.T) {
	t.Parallel()
	for name, hide := range map[string]bool{"qr data read": false, "qr data hidden": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fw := newFaultWorld(t, map[string]string{"r201": "qr", "r202": "qr"}, nil)
			fw.hotelStay("s1", "r201", 0, 3)
			fw.mustExec(ExitOK, "backfill")
			var s1inv oasandbox.InviteView
			for _, in := range fw.invites() {
				if ref, _ := openapp.ParseOwnerTag(in.Name); ref.ID == "s1" {
					s1inv = in
				}
			}
			ref, _ := openapp.ParseOwnerTag(s1inv.Name)
			newer, err := fw.sb.openapp.AddInvite(oasandbox.Planted{Integration: sandboxOpenAppInt, CreatedBy: sandboxOpenAppKey,
				Name: "Guest " + openapp.OwnerTag(ref), PortalIDs: s1inv.PortalIDs, ValidFrom: s1inv.ValidFrom, ValidTo: s1inv.ValidTo})
			if err != nil {
				t.Fatal(err)
			}
			qr := fw.key("s1").QRData
			fw.loseState()
			fw.setNow(fw.now.Add(2 * time.Hour))
			fw.sb.rpms.SetHideQRData(hide)
			foreign := fw.foreign()
			fw.mustExec(ExitOK, "backfill")
			live := func(id string) bool {
				in, _ := fw.sb.openapp.Invite(id)
				return !in.Deleted && in.Enabled && in.ValidTo.After(fw.now)
			}
			fw.sb.rpms.SetHideQRData(false)
			if got := fw.key("s1").QRData; got == qr && !live(s1inv.ID) {
				t.Errorf("after the backfill s1's QR key still carries invite %s, which was withdrawn: the guest is locked out", s1inv.ID)
			}
			fw.sb.rpms.SetHideQRData(hide)
			fw.mustExec(ExitOK, "run")
			fw.sb.rpms.SetHideQRData(false)
			for _, in := range fw.sb.openapp.Invites() {
				t.Logf("invite %s %s portals=%v enabled=%v deleted=%v %s..%s", in.ID, in.Name, in.PortalIDs, in.Enabled, in.Deleted, in.ValidFrom, in.ValidTo)
			}
			if !hide {
				if got := fw.key("s1").QRData; got != qr {
					t.Errorf("s1's QR key was rewritten: the guest's link changed although the invite it carried (%s) was live", s1inv.ID)
				}
				if !live(s1inv.ID) {
					t.Errorf("s1's working invite %s was withdrawn", s1inv.ID)
				}
				if live(newer.ID) {
					t.Errorf("s1's second invite %s, not the one its key carries, is still live", newer.ID)
				}
				fw.checkInvariants(foreign)
			}
			if qrNow := fw.key("s1").QRData; !slices.ContainsFunc(fw.sb.openapp.Invites(), func(in oasandbox.InviteView) bool {
				return live(in.ID) && strings.Contains(qrNow, in.Token)
			}) {
				t.Errorf("after the run s1's QR key carries no live invite")
			}
		})
	}
}

// TestTrialBackfillSplitHotelStayMovedWhileStateLost: a split hotel's QR
// and key-box stays, keyed in hotel-a's rooms, move into hotel-b's while
// the state file is lost. After the backfill and the run after it, what
// hotel-a issued for its rooms (an invite to r101, an access to r103's
// key) must no longer let the guests who left those rooms in.
func TestTrialBackfillSplitHotelStayMovedWhileStateLost(t *testing.T) {
	t.Parallel()
	fw, _ := movedInSplitHotel(t)
	type held struct{ invite, access string }
	var before held
	for _, in := range fw.invites() {
		before.invite = in.ID
	}
	for _, a := range fw.accesses() {
		before.access = a.ID
	}
	fw.loseState()
	fw.setNow(fw.now.Add(2 * time.Hour))
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	fw.mustExec(ExitOK, "run")
	for _, in := range fw.sb.openapp.Invites() {
		t.Logf("invite %s %s portals=%v enabled=%v deleted=%v", in.ID, in.Name, in.PortalIDs, in.Enabled, in.Deleted)
	}
	for _, a := range fw.sb.keybox.Accesses() {
		t.Logf("access %s key=%s cancelled=%v visitor=%q", a.ID, a.KeyID, a.Cancelled, a.Visitor)
	}
	if in, _ := fw.sb.openapp.Invite(before.invite); !in.Deleted && in.Enabled {
		t.Errorf("hotel-a's invite %s to %v still lets the guest who left r101 in", in.ID, in.PortalIDs)
	}
	if a, _ := fw.sb.keybox.Access(before.access); !a.Cancelled {
		t.Errorf("hotel-a's access %s to %s's key is still live for the guest who left r103", a.ID, a.KeyID)
	}
	fw.checkInvariants(foreign)
}
