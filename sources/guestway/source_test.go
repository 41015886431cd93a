package guestway_test

import (
	"context"
	"errors"
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
	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/sources/guestway"
	"github.com/keysync/keysync/sources/guestway/sandbox"
)

// Canaries: secrets that must never reach an error string.
const (
	canaryKey   = "pk-CANARY-5d1c"
	canaryToken = "gw_CANARY_tok_9a8b"
	canaryPIN   = "CANARY77"
	property    = "coast"
)

// Tokens with fewer scopes.
const (
	resOnlyToken = "gw_res_only_0001"
	accOnlyToken = "gw_acc_only_0002"
)

// t0 is the sandbox's business clock.
var t0 = time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)

// headerCheck wraps a handler and records every request that lacks either
// of the two headers with the canary values.
type headerCheck struct {
	next http.Handler
	mu   sync.Mutex
	n    int
	bad  []string
}

func (h *headerCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.n++
	if r.Header.Get("X-Api-Key") != canaryKey || r.Header.Get("Authorization") != "Bearer "+canaryToken {
		h.bad = append(h.bad, r.URL.Path)
	}
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

// newSandbox starts a sandbox knowing the canary key and token (both
// scopes) and the two one-scope tokens, with listings L1, L2 (units) and L3.
func newSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Server, *headerCheck, string) {
	t.Helper()
	opts.PartnerKeys = []string{canaryKey}
	opts.Tokens = map[string][]string{
		canaryToken:  {sandbox.ScopeReservationsRead, sandbox.ScopeAccessesRead},
		resOnlyToken: {sandbox.ScopeReservationsRead},
		accOnlyToken: {sandbox.ScopeAccessesRead},
	}
	opts.Now = t0
	sb := sandbox.New(opts)
	for _, l := range []string{"L1", "L2", "L3"} {
		sb.AddListing(l, "Listing "+l)
	}
	hc := &headerCheck{next: sb}
	return sb, hc, sandboxtest.Serve(t, hc).URL
}

// newSource returns a Source for base with the canary credentials,
// retrying on a fake clock (no real sleeps); edit changes the options
// first.
func newSource(t testing.TB, base string, edit func(*guestway.Options)) *guestway.Source {
	t.Helper()
	opts := guestway.Options{BaseURL: base, PartnerKey: canaryKey, Token: canaryToken, Property: property, Transport: httpapi.Transport{Retry: retryOn(clocktest.New(t0))}}
	if edit != nil {
		edit(&opts)
	}
	return newGuestway(t, opts)
}

// retryOn is the default retry policy on a fake clock, exact.
var retryOn = adaptertest.RetryOn

// add adds reservations to sb, failing the test on any error.
func add(t *testing.T, sb *sandbox.Server, rs ...sandbox.Reservation) {
	t.Helper()
	sandboxtest.AddAll(t, sb.AddReservation, rs...)
}

// day parses a YYYY-MM-DD date, failing the test if it does not parse.
var day = adaptertest.Day

// ids returns the source ids of stays, in order.
var ids = adaptertest.StayIDs

// pins reveals the PINs of a stay's locks as "lock=pin".
func pins(st reconcile.Stay) []string {
	var out []string
	for _, l := range st.Locks {
		out = append(out, l.LockID+"="+l.PIN.Reveal())
	}
	return out
}

