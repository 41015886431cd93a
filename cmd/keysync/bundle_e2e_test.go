package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	kbsandbox "github.com/keysync/keysync/sinks/keybox/sandbox"
	oasandbox "github.com/keysync/keysync/sinks/openapp/sandbox"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
	"github.com/keysync/keysync/state"
)

// world is the four sandboxes over real HTTP (127.0.0.1) with a config for
// a hotel on 3RPMS (Europe/Ljubljana) and apartments on Guestway, both with
// OpenApp (lobby shared portal on the apartments) and the key box. Every
// e2e world is one: faultWorld and procWorld add their helpers to it.
type world struct {
	t   *testing.T
	sb  *sandboxes
	cfg string
	now time.Time
	// env, when set, is the environment keysync reads instead of
	// sandboxEnv; owner is then keysync's 3RPMS integration id and hotel
	// the 3RPMS property's name (see harness.world).
	env   func(string) string
	owner string
	hotel string
}

func newWorld(t *testing.T, hotel, apartments map[string]string, opts ...worldOption) *world {
	t.Helper()
	var o worldOptions
	for _, opt := range opts {
		opt(&o)
	}
	w := &world{t: t, sb: testSandboxes(), now: t0}
	for _, id := range sortedKeys(hotel) {
		w.sb.rpms.AddRoom(id, strings.TrimPrefix(id, "r"))
		w.sb.addRoom(w.sb.hotel, id, hotel[id])
	}
	for _, id := range sortedKeys(apartments) {
		w.sb.guestway.AddListing(id, "Apartment "+id)
		w.sb.addRoom(w.sb.apartments, id, apartments[id])
	}
	w.sb.middleware = o.wrap
	if err := w.sb.serve("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// keysync's clients use http.DefaultTransport: a connection it
		// dialed but never used counts as new, not idle, and would hold
		// Shutdown to its timeout.
		if tr, ok := http.DefaultTransport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
		w.sb.stop()
	})
	dir := t.TempDir()
	cfg := strings.ReplaceAll(w.sb.config(filepath.Join(dir, "k.db")), "timezone: UTC", "timezone: Europe/Ljubljana")
	if o.edit != nil {
		cfg = o.edit(cfg)
	}
	w.cfg = filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(w.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// worldOptions are what newWorld's options set.
type worldOptions struct {
	wrap func(http.Handler) http.Handler
	edit func(string) string
}

// worldOption is an option of newWorld.
type worldOption func(*worldOptions)

// withMiddleware passes every request to the sandboxes through wrap.
func withMiddleware(wrap func(http.Handler) http.Handler) worldOption {
	return func(o *worldOptions) { o.wrap = wrap }
}

// withConfigEdit passes the config through edit before it is written.
func withConfigEdit(edit func(string) string) worldOption {
	return func(o *worldOptions) { o.edit = edit }
}

func (w *world) getenv(k string) string {
	if w.env != nil {
		return w.env(k)
	}
	return sandboxEnv[k]
}

// ourIntegration is keysync's 3RPMS integration id.
func (w *world) ourIntegration() string { return cmp.Or(w.owner, sandboxIntegration) }

// statePath is the world's state file.
func (w *world) statePath() string {
	w.t.Helper()
	cfg, err := LoadConfig(w.cfg, w.getenv)
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg.State
}

// holdLock takes the state file's run lock, as another process's run
// would, until unlock.
func (w *world) holdLock() (unlock func()) {
	w.t.Helper()
	lock, err := state.Lock(w.statePath())
	if err != nil {
		w.t.Fatal(err)
	}
	return func() { lock.Unlock() }
}

// loseState removes the world's state file, as a lost disk would.
func (w *world) loseState() {
	w.t.Helper()
	removeState(w.statePath())
}

// removeState removes the state file at path with its write-ahead log.
func removeState(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// credentials reads keysync's state file.
func (w *world) credentials() []reconcile.Credential {
	w.t.Helper()
	return readCredentials(w.t, w.statePath())
}

func (w *world) setNow(t time.Time) {
	w.now = t
	w.sb.setNow(t)
}

// run runs keysync in-process and requires the exit code and a report.
func (w *world) run(want int, cmd string) *reconcile.Report {
	w.t.Helper()
	rep, code, stderr := w.tryRun(cmd)
	if code != want {
		if rep != nil {
			for _, a := range rep.Actions() {
				w.t.Logf("%s %s %s step %d: %s %s", a.System, a.Op, a.Stay.ID, a.Step, a.Result, a.Error)
			}
		}
		w.t.Fatalf("%s exited %d, want %d\n%s", cmd, code, want, stderr)
	}
	if rep == nil {
		w.t.Fatalf("%s printed no report\n%s", cmd, stderr)
	}
	return rep
}

// tryRun runs keysync in-process and returns its report (nil if it printed
// none), exit code and stderr, whatever the code.
func (w *world) tryRun(cmd string) (*reconcile.Report, int, string) {
	w.t.Helper()
	argv := []string{cmd, "--config", w.cfg, "--now", w.now.Format(time.RFC3339), "--json"}
	return runJSON(w.t, argv, func(argv []string, stdout, stderr io.Writer) error {
		return Run(context.Background(), argv, stdout, stderr, w.getenv)
	})
}

// converges requires a plan straight after to have nothing to do.
func (w *world) converges() {
	w.t.Helper()
	rep := w.run(ExitOK, "plan")
	for _, a := range rep.Actions() {
		w.t.Errorf("left over: %s %s %s: %s", a.System, a.Op, a.Stay.ID, a.Reason)
	}
}

func (w *world) hotelStay(id, room string, arrive, depart int) {
	w.t.Helper()
	if err := w.sb.rpms.AddStay(rpmsandbox.Stay{ID: id, RoomID: room, Arrival: day(arrive), Departure: day(depart), ReservationID: "res-" + id}); err != nil {
		w.t.Fatal(err)
	}
}

// addReservation books a confirmed Guestway reservation id for "Guest id"
// in listing, from day arrive to day depart.
func (w *world) addReservation(id, listing string, arrive, depart int) {
	w.t.Helper()
	if err := w.sb.guestway.AddReservation(gwsandbox.Reservation{ID: id, Status: "confirmed", ArrivalDate: day(arrive),
		DepartureDate: day(depart), ListingID: listing, GuestName: "Guest " + id}); err != nil {
		w.t.Fatal(err)
	}
}

// poll runs as serve's Guestway poll does, in-process on a fake clock at
// the world's now: at targets (a property's nil: its look-ahead), with a
// look-ahead of days.
func (w *world) poll(targets map[string][]string, days int) (*reconcile.Report, error) {
	w.t.Helper()
	cfg, err := LoadConfig(w.cfg, w.getenv)
	if err != nil {
		w.t.Fatal(err)
	}
	env := &environment{stdout: io.Discard, stderr: io.Discard, getenv: w.getenv, now: func() time.Time { return w.now },
		clock: clocktest.New(w.now), retry: httpapi.Retry{Clock: clocktest.New(w.now), Rand: func() float64 { return 0.5 }}}
	opts := reconcile.Options{Mode: reconcile.ModeTargeted, Now: w.now, Targets: targets, LookaheadDays: days}
	return env.once(context.Background(), cfg, opts, slog.New(slog.DiscardHandler))
}

// addAccess gives Guestway reservation id the lock access a.
func (w *world) addAccess(id string, a gwsandbox.Access) {
	w.t.Helper()
	if err := w.sb.guestway.AddAccess(id, a); err != nil {
		w.t.Fatal(err)
	}
}

// invites returns keysync's invites (not deleted) by name tag of stay.
func (w *world) invites() []oasandbox.InviteView {
	var out []oasandbox.InviteView
	for _, inv := range w.sb.openapp.Invites() {
		if !inv.Deleted && strings.Contains(inv.Name, "[keysync:") {
			out = append(out, inv)
		}
	}
	return out
}

// accesses returns keysync's key-box accesses that are not cancelled.
func (w *world) accesses() []kbsandbox.AccessView {
	var out []kbsandbox.AccessView
	for _, a := range w.sb.keybox.Accesses() {
		if !a.Cancelled && a.Creator == sandboxBoxUser {
			out = append(out, a)
		}
	}
	return out
}

// key returns the 3RPMS key a stay holds.
func (w *world) key(stay string) rpmsandbox.KeyView {
	w.t.Helper()
	s, _ := w.sb.rpms.Stay(stay)
	if s.KeyID == "" {
		w.t.Fatalf("stay %s holds no key", stay)
	}
	return keyByID(w.t, w.sb.rpms, s.KeyID)
}

// keyByID returns the 3RPMS sandbox's key with this id, deleted or not;
// the test stops when the sandbox has no such key.
func keyByID(t *testing.T, rpms *rpmsandbox.Server, id string) rpmsandbox.KeyView {
	t.Helper()
	k, ok := rpms.Key(id)
	if !ok {
		t.Fatalf("the 3RPMS sandbox has no key %q", id)
	}
	return k
}

// lj is a local time in Ljubljana.
func lj(date string, hour int) time.Time {
	loc, _ := time.LoadLocation("Europe/Ljubljana")
	d, _ := time.ParseInLocation(time.DateOnly, date, loc)
	return d.Add(time.Duration(hour) * time.Hour)
}

func TestBundleQRRoomInviteWrittenBackAndUpdatedInPlace(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]string{"r201": "qr", "r202": "qr"}, nil)
	w.hotelStay("s1", "r201", 1, 3)
	planted, err := w.sb.openapp.AddInvite(oasandbox.Planted{Integration: sandboxOpenAppInt, CreatedBy: "front desk",
		Name: "Manual guest pass", PortalIDs: []string{"portal-r201"}, ValidFrom: t0, ValidTo: t0.Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	rep := w.run(ExitOK, "backfill")
	if w3 := rep.Requests[reconcile.System3RPMS].Writes; w3 != 2 {
		t.Errorf("3RPMS write requests = %d, want 2", w3)
	}
	invs := w.invites()
	if len(invs) != 1 {
		t.Fatalf("want one keysync invite, got %d", len(invs))
	}
	inv := invs[0]
	// Check-in 15:00 and check-out 11:00 in Ljubljana, grace 2 h each side.
	if !inv.ValidFrom.Equal(lj(day(1), 13)) || !inv.ValidTo.Equal(lj(day(3), 13)) || !slices.Equal(inv.PortalIDs, []string{"portal-r201"}) || !inv.Enabled {
		t.Errorf("invite = from %s to %s portals %v enabled %v", inv.ValidFrom, inv.ValidTo, inv.PortalIDs, inv.Enabled)
	}
	k := w.key("s1")
	if k.Type != rpmsandbox.KeyTypeQR || k.QRData != "https://open.example/i/"+inv.Token {
		t.Errorf("3RPMS key = %s %q, want the invite's guest link", k.Type, k.QRData)
	}
	w.converges()

	// Extension: the invite is updated in place; link and 3RPMS key stay.
	if err := w.sb.rpms.ChangeDates("s1", day(1), day(5)); err != nil {
		t.Fatal(err)
	}
	rep = w.run(ExitOK, "run")
	after := w.invites()
	if len(after) != 1 || after[0].ID != inv.ID || after[0].Token != inv.Token || !after[0].ValidTo.Equal(lj(day(5), 13)) {
		t.Errorf("after extension: %+v (want same link %s, to %s)", after, inv.ID, lj(day(5), 13))
	}
	if w.key("s1").ID != k.ID {
		t.Error("the 3RPMS QR key was replaced although the link did not change")
	}
	if got := countOps(rep, reconcile.OpUpdate, reconcile.ResultDone); got != 1 || writeRequests(rep) != 1 {
		t.Errorf("extension: %d updates in %d write requests, want 1 in 1", got, writeRequests(rep))
	}

	// Room move: the invite's portals follow, still the same link.
	if err := w.sb.rpms.MoveStay("s1", "r202"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "run")
	after = w.invites()
	if len(after) != 1 || after[0].ID != inv.ID || !slices.Equal(after[0].PortalIDs, []string{"portal-r202"}) {
		t.Errorf("after the move: %+v", after)
	}
	w.converges()

	// Cancellation: the invite is switched off and the key revoked; after
	// the stay's window the invite is deleted.
	if err := w.sb.rpms.CancelReservation("res-s1"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "run")
	for _, i := range w.sb.openapp.Invites() {
		if i.ID == inv.ID && (i.Enabled || i.Deleted) {
			t.Errorf("cancelled stay's invite: enabled %v deleted %v, want disabled", i.Enabled, i.Deleted)
		}
	}
	if s, _ := w.sb.rpms.Stay("s1"); s.KeyID != "" {
		t.Error("cancelled stay still holds its key")
	}
	w.converges()
	w.setNow(lj(day(5), 14))
	w.run(ExitOK, "run")
	if len(w.invites()) != 0 {
		t.Errorf("invite not deleted after the window: %+v", w.invites())
	}
	for _, i := range w.sb.openapp.Invites() {
		if i.ID == planted.ID && (i.Deleted || !i.Enabled || !i.ValidTo.Equal(planted.ValidTo)) {
			t.Errorf("an invite keysync did not create was changed: %+v", i)
		}
	}
	w.checkInvariants("")
}

func TestBundleKeyStorageRoomAccessWrittenBackAndReplacedOnChange(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]string{"r301": "key_storage"}, nil)
	w.hotelStay("s1", "r301", 0, 2)
	foreign, err := w.sb.keybox.AddAccess(kbsandbox.AccessInput{Creator: "housekeeping", KeyID: "key-r301",
		Start: t0, End: t0.Add(4 * time.Hour), TimeZone: "Europe/Ljubljana", Visitor: "Cleaner", Code: "777777"})
	if err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "backfill")
	acc := w.accesses()
	if len(acc) != 1 {
		t.Fatalf("want one access, got %+v", acc)
	}
	a := acc[0]
	if a.KeyID != "key-r301" || a.StartDate != day(0) || a.StartTime != "13:00" || a.EndDate != day(2) || a.EndTime != "13:00" || a.TimeZone != "Europe/Ljubljana" {
		t.Errorf("access = %s %s %s → %s %s in %s", a.KeyID, a.StartDate, a.StartTime, a.EndDate, a.EndTime, a.TimeZone)
	}
	k := w.key("s1")
	if k.Type != rpmsandbox.KeyTypeKeyStorage || k.PIN != a.Code || k.Compartment != "C301" {
		t.Errorf("3RPMS key = %s, PIN matches code %v, compartment %q", k.Type, k.PIN == a.Code, k.Compartment)
	}
	w.converges()

	// The key box has no update call: a date change replaces the access,
	// and the 3RPMS key with it (a new code).
	if err := w.sb.rpms.ChangeDates("s1", day(0), day(3)); err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "run")
	acc = w.accesses()
	if len(acc) != 1 || acc[0].ID == a.ID || acc[0].EndDate != day(3) {
		t.Fatalf("after the change: %+v", acc)
	}
	if k2 := w.key("s1"); k2.PIN != acc[0].Code || k2.ID == k.ID {
		t.Error("3RPMS key not replaced with the new access's code")
	}
	w.converges()

	// After departure + grace: access cancelled, key revoked and deleted.
	w.setNow(lj(day(3), 14))
	w.run(ExitOK, "run")
	if len(w.accesses()) != 0 {
		t.Errorf("access still active after checkout: %+v", w.accesses())
	}
	if s, _ := w.sb.rpms.Stay("s1"); s.KeyID != "" {
		t.Error("key still assigned after checkout")
	}
	if f, _ := w.sb.keybox.Access(foreign.ID); f.Cancelled {
		t.Error("an access keysync did not create was cancelled")
	}
	w.converges()
}

