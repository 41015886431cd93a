package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
	oasandbox "github.com/keysync/keysync/sinks/openapp/sandbox"
)

// TestRollbackServer: against a 3RPMS that undoes a whole chained document
// when one of its fields fails (the sandbox's RollbackDocuments; the 3RPMS
// Room Access Key API does not say which it does), a backfill beside
// another integration's keys, and a run whose assign meets a reservation
// cancelled after the read, still key every other guest in the same run,
// and exit as they do against a server whose fields stand alone.
func TestRollbackServer(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.sb.rpms.SetRollbackDocuments(true)
		refusalsBesideOthers(t, fw)
	})
}

// refusalsBesideOthers backfills fw's hotel beside another integration's
// keys, whose refused claims of s2 and s3 share documents with the others'
// creates or assigns, then runs with an arrival cancelled after the read:
// every other guest is keyed in each, and only the cancelled stay's
// assign fails.
func refusalsBesideOthers(t *testing.T, fw *faultWorld) {
	t.Helper()
	foreign := bookBesideForeignKeys(fw)
	rep := fw.mustExec(ExitAttention, "backfill").rep
	allDone(t, "backfill", rep)
	fw.checkInvariants(foreign) // s1, s4 and s5 hold keys

	for _, a := range runCancellingAnArrival(t, fw).Actions() {
		if a.Result != reconcile.ResultDone && !(a.Op == reconcile.OpAssign && a.Stay.ID == "s6") {
			t.Errorf("run: %s %s %s: %s %s; only the cancelled stay's assign should fail", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
		}
	}
	fw.checkSafe(foreign)
	fw.mustExec(ExitAttention, "run") // s2, in house, holds another integration's key
	fw.checkInvariants(foreign)
}

// TestSmallerDocumentsThanConfigured: a 3RPMS that takes fewer chained
// mutations a document than max_ops_per_request (the sandbox's
// MaxRootFields; the API document gives no limit) refuses the first
// documents whole, before running them. keysync sends them again in
// halves, keeps the run's later documents to the size that went, says to
// lower max_ops_per_request, and keys every guest in that run.
func TestSmallerDocumentsThanConfigured(t *testing.T) {
	t.Parallel()
	smallerThanConfigured(t, 8, func(fw *faultWorld) { fw.sb.rpms.SetMaxRootFields(3) }, "max_ops_per_request")
}

// TestSmallerPagesThanConfigured: a 3RPMS that refuses threerpms.page_size
// (the sandbox's MaxPageSize; the API document gives no largest page,
// only its examples' first: 20) is asked for 20 instead, for the rest of
// the run; keysync says to lower page_size, and keys every guest.
func TestSmallerPagesThanConfigured(t *testing.T) {
	t.Parallel()
	smallerThanConfigured(t, 30, func(fw *faultWorld) { fw.sb.rpms.SetMaxPageSize(20) }, "page_size")
}

// smallerThanConfigured backfills a hotel of rooms PIN rooms, each with a
// guest, against a 3RPMS that limit makes take less than keysync asks
// for: every guest is keyed in the backfill, which names setting, and the
// run after it has nothing to write.
func smallerThanConfigured(t *testing.T, rooms int, limit func(*faultWorld), setting string) {
	t.Helper()
	hotel := map[string]string{}
	for i := range rooms {
		hotel[roomID(i)] = "pin"
	}
	fw := newFaultWorld(t, hotel, nil)
	for i := range rooms {
		fw.hotelStay(fmt.Sprintf("s%d", i), roomID(i), 0, 2)
	}
	limit(fw)
	foreign := fw.foreign()
	r := fw.mustExec(ExitOK, "backfill")
	if !strings.Contains(r.stderr, setting) {
		t.Errorf("the backfill did not say to lower %s:\n%s", setting, r.stderr)
	}
	fw.checkInvariants(foreign)
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the run after the backfill")
}

// TestGuestwaySmallerPagesThanConfigured: a Guestway that refuses
// guestway.per_page (the document names no page size; the sandbox's
// SetMaxPerPage) is asked for its own page size instead, for the rest of
// the run; keysync says to lower per_page, and keys every guest.
func TestGuestwaySmallerPagesThanConfigured(t *testing.T) {
	t.Parallel()
	fw := twelveApartments(t)
	fw.sb.guestway.SetMaxPerPage(5)
	foreign := fw.foreign()
	r := fw.mustExec(ExitOK, "backfill")
	if !strings.Contains(r.stderr, "per_page") {
		t.Errorf("the backfill did not say to lower per_page:\n%s", r.stderr)
	}
	if n := len(fw.invites()); n != 12 {
		t.Errorf("%d invites, want 12: one per guest", n)
	}
	fw.checkInvariants(foreign)
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the run after the backfill")
}

// twelveApartments is a Guestway portfolio of twelve QR apartments, each
// with a reservation from today for two nights: more than one page of a
// server's own size.
func twelveApartments(t *testing.T) *faultWorld {
	apartments := map[string]string{}
	for i := range 12 {
		apartments[fmt.Sprintf("L%d", i)] = "qr"
	}
	fw := newFaultWorld(t, nil, apartments)
	for i := range 12 {
		fw.addReservation(fmt.Sprintf("G%d", i), fmt.Sprintf("L%d", i), 0, 2)
	}
	return fw
}

// TestOpenAppSmallerListPagesThanAskedFor: an OpenApp whose invite list
// refuses keysync's per_page (the document shows no list at all; the
// sandbox's SetMaxPerPage) is read at its own page size, so a first
// backfill still finds nothing to adopt and issues every invite.
func TestOpenAppSmallerListPagesThanAskedFor(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r201": "qr", "r202": "qr"}, nil)
	fw.sb.openapp.SetMaxPerPage(1)
	fw.hotelStay("s1", "r201", 0, 2)
	fw.hotelStay("s2", "r202", 0, 2)
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	if n := len(fw.invites()); n != 2 {
		t.Errorf("%d invites, want 2", n)
	}
	fw.checkInvariants(foreign)
	// After a lost state the backfill pages through them all and adopts
	// both, issuing nothing.
	fw.loseState()
	if n := countOps(fw.mustExec(ExitOK, "backfill").rep, reconcile.OpAdopt, reconcile.ResultDone); n != 2 {
		t.Errorf("the backfill after the state was lost adopted %d invites, want 2", n)
	}
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the run after it")
	fw.checkInvariants(foreign)
}

// TestOpenAppPutOnlyNarrows breaks an assumption the OpenApp document
// leaves open: that PUT takes the create fields (the document shows it
// switching an invite off or narrowing it; the sandbox's PutOnlyNarrows).
// A stay extended, and one moved to another room, need an invite that
// OpenApp will not change in place: the run that tries says so, and the
// run after it gives each guest a new invite, made before the old one is
// deleted, valid over the new window, and a QR key carrying it.
func TestOpenAppPutOnlyNarrows(t *testing.T) {
	t.Parallel()
	putsRefused(t, (*oasandbox.Server).SetPutOnlyNarrows)
}

// TestOpenAppPutConflicts: TestOpenAppPutOnlyNarrows against an OpenApp
// that answers every PUT 409 (the document defines no error codes; the
// sandbox's SetPutConflicts): the same replacements, and a cancelled
// stay's invite deleted where it could not be switched off.
func TestOpenAppPutConflicts(t *testing.T) {
	t.Parallel()
	putsRefused(t, (*oasandbox.Server).SetPutConflicts)
}

// TestOpenAppPutNotFound: TestOpenAppPutOnlyNarrows against an OpenApp
// that answers every PUT 404 while the invite lives on (a router without
// a PUT route; the document defines no error codes; the sandbox's
// SetPutNotFound). A 404 to a PUT does not show the invite gone: keysync
// must not forget a live invite, which would open the door past the
// stay's end or after its cancellation, but replace or delete it.
func TestOpenAppPutNotFound(t *testing.T) {
	t.Parallel()
	putsRefused(t, (*oasandbox.Server).SetPutNotFound)
}

// putsRefused runs a stay extended, one moved and one cancelled against an
// OpenApp whose PUTs the switch set makes refuse.
func putsRefused(t *testing.T, set func(*oasandbox.Server, bool)) {
	fw := newFaultWorld(t, map[string]string{"r201": "qr", "r202": "qr", "r203": "qr", "r204": "qr"}, nil)
	set(fw.sb.openapp, true)
	fw.hotelStay("s1", "r201", 0, 2)
	fw.hotelStay("s2", "r202", 0, 2)
	fw.hotelStay("s3", "r204", 0, 2)
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	old := map[string]string{}
	var wasTo time.Time
	for _, inv := range fw.invites() {
		old[inv.ID] = inv.Name
		if strings.Contains(inv.Name, ":s1]") {
			wasTo = inv.ValidTo
		}
	}
	if err := fw.sb.rpms.ChangeDates("s1", day(0), day(4)); err != nil {
		t.Fatal(err)
	}
	if err := fw.sb.rpms.MoveStay("s2", "r203"); err != nil {
		t.Fatal(err)
	}
	if err := fw.sb.rpms.CancelReservation("res-s3"); err != nil {
		t.Fatal(err)
	}
	r := fw.exec("run", nil)
	if r.code != ExitPartial || !strings.Contains(r.output(), "replaces or deletes it instead") {
		t.Fatalf("the run whose updates OpenApp refused: exit %d; want 3 and the refusal explained:\n%s", r.code, r.output())
	}
	fw.mustExec(ExitOK, "run")
	if n := enabledInvites(fw); n != 2 {
		t.Errorf("%d invites on, want 2: the old ones deleted, the cancelled stay's switched off or deleted", n)
	}
	for _, inv := range fw.invites() {
		if strings.Contains(inv.Name, ":s3]") {
			if inv.Enabled {
				t.Errorf("the cancelled stay's invite %s is still on", inv.ID)
			}
			continue // switched off: a narrowing the server took
		}
		if _, before := old[inv.ID]; before {
			t.Errorf("invite %s (%s) was kept, though OpenApp would not change it", inv.ID, inv.Name)
		}
		if strings.Contains(inv.Name, ":s1]") && !inv.ValidTo.Equal(wasTo.Add(48*time.Hour)) {
			t.Errorf("s1's new invite ends %v, want %v: two days later, as the stay", inv.ValidTo, wasTo.Add(48*time.Hour))
		}
	}
	fw.checkInvariants(foreign) // each stay's window, room and QR key
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the run after the replacements")
}

// TestGuestwayPagesWithoutHasMore: a Guestway whose list pages carry no
// has_more (the document names no paging; the sandbox's SetNoHasMore
// keeps page, per_page and total) is read on while total says
// reservations are left: every guest is keyed, not only the first page's.
func TestGuestwayPagesWithoutHasMore(t *testing.T) {
	t.Parallel()
	fw := twelveApartments(t)
	fw.sb.guestway.SetMaxPerPage(5) // pages of 5: three to read
	fw.sb.guestway.SetNoHasMore(true)
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	if n := len(fw.invites()); n != 12 {
		t.Errorf("%d invites, want 12: one per guest, past the first page", n)
	}
	fw.checkInvariants(foreign)
	noWrites(t, fw.mustExec(ExitOK, "run").rep, "the run after the backfill")
}

// TestGuestwayLookupPathChecked: keysync looks up by id the reservations
// it holds credentials for that the list no longer returns, and takes a
// 404 as gone; the Guestway document names no path for that call. When
// the look-up 404s, a reservation the list did return is looked up too
// (in a run targeted at one stay, one of the list's first page): if that
// one 404s as well, the path is wrong (the sandbox's
// SetNoReservationGet), and the run says so naming reservation_path
// rather than withdrawing anyone's access; a guest the list returned is
// keyed all the same. Once the path answers, the reservation that really
// went is cleaned up.
func TestGuestwayLookupPathChecked(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, nil, map[string]string{"L0": "qr", "L1": "qr", "L2": "qr"})
	fw.addReservation("G0", "L0", 0, 3)
	fw.addReservation("G1", "L1", 0, 3)
	foreign := fw.foreign()
	fw.mustExec(ExitOK, "backfill")
	if n := enabledInvites(fw); n != 2 {
		t.Fatalf("%d invites on after the backfill, want 2", n)
	}
	fw.sb.guestway.SetNoReservationGet(true)
	// A run for G1 alone reads it by id: a 404 there is checked too.
	r := fw.exec("run", nil, "--stay", "G1")
	if r.code != ExitConfig || !strings.Contains(r.output(), "reservation_path") {
		t.Fatalf("a run for G1 on a path that answers nobody exited %d, want %d naming reservation_path:\n%s", r.code, ExitConfig, r.output())
	}
	if n := enabledInvites(fw); n != 2 {
		t.Fatalf("%d invites on after the run for G1, want 2: G1 is not gone", n)
	}
	if err := fw.sb.guestway.DeleteReservation("G0"); err != nil {
		t.Fatal(err)
	}
	fw.addReservation("G2", "L2", 0, 2)
	r = fw.exec("run", nil)
	if r.code != ExitConfig || !strings.Contains(r.output(), ".guestway.reservation_path: ") || strings.Contains(r.output(), "base_url") {
		t.Fatalf("run with no reservation look-up exited %d, want %d naming the field reservation_path, not the URL:\n%s", r.code, ExitConfig, r.output())
	}
	if n := enabledInvites(fw); n != 3 {
		t.Fatalf("%d invites on after the run that could not look up, want 3: G0's kept (a 404 it could not trust), G2's made", n)
	}
	fw.sb.guestway.SetNoReservationGet(false)
	fw.mustExec(ExitOK, "run")
	if n := enabledInvites(fw); n != 2 {
		t.Errorf("%d invites on once the look-up answers, want 2: the deleted reservation's switched off", n)
	}
	fw.checkInvariants(foreign)
}