// portfolio adds reservations around the window 2026-01-30..2026-02-05:
// seven inside it (one cancelled, one with an unknown status, one on a
// unit) and two just outside.
func portfolio(t *testing.T, sb *sandbox.Server) {
	t.Helper()
	access := func(lock, pin string) []sandbox.Access {
		return []sandbox.Access{{LockID: lock, LockName: "Door " + lock, PIN: pin}}
	}
	add(t, sb,
		sandbox.Reservation{ID: "G0", ArrivalDate: "2026-01-27", DepartureDate: "2026-01-30", ListingID: "L1"}, // departs on from: out
		sandbox.Reservation{ID: "G1", ArrivalDate: "2026-01-28", DepartureDate: "2026-01-31", ListingID: "L1", GuestName: "Ana Novak",
			Guests: sandbox.Guests{Adults: 2, Children: 1}, Accesses: access("lk1", canaryPIN)},
		sandbox.Reservation{ID: "G2", ArrivalDate: "2026-01-30", DepartureDate: "2026-02-02", ListingID: "L2", UnitID: "L2-a",
			Accesses: []sandbox.Access{{LockID: "bld", PIN: "400100"}, {LockID: "L2-a", PIN: "400200"}}},
		sandbox.Reservation{ID: "G3", Status: "cancelled", ArrivalDate: "2026-01-31", DepartureDate: "2026-02-03", ListingID: "L3", Accesses: access("lk3", "300300")},
		sandbox.Reservation{ID: "G4", Status: "inquiry", ArrivalDate: "2026-02-01", DepartureDate: "2026-02-04", ListingID: "L1"},
		sandbox.Reservation{ID: "G5", Status: "pending", ArrivalDate: "2026-02-02", DepartureDate: "2026-02-05", ListingID: "L2", UnitID: "L2-b", Accesses: access("lk5", "500500")},
		sandbox.Reservation{ID: "G6", ArrivalDate: "2026-02-04", DepartureDate: "2026-02-06", ListingID: "L3", Accesses: access("lk6", "600600")},
		sandbox.Reservation{ID: "G7", ArrivalDate: "2026-02-05", DepartureDate: "2026-02-08", ListingID: "L3"}, // arrives on to: in
		sandbox.Reservation{ID: "G8", ArrivalDate: "2026-02-06", DepartureDate: "2026-02-08", ListingID: "L1"}, // after to: out
	)
}

// portfolioSandbox starts a sandbox with the default options, holding the
// portfolio, and returns it with its base URL.
func portfolioSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	sb, _, base := newSandbox(t, sandbox.Options{})
	portfolio(t, sb)
	return sb, base
}

func TestStays(t *testing.T) {
	t.Parallel()
	sb, hc, base := newSandbox(t, sandbox.Options{})
	portfolio(t, sb)
	meter := &reconcile.Meter{}
	// A token an hour and a burst of exactly the nine requests: none waits,
	// and if each took its token a tenth waits an hour.
	clk := clocktest.New(t0)
	pacer := httpapi.NewPacer(1.0/3600, 9, clk)
	src := newSource(t, base, func(o *guestway.Options) {
		o.PerPage, o.Meter, o.Pacer, o.Retry, o.Concurrency = 3, meter, pacer, retryOn(clk), 2
	})

	stays, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	ref := func(id string) reconcile.StayRef {
		return reconcile.StayRef{Property: property, Source: reconcile.SystemGuestway, ID: id}
	}
	lock := func(id, name, pin string) reconcile.LockAccess {
		return reconcile.LockAccess{LockID: id, LockName: name, PIN: reconcile.Secret(pin)}
	}
	want := []reconcile.Stay{
		{Ref: ref("G1"), RoomID: "L1", RoomName: "L1", Arrival: day(t, "2026-01-28"), Departure: day(t, "2026-01-31"),
			Guest: "Ana Novak", Guests: 3, Locks: []reconcile.LockAccess{lock("lk1", "Door lk1", canaryPIN)}},
		{Ref: ref("G2"), RoomID: "L2-a", RoomName: "L2-a", Arrival: day(t, "2026-01-30"), Departure: day(t, "2026-02-02"),
			Locks: []reconcile.LockAccess{lock("bld", "bld", "400100"), lock("L2-a", "L2-a", "400200")}},
		{Ref: ref("G3"), RoomID: "L3", RoomName: "L3", Arrival: day(t, "2026-01-31"), Departure: day(t, "2026-02-03"), Cancelled: true},
		{Ref: ref("G4"), RoomID: "L1", RoomName: "L1", Arrival: day(t, "2026-02-01"), Departure: day(t, "2026-02-04")},
		{Ref: ref("G5"), RoomID: "L2-b", RoomName: "L2-b", Arrival: day(t, "2026-02-02"), Departure: day(t, "2026-02-05"),
			Locks: []reconcile.LockAccess{lock("lk5", "Door lk5", "500500")}},
		{Ref: ref("G6"), RoomID: "L3", RoomName: "L3", Arrival: day(t, "2026-02-04"), Departure: day(t, "2026-02-06"),
			Locks: []reconcile.LockAccess{lock("lk6", "Door lk6", "600600")}},
		{Ref: ref("G7"), RoomID: "L3", RoomName: "L3", Arrival: day(t, "2026-02-05"), Departure: day(t, "2026-02-08")},
	}
	if !reflect.DeepEqual(stays, want) {
		t.Errorf("stays:\n got %+v\nwant %+v", stays, want)
	}
	if got := pins(stays[1]); !slices.Equal(got, []string{"bld=400100", "L2-a=400200"}) {
		t.Errorf("G2 PINs: %q", got)
	}

	// Three list pages, then one accesses request per reservation that is
	// not cancelled.
	var lists, accesses []string
	for _, r := range sb.Requests() {
		if r.Status != http.StatusOK {
			t.Errorf("request %s?%s: %d %s", r.Path, r.Query, r.Status, r.Code)
		}
		switch r.Endpoint {
		case "reservations":
			lists = append(lists, r.Query)
		case "accesses":
			accesses = append(accesses, r.ReservationID)
		default:
			t.Errorf("unexpected request %s", r.Path)
		}
	}
	wantLists := []string{
		"from=2026-01-30&page=1&per_page=3&to=2026-02-05",
		"from=2026-01-30&page=2&per_page=3&to=2026-02-05",
		"from=2026-01-30&page=3&per_page=3&to=2026-02-05",
	}
	if !slices.Equal(lists, wantLists) {
		t.Errorf("list requests:\n got %q\nwant %q", lists, wantLists)
	}
	slices.Sort(accesses)
	if want := []string{"G1", "G2", "G4", "G5", "G6", "G7"}; !slices.Equal(accesses, want) {
		t.Errorf("accesses read for %q, want %q (none for the cancelled G3)", accesses, want)
	}
	if hc.n != 9 || len(hc.bad) > 0 {
		t.Errorf("%d requests, these without both headers: %q", hc.n, hc.bad)
	}
	if got := meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != 9 || got.Writes != 0 {
		t.Errorf("meter: %+v, want 9 reads", got)
	}
	if w := clk.Sleeps(); len(w) != 0 {
		t.Errorf("requests within the burst waited %v", w)
	}
	if err := pacer.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := clk.Sleeps(); len(w) != 1 || w[0] < time.Hour-time.Second || w[0] > time.Hour+time.Second {
		t.Errorf("a tenth request waited %v, want an hour: not every request took a token from the pacer", w)
	}
}