func TestBundleGuestwayApartments(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, map[string]string{"L1": "qr", "L2": "key_storage", "L3": "pin", "L4": "pin"})
	w.addReservation("G1", "L1", 0, 2)
	w.addReservation("G2", "L2", 1, 3)
	w.addReservation("G3", "L3", 0, 1) // arrives today, lock PIN held
	w.addReservation("G4", "L3", 1, 2) // arrives tomorrow
	w.addReservation("G5", "L4", 0, 1) // arrives today, no lock PIN
	w.addAccess("G3", gwsandbox.Access{ID: "A1", LockID: "lock-1", LockName: "Front door", PIN: "493817"})
	rep := w.run(ExitOK, "backfill")
	var kinds []string
	for _, n := range rep.Notes() {
		kinds = append(kinds, fmt.Sprintf("%s %s", n.Kind, n.Stay.ID))
	}
	slices.Sort(kinds)
	// G5 arrives today in a pin room with no lock PIN: flagged. G1
	// arrives today too, but its room's way in is the OpenApp invite: not
	// flagged. G2 and G4 check in tomorrow (15:00, 13:00 with grace), 34
	// hours after 02:00Z: not yet.
	want := []string{"lock_pin G3", "missing_lock_pin G5"}
	if !slices.Equal(kinds, want) {
		t.Errorf("notes = %q, want %q", kinds, want)
	}
	out, _ := json.Marshal(rep)
	if bytes.Contains(out, []byte("493817")) {
		t.Error("the lock PIN appears in the JSON report")
	}
	invs := w.invites()
	// The apartments have shared portals (lobby, garage): every stay gets an
	// invite, G1's with its door too.
	if len(invs) != 5 {
		t.Fatalf("want an invite per stay, got %d", len(invs))
	}
	for _, inv := range invs {
		want := []string{"portal-garage", "portal-lobby"}
		if strings.Contains(inv.Name, ":G1]") {
			want = []string{"portal-L1", "portal-garage", "portal-lobby"}
		}
		if !slices.Equal(inv.PortalIDs, want) {
			t.Errorf("invite %s portals %v, want %v", inv.Name, inv.PortalIDs, want)
		}
	}
	if len(w.accesses()) != 1 {
		t.Errorf("want one key-box access (G2), got %d", len(w.accesses()))
	}
	w.converges()

	// A cancelled reservation: its access is cancelled, its invite disabled.
	if err := w.sb.guestway.SetStatus("G2", "cancelled"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "run")
	if len(w.accesses()) != 0 {
		t.Error("cancelled reservation's key-box access still active")
	}
	for _, inv := range w.invites() {
		if strings.Contains(inv.Name, ":G2]") && inv.Enabled {
			t.Error("cancelled reservation's invite still enabled")
		}
	}
	w.converges()
}

