package sandbox

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// Paths, page sizes and the API document's limits. The limits apply only when set
// in Options (see Options.WithSeedLimits).
const (
	// DefaultReservationsPath is the reservation list.
	DefaultReservationsPath = "/open/v1/reservations"
	// DefaultReservationPath is one reservation.
	DefaultReservationPath = "/open/v1/reservations/{id}"
	// DefaultAccessesPath is one reservation's lock accesses.
	DefaultAccessesPath = "/open/v1/reservations/{id}/accesses"
	// DefaultPerPage is the page size when per_page is omitted.
	DefaultPerPage = 50
	// MaxPerPage is the largest per_page accepted (400 above).
	MaxPerPage = 100
	// DefaultRatePerSecond is the API document's sustained rate per partner key.
	DefaultRatePerSecond = sandboxkit.SeedPerSecond
	// DefaultBurst is the API document's burst per partner key, used when Options.Burst is zero.
	DefaultBurst = sandboxkit.SeedBurst
	// DefaultDailyCap is the API document's requests per partner key per UTC day.
	DefaultDailyCap = sandboxkit.SeedDailyCap
	// MaxBodyBytes is the largest admin request body accepted.
	MaxBodyBytes = sandboxkit.MaxBodyBytes
)

// Token scopes, as the Guestway Open API names them. A reservation endpoint needs
// ScopeReservationsRead, the accesses endpoint ScopeAccessesRead; either
// Full Access scope grants both.
const (
	// ScopeReservationsRead reads reservations.
	ScopeReservationsRead = "Reservations - Read"
	// ScopeAccessesRead reads a reservation's lock accesses.
	ScopeAccessesRead = "Reservation Accesses - Read"
	// ScopeFullAccessRead reads everything.
	ScopeFullAccessRead = "Full Access - Read"
	// ScopeFullAccessEdit reads and writes everything.
	ScopeFullAccessEdit = "Full Access - Edit"
)

// Error codes, sent as {"error": code, "message": "..."} with every API
// failure.
const (
	// CodeInvalidAPIKey (401): X-Api-Key missing or not a partner key; the
	// token was not checked.
	CodeInvalidAPIKey = "invalid_api_key"
	// CodeUnauthorized (401): bearer token missing or unknown.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden (403): the token lacks the scope the endpoint needs.
	CodeForbidden = "forbidden"
	// CodeRateLimited (429, with Retry-After in seconds).
	CodeRateLimited = "rate_limited"
	// CodeNotFound (404): no such route or reservation.
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed (405): the API is read-only.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeBadRequest (400): a query parameter is malformed or out of range.
	CodeBadRequest = "bad_request"
)

// Options configures a Server. The zero value is usable: no partner keys or
// tokens, business clock at time.Now(), default paths, no rate limits.
type Options struct {
	// PartnerKeys are the valid X-Api-Key values.
	PartnerKeys []string
	// Tokens maps each valid bearer token to its scopes.
	Tokens map[string][]string
	// Now starts the business clock; zero means time.Now().
	Now time.Time
	// Rates limit each partner key (RatePerSecond, Burst and DailyCap) on
	// the clock RateNow; the zero value sets no limits.
	sandboxkit.Rates
	// ReservationsPath, ReservationPath and AccessesPath override the
	// Default… paths; the last two hold {id}.
	ReservationsPath, ReservationPath, AccessesPath string
}

// WithSeedLimits returns o with the API document's rate limits (5 req/s, burst 10,
// 10,000 a day, per partner key) filled into the fields that are zero.
func (o Options) WithSeedLimits() Options {
	o.Rates = o.Rates.WithSeedLimits()
	return o
}

