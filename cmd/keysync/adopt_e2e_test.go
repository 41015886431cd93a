package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	oasandbox "github.com/keysync/keysync/sinks/openapp/sandbox"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// adoptWorld is a world whose guests hold OpenApp invites and key-box
// accesses issued by a backfill (hotel QR and key-storage rooms, Guestway
// apartments), whose state file is then lost, a day later (every guest in
// house). held describes what the guests hold.
func adoptWorld(t *testing.T) (fw *faultWorld, held func() string, foreign string) {
	t.Helper()
	fw, held, foreign = issuedWorld(t)
	fw.loseState()
	return fw, held, foreign
}

// issuedWorld is adoptWorld with its state file kept.
func issuedWorld(t *testing.T) (fw *faultWorld, held func() string, foreign string) {
	t.Helper()
	fw = guestsWorld(t)
	fw.mustExec(ExitOK, "backfill")
	held = func() string {
		var out []string
		for _, inv := range fw.invites() {
			out = append(out, fmt.Sprintf("invite %s %s enabled=%v %s..%s", inv.ID, inv.Name, inv.Enabled, inv.ValidFrom, inv.ValidTo))
		}
		for _, a := range fw.accesses() {
			out = append(out, fmt.Sprintf("access %s %s..%s", a.ID, a.Start, a.End))
		}
		for _, s := range []string{"s1", "s2", "s3"} {
			k := fw.key(s)
			out = append(out, fmt.Sprintf("key %s %s on %s", k.ID, k.Type, s))
		}
		slices.Sort(out)
		return fmt.Sprint(out)
	}
	// An invite per stay in a QR room or apartment (the apartments'
	// shared portals give G2 one too), an access per key-storage room.
	if len(fw.invites()) != 3 || len(fw.accesses()) != 2 {
		t.Fatalf("the first backfill made %d invites and %d accesses, want 3 and 2", len(fw.invites()), len(fw.accesses()))
	}
	foreign = fw.foreign()
	fw.setNow(fw.now.Add(24 * time.Hour))
	return fw, held, foreign
}

// guestsWorld is a fault world, before any run, of a hotel with a room of
// each method and Guestway apartments with a QR lock (L1) and a key box
// (L2): the guests of the QR and key-box rooms (s1, s2) and of the
// apartments (G1, G2) arrive today, the PIN room's (s3) tomorrow.
func guestsWorld(t *testing.T) *faultWorld {
	t.Helper()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"},
		map[string]string{"L1": "qr", "L2": "key_storage"})
	fw.hotelStay("s1", "r201", 0, 3)
	fw.hotelStay("s2", "r301", 0, 3)
	fw.hotelStay("s3", "r101", 1, 3)
	fw.addReservation("G1", "L1", 0, 3)
	fw.addReservation("G2", "L2", 0, 3)
	return fw
}

// noWrites fails the test if rep did any create, revoke, delete or
// disable.
func noWrites(t *testing.T, rep *reconcile.Report, when string) {
	t.Helper()
	for _, op := range []reconcile.Op{reconcile.OpCreate, reconcile.OpRevoke, reconcile.OpDelete, reconcile.OpDisable} {
		if n := countOps(rep, op, reconcile.ResultDone); n != 0 {
			t.Errorf("%s did %d %s actions, want none", when, n, op)
		}
	}
}

// TestBackfillAfterStateLossAdoptsInvitesAndAccesses: the backfill after
// the state file was lost reads back the invites and accesses keysync
// issued and adopts them: it creates nothing anywhere and keeps every
// invite, access and 3RPMS key a guest holds (an in-house guest's QR and
// key-box code do not change), and the run after it has nothing to do.
func TestBackfillAfterStateLossAdoptsInvitesAndAccesses(t *testing.T) {
	t.Parallel()
	fw, held, foreign := adoptWorld(t)
	before := held()
	rep := fw.mustExec(ExitOK, "backfill").rep
	noWrites(t, rep, "the backfill after the state was lost")
	if n := countOps(rep, reconcile.OpAdopt, reconcile.ResultDone); n != 5 {
		t.Errorf("the backfill adopted %d invites and accesses, want 5 (3 invites, 2 accesses)", n)
	}
	same(t, held, before, "the backfill after the state was lost")
	fw.checkInvariants(foreign)
	quietRun(t, fw, held, before, "the run after the backfill")
}

// TestBackfillAdoptsOnceTheSystemsAnswer: while the state file is lost,
// OpenApp and the key box answer 503 to everything. The backfill cannot
// tell which invites and accesses exist, so it creates none (and no key
// made from one), exits partial, and is not complete: the next run, with
// both answering, reads them back and adopts them instead of issuing
// them again.
func TestBackfillAdoptsOnceTheSystemsAnswer(t *testing.T) {
	t.Parallel()
	fw, held, foreign := adoptWorld(t)
	before := held()
	fw.setFault(when(func(r *http.Request) bool {
		return requestTo(r, reconcile.SystemOpenApp, "") || requestTo(r, reconcile.SystemKeyBox, "")
	}, sinktest.Unavailable))
	rep := fw.mustExec(ExitPartial, "backfill").rep
	fw.setFault(nil)
	noWrites(t, rep, "the backfill that could not read OpenApp and the key box")
	for _, sys := range []reconcile.System{reconcile.SystemOpenApp, reconcile.SystemKeyBox} {
		if !slices.ContainsFunc(rep.Failures, func(f reconcile.Failure) bool { return f.System == sys }) {
			t.Errorf("no %s failure in the report: %+v", sys, rep.Failures)
		}
	}
	// Nothing changed: the invites and accesses are live and not yet
	// recorded (the next run reads them back), every key still on its
	// stay.
	same(t, held, before, "the backfill that could not read OpenApp and the key box")

	quietRun(t, fw, held, before, "the run after the backfill")
	fw.checkInvariants(foreign)
}

