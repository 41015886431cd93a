package openapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/sinks/openapp"
	"github.com/keysync/keysync/sinks/openapp/sandbox"
)

// t0 is the sandbox's business clock and the sink's clock in every test.
var t0 = time.Date(2026, 5, 30, 10, 0, 0, 0, time.UTC)

// Canaries: secrets that must never reach an error string.
const (
	canaryKey   = "key-CANARY-7f3e"
	canaryToken = "oat_CanaryTokenQ7x9ZmLk2W"
)

const (
	staffKey = "key-staff"
	otherKey = "key-other"
	orgA     = "org_a"
	orgB     = "org_b"
	intA     = "int_a"
	intB     = "int_b"
	property = "hotel-ljubljana"
)

var ljubljana = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Ljubljana")
	if err != nil {
		panic(err)
	}
	return loc
}()

// hotel computes windows: 15:00 to 11:00 in Ljubljana (UTC+2 in June).
var hotel = reconcile.Property{
	Name: property, Location: ljubljana,
	CheckIn: reconcile.TimeOfDay{Hour: 15}, CheckOut: reconcile.TimeOfDay{Hour: 11},
}

var rooms = map[string][]string{
	"r101": {"door-101"},
	"r102": {"door-102", "lobby"}, // lobby again: deduplicated
	"r103": {},
}

func options(base string) openapp.Options {
	return openapp.Options{
		BaseURL:       base,
		APIKey:        canaryKey,
		OrgID:         orgA,
		IntegrationID: intA,
		Rooms:         rooms,
		SharedPortals: []string{"lobby", "garage"},
		MaxUses:       50,
		Property:      property,
		Transport: httpapi.Transport{
			Meter: &reconcile.Meter{},
			Now:   func() time.Time { return t0 },
			Retry: retryOn(clocktest.New(t0)),
		},
	}
}

// retryOn is the default retry policy on a fake clock, exact.
var retryOn = adaptertest.RetryOn

// newSandbox starts a sandbox with two orgs: org_a (our key and staffKey;
// int_a with lobby, garage, door-101, door-102) and org_b (otherKey; int_b
// with gate-b), served through wraps. It returns the sandbox, its URL and
// sink options for it.
func newSandbox(t *testing.T, wraps ...func(http.Handler) http.Handler) (*sandbox.Server, string, openapp.Options) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{
		APIKeys:      map[string]string{canaryKey: orgA, staffKey: orgA, otherKey: orgB},
		Integrations: map[string]string{intA: orgA, intB: orgB},
		Portals:      map[string]string{"lobby": intA, "garage": intA, "door-101": intA, "door-102": intA},
		Now:          t0,
	})
	sb.AddPortal("gate-b", intB)
	url := sandboxtest.Serve(t, sb, wraps...).URL
	return sb, url, options(url)
}

func date(s string) reconcile.Date {
	d, err := reconcile.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// action returns an invite action for stay in room; remoteID is the
// invite_link_id of an existing invite.
func action(op reconcile.Op, stay, room, arrival, departure, remoteID string) *reconcile.Action {
	ref := reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: stay}
	w := hotel.Window(date(arrival), date(departure))
	return &reconcile.Action{
		System: reconcile.SystemOpenApp, Op: op, Stay: ref, RoomID: room, Room: room,
		Arrival: date(arrival), Departure: date(departure), Kind: reconcile.KindInvite, Window: &w,
		Cred: &reconcile.Credential{Stay: ref, System: reconcile.SystemOpenApp, Kind: reconcile.KindInvite, RoomID: room, RemoteID: remoteID},
	}
}

// apply sends one action and fails the test on a request-level error or
// an outcome error.
func apply(t *testing.T, s *openapp.Sink, a *reconcile.Action) reconcile.Outcome {
	t.Helper()
	o := sinktest.Apply(t, s, a)[0]
	if o.Err != nil {
		t.Fatalf("%s: outcome: %v", a.Op, o.Err)
	}
	return o
}