// Request is one entry of the request log: every API request (not admin),
// whatever its outcome.
type Request struct {
	// Time is by Options.RateNow.
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query"`
	// Endpoint is "reservations", "reservation" or "accesses", or "" when
	// the path matched none.
	Endpoint      string `json:"endpoint"`
	ReservationID string `json:"reservation_id,omitempty"`
	// PartnerKey is the X-Api-Key sent, "" when none (not a secret, per the API document).
	PartnerKey string `json:"partner_key"`
	// Token is the bearer token sent, masked as the Guestway UI shows it
	// (its last three characters), "" when none.
	Token  string `json:"token"`
	Status int    `json:"status"`
	// Code is the error code of a failure, "" on success.
	Code string `json:"code,omitempty"`
}

// Server is the in-memory Guestway fake. It serves the Open API subset in
// the package comment and the admin API under /_sandbox/; its methods give
// tests the same control. A Server is safe for concurrent use.
type Server struct {
	opts  Options
	admin *http.ServeMux
	paths []route
	*clock
	requestLog
	limiter *sandboxkit.Limiter

	mu         sync.Mutex
	maxPerPage int // MaxPerPage, or less (SetMaxPerPage)
	noHasMore  bool
	noOneGet   bool
	ignorePage bool
	// Switches for what the Guestway document leaves open (see their setters).
	accessesNotFoundEmpty bool
	listNotFoundEmpty     bool
	cursorMeta            bool
	shortPages            bool // SetShortPages
	cancelledAs           bool
	pinAsNumber           bool
	bareLists             bool
	goneAsNull            bool // SetGoneAsNull
	keys                  map[string]bool
	tokens                map[string][]string
	listings              map[string]string
	listingOrder          []string
	res                   map[string]*Reservation
	nextRes               int
	nextAccess            int
}

// clock and requestLog give Server the kit's Now, SetNow, Advance, Requests
// and ResetRequests. SeedDemo builds around the business clock, and access
// windows default from its zone.
type (
	clock      = sandboxkit.Clock
	requestLog = sandboxkit.RequestLog[Request]
)

// route is one API endpoint: its path split into segments, "{id}" for the
// reservation id, and the scope it needs.
type route struct {
	endpoint string
	segments []string
	scope    string
}

// New returns a Server with no listings or reservations.
func New(opts Options) *Server {
	opts.ReservationsPath = cmp.Or(opts.ReservationsPath, DefaultReservationsPath)
	opts.ReservationPath = cmp.Or(opts.ReservationPath, DefaultReservationPath)
	opts.AccessesPath = cmp.Or(opts.AccessesPath, DefaultAccessesPath)
	s := &Server{
		opts:     opts,
		clock:    sandboxkit.NewClock(opts.Now),
		limiter:  opts.Limiter().WithMessage(refusal),
		keys:     map[string]bool{},
		tokens:   map[string][]string{},
		listings: map[string]string{},
		res:      map[string]*Reservation{},
		paths: []route{
			{"accesses", split(opts.AccessesPath), ScopeAccessesRead},
			{"reservation", split(opts.ReservationPath), ScopeReservationsRead},
			{"reservations", split(opts.ReservationsPath), ScopeReservationsRead},
		},
	}
	for _, k := range opts.PartnerKeys {
		s.keys[k] = true
	}
	for t, scopes := range opts.Tokens {
		s.tokens[t] = slices.Clone(scopes)
	}
	s.admin = s.adminRoutes()
	return s
}

// AddPartnerKey makes key a valid X-Api-Key.
func (s *Server) AddPartnerKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = true
}

// AddToken makes token a valid bearer token with the given scopes, or
// replaces the scopes of an existing one.
func (s *Server) AddToken(token string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = slices.Clone(scopes)
}

// RevokeToken makes token invalid, as the trash icon in Settings → API
// Access does.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// ServeHTTP serves the admin API under /_sandbox/ and the Open API
// everywhere else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sandboxkit.Route(w, r, s.admin, s.serveAPI)
}

// ---- Open API ---------------------------------------------------------------