// enabledInvites counts keysync's invites that are on.
func enabledInvites(w *faultWorld) int {
	n := 0
	for _, inv := range w.invites() {
		if inv.Enabled {
			n++
		}
	}
	return n
}

// TestOpenAppRefusesOneInviteChange: an OpenApp that answers 403 when an
// invite is changed or deleted (the document defines no error codes; the
// sandbox's SetChangesForbidden) refuses those invites, not keysync's API
// key: the cancelled stays' switch-offs fail alone, however many, the new
// guest's invite is still made in the same run (withdrawals go first),
// and the run is partial, not a credential error. Every run after it
// tries the switch-offs again until a person is told (exit 6).
func TestOpenAppRefusesOneInviteChange(t *testing.T) {
	t.Parallel()
	fw, foreign := hotelWorld(t, map[string]string{"r201": "qr", "r202": "qr", "r203": "qr"}, booking{"s1", "r201", 0, 2}, booking{"s3", "r203", 0, 2})
	fw.mustExec(ExitOK, "backfill")
	for _, res := range []string{"res-s1", "res-s3"} {
		if err := fw.sb.rpms.CancelReservation(res); err != nil {
			t.Fatal(err)
		}
	}
	fw.hotelStay("s2", "r202", 0, 2)
	fw.sb.openapp.SetChangesForbidden(true)
	r := fw.exec("run", nil)
	if r.code != ExitPartial {
		t.Fatalf("run with invite changes refused exited %d, want %d (partial):\n%s", r.code, ExitPartial, r.output())
	}
	var on []string
	for _, inv := range fw.invites() {
		if inv.Enabled {
			on = append(on, inv.Name)
		}
	}
	if len(on) != 3 || !slices.ContainsFunc(on, func(n string) bool { return strings.Contains(n, "s2") }) {
		t.Fatalf("invites on after the run: %q; want the new guest's made beside the two OpenApp would not switch off", on)
	}
	if countOps(r.rep, reconcile.OpCreate, reconcile.ResultDone) == 0 {
		t.Errorf("no create done in the run:\n%s", r.output())
	}
	if !strings.Contains(r.output(), "change or delete it by hand") {
		t.Errorf("the refused switch-offs do not say what a person can do:\n%s", r.output())
	}
	for range 2 {
		r = fw.exec("run", nil)
	}
	if r.code != ExitAttention {
		t.Errorf("the third run refused the same switch-offs exited %d, want %d (a person told):\n%s", r.code, ExitAttention, r.output())
	}
	fw.sb.openapp.SetChangesForbidden(false)
	fw.mustExec(ExitOK, "run")
	fw.checkInvariants(foreign)
}

