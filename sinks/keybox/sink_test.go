package keybox_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests run without system zoneinfo

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/sinks/keybox"
	"github.com/keysync/keysync/sinks/keybox/sandbox"
)

// Canaries: none of them may ever appear in an error string or, for the
// compartments, in a request body.
const (
	ourUser    = "keysync"
	ourPass    = "canary-pass-Q7"
	otherUser  = "frontdesk"
	otherPass  = "fd-pass"
	compA      = "CMP-A7"
	compB      = "CMP-B8"
	canaryCode = "987654"
	property   = "hotel"
)

var (
	lj        = mustLoad("Europe/Ljubljana")
	vancouver = mustLoad("America/Vancouver")
	// t0 is the sandbox's business clock: before every stay of the tests.
	t0 = time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// rooms maps room 204 to key K1 by id, 205 to key K2 by serial number SN-2,
// and 301 to key K3 with no compartment.
func rooms() map[string]keybox.KeyRef {
	return map[string]keybox.KeyRef{
		"204": {ID: "K1", Compartment: compA},
		"205": {SerialNumber: "SN-2", Compartment: compB},
		"301": {ID: "K3"},
	}
}

// newSandbox starts a sandbox with our user and otherUser and keys K1…K3,
// served through wraps.
func newSandbox(t *testing.T, opts sandbox.Options, wraps ...func(http.Handler) http.Handler) (*sandbox.Server, string) {
	t.Helper()
	opts.Users = map[string]string{ourUser: ourPass, otherUser: otherPass}
	opts.Now = t0
	sb := sandbox.New(opts)
	sb.AddKey("K1", "SN-1")
	sb.AddKey("K2", "SN-2")
	sb.AddKey("K3", "SN-3")
	return sb, sandboxtest.Serve(t, sb, wraps...).URL
}

// sandboxAndSink starts a sandbox as newSandbox does and returns it with
// a sink talking to it in Ljubljana (options).
func sandboxAndSink(t *testing.T) (*sandbox.Server, *keybox.Sink) {
	t.Helper()
	sb, url := newSandbox(t, sandbox.Options{})
	return sb, newSink(t, options(url, lj))
}

// options returns sink options for baseURL in zone loc, retrying on a
// fake clock (no real sleeps).
func options(baseURL string, loc *time.Location) keybox.Options {
	return keybox.Options{
		BaseURL: baseURL, Username: ourUser, Password: ourPass,
		Rooms: rooms(), TimeZone: loc, Property: property,
		Transport: httpapi.Transport{Retry: retryOn(clocktest.New(t0))},
	}
}

// retryOn is the default retry policy on a fake clock, exact.
var retryOn = adaptertest.RetryOn

func stayRef(id string) reconcile.StayRef {
	return reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: id}
}

// create returns an action creating an access for stay in room over
// [start, end).
func create(stay, room string, start, end time.Time, guest string) *reconcile.Action {
	return &reconcile.Action{
		System: reconcile.SystemKeyBox, Op: reconcile.OpCreate, Kind: reconcile.KindKeyBoxAccess,
		Stay: stayRef(stay), RoomID: room, Window: &reconcile.Window{Start: start, End: end}, Guest: guest,
		Cred: &reconcile.Credential{Stay: stayRef(stay), System: reconcile.SystemKeyBox, Kind: reconcile.KindKeyBoxAccess, RoomID: room},
	}
}

// cancel returns an action cancelling access remoteID of stay.
func cancel(stay, remoteID string) *reconcile.Action {
	return &reconcile.Action{
		System: reconcile.SystemKeyBox, Op: reconcile.OpDelete, Kind: reconcile.KindKeyBoxAccess, Stay: stayRef(stay),
		Cred: &reconcile.Credential{
			Stay: stayRef(stay), System: reconcile.SystemKeyBox, Kind: reconcile.KindKeyBoxAccess,
			RemoteID: remoteID, Status: reconcile.StatusActive,
		},
	}
}

// apply runs Apply on one action, failing on a request-level error.
func apply(t *testing.T, s *keybox.Sink, a *reconcile.Action) reconcile.Outcome {
	t.Helper()
	return sinktest.Apply(t, s, a)[0]
}