// TestBundlePartsFailAlone refuses OpenApp (a wrong API key) for one run:
// the 3RPMS PIN keys and key-box accesses of the same run still land, the
// run exits partial with the auth code's hint, and the next run with the
// right key creates the invites and their QR keys.
func TestBundlePartsFailAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"}, nil)
	w.hotelStay("s1", "r101", 0, 2)
	w.hotelStay("s2", "r201", 0, 2)
	w.hotelStay("s3", "r301", 0, 2)
	wrongKey := func(k string) string {
		if k == "KEYSYNC_OPENAPP_API_KEY" {
			return "wrong-key"
		}
		return w.getenv(k)
	}
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"backfill", "--config", w.cfg, "--now", w.now.Format(time.RFC3339)}, &out, &errb, wrongKey)
	if code := exitCode(err); code != ExitConfig || !strings.Contains(err.Error(), "Authorization: Bearer") {
		t.Errorf("exit %d, err %v; want %d with a hint about the API key", code, err, ExitConfig)
	}
	if strings.Contains(out.String()+errb.String(), "wrong-key") {
		t.Error("the API key appears in the output")
	}
	if w.key("s1").Type != rpmsandbox.KeyTypePin || w.key("s3").Type != rpmsandbox.KeyTypeKeyStorage {
		t.Error("the PIN and key-box parts did not land while OpenApp was refused")
	}
	if s, _ := w.sb.rpms.Stay("s2"); s.KeyID != "" || len(w.invites()) != 0 {
		t.Error("the QR part landed although OpenApp refused it")
	}
	w.run(ExitOK, "run")
	if k := w.key("s2"); k.Type != rpmsandbox.KeyTypeQR || len(w.invites()) != 1 {
		t.Errorf("next run: QR key %s, %d invites", k.Type, len(w.invites()))
	}
	w.converges()
	// Departure: every part is cleaned up.
	w.setNow(lj(day(2), 14))
	w.run(ExitOK, "run")
	if len(w.invites()) != 0 || len(w.accesses()) != 0 || len(w.sb.rpms.Keys()) == 0 {
		t.Errorf("after checkout: %d invites, %d accesses", len(w.invites()), len(w.accesses()))
	}
	for _, s := range w.sb.rpms.Stays() {
		if s.KeyID != "" {
			t.Errorf("stay %s still holds a key after checkout", s.ID)
		}
	}
	w.converges()
}