// TestShardChangeAdoptsWhatGuestsHold moves a deployment from one process
// to two shards (README, "Shards"): each shard's backfill starts a state
// file of its own that records the keys, invites and accesses of its
// properties (carried over from the one file, see
// TestShardChangeCarriesTheRecord); nothing is issued again, nothing
// changes for a guest, and each shard's runs after it have nothing to do.
func TestShardChangeAdoptsWhatGuestsHold(t *testing.T) {
	t.Parallel()
	fw, held, foreign := issuedWorld(t)
	before := held()
	shardRun := func(cmd, shard string) *reconcile.Report {
		t.Helper()
		return fw.mustExec(ExitOK, cmd, "--shard", shard).rep
	}
	recorded := map[string]int{} // remote id → shard files recording it live
	for i, shard := range []string{"0/2", "1/2"} {
		noWrites(t, shardRun("backfill", shard), "backfill --shard "+shard)
		for _, c := range readCredentials(t, shardState(fw.statePath(), shardSpec{i, 2})) {
			if c.Status.Live() && c.RemoteID != "" {
				recorded[string(c.System)+" "+c.RemoteID]++
			}
		}
	}
	for _, inv := range fw.invites() {
		if n := recorded["openapp "+inv.ID]; n != 1 {
			t.Errorf("invite %s is recorded in %d shard files, want 1", inv.ID, n)
		}
	}
	for _, a := range fw.accesses() {
		if n := recorded["keybox "+a.ID]; n != 1 {
			t.Errorf("key-box access %s is recorded in %d shard files, want 1", a.ID, n)
		}
	}
	for _, shard := range []string{"0/2", "1/2"} {
		noWrites(t, shardRun("run", shard), "run --shard "+shard)
	}
	same(t, held, before, "the shards")
	if now := fw.foreign(); now != foreign {
		t.Errorf("another integration's credentials changed:\nbefore %s\nafter  %s", foreign, now)
	}
}

// TestBackfillCutShortKeepsWhatItAdopted: the backfill after the state was
// lost adopts the invites and accesses, then 3RPMS answers its mutations
// 503, so its claims of the keys made from them are not answered and it
// records no link between them. The next run, still a backfill, keeps
// them while it claims the keys again, and links each key to what it is
// made from: nothing is deleted, cancelled or issued again, and the run
// after it has nothing to do.
func TestBackfillCutShortKeepsWhatItAdopted(t *testing.T) {
	t.Parallel()
	fw, held, foreign := adoptWorld(t)
	before := held()
	fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "") }, sinktest.Unavailable))
	rep := fw.mustExec(ExitPartial, "backfill").rep
	fw.setFault(nil)
	if n := countOps(rep, reconcile.OpAdopt, reconcile.ResultDone); n != 5 {
		t.Errorf("the cut-short backfill adopted %d invites and accesses, want 5", n)
	}
	noWrites(t, rep, "the cut-short backfill")
	quietRun(t, fw, held, before, "the run after the cut-short backfill")
	fw.checkInvariants(foreign)
	quietRun(t, fw, held, before, "the second run")
}

// TestBackfillWithdrawsWhatACancelledBookingHolds: two Guestway bookings
// are cancelled while the state file is lost. The backfill finds the
// invites and the key-box access they still hold, adopts them and
// withdraws them (the invites switched off, the access cancelled), so a
// cancelled guest's link or code does not open the door until its window
// ends; it creates nothing.
func TestBackfillWithdrawsWhatACancelledBookingHolds(t *testing.T) {
	t.Parallel()
	fw, _, foreign := adoptWorld(t)
	for _, id := range []string{"G1", "G2"} {
		if err := fw.sb.guestway.SetStatus(id, "cancelled"); err != nil {
			t.Fatal(err)
		}
	}
	rep := fw.mustExec(ExitOK, "backfill").rep
	if n := countOps(rep, reconcile.OpCreate, reconcile.ResultDone); n != 0 {
		t.Errorf("the backfill created %d credentials, want none", n)
	}
	for _, inv := range fw.invites() {
		if strings.Contains(inv.Name, ":guestway:") && inv.Enabled {
			t.Errorf("the cancelled booking's invite %s is still enabled", inv.Name)
		}
	}
	for _, a := range fw.accesses() {
		if a.Visitor == "Guest G2" {
			t.Errorf("the cancelled booking's key-box access %s is still live", a.ID)
		}
	}
	fw.checkInvariants(foreign)
}

// same fails the test when what the guests hold, held(), is no longer
// before.
func same(t *testing.T, held func() string, before, when string) {
	t.Helper()
	if after := held(); after != before {
		t.Errorf("%s changed what the guests hold:\nbefore %s\nafter  %s", when, before, after)
	}
}

// quietRun runs keysync's run, which must exit 0, write nothing (noWrites)
// and leave what the guests hold, held(), as it was before; when names the
// run in the messages.
func quietRun(t *testing.T, fw *faultWorld, held func() string, before, when string) {
	t.Helper()
	noWrites(t, fw.mustExec(ExitOK, "run").rep, when)
	same(t, held, before, when)
}