type result struct {
	status     int
	body       any
	code       string
	retryAfter int    // seconds; 0: no Retry-After header
	link       string // the Link header; "": none
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func fail(status int, code, format string, args ...any) result {
	return result{status: status, code: code, body: errorBody{Error: code, Message: fmt.Sprintf(format, args...)}}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Time:       s.limiter.Now(),
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.RawQuery,
		PartnerKey: r.Header.Get("X-Api-Key"),
	}
	res := s.api(r, &rec)
	rec.Status, rec.Code = res.status, res.code
	s.Append(rec)
	if res.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodGet)
	}
	if res.link != "" {
		w.Header().Set("Link", res.link)
	}
	sandboxkit.Answer(w, res.status, res.body, res.retryAfter)
}

// api applies the API document's checks in its order (partner key, then token,
// then scope, then rate limits) and answers the request.
func (s *Server) api(r *http.Request, rec *Request) result {
	token, hasBearer := sandboxkit.Bearer(r.Header.Get("Authorization"))
	if hasBearer {
		rec.Token = mask(token)
	}
	s.mu.Lock()
	keyOK := s.keys[rec.PartnerKey] && rec.PartnerKey != ""
	scopes, tokenOK := s.tokens[token]
	s.mu.Unlock()
	if !keyOK {
		return fail(http.StatusUnauthorized, CodeInvalidAPIKey,
			"the X-Api-Key header is missing or is not a valid Partnership API Key; contact support@guestway.io for one")
	}
	if !hasBearer || token == "" || !tokenOK {
		return fail(http.StatusUnauthorized, CodeUnauthorized,
			"the Organization Access Token is missing, revoked or incorrect; send Authorization: Bearer gw_...")
	}

	rt, id, ok := s.match(r.URL.EscapedPath())
	if ok && rt.endpoint == "reservation" && sandboxkit.Load(&s.mu, &s.noOneGet) {
		ok = false
	}
	if !ok {
		return fail(http.StatusNotFound, CodeNotFound, "no such endpoint")
	}
	rec.Endpoint, rec.ReservationID = rt.endpoint, id
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return fail(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "this endpoint accepts GET only")
	}
	if !slices.Contains(scopes, rt.scope) && !slices.Contains(scopes, ScopeFullAccessRead) && !slices.Contains(scopes, ScopeFullAccessEdit) {
		return fail(http.StatusForbidden, CodeForbidden, "the token lacks the %q scope this resource requires", rt.scope)
	}
	if secs, msg := s.limiter.Admit(rec.PartnerKey); secs > 0 {
		res := fail(http.StatusTooManyRequests, CodeRateLimited, "%s", msg)
		res.retryAfter = secs
		return res
	}

	switch rt.endpoint {
	case "reservations":
		return s.list(r.URL.Query())
	case "reservation":
		s.mu.Lock()
		defer s.mu.Unlock()
		res, ok := s.res[id]
		switch {
		case !ok && s.goneAsNull:
			return result{status: http.StatusOK, body: map[string]any{"data": nil}}
		case !ok:
			return fail(http.StatusNotFound, CodeNotFound, "reservation not found")
		}
		return s.data(s.wire(res))
	default: // accesses
		s.mu.Lock()
		defer s.mu.Unlock()
		res, ok := s.res[id]
		if !ok {
			return fail(http.StatusNotFound, CodeNotFound, "reservation not found")
		}
		if len(res.Accesses) == 0 && s.accessesNotFoundEmpty {
			return fail(http.StatusNotFound, CodeNotFound, "no accesses found")
		}
		var data any = sandboxkit.NonNil(slices.Clone(res.Accesses))
		if s.pinAsNumber {
			data = pinsAsNumbers(res.Accesses)
		}
		return s.data(data)
	}
}

// data answers v, a reservation or a reservation's accesses, as
// {"data": v}, or bare (SetBareLists). The caller holds s.mu.
func (s *Server) data(v any) result {
	if s.bareLists {
		return result{status: http.StatusOK, body: v}
	}
	return result{status: http.StatusOK, body: map[string]any{"data": v}}
}