// TestBundleKeyBoxRoomMove moves a stay between two key-box rooms: a new
// access to the new room's key is created first, the old one cancelled,
// and the 3RPMS key now carries the new code and compartment.
func TestBundleKeyBoxRoomMove(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]string{"r301": "key_storage", "r302": "key_storage"}, nil)
	w.hotelStay("s1", "r301", 0, 2)
	foreign := w.foreign()
	w.run(ExitOK, "backfill")
	before := w.accesses()
	if len(before) != 1 || before[0].KeyID != "key-r301" {
		t.Fatalf("accesses = %+v", before)
	}
	if err := w.sb.rpms.MoveStay("s1", "r302"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "run")
	after := w.accesses()
	if len(after) != 1 || after[0].KeyID != "key-r302" || after[0].ID == before[0].ID {
		t.Fatalf("after the move: %+v", after)
	}
	if k := w.key("s1"); k.PIN != after[0].Code || k.Compartment != "C302" {
		t.Errorf("3RPMS key carries PIN of the new access %v, compartment %q", k.PIN == after[0].Code, k.Compartment)
	}
	w.checkInvariants(foreign)
}

// TestGuestwayAccessesOfOneReservationFail: one reservation whose lock
// accesses Guestway cannot answer (a 503 after the retries) no longer
// fails the property's read: the guests beside it are keyed, and the
// guest in a pin room, arriving today, is noted (missing_lock_pin, which
// status and the arrivals-without-credential metric count) with why.
func TestGuestwayAccessesOfOneReservationFail(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, nil, map[string]string{"L1": "qr", "L3": "pin"})
	fw.addReservation("G1", "L1", 0, 2)
	fw.addReservation("G3", "L3", 0, 1)
	fw.addAccess("G1", gwsandbox.Access{ID: "A0", LockID: "lock-0", LockName: "Gate", PIN: "112233"})
	fw.setFault(when(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/G3/accesses") },
		func(w http.ResponseWriter, _ *http.Request, _ http.Handler) { fault.Answer503(w) }))
	rep := fw.mustExec(ExitOK, "backfill").rep
	if len(fw.liveInvitesOf("G1")) != 1 {
		t.Error("G1, beside the reservation whose accesses failed, holds no invite")
	}
	notes := notesOf(rep, "G3")
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "missing_lock_pin: ") || !strings.Contains(notes[0], "could not read Guestway's smart-lock PINs") {
		t.Errorf("G3's notes %q; want one missing_lock_pin saying its PINs could not be read", notes)
	}
}