// TestKeyBoxCancelNotFound: a key box that answers keysync's cancel 404
// while the access lives on (the key-box document shows no cancel call, so
// keysync's is configured, keybox.cancel_path and cancel_method, and a box
// without it answers 404 as routers do; the sandbox's SetCancelNotFound).
// A 404 to a cancel does not show the access gone: a cancelled
// reservation's access must not be recorded cancelled while the box still
// opens for it, but reported, naming the setting to check, and cancelled
// by the run after the setting is right.
func TestKeyBoxCancelNotFound(t *testing.T) {
	t.Parallel()
	fw, foreign := hotelWorld(t, map[string]string{"r301": "key_storage", "r302": "key_storage"}, booking{"s1", "r301", 0, 2}, booking{"s2", "r302", 0, 2})
	fw.mustExec(ExitOK, "backfill")
	fw.sb.keybox.SetCancelNotFound(true)
	if err := fw.sb.rpms.CancelReservation("res-s1"); err != nil {
		t.Fatal(err)
	}
	r := fw.exec("run", nil)
	if r.code != ExitPartial || !strings.Contains(r.output(), "keybox.cancel_path") {
		t.Errorf("the run whose cancel the key box answered 404 while the access lives: exit %d; want 3 and keybox.cancel_path named:\n%s", r.code, r.output())
	}
	fw.checkSafe(foreign) // the live access still recorded live
	fw.sb.keybox.SetCancelNotFound(false)
	fw.mustExec(ExitOK, "run")
	if n := len(fw.accesses()); n != 1 {
		t.Errorf("%d key-box accesses live, want 1: the cancelled stay's cancelled once the box takes the call", n)
	}
	fw.checkInvariants(foreign)
}