// pinsAsNumbers is accesses as SetPINAsNumber answers them: each PIN of
// digits a JSON number, its leading zeros lost.
func pinsAsNumbers(accesses []Access) []map[string]any {
	out := make([]map[string]any, 0, len(accesses))
	for _, a := range accesses {
		var m map[string]any
		b, _ := json.Marshal(a)
		_ = json.Unmarshal(b, &m)
		if n, err := strconv.ParseUint(a.PIN, 10, 63); err == nil {
			m["pin"] = n
		}
		out = append(out, m)
	}
	return out
}

// list answers the reservation list: departure_date > from and
// arrival_date <= to, by arrival date then id, one page.
func (s *Server) list(q url.Values) result {
	var from, to string
	for _, p := range []struct {
		name string
		v    *string
	}{{"from", &from}, {"to", &to}} {
		v := q.Get(p.name)
		if _, err := time.Parse(DateLayout, v); v != "" && err != nil {
			return fail(http.StatusBadRequest, CodeBadRequest, "%s: want YYYY-MM-DD", p.name)
		}
		*p.v = v
	}
	page, perPage := 1, DefaultPerPage
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fail(http.StatusBadRequest, CodeBadRequest, "page: want an integer of at least 1")
		}
		page = n
	}
	maxPer := cmp.Or(sandboxkit.Load(&s.mu, &s.maxPerPage), MaxPerPage)
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPer {
			return fail(http.StatusBadRequest, CodeBadRequest, "per_page: want an integer from 1 to %d", maxPer)
		}
		perPage = n
	}
	perPage = min(perPage, maxPer)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ignorePage {
		page = 1
	}
	var match []*Reservation
	for _, r := range s.sorted() {
		if (from == "" || r.DepartureDate > from) && (to == "" || r.ArrivalDate <= to) {
			match = append(match, r)
		}
	}
	data := []wireReservation{}
	served := perPage
	if s.shortPages {
		served = max(1, perPage/2)
	}
	start := len(match)
	if page-1 < len(match)/served+1 { // no overflow for absurd pages
		start = min(len(match), (page-1)*served)
	}
	if c := q.Get("cursor"); c != "" && s.cursorMeta {
		// A cursor this server handed out (next_cursor "cN": the
		// offset N) decides, whatever page says.
		n, err := strconv.Atoi(strings.TrimPrefix(c, "c"))
		if !strings.HasPrefix(c, "c") || err != nil || n < 0 {
			return fail(http.StatusBadRequest, CodeBadRequest, "cursor: not one this server gave")
		}
		start = min(len(match), n)
	}
	end := min(len(match), start+served)
	for _, r := range match[start:end] {
		data = append(data, s.wire(r))
	}
	if len(data) == 0 && s.listNotFoundEmpty {
		return fail(http.StatusNotFound, CodeNotFound, "no reservations found")
	}
	meta := map[string]any{"page": page, "per_page": perPage, "total": len(match), "has_more": end < len(match)}
	if s.noHasMore || s.shortPages {
		delete(meta, "has_more")
	}
	if s.shortPages {
		delete(meta, "total")
	}
	if s.ignorePage {
		delete(meta, "page")
	}
	if s.cursorMeta {
		meta = map[string]any{"per_page": perPage}
		if end < len(match) {
			meta["next_cursor"] = fmt.Sprintf("c%d", end)
		}
	}
	if s.bareLists {
		// The page alone; its Link header says what follows, as RFC 8288
		// servers do (the first page's link always, as GitHub's API).
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		links := []string{}
		if end < len(match) {
			next.Set("page", strconv.Itoa(page+1))
			links = append(links, fmt.Sprintf(`<%s?%s>; rel="next"`, s.opts.ReservationsPath, next.Encode()))
		}
		next.Set("page", "1")
		links = append(links, fmt.Sprintf(`<%s?%s>; rel="first"`, s.opts.ReservationsPath, next.Encode()))
		return result{status: http.StatusOK, body: data, link: strings.Join(links, ", ")}
	}
	return result{status: http.StatusOK, body: map[string]any{"data": data, "meta": meta}}
}