// TestGuestwayPINAsNumber: a Guestway that sends lock PINs as JSON
// numbers (the sandbox's pin_as_number: 049381 arrives as 49381) fails no
// run: the guest arriving today is keyed, and the plan shows no PIN with
// its leading zero lost but tells a person to give the guest Guestway's.
func TestGuestwayPINAsNumber(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, map[string]string{"L1": "qr", "L3": "pin"})
	w.addReservation("G1", "L1", 0, 2)
	w.addReservation("G3", "L3", 0, 1)
	w.addAccess("G3", gwsandbox.Access{ID: "A1", LockID: "lock-1", LockName: "Front door", PIN: "049381"})
	w.sb.guestway.SetPINAsNumber(true)
	rep := w.run(ExitOK, "backfill")
	notes := notesOf(rep, "G3")
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "missing_lock_pin: ") || !strings.Contains(notes[0], "Front door is not a JSON string") {
		t.Errorf("G3's notes %q; want one missing_lock_pin naming the lock whose PIN came as a number", notes)
	}
	out, _ := json.Marshal(rep)
	for _, leak := range []string{"49381"} {
		if bytes.Contains(out, []byte(leak)) {
			t.Errorf("the report shows %s, a PIN that lost its leading zero", leak)
		}
	}
	// The apartments' shared portals give each stay an invite.
	if len(w.invites()) != 2 {
		t.Errorf("invites %d, want G1's and G3's: the run went on", len(w.invites()))
	}
}

