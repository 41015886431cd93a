package openapp_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
	"github.com/keysync/keysync/sinks/openapp/sandbox"
)

// find calls Find and fails the test on an error.
var find = sinktest.Find

func stay(id string) reconcile.StayRef {
	return reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: id}
}

// plantLookalikes plants, for a stay s1 invite over June 1–5, invites that
// look like it but are not keysync's for s1: the same name in another
// organisation's integration, and in ours one with no tag, tags of other
// stays, properties and sources, a second tag that is not s1's last, and
// a disabled one with s1's tag.
func plantLookalikes(t *testing.T, sb *sandbox.Server) {
	t.Helper()
	w := hotel.Window(date("2026-06-01"), date("2026-06-05"))
	ours := "Anna Novak 2026-06-01→06-05 " + openapp.OwnerTag(stay("s1"))
	plants := []sandbox.Planted{
		{Integration: intB, CreatedBy: otherKey, Name: ours, PortalIDs: []string{"gate-b"}},
		{Integration: intA, CreatedBy: "dashboard", Name: "Anna Novak 2026-06-01→06-05"},
		{Integration: intA, CreatedBy: staffKey, Name: "Anna Novak " + openapp.OwnerTag(stay("s2"))},
		{Integration: intA, CreatedBy: staffKey, Name: "Anna " + openapp.OwnerTag(reconcile.StayRef{Property: "other-hotel", Source: reconcile.System3RPMS, ID: "s1"})},
		{Integration: intA, CreatedBy: staffKey, Name: "Anna " + openapp.OwnerTag(reconcile.StayRef{Property: property, Source: reconcile.SystemGuestway, ID: "s1"})},
		{Integration: intA, CreatedBy: staffKey, Name: ours + " " + openapp.OwnerTag(stay("s2"))},
		{Integration: intA, CreatedBy: "dashboard", Name: "Anna [keysync:" + property + ":3rpms]"},
		{Integration: intA, CreatedBy: canaryKey, Name: ours, Disabled: true},
	}
	for _, p := range plants {
		if p.PortalIDs == nil {
			p.PortalIDs = []string{"door-101", "lobby"}
		}
		p.ValidFrom, p.ValidTo = w.Start, w.End
		if _, err := sb.AddInvite(p); err != nil {
			t.Fatal(err)
		}
	}
}

// createAmongLookalikes starts a sandbox served through wrap (a fault on
// creates), plants the lookalikes, and sends a create for stay s1 in room
// r101 over June 1–5 for guest; it checks the outcome is unknown and
// returns the sandbox, the sink, its options and the create.
func createAmongLookalikes(t *testing.T, wrap func(http.Handler) http.Handler, guest string) (*sandbox.Server, *openapp.Sink, openapp.Options, *reconcile.Action) {
	t.Helper()
	sb, _, opts := newSandbox(t, wrap)
	plantLookalikes(t, sb)
	s := newSink(t, opts)
	a := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	a.Guest = guest
	_, err := applyErr(s, a)
	checkErr(t, err, []error{reconcile.ErrUnknownOutcome}, nil, nil)
	return sb, s, opts, a
}

// TestFindReadsBackALostCreate creates an invite whose answer is lost
// (Apply reports an unknown outcome) among lookalikes, and checks Find
// returns that invite's link id and token with one read.
func TestFindReadsBackALostCreate(t *testing.T) {
	t.Parallel()
	sb, s, opts, a := createAmongLookalikes(t, sinktest.LoseCreates, "Anna Novak")
	all := sb.Invites()
	made := all[len(all)-1]
	if made.CreatedBy != sandbox.KeyFingerprint(canaryKey) || made.Integration != intA {
		t.Fatalf("the lost create made %+v", made)
	}
	sinktest.ReadsBack(t, s, a, made.ID, made.Token, opts.Meter, reconcile.SystemOpenApp)
	reqs := sb.Requests()
	if last := reqs[len(reqs)-1]; last.Method != http.MethodGet || last.Path != "/integrations/"+intA+"/access-invites" || last.Org != orgA {
		t.Errorf("list request %+v", last)
	}

	// A stay that names no property is the sink's.
	c := sinktest.Pending(a)
	c.Stay.Property = ""
	if id2, _, found := find(t, s, c); !found || id2 != made.ID {
		t.Errorf("stay without a property: %q, %v", id2, found)
	}
}

