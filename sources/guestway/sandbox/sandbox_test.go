package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
)

// t0 is the business clock in every test: a Friday.
var t0 = time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)

const (
	partnerKey = "pk-test-1234"
	fullToken  = "gw_full_token_abcdef"  // both scopes
	resToken   = "gw_res_only_token_xyz" // Reservations - Read only
	accToken   = "gw_acc_only_token_uvw" // Reservation Accesses - Read only
	adminToken = "gw_admin_token_qrstu"  // Full Access - Read
)

// env is a sandbox served for one test, with the requests the tests send.
type env struct{ *sandboxtest.Env[*Server] }

// newEnv starts a sandbox with partnerKey, the four tokens, listings L1 and
// L2 and the reservations:
//
//	R1  L1       01-28..01-30  confirmed, access A-R1 (pin 111111)
//	R2  L1       01-30..02-02  confirmed
//	R3  L2 u2a   01-31..02-03  cancelled
//	R4  L2       02-05..02-07  pending
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.PartnerKeys == nil {
		opts.PartnerKeys = []string{partnerKey}
	}
	if opts.Tokens == nil {
		opts.Tokens = map[string][]string{
			fullToken:  {ScopeReservationsRead, ScopeAccessesRead},
			resToken:   {ScopeReservationsRead},
			accToken:   {ScopeAccessesRead},
			adminToken: {ScopeFullAccessRead},
		}
	}
	if opts.Now.IsZero() {
		opts.Now = t0
	}
	sb := New(opts)
	sb.AddListing("L1", "Loft")
	sb.AddListing("L2", "Apartments")
	sandboxtest.AddAll(t, sb.AddReservation,
		Reservation{ID: "R1", ArrivalDate: "2026-01-28", DepartureDate: "2026-01-30", ListingID: "L1", GuestName: "Ana", Guests: Guests{2, 1},
			Accesses: []Access{{ID: "A-R1", LockID: "lock1", LockName: "Front door", PIN: "111111"}}},
		Reservation{ID: "R2", ArrivalDate: "2026-01-30", DepartureDate: "2026-02-02", ListingID: "L1"},
		Reservation{ID: "R3", Status: StatusCancelled, ArrivalDate: "2026-01-31", DepartureDate: "2026-02-03", ListingID: "L2", UnitID: "u2a"},
		Reservation{ID: "R4", Status: StatusPending, ArrivalDate: "2026-02-05", DepartureDate: "2026-02-07", ListingID: "L2"},
	)
	return &env{sandboxtest.Start(t, sb)}
}

// resp is an answer, with the ids of a list answer.
type resp struct{ sandboxtest.Answer }

// do sends a request; key and token are sent when non-empty.
func (e *env) do(method, path, key, auth, body string) resp {
	e.T.Helper()
	return resp{sandboxtest.Call(e.T, e.Srv, method, path, body, sandboxtest.Header("X-Api-Key", key), sandboxtest.Header("Authorization", auth))}
}

// get is an API GET with partnerKey and the given token.
func (e *env) get(path, token string) resp {
	e.T.Helper()
	return e.do(http.MethodGet, path, partnerKey, "Bearer "+token, "")
}

var dig = sandboxtest.Dig

// ids returns the ids in a list answer's data.
func (r resp) ids() []string {
	var out []string
	data, _ := r.Body["data"].([]any)
	for _, d := range data {
		out = append(out, dig(d, "id").(string))
	}
	return out
}

func TestHeadersCheckedInSeedOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.SB.AddToken("gw_revoked_token_000", ScopeReservationsRead)
	e.SB.RevokeToken("gw_revoked_token_000")
	const list, one, acc = "/open/v1/reservations", "/open/v1/reservations/R1", "/open/v1/reservations/R1/accesses"
	for _, tc := range []struct {
		name, method, path, key, auth string
		status                        int
		code, message                 string
	}{
		{"no X-Api-Key, good token", "GET", list, "", "Bearer " + fullToken, 401, CodeInvalidAPIKey, "X-Api-Key"},
		{"wrong X-Api-Key, good token", "GET", list, "pk-nope", "Bearer " + fullToken, 401, CodeInvalidAPIKey, "Partnership API Key"},
		{"no X-Api-Key, no token", "GET", list, "", "", 401, CodeInvalidAPIKey, ""},
		{"no X-Api-Key, unknown path", "GET", "/nope", "", "", 401, CodeInvalidAPIKey, ""},
		{"no X-Api-Key, POST", "POST", list, "", "Bearer " + fullToken, 401, CodeInvalidAPIKey, ""},
		{"good key, no token", "GET", list, partnerKey, "", 401, CodeUnauthorized, "Bearer gw_"},
		{"good key, unknown token", "GET", list, partnerKey, "Bearer gw_unknown", 401, CodeUnauthorized, "revoked"},
		{"good key, revoked token", "GET", list, partnerKey, "Bearer gw_revoked_token_000", 401, CodeUnauthorized, ""},
		{"good key, Basic scheme", "GET", list, partnerKey, "Basic " + fullToken, 401, CodeUnauthorized, ""},
		{"good key, empty bearer", "GET", list, partnerKey, "Bearer ", 401, CodeUnauthorized, ""},
		{"accesses-only token lists reservations", "GET", list, partnerKey, "Bearer " + accToken, 403, CodeForbidden, `"Reservations - Read"`},
		{"accesses-only token reads a reservation", "GET", one, partnerKey, "Bearer " + accToken, 403, CodeForbidden, `"Reservations - Read"`},
		{"reservations-only token reads accesses", "GET", acc, partnerKey, "Bearer " + resToken, 403, CodeForbidden, `"Reservation Accesses - Read"`},
		{"reservations-only token lists", "GET", list, partnerKey, "Bearer " + resToken, 200, "", ""},
		{"reservations-only token reads one", "GET", one, partnerKey, "Bearer " + resToken, 200, "", ""},
		{"accesses-only token reads accesses", "GET", acc, partnerKey, "Bearer " + accToken, 200, "", ""},
		{"Full Access - Read lists", "GET", list, partnerKey, "Bearer " + adminToken, 200, "", ""},
		{"Full Access - Read reads accesses", "GET", acc, partnerKey, "Bearer " + adminToken, 200, "", ""},
		{"unknown path", "GET", "/open/v1/listings", partnerKey, "Bearer " + fullToken, 404, CodeNotFound, ""},
		{"POST is not allowed", "POST", list, partnerKey, "Bearer " + fullToken, 405, CodeMethodNotAllowed, ""},
		{"deleted or unknown reservation", "GET", "/open/v1/reservations/R99", partnerKey, "Bearer " + fullToken, 404, CodeNotFound, ""},
		{"accesses of unknown reservation", "GET", "/open/v1/reservations/R99/accesses", partnerKey, "Bearer " + fullToken, 404, CodeNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.key, tc.auth, "")
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if got, _ := r.Body["error"].(string); got != tc.code {
				t.Errorf("error code %q, want %q: %s", got, tc.code, r.Raw)
			}
			if msg, _ := r.Body["message"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("message %q does not contain %q", msg, tc.message)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	reqs := e.SB.Requests()
	if len(reqs) != 22 {
		t.Fatalf("request log holds %d requests, want 22", len(reqs))
	}
	if r := reqs[0]; r.PartnerKey != "" || r.Token != "*********def" || r.Status != 401 || r.Code != CodeInvalidAPIKey {
		t.Errorf("first log entry: %+v", r)
	}
	for _, r := range reqs {
		if strings.Contains(r.Token, "token") {
			t.Errorf("request log holds a token unmasked: %+v", r)
		}
	}
	if r := reqs[14]; r.Endpoint != "reservation" || r.ReservationID != "R1" || r.Status != 200 || r.PartnerKey != partnerKey {
		t.Errorf("log entry of a reservation read: %+v", r)
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: now}, PartnerKeys: []string{partnerKey, "pk-other"}}.WithSeedLimits())
	const list = "/open/v1/reservations"

	// Refused requests do not use the partner key's budget.
	for range 5 {
		if r := e.get(list, "gw_unknown"); r.Status != 401 {
			t.Fatalf("unknown token: %d", r.Status)
		}
	}
	full := func() sandboxtest.Answer { return e.get(list, fullToken).Answer }
	sandboxtest.Admits(t, "the burst", 10, 200, full)
	r := full()
	sandboxtest.RateLimited(t, "11th request", r, "1")
	if r.Body["error"] != CodeRateLimited {
		t.Fatalf("11th request: %s", r.Raw)
	}
	if other := e.do("GET", list, "pk-other", "Bearer "+fullToken, ""); other.Status != 200 {
		t.Errorf("another partner key is limited too: %d", other.Status)
	}
	advance(200 * time.Millisecond) // 5 per second: one more
	if r := e.get(list, fullToken); r.Status != 200 {
		t.Errorf("after 200ms: %d", r.Status)
	}
	if r := e.get(list, fullToken); r.Status != 429 {
		t.Errorf("right after: %d", r.Status)
	}

	// The daily cap, reset at midnight UTC.
	e = newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: now, DailyCap: 3}})
	sandboxtest.Admits(t, "within the cap", 3, 200, full)
	r = full()
	sandboxtest.RateLimited(t, "over the daily cap", r, "43200")
	if !strings.Contains(r.Body["message"].(string), "daily limit of 3") {
		t.Fatalf("over the daily cap: %s", r.Raw)
	}
	advance(12 * time.Hour)
	if r := e.get(list, fullToken); r.Status != 200 {
		t.Errorf("next day: %d", r.Status)
	}
}

func TestListPaginationAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for i, d := range []string{"2026-02-01", "2026-02-01", "2026-02-02", "2026-02-03", "2026-02-04", "2026-02-09"} {
		id := []string{"P6", "P1", "P2", "P3", "P4", "P5"}[i]
		dep, _ := time.Parse(DateLayout, d)
		if err := e.SB.AddReservation(Reservation{ID: id, ArrivalDate: d, DepartureDate: dep.AddDate(0, 0, 2).Format(DateLayout), ListingID: "L1"}); err != nil {
			t.Fatal(err)
		}
	}
	// departure > 01-30 excludes R1 (departs 01-30); arrival <= 02-05 excludes P5.
	q := "/open/v1/reservations?from=2026-01-30&to=2026-02-05&per_page=3"
	want := []string{"R2", "R3", "P1", "P6", "P2", "P3", "P4", "R4"}
	var got []string
	for page, size := range []int{3, 3, 2} {
		r := e.get(q+"&page="+string(rune('1'+page)), fullToken)
		if r.Status != 200 {
			t.Fatalf("page %d: %d %s", page+1, r.Status, r.Raw)
		}
		if len(r.ids()) != size {
			t.Errorf("page %d holds %d", page+1, len(r.ids()))
		}
		got = append(got, r.ids()...)
		meta := map[string]any{"page": float64(page + 1), "per_page": 3.0, "total": 8.0, "has_more": page < 2}
		if !reflect.DeepEqual(r.Body["meta"], meta) {
			t.Errorf("page %d meta %v, want %v", page+1, r.Body["meta"], meta)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages hold %q, want %q", got, want)
	}
	if r := e.get(q+"&page=4", fullToken); len(r.ids()) != 0 || dig(r.Body, "meta", "has_more") != false {
		t.Errorf("page past the end: %s", r.Raw)
	}
	if r := e.get(q+"&page=9223372036854775807", fullToken); r.Status != 200 || len(r.ids()) != 0 {
		t.Errorf("huge page: %d %s", r.Status, r.Raw)
	}
	if r := e.get("/open/v1/reservations", fullToken); len(r.ids()) != 10 || dig(r.Body, "meta", "per_page") != 50.0 {
		t.Errorf("no parameters: every reservation, 50 a page: %s", r.Raw)
	}
	if r := e.get("/open/v1/reservations?per_page=100", fullToken); r.Status != 200 {
		t.Errorf("per_page=100: %d", r.Status)
	}
	for _, bad := range []string{"per_page=101", "per_page=0", "per_page=x", "page=0", "page=-1", "from=2026-13-01", "to=tomorrow"} {
		r := e.get("/open/v1/reservations?"+bad, fullToken)
		if r.Status != 400 || r.Body["error"] != CodeBadRequest {
			t.Errorf("%s: %d %s", bad, r.Status, r.Raw)
		}
	}
	if r := e.get("/open/v1/reservations?per_page=101", fullToken); !strings.Contains(r.Raw, "1 to 100") {
		t.Errorf("per_page message: %s", r.Raw)
	}
}

func TestWireShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := e.get("/open/v1/reservations/R1", fullToken)
	want := map[string]any{"data": map[string]any{
		"id": "R1", "status": "confirmed", "arrival_date": "2026-01-28", "departure_date": "2026-01-30",
		"listing_id": "L1", "unit_id": nil, "guest_name": "Ana", "guests": map[string]any{"adults": 2.0, "children": 1.0},
	}}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("reservation R1:\n got %v\nwant %v", r.Body, want)
	}
	if r := e.get("/open/v1/reservations/R3", fullToken); dig(r.Body, "data", "unit_id") != "u2a" || dig(r.Body, "data", "status") != "cancelled" {
		t.Errorf("reservation R3: %s", r.Raw)
	}
	r = e.get("/open/v1/reservations/R1/accesses", fullToken)
	wantAcc := map[string]any{"data": []any{map[string]any{
		"id": "A-R1", "lock_id": "lock1", "lock_name": "Front door", "pin": "111111",
		"valid_from": "2026-01-28T15:00:00Z", "valid_to": "2026-01-30T11:00:00Z",
	}}}
	if !reflect.DeepEqual(r.Body, wantAcc) {
		t.Errorf("accesses of R1:\n got %v\nwant %v", r.Body, wantAcc)
	}
	if r := e.get("/open/v1/reservations/R2/accesses", fullToken); r.Raw != "{\"data\":[]}\n" {
		t.Errorf("no accesses: %s", r.Raw)
	}
	// Ids are path-escaped.
	e.SB.AddListing("L/3", "Odd")
	if err := e.SB.AddReservation(Reservation{ID: "R 5", ArrivalDate: "2026-02-01", DepartureDate: "2026-02-02", ListingID: "L/3"}); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/open/v1/reservations/R%205", fullToken); dig(r.Body, "data", "listing_id") != "L/3" {
		t.Errorf("escaped id: %d %s", r.Status, r.Raw)
	}
}

func TestCustomPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{
		ReservationsPath: "/v2/bookings", ReservationPath: "/v2/bookings/{id}/detail", AccessesPath: "/v2/locks/{id}",
	})
	for path, want := range map[string]int{
		"/v2/bookings": 200, "/v2/bookings/R1/detail": 200, "/v2/locks/R1": 200,
		"/open/v1/reservations": 404, "/v2/bookings/R1": 404,
	} {
		if r := e.get(path, fullToken); r.Status != want {
			t.Errorf("%s: %d, want %d", path, r.Status, want)
		}
	}
}

func TestGoAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.SB
	for _, tc := range []struct {
		name string
		r    Reservation
		want error
	}{
		{"duplicate id", Reservation{ID: "R1", ArrivalDate: "2026-02-01", DepartureDate: "2026-02-02", ListingID: "L1"}, ErrConflict},
		{"unknown listing", Reservation{ArrivalDate: "2026-02-01", DepartureDate: "2026-02-02", ListingID: "L9"}, ErrNotFound},
		{"bad date", Reservation{ArrivalDate: "2026-2-1", DepartureDate: "2026-02-02", ListingID: "L1"}, ErrInvalid},
		{"zero nights", Reservation{ArrivalDate: "2026-02-02", DepartureDate: "2026-02-02", ListingID: "L1"}, ErrInvalid},
		{"upper-case status", Reservation{Status: "Confirmed", ArrivalDate: "2026-02-01", DepartureDate: "2026-02-02", ListingID: "L1"}, ErrInvalid},
		{"slash in id", Reservation{ID: "a/b", ArrivalDate: "2026-02-01", DepartureDate: "2026-02-02", ListingID: "L1"}, ErrInvalid},
		{"PIN with a space", Reservation{ArrivalDate: "2026-02-01", DepartureDate: "2026-02-02", ListingID: "L1",
			Accesses: []Access{{LockID: "l", PIN: "SECRET 99"}}}, ErrInvalid},
	} {
		err := sb.AddReservation(tc.r)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error quotes the PIN: %v", tc.name, err)
		}
	}
	if n := len(sb.Reservations()); n != 4 {
		t.Fatalf("failed adds changed the store: %d reservations", n)
	}

	if err := sb.AddReservation(Reservation{ArrivalDate: "2026-02-10", DepartureDate: "2026-02-12", ListingID: "L2"}); err != nil {
		t.Fatal(err)
	}
	last := sb.Reservations()[4]
	if last.ID != "R1001" || last.Status != StatusConfirmed {
		t.Errorf("generated reservation: %+v", last)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sb.SetStatus("R2", "checked_in"))
	must(sb.ChangeDates("R2", "2026-01-29", "2026-02-03"))
	must(sb.MoveUnit("R2", "L2", "u2b"))
	must(sb.AddAccess("R2", Access{LockID: "lock2", PIN: "2468"}))
	r2, _ := sb.Reservation("R2")
	want := Reservation{ID: "R2", Status: "checked_in", ArrivalDate: "2026-01-29", DepartureDate: "2026-02-03", ListingID: "L2", UnitID: "u2b",
		Accesses: []Access{{ID: "A1", LockID: "lock2", LockName: "lock2", PIN: "2468", ValidFrom: "2026-01-29T15:00:00Z", ValidTo: "2026-02-03T11:00:00Z"}}}
	if !reflect.DeepEqual(r2, want) {
		t.Errorf("R2 after changes:\n got %+v\nwant %+v", r2, want)
	}
	if err := sb.ChangeDates("R2", "2026-02-05", "2026-02-01"); !errors.Is(err, ErrInvalid) {
		t.Errorf("dates reversed: %v", err)
	}
	if err := sb.MoveUnit("R2", "L9", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("move to unknown listing: %v", err)
	}
	if r, _ := sb.Reservation("R2"); !reflect.DeepEqual(r, want) {
		t.Errorf("failed changes changed R2: %+v", r)
	}
	if err := sb.AddAccess("R2", Access{ID: "A-R1", LockID: "x", PIN: "1"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate access id: %v", err)
	}
	if err := sb.AddAccess("R2", Access{LockID: "x", PIN: "1", ValidFrom: "tomorrow"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad valid_from: %v", err)
	}
	if n, err := sb.RemoveAccesses("R2"); n != 1 || err != nil {
		t.Errorf("RemoveAccesses: %d %v", n, err)
	}
	must(sb.DeleteReservation("R2"))
	for _, err := range []error{sb.DeleteReservation("R2"), sb.SetStatus("R2", "x"), sb.AddAccess("R2", Access{LockID: "l", PIN: "1"})} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("on a deleted reservation: %v", err)
		}
	}
	if r := e.get("/open/v1/reservations/R2", fullToken); r.Status != 404 {
		t.Errorf("deleted reservation over the API: %d", r.Status)
	}
	sb.SetNow(t0.Add(time.Hour))
	sb.Advance(24 * time.Hour)
	if got := sb.Now(); !got.Equal(t0.Add(25 * time.Hour)) {
		t.Errorf("Now = %v", got)
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	call := func(method, path, body string, status int) resp {
		t.Helper()
		return resp{sandboxtest.Want(t, e.Srv, method, path, body, status)}
	}
	call("POST", "/_sandbox/listings", `{"id":"L3","name":"Cabin"}`, 201)
	call("POST", "/_sandbox/listings", `{"name":"no id"}`, 400)
	if r := call("GET", "/_sandbox/listings", ``, 200); len(r.Body["listings"].([]any)) != 3 {
		t.Errorf("listings: %s", r.Raw)
	}
	r := call("POST", "/_sandbox/reservations", `{"arrival_date":"2026-02-01","departure_date":"2026-02-04","listing_id":"L3","guest_name":"Bo","guests":{"adults":2,"children":0},"accesses":[{"lock_id":"l3","pin":"5555"}]}`, 201)
	id, _ := r.Body["id"].(string)
	if id == "" || dig(r.Body, "accesses", 0, "pin") != "5555" {
		t.Fatalf("created: %s", r.Raw)
	}
	call("POST", "/_sandbox/reservations", `{"id":"R1","arrival_date":"2026-02-01","departure_date":"2026-02-04","listing_id":"L3"}`, 409)
	call("POST", "/_sandbox/reservations", `{"arrival_date":"2026-02-01","departure_date":"2026-02-04","listing_id":"L9"}`, 404)
	call("POST", "/_sandbox/reservations", `{"arrival_date":"02/01/2026","departure_date":"2026-02-04","listing_id":"L3"}`, 400)
	r = call("POST", "/_sandbox/reservations", `{"arrival_date":"2026-02-01","departure_date":"2026-02-04","listing_id":"L3","pin":"SECRET77"}`, 400)
	if !strings.Contains(r.Raw, `unknown field \"pin\"`) {
		t.Errorf("unknown field: %s", r.Raw)
	}
	r = call("POST", "/_sandbox/reservations/R1/accesses", `{"lock_id":"l","pin":"SECRET 77"}`, 400)
	if strings.Contains(r.Raw, "SECRET") {
		t.Errorf("admin error quotes a PIN: %s", r.Raw)
	}
	r = call("POST", "/_sandbox/reservations/R1/accesses", `{"lock_id":"l", "pin": SECRET77}`, 400)
	if strings.Contains(r.Raw, "SECRET") || !strings.Contains(r.Raw, "syntax error at byte") {
		t.Errorf("syntax error: %s", r.Raw)
	}

	r = call("PATCH", "/_sandbox/reservations/"+id, `{"unit_id":"u3","departure_date":"2026-02-05","status":"confirmed"}`, 200)
	if r.Body["unit_id"] != "u3" || r.Body["departure_date"] != "2026-02-05" || r.Body["guest_name"] != "Bo" {
		t.Errorf("patched: %s", r.Raw)
	}
	call("PATCH", "/_sandbox/reservations/"+id, `{"departure_date":"2026-01-01"}`, 400)
	call("PATCH", "/_sandbox/reservations/nope", `{}`, 404)
	if r := call("POST", "/_sandbox/reservations/"+id+"/cancel", ``, 200); r.Body["status"] != StatusCancelled {
		t.Errorf("cancelled: %s", r.Raw)
	}
	r = call("POST", "/_sandbox/reservations/R2/accesses", `{"lock_id":"l2","lock_name":"Door","pin":"7777","valid_from":"2026-01-30T14:00:00Z"}`, 201)
	if r.Body["valid_from"] != "2026-01-30T14:00:00Z" || r.Body["valid_to"] != "2026-02-02T11:00:00Z" {
		t.Errorf("access: %s", r.Raw)
	}
	if r := call("DELETE", "/_sandbox/reservations/R2/accesses", ``, 200); r.Body["removed"] != 1.0 {
		t.Errorf("removed: %s", r.Raw)
	}
	call("DELETE", "/_sandbox/reservations/R2", ``, 200)
	call("DELETE", "/_sandbox/reservations/R2", ``, 404)
	r = call("GET", "/_sandbox/reservations", ``, 200)
	var ids []string
	for _, res := range r.Body["reservations"].([]any) {
		ids = append(ids, dig(res, "id").(string))
	}
	if want := []string{"R1", "R3", id, "R4"}; !slices.Equal(ids, want) {
		t.Errorf("reservations %q, want %q", ids, want)
	}

	if r := call("GET", "/_sandbox/clock", ``, 200); r.Body["now"] != "2026-01-30T12:00:00Z" || r.Body["today"] != "2026-01-30" {
		t.Errorf("clock: %s", r.Raw)
	}
	if r := call("POST", "/_sandbox/clock", `{"advance":"36h"}`, 200); r.Body["today"] != "2026-02-01" {
		t.Errorf("advanced clock: %s", r.Raw)
	}
	call("POST", "/_sandbox/clock", `{"now":"2026-03-01T08:00:00+01:00"}`, 200)
	if got := e.SB.Now(); got.Format(time.RFC3339) != "2026-03-01T08:00:00+01:00" {
		t.Errorf("set clock: %v", got)
	}
	call("POST", "/_sandbox/clock", `{}`, 400)
	call("POST", "/_sandbox/clock", `{"advance":"soon"}`, 400)

	e.get("/open/v1/reservations", fullToken)
	e.get("/open/v1/reservations/R1", resToken)
	if r := call("GET", "/_sandbox/requests", ``, 200); r.Body["count"] != 2.0 || dig(r.Body, "requests", 1, "endpoint") != "reservation" {
		t.Errorf("requests: %s", r.Raw)
	}
	sandboxtest.ClearRequests(t, e.Srv)
	call("GET", "/_sandbox/nope", ``, 404)
	call("PUT", "/_sandbox/clock", `{}`, 404)

	// The route list served at GET /_sandbox/ is the one in the package comment.
	if sandboxtest.RoutesDocumented(t, e.Srv) != adminRouteList {
		t.Errorf("GET /_sandbox/ does not serve adminRouteList")
	}
}