// TestBackfillLeavesARebookedGuestsAccess: a guest cancels a booking and
// books the same apartment for the same dates again under the same name
// (to change the rate, say). A backfill then looks for what the cancelled
// booking holds: the new booking's access is on the same key, over the
// same dates, for the same name, but it is recorded for the new booking,
// so it is not taken, and stays live.
func TestBackfillLeavesARebookedGuestsAccess(t *testing.T) {
	t.Parallel()
	fw, _, _ := issuedWorld(t)
	if err := fw.sb.guestway.SetStatus("G2", "cancelled"); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitOK, "run")
	if err := fw.sb.guestway.AddReservation(gwsandbox.Reservation{ID: "G9", Status: "confirmed", ArrivalDate: day(0), DepartureDate: day(3), ListingID: "L2", GuestName: "Guest G2"}); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitOK, "run")
	var rebooked []string
	for _, a := range fw.accesses() {
		if a.Visitor == "Guest G2" {
			rebooked = append(rebooked, a.ID)
		}
	}
	if len(rebooked) != 1 {
		t.Fatalf("the rebooked guest holds %d accesses, want 1", len(rebooked))
	}
	foreign := fw.foreign()
	rep := fw.mustExec(ExitOK, "backfill").rep
	for _, a := range rep.Actions() {
		if a.Stay.ID == "G9" && a.Op != reconcile.OpAdopt || a.Cred != nil && a.Cred.RemoteID == rebooked[0] && a.Op != reconcile.OpAdopt {
			t.Errorf("the backfill touched the rebooked guest's access: %s %s %s", a.System, a.Op, a.Stay.ID)
		}
	}
	if a, _ := fw.sb.keybox.Access(rebooked[0]); a.Cancelled {
		t.Errorf("the rebooked guest's access %s was cancelled", rebooked[0])
	}
	fw.checkInvariants(foreign)
}

// TestBackfillWhenTheKeyBoxListsNoCodes breaks an assumption the key-box
// API document leaves open: that its list shows each access's code (the
// document shows it only in a create's answer). Without it, the state
// lost, the backfill still adopts the accesses (nothing issued twice), but
// cannot tell that the key-storage key carries one; the runs after it
// replace the access and its key once, make before break, and then every
// stay holds one live access and one key, as recorded.
func TestBackfillWhenTheKeyBoxListsNoCodes(t *testing.T) {
	t.Parallel()
	fw, _, foreign := adoptWorld(t)
	fw.sb.keybox.SetListWithoutCodes(true)
	key := fw.key("s2").ID
	rep := fw.mustExec(ExitOK, "backfill").rep
	if n := countOps(rep, reconcile.OpCreate, reconcile.ResultDone); n != 0 {
		t.Errorf("the backfill created %d credentials, want none", n)
	}
	fw.mustExec(ExitOK, "run")
	fw.mustExec(ExitOK, "run")
	live := map[string]int{}
	for _, a := range fw.accesses() {
		live[a.Visitor]++
	}
	for visitor, n := range live {
		if n != 1 {
			t.Errorf("%s holds %d live accesses, want 1", visitor, n)
		}
	}
	if fw.key("s2").ID == key {
		t.Error("s2's key-storage key was kept, though nothing showed which code it carries")
	}
	fw.checkInvariants(foreign)
}

// TestBackfillWhenQRDataIsHidden breaks an assumption the 3RPMS Room
// Access Key API leaves open: that a RoomAccessQR's qrData reads back as
// written (the sandbox's HideQRData reads it as ""). The state lost, the
// backfill still adopts every invite (no guest's link changes, nothing is
// issued twice) but cannot tell that s1's QR key carries its invite: the
// runs after it replace that key once, from the adopted invite, so the new
// key encodes the same link; then nothing changes any more.
func TestBackfillWhenQRDataIsHidden(t *testing.T) {
	t.Parallel()
	fw, _, foreign := adoptWorld(t)
	fw.sb.rpms.SetHideQRData(true)
	links := func() string { return fw.links(false) }
	before, old := links(), fw.key("s1")
	rep := fw.mustExec(ExitOK, "backfill").rep
	for _, a := range rep.Actions() {
		if a.Op == reconcile.OpCreate && a.System != reconcile.System3RPMS {
			t.Errorf("the backfill created a %s credential for %s", a.System, a.Stay.ID)
		}
	}
	fw.mustExec(ExitOK, "run")
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the second run after the backfill")
	same(t, links, before, "the backfill and the runs after it")
	if now := fw.key("s1"); now.ID == old.ID {
		t.Error("s1's QR key was kept, though nothing showed what it encodes")
	} else if now.QRData != old.QRData {
		t.Error("s1's new QR key does not encode the link of the invite the guest holds")
	}
	fw.checkInvariants(foreign)
}