// TestFindNothingCreated checks Find reports nothing for a create the
// server never ran, among lookalikes, and for a stay with no invites.
func TestFindNothingCreated(t *testing.T) {
	t.Parallel()
	_, s, _, a := createAmongLookalikes(t, sinktest.FailCreates, "")
	if _, _, found := find(t, s, sinktest.Pending(a)); found {
		t.Error("found an invite the server never created")
	}
	if _, _, found := find(t, s, sinktest.Pending(action(reconcile.OpCreate, "s9", "r102", "2026-06-01", "2026-06-05", ""))); found {
		t.Error("found an invite for a stay that has none")
	}
}

// TestFindIgnoresForeignInvites checks only the sink's own integration and
// invites tagged for the stay are read back, even when another
// organisation's key creates one with the very same body.
func TestFindIgnoresForeignInvites(t *testing.T) {
	t.Parallel()
	sb, url, opts := newSandbox(t)
	sb.AddIntegration(intA+"-other", orgA)
	sb.AddPortal("door-x", intA+"-other")
	a := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")

	// The same create by org_b's key in its integration, and by our key in
	// another integration of our organisation.
	other := options(url)
	other.APIKey, other.OrgID, other.IntegrationID = otherKey, orgB, intB
	other.Rooms, other.SharedPortals = map[string][]string{"r101": {"gate-b"}}, nil
	apply(t, newSink(t, other), a)
	sibling := options(url)
	sibling.IntegrationID = intA + "-other"
	sibling.Rooms, sibling.SharedPortals = map[string][]string{"r101": {"door-x"}}, nil
	apply(t, newSink(t, sibling), a)
	plantLookalikes(t, sb)

	if id, _, found := find(t, newSink(t, opts), sinktest.Pending(a)); found {
		t.Errorf("Find took foreign invite %q", id)
	}
}

// TestFindTakesARenamedPropertysInvite: an invite tagged with a property
// the config no longer lists (Options.Listed) is the stay's of the same
// source and id only when it opens exactly the stay's room over exactly
// the window sought; one tagged with a property the config lists is never
// taken, nor any without Listed.
func TestFindTakesARenamedPropertysInvite(t *testing.T) {
	t.Parallel()
	w := hotel.Window(date("2026-06-01"), date("2026-06-05"))
	for _, c := range []struct {
		name    string
		owner   string
		listed  []string
		portals []string
		from    time.Time
		taken   bool
	}{
		{"renamed", "old-name", []string{property}, []string{"door-101", "garage", "lobby"}, w.Start, true},
		{"without Listed", "old-name", nil, []string{"door-101", "garage", "lobby"}, w.Start, false},
		{"a listed property's", "other-hotel", []string{property, "other-hotel"}, []string{"door-101", "garage", "lobby"}, w.Start, false},
		{"another room", "old-name", []string{property}, []string{"door-102", "garage", "lobby"}, w.Start, false},
		{"more doors", "old-name", []string{property}, []string{"door-101", "door-102", "garage", "lobby"}, w.Start, false},
		{"another window", "old-name", []string{property}, []string{"door-101", "garage", "lobby"}, w.Start.Add(time.Hour), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sb, _, opts := newSandbox(t)
			tag := openapp.OwnerTag(reconcile.StayRef{Property: c.owner, Source: reconcile.System3RPMS, ID: "s1"})
			planted, err := sb.AddInvite(sandbox.Planted{Integration: intA, CreatedBy: canaryKey, Name: "Anna " + tag, PortalIDs: c.portals, ValidFrom: c.from, ValidTo: w.End})
			if err != nil {
				t.Fatal(err)
			}
			opts.Listed = c.listed
			a := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
			id, _, found := find(t, newSink(t, opts), sinktest.Pending(a))
			if found != c.taken || (found && id != planted.ID) {
				t.Errorf("found %v (%q), want %v (%q)", found, id, c.taken, planted.ID)
			}
		})
	}
}