func TestStaysConcurrency(t *testing.T) {
	t.Parallel()
	sb, _, _ := newSandbox(t, sandbox.Options{})
	for i := range 12 {
		add(t, sb, sandbox.Reservation{ArrivalDate: "2026-02-01", DepartureDate: "2026-02-03", ListingID: "L1",
			Accesses: []sandbox.Access{{LockID: "lk", PIN: "1234" + string(rune('a'+i))}}})
	}
	var mu sync.Mutex
	inFlight, peak := 0, 0
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/accesses") {
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		}
		sb.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	defer srv.Close()
	stays, err := newSource(t, srv.URL, func(o *guestway.Options) { o.Concurrency = 3 }).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stays {
		if len(st.Locks) != 1 {
			t.Errorf("%s: %d locks", st.Ref.ID, len(st.Locks))
		}
	}
	if len(stays) != 12 || peak > 3 {
		t.Errorf("%d stays, %d access requests in flight at once (Concurrency 3)", len(stays), peak)
	}
	t.Logf("peak access requests in flight: %d", peak)
}

func TestStaysByID(t *testing.T) {
	t.Parallel()
	sb, hc, base := newSandbox(t, sandbox.Options{})
	portfolio(t, sb)
	if err := sb.DeleteReservation("G4"); err != nil {
		t.Fatal(err)
	}
	if err := sb.MoveUnit("G6", "L2", "L2-c"); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, base, nil)

	stays, err := src.StaysByID(context.Background(), []string{"G6", "G4", "G3", "G1", "G6", "nope", "G8"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(stays); !slices.Equal(got, []string{"G6", "G1", "G8"}) {
		t.Fatalf("StaysByID = %q, want G6 G1 G8 (G4 deleted, G3 cancelled, nope unknown)", got)
	}
	if st := stays[0]; st.RoomID != "L2-c" || !slices.Equal(pins(st), []string{"lk6=600600"}) || st.Cancelled {
		t.Errorf("G6: %+v", st)
	}
	if st := stays[1]; st.Guest != "Ana Novak" || st.Guests != 3 || !slices.Equal(pins(st), []string{"lk1=" + canaryPIN}) {
		t.Errorf("G1: %+v", st)
	}
	var gets, accesses int
	for _, r := range sb.Requests() {
		switch r.Endpoint {
		case "reservation":
			gets++
		case "accesses":
			accesses++
		}
	}
	// Six distinct ids, and after the 404s one more: a reservation from
	// the list's first page (no list was read yet), to check the path.
	if gets != 7 || accesses != 3 || len(hc.bad) > 0 {
		t.Errorf("%d reservation reads (want 6 distinct ids and one check), %d accesses reads (want 3); without both headers: %q", gets, accesses, hc.bad)
	}

	sb.ResetRequests()
	if stays, err := src.StaysByID(context.Background(), nil); err != nil || stays != nil || len(sb.Requests()) != 0 {
		t.Errorf("no ids: %v, %v, %d requests", stays, err, len(sb.Requests()))
	}
}

// secretFree fails the test if err's message holds a canary.
func secretFree(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		adaptertest.NoSecrets(t, err, canaryKey, canaryToken, canaryPIN, "CANARY")
	}
}