// TestInviteUpdatedInPlaceKeepsTheGuestsName: a Guestway guest's invite
// changed in place (the stay extended) keeps the guest's name in its
// name, where the update renamed it "Guest stay".
func TestInviteUpdatedInPlaceKeepsTheGuestsName(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "qr"})
	fw.addReservation("G1", "L1", 0, 3)
	fw.mustExec(ExitOK, "backfill")
	before := fw.invites()
	if len(before) != 1 || !strings.HasPrefix(before[0].Name, "Guest G1 ") {
		t.Fatalf("after the backfill: %+v, want one invite named for Guest G1", before)
	}
	if err := fw.sb.guestway.ChangeDates("G1", day(0), day(5)); err != nil {
		t.Fatal(err)
	}
	r := fw.mustExec(ExitOK, "run")
	if n := countOps(r.rep, reconcile.OpUpdate, reconcile.ResultDone); n != 1 {
		t.Fatalf("%d invite updates, want the extension in place", n)
	}
	if after := fw.invites(); len(after) != 1 || after[0].ID != before[0].ID || !strings.HasPrefix(after[0].Name, "Guest G1 ") {
		t.Errorf("after the extension: %+v, want invite %s still named for Guest G1", after, before[0].ID)
	}
	fw.checkInvariants("")
}

// TestInHouseArrivalCorrectedKeepsTheCode: an in-house guest's arrival,
// corrected to a day earlier (both in the past), changes no door: the run
// keeps the key-box access and its code (the key box cannot change one in
// place, so a change would mean a new code), and check finds the stay
// ready, its access open for all that is left of the stay.
func TestInHouseArrivalCorrectedKeepsTheCode(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r301": "key_storage"}, nil)
	fw.hotelStay("s1", "r301", -1, 2)
	fw.mustExec(ExitOK, "backfill")
	before := fw.accesses()
	if len(before) != 1 {
		t.Fatalf("%d accesses after the backfill, want 1", len(before))
	}
	if err := fw.sb.rpms.ChangeDates("s1", day(-2), day(2)); err != nil {
		t.Fatal(err)
	}
	r := fw.mustExec(ExitOK, "run")
	if n := len(r.rep.Actions()); n != 0 {
		t.Errorf("the run after the in-house guest's arrival was corrected planned %d actions, want none", n)
	}
	if after := fw.accesses(); len(after) != 1 || after[0].ID != before[0].ID {
		t.Errorf("after the correction: %+v, want access %s kept", after, before[0].ID)
	}
	if c := fw.exec("check", nil); c.code != ExitOK {
		t.Errorf("check exited %d, want 0: the access is open for what is left of the stay\n%s", c.code, c.output())
	}
	fw.checkInvariants("")
}

// TestInHouseInviteWithoutAStartInThePast: an OpenApp that refuses a
// create whose valid_from has passed (the sandbox's refuse_past_start; the
// OpenApp document says an omitted start opens the window at once, and
// nothing of one in the past): an in-house guest's invite is created
// without a start, open at once, where every run was refused and the
// guest never got one.
func TestInHouseInviteWithoutAStartInThePast(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r201": "qr"}, nil)
	fw.sb.openapp.SetRefusePastStart(true)
	fw.hotelStay("s1", "r201", -1, 2)
	fw.mustExec(ExitOK, "backfill")
	invs := fw.invites()
	if len(invs) != 1 || !invs[0].Enabled || invs[0].ValidFrom.After(fw.now) || !invs[0].ValidTo.Equal(lj(day(2), 13)) {
		t.Fatalf("after the backfill: %+v, want one invite open now until check-out plus grace", invs)
	}
	fw.converges()
	if c := fw.exec("check", nil); c.code != ExitOK {
		t.Errorf("check exited %d, want 0\n%s", c.code, c.output())
	}
	fw.checkInvariants("")
}

// notesOf returns the report's notes on stay, each as "kind: detail".
func notesOf(rep *reconcile.Report, stay string) []string {
	var out []string
	for _, n := range rep.Notes() {
		if n.Stay.ID == stay {
			out = append(out, fmt.Sprintf("%s: %s", n.Kind, n.Detail))
		}
	}
	return out
}

// keyedThenUnreadable is a world of two QR listings whose guests G1 and
// G2 a backfill keyed, G1's reservation then listed with its dates
// unreadable; inv is G1's invite.
func keyedThenUnreadable(t *testing.T) (fw *faultWorld, inv []string) {
	t.Helper()
	fw = listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr"})
	fw.mustExec(ExitOK, "backfill")
	if inv = fw.liveInvitesOf("G1"); len(inv) != 1 {
		t.Fatalf("after the backfill G1 holds invites %v, want one", inv)
	}
	if err := fw.sb.guestway.SetUnreadableDates("G1", true); err != nil {
		t.Fatal(err)
	}
	return fw, inv
}