func TestSeedDemo(t *testing.T) {
	t.Parallel()
	build := func() *Server {
		sb := New(Options{Now: t0})
		sb.SeedDemo(20)
		return sb
	}
	a, b := build(), build()
	if !reflect.DeepEqual(a.Reservations(), b.Reservations()) || !reflect.DeepEqual(a.Listings(), b.Listings()) {
		t.Fatal("SeedDemo is not deterministic")
	}
	if n := len(a.Listings()); n != 20 {
		t.Errorf("%d listings", n)
	}
	const today, tomorrow, week = "2026-01-30", "2026-01-31", "2026-02-05"
	var arrToday, arrTomorrow, arrWeek, inHouse, depToday, cancelled, withUnit int
	var arriving, arrivingWithPIN, dueWithoutPIN int
	for _, r := range a.Reservations() {
		if r.Status == StatusCancelled {
			cancelled++
			continue
		}
		if r.UnitID != "" {
			withUnit++
		}
		switch {
		case r.ArrivalDate == today:
			arrToday++
		case r.ArrivalDate == tomorrow:
			arrTomorrow++
		case r.ArrivalDate > tomorrow && r.ArrivalDate <= week:
			arrWeek++
		case r.ArrivalDate < today && r.DepartureDate > today:
			inHouse++
		}
		if r.DepartureDate == today {
			depToday++
		}
		if r.ArrivalDate >= today && r.ArrivalDate <= week {
			arriving++
			if len(r.Accesses) > 0 {
				arrivingWithPIN++
			} else if r.ArrivalDate <= tomorrow {
				dueWithoutPIN++
			}
		}
		for _, acc := range r.Accesses {
			if len(acc.PIN) != 6 || acc.LockID == "" {
				t.Errorf("access of %s: %+v", r.ID, acc)
			}
		}
	}
	t.Logf("arrive today %d, tomorrow %d, later this week %d; in house %d; depart today %d; cancelled %d; arriving %d (%d with a PIN)",
		arrToday, arrTomorrow, arrWeek, inHouse, depToday, cancelled, arriving, arrivingWithPIN)
	if arrToday < 2 || arrTomorrow < 2 || arrWeek < 3 || inHouse < 3 || depToday < 1 || cancelled < 1 || withUnit < 2 {
		t.Error("a case is missing from the demo portfolio")
	}
	if arrivingWithPIN*4 < arriving*3 {
		t.Errorf("only %d of %d arriving reservations hold a PIN", arrivingWithPIN, arriving)
	}
	if dueWithoutPIN < 1 {
		t.Error("no reservation arriving within 24 h lacks a PIN")
	}

	// The demo credentials work and every reservation is served.
	srv := sandboxtest.Serve(t, a)
	req, _ := http.NewRequest("GET", srv.URL+"/open/v1/reservations?per_page=100", nil)
	req.Header.Set("X-Api-Key", DemoPartnerKey)
	req.Header.Set("Authorization", "Bearer "+DemoToken)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	var body struct {
		Meta struct{ Total int } `json:"meta"`
	}
	if err := json.NewDecoder(hr.Body).Decode(&body); err != nil || hr.StatusCode != 200 || body.Meta.Total != len(a.Reservations()) {
		t.Errorf("demo list: %d, total %d of %d, %v", hr.StatusCode, body.Meta.Total, len(a.Reservations()), err)
	}
}

