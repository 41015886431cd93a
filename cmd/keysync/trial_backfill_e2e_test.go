package main

import (
	"testing"
	"time"

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

// TestTrialBackfillStrayInviteOfAMovedStay: a previous install left two
// enabled invites tagged for s1: the one its QR key carries (r201) and an
// older one to r202, where s1 was before it moved (and s2 sleeps from
// tomorrow). After the state is lost, the backfill and the run after it
// must keep the guest's link (the invite the key carries) and leave no
// invite of s1 opening r202.
func TestTrialBackfillStrayInviteOfAMovedStay(t *testing.T) {
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