// TestFindPrefersTheWindowAndFollowsPages checks that, of the stay's
// invites, the one with the credential's window wins over an older one
// with another window, even pages later; and that without it the other is
// taken.
func TestFindPrefersTheWindowAndFollowsPages(t *testing.T) {
	t.Parallel()
	sb, _, opts := newSandbox(t)
	s := newSink(t, opts)
	old := apply(t, s, action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-04", ""))
	for i := range 150 {
		if _, err := sb.AddInvite(sandbox.Planted{
			Integration: intA, CreatedBy: "dashboard", Name: fmt.Sprint("Staff ", i), PortalIDs: []string{"lobby"},
			ValidFrom: t0, ValidTo: t0.Add(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	a := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
	want := apply(t, s, a)
	opts.Meter = &reconcile.Meter{}
	s = newSink(t, opts)

	id, token, found := find(t, s, sinktest.Pending(a))
	if !found || id != want.RemoteID || token != want.Secret {
		t.Errorf("Find = %q, %v; want %q", id, found, want.RemoteID)
	}
	if got := opts.Meter.Snapshot()[reconcile.SystemOpenApp]; got.Reads != 2 || got.Writes != 0 {
		t.Errorf("meter %+v, want two pages read", got)
	}

	c := sinktest.Pending(a)
	c.Valid.End = c.Valid.End.Add(24 * time.Hour)
	if id, _, found := find(t, s, c); !found || id != want.RemoteID {
		t.Errorf("no window matches: %q, %v; want the newest, %q", id, found, want.RemoteID)
	}
	if _, err := s.Apply(context.Background(), []*reconcile.Action{action(reconcile.OpDelete, "s1", "r101", "2026-06-01", "2026-06-05", want.RemoteID)}); err != nil {
		t.Fatal(err)
	}
	if id, _, found := find(t, s, c); !found || id != old.RemoteID {
		t.Errorf("after deleting the newer invite: %q, %v; want %q", id, found, old.RemoteID)
	}
}

// TestFindErrors checks Find's errors: refused keys wrap ErrUnauthorized,
// an outage is retried on the fake clock as a read, other answers are
// errors rather than "not found", and none quotes a secret.
func TestFindErrors(t *testing.T) {
	t.Parallel()
	page := func(token string) string {
		return `{"data":[{"invite_link_id":"inv_1","invite_token":"` + token + `","name":"A ` + openapp.OwnerTag(stay("s1")) +
			`","portal_ids":["lobby"],"valid_from":"2026-06-01T13:00:00Z","valid_to":"2026-06-05T09:00:00Z","is_enabled":true}],"has_more":false}`
	}
	unavailable := reply(503, "text/html", "<html>down</html>")
	tests := []struct {
		name     string
		steps    []http.HandlerFunc
		requests int
		sleeps   []time.Duration
		is       []error // nil: found inv_1
		contains []string
	}{
		{name: "401", steps: []http.HandlerFunc{reply(401, jsonCT, echo)}, requests: 1,
			is: []error{reconcile.ErrUnauthorized}, contains: []string{"HTTP 401", "find invite for stay"}},
		{name: "403", steps: []http.HandlerFunc{reply(403, jsonCT, echo)}, requests: 1,
			is: []error{reconcile.ErrUnauthorized}, contains: []string{"HTTP 403"}},
		{name: "404", steps: []http.HandlerFunc{reply(404, jsonCT, echo)}, requests: 1,
			is: []error{reconcile.ErrNotFound}, contains: []string{"HTTP 404", "[redacted]"}},
		{name: "503 twice, then the list", steps: []http.HandlerFunc{unavailable, unavailable, reply(200, jsonCT, page(canaryToken))},
			requests: 3, sleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{name: "always 503", steps: []http.HandlerFunc{unavailable}, requests: 4,
			is: []error{reconcile.ErrUnavailable}, contains: []string{"HTTP 503"}},
		{name: "429 then the list", steps: []http.HandlerFunc{reply(429, jsonCT, `{}`, "Retry-After", "3"), reply(200, jsonCT, page(canaryToken))},
			requests: 2, sleeps: []time.Duration{3 * time.Second}},
		{name: "wrong field type", steps: []http.HandlerFunc{reply(200, jsonCT, `{"data":[{"invite_link_id":[7],"invite_token":"`+canaryToken+`"}]}`)},
			requests: 1, is: []error{}, contains: []string{"not an invite list"}},
		{name: "not JSON", steps: []http.HandlerFunc{reply(200, "text/html", canaryToken)}, requests: 1,
			is: []error{}, contains: []string{"not JSON"}},
		{name: "empty", steps: []http.HandlerFunc{reply(200, jsonCT, "")}, requests: 1,
			is: []error{}, contains: []string{"empty"}},
		{name: "has_more for ever", steps: []http.HandlerFunc{reply(200, jsonCT, `{"data":[],"has_more":true}`)}, requests: 1,
			is: []error{}, contains: []string{"has_more"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := adaptertest.Serve(t, t0, tc.steps...)
			opts := options(srv.URL)
			opts.Retry, opts.Now = retryOn(srv.Clock), srv.Clock.Now
			id, secret, found, err := newSink(t, opts).Find(context.Background(), sinktest.Pending(action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")))
			sinktest.FindReads(t, srv, opts.Meter, reconcile.SystemOpenApp, tc.requests, tc.sleeps)
			if tc.is == nil {
				if err != nil || !found || id != "inv_1" || secret.Reveal() != canaryToken {
					t.Errorf("Find = %q, %v, %v", id, found, err)
				}
				return
			}
			if err == nil || found || id != "" {
				t.Fatalf("Find = %q, %v, %v; want an error", id, found, err)
			}
			checkErr(t, err, tc.is, nil, tc.contains)
		})
	}
}

// TestFindReadsStatusWords: a listed invite marked off by a status word is
// not taken for the stay; one whose status says only that it has not
// started ("inactive", "not_yet_valid", "expired" and other words) is left
// to its window, so an upcoming guest's invite is neither flagged by check
// nor issued twice after a lost create.
func TestFindReadsStatusWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		found  bool
	}{
		{"disabled", false}, {"REVOKED", false}, {"suspended", false},
		{"inactive", true}, {"not_yet_valid", true}, {"active", true}, {"expired", true},
	} {
		t.Run(tc.status, func(t *testing.T) {
			page := `{"data":[{"invite_link_id":"inv_1","invite_token":"` + canaryToken + `","name":"A ` + openapp.OwnerTag(stay("s1")) +
				`","portal_ids":["lobby"],"valid_from":"2026-06-01T13:00:00Z","valid_to":"2026-06-05T09:00:00Z","is_enabled":true,"status":"` + tc.status + `"}],"has_more":false}`
			srv := adaptertest.Serve(t, t0, reply(200, jsonCT, page))
			opts := options(srv.URL)
			opts.Retry, opts.Now = retryOn(srv.Clock), srv.Clock.Now
			id, _, found, err := newSink(t, opts).Find(context.Background(), sinktest.Pending(action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")))
			if err != nil || found != tc.found || (found && id != "inv_1") {
				t.Errorf("Find with status %q = %q, %v, %v; want found %v", tc.status, id, found, err, tc.found)
			}
		})
	}
}

// TestFindAgainstSandboxRefusals checks a refused key and a wrong
// organisation on the sandbox are ErrUnauthorized, and a credential of
// another property is refused without a request.
func TestFindAgainstSandboxRefusals(t *testing.T) {
	t.Parallel()
	sb, url, _ := newSandbox(t)
	c := sinktest.Pending(action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", ""))
	for name, edit := range map[string]func(*openapp.Options){
		"unknown key": func(o *openapp.Options) { o.APIKey = "key-unknown-CANARY" },
		"wrong org":   func(o *openapp.Options) { o.OrgID = orgB },
	} {
		opts := options(url)
		edit(&opts)
		_, _, found, err := newSink(t, opts).Find(context.Background(), c)
		if found || err == nil {
			t.Fatalf("%s: found %v, err %v", name, found, err)
		}
		checkErr(t, err, []error{reconcile.ErrUnauthorized}, []error{reconcile.ErrNotFound}, nil)
		if strings.Contains(err.Error(), "key-unknown-CANARY") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	sb.ResetRequests()
	foreign := *c
	foreign.Stay.Property = "other-hotel"
	if _, _, found, err := newSink(t, options(url)).Find(context.Background(), &foreign); found || err == nil {
		t.Errorf("another property's credential: found %v, err %v", found, err)
	}
	if n := len(sb.Requests()); n != 0 {
		t.Errorf("%d requests for a refused credential", n)
	}
}

// TestFindAllOneListForMany creates invites for three stays among
// lookalikes and reads them all back, with a fourth stay that has none,
// in one list request: each found with its link id, token and window, the
// fourth nil.
func TestFindAllOneListForMany(t *testing.T) {
	t.Parallel()
	sb, _, opts := newSandbox(t)
	plantLookalikes(t, sb)
	s := newSink(t, opts)
	var creds []*reconcile.Credential
	made := map[string]reconcile.Outcome{}
	for i, id := range []string{"s1", "s2", "s3", "s4"} {
		a := action(reconcile.OpCreate, id, "r101", "2026-06-01", fmt.Sprintf("2026-06-0%d", 3+i), "")
		if id != "s4" {
			made[id] = apply(t, s, a)
		}
		creds = append(creds, sinktest.Pending(a))
	}
	before := len(sb.Requests())
	sought := make([]reconcile.Sought, len(creds))
	for i, c := range creds {
		sought[i] = reconcile.Sought{Cred: c, Exact: true}
	}
	held := sinktest.FindAll(t, s, sought)
	if n := len(sb.Requests()) - before; n != 1 {
		t.Errorf("%d requests, want one list", n)
	}
	for i, c := range creds {
		o, ok := made[c.Stay.ID]
		switch h := held[i]; {
		case !ok && h != nil:
			t.Errorf("stay %s: found %s, want nothing", c.Stay.ID, h.RemoteID)
		case !ok:
		case h == nil:
			t.Errorf("stay %s: not found", c.Stay.ID)
		case h.RemoteID != o.RemoteID || h.Secret != o.Secret || !h.Valid.Start.Equal(c.Valid.Start) || !h.Valid.End.Equal(c.Valid.End) || h.System != reconcile.SystemOpenApp:
			t.Errorf("stay %s: found %s over %v, want %s over %v (token match %v)", c.Stay.ID, h.RemoteID, h.Valid, o.RemoteID, c.Valid, h.Secret == o.Secret)
		}
	}
	// An invite keysync records already is never found.
	held, err := s.FindAll(t.Context(), sought[:1], map[string]bool{made["s1"].RemoteID: true})
	if err != nil || held[0] != nil {
		t.Errorf("with s1's invite recorded: %+v, %v; want nothing", held, err)
	}
}

// TestFindWhenTheListMarksDisabledByStatus: a list that shows an invite
// switched off as "status": "disabled", without is_enabled (the sandbox's
// SetDisabledAsStatus; the OpenApp document shows no list, and is_enabled
// only as a field PUT takes). The disabled invite tagged for s1 among the
// lookalikes must not be read back for a create the server never ran
// (adopted, the guest would hold an invite that opens nothing), and Check
// must not take it as live.
func TestFindWhenTheListMarksDisabledByStatus(t *testing.T) {
	t.Parallel()
	sb, s, _, a := createAmongLookalikes(t, sinktest.FailCreates, "Anna Novak")
	sb.SetDisabledAsStatus(true)
	var off string
	for _, in := range sb.Invites() {
		if !in.Enabled && in.Integration == intA {
			off = in.ID
		}
	}
	if off == "" {
		t.Fatal("no disabled invite planted")
	}
	if id, _, found := find(t, s, sinktest.Pending(a)); found {
		t.Errorf("Find = %q: took a disabled invite (planted %q) for the stay", id, off)
	}
	c := sinktest.Pending(a)
	c.RemoteID = off
	if got, err := s.Check(t.Context(), c, c.Valid); err != nil || got.Live || !got.InPlace {
		t.Errorf("Check of the disabled invite = %+v, %v; want not live, to be switched on in place", got, err)
	}
}

// TestFindAllWhenTheListDoesNotSayItGoesOn: a list whose pages leave out
// has_more (the sandbox's list_without_has_more; the OpenApp document
// shows no list), at two invites a page: FindAll reads on to the end and
// finds the invite on the third page, where stopping at the first page
// would take the list for whole and issue it again. The end is an empty
// page, or a page number the server refuses (404, as many answer one
// past the end).
func TestFindAllWhenTheListDoesNotSayItGoesOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		refusePast bool
	}{{"empty page past the end", false}, {"404 past the end", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var wraps []func(http.Handler) http.Handler
			if tc.refusePast {
				wraps = append(wraps, func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.Method == http.MethodGet && r.URL.Query().Get("page") == "4" {
							w.Header().Set("Content-Type", "application/json")
							w.WriteHeader(http.StatusNotFound)
							w.Write([]byte(`{"detail":"Invalid page."}`))
							return
						}
						h.ServeHTTP(w, r)
					})
				})
			}
			sb, _, opts := newSandbox(t, wraps...)
			s := newSink(t, opts)
			var last reconcile.Outcome
			var a *reconcile.Action
			for i, id := range []string{"s1", "s2", "s3", "s4", "s5"} {
				a = action(reconcile.OpCreate, id, "r101", "2026-06-01", fmt.Sprintf("2026-06-0%d", 3+i), "")
				last = apply(t, s, a)
			}
			sb.SetMaxPerPage(2)
			sb.SetListWithoutHasMore(true)
			before := len(sb.Requests())
			held := sinktest.FindAll(t, newSink(t, opts), []reconcile.Sought{{Cred: sinktest.Pending(a), Exact: true}})
			if h := held[0]; h == nil || h.RemoteID != last.RemoteID {
				t.Errorf("found %+v, want %s, the invite on the list's third page", h, last.RemoteID)
			}
			// per_page refused, then pages 1 to 3 (2, 2 and 1 invites) and
			// page 4, empty or refused (the sandbox logs what reached it).
			want := 5
			if tc.refusePast {
				want = 4
			}
			if n := len(sb.Requests()) - before; n != want {
				t.Errorf("%d requests reached the sandbox, want %d", n, want)
			}
		})
	}
}