// runCancellingAnArrival books two arrivals, s6 and s7, and runs,
// cancelling s6's booking as the run's first mutation reaches 3RPMS (once
// keysync has read it): the run must be partial, s6's assign refused. It
// returns the run's report.
func runCancellingAnArrival(t *testing.T, fw *faultWorld) *reconcile.Report {
	t.Helper()
	fw.hotelStay("s6", "r106", 0, 2)
	fw.hotelStay("s7", "r101", 2, 4)
	var cancelled atomic.Bool
	fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		if b := fault.Body(r); isGQLMutation(r, b) && cancelled.CompareAndSwap(false, true) {
			if err := fw.sb.rpms.CancelReservation("res-s6"); err != nil {
				t.Errorf("cancel: %v", err)
			}
		}
		next.ServeHTTP(rw, r)
	})
	run := fw.exec("run", nil)
	fw.setFault(nil)
	if run.code != ExitPartial {
		t.Fatalf("run exited %d, want %d (the cancelled stay's assign refused): %v\n%s", run.code, ExitPartial, run.err, run.stderr)
	}
	return run.rep
}

// bookBesideForeignKeys books five stays in rooms r101 to r105, two of
// them (s2 in house, s3 arriving tomorrow) holding another integration's
// keys, and returns them as fw.foreign gives them.
func bookBesideForeignKeys(fw *faultWorld) string {
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", -1, 2)
	fw.hotelStay("s3", "r103", 1, 3)
	fw.hotelStay("s4", "r104", 0, 3)
	fw.hotelStay("s5", "r105", 0, 1)
	fw.injectForeign("s2")
	fw.injectForeign("s3")
	return fw.foreign()
}