// TestSilentSwitches: the switches for what the Guestway document leaves
// open, set over POST /_sandbox/assumptions, answer as their setters say.
func TestSilentSwitches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	body := `{"accesses_not_found_when_empty": true, "list_not_found_when_empty": true, "cursor_meta": true, "cancelled_as": true}`
	if r := sandboxtest.Want(t, e.Srv, "POST", "/_sandbox/assumptions", body, 200); r.Body["cursor_meta"] != true || r.Body["cancelled_as"] != true {
		t.Fatalf("switches: %s", r.Raw)
	}
	if r := e.get("/open/v1/reservations/R2/accesses", fullToken); r.Status != http.StatusNotFound {
		t.Errorf("no accesses: %d %s, want 404", r.Status, r.Raw)
	}
	if r := e.get("/open/v1/reservations/R1/accesses", fullToken); r.Status != http.StatusOK {
		t.Errorf("accesses of R1: %d %s", r.Status, r.Raw)
	}
	if r := e.get("/open/v1/reservations?from=2027-01-01&to=2027-01-05", fullToken); r.Status != http.StatusNotFound {
		t.Errorf("an empty window: %d %s, want 404", r.Status, r.Raw)
	}
	r := e.get("/open/v1/reservations?per_page=2", fullToken)
	if meta := dig(r.Body, "meta"); !reflect.DeepEqual(meta, map[string]any{"per_page": 2.0, "next_cursor": "c2"}) {
		t.Errorf("cursor meta: %v", meta)
	}
	if r := e.get("/open/v1/reservations/R3", fullToken); dig(r.Body, "data", "status") != CancelledByGuest {
		t.Errorf("cancelled R3: %s", r.Raw)
	}
}