// applyErr sends one action and returns the request's error or else the
// outcome's.
func applyErr(s *openapp.Sink, a *reconcile.Action) (reconcile.Outcome, error) {
	out, err := s.Apply(context.Background(), []*reconcile.Action{a})
	if err != nil {
		return reconcile.Outcome{}, err
	}
	if len(out) != 1 {
		return reconcile.Outcome{}, errors.New("not one outcome")
	}
	return out[0], out[0].Err
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// guest fetches the guest side of an invite through its guest URL.
func guest(t *testing.T, base string, token reconcile.Secret) (int, sandbox.PublicInvite) {
	t.Helper()
	link, err := openapp.GuestURL(base+"/public/access/invites/{token}", token)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p sandbox.PublicInvite
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, p
}

func TestSinkLifecycle(t *testing.T) {
	t.Parallel()
	sb, base, opts := newSandbox(t)
	s := newSink(t, opts)
	if s.MaxBatch() != 1 {
		t.Errorf("MaxBatch = %d", s.MaxBatch())
	}

	// Invites keysync did not create: staff's in our integration, and
	// another organisation's.
	staff, err := sb.AddInvite(sandbox.Planted{
		Integration: intA, CreatedBy: staffKey, Name: "Cleaner", PortalIDs: []string{"lobby", "door-101"},
		ValidFrom: t0, ValidTo: t0.Add(30 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sb.AddInvite(sandbox.Planted{
		Integration: intB, CreatedBy: otherKey, Name: "Other hotel guest", PortalIDs: []string{"gate-b"},
		ValidFrom: t0, ValidTo: t0.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	ours := func() sandbox.InviteView {
		t.Helper()
		var found []sandbox.InviteView
		for _, v := range sb.Invites() {
			if v.CreatedBy == sandbox.KeyFingerprint(canaryKey) {
				found = append(found, v)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d invites of ours: %+v", len(found), found)
		}
		return found[0]
	}

	// Create.
	create := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	create.Guest = "Anna  Novak"
	out := apply(t, s, create)
	v := ours()
	if out.RemoteID != v.ID || out.Secret.Reveal() != v.Token || out.RemoteID == "" || out.Secret == "" {
		t.Fatalf("outcome %q/%q, invite %s/%s", out.RemoteID, out.Secret.Reveal(), v.ID, v.Token)
	}
	if !slices.Equal(v.PortalIDs, []string{"door-101", "garage", "lobby"}) {
		t.Errorf("portals %q, want the room's and the shared ones, sorted", v.PortalIDs)
	}
	if !v.ValidFrom.Equal(ts("2026-06-01T13:00:00Z")) || !v.ValidTo.Equal(ts("2026-06-05T09:00:00Z")) || !v.Enabled || v.MaxUses != 50 {
		t.Errorf("invite %+v", v)
	}
	if want := "Anna Novak 2026-06-01→06-05 [keysync:hotel-ljubljana:3rpms:s1]"; v.Name != want {
		t.Errorf("name %q, want %q", v.Name, want)
	}
	if ref, ok := openapp.ParseOwnerTag(v.Name); !ok || ref != create.Stay {
		t.Errorf("ParseOwnerTag(%q) = %v, %v; want %v", v.Name, ref, ok, create.Stay)
	}
	id, token := out.RemoteID, out.Secret
	if code, p := guest(t, base, token); code != 200 || !p.ValidFrom.Equal(v.ValidFrom) || p.Status != sandbox.StatusNotYetValid {
		t.Errorf("guest view: %d %+v", code, p)
	}

	// Date change: same link, new window, visible to the guest.
	apply(t, s, action(reconcile.OpUpdate, "s1", "r101", "2026-06-02", "2026-06-06", id))
	v = ours()
	if v.ID != id || v.Token != token.Reveal() {
		t.Fatalf("update changed the link: %s", v.ID)
	}
	if !v.ValidFrom.Equal(ts("2026-06-02T13:00:00Z")) || !v.ValidTo.Equal(ts("2026-06-06T09:00:00Z")) || !strings.Contains(v.Name, "2026-06-02→06-06") {
		t.Errorf("after the date change: %+v", v)
	}
	code, p := guest(t, base, token)
	if code != 200 || !p.ValidFrom.Equal(ts("2026-06-02T13:00:00Z")) || !p.ValidTo.Equal(ts("2026-06-06T09:00:00Z")) || !p.Enabled {
		t.Errorf("guest view after the date change: %d %+v", code, p)
	}

	// Room move: the new room's portals.
	apply(t, s, action(reconcile.OpUpdate, "s1", "r102", "2026-06-02", "2026-06-06", id))
	if v = ours(); !slices.Equal(v.PortalIDs, []string{"door-102", "garage", "lobby"}) || v.ID != id {
		t.Errorf("after the room move: %+v", v)
	}

	// Cancellation: disabled, still there.
	apply(t, s, action(reconcile.OpDisable, "s1", "r102", "2026-06-02", "2026-06-06", id))
	if v = ours(); v.Enabled || v.Deleted || !slices.Equal(v.PortalIDs, []string{"door-102", "garage", "lobby"}) {
		t.Errorf("after disable: %+v", v)
	}
	if code, p := guest(t, base, token); code != 200 || p.Enabled || p.Status != sandbox.StatusDisabled {
		t.Errorf("guest view after disable: %d %+v", code, p)
	}

	// A reactivated stay: an update switches it back on.
	apply(t, s, action(reconcile.OpUpdate, "s1", "r102", "2026-06-02", "2026-06-06", id))
	if v = ours(); !v.Enabled {
		t.Errorf("update did not re-enable: %+v", v)
	}

	// Cleanup.
	apply(t, s, action(reconcile.OpDelete, "s1", "r102", "2026-06-02", "2026-06-06", id))
	if v = ours(); !v.Deleted {
		t.Errorf("after delete: %+v", v)
	}
	if code, _ := guest(t, base, token); code != 404 {
		t.Errorf("guest GET after delete: %d", code)
	}

	// Gone: not found, which Apply counts as done for a delete.
	for _, op := range []reconcile.Op{reconcile.OpDelete, reconcile.OpDisable, reconcile.OpUpdate} {
		if _, err := applyErr(s, action(op, "s1", "r102", "2026-06-02", "2026-06-06", id)); !errors.Is(err, reconcile.ErrNotFound) {
			t.Errorf("%s of a deleted invite: %v, want ErrNotFound", op, err)
		}
	}
	// Another organisation's invite id is not found through our integration.
	if _, err := applyErr(s, action(reconcile.OpDelete, "s9", "r101", "2026-06-02", "2026-06-06", other.ID)); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("delete of another org's invite: %v", err)
	}

	// Invites keysync did not create are untouched.
	if got, _ := sb.Invite(staff.ID); !reflect.DeepEqual(got, staff) {
		t.Errorf("staff invite changed:\n got %+v\nwant %+v", got, staff)
	}
	if got, _ := sb.Invite(other.ID); !reflect.DeepEqual(got, other) {
		t.Errorf("other org's invite changed:\n got %+v\nwant %+v", got, other)
	}

	var methods []string
	for _, r := range sb.Requests() {
		if !strings.HasPrefix(r.Path, "/public/") {
			methods = append(methods, r.Method)
		}
	}
	want := []string{"POST", "PUT", "PUT", "PUT", "PUT", "DELETE", "DELETE", "PUT", "PUT", "DELETE"}
	if !slices.Equal(methods, want) {
		t.Errorf("requests %q, want %q", methods, want)
	}
	if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != len(want) || got.Reads != 0 {
		t.Errorf("meter %+v, want %d writes", got, len(want))
	}
}

// recorded is a request as a canned handler saw it.
type recorded struct {
	method, path string
	header       http.Header
	body         string
}

// recorder answers every request with status and body, and records it.
type recorder struct {
	mu       sync.Mutex
	reqs     []recorded
	status   int
	body     string
	ctype    string
	received int
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{r.Method, r.URL.EscapedPath(), r.Header.Clone(), string(b)})
	rc.mu.Unlock()
	if rc.ctype != "" {
		w.Header().Set("Content-Type", rc.ctype)
	}
	w.WriteHeader(rc.status)
	_, _ = io.WriteString(w, rc.body)
}

func TestSinkWire(t *testing.T) {
	t.Parallel()
	created := `{"invite_token":"` + canaryToken + `","invite_link_id":"inv_1"}`
	tests := []struct {
		name       string
		action     *reconcile.Action
		mod        func(*openapp.Options)
		status     int
		answer     string
		method     string
		path       string
		body       string // JSON, compared semantically; "" for none
		wantSecret bool
	}{
		{
			name:   "create",
			action: action(reconcile.OpCreate, "RS:7", "r101", "2026-06-01", "2026-06-05", ""),
			status: 201, answer: created, method: "POST", path: "/api/v1/integrations/int_a/access-invites",
			body: `{"portal_ids":["door-101","garage","lobby"],"name":"Guest stay 2026-06-01→06-05 [keysync:hotel-ljubljana:3rpms:RS%3A7]",
				"valid_from":"2026-06-01T13:00:00Z","valid_to":"2026-06-05T09:00:00Z","max_uses":50}`,
			wantSecret: true,
		},
		{
			name:   "create without max_uses, across a year end, no shared portals",
			action: action(reconcile.OpCreate, "s2", "r102", "2026-12-30", "2027-01-02", ""),
			mod:    func(o *openapp.Options) { o.MaxUses, o.SharedPortals = 0, nil },
			status: 201, answer: created, method: "POST", path: "/api/v1/integrations/int_a/access-invites",
			body: `{"portal_ids":["door-102","lobby"],"name":"Guest stay 2026-12-30→2027-01-02 [keysync:hotel-ljubljana:3rpms:s2]",
				"valid_from":"2026-12-30T14:00:00Z","valid_to":"2027-01-02T10:00:00Z"}`,
			wantSecret: true,
		},
		{
			name:   "create for a room with only shared portals",
			action: action(reconcile.OpCreate, "s3", "r103", "2026-06-01", "2026-06-02", ""),
			status: 201, answer: created, method: "POST", path: "/api/v1/integrations/int_a/access-invites",
			body: `{"portal_ids":["garage","lobby"],"name":"Guest stay 2026-06-01→06-02 [keysync:hotel-ljubljana:3rpms:s3]",
				"valid_from":"2026-06-01T13:00:00Z","valid_to":"2026-06-02T09:00:00Z","max_uses":50}`,
			wantSecret: true,
		},
		{
			name:   "update",
			action: action(reconcile.OpUpdate, "s1", "r101", "2026-06-02", "2026-06-05", "inv/1 x"),
			status: 200, answer: `{"invite_link_id":"inv/1 x"}`, method: "PUT", path: "/api/v1/integrations/int_a/access-invites/inv%2F1%20x",
			body: `{"portal_ids":["door-101","garage","lobby"],"name":"Guest stay 2026-06-02→06-05 [keysync:hotel-ljubljana:3rpms:s1]",
				"valid_from":"2026-06-02T13:00:00Z","valid_to":"2026-06-05T09:00:00Z","is_enabled":true}`,
		},
		{
			name:   "disable",
			action: action(reconcile.OpDisable, "s1", "r101", "2026-06-02", "2026-06-05", "inv_1"),
			status: 200, method: "PUT", path: "/api/v1/integrations/int_a/access-invites/inv_1",
			body: `{"is_enabled":false}`,
		},
		{
			name:   "delete",
			action: action(reconcile.OpDelete, "s1", "r101", "2026-06-02", "2026-06-05", "inv_1"),
			status: 204, method: "DELETE", path: "/api/v1/integrations/int_a/access-invites/inv_1",
		},
		{
			name:   "escaped integration id, base with a trailing slash",
			action: action(reconcile.OpDelete, "s1", "r101", "2026-06-02", "2026-06-05", "inv_1"),
			mod:    func(o *openapp.Options) { o.IntegrationID, o.BaseURL = "int a/b", o.BaseURL+"/" },
			status: 204, method: "DELETE", path: "/api/v1/integrations/int%20a%2Fb/access-invites/inv_1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recorder{status: tc.status, body: tc.answer, ctype: "application/json"}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			opts := options(srv.URL + "/api/v1")
			if tc.mod != nil {
				tc.mod(&opts)
			}
			out := apply(t, newSink(t, opts), tc.action)
			if tc.wantSecret != (out.Secret != "") || tc.wantSecret && (out.Secret.Reveal() != canaryToken || out.RemoteID != "inv_1") {
				t.Errorf("outcome %+v", out)
			}
			if len(rc.reqs) != 1 {
				t.Fatalf("%d requests", len(rc.reqs))
			}
			r := rc.reqs[0]
			if r.method != tc.method || r.path != tc.path {
				t.Errorf("request %s %s, want %s %s", r.method, r.path, tc.method, tc.path)
			}
			for h, want := range map[string]string{"Authorization": "Bearer " + canaryKey, "X-Org": orgA, "Content-Type": "application/json"} {
				if got := r.header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if tc.body == "" {
				if r.body != "" {
					t.Errorf("body %s, want none", r.body)
				}
			} else if !jsonEqual(t, r.body, tc.body) {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.body)
			}
			if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != 1 || got.Reads != 0 {
				t.Errorf("meter %+v", got)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var av, bv any
	if err := json.Unmarshal([]byte(a), &av); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal([]byte(b), &bv); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(av, bv)
}

// TestSinkRefusesBeforeSending covers actions that cannot be expressed:
// nothing is sent and nothing counted.
func TestSinkRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	rc := &recorder{status: 500}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	noWindow := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	noWindow.Window = nil
	backwards := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	backwards.Window.Start, backwards.Window.End = backwards.Window.End, backwards.Window.Start
	subSecond := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	subSecond.Window.End = subSecond.Window.Start.Add(time.Millisecond)
	otherProperty := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	otherProperty.Stay.Property = "hotel-bled"
	noCred := action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "")
	noCred.Cred = nil

	tests := []struct {
		name     string
		actions  []*reconcile.Action
		mod      func(*openapp.Options)
		request  bool // a request-level error rather than an outcome error
		contains string
	}{
		{name: "no portals at all", actions: []*reconcile.Action{action(reconcile.OpCreate, "s1", "r103", "2026-06-01", "2026-06-05", "")},
			mod: func(o *openapp.Options) { o.SharedPortals = nil }, contains: "portals"},
		{name: "unmapped room, no shared portals", actions: []*reconcile.Action{action(reconcile.OpCreate, "s1", "r999", "2026-06-01", "2026-06-05", "")},
			mod: func(o *openapp.Options) { o.SharedPortals = []string{" "} }, contains: "r999"},
		{name: "no window", actions: []*reconcile.Action{noWindow}, contains: "window"},
		{name: "window backwards", actions: []*reconcile.Action{backwards}, contains: "window"},
		{name: "window under a second", actions: []*reconcile.Action{subSecond}, contains: "window"},
		{name: "update without a link id", actions: []*reconcile.Action{action(reconcile.OpUpdate, "s1", "r101", "2026-06-01", "2026-06-05", "")}, contains: "invite_link_id"},
		{name: "disable without a link id", actions: []*reconcile.Action{action(reconcile.OpDisable, "s1", "r101", "2026-06-01", "2026-06-05", "")}, contains: "invite_link_id"},
		{name: "delete without a credential", actions: []*reconcile.Action{noCred}, contains: "invite_link_id"},
		{name: "not an invite operation", actions: []*reconcile.Action{action(reconcile.OpAssign, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")}, contains: "assign"},
		{name: "another property's stay", actions: []*reconcile.Action{otherProperty}, contains: "hotel-bled"},
		{name: "two actions", request: true, contains: "one invite per request", actions: []*reconcile.Action{
			action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1"),
			action(reconcile.OpDelete, "s2", "r101", "2026-06-01", "2026-06-05", "inv_2"),
		}},
		{name: "no actions", request: true, contains: "0 actions"},
		{name: "pacer refuses", request: true, contains: "waiting for rate limit",
			actions: []*reconcile.Action{action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1")},
			mod:     func(o *openapp.Options) { o.Pacer = httpapi.NewPacer(1, 0, o.Retry.Clock) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := options(srv.URL)
			if tc.mod != nil {
				tc.mod(&opts)
			}
			out, err := newSink(t, opts).Apply(context.Background(), tc.actions)
			if tc.request {
				if err == nil {
					t.Fatalf("no error; outcomes %+v", out)
				}
			} else {
				if err != nil || len(out) != 1 || out[0].Err == nil {
					t.Fatalf("Apply = %+v, %v; want one outcome with an error", out, err)
				}
				err = out[0].Err
			}
			if !strings.Contains(err.Error(), tc.contains) || !strings.HasPrefix(err.Error(), "openapp: ") {
				t.Errorf("error %q, want it to start with openapp and mention %q", err, tc.contains)
			}
			if errors.Is(err, reconcile.ErrUnknownOutcome) {
				t.Errorf("%v: nothing was sent, the outcome is known", err)
			}
			if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Writes != 0 {
				t.Errorf("meter counted %d writes", got.Writes)
			}
		})
	}
	if len(rc.reqs) != 0 {
		t.Errorf("%d requests sent", len(rc.reqs))
	}
}

// TestSinkPacerPaces checks every request waits on the Pacer: with one
// request an hour, the second goes an hour (of fake time) after the first.
func TestSinkPacerPaces(t *testing.T) {
	t.Parallel()
	srv := adaptertest.Serve(t, t0, reply(204, "", ""))
	clk, sc := srv.Clock, srv.Script
	opts := options(srv.URL)
	opts.Retry = retryOn(clk)
	opts.Pacer = httpapi.NewPacer(1.0/3600, 1, clk)
	s := newSink(t, opts)
	apply(t, s, action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", "inv_1"))
	apply(t, s, action(reconcile.OpDelete, "s2", "r101", "2026-06-01", "2026-06-05", "inv_2"))
	times := sc.Times()
	if len(times) != 2 {
		t.Fatalf("%d requests, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Hour-time.Second {
		t.Errorf("second request %s after the first, want an hour", gap)
	}
}

// newSink is openapp.New, failing the test on an error.
func newSink(t testing.TB, opts openapp.Options) *openapp.Sink {
	return adaptertest.Must(openapp.New(opts))(t)
}