func TestAuthErrorsAgainstSandbox(t *testing.T) {
	t.Parallel()
	_, base := portfolioSandbox(t)
	from, to := day(t, "2026-01-30"), day(t, "2026-02-05")
	for _, tc := range []struct {
		name     string
		edit     func(*guestway.Options)
		byID     bool
		status   int
		contains []string
	}{
		{
			name:   "unknown token",
			edit:   func(o *guestway.Options) { o.Token = "gw_CANARY_revoked" },
			status: 401,
			contains: []string{"guestway: list reservations page 1: HTTP 401",
				"Organization Access Token is missing, revoked or incorrect", "Authorization: Bearer gw_..."},
		},
		{
			name:     "no token",
			edit:     func(o *guestway.Options) { o.Token = "" },
			status:   401,
			contains: []string{"Authorization: Bearer gw_..."},
		},
		{
			name:   "wrong partner key, good token",
			edit:   func(o *guestway.Options) { o.PartnerKey = "pk-CANARY-wrong" },
			status: 401,
			contains: []string{"Partnership API Key is missing or invalid", "check the X-Api-Key Partnership API Key header",
				"rejected before the token was checked"},
		},
		{
			name:     "no partner key, no token",
			edit:     func(o *guestway.Options) { o.PartnerKey, o.Token = "", "" },
			status:   401,
			contains: []string{"X-Api-Key"},
		},
		{
			name:     "token without Reservations - Read",
			edit:     func(o *guestway.Options) { o.Token = accOnlyToken },
			status:   403,
			contains: []string{`lacks the "Reservations - Read" scope`, "Permissions column"},
		},
		{
			name:     "token without Reservations - Read, by id",
			edit:     func(o *guestway.Options) { o.Token = accOnlyToken },
			byID:     true,
			status:   403,
			contains: []string{"get reservation G1", `"Reservations - Read"`},
		},
		{
			name:     "token without Reservation Accesses - Read",
			edit:     func(o *guestway.Options) { o.Token = resOnlyToken },
			status:   403,
			contains: []string{"list accesses of reservation", `lacks the "Reservation Accesses - Read" scope`, "Permissions column"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, base, tc.edit)
			var stays []reconcile.Stay
			var err error
			if tc.byID {
				stays, err = src.StaysByID(context.Background(), []string{"G1"})
			} else {
				stays, err = src.Stays(context.Background(), from, to)
			}
			if err == nil || stays != nil {
				t.Fatalf("got %d stays and %v", len(stays), err)
			}
			if !errors.Is(err, reconcile.ErrUnauthorized) {
				t.Errorf("errors.Is(err, ErrUnauthorized) is false: %v", err)
			}
			var ge *guestway.Error
			if !errors.As(err, &ge) || ge.Status != tc.status {
				t.Errorf("want a *guestway.Error with status %d: %#v", tc.status, err)
			}
			adaptertest.Mentions(t, err, tc.contains...)
			secretFree(t, err)
		})
	}
}