// wireReservation is a reservation as the API sends it.
type wireReservation struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	ArrivalDate   string  `json:"arrival_date"`
	DepartureDate string  `json:"departure_date"`
	ListingID     string  `json:"listing_id"`
	UnitID        *string `json:"unit_id"`
	GuestName     string  `json:"guest_name"`
	Guests        Guests  `json:"guests"`
}

func (s *Server) wire(r *Reservation) wireReservation {
	status := r.Status
	if status == StatusCancelled && s.cancelledAs {
		status = CancelledByGuest
	}
	w := wireReservation{
		ID: r.ID, Status: status, ArrivalDate: r.ArrivalDate, DepartureDate: r.DepartureDate,
		ListingID: r.ListingID, GuestName: r.GuestName, Guests: r.Guests,
	}
	if r.UnitID != "" {
		u := r.UnitID
		w.UnitID = &u
	}
	if r.UnreadableDates {
		w.ArrivalDate = UnreadableDate
	}
	return w
}

// UnreadableDate is the arrival_date a reservation with UnreadableDates
// is served with.
const UnreadableDate = "TBD"

// match finds the endpoint of an escaped path and the reservation id in it.
func (s *Server) match(escaped string) (route, string, bool) {
	segs := split(escaped)
	for _, rt := range s.paths {
		if len(rt.segments) != len(segs) {
			continue
		}
		id, ok := "", true
		for i, want := range rt.segments {
			got, err := url.PathUnescape(segs[i])
			switch {
			case err != nil:
				ok = false
			case want == "{id}" && got != "":
				id = got
			case want != got:
				ok = false
			}
		}
		if ok {
			return rt, id, true
		}
	}
	return route{}, "", false
}

func split(path string) []string {
	return strings.Split(strings.Trim(path, "/"), "/")
}

// mask shows a token as the Guestway UI does: only its last characters.
func mask(token string) string {
	if len(token) <= 6 {
		return strings.Repeat("*", len(token))
	}
	return "*********" + token[len(token)-3:]
}

// refusal words a 429 as Guestway does.
func refusal(r sandboxkit.Refusal, l sandboxkit.Limits) string {
	if r.Daily {
		return fmt.Sprintf("daily limit of %d requests reached; retry after %d s or contact support@guestway.io for higher limits", l.DailyCap, r.RetryAfter)
	}
	return fmt.Sprintf("rate limit of %g requests per second (burst %d) exceeded; retry after %d s", l.PerSecond, l.Burst, r.RetryAfter)
}

// SetMaxPerPage lowers the largest per_page the list accepts (400 above;
// zero: MaxPerPage), and the page size when none is asked for with it: the
// Guestway document names no page size, and keysync asks for
// guestway.per_page (default 50).
func (s *Server) SetMaxPerPage(n int) { sandboxkit.Store(&s.mu, &s.maxPerPage, max(n, 0)) }

// SetNoHasMore leaves has_more out of the list's meta (page, per_page and
// total stay), as a server that pages by its total may: the Guestway
// document names no paging at all, and keysync reads on while total says
// reservations are left.
func (s *Server) SetNoHasMore(on bool) { sandboxkit.Store(&s.mu, &s.noHasMore, on) }

// SetIgnorePage answers every list request with its first page, whatever
// page is asked for, and leaves page out of the meta, as a server that
// pages another way might: the Guestway document names no paging. keysync
// must fail such a read, never take the first page for the whole list or
// ask for pages for ever.
func (s *Server) SetIgnorePage(on bool) { sandboxkit.Store(&s.mu, &s.ignorePage, on) }