// TestGuestwayReservationWithUnreadableDates: a reservation Guestway
// lists with a date keysync cannot read does not fail the property's
// read. The other guests are keyed; what was issued for it is left as it
// is (a guest in house keeps the way in); a person is asked (exit 6, a
// note, check lists it); cancelled meanwhile, its invite is withdrawn.
func TestGuestwayReservationWithUnreadableDates(t *testing.T) {
	t.Parallel()
	fw, inv := keyedThenUnreadable(t)
	fw.addReservation("G5", "L2", 4, 6)

	r := fw.mustExec(ExitAttention, "run")
	if got := fw.liveInvitesOf("G1"); !slices.Equal(got, inv) {
		t.Errorf("G1's live invites %v after the run, want %v kept as they were", got, inv)
	}
	if got := fw.liveInvitesOf("G5"); len(got) != 1 {
		t.Errorf("G5, a new guest beside the unreadable reservation, holds invites %v, want one", got)
	}
	notes := notesOf(r.rep, "G1")
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "unreadable_stay: ") || !strings.Contains(notes[0], "arrival_date") {
		t.Errorf("G1's notes %q, want one unreadable_stay note naming arrival_date", notes)
	}
	if strings.Contains(r.stdout+r.stderr, gwsandbox.UnreadableDate) {
		t.Errorf("the run's output quotes the unreadable value %q:\n%s\n%s", gwsandbox.UnreadableDate, r.stdout, r.stderr)
	}
	c := mustRunText(t, ExitAttention, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
	wantAll(t, "check", c.stdout, "G1", "could not read")
	p := mustRunText(t, ExitOK, fw.getenv, "plan", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
	wantAll(t, "the plan", p.stdout, "Nothing keysync can do, but 1 item(s) need a person (the notes marked attention below).", "unreadable_stay (attention)")
	st := mustRunText(t, ExitOK, fw.getenv, "status", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
	wantAll(t, "status", st.stdout, "unreadable_stay: sandbox-apartments stay G1 room L1")

	if err := fw.sb.guestway.SetStatus("G1", "cancelled"); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitOK, "run")
	if got := fw.liveInvitesOf("G1"); len(got) != 0 {
		t.Errorf("G1, cancelled with its dates unreadable, still holds live invites %v", got)
	}
	if got := fw.liveInvitesOf("G5"); len(got) != 1 {
		t.Errorf("G5 holds invites %v, want its one", got)
	}
}

// TestUnreadableReservationLeftAsRecorded: an unreadable reservation's
// credentials are held while the last of them is meant to open a door (a
// key-box access replaced for new dates while the invite's update failed
// runs later than the invite), then ended as a departure's; a look-ahead
// poll and a run at the stay hold them too; the exit message names no
// empty room.
func TestUnreadableReservationLeftAsRecorded(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "key_storage"})
	fw.mustExec(ExitOK, "backfill")
	// Extended to day 6: the key box takes the new dates, OpenApp fails.
	if err := fw.sb.guestway.ChangeDates("G2", day(0), day(6)); err != nil {
		t.Fatal(err)
	}
	fw.setFault(when(func(r *http.Request) bool {
		return requestTo(r, reconcile.SystemOpenApp, "") && r.Method != http.MethodGet
	}, sinktest.Unavailable))
	fw.exec("run", nil)
	fw.setFault(nil)
	for _, id := range []string{"G1", "G2"} {
		if err := fw.sb.guestway.SetUnreadableDates(id, true); err != nil {
			t.Fatal(err)
		}
	}
	live := func() map[string]int {
		out := map[string]int{}
		for _, c := range fw.credentials() {
			if c.Status.Live() {
				out[c.Stay.ID+" "+string(c.System)]++
			}
		}
		return out
	}
	before := live()
	if before["G2 keybox"] != 1 || before["G2 openapp"] != 1 || before["G1 openapp"] != 1 {
		t.Fatalf("before: live %v, want G1's invite, G2's invite and access", before)
	}
	if rep, err := fw.poll(map[string][]string{"sandbox-apartments": nil}, 2); err != nil || len(rep.Attention()) != 2 {
		t.Errorf("the poll: %v; want a note for each unreadable reservation", err)
	}
	fw.mustExec(ExitAttention, "run", "--stay", "G1,G2", "--property", "sandbox-apartments")
	if got := live(); !maps.Equal(got, before) {
		t.Errorf("after a look-ahead and a run at the stays: live %v, want %v held", got, before)
	}

	// Past day 3 (G1's stay, G2's invite), before day 6 (G2's access).
	fw.setNow(fw.now.Add(4 * 24 * time.Hour))
	r := fw.exec("run", nil)
	if got := live(); got["G2 keybox"] != 1 || got["G2 openapp"] != 1 || got["G1 openapp"] != 0 {
		t.Errorf("on day 4: live %v; want G2's held (its access runs to day 6), G1's ended with its recorded stay", got)
	}
	if out := r.output(); strings.Contains(out, "in room  (") || strings.Contains(out, gwsandbox.UnreadableDate) {
		t.Errorf("the run's output names an empty room or quotes the unreadable value:\n%s", out)
	}
	for _, n := range r.rep.Notes() {
		if n.Stay.ID == "G1" && !strings.Contains(n.Detail, "ended with its stay") {
			t.Errorf("G1's note %q, want it to say its recorded stay has ended", n.Detail)
		}
	}
}