// TestBackfillWhenNothingCanBeListed breaks an assumption the OpenApp and
// key-box documents leave open: that each has a call listing what it holds
// (the documents show create, update and delete only; the sandboxes'
// NoList answers the list 405 and 404). A 405 says there is no such call;
// a 404 may be a wrong key or URL, so the key box's creates wait until
// the config says keybox.no_list, which the failure names. Then every
// guest is keyed: with nothing to adopt from, keysync creates. After the
// state is lost, nothing shows what the guests hold, so each is issued a
// new invite or access rather than none: the apartments' by the backfill,
// the hotel's by the run after it, once the backfill's claims show the
// 3RPMS keys ours, their keys replaced from the new ones (make before
// break). The old ones, for the same stays, were made for these windows
// and end with them. The run after that changes nothing. keysync check,
// which reads invites and accesses back where it can, takes the record as
// it does for a system it cannot read back.
func TestBackfillWhenNothingCanBeListed(t *testing.T) {
	t.Parallel()
	fw := guestsWorld(t)
	fw.sb.openapp.SetNoList(true)
	fw.sb.keybox.SetNoList(true)
	foreign := fw.foreign()
	r := fw.exec("backfill", nil)
	if r.code != ExitPartial || len(fw.accesses()) != 0 || !strings.Contains(r.output()+errString(r.err), "keybox.no_list: true") {
		t.Fatalf("backfill against a key box answering its list 404: exit %d, %d accesses; want 3, none, and keybox.no_list named:\n%s", r.code, len(fw.accesses()), r.output())
	}
	cfg, err := os.ReadFile(fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fw.cfg, []byte(strings.ReplaceAll(string(cfg), "    keybox:\n", "    keybox:\n      no_list: true\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitOK, "run")
	fw.checkInvariants(foreign)
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the run after the first backfill and the run that finished it")
	// Readiness takes what is recorded, as for a system without read-back.
	if r := fw.exec("check", nil); r.code != ExitOK {
		t.Errorf("check exited %d, want 0: %v\n%s", r.code, r.err, r.stdout)
	}
	if len(fw.invites()) != 3 || len(fw.accesses()) != 2 {
		t.Fatalf("the first backfill made %d invites and %d accesses, want 3 and 2", len(fw.invites()), len(fw.accesses()))
	}
	old := map[string]time.Time{}
	for _, inv := range fw.invites() {
		old[inv.ID] = inv.ValidTo
	}
	for _, a := range fw.accesses() {
		old[a.ID] = a.End
	}

	fw.rebuildAfterLoss()
	if fresh := fw.issuedSince(old, true); fresh != 5 {
		t.Errorf("the backfill after the state was lost and the run after it issued %d invites and accesses, want 5 (one per guest)", fresh)
	}
	endsBy(t, old, fw.now.Add(4*24*time.Hour)) // the stays leave on day 3
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the second run after the backfill")
}

// rebuildAfterLoss loses the state file, then backfills and runs, each
// expected to exit 0.
func (fw *faultWorld) rebuildAfterLoss() {
	fw.t.Helper()
	fw.loseState()
	fw.mustExec(ExitOK, "backfill")
	fw.mustExec(ExitOK, "run")
}

// issuedSince counts keysync's live key-box accesses, and with invites its
// live invites too, whose ids old does not hold: those issued after old
// was taken.
func (w *world) issuedSince(old map[string]time.Time, invites bool) int {
	n := 0
	if invites {
		for _, inv := range w.invites() {
			if _, ok := old[inv.ID]; !ok {
				n++
			}
		}
	}
	for _, a := range w.accesses() {
		if _, ok := old[a.ID]; !ok {
			n++
		}
	}
	return n
}

// recordedOnce maps the remote id of each live credential of sys in the
// state file to its stay, failing the test for one recorded for two stays
// (what names the kind of credential in the message).
func (w *world) recordedOnce(sys reconcile.System, what string) map[string]string {
	w.t.Helper()
	recorded := map[string]string{}
	for _, c := range w.credentials() {
		if c.System != sys || !c.Status.Live() {
			continue
		}
		if other, dup := recorded[c.RemoteID]; dup {
			w.t.Errorf("%s %s recorded for %s and %s", what, c.RemoteID, other, c.Stay.ID)
		}
		recorded[c.RemoteID] = c.Stay.ID
	}
	return recorded
}

// links lists keysync's live invites with their tokens and, with
// accesses, its key-box accesses with their codes: what the guests hold.
func (w *world) links(accesses bool) string {
	var out []string
	for _, inv := range w.invites() {
		out = append(out, inv.ID+" "+inv.Token)
	}
	if accesses {
		for _, a := range w.accesses() {
			out = append(out, a.ID+" "+a.Code)
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

// endsBy checks that each credential from before the state was lost (by
// id, the end of its window) ends by end: with its stay.
func endsBy(t *testing.T, old map[string]time.Time, end time.Time) {
	t.Helper()
	for id, until := range old {
		if until.IsZero() || until.After(end) {
			t.Errorf("credential %s from before the state was lost stays valid until %v, after its stay", id, until)
		}
	}
}

// TestInviteAnswerLostWhenNothingCanBeListed: OpenApp carries out
// keysync's invite create and the answer is lost, on an OpenApp without a
// list call (NoList). The run after it cannot look the invite up, so it
// records the lost create abandoned and issues the guest a new invite
// rather than waiting on it for ever; the guest's QR key is made from the
// new one. The lost invite, whose link no one was given, ends with its
// window. Then nothing changes.
func TestInviteAnswerLostWhenNothingCanBeListed(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r201": "qr"}, nil)
	fw.sb.openapp.SetNoList(true)
	fw.hotelStay("s1", "r201", 0, 2)
	var dropped atomic.Int32
	fw.setFault(when(func(r *http.Request) bool {
		return requestTo(r, reconcile.SystemOpenApp, http.MethodPost) && dropped.CompareAndSwap(0, 1)
	}, func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		fault.Drop(rw, r, next)
	}))
	fw.mustExec(ExitPartial, "backfill")
	fw.setFault(nil)
	if n := dropped.Load(); n != 1 || len(fw.invites()) != 1 {
		t.Fatalf("dropped %d answers, %d invites made; want 1 and 1", n, len(fw.invites()))
	}
	lost := fw.invites()[0]
	fw.mustExec(ExitOK, "run")
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the second run after the lost answer")
	var live, abandoned []reconcile.Credential
	for _, c := range fw.credentials() {
		switch {
		case c.System != reconcile.SystemOpenApp:
		case c.Status.Live():
			live = append(live, c)
		case c.Status == reconcile.StatusAbandoned:
			abandoned = append(abandoned, c)
		}
	}
	if len(live) != 1 || len(abandoned) != 1 || live[0].RemoteID == lost.ID {
		t.Fatalf("OpenApp credentials: live %+v, abandoned %+v; want one new live invite and the lost create abandoned", live, abandoned)
	}
	var now oasandbox.InviteView
	for _, inv := range fw.invites() {
		if inv.ID == live[0].RemoteID {
			now = inv
		}
	}
	if k := fw.key("s1"); now.ID == "" || !strings.Contains(k.QRData, now.Token) {
		t.Errorf("s1's QR key does not carry the recorded invite %s", live[0].RemoteID)
	}
	if departs := fw.now.Add(3 * 24 * time.Hour); lost.ValidTo.After(departs) {
		t.Errorf("the lost invite stays valid until %v, after the stay", lost.ValidTo)
	}
}

// TestBackfillWhenTheKeyBoxShortensNames breaks an assumption the key-box
// document leaves open: that an access's visitor name reads back as sent
// (the sandbox's VisitorNameLimit keeps 5 characters). A backfill after a
// lost state recognises keysync's accesses by that name, so it finds none
// and issues each guest a new access, never one made for another stay;
// the ones from before, for the same stays, end with their windows. The
// run after that changes nothing.
func TestBackfillWhenTheKeyBoxShortensNames(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r301": "key_storage", "r302": "key_storage"},
		map[string]string{"L2": "key_storage"})
	fw.sb.keybox.SetVisitorNameLimit(5)
	fw.hotelStay("s1", "r301", 0, 3)
	fw.hotelStay("s2", "r302", 0, 2)
	fw.addReservation("G2", "L2", 0, 3)
	fw.mustExec(ExitOK, "backfill")
	old := map[string]time.Time{}
	for _, a := range fw.accesses() {
		old[a.ID] = a.End
		if len([]rune(a.Visitor)) > 5 {
			t.Fatalf("access %s kept the visitor name %q whole", a.ID, a.Visitor)
		}
	}
	if len(old) != 3 {
		t.Fatalf("the first backfill made %d accesses, want 3", len(old))
	}
	fw.setNow(fw.now.Add(24 * time.Hour))
	fw.rebuildAfterLoss()
	if fresh := fw.issuedSince(old, false); fresh != 3 {
		t.Errorf("after the state was lost %d new accesses were issued, want 3 (one per guest)", fresh)
	}
	for id, stay := range fw.recordedOnce(reconcile.SystemKeyBox, "access") {
		if _, before := old[id]; before {
			t.Errorf("stay %s took access %s, made before the state was lost", stay, id)
		}
	}
	endsBy(t, old, fw.now.Add(3*24*time.Hour))
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the second run after the backfill")
}

// TestBackfillWhenTheInviteListHasNoTokens breaks an assumption the
// OpenApp document leaves open: that its invite list shows each invite's
// token and portals (the sandbox's ListWithoutTokens). The state lost, the
// backfill still adopts every invite (none issued twice) and, not seeing
// their portals, sets them once in place. Not seeing s1's token, it cannot
// tell that s1's QR key carries it, nor make one from it: the run after
// replaces s1's invite and key once, the new invite made before the old
// one is deleted. Then every guest holds one live invite, as recorded, and
// nothing changes.
func TestBackfillWhenTheInviteListHasNoTokens(t *testing.T) {
	t.Parallel()
	fw, _, foreign := adoptWorld(t)
	fw.sb.openapp.SetListWithoutTokens(true)
	rep := fw.mustExec(ExitOK, "backfill").rep
	if n := countOps(rep, reconcile.OpCreate, reconcile.ResultDone); n != 0 {
		t.Errorf("the backfill created %d credentials, want none", n)
	}
	if n := countOps(rep, reconcile.OpAdopt, reconcile.ResultDone); n != 5 {
		t.Errorf("the backfill adopted %d invites and accesses, want 5", n)
	}
	old := fw.key("s1").ID
	rep = fw.mustExec(ExitOK, "run").rep
	created, deleted := -1, -1
	for i, a := range rep.Actions() {
		if a.System == reconcile.SystemOpenApp && a.Stay.ID == "s1" && a.Result == reconcile.ResultDone {
			switch a.Op {
			case reconcile.OpCreate:
				created = i
			case reconcile.OpDelete:
				deleted = i
			}
		}
	}
	if created < 0 || deleted < 0 || deleted < created {
		t.Errorf("s1's invite: created at %d, deleted at %d in the run's actions; want a new one made before the old one goes", created, deleted)
	}
	if fw.key("s1").ID == old {
		t.Error("s1's QR key was kept, though nothing showed the invite it carries")
	}
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the second run after the backfill")
	fw.checkInvariants(foreign)
}

// TestBackfillWhenReaddIsRefused breaks the assumption a backfill's claim
// rests on: that re-adding the key a stay holds succeeds for the
// integration that made it (the 3RPMS Room Access Key API does not say;
// the sandbox's SetRefuseReadd makes it a conflict). The state lost, every
// claim is refused, so keysync takes its own keys for another
// integration's: it leaves them alone and says a person is needed. It
// must not then end the invite and the access those keys are made from
// (the QR key is the invite's link, the key-storage PIN the access's
// code): the guests' way in stays as it was.
func TestBackfillWhenReaddIsRefused(t *testing.T) {
	t.Parallel()
	fw, _, _ := adoptWorld(t)
	fw.sb.rpms.SetRefuseReadd(true)
	links := func() string { return fw.links(true) }
	keys := func() string {
		var out []string
		for _, s := range []string{"s1", "s2", "s3"} {
			out = append(out, s+" "+fw.key(s).ID)
		}
		return fmt.Sprint(out)
	}
	before, onStays := links(), keys()
	fw.mustExec(ExitAttention, "backfill")
	fw.mustExec(ExitAttention, "run")
	fw.mustExec(ExitAttention, "run")
	same(t, links, before, "the backfill whose claims were refused and the runs after it")
	same(t, keys, onStays, "the backfill whose claims were refused and the runs after it")
}

// TestBackfillWhenOpenAppShortensNames breaks an assumption the OpenApp
// document leaves open: that an invite's name reads back as sent (the
// sandbox's SetNameLimit keeps 12 characters, so the owner tag at the end
// of keysync's names is cut off). After a lost state a backfill cannot
// tell keysync's invites by name: every guest still ends up with one
// working invite recorded for their own stay (a new one), never one made
// for another stay, and no invite from before stays valid after its stay
// (one for a stay cancelled meanwhile would: the README says to delete
// them by hand). The run after that changes nothing.
func TestBackfillWhenOpenAppShortensNames(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r201": "qr", "r202": "qr"}, map[string]string{"L1": "qr"})
	fw.sb.openapp.SetNameLimit(12)
	fw.hotelStay("s1", "r201", 0, 3)
	fw.hotelStay("s2", "r202", 0, 2)
	fw.addReservation("G1", "L1", 0, 3)
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	old := map[string]time.Time{}
	for _, inv := range fw.invites() {
		old[inv.ID] = inv.ValidTo
	}
	if len(old) != 0 {
		t.Fatalf("invites() found %d invites with whole names, want none (names cut to 12 characters)", len(old))
	}
	var made []oasandbox.InviteView
	for _, inv := range fw.sb.openapp.Invites() {
		if !inv.Deleted {
			made = append(made, inv)
			old[inv.ID] = inv.ValidTo
			if len([]rune(inv.Name)) > 12 {
				t.Fatalf("invite %s kept the name %q whole", inv.ID, inv.Name)
			}
		}
	}
	if len(made) != 3 {
		t.Fatalf("the first backfill made %d invites, want 3", len(made))
	}
	fw.checkInvariants(foreign)
	fw.setNow(fw.now.Add(24 * time.Hour))
	fw.rebuildAfterLoss()
	recorded := fw.recordedOnce(reconcile.SystemOpenApp, "invite")
	if len(recorded) != 3 {
		t.Errorf("%d live invites recorded after the state was lost, want 3 (one per guest): %v", len(recorded), recorded)
	}
	for id := range recorded {
		delete(old, id) // adopted: checked by the invariants
	}
	// The latest stay departs in two days: nothing from before outlives
	// that day.
	endsBy(t, old, fw.now.Add(2*24*time.Hour).Truncate(24*time.Hour).Add(24*time.Hour))
	fw.checkInvariants(foreign)
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the second run after the backfill")
}

// TestShardChangeCarriesTheRecord: 3RPMS hides a cancelled reservation's
// stays, so a backfill cannot see them; only the record knows what they
// hold. Two bookings are cancelled just before the deployment goes from one
// state file to two shards, and another just before it goes from two to
// three. Each shard's new file takes over, at its backfill, what the
// latest file of its properties knew, and its runs withdraw everything the
// cancelled stays hold (3RPMS keys, the invite, the key-box access), from
// the newest layout's record, not an older one's.
func TestShardChangeCarriesTheRecord(t *testing.T) {
	t.Parallel()
	fw, _, _ := issuedWorld(t)
	base := fw.statePath()
	holds := func(files []string, stays ...string) map[string]reconcile.Credential {
		return recordedHolds(t, files, stays...)
	}
	withdrawn := func(what string, held map[string]reconcile.Credential) {
		t.Helper()
		if len(held) == 0 {
			t.Fatalf("%s: the cancelled stays held nothing to withdraw", what)
		}
		if on := stillOn(t, fw, held); len(on) > 0 {
			t.Errorf("%s: the cancelled stays still hold %v", what, on)
		}
	}
	reshard := func(n int) {
		t.Helper()
		for i := range n {
			shard := fmt.Sprintf("%d/%d", i, n)
			for _, cmd := range []string{"backfill", "run"} {
				r := fw.exec(cmd, nil, "--shard", shard)
				if r.code != ExitOK {
					t.Fatalf("%s --shard %s exited %d:\n%s", cmd, shard, r.code, r.stderr)
				}
				if r.rep != nil && countOps(r.rep, reconcile.OpCreate, reconcile.ResultDone) != 0 {
					t.Errorf("%s --shard %s created credentials", cmd, shard)
				}
			}
		}
	}

	// One file to two shards: s1 (an invite and the key made from it) and
	// s2 (a key-box access and its key) cancelled in between.
	cancelled := holds([]string{base}, "s1", "s2")
	for _, id := range []string{"res-s1", "res-s2"} {
		if err := fw.sb.rpms.CancelReservation(id); err != nil {
			t.Fatal(err)
		}
	}
	reshard(2)
	withdrawn("after going to two shards", cancelled)
	// The shard's audit trail says where s1's record came from.
	var carried []string
	for i := range 2 {
		out := mustRunText(t, ExitOK, fw.getenv, "history", "--config", fw.cfg, "--shard", fmt.Sprintf("%d/2", i), "--stay", "s1").stdout
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, " carry_over ") && strings.Contains(line, "done: taken over from "+base+", where it was credential ") {
				carried = append(carried, line)
			}
		}
	}
	if len(carried) != len(recordedHolds(t, []string{base}, "s1")) {
		t.Errorf("history of s1 in the shards shows %d credentials taken over from %s, want one for each it held:\n%s", len(carried), base, strings.Join(carried, "\n"))
	}
	// The unsharded file is still there: a run without --shard (an old
	// timer left on) would be a second owner of every property.
	if r := fw.exec("run", nil); r.code != ExitConfig || !strings.Contains(r.output(), "--shard I/N") {
		t.Errorf("run without --shard beside newer shard files exited %d, want %d pointing at --shard:\n%s", r.code, ExitConfig, r.output())
	}

	// A guest booked and keyed while there were two shards, cancelled
	// before going to three: only the two-shard files know what s4 holds
	// (the first file is older and never heard of it).
	fw.setNow(fw.now.Add(24 * time.Hour))
	fw.hotelStay("s4", "r201", 1, 3)
	for i := range 2 {
		fw.mustExec(ExitOK, "run", "--shard", fmt.Sprintf("%d/2", i))
	}
	fw.setNow(fw.now.Add(24 * time.Hour))
	late := holds([]string{shardState(base, shardSpec{0, 2}), shardState(base, shardSpec{1, 2})}, "s4")
	if err := fw.sb.rpms.CancelReservation("res-s4"); err != nil {
		t.Fatal(err)
	}
	reshard(3)
	withdrawn("after going to three shards", late)
}

// recordedHolds is what the record in files says stays hold: their live
// credentials with a remote id, by system and remote id.
func recordedHolds(t *testing.T, files []string, stays ...string) map[string]reconcile.Credential {
	t.Helper()
	out := map[string]reconcile.Credential{}
	for _, f := range files {
		for _, c := range readCredentials(t, f) {
			if slices.Contains(stays, c.Stay.ID) && c.Status.Live() && c.RemoteID != "" {
				out[string(c.System)+" "+c.RemoteID] = c
			}
		}
	}
	return out
}

// stillOn names the credentials of held that still open a door: a 3RPMS
// key on a stay, an enabled invite, a live key-box access.
func stillOn(t *testing.T, fw *faultWorld, held map[string]reconcile.Credential) []string {
	t.Helper()
	var on []string
	for _, c := range held {
		switch c.System {
		case reconcile.System3RPMS:
			if k := keyByID(t, fw.sb.rpms, c.RemoteID); !k.Deleted && len(k.StayIDs) > 0 {
				on = append(on, "3RPMS key "+k.ID+" of "+c.Stay.ID)
			}
		case reconcile.SystemOpenApp:
			for _, inv := range fw.sb.openapp.Invites() {
				if inv.ID == c.RemoteID && inv.Enabled && !inv.Deleted {
					on = append(on, "invite "+inv.ID+" of "+c.Stay.ID)
				}
			}
		case reconcile.SystemKeyBox:
			for _, a := range fw.accesses() {
				if a.ID == c.RemoteID {
					on = append(on, "key-box access "+a.ID+" of "+c.Stay.ID)
				}
			}
		}
	}
	slices.Sort(on)
	return on
}

// TestShardChangeUnreadableFileBeside: a file beside the state files named
// as a shard's that is not a state file stops every command that would
// reconcile against a record it may lack (exit 2, naming the file): the
// backfills of two new shards, and the nightly runs after them on the
// files the backfills made. Once it is moved aside, the next run carries
// the record over and withdraws what the stays cancelled meanwhile hold.
// An empty one (a shard's file being created) knows nothing and stops
// nothing.
func TestShardChangeUnreadableFileBeside(t *testing.T) {
	t.Parallel()
	fw, _, _ := issuedWorld(t)
	base := fw.statePath()
	cancelled := recordedHolds(t, []string{base}, "s1", "s2")
	for _, id := range []string{"res-s1", "res-s2"} {
		if err := fw.sb.rpms.CancelReservation(id); err != nil {
			t.Fatal(err)
		}
	}
	bogus := shardPath(base, "0", "7")
	if err := os.WriteFile(bogus, []byte("not a state file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"backfill", "run"} {
		for i := range 2 {
			if r := fw.exec(cmd, nil, "--shard", fmt.Sprintf("%d/2", i)); r.code != ExitConfig || !strings.Contains(r.output(), bogus) {
				t.Errorf("%s --shard %d/2 beside an unreadable file exited %d, want %d naming it:\n%s", cmd, i, r.code, ExitConfig, r.output())
			}
		}
	}
	if err := os.WriteFile(bogus, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		fw.mustExec(ExitOK, "run", "--shard", fmt.Sprintf("%d/2", i))
	}
	if on := stillOn(t, fw, cancelled); len(on) > 0 || len(cancelled) == 0 {
		t.Errorf("the cancelled stays still hold %v (of %d)", on, len(cancelled))
	}
}

// TestShardChangeBackToAnEarlierN: two shards, then three, then two again
// with the two-shard files still there. Their record of the properties is
// older than the three-shard files', which replace it: a stay keyed and
// cancelled while there were three shards has all it held withdrawn. A
// plan first, against a file whose record is older, writes nothing to it.
func TestShardChangeBackToAnEarlierN(t *testing.T) {
	t.Parallel()
	fw, late := backToTwoShards(t)
	base := fw.statePath()
	two := func() []reconcile.Credential {
		var out []reconcile.Credential
		for i := range 2 {
			out = append(out, readCredentials(t, shardState(base, shardSpec{i, 2}))...)
		}
		return out
	}
	before := two()
	// A plan writes nothing, so it takes nothing over: it says it is
	// against an older record (exit 3), and is not saved.
	for i := range 2 {
		shard := fmt.Sprintf("%d/2", i)
		r := fw.exec("plan", nil, "--shard", shard)
		if r.code != ExitPartial || r.rep == nil || len(r.rep.Failures) == 0 {
			t.Fatalf("plan --shard %s against older records exited %d, want %d with a failure:\n%s", shard, r.code, ExitPartial, r.output())
		}
		for _, f := range r.rep.Failures {
			if f.System != "" || !strings.Contains(f.Err, "this plan is against an older record of the property than "+base[:len(base)-len(".db")]+".shard-") {
				t.Errorf("plan --shard %s: failure %+v, want the property's older record named", shard, f)
			}
		}
		// check, which reads only, says so too, rather than list the
		// stays the older record lacks as not ready.
		if r := mustRunText(t, ExitPartial, fw.getenv, "check", "--config", fw.cfg, "--shard", shard, "--now", fw.now.Format(time.RFC3339)); !strings.Contains(r.stdout, "this state file holds an older record of the property than "+base[:len(base)-len(".db")]+".shard-") || strings.Contains(r.stdout, "Not ready") {
			t.Errorf("check --shard %s against older records said:\n%s", shard, r.stdout)
		}
		out := filepath.Join(t.TempDir(), "p.plan")
		if r := fw.exec("plan", nil, "--shard", shard, "--out", out); r.code != ExitPartial || fileExists(out) {
			t.Errorf("plan --out --shard %s against older records exited %d (want %d) and saved %v", shard, r.code, ExitPartial, fileExists(out))
		}
	}
	if after := two(); len(after) != len(before) {
		t.Errorf("the plans wrote %d credentials into the two-shard files, want none", len(after)-len(before))
	}
	// Each run takes its properties' records over, and warns: expected
	// once, going back; every night, an old timer left on.
	for i := range 2 {
		r := fw.exec("run", nil, "--shard", fmt.Sprintf("%d/2", i))
		if r.code != ExitOK || !strings.Contains(r.stderr, "a shard of another number of shards read this property since this file did") || !strings.Contains(r.stderr, `"read_since_by":"`) {
			t.Errorf("run --shard %d/2 exited %d, want 0 with a warning naming the other shard:\n%s", i, r.code, r.output())
		}
	}
	if on := stillOn(t, fw, late); len(on) > 0 {
		t.Errorf("back on two shards, cancelled s4 still holds %v", on)
	}
}

// backToTwoShards runs issuedWorld's hotel in two shards, then three, and
// books s4 then; a day later, s4 is cancelled, and the deployment is about
// to go back to two shards, whose files' record is older than the
// three-shard files'. It returns what s4 holds.
func backToTwoShards(t *testing.T) (*faultWorld, map[string]reconcile.Credential) {
	t.Helper()
	fw, _, _ := issuedWorld(t)
	eachShard(t, fw, 2, "backfill", "run")
	fw.setNow(fw.now.Add(24 * time.Hour))
	eachShard(t, fw, 3, "backfill", "run")
	fw.hotelStay("s4", "r201", 1, 3)
	eachShard(t, fw, 3, "run")
	var three []string
	for i := range 3 {
		if f := shardState(fw.statePath(), shardSpec{i, 3}); fileExists(f) {
			three = append(three, f)
		}
	}
	late := recordedHolds(t, three, "s4")
	if len(late) == 0 {
		t.Fatal("s4 holds nothing")
	}
	fw.setNow(fw.now.Add(24 * time.Hour))
	if err := fw.sb.rpms.CancelReservation("res-s4"); err != nil {
		t.Fatal(err)
	}
	return fw, late
}

// eachShard runs cmds in each shard of n, in order, each of which must
// exit 0.
func eachShard(t *testing.T, fw *faultWorld, n int, cmds ...string) {
	t.Helper()
	for i := range n {
		for _, cmd := range cmds {
			if r := fw.exec(cmd, nil, "--shard", fmt.Sprintf("%d/%d", i, n)); r.code != ExitOK {
				t.Fatalf("%s --shard %d/%d exited %d:\n%s", cmd, i, n, r.code, r.output())
			}
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestShardChangeBackPlanOnAReadOnlyFile: TestShardChangeBackToAnEarlierN's
// situation (two shards, three, back to two: the two-shard files' record is
// older than the three-shard files'), but the operator's plan cannot write
// the state file (another user's, a read-only mount; here chattr +i, where
// the tests may use it) and plans against it read-only: the plan is FAILED
// as when it can write (exit 3), and plan --out saves nothing.
func TestShardChangeBackPlanOnAReadOnlyFile(t *testing.T) {
	t.Parallel()
	fw, _ := backToTwoShards(t)
	f := shardState(fw.statePath(), shardSpec{0, 2})
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(f + suffix)
	}
	if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
		t.Skipf("chattr: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", f).Run() })
	if r := fw.exec("plan", nil, "--shard", "0/2"); r.code != ExitPartial {
		t.Errorf("plan --shard 0/2 against an older record, on a file it cannot write, exited %d, want %d (FAILED as when it can)", r.code, ExitPartial)
	}
	out := filepath.Join(t.TempDir(), "p.plan")
	if r := fw.exec("plan", nil, "--shard", "0/2", "--out", out); fileExists(out) {
		t.Errorf("plan --out --shard 0/2 against an older record saved the plan (exit %d)", r.code)
	}
}