func TestRateLimitedBySandbox(t *testing.T) {
	t.Parallel()
	sb, _, base := newSandbox(t, sandbox.Options{
		Rates: sandboxkit.Rates{
			RateNow:       func() time.Time { return t0 }, // no refill
			RatePerSecond: 5, Burst: 3,
		},
	})
	portfolio(t, sb)
	stays, err := newSource(t, base, func(o *guestway.Options) { o.Concurrency = 1 }).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if stays != nil {
		t.Fatalf("got %d stays and %v, want a *httpapi.RateLimitedError", len(stays), err)
	}
	adaptertest.RateLimited(t, err, reconcile.SystemGuestway, time.Second)
	adaptertest.Mentions(t, err, "HTTP 429", "retry after 1s", "5 requests per second", "10,000 requests per day", "contact support@guestway.io for higher limits")
	if errors.Is(err, reconcile.ErrUnauthorized) {
		t.Error("429 reads as unauthorized")
	}
	secretFree(t, err)
	// Three admitted, then the 429 waited out and tried again (the sandbox
	// never refills) until Retry.Attempts (4) are spent; nothing after.
	if n := len(sb.Requests()); n != 3+4 {
		t.Errorf("%d requests, want 3 and 4 attempts at the rate-limited one", n)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := guestway.Options{BaseURL: "https://api.guestway.io", PartnerKey: canaryKey, Token: canaryToken, Property: property}
	if err := good.Validate(); err != nil {
		t.Errorf("good options: %v", err)
	}
	negative := good
	negative.MaxResponseBytes = -1
	if src, err := guestway.New(negative); src != nil || err == nil || !strings.Contains(err.Error(), "max response bytes") {
		t.Errorf("New with a negative response cap = %v, %v; want no source and an error", src, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*guestway.Options)
		want []string
	}{
		{"token without gw_", func(o *guestway.Options) { o.Token = "CANARY-abc123" }, []string{"Token", "Organization Access Tokens start with gw_"}},
		{"no token", func(o *guestway.Options) { o.Token = "" }, []string{"Token: missing", "start with gw_"}},
		{"no partner key", func(o *guestway.Options) { o.PartnerKey = "" }, []string{"PartnerKey", "X-Api-Key"}},
		{"relative base URL", func(o *guestway.Options) { o.BaseURL = "api.guestway.io" }, []string{"BaseURL"}},
		{"no property", func(o *guestway.Options) { o.Property = "" }, []string{"Property"}},
		{"per page above 100", func(o *guestway.Options) { o.PerPage = 101 }, []string{"PerPage", "1 to 100"}},
		{"path without {id}", func(o *guestway.Options) { o.AccessesPath = "/open/v1/accesses" }, []string{"AccessesPath", "{id}"}},
		{"several problems", func(o *guestway.Options) { o.Token, o.PartnerKey, o.Concurrency = "x", "", -1 }, []string{"Token", "PartnerKey", "Concurrency"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			err := o.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			secretFree(t, err)
		})
	}
}

// TestAssumptionsShared pins the client's assumptions to the sandbox's.
func TestAssumptionsShared(t *testing.T) {
	t.Parallel()
	for _, p := range [][2]string{
		{guestway.DefaultReservationsPath, sandbox.DefaultReservationsPath},
		{guestway.DefaultReservationPath, sandbox.DefaultReservationPath},
		{guestway.DefaultAccessesPath, sandbox.DefaultAccessesPath},
		{guestway.ScopeReservations, sandbox.ScopeReservationsRead},
		{guestway.ScopeAccesses, sandbox.ScopeAccessesRead},
	} {
		if p[0] != p[1] {
			t.Errorf("client assumes %q, sandbox %q", p[0], p[1])
		}
	}
	if guestway.DefaultPerPage != sandbox.DefaultPerPage || guestway.MaxPerPage != sandbox.MaxPerPage {
		t.Error("page sizes differ")
	}
}

// TestCustomPaths runs a Source against a sandbox with other paths.
func TestCustomPaths(t *testing.T) {
	t.Parallel()
	sb, _, base := newSandbox(t, sandbox.Options{
		ReservationsPath: "/api/v2/bookings", ReservationPath: "/api/v2/bookings/{id}", AccessesPath: "/api/v2/bookings/{id}/locks",
	})
	portfolio(t, sb)
	src := newSource(t, base+"/", func(o *guestway.Options) {
		o.ReservationsPath, o.ReservationPath, o.AccessesPath = "/api/v2/bookings", "/api/v2/bookings/{id}", "/api/v2/bookings/{id}/locks"
	})
	stays, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil || len(stays) != 7 {
		t.Fatalf("Stays: %d, %v", len(stays), err)
	}
	if byID, err := src.StaysByID(context.Background(), []string{"G1"}); err != nil || len(byID) != 1 || len(byID[0].Locks) != 1 {
		t.Fatalf("StaysByID: %+v, %v", byID, err)
	}
}

// TestSeedDemoReadable reads the demo portfolio with the demo credentials.
func TestSeedDemoReadable(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Now: t0})
	sb.SeedDemo(0)
	srv := sandboxtest.Serve(t, sb)
	src := newGuestway(t, guestway.Options{BaseURL: srv.URL, PartnerKey: sandbox.DemoPartnerKey, Token: sandbox.DemoToken, Property: "demo"})
	if err := (guestway.Options{BaseURL: srv.URL, PartnerKey: sandbox.DemoPartnerKey, Token: sandbox.DemoToken, Property: "demo"}).Validate(); err != nil {
		t.Errorf("demo credentials do not validate: %v", err)
	}
	stays, err := src.Stays(context.Background(), day(t, "2026-01-29"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	var cancelled, noLock int
	for _, st := range stays {
		if st.Cancelled {
			cancelled++
		} else if len(st.Locks) == 0 && !st.Arrival.Before(day(t, "2026-01-30")) && !day(t, "2026-01-31").Before(st.Arrival) {
			noLock++
		}
	}
	if len(stays) < 15 || cancelled != 1 || noLock < 1 {
		t.Errorf("%d stays, %d cancelled, %d arriving within 24 h without a lock PIN", len(stays), cancelled, noLock)
	}
}

// TestContextCancelled stops a read between requests.
func TestContextCancelled(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newSource(t, base, nil).Stays(ctx, day(t, "2026-01-30"), day(t, "2026-02-05"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	_, err = newSource(t, base, nil).StaysByID(ctx, []string{"G1"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("StaysByID err = %v, want context.Canceled", err)
	}
	if n := len(sb.Requests()); n != 0 {
		t.Errorf("%d requests sent after cancel", n)
	}
}

// newGuestway is guestway.New, failing the test on an error.
func newGuestway(t testing.TB, opts guestway.Options) *guestway.Source {
	return adaptertest.Must(guestway.New(opts))(t)
}

// TestStaysPagesByTotal: without has_more (the document names no paging;
// the sandbox's SetNoHasMore) the list is read on while total says
// reservations are left, as many pages as with it; an explicit
// has_more: false ends it whatever total says (TestDuplicateAcrossPages).
func TestStaysPagesByTotal(t *testing.T) {
	t.Parallel()
	read := func(noHasMore bool) ([]string, int) {
		sb, base := portfolioSandbox(t)
		sb.SetNoHasMore(noHasMore)
		src := newSource(t, base, func(o *guestway.Options) { o.PerPage = 2 })
		stays, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
		if err != nil {
			t.Fatal(err)
		}
		lists := 0
		for _, r := range sb.Requests() {
			if r.Endpoint == "reservations" {
				lists++
			}
		}
		return ids(stays), lists
	}
	want, wantLists := read(false)
	got, lists := read(true)
	if !slices.Equal(got, want) || lists != wantLists || wantLists != 4 {
		t.Errorf("without has_more: %q in %d pages; with it: %q in %d (want 4: seven reservations, two a page)", got, lists, want, wantLists)
	}
}

// TestStaysByIDChecksThePath: a 404 from the one-reservation look-up is
// taken as gone only when a reservation the latest list returned can be
// looked up there; when that one 404s too, the path is wrong
// (ErrEndpoint, naming reservation_path) and no stay is taken for gone.
// With nothing in the list to check against, the 404 stands
// (TestStaysByIDCanned).
func TestStaysByIDChecksThePath(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	src := newSource(t, base, nil)
	ctx := context.Background()
	sb.SetNoReservationGet(true)
	// No list read yet (a targeted run): the list's first page gives a
	// reservation to check with.
	if _, err := src.StaysByID(ctx, []string{"G6"}); !errors.Is(err, reconcile.ErrEndpoint) {
		t.Fatalf("nothing listed yet: %v, want ErrEndpoint from a reservation of the list's first page", err)
	}
	if _, err := src.Stays(ctx, day(t, "2026-01-30"), day(t, "2026-02-05")); err != nil {
		t.Fatal(err)
	}
	sb.ResetRequests()
	_, err := src.StaysByID(ctx, []string{"G8"})
	if !errors.Is(err, reconcile.ErrEndpoint) || !strings.Contains(err.Error(), "reservation_path") {
		t.Fatalf("a listed reservation 404s too: %v, want ErrEndpoint naming reservation_path", err)
	}
	var asked []string // the ids at the end of the paths (no route matched them)
	for _, r := range sb.Requests() {
		asked = append(asked, r.Path[strings.LastIndex(r.Path, "/")+1:])
	}
	if len(asked) != 2 || asked[0] != "G8" || asked[1] == "G8" || asked[1] == "G3" {
		t.Errorf("looked up %q, want G8 then one live reservation the list returned", asked)
	}
	sb.SetNoReservationGet(false)
	sb.ResetRequests()
	if stays, err := src.StaysByID(ctx, []string{"nope"}); err != nil || len(stays) != 0 || len(sb.Requests()) != 2 {
		t.Errorf("an unknown id once the path answers: %v, %v, %d requests; want gone after one check", stays, err, len(sb.Requests()))
	}
}

// TestStaysOnAServerIgnoringPage: a server that answers its first page
// whatever page is asked for, with no meta.page to say so (the sandbox's
// SetIgnorePage), fails the read on the second page, whether it pages by
// has_more or by total alone: never the first page taken for the whole
// list, never pages asked for until MaxPages.
func TestStaysOnAServerIgnoringPage(t *testing.T) {
	t.Parallel()
	for _, noHasMore := range []bool{false, true} {
		sb, base := portfolioSandbox(t)
		sb.SetIgnorePage(true)
		sb.SetNoHasMore(noHasMore)
		src := newSource(t, base, func(o *guestway.Options) { o.PerPage = 2 })
		_, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
		if err == nil || !strings.Contains(err.Error(), "ignores the page parameter") || len(sb.Requests()) != 2 {
			t.Errorf("no has_more %v: %d requests, %v; want a failure naming the page parameter on the second", noHasMore, len(sb.Requests()), err)
		}
	}
}

// TestBesideTheOtherProperties: one of two properties on one organisation
// token, the other ("west") mapping L2's units and L3: its reads return
// the other's reservations marked MovedTo west, without reading their lock
// accesses, and so does a look-up of one of them. Paging counts them all:
// with pages of 2, the list is read to its end.
func TestBesideTheOtherProperties(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	src := newSource(t, base, func(o *guestway.Options) { o.PerPage = 2 }).Beside(map[string]string{"L2-a": "west", "L2-b": "west", "L3": "west"})
	moved := func(stays []reconcile.Stay) []string {
		var out []string
		for _, st := range stays {
			out = append(out, st.Ref.ID+">"+st.MovedTo)
			if st.MovedTo != "" && len(st.Locks) > 0 {
				t.Errorf("%s, the other property's, has its locks read: %v", st.Ref.ID, pins(st))
			}
		}
		return out
	}
	stays, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := moved(stays), []string{"G1>", "G2>west", "G3>west", "G4>", "G5>west", "G6>west", "G7>west"}; !slices.Equal(got, want) {
		t.Errorf("Stays = %q, want %q", got, want)
	}
	accesses := 0
	for _, r := range sb.Requests() {
		if r.Endpoint == "accesses" {
			accesses++
		}
	}
	if accesses != 2 {
		t.Errorf("%d accesses reads, want 2 (G1 and G4, this property's live ones)", accesses)
	}
	byID, err := src.StaysByID(context.Background(), []string{"G1", "G2", "G6"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := moved(byID), []string{"G1>", "G2>west", "G6>west"}; !slices.Equal(got, want) {
		t.Errorf("StaysByID = %q, want %q", got, want)
	}
}

// TestStaysByIDGoneAsNull: a server that answers a deleted reservation
// 200 {"data": null}, not 404 (the sandbox's gone_as_null; the Guestway
// document names no answer for one that is gone): it is read as gone, as
// a 404 is, after the same check of the reservation path, where every
// run failed on it and the deleted guest kept its access.
func TestStaysByIDGoneAsNull(t *testing.T) {
	t.Parallel()
	sb, _, base := newSandbox(t, sandbox.Options{})
	portfolio(t, sb)
	if err := sb.DeleteReservation("G4"); err != nil {
		t.Fatal(err)
	}
	sb.SetGoneAsNull(true)
	stays, err := newSource(t, base, nil).StaysByID(context.Background(), []string{"G4", "G1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(stays); !slices.Equal(got, []string{"G1"}) {
		t.Fatalf("StaysByID = %q, want G1 (G4 deleted)", got)
	}
}