// SetAccessesNotFoundWhenEmpty answers 404 for the accesses of a
// reservation that has none, as a server that reads "nothing found" as
// not found may: the Guestway document names no accesses call at all.
// keysync must take it as no PIN once the path is known to answer, never
// fail every guest's read for one reservation without a PIN.
func (s *Server) SetAccessesNotFoundWhenEmpty(on bool) {
	sandboxkit.Store(&s.mu, &s.accessesNotFoundEmpty, on)
}

// SetListNotFoundWhenEmpty answers 404 for a page of the reservation list
// that holds no reservation, as a server that reads "nothing found" as not
// found may: the Guestway document names no list call. keysync must take
// it as an empty list once the path is known to answer, not as a wrong
// reservations_path.
func (s *Server) SetListNotFoundWhenEmpty(on bool) { sandboxkit.Store(&s.mu, &s.listNotFoundEmpty, on) }

// SetCursorMeta answers the list's meta as a server that pages by cursor
// might: {"per_page", "next_cursor"} (the latter while reservations are
// left), no page, total or has_more; a cursor parameter it handed out
// decides where a page starts, and without one the page parameter still
// does (with SetIgnorePage, only the cursor pages). The Guestway document
// names no paging: keysync must read such a list whole (or fail), never
// take its first page for the whole list.
func (s *Server) SetCursorMeta(on bool) { sandboxkit.Store(&s.mu, &s.cursorMeta, on) }

// SetShortPages serves half the reservations a page is asked for (at
// least one) while its meta says per_page as asked, with neither total
// nor has_more, as a server that caps its pages quietly may: the Guestway
// document names no paging. keysync must read on past a short page
// rather than take it for the list's end.
func (s *Server) SetShortPages(on bool) { sandboxkit.Store(&s.mu, &s.shortPages, on) }

// CancelledByGuest is the status SetCancelledAs lists cancelled
// reservations with.
const CancelledByGuest = "CANCELLED_BY_GUEST"

// SetCancelledAs lists a cancelled reservation with the status
// CancelledByGuest instead of "cancelled": the Guestway document names no
// statuses, and a server may say who cancelled.
func (s *Server) SetCancelledAs(on bool) { sandboxkit.Store(&s.mu, &s.cancelledAs, on) }

// SetPINAsNumber answers each access's PIN of digits as a JSON number
// (a PIN 004821 as 4821), as a server that stores PINs as integers may:
// the Guestway document names no accesses payload. keysync must show no
// PIN that has lost its leading zeros, and must not fail every guest's
// read for it.
func (s *Server) SetPINAsNumber(on bool) { sandboxkit.Store(&s.mu, &s.pinAsNumber, on) }

// SetGoneAsNull answers a reservation that does not exist (deleted, or
// never made) with 200 {"data": null} instead of 404, as a server written
// from the same document may: the Guestway document names no answer for a
// reservation that is gone.
func (s *Server) SetGoneAsNull(on bool) { sandboxkit.Store(&s.mu, &s.goneAsNull, on) }

// SetBareLists answers the reservation list and a reservation's accesses
// as bare JSON arrays, the list's paging told by an RFC 8288 Link header
// (rel="next" while more follow, rel="first" always), and one
// reservation as the bare object, as many REST APIs do: the Guestway
// document shows no answer, and keysync's {"data", "meta"} is a guess.
func (s *Server) SetBareLists(on bool) { sandboxkit.Store(&s.mu, &s.bareLists, on) }

// SetNoReservationGet answers GET of one reservation 404, as a server
// without that call (or at another path) would: the Guestway document
// names no paths, and keysync looks up by id the stays it holds
// credentials for that the list did not return, taking a 404 as gone.
func (s *Server) SetNoReservationGet(on bool) { sandboxkit.Store(&s.mu, &s.noOneGet, on) }