// TestUnreadableReservationInASplitOrganisation: a reservation of one
// property's listing that Guestway lists unreadable is that property's
// alone to hold, note and check: the other property of the organisation
// says nothing of it.
func TestUnreadableReservationInASplitOrganisation(t *testing.T) {
	t.Parallel()
	fw := splitOrgWorld(t)
	if err := fw.sb.guestway.SetUnreadableDates("G1", true); err != nil {
		t.Fatal(err)
	}
	r := fw.mustExec(ExitAttention, "run")
	var by []string
	for _, n := range r.rep.Notes() {
		if n.Stay.ID == "G1" {
			by = append(by, n.Stay.Property)
		}
	}
	if !slices.Equal(by, []string{"apartments-east"}) {
		t.Errorf("G1 noted by %v, want by apartments-east alone", by)
	}
	if got := activeBy(fw)["G1"]; got != "apartments-east" {
		t.Errorf("G1's live credentials by %q, want east's kept", got)
	}
	c := mustRunText(t, ExitAttention, fw.getenv, "check", "--json", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
	if n := strings.Count(c.stdout, `"id": "G1"`); n != 1 || strings.Contains(c.stdout, "0001-01-01") {
		t.Errorf("check lists G1 %d times (want once), or a zero start:\n%s", n, c.stdout)
	}
}

// TestBackfillBesideAnUnreadableReservation: a backfill (the state lost)
// that cannot read a reservation is not complete: once the reservation can
// be read, the invite OpenApp already holds for it is adopted, not issued a
// second time, or, the reservation cancelled meanwhile, withdrawn.
func TestBackfillBesideAnUnreadableReservation(t *testing.T) {
	t.Parallel()
	for _, cancelled := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancelled %v", cancelled), func(t *testing.T) {
			t.Parallel()
			fw, inv := keyedThenUnreadable(t)
			fw.loseState()
			want := ExitAttention
			if cancelled {
				if err := fw.sb.guestway.SetStatus("G1", "cancelled"); err != nil {
					t.Fatal(err)
				}
				want, inv = ExitOK, nil
			}
			fw.mustExec(want, "backfill")
			if err := fw.sb.guestway.SetUnreadableDates("G1", false); err != nil {
				t.Fatal(err)
			}
			fw.mustExec(ExitOK, "run")
			if got := fw.liveInvitesOf("G1"); !slices.Equal(got, inv) {
				t.Errorf("G1's live invites %v once its reservation reads again, want %v (adopted, no second; none once cancelled)", got, inv)
			}
			if got := fw.liveInvitesOf("G2"); len(got) != 1 {
				t.Errorf("G2 holds invites %v, want one", got)
			}
		})
	}
}

// TestUnreadableReservationMovedToAnotherUnit: a guest in house whom
// Guestway moves to another listing while the dates cannot be read no
// longer opens the listing left (booked to the next guest from tomorrow);
// nothing is issued for the new one, and a person is told which.
func TestUnreadableReservationMovedToAnotherUnit(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr"})
	if err := fw.sb.guestway.DeleteReservation("G2"); err != nil {
		t.Fatal(err)
	}
	fw.mustExec(ExitOK, "backfill")
	if err := fw.sb.guestway.SetUnreadableDates("G1", true); err != nil {
		t.Fatal(err)
	}
	if err := fw.sb.guestway.MoveUnit("G1", "L2", ""); err != nil {
		t.Fatal(err)
	}
	fw.addReservation("G9", "L1", 1, 3)
	r := fw.mustExec(ExitAttention, "run")
	if got := fw.liveInvitesOf("G1"); len(got) != 0 {
		t.Errorf("G1, moved to L2, still opens L1 with invites %v", got)
	}
	if got := fw.liveInvitesOf("G9"); len(got) != 1 {
		t.Errorf("G9, booked into L1, holds invites %v, want one", got)
	}
	var rooms []string
	for _, n := range r.rep.Notes() {
		if n.Stay.ID == "G1" {
			rooms = append(rooms, n.RoomID)
		}
	}
	if !slices.Equal(rooms, []string{"L2"}) {
		t.Errorf("G1 noted in rooms %v, want L2, where it is now", rooms)
	}
}

// TestUnreadableReservationOfAnotherProperty: in a split organisation, a
// reservation in one property's listing that Guestway lists unreadable,
// cancelled or not, leaves the other property's backfill complete: it
// holds nothing for it.
func TestUnreadableReservationOfAnotherProperty(t *testing.T) {
	t.Parallel()
	for _, cancelled := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancelled %v", cancelled), func(t *testing.T) {
			t.Parallel()
			fw := splitOrgConfig(t, func(east string) string { return east })
			if err := fw.sb.guestway.SetUnreadableDates("G1", true); err != nil {
				t.Fatal(err)
			}
			if cancelled {
				if err := fw.sb.guestway.SetStatus("G1", "cancelled"); err != nil {
					t.Fatal(err)
				}
			}
			fw.exec("backfill", nil)
			db := openState(t, fw.statePath(), state.Options{ReadOnly: true})
			defer db.Close()
			for property, want := range map[string]bool{"apartments-west": true, "apartments-east": false} {
				if done, err := db.Backfilled(context.Background(), property); err != nil || done != want {
					t.Errorf("%s backfilled %v, %v; want %v: G1 is east's alone", property, done, err, want)
				}
			}
		})
	}
}
