package guestway_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/guestway"
)

// echo is an error body quoting every canary, as a careless server might.
const echo = `{"error":"oops","message":"key ` + canaryKey + ` token ` + canaryToken + ` pin ` + canaryPIN + `"}`

// reply is a canned answer.
var reply = adaptertest.Reply

// jsonReply answers 200 with a JSON body.
func jsonReply(body string) http.HandlerFunc {
	return reply(http.StatusOK, "application/json; charset=utf-8", body)
}

// listPage is a list answer holding reservations (JSON objects).
func listPage(page int, hasMore bool, reservations ...string) string {
	return fmt.Sprintf(`{"data":[%s],"meta":{"page":%d,"per_page":50,"total":99,"has_more":%v}}`, strings.Join(reservations, ","), page, hasMore)
}

// res is a reservation object with the given id and dates.
func res(id, arrival, departure string) string {
	return fmt.Sprintf(`{"id":%q,"status":"confirmed","arrival_date":%q,"departure_date":%q,"listing_id":"L1","unit_id":null,"guest_name":"x","guests":{"adults":1,"children":0}}`, id, arrival, departure)
}

// padded returns a valid empty list answer exactly n bytes long.
func padded(n int) string {
	const head, tail = `{"data":[],"meta":{"page":1,"has_more":false,"pad":"`, `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// byPath routes accesses requests to accesses and everything else to list.
func byPath(list, accesses http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/accesses") {
			accesses(w, r)
			return
		}
		list(w, r)
	}
}

// paged answers the list with page(n) for the requested page n.
func paged(page func(n int) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		jsonReply(page(n))(w, r)
	}
}

var noAccesses = jsonReply(`{"data":[]}`)

func TestCannedResponses(t *testing.T) {
	t.Parallel()
	const jsonCT = "application/json"
	sent := time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		handler  http.HandlerFunc
		edit     func(*guestway.Options)
		is       []error
		isNot    []error
		status   int // of the *guestway.Error; -1: not checked
		contains []string
		check    func(t *testing.T, err error)
		// unavailable: the error wraps reconcile.ErrUnavailable (a 5xx),
		// which alone makes a call retried after a backoff.
		unavailable bool
	}{
		{
			name: "401 plain", handler: reply(401, jsonCT, echo),
			is: []error{reconcile.ErrUnauthorized}, status: 401,
			contains: []string{"HTTP 401", "Organization Access Token is missing, revoked or incorrect", "Authorization: Bearer gw_..."},
		},
		{
			name: "401 invalid_api_key", handler: reply(401, jsonCT, `{"error":"invalid_api_key","message":"bad key `+canaryKey+`"}`),
			is: []error{reconcile.ErrUnauthorized}, status: 401,
			contains: []string{"check the X-Api-Key Partnership API Key header"},
		},
		{
			name: "401 invalid_api_key as a nested code", handler: reply(401, jsonCT, `{"error":{"code":"INVALID_API_KEY","detail":"`+canaryKey+`"}}`),
			is: []error{reconcile.ErrUnauthorized}, status: 401,
			contains: []string{"X-Api-Key Partnership API Key"},
		},
		{
			name: "403 invalid_api_key", handler: reply(403, jsonCT, `{"error":"invalid_api_key"}`),
			is: []error{reconcile.ErrUnauthorized}, status: 403,
			contains: []string{"X-Api-Key Partnership API Key"},
		},
		{
			name: "403", handler: reply(403, "text/plain", "forbidden "+canaryToken),
			is: []error{reconcile.ErrUnauthorized}, status: 403,
			contains: []string{"HTTP 403", `lacks the "Reservations - Read" scope required for this resource`, "Permissions column"},
		},
		{
			name: "403 on accesses", handler: byPath(jsonReply(listPage(1, false, res("R1", "2026-01-30", "2026-02-01"))), reply(403, jsonCT, echo)),
			is: []error{reconcile.ErrUnauthorized}, status: 403,
			contains: []string{"list accesses of reservation R1", `"Reservation Accesses - Read"`},
		},
		{
			name: "429 with Retry-After seconds", handler: reply(429, jsonCT, echo, "Retry-After", "7"), status: 429,
			isNot:    []error{reconcile.ErrUnauthorized},
			contains: []string{"HTTP 429", "retry after 7s", "5 requests per second", "10,000 requests per day", "support@guestway.io"},
			check:    rateLimited(7 * time.Second),
		},
		{
			name: "429 with Retry-After date", handler: reply(429, jsonCT, echo, "Retry-After", sent.Add(30*time.Second).Format(http.TimeFormat)),
			edit:   func(o *guestway.Options) { o.Now = func() time.Time { return sent } },
			status: 429, check: rateLimited(30 * time.Second),
		},
		{name: "429 without Retry-After", handler: reply(429, jsonCT, echo), status: 429, check: rateLimited(time.Second)},
		{
			name: "429 with a huge Retry-After", handler: reply(429, jsonCT, echo, "Retry-After", "99999999999"), status: 429,
			is: []error{httpapi.ErrWaitTooLong}, contains: []string{"retry after 24h0m0s, longer than this run waits", "5 requests per second"},
			check: rateLimited(24 * time.Hour),
		},
		{name: "429 with a garbage Retry-After", handler: reply(429, jsonCT, echo, "Retry-After", canaryPIN), status: 429, check: rateLimited(time.Second)},
		{
			name: "400", handler: reply(400, jsonCT, echo),
			is: []error{reconcile.ErrRejected}, isNot: []error{reconcile.ErrUnauthorized}, status: 400, contains: []string{"HTTP 400"},
		},
		{
			name: "404 on the list", handler: reply(404, jsonCT, echo),
			is: []error{reconcile.ErrNotFound}, status: 404, contains: []string{"list reservations page 1: HTTP 404"},
		},
		{
			name: "404 on accesses", handler: byPath(jsonReply(listPage(1, false, res("R1", "2026-01-30", "2026-02-01"))), reply(404, jsonCT, echo)),
			is: []error{reconcile.ErrNotFound}, status: 404, contains: []string{"check accesses_path"},
		},
		{
			name: "500", handler: reply(500, jsonCT, echo),
			isNot: []error{reconcile.ErrUnauthorized, reconcile.ErrRejected, reconcile.ErrNotFound}, status: 500, contains: []string{"HTTP 500", "server error"},
			unavailable: true,
		},
		{name: "503 HTML", handler: reply(503, "text/html", "<html>"+canaryPIN+"</html>"), status: 503, contains: []string{"HTTP 503"}, unavailable: true},
		{name: "200 HTML", handler: reply(200, "text/html; charset=utf-8", "<html>login "+canaryToken+"</html>"), status: 200, contains: []string{"not JSON", `"text/html"`}},
		{name: "200 without a content type", handler: reply(200, "", listPage(1, false)), status: 200, contains: []string{"not JSON"}},
		{name: "200 empty", handler: reply(200, jsonCT, "  \n"), status: 200, contains: []string{"empty response"}},
		{name: "truncated JSON", handler: jsonReply(`{"data":[{"id":"R1","guest_name":"` + canaryPIN), status: 200, contains: []string{"truncated JSON response"}},
		{
			name: "connection closed mid-body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", jsonCT)
				w.Header().Set("Content-Length", "500")
				_, _ = io.WriteString(w, `{"data":[{"id":"`+canaryPIN)
			},
			status: 200, contains: []string{"truncated response"},
		},
		{
			name: "oversized", handler: jsonReply(padded(2049)), edit: func(o *guestway.Options) { o.MaxResponseBytes = 2048 },
			status: 200, contains: []string{"larger than 2048 bytes", "max_response_bytes"},
		},
		{name: "malformed JSON", handler: jsonReply(`{"data": [` + canaryPIN + `]}`), status: 200, contains: []string{"malformed JSON response (invalid JSON at byte"}},
		{name: "data of the wrong type", handler: jsonReply(`{"data":{"id":"` + canaryPIN + `"},"meta":{}}`), status: 200, contains: []string{`field "data"`, "got JSON object"}},
		{name: "id of the wrong type", handler: jsonReply(listPage(1, false, `{"id":{"v":"`+canaryPIN+`"}}`)), status: 200, contains: []string{"an id is neither a string nor an integer"}},
		{name: "no data", handler: jsonReply(`{"meta":{"page":1,"has_more":false}}`), status: 200, contains: []string{`no "data" array`}},
		{name: "no meta", handler: jsonReply(`{"data":[]}`), status: 200, contains: []string{`no "meta" object`}},
		{name: "accesses without data", handler: byPath(jsonReply(listPage(1, false, res("R1", "2026-01-30", "2026-02-01"))), jsonReply(`{}`)), status: 200, contains: []string{"list accesses of reservation R1", `no "data" array`}},
		{name: "has_more with an empty page", handler: jsonReply(listPage(1, true)), status: 200, contains: []string{"page 1", "empty page that says has_more"}},
		{
			name: "the server ignores page", handler: byPath(jsonReply(listPage(1, true, res("R1", "2026-01-30", "2026-02-01"))), noAccesses),
			status: 200, contains: []string{"list reservations page 2", "answered page 1; it ignores the page parameter"},
		},
		{
			name: "has_more forever",
			handler: byPath(paged(func(n int) string {
				return listPage(n, true, res("R"+strconv.Itoa(n), "2026-01-30", "2026-02-01"))
			}), noAccesses),
			edit:   func(o *guestway.Options) { o.MaxPages = 5 },
			status: -1, contains: []string{"more than 5 pages (MaxPages)"},
		},
		{name: "reservation without an id", handler: jsonReply(listPage(1, false, res("", "2026-01-30", "2026-02-01"))), status: 200, contains: []string{"a reservation has no id"}},
		{
			name: "redirect is not followed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://elsewhere.invalid/steal", http.StatusFound)
			},
			status: 302, contains: []string{"HTTP 302", "redirects are not followed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			src := newSource(t, srv.URL, tc.edit)
			stays, err := src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
			if err == nil || stays != nil {
				t.Fatalf("got %d stays and %v, want an error", len(stays), err)
			}
			if !strings.HasPrefix(err.Error(), "guestway: ") {
				t.Errorf("error does not name guestway: %v", err)
			}
			var ge *guestway.Error
			if !errors.As(err, &ge) {
				t.Errorf("not a *guestway.Error: %#v", err)
			} else if tc.status >= 0 && ge.Status != tc.status {
				t.Errorf("status %d, want %d: %v", ge.Status, tc.status, err)
			}
			adaptertest.Wraps(t, err, tc.is, tc.isNot)
			adaptertest.Mentions(t, err, tc.contains...)
			if tc.check != nil {
				tc.check(t, err)
			}
			if errors.Is(err, reconcile.ErrUnavailable) != tc.unavailable {
				t.Errorf("%v: ErrUnavailable is %v, want %v", err, !tc.unavailable, tc.unavailable)
			}
			secretFree(t, err)
		})
	}
}