// TestKeyBoxCancelConflict: a key box that answers a cancel 409 (the
// key-box document shows no cancel call, so nothing says what a second
// cancel answers). Where staff cancelled the access first, the list no
// longer shows it live: it is already cancelled, and the run is done,
// where it failed run after run until a person was asked. A 409 to an
// access the list still shows live, or that no list can tell of (a list
// answered 405), stays a failure: never taken as gone.
func TestKeyBoxCancelConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		staffFirst, noList bool
	}{{"already cancelled", true, false}, {"still live", false, false}, {"no list to tell", false, true}} {
		staffFirst := tc.staffFirst
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fw, foreign := hotelWorld(t, map[string]string{"r301": "key_storage"}, booking{"s1", "r301", 0, 2})
			fw.mustExec(ExitOK, "backfill")
			live := fw.accesses()
			if len(live) != 1 {
				t.Fatalf("%d accesses after the backfill, want 1", len(live))
			}
			if staffFirst {
				if err := fw.sb.keybox.CancelAccess(live[0].ID, "staff"); err != nil {
					t.Fatal(err)
				}
			}
			fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
				switch {
				case requestTo(r, reconcile.SystemKeyBox, http.MethodDelete):
					rw.Header().Set("Content-Type", "application/json")
					rw.WriteHeader(http.StatusConflict)
					rw.Write([]byte(`{"message":"access cannot be cancelled in its current state"}`))
				case tc.noList && requestTo(r, reconcile.SystemKeyBox, http.MethodGet):
					rw.Header().Set("Allow", "POST, DELETE")
					rw.WriteHeader(http.StatusMethodNotAllowed)
				default:
					next.ServeHTTP(rw, r)
				}
			})
			if err := fw.sb.rpms.CancelReservation("res-s1"); err != nil {
				t.Fatal(err)
			}
			r := fw.exec("run", nil)
			if staffFirst {
				if r.code != ExitOK {
					t.Errorf("cancel answered 409 for an access the list shows cancelled: exit %d, want 0\n%s", r.code, r.output())
				}
				fw.checkInvariants(foreign)
				return
			}
			if r.code != ExitPartial {
				t.Errorf("cancel answered 409 for an access no list shows gone: exit %d, want 3\n%s", r.code, r.output())
			}
			fw.checkSafe(foreign) // the live access still recorded live
		})
	}
}

// TestFieldErrorsAs400: a 3RPMS that answers a document whose fields ran
// with errors beside their data with HTTP 400 instead of 200 (the sandbox's
// field_errors_as_400; the API document gives no status codes) has each
// field decided by its own data or error, as in a 200: the refused claims
// of another integration's keys cost nothing else in their documents, and
// every other guest is keyed in the same run.
func TestFieldErrorsAs400(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.sb.rpms.SetFieldErrorsAs400(true)
		refusalsBesideOthers(t, fw)
	})
}
