package keybox_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/keybox"
	"github.com/keysync/keysync/sinks/keybox/sandbox"
)

// find calls Find and fails the test on an error.
var find = sinktest.Find

// The window of the tests' stay s1: June 1 15:00 to June 3 11:00 in
// Ljubljana.
var s1Start, s1End = utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0)

// plantLookalikes plants accesses like stay s1's in room 204 (key K1) that
// a create for it did not make: the front desk's on K1 with the same
// window and name; ours on K1 cancelled, ending an hour later, starting a
// minute earlier, or at the same local times in another zone; and ours on
// key K2 with the same window.
func plantLookalikes(t *testing.T, sb *sandbox.Server) {
	t.Helper()
	plants := []sandbox.AccessInput{
		{Creator: otherUser, KeyID: "K1", Start: s1Start, End: s1End, TimeZone: "Europe/Ljubljana", Visitor: "Ana"},
		{Creator: otherUser, KeyID: "K1", Start: s1Start, End: s1End, TimeZone: "Europe/Ljubljana", Visitor: "Guest s1"},
		{Creator: ourUser, KeyID: "K1", Start: s1Start, End: s1End.Add(time.Hour), TimeZone: "Europe/Ljubljana", Visitor: "Ana"},
		{Creator: ourUser, KeyID: "K1", Start: s1Start.Add(-time.Minute), End: s1End, TimeZone: "Europe/Ljubljana", Visitor: "Ana"},
		// 15:00 and 11:00 in Vancouver (UTC−7 in June).
		{Creator: ourUser, KeyID: "K1", Start: utc(2026, 6, 1, 22, 0), End: utc(2026, 6, 3, 18, 0), TimeZone: "America/Vancouver", Visitor: "Ana"},
		{Creator: ourUser, KeyID: "K2", Start: s1Start, End: s1End, TimeZone: "Europe/Ljubljana", Visitor: "Ana"},
	}
	for _, p := range plants {
		if _, err := sb.AddAccess(p); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := sb.AddAccess(sandbox.AccessInput{Creator: ourUser, KeyID: "K1", Start: s1Start, End: s1End, TimeZone: "Europe/Ljubljana", Visitor: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.CancelAccess(gone.ID, ourUser); err != nil {
		t.Fatal(err)
	}
	if v, _ := sb.Access(gone.ID); v.StartDate != "2026-06-01" || v.StartTime != "15:00" || v.EndTime != "11:00" {
		t.Fatalf("planted %+v, not the window of s1", v)
	}
}

// createAmongLookalikes starts a sandbox served through wrap (a fault on
// creates), plants the lookalikes, and sends a create for stay s1 in room
// over s1's window for guest Ana through a sink that meters its calls; it
// checks the outcome is unknown and returns the sandbox, the sink, its
// options and the create.
func createAmongLookalikes(t *testing.T, wrap func(http.Handler) http.Handler, room string) (*sandbox.Server, *keybox.Sink, keybox.Options, *reconcile.Action) {
	t.Helper()
	sb, url := newSandbox(t, sandbox.Options{}, wrap)
	plantLookalikes(t, sb)
	opts := options(url, lj)
	opts.Meter = &reconcile.Meter{}
	s := newSink(t, opts)
	a := create("s1", room, s1Start, s1End, "Ana")
	if _, err := s.Apply(t.Context(), []*reconcile.Action{a}); !errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Fatalf("Apply: %v, want an unknown outcome", err)
	}
	return sb, s, opts, a
}

// TestFindReadsBackALostCreate creates accesses whose answers are lost
// (Apply reports an unknown outcome), for a key named by id and one named
// by serial number, among lookalikes, and checks Find returns each one's
// id and code with one read.
func TestFindReadsBackALostCreate(t *testing.T) {
	t.Parallel()
	for _, room := range []string{"204", "205"} {
		t.Run("room "+room, func(t *testing.T) {
			sb, s, opts, a := createAmongLookalikes(t, sinktest.LoseCreates, room)
			all := sb.Accesses()
			made := all[len(all)-1]
			if made.Creator != ourUser || made.Cancelled {
				t.Fatalf("the lost create made %+v", made)
			}

			sinktest.ReadsBack(t, s, a, made.ID, made.Code, opts.Meter, reconcile.SystemKeyBox)
			reqs := sb.Requests()
			if last := reqs[len(reqs)-1]; last.Method != http.MethodGet || last.Path != keybox.DefaultListPath || last.User != ourUser || last.Status != 200 {
				t.Errorf("list request %+v", last)
			}
		})
	}
}

// TestFindNothingCreated checks Find reports nothing for a create the box
// never ran, among lookalikes, and for a room whose key has no access.
func TestFindNothingCreated(t *testing.T) {
	t.Parallel()
	_, s, _, a := createAmongLookalikes(t, sinktest.FailCreates, "204")
	if _, _, found := find(t, s, sinktest.Pending(a)); found {
		t.Error("found an access the box never created")
	}
	if _, _, found := find(t, s, sinktest.Pending(create("s1", "301", s1Start, s1End, "Ana"))); found {
		t.Error("found an access to a key that has none")
	}
}

// TestFindIgnoresForeignAccesses checks another user's access is never
// read back, even one made with the very same create.
func TestFindIgnoresForeignAccesses(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	frontDesk := options(url, lj)
	frontDesk.Username, frontDesk.Password = otherUser, otherPass
	for _, guest := range []string{"Ana", ""} {
		mustCreate(t, newSink(t, frontDesk), create("s1", "204", s1Start, s1End, guest))
	}
	plantLookalikes(t, sb)
	if id, _, found := find(t, newSink(t, options(url, lj)), sinktest.Pending(create("s1", "204", s1Start, s1End, "Ana"))); found {
		t.Errorf("Find took foreign access %q", id)
	}
}

// TestFindChoosesAmongMatches checks which of several matching accesses
// Find returns: the one named as a create names a stay without a guest
// name, else the newest.
func TestFindChoosesAmongMatches(t *testing.T) {
	t.Parallel()
	sb, s := sandboxAndSink(t)
	c := sinktest.Pending(create("s1", "204", s1Start, s1End, ""))
	plant := func(visitor string) string {
		v, err := sb.AddAccess(sandbox.AccessInput{Creator: ourUser, KeyID: "K1", Start: s1Start, End: s1End, TimeZone: "Europe/Ljubljana", Visitor: visitor})
		if err != nil {
			t.Fatal(err)
		}
		return v.ID
	}
	first := plant("Walk-in")
	if id, _, _ := find(t, s, c); id != first {
		t.Errorf("one match: %q, want %q", id, first)
	}
	second := plant("Ana")
	if id, _, _ := find(t, s, c); id != second {
		t.Errorf("two matches: %q, want the newer, %q", id, second)
	}
	guestless := plant("Guest s1")
	plant("Bo")
	if id, _, _ := find(t, s, c); id != guestless {
		t.Errorf("with one named Guest s1: %q, want %q", id, guestless)
	}
}

// TestFindErrors checks Find's errors: refused credentials wrap
// ErrUnauthorized, an outage is retried on the fake clock as a read, other
// answers are errors rather than "not found", what cannot be asked is
// refused without a request, and no error shows a secret.
func TestFindErrors(t *testing.T) {
	t.Parallel()
	list := answer(200, jsonCT, `{"data":[{"id":7,"code":`+canaryCode+`,"key":{"id":"K1"},"startDate":"2026-06-01","startTime":"15:00",`+
		`"endDate":"2026-06-03","endTime":"11:00","timeZone":"Europe/Ljubljana","visitorName":"Ana","cancelled":false}]}`)
	unavailable := answer(503, "text/html", "<html>down</html>")
	noWindow := sinktest.Pending(create("s1", "204", s1Start, s1End, "Ana"))
	noWindow.Valid = reconcile.Window{}
	tests := []struct {
		name     string
		cred     *reconcile.Credential // nil: stay s1 in room 204
		edit     func(*keybox.Options)
		steps    []http.HandlerFunc
		requests int
		sleeps   []time.Duration
		is       error // nil with no contains: found access 7
		contains string
	}{
		{name: "401", steps: []http.HandlerFunc{answer(401, jsonCT, `{"message":"`+leaky+`"}`)}, requests: 1, is: reconcile.ErrUnauthorized, contains: "HTTP Basic"},
		{name: "403", steps: []http.HandlerFunc{answer(403, jsonCT, `{"message":"`+leaky+`"}`)}, requests: 1, is: reconcile.ErrUnauthorized, contains: "listing"},
		{name: "404", steps: []http.HandlerFunc{answer(404, jsonCT, `{"message":"`+leaky+`"}`)}, requests: 1, is: reconcile.ErrNotFound, contains: "[redacted]"},
		{name: "503 twice, then the list", steps: []http.HandlerFunc{unavailable, unavailable, list}, requests: 3,
			sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{name: "always 503", steps: []http.HandlerFunc{unavailable}, requests: 4, is: reconcile.ErrUnavailable, contains: "HTTP 503"},
		{name: "no data", steps: []http.HandlerFunc{answer(200, jsonCT, `{}`)}, requests: 1, contains: "no data list"},
		{name: "not JSON", steps: []http.HandlerFunc{answer(200, "text/html", canaryCode)}, requests: 1, contains: "not JSON"},
		{name: "code of the wrong type", steps: []http.HandlerFunc{answer(200, jsonCT, `{"data":[{"id":"a","code":{"pin":"`+canaryCode+`"}}]}`)}, requests: 1, contains: "neither a string nor an integer"},
		{name: "unmapped room", cred: sinktest.Pending(create("s1", "999", s1Start, s1End, "Ana")), steps: []http.HandlerFunc{list}, contains: "not mapped"},
		{name: "no window", cred: noWindow, steps: []http.HandlerFunc{list}, contains: "no access window"},
		{name: "another property", cred: &reconcile.Credential{Stay: reconcile.StayRef{Property: "elsewhere", ID: "s1"}, RoomID: "204", Valid: reconcile.Window{Start: s1Start, End: s1End}},
			steps: []http.HandlerFunc{list}, contains: "elsewhere"},
		{name: "invalid options", edit: func(o *keybox.Options) { o.ListPath = "/v2/accesses?mine=1" }, steps: []http.HandlerFunc{list}, contains: "list path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := adaptertest.Serve(t, t0, tc.steps...)
			opts := options(srv.URL, lj)
			opts.Retry, opts.Now, opts.Meter = retryOn(srv.Clock), srv.Clock.Now, &reconcile.Meter{}
			if tc.edit != nil {
				tc.edit(&opts)
			}
			c := tc.cred
			if c == nil {
				c = sinktest.Pending(create("s1", "204", s1Start, s1End, "Ana"))
			}
			// Invalid options fail at New, before any request.
			s, err := keybox.New(opts)
			var id string
			var code reconcile.Secret
			var found bool
			if err == nil {
				id, code, found, err = s.Find(t.Context(), c)
			}
			sinktest.FindReads(t, srv, opts.Meter, reconcile.SystemKeyBox, tc.requests, tc.sleeps)
			if tc.is == nil && tc.contains == "" {
				if err != nil || !found || id != "7" || code.Reveal() != canaryCode {
					t.Errorf("Find = %q, %v, %v", id, found, err)
				}
				return
			}
			if err == nil || found || id != "" {
				t.Fatalf("Find = %q, %v, %v; want an error", id, found, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v: not %v", err, tc.is)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.contains) || !strings.HasPrefix(msg, "keybox") {
				t.Errorf("%q does not name keybox or mention %q", msg, tc.contains)
			}
			for _, canary := range []string{ourPass, compA, compB, canaryCode} {
				if strings.Contains(msg, canary) {
					t.Errorf("error shows %q: %s", canary, msg)
				}
			}
		})
	}
}

// TestFindAgainstSandboxRefusals checks a wrong password on the sandbox is
// ErrUnauthorized without the password in the error.
func TestFindAgainstSandboxRefusals(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, sandbox.Options{})
	opts := options(url, lj)
	opts.Password = "not-it-CANARY"
	_, _, found, err := newSink(t, opts).Find(t.Context(), sinktest.Pending(create("s1", "204", s1Start, s1End, "Ana")))
	if found || !errors.Is(err, reconcile.ErrUnauthorized) || strings.Contains(err.Error(), "not-it-CANARY") {
		t.Errorf("wrong password: found %v, err %v", found, err)
	}
}

// TestFindAllOneListPerKey creates accesses for two stays on key K1 and one
// on K2 among lookalikes, and reads them back exactly (as a backfill does)
// with a fourth credential the same as the first: one list request per
// key, each access found once (the fourth gets nothing: the one access is
// the first's). A fifth, another stay of another guest on K1 over s1's
// dates (a booking made after s1's was cancelled), gets nothing sought
// exactly, and s1's access when not (a lost create's read-back, which
// cannot tell guests apart).
func TestFindAllOneListPerKey(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	plantLookalikes(t, sb)
	s := newSink(t, options(url, lj))
	s2End := s1End.Add(24 * time.Hour)
	actions := []*reconcile.Action{
		create("s1", "204", s1Start, s1End, "Ana"),
		create("s2", "204", s1Start, s2End, "Bor"),
		create("s3", "205", s1Start, s1End, "Cvet"),
	}
	var sought []reconcile.Sought
	var ids []string
	for _, a := range actions {
		ids = append(ids, mustCreate(t, s, a))
		sought = append(sought, reconcile.Sought{Cred: sinktest.Pending(a), Guest: a.Guest, Exact: true})
	}
	sought = append(sought, reconcile.Sought{Cred: sinktest.Pending(create("s1", "204", s1Start, s1End, "Ana")), Guest: "Ana", Exact: true})
	before := len(sb.Requests())
	held := sinktest.FindAll(t, s, sought)
	if n := len(sb.Requests()) - before; n != 2 {
		t.Errorf("%d requests, want one list per key (2)", n)
	}
	for i, id := range ids {
		if h := held[i]; h == nil || h.RemoteID != id || h.Secret == "" || h.System != reconcile.SystemKeyBox {
			t.Errorf("stay %s: found %+v, want %s with its code", sought[i].Cred.Stay.ID, h, id)
		}
	}
	if h := held[3]; h != nil {
		t.Errorf("the second credential like s1's got %s too", h.RemoteID)
	}

	// An access made before the stay had a guest name is found once it
	// has one: its name names the stay.
	guestless := create("s7", "205", s1End, s1End.Add(48*time.Hour), "")
	id := mustCreate(t, s, guestless)
	if held, err := s.FindAll(t.Context(), []reconcile.Sought{{Cred: sinktest.Pending(guestless), Guest: "Ana Novak", Exact: true}}, nil); err != nil || held[0] == nil || held[0].RemoteID != id {
		t.Errorf("the access made before the guest was named: %+v, %v; want %s", held, err, id)
	}

	rebooked := sinktest.Pending(create("s9", "204", s1Start, s1End, "Bor"))
	for _, exact := range []bool{true, false} {
		held := sinktest.FindAll(t, s, []reconcile.Sought{{Cred: rebooked, Guest: "Bor", Exact: exact}})
		if found := held[0] != nil; found == exact || (found && held[0].RemoteID != ids[0]) {
			t.Errorf("another guest's stay over s1's dates, exact %v: found %+v", exact, held[0])
		}
	}

	// A rebooking under the same name over the same dates: its access is
	// recorded (known), so a look for the cancelled stay finds that stay's
	// own, listed first, not the newer recorded one.
	cancelled := create("s5", "205", s1Start.Add(72*time.Hour), s1End.Add(72*time.Hour), "Eva")
	own := mustCreate(t, s, cancelled)
	theirs := mustCreate(t, s, create("s6", "205", s1Start.Add(72*time.Hour), s1End.Add(72*time.Hour), "Eva"))
	look := []reconcile.Sought{{Cred: sinktest.Pending(cancelled), Guest: "Eva", Exact: true}}
	if held, err := s.FindAll(t.Context(), look, nil); err != nil || held[0] == nil || held[0].RemoteID != theirs {
		t.Fatalf("without what is recorded: %+v, %v; want the newest, %s", held, err, theirs)
	}
	if held, err := s.FindAll(t.Context(), look, map[string]bool{theirs: true}); err != nil || held[0] == nil || held[0].RemoteID != own {
		t.Errorf("with %s recorded: %+v, %v; want the stay's own %s", theirs, held, err, own)
	}
}

// TestFindAllWithoutARoom: a stay sought without a room (it moved into
// another property's rooms, and what this property issued it is sought to
// be ended) is found only by the code its 3RPMS key carries, on any of the
// property's keys and over any window, never by key and dates; without
// such a code nothing is listed at all.
func TestFindAllWithoutARoom(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	s := newSink(t, options(url, lj))
	id := mustCreate(t, s, create("s1", "205", s1Start, s1End, "Ana"))
	mustCreate(t, s, create("s2", "204", s1Start, s1End, "Ana")) // another stay's, same name and dates
	v, _ := sb.Access(id)
	left := func(carries, guest string) reconcile.Sought {
		c := sinktest.Pending(create("s1", "", s1Start.Add(time.Hour), s1End, guest))
		return reconcile.Sought{Cred: c, Guest: guest, Exact: true, Carries: reconcile.Secret(carries)}
	}
	before := len(sb.Requests())
	held, err := s.FindAll(t.Context(), []reconcile.Sought{left("", "Ana")}, nil)
	if err != nil || len(held) != 1 || held[0] != nil {
		t.Errorf("without a code its key carries: %+v, %v; want nothing", held, err)
	}
	if n := len(sb.Requests()) - before; n != 0 {
		t.Errorf("without a code its key carries: %d requests, want none", n)
	}
	held, err = s.FindAll(t.Context(), []reconcile.Sought{left(v.Code, "Ana")}, nil)
	if err != nil || len(held) != 1 || held[0] == nil || held[0].RemoteID != id || held[0].RoomID != "" || string(held[0].Secret) != v.Code {
		t.Errorf("by the code its key carries: %+v, %v; want %s in no room, with its code", held, err, id)
	}
	if held, err := s.FindAll(t.Context(), []reconcile.Sought{left(v.Code, "Bor")}, nil); err != nil || held[0] != nil {
		t.Errorf("the code under another guest's name: %+v, %v; want nothing", held, err)
	}
	if held, err := s.FindAll(t.Context(), []reconcile.Sought{left(v.Code, "Ana")}, map[string]bool{id: true}); err != nil || held[0] != nil {
		t.Errorf("the code of a recorded access: %+v, %v; want nothing", held, err)
	}
}

// TestListedCancelledShapes checks how a listed access is read as cancelled
// or live, for Find (a cancelled access is never found) and Check (one is
// never live). The key-box API document shows no list, so how a box marks
// a cancelled access is not known: any of "cancelled" or "canceled" true,
// a status or state that names a cancellation, or a cancellation time
// counts; a field of an unexpected type tells nothing and does not fail
// the list.
func TestListedCancelledShapes(t *testing.T) {
	t.Parallel()
	const stamp = `"2026-05-30T10:00:00Z"`
	tests := []struct {
		name      string
		extra     string // JSON fields added to a live access of s1's window
		cancelled bool
	}{
		{name: "no status", extra: ``},
		{name: "cancelled false", extra: `,"cancelled":false`},
		{name: "status ACTIVE", extra: `,"status":"ACTIVE"`},
		{name: "status upcoming", extra: `,"status":"upcoming"`},
		{name: "status ended tells nothing", extra: `,"status":"ended"`},
		{name: "null cancellation time", extra: `,"cancelledAt":null,"cancelled_at":""`},
		{name: "zero cancellation time", extra: `,"canceledAt":0,"revokedAt":"  "`},
		{name: "status object tells nothing", extra: `,"status":{"code":"CANCELLED"}`},
		{name: "status number tells nothing", extra: `,"status":3,"state":null`},
		{name: "cancelled of another type tells nothing", extra: `,"cancelled":0,"canceled":["yes"]`},

		{name: "cancelled true", extra: `,"cancelled":true`, cancelled: true},
		{name: "canceled true", extra: `,"canceled":true`, cancelled: true},
		{name: "cancelled as a string", extra: `,"cancelled":"TRUE"`, cancelled: true},
		{name: "cancelled as 1", extra: `,"cancelled":1`, cancelled: true},
		{name: "status CANCELLED", extra: `,"status":"CANCELLED"`, cancelled: true},
		{name: "status canceled", extra: `,"status":"canceled"`, cancelled: true},
		{name: "status Revoked with blanks", extra: `,"status":" Revoked "`, cancelled: true},
		{name: "status deleted", extra: `,"status":"deleted"`, cancelled: true},
		{name: "status EXPIRED", extra: `,"status":"EXPIRED"`, cancelled: true},
		{name: "status void", extra: `,"status":"void"`, cancelled: true},
		{name: "status voided", extra: `,"status":"Voided"`, cancelled: true},
		{name: "status disabled", extra: `,"status":"DISABLED"`, cancelled: true},
		{name: "state cancelled", extra: `,"state":"cancelled"`, cancelled: true},
		{name: "cancelledAt", extra: `,"cancelledAt":` + stamp, cancelled: true},
		{name: "canceledAt", extra: `,"canceledAt":` + stamp, cancelled: true},
		{name: "cancelled_at", extra: `,"cancelled_at":` + stamp, cancelled: true},
		{name: "canceled_at", extra: `,"canceled_at":` + stamp, cancelled: true},
		{name: "revokedAt", extra: `,"revokedAt":` + stamp, cancelled: true},
		{name: "cancelledAt as epoch seconds", extra: `,"cancelledAt":1780135200`, cancelled: true},
		{name: "status and time, no boolean", extra: `,"status":"CANCELLED","cancelledAt":` + stamp, cancelled: true},
		{name: "ACTIVE yet a cancellation time", extra: `,"status":"ACTIVE","cancelledAt":` + stamp, cancelled: true},
		{name: "cancelled false yet status CANCELLED", extra: `,"cancelled":false,"status":"CANCELLED"`, cancelled: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := `{"data":[{"id":7,"code":` + canaryCode + `,"key":{"id":"K1"},"startDate":"2026-06-01","startTime":"15:00",` +
				`"endDate":"2026-06-03","endTime":"11:00","timeZone":"Europe/Ljubljana","visitorName":"Ana","unknownField":{"x":[1]}` + tc.extra + `}]}`
			srv := httptest.NewServer(answer(200, jsonCT, body))
			defer srv.Close()
			s, err := keybox.New(options(srv.URL, lj))
			if err != nil {
				t.Fatal(err)
			}
			c := sinktest.Pending(create("s1", "204", s1Start, s1End, "Ana"))
			id, code, found, err := s.Find(t.Context(), c)
			switch {
			case err != nil:
				t.Fatalf("Find: %v", err)
			case tc.cancelled && found:
				t.Errorf("Find found the cancelled access %q", id)
			case !tc.cancelled && (!found || id != "7" || code.Reveal() != canaryCode):
				t.Errorf("Find = %q, %v; want the live access 7 with its code", id, found)
			}

			c.RemoteID, c.Status = "7", reconcile.StatusActive
			got, err := s.Check(t.Context(), c, c.Valid)
			ok, why := got.Live, got.Why
			switch {
			case got.InPlace:
				t.Errorf("Check = %+v: the key box has no update call, nothing is set right in place", got)
			case err != nil:
				t.Fatalf("Check: %v", err)
			case tc.cancelled && (ok || !strings.Contains(why, "cancelled")):
				t.Errorf("Check = %v, %q; want not live, cancelled", ok, why)
			case !tc.cancelled && !ok:
				t.Errorf("Check = %v, %q; want live", ok, why)
			}
			if strings.Contains(why, canaryCode) {
				t.Errorf("Check's reason shows the code: %s", why)
			}
		})
	}
}

// TestFindWhenTheListShowsUTC: a key box whose list shows every window in
// UTC ("timeZone": "UTC"; the sandbox's ListInUTC), not in the zone the
// create gave: the key-box document shows no list, so it is silent on the
// zone a listed window is in. Find must still read back the access a lost
// create made (else the run issues a second, live access for the same
// stay) among the lookalikes, none of which opens the box over the same
// instants, and Check must take it as open over the stay.
func TestFindWhenTheListShowsUTC(t *testing.T) {
	t.Parallel()
	sb, s, _, a := createAmongLookalikes(t, sinktest.LoseCreates, "204")
	sb.SetListInUTC(true)
	all := sb.Accesses()
	made := all[len(all)-1]
	id, code, found := find(t, s, sinktest.Pending(a))
	if !found || id != made.ID || code.Reveal() != made.Code {
		t.Fatalf("Find = %q, code match %v, found %v; want %q: a list in UTC hides the lost create, which is issued again", id, code.Reveal() == made.Code, found, made.ID)
	}
	c := sinktest.Pending(a)
	c.RemoteID = made.ID
	if got, err := s.Check(t.Context(), c, c.Valid); err != nil || !got.Live {
		t.Errorf("Check = %+v, %v; want the access open over the stay", got, err)
	}
}