// rateLimited checks for a guestway RateLimitedError with retry.
func rateLimited(retry time.Duration) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		adaptertest.RateLimited(t, err, reconcile.SystemGuestway, retry)
	}
}

// TestTolerantDecoding reads integer ids, unknown fields and statuses, a
// null or 0 unit, missing guests and an answer exactly at the size cap.
func TestTolerantDecoding(t *testing.T) {
	t.Parallel()
	list := `{"data":[
		{"id":1042,"status":"inquiry","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":77,"unit_id":null,
		 "guest_name":"Zoë","channel":{"name":"Airbnb"},"tags":["vip"]},
		{"id":"R2","status":"CANCELLED","arrival_date":"2026-01-31","departure_date":"2026-02-02","listing_id":"L1","unit_id":"","guests":null},
		{"id":"R3","status":"canceled","arrival_date":"2026-01-31","departure_date":"2026-02-02","listing_id":"L1","unit_id":"U9","guests":{"adults":2}},
		{"id":"R4","status":"confirmed","arrival_date":"2026-01-31","departure_date":"2026-02-02","listing_id":"L4","unit_id":0}
	],"meta":{"page":1,"per_page":50,"total":4,"has_more":false,"next":null},"links":{}}`
	accesses := `{"data":[{"id":9,"lock_id":31337,"lock_name":"Gate","pin":"` + canaryPIN + `","valid_from":"2026-01-30T15:00:00Z","valid_to":"2026-02-01T11:00:00Z","battery":0.8}]}`
	var accessRequests atomic.Int32
	srv := httptest.NewServer(byPath(jsonReply(list), func(w http.ResponseWriter, r *http.Request) {
		accessRequests.Add(1)
		jsonReply(accesses)(w, r)
	}))
	defer srv.Close()
	stays, err := newSource(t, srv.URL, nil).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stays) != 4 {
		t.Fatalf("%d stays", len(stays))
	}
	if st := stays[0]; st.Ref.ID != "1042" || st.RoomID != "77" || st.Cancelled || st.Guest != "Zoë" || st.Guests != 0 ||
		len(st.Locks) != 1 || st.Locks[0].LockID != "31337" || st.Locks[0].PIN.Reveal() != canaryPIN {
		t.Errorf("first stay: %+v", st)
	}
	if st := stays[1]; !st.Cancelled || st.RoomID != "L1" || st.Locks != nil {
		t.Errorf("second stay: %+v", st)
	}
	if st := stays[2]; !st.Cancelled || st.RoomID != "U9" || st.Guests != 2 {
		t.Errorf("third stay: %+v", st)
	}
	if st := stays[3]; st.RoomID != "L4" {
		t.Errorf("fourth stay (unit_id 0): room %q, want its listing L4", st.RoomID)
	}
	if n := accessRequests.Load(); n != 2 {
		t.Errorf("%d accesses requests, want 2 (the others are cancelled)", n)
	}
	if s := fmt.Sprintf("%v %+v %#v", stays[0].Locks, stays[0], stays[0]); strings.Contains(s, canaryPIN) {
		t.Errorf("a printed stay shows the PIN: %s", s)
	}

	// An answer exactly at the cap is read.
	srv2 := httptest.NewServer(jsonReply(padded(2048)))
	defer srv2.Close()
	if _, err := newSource(t, srv2.URL, func(o *guestway.Options) { o.MaxResponseBytes = 2048 }).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05")); err != nil {
		t.Errorf("answer at the cap: %v", err)
	}
}