// mustCreate creates an access and returns its id.
func mustCreate(t *testing.T, s *keybox.Sink, a *reconcile.Action) string {
	t.Helper()
	o := apply(t, s, a)
	if o.Err != nil || o.RemoteID == "" {
		t.Fatalf("create: %+v", o)
	}
	return o.RemoteID
}

func utc(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

func TestDefaultsMatchSandbox(t *testing.T) {
	t.Parallel()
	if keybox.DefaultCreatePath != sandbox.DefaultCreatePath || keybox.DefaultCancelPath != sandbox.DefaultCancelPath ||
		keybox.DefaultCancelMethod != sandbox.DefaultCancelMethod || keybox.DefaultListPath != sandbox.DefaultListPath ||
		!reflect.DeepEqual(keybox.Locales, sandbox.Locales) {
		t.Error("the sink and the sandbox assume different paths, methods or locales")
	}
}

// TestCreateLocalTimes sends windows given as UTC instants and checks the
// local date, time and zone the box receives, across DST switches.
func TestCreateLocalTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		loc        *time.Location
		start, end time.Time
		// want is the local startDate, startTime, endDate, endTime.
		want [4]string
	}{
		{
			name: "Ljubljana across the spring switch", loc: lj,
			start: utc(2026, 3, 28, 14, 0), end: utc(2026, 3, 30, 9, 0), // 15:00 CET, 11:00 CEST
			want: [4]string{"2026-03-28", "15:00", "2026-03-30", "11:00"},
		},
		{
			name: "Vancouver across the autumn switch", loc: vancouver,
			start: utc(2026, 10, 31, 22, 0), end: utc(2026, 11, 2, 19, 0), // 15:00 PDT, 11:00 PST
			want: [4]string{"2026-10-31", "15:00", "2026-11-02", "11:00"},
		},
		{
			name: "Ljubljana across the autumn switch", loc: lj,
			start: utc(2026, 10, 24, 13, 0), end: utc(2026, 10, 26, 10, 0), // 15:00 CEST, 11:00 CET
			want: [4]string{"2026-10-24", "15:00", "2026-10-26", "11:00"},
		},
		{
			name: "seconds are cut", loc: lj,
			start: utc(2026, 6, 1, 13, 0).Add(59 * time.Second), end: utc(2026, 6, 3, 9, 0).Add(time.Second),
			want: [4]string{"2026-06-01", "15:00", "2026-06-03", "11:00"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb, url := newSandbox(t, sandbox.Options{})
			s := newSink(t, options(url, tc.loc))
			o := apply(t, s, create("s1", "204", tc.start, tc.end, "Ana Novak"))
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			accs := sb.Accesses()
			if len(accs) != 1 {
				t.Fatalf("%d accesses", len(accs))
			}
			v := accs[0]
			if o.RemoteID != v.ID || o.Secret.Reveal() != v.Code || len(v.Code) != 6 {
				t.Errorf("outcome %q/%q, access %q/%q", o.RemoteID, o.Secret.Reveal(), v.ID, v.Code)
			}
			if got := [4]string{v.StartDate, v.StartTime, v.EndDate, v.EndTime}; got != tc.want || v.TimeZone != tc.loc.String() {
				t.Errorf("local view %v %s, want %v %s", got, v.TimeZone, tc.want, tc.loc)
			}
			if want := tc.start.Truncate(time.Minute); !v.Start.Equal(want) {
				t.Errorf("start instant %s, want %s", v.Start, want)
			}
			if want := tc.end.Truncate(time.Minute); !v.End.Equal(want) {
				t.Errorf("end instant %s, want %s", v.End, want)
			}

			// The exact body: the API document's fields, no deprecated ISO dates, no user.
			var got map[string]any
			if err := json.Unmarshal([]byte(sb.Requests()[0].Body), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"key":       map[string]any{"id": "K1"},
				"startDate": tc.want[0], "startTime": tc.want[1], "endDate": tc.want[2], "endTime": tc.want[3],
				"timeZone": tc.loc.String(), "visitorName": "Ana Novak", "returnReminder": false, "silent": false,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestCreateFromPropertyWindow checks the instants reconcile computes for a
// Ljubljana stay are the ones the table above sends.
func TestCreateFromPropertyWindow(t *testing.T) {
	t.Parallel()
	p := reconcile.Property{Location: lj, CheckIn: reconcile.TimeOfDay{Hour: 15}, CheckOut: reconcile.TimeOfDay{Hour: 11}}
	arr, _ := reconcile.ParseDate("2026-03-28")
	dep, _ := reconcile.ParseDate("2026-03-30")
	w := p.Window(arr, dep)
	if !w.Start.Equal(utc(2026, 3, 28, 14, 0)) || !w.End.Equal(utc(2026, 3, 30, 9, 0)) {
		t.Fatalf("window %s → %s", w.Start, w.End)
	}
	sb, url := newSandbox(t, sandbox.Options{})
	mustCreate(t, newSink(t, options(url, lj)), create("s1", "204", w.Start, w.End, "Ana"))
	if v := sb.Accesses()[0]; v.StartDate != "2026-03-28" || v.StartTime != "15:00" || v.EndDate != "2026-03-30" || v.EndTime != "11:00" {
		t.Errorf("local view %+v", v)
	}
}

func TestCreateKeyByIDOrSerialNumber(t *testing.T) {
	t.Parallel()
	sb, s := sandboxAndSink(t)
	start, end := utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0)
	mustCreate(t, s, create("s1", "204", start, end, "A"))
	mustCreate(t, s, create("s2", "205", start, end, "B"))
	accs, reqs := sb.Accesses(), sb.Requests()
	if accs[0].KeyID != "K1" || accs[1].KeyID != "K2" {
		t.Errorf("keys %s, %s; want K1, K2", accs[0].KeyID, accs[1].KeyID)
	}
	for i, want := range []string{`"key":{"id":"K1"}`, `"key":{"serialNumber":"SN-2"}`} {
		if !strings.Contains(reqs[i].Body, want) {
			t.Errorf("request %d body %s lacks %s", i, reqs[i].Body, want)
		}
	}
}

func TestCreateOptions(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	opts := options(url, lj)
	opts.Locale, opts.Silent = "fr", true
	mustCreate(t, newSink(t, opts), create("rs_77", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "  "))
	v := sb.Accesses()[0]
	if v.Visitor != "Guest rs_77" || v.Locale != "fr" || !v.Silent || v.ReturnReminder || v.Creator != ourUser {
		t.Errorf("access %+v", v)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	sb, s := sandboxAndSink(t)
	id := mustCreate(t, s, create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana"))
	if o := apply(t, s, cancel("s1", id)); o.Err != nil || o.RemoteID != "" {
		t.Fatalf("cancel: %+v", o)
	}
	if v, _ := sb.Access(id); !v.Cancelled || v.CancelledBy != ourUser {
		t.Errorf("after cancel %+v", v)
	}
	for _, remote := range []string{id, "acc_404"} {
		o := apply(t, s, cancel("s1", remote))
		if !errors.Is(o.Err, reconcile.ErrNotFound) {
			t.Errorf("cancel %s again: %v, want ErrNotFound", remote, o.Err)
		}
	}
	if last := sb.Requests()[len(sb.Requests())-1]; last.Method != http.MethodDelete || last.Path != "/v2/accesses/acc_404" || last.Body != "" {
		t.Errorf("cancel request %+v", last)
	}
}

// TestDateChange is the planner's cancel + create for moved dates: exactly
// one live access remains, with the new window.
func TestDateChange(t *testing.T) {
	t.Parallel()
	sb, s := sandboxAndSink(t)
	old := mustCreate(t, s, create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana"))
	if o := apply(t, s, cancel("s1", old)); o.Err != nil {
		t.Fatal(o.Err)
	}
	fresh := mustCreate(t, s, create("s1", "204", utc(2026, 6, 2, 13, 0), utc(2026, 6, 5, 9, 0), "Ana"))
	var live []sandbox.AccessView
	for _, v := range sb.Accesses() {
		if !v.Cancelled {
			live = append(live, v)
		}
	}
	if len(live) != 1 || live[0].ID != fresh || live[0].StartDate != "2026-06-02" || live[0].EndDate != "2026-06-05" {
		t.Errorf("live accesses %+v", live)
	}
}

// TestForeignAccessUntouched plants an access another user made on the
// same key and checks keysync's work leaves it as it was.
func TestForeignAccessUntouched(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	foreign, err := sb.AddAccess(sandbox.AccessInput{
		Creator: otherUser, KeyID: "K1", Start: utc(2026, 6, 1, 8, 0), End: utc(2026, 6, 1, 16, 0),
		TimeZone: "Europe/Ljubljana", Visitor: "Cleaner",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, options(url, lj))
	id := mustCreate(t, s, create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana"))
	apply(t, s, cancel("s1", id))
	mustCreate(t, s, create("s1", "204", utc(2026, 6, 2, 13, 0), utc(2026, 6, 4, 9, 0), "Ana"))
	after, _ := sb.Access(foreign.ID)
	if !reflect.DeepEqual(after, foreign) {
		t.Errorf("foreign access changed:\n was %+v\n now %+v", foreign, after)
	}
	for _, r := range sb.Requests() {
		if strings.Contains(r.Path, foreign.ID) {
			t.Errorf("request touched the foreign access: %+v", r)
		}
	}
}

// TestCompartmentNeverSent checks no request body holds a compartment, and
// that Compartment gives it to the caller.
func TestCompartmentNeverSent(t *testing.T) {
	t.Parallel()
	sb, s := sandboxAndSink(t)
	for i, room := range []string{"204", "205", "301"} {
		id := mustCreate(t, s, create(fmt.Sprint("s", i), room, utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Guest"))
		apply(t, s, cancel(fmt.Sprint("s", i), id))
	}
	reqs := sb.Requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 6", len(reqs))
	}
	for _, r := range reqs {
		if strings.Contains(r.Body, compA) || strings.Contains(r.Body, compB) || strings.Contains(strings.ToLower(r.Body), "compartment") {
			t.Errorf("request %s %s sends a compartment: %s", r.Method, r.Path, r.Body)
		}
	}
	if c, ok := s.Compartment("204"); !ok || c.Reveal() != compA {
		t.Errorf("Compartment(204) = %v, %v", c.Reveal(), ok)
	}
	if c, ok := s.Compartment("205"); !ok || c.Reveal() != compB {
		t.Errorf("Compartment(205) = %v, %v", c.Reveal(), ok)
	}
	for _, room := range []string{"301", "999"} {
		if c, ok := s.Compartment(room); ok || c != "" {
			t.Errorf("Compartment(%s) = %q, %v; want none", room, c.Reveal(), ok)
		}
	}
	if got := fmt.Sprintf("%+v %#v", s, s); strings.Contains(got, compA) || strings.Contains(got, compB) || strings.Contains(got, ourPass) {
		t.Errorf("printing the Sink shows a secret: %s", got)
	}
}

// TestMeterAndPacer checks every request is counted and waits on the
// Pacer: with one request an hour, the second goes an hour (of fake time)
// after the first; a pacer that admits nothing sends nothing.
func TestMeterAndPacer(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	clk := clocktest.New(t0)
	opts := options(url, lj)
	opts.Meter = &reconcile.Meter{Clock: clk}
	opts.Retry = retryOn(clk)
	opts.Pacer = httpapi.NewPacer(1.0/3600, 1, clk)
	s := newSink(t, opts)
	id := mustCreate(t, s, create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana"))
	if got := opts.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != 1 || got.Reads != 0 {
		t.Errorf("meter %+v", got)
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("the first request waited %v", clk.Sleeps())
	}
	if o := apply(t, s, cancel("s1", id)); o.Err != nil {
		t.Fatal(o.Err)
	}
	if w := clk.Sleeps(); len(w) != 1 || w[0] < time.Hour-time.Second || w[0] > time.Hour+time.Second {
		t.Errorf("the second request waited %v, want an hour", w)
	}
	if got := opts.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != 2 || got.Peak != 1 {
		t.Errorf("meter %+v, want 2 writes an hour apart", got)
	}

	refusing := options(url, lj)
	refusing.Meter = &reconcile.Meter{}
	refusing.Pacer = httpapi.NewPacer(1, 0, refusing.Retry.Clock) // burst 0: never admits
	_, err := newSink(t, refusing).Apply(t.Context(), []*reconcile.Action{cancel("s1", id)})
	if err == nil || errors.Is(err, reconcile.ErrUnknownOutcome) || !strings.Contains(err.Error(), "waiting for rate limit") {
		t.Errorf("refused by the pacer: %v", err)
	}
	if n := len(sb.Requests()); n != 2 {
		t.Errorf("%d requests reached the box, want 2", n)
	}
	if got := refusing.Meter.Snapshot()[reconcile.SystemKeyBox]; got.Writes != 0 {
		t.Errorf("meter counted an unsent request: %+v", got)
	}
}

// TestRefusedBeforeSending covers what Apply refuses without a request.
func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{})
	s := newSink(t, options(url, lj))
	start, end := utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0)
	noWindow := create("s1", "204", start, end, "A")
	noWindow.Window = nil
	backwards := create("s1", "204", end, start, "A")
	otherProperty := create("s1", "204", start, end, "A")
	otherProperty.Stay.Property = "annex"
	update := cancel("s1", "acc_1")
	update.Op = reconcile.OpUpdate
	noID := cancel("s1", "")
	for name, a := range map[string]*reconcile.Action{
		"unmapped room": create("s1", "999", start, end, "A"), "no window": noWindow, "window backwards": backwards,
		"other property": otherProperty, "update": update, "cancel without id": noID,
	} {
		o := apply(t, s, a)
		if o.Err == nil || errors.Is(o.Err, reconcile.ErrUnknownOutcome) || o.RemoteID != "" {
			t.Errorf("%s: %+v", name, o)
		}
	}
	if _, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", "204", start, end, "A"), create("s2", "205", start, end, "B")}); err == nil {
		t.Error("two actions in one Apply were accepted")
	}
	if out, err := s.Apply(t.Context(), nil); err != nil || len(out) != 0 {
		t.Errorf("no actions: %v, %v", out, err)
	}
	bad := options(url, lj)
	bad.Rooms = map[string]keybox.KeyRef{"204": {ID: "K1", SerialNumber: "SN-1"}}
	if s, err := keybox.New(bad); s != nil || err == nil || !strings.Contains(err.Error(), `rooms["204"]`) {
		t.Errorf("invalid options: New = %v, %v; want no sink and an error about rooms[\"204\"]", s, err)
	}
	if n := len(sb.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*keybox.Options)
		want string // substring of the error; "" for valid
	}{
		{name: "valid", edit: func(*keybox.Options) {}},
		{name: "custom paths", edit: func(o *keybox.Options) { o.CreatePath, o.CancelPath, o.CancelMethod = "/a", "/a/{id}/end", "post" }},
		{name: "no base URL", edit: func(o *keybox.Options) { o.BaseURL = "" }, want: "base URL"},
		{name: "base URL without scheme", edit: func(o *keybox.Options) { o.BaseURL = "api.example.com" }, want: "base URL"},
		{name: "base URL with credentials", edit: func(o *keybox.Options) { o.BaseURL = "https://u:p@api.example.com" }, want: "credentials"},
		{name: "base URL with query", edit: func(o *keybox.Options) { o.BaseURL = "https://api.example.com?x=1" }, want: "query"},
		{name: "no username", edit: func(o *keybox.Options) { o.Username = "" }, want: "username"},
		{name: "no password", edit: func(o *keybox.Options) { o.Password = "" }, want: "password"},
		{name: "create path without slash", edit: func(o *keybox.Options) { o.CreatePath = "v2/accesses" }, want: "create path"},
		{name: "cancel path without id", edit: func(o *keybox.Options) { o.CancelPath = "/v2/accesses" }, want: "cancel path"},
		{name: "cancel method GET", edit: func(o *keybox.Options) { o.CancelMethod = "GET" }, want: "cancel method"},
		{name: "custom list path", edit: func(o *keybox.Options) { o.ListPath = "/api/accesses" }},
		{name: "list path without slash", edit: func(o *keybox.Options) { o.ListPath = "v2/accesses" }, want: "list path"},
		{name: "list path with a query", edit: func(o *keybox.Options) { o.ListPath = "/v2/accesses?all=1" }, want: "list path"},
		{name: "list path with a placeholder", edit: func(o *keybox.Options) { o.ListPath = "/v2/keys/{key}/accesses" }, want: "list path"},
		{name: "no time zone", edit: func(o *keybox.Options) { o.TimeZone = nil }, want: "time zone"},
		{name: "Local time zone", edit: func(o *keybox.Options) { o.TimeZone = time.Local }, want: "time zone"},
		{name: "locale de", edit: func(o *keybox.Options) { o.Locale = "de" }, want: "locale"},
		{name: "key with neither", edit: func(o *keybox.Options) { o.Rooms["9"] = keybox.KeyRef{Compartment: "x"} }, want: `rooms["9"]`},
		{name: "negative cap", edit: func(o *keybox.Options) { o.MaxResponseBytes = -1 }, want: "max response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := options("https://api.example.com/", lj)
			tc.edit(&o)
			err := o.Validate()
			if s, newErr := keybox.New(o); (newErr == nil) != (err == nil) || (err != nil && (s != nil || newErr.Error() != err.Error())) {
				t.Errorf("New = %v, %v; want Validate's error %v", s, newErr, err)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want an error about %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), ourPass) || strings.Contains(err.Error(), compA)):
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestCustomPathsAgainstSandbox(t *testing.T) {
	t.Parallel()
	sbOpts := sandbox.Options{CreatePath: "/api/access", CancelPath: "/api/access/{id}/end", CancelMethod: "POST", ListPath: "/api/access/mine"}
	sb, url := newSandbox(t, sbOpts)
	opts := options(url+"/", lj)
	opts.CreatePath, opts.CancelPath, opts.CancelMethod, opts.ListPath = sbOpts.CreatePath, sbOpts.CancelPath, "post", sbOpts.ListPath
	s := newSink(t, opts)
	a := create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana")
	id := mustCreate(t, s, a)
	c := *a.Cred
	c.Valid = *a.Window
	if got, _, found, err := s.Find(t.Context(), &c); err != nil || !found || got != id {
		t.Errorf("Find = %q, %v, %v; want %q", got, found, err, id)
	}
	if o := apply(t, s, cancel("s1", id)); o.Err != nil {
		t.Fatal(o.Err)
	}
	if v, _ := sb.Access(id); !v.Cancelled {
		t.Error("not cancelled")
	}
	if r := sb.Requests(); r[1].Method != "GET" || r[1].Path != "/api/access/mine" || r[2].Method != "POST" || r[2].Path != "/api/access/"+id+"/end" {
		t.Errorf("list and cancel requests %+v", r[1:])
	}
}

func TestSandboxRefusals(t *testing.T) {
	t.Parallel()
	now := utc(2026, 3, 20, 8, 0)
	sb, url := newSandbox(t, sandbox.Options{Rates: sandboxkit.Rates{RateNow: func() time.Time { return now }}}.WithSeedLimits())
	start, end := utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0)

	wrong := options(url, lj)
	wrong.Password = "not-it"
	_, err := newSink(t, wrong).Apply(t.Context(), []*reconcile.Action{create("s1", "204", start, end, "A")})
	if !errors.Is(err, reconcile.ErrUnauthorized) || !strings.Contains(err.Error(), "HTTP Basic") || strings.Contains(err.Error(), "not-it") {
		t.Errorf("wrong password: %v", err)
	}

	unknownKey := options(url, lj)
	unknownKey.Rooms = map[string]keybox.KeyRef{"204": {ID: "K404", Compartment: compA}}
	o := apply(t, newSink(t, unknownKey), create("s1", "204", start, end, "A"))
	if !errors.Is(o.Err, reconcile.ErrRejected) || !strings.Contains(o.Err.Error(), "key.id: no key") {
		t.Errorf("unknown key: %v", o.Err)
	}

	s := newSink(t, options(url, lj))
	for range sandbox.DefaultBurst - 1 {
		mustCreate(t, s, create("s1", "204", start, end, "A"))
	}
	_, err = s.Apply(t.Context(), []*reconcile.Action{create("s1", "204", start, end, "A")})
	var rl *httpapi.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second || rl.System != reconcile.SystemKeyBox {
		t.Errorf("beyond the burst: %v", err)
	}
	if n := len(sb.Accesses()); n != sandbox.DefaultBurst-1 {
		t.Errorf("%d accesses", n)
	}
}

// TestDerive checks the sink builds a RoomAccessKeyStorage from an access
// code and its room's compartment, and refuses a code that breaks 3RPMS's
// PIN rule, a room without a compartment and any other kind of key.
func TestDerive(t *testing.T) {
	t.Parallel()
	s := newSink(t, options("http://keybox.invalid", lj))
	key := &reconcile.Credential{Kind: reconcile.KindKeyStorageKey, RoomID: "204"}
	if err := s.Derive(key, "4711"); err != nil || key.PIN.Reveal() != "4711" || key.Compartment.Reveal() != compA {
		t.Errorf("Derive = %v, PIN %q, compartment %q", err, key.PIN.Reveal(), key.Compartment.Reveal())
	}
	for name, tc := range map[string]struct {
		key  reconcile.Credential
		code reconcile.Secret
	}{
		"code breaks the PIN rule": {reconcile.Credential{Kind: reconcile.KindKeyStorageKey, RoomID: "204"}, "47-11"},
		"room without compartment": {reconcile.Credential{Kind: reconcile.KindKeyStorageKey, RoomID: "301"}, "4711"},
		"unmapped room":            {reconcile.Credential{Kind: reconcile.KindKeyStorageKey, RoomID: "999"}, "4711"},
		"not a key-storage key":    {reconcile.Credential{Kind: reconcile.KindQRKey, RoomID: "204"}, "4711"},
	} {
		key := tc.key
		err := s.Derive(&key, tc.code)
		if err == nil || key.PIN != "" || key.Compartment != "" {
			t.Errorf("%s: Derive = %v, PIN %q, compartment %q; want an error and nothing filled", name, err, key.PIN.Reveal(), key.Compartment.Reveal())
		} else if strings.Contains(err.Error(), tc.code.Reveal()) || strings.Contains(err.Error(), compA) {
			t.Errorf("%s: error shows a secret: %v", name, err)
		}
	}
}

// newSink is keybox.New, failing the test on an error.
func newSink(t testing.TB, opts keybox.Options) *keybox.Sink {
	return adaptertest.Must(keybox.New(opts))(t)
}

// TestCodeAsBookingCode: a key box that names the code "bookingCode" (the
// document's word for what the guest is given; the sandbox's
// CodeAsBookingCode), in a create's answer and in the list. The key-box
// document shows no response, so it is silent on the name. keysync
// writes the code into the guest's 3RPMS key: a create read without it
// leaves the guest with no code for the box.
func TestCodeAsBookingCode(t *testing.T) {
	t.Parallel()
	sb, url := newSandbox(t, sandbox.Options{CodeAsBookingCode: true})
	s := newSink(t, options(url, lj))
	a := create("s1", "204", utc(2026, 6, 1, 13, 0), utc(2026, 6, 3, 9, 0), "Ana")
	o := apply(t, s, a)
	v, ok := sb.Access(o.RemoteID)
	if o.Err != nil || !ok || v.Code == "" || o.Secret.Reveal() != v.Code {
		t.Fatalf("create: err %v, access %q found %v, code read %v; want the booking code", o.Err, o.RemoteID, ok, o.Secret.Reveal() == v.Code)
	}
	id, code, found := find(t, s, sinktest.Pending(a))
	if !found || id != v.ID || code.Reveal() != v.Code {
		t.Errorf("Find = %q, code match %v, found %v; want %q with its booking code", id, code.Reveal() == v.Code, found, v.ID)
	}
}