// TestCancelledBesideTheStatus: a server that says a cancellation or a
// deletion beside a status it leaves "confirmed" (is_cancelled,
// cancelled_at, deleted_at; the Guestway document names no such field)
// has those reservations read as cancelled, and asks no PIN for them; a
// false flag, or a time that is null, blank, "null" or a zero date
// (0000-00-00 00:00:00, as a database writes an unset one) changes
// nothing.
func TestCancelledBesideTheStatus(t *testing.T) {
	t.Parallel()
	res := func(id, extra string) string {
		return `{"id":"` + id + `","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1"` + extra + `}`
	}
	list := `{"data":[` + strings.Join([]string{
		res("R1", `,"is_cancelled":true`),
		res("R2", `,"cancelled_at":"2026-01-29T10:00:00Z"`),
		res("R3", `,"deleted_at":"2026-01-29T10:00:00Z"`),
		res("R4", `,"is_cancelled":"1","canceled_at":null`),
		res("R5", `,"is_cancelled":false,"cancelled_at":null,"deleted_at":""`),
		res("R6", `,"deleted_at":"0000-00-00 00:00:00"`),
		res("R7", `,"cancelled_at":"null","is_cancelled":"no"`),
	}, ",") + `],"meta":{"page":1,"per_page":50,"total":7,"has_more":false}}`
	var accessRequests atomic.Int32
	srv := httptest.NewServer(byPath(jsonReply(list), func(w http.ResponseWriter, r *http.Request) {
		accessRequests.Add(1)
		jsonReply(`{"data":[]}`)(w, r)
	}))
	defer srv.Close()
	stays, err := newSource(t, srv.URL, nil).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, st := range stays {
		got[st.Ref.ID] = st.Cancelled
	}
	want := map[string]bool{"R1": true, "R2": true, "R3": true, "R4": true, "R5": false, "R6": false, "R7": false}
	if !maps.Equal(got, want) {
		t.Errorf("cancelled = %v, want %v", got, want)
	}
	if n := accessRequests.Load(); n != 3 {
		t.Errorf("%d accesses requests, want 3 (R5, R6 and R7, the live ones)", n)
	}
}

// TestDatesAsDateTimes: arrival and departure dates sent as date-times
// (the Guestway document names no field; keysync asks for YYYY-MM-DD) are
// read for their day in the property's zone, not failed run after run: a
// local date-time by its date, one at midnight in its offset by the date
// written, an instant by its day in the zone (local midnight written in
// UTC included). Without the zone, an instant fails the read.
func TestDatesAsDateTimes(t *testing.T) {
	t.Parallel()
	lj, err := time.LoadLocation("Europe/Ljubljana")
	if err != nil {
		t.Fatal(err)
	}
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arrival, departure, want string
		zone                     *time.Location // nil: Ljubljana
	}{
		{"2026-01-30", "2026-02-01", "2026-01-30..2026-02-01", nil},
		{"2026-01-30T15:00:00", "2026-02-01T10:00:00", "2026-01-30..2026-02-01", nil},
		{"2026-01-30 15:00:00", "2026-02-01 10:00:00", "2026-01-30..2026-02-01", nil},
		{"2026-01-30T00:00:00Z", "2026-02-01T00:00:00.000Z", "2026-01-30..2026-02-01", nil},
		{"2026-01-30T00:00:00-08:00", "2026-02-01T00:00:00+09:00", "2026-01-30..2026-02-01", nil},
		{"2026-01-30T15:00:00+01:00", "2026-02-01T11:00:00+01:00", "2026-01-30..2026-02-01", nil},
		{"2026-01-30T14:00:00Z", "2026-02-01T10:00:00Z", "2026-01-30..2026-02-01", nil},
		{"2026-01-29T23:00:00Z", "2026-01-31T23:00:00Z", "2026-01-30..2026-02-01", nil}, // local midnight, in UTC
		// A 16:00 check-in in Los Angeles is 00:00Z the next day: with a
		// timed check-out beside it, an instant, not a date written.
		{"2026-01-31T00:00:00Z", "2026-02-01T19:00:00Z", "2026-01-30..2026-02-01", la},
		{"2026-01-30T00:00:00Z", "2026-02-01T00:00:00Z", "2026-01-30..2026-02-01", la}, // both midnight: dates written
		// A timed check-in beside a midnight check-out, west of UTC: the
		// check-out's later day (as written), not the night before.
		{"2026-01-30T23:00:00Z", "2026-02-01T00:00:00Z", "2026-01-30..2026-02-01", la},
		{"2026-01-30T15:00:00-08:00", "2026-02-01T00:00:00-08:00", "2026-01-30..2026-02-01", la},
		// East of UTC the two days agree.
		{"2026-01-30T14:00:00Z", "2026-02-01T00:00:00Z", "2026-01-30..2026-02-01", nil},
	} {
		list := `{"data":[{"id":"R1","status":"confirmed","arrival_date":"` + tc.arrival + `","departure_date":"` + tc.departure + `","listing_id":"L1"}],"meta":{"page":1,"per_page":50,"has_more":false}}`
		srv := httptest.NewServer(byPath(jsonReply(list), noAccesses))
		stays, err := newSource(t, srv.URL, func(o *guestway.Options) { o.Location = cmp.Or(tc.zone, lj) }).Stays(context.Background(), day(t, "2026-01-28"), day(t, "2026-02-05"))
		srv.Close()
		if err != nil || len(stays) != 1 {
			t.Errorf("%s..%s: %v, %v", tc.arrival, tc.departure, stays, err)
			continue
		}
		if got := stays[0].Arrival.String() + ".." + stays[0].Departure.String(); got != tc.want {
			t.Errorf("%s..%s: read %s, want %s", tc.arrival, tc.departure, got, tc.want)
		}
	}
	list := `{"data":[{"id":"R1","status":"confirmed","arrival_date":"2026-01-30T14:00:00Z","departure_date":"2026-02-01","listing_id":"L1"}],"meta":{"page":1,"per_page":50,"has_more":false}}`
	srv := httptest.NewServer(byPath(jsonReply(list), noAccesses))
	defer srv.Close()
	if stays, err := newSource(t, srv.URL, nil).Stays(context.Background(), day(t, "2026-01-28"), day(t, "2026-02-05")); err != nil || len(stays) != 1 || !strings.Contains(stays[0].Unreadable, "arrival_date is a date-time") {
		t.Errorf("an instant without the zone: %+v, %v; want the reservation marked unreadable, naming arrival_date", stays, err)
	}
}

// TestUnreadableReservations: a reservation whose dates keysync cannot
// read is returned marked Unreadable, with why (naming the field, quoting
// no value), without dates but in its room, and its accesses are not
// asked for; the
// reservations beside it are read as ever, and a cancelled one says so.
func TestUnreadableReservations(t *testing.T) {
	t.Parallel()
	var accessesOf []string
	var mu sync.Mutex
	list := listPage(1, false,
		res("R1", "2026-01-30", "2026-02-01"),
		res("R7", "30.01.2026", "2026-02-01"),
		res("R8", "2026-01-30", canaryPIN),
		res("R9", "2026-02-03", "2026-02-01"),
		`{"id":"R10","status":"cancelled","arrival_date":"soon","departure_date":"2026-02-01","listing_id":"L1"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/accesses") {
			mu.Lock()
			accessesOf = append(accessesOf, r.URL.Path)
			mu.Unlock()
			noAccesses(w, r)
			return
		}
		jsonReply(list)(w, r)
	}))
	defer srv.Close()
	stays, err := newSource(t, srv.URL, nil).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil || len(stays) != 5 {
		t.Fatalf("got %d stays, %v; want 5 and no error", len(stays), err)
	}
	want := map[string]string{
		"R1":  "",
		"R7":  "arrival_date is not a YYYY-MM-DD date",
		"R8":  "departure_date is not a YYYY-MM-DD date",
		"R9":  "departure_date is before arrival_date",
		"R10": "arrival_date is not a YYYY-MM-DD date",
	}
	for _, st := range stays {
		w, ok := want[st.Ref.ID]
		switch {
		case !ok:
			t.Errorf("stay %s: not in the list", st.Ref.ID)
		case w == "" && (st.Unreadable != "" || st.Arrival.IsZero()):
			t.Errorf("stay %s: unreadable %q, arrival %s; want it read", st.Ref.ID, st.Unreadable, st.Arrival)
		case w != "" && (!strings.HasPrefix(st.Unreadable, w) || !st.Arrival.IsZero() || !st.Departure.IsZero() || st.RoomID != "L1"):
			t.Errorf("stay %s: unreadable %q, dates %s..%s, room %q; want %q, no dates, its listing's room L1", st.Ref.ID, st.Unreadable, st.Arrival, st.Departure, st.RoomID, w)
		case strings.Contains(st.Unreadable, canaryPIN) || strings.Contains(st.Unreadable, "30.01.2026"):
			t.Errorf("stay %s: why quotes a field's value: %q", st.Ref.ID, st.Unreadable)
		case st.Cancelled != (st.Ref.ID == "R10"):
			t.Errorf("stay %s: cancelled %v", st.Ref.ID, st.Cancelled)
		}
	}
	if !slices.Equal(accessesOf, []string{"/open/v1/reservations/R1/accesses"}) {
		t.Errorf("accesses asked of %v, want of R1 alone", accessesOf)
	}
}

// TestDuplicateAcrossPages keeps one stay per id when offset pages shift.
func TestDuplicateAcrossPages(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(byPath(paged(func(n int) string {
		if n == 1 {
			return listPage(1, true, res("R1", "2026-01-30", "2026-02-01"), res("R2", "2026-01-30", "2026-02-01"))
		}
		return listPage(2, false, res("R2", "2026-01-30", "2026-02-03"), res("R3", "2026-01-31", "2026-02-01"))
	}), noAccesses))
	defer srv.Close()
	stays, err := newSource(t, srv.URL, nil).Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(stays); strings.Join(got, " ") != "R1 R2 R3" || stays[1].Departure != day(t, "2026-02-03") {
		t.Errorf("stays %q, R2 departs %s; want R1 R2 R3 with R2's later data", got, stays[1].Departure)
	}
}

// emptyList answers the reservations list with no reservations: after a
// 404, StaysByID reads the list's first page for a reservation to check
// the path with, and finding none lets the 404 stand.
func emptyList(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/open/v1/reservations" {
			jsonReply(`{"data":[],"meta":{"page":1,"per_page":50,"total":0,"has_more":false}}`)(w, r)
			return
		}
		next(w, r)
	}
}

func TestStaysByIDCanned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		handler  http.HandlerFunc
		want     int
		contains string
	}{
		{"404 is absent", reply(404, "application/json", echo), 0, ""},
		{"500 is an error", reply(500, "application/json", echo), -1, "get reservation R1: HTTP 500"},
		{"no data", jsonReply(`{}`), -1, `no "data" object`},
		{"another reservation", jsonReply(`{"data":` + res("R2", "2026-01-30", "2026-02-01") + `}`), -1, "answered reservation R2"},
		{"bad date is unreadable", jsonReply(`{"data":` + res("R1", "2026-01-30", "soon") + `}`), 1, "departure_date is not a YYYY-MM-DD date"},
		{"cancelled is absent", jsonReply(`{"data":{"id":"R1","status":"cancelled","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1"}}`), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				paths = append(paths, r.URL.EscapedPath())
				emptyList(tc.handler)(w, r)
			}))
			defer srv.Close()
			stays, err := newSource(t, srv.URL, func(o *guestway.Options) { o.Concurrency = 1 }).StaysByID(context.Background(), []string{"R1"})
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), tc.contains) {
					t.Errorf("err = %v, want one containing %q", err, tc.contains)
				}
				secretFree(t, err)
				return
			}
			if err != nil || len(stays) != tc.want {
				t.Errorf("got %d stays, %v; want %d", len(stays), err, tc.want)
			}
			for _, st := range stays {
				if !strings.HasPrefix(st.Unreadable, tc.contains) || tc.contains == "" && st.Unreadable != "" || strings.Contains(st.Unreadable, "soon") {
					t.Errorf("stay %s: unreadable %q, want %q", st.Ref.ID, st.Unreadable, tc.contains)
				}
			}
			want := []string{"/open/v1/reservations/R1"}
			if tc.name == "404 is absent" {
				want = append(want, "/open/v1/reservations") // the path checked, against nothing
			}
			if !slices.Equal(paths, want) {
				t.Errorf("requests %q, want %q", paths, want)
			}
		})
	}

	// Ids are escaped into the path.
	var got []string
	srv := httptest.NewServer(emptyList(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath())
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	if _, err := newSource(t, srv.URL, func(o *guestway.Options) { o.Concurrency = 1 }).StaysByID(context.Background(), []string{"a/b c"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "/open/v1/reservations/a%2Fb%20c" {
		t.Errorf("path %q", got)
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	from, to := day(t, "2026-01-30"), day(t, "2026-02-05")

	// Nothing listens. Every call is a GET, so the refused connection is
	// tried Retry.Attempts times.
	meter := &reconcile.Meter{}
	_, err := newSource(t, adaptertest.ClosedURL(t), func(o *guestway.Options) { o.Meter = meter }).Stays(context.Background(), from, to)
	var ge *guestway.Error
	if !errors.As(err, &ge) || ge.Status != 0 || !strings.Contains(err.Error(), "no answer") || strings.Contains(err.Error(), "from=") ||
		!errors.Is(err, reconcile.ErrUnavailable) {
		t.Errorf("refused connection: %v", err)
	}
	if got := meter.Snapshot()[reconcile.SystemGuestway]; got.Reads != 4 {
		t.Errorf("refused connection: %d attempts, want 4", got.Reads)
	}
	secretFree(t, err)

	// The pacer is waited on before each request: one that admits nothing
	// lets nothing through.
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, err = newSource(t, srv.URL, func(o *guestway.Options) {
		o.Pacer = httpapi.NewPacer(1, 0, o.Retry.Clock) // burst 0: never admits
	}).Stays(context.Background(), from, to)
	if err == nil || !strings.Contains(err.Error(), "waiting for the rate limiter") || hits.Load() != 0 || errors.Is(err, reconcile.ErrUnavailable) {
		t.Errorf("refusing pacer: %v, %d requests", err, hits.Load())
	}

	// A server that hangs is cut off by the context.
	block := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(block)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = newSource(t, hang.URL, nil).Stays(ctx2, from, to)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, reconcile.ErrUnavailable) {
		t.Errorf("hanging server: %v, want context.DeadlineExceeded (the run stopped; not an outage)", err)
	}
	secretFree(t, err)
}
