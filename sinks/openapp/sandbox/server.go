package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// Limits. The per-second rate, burst and daily cap are the ones the
// other API documents give (5 req/s, burst 10, 10,000 a day; the OpenApp one
// names none); they apply only when set in Options (see
// Options.WithSeedLimits).
const (
	// DefaultRatePerSecond is the sustained request rate per API key.
	DefaultRatePerSecond = sandboxkit.SeedPerSecond
	// DefaultBurst is the burst per API key, used when Options.Burst is zero.
	DefaultBurst = sandboxkit.SeedBurst
	// DefaultDailyCap is the number of requests per API key per UTC day.
	DefaultDailyCap = sandboxkit.SeedDailyCap
	// MaxBodyBytes is the largest request body accepted (HTTP 413 beyond).
	MaxBodyBytes = sandboxkit.MaxBodyBytes
)

// Options configures a Server. The zero value is usable: no API keys,
// integrations or portals, business clock at time.Now(), no rate limits.
type Options struct {
	// APIKeys maps API keys (sent as Authorization: Bearer) to org ids.
	APIKeys map[string]string
	// Integrations maps Virtual Access integration ids to org ids.
	Integrations map[string]string
	// Portals maps portal ids to integration ids.
	Portals map[string]string
	// Now starts the business clock; zero means time.Now().
	Now time.Time
	// Rates limit each API key (RatePerSecond, Burst and DailyCap) on the
	// clock RateNow; the zero value sets no limits.
	sandboxkit.Rates
	// NoList answers the invite list (GET …/access-invites) 405, as an
	// OpenApp without that call would: the OpenApp document shows create,
	// update and delete only, and keysync lists invites to adopt what a
	// guest holds after its state was lost. SetNoList switches it at run
	// time.
	NoList bool
	// ListWithoutTokens leaves invite_token and portal_ids out of the
	// invite list, as an OpenApp that shows a token only when it makes the
	// invite may: keysync reads them back to tell which room an adopted
	// invite opens and whether a QR key carries it. SetListWithoutTokens
	// switches it at run time.
	ListWithoutTokens bool
	// PutOnlyNarrows reads the OpenApp document's PUT literally ("disable
	// (is_enabled: false) or narrow validity"): an update may switch the
	// invite off or on and move its window inside the one it has; a wider
	// window or new portals are 422. keysync assumes PUT takes the create
	// fields. SetPutOnlyNarrows switches it at run time.
	PutOnlyNarrows bool
}

// WithSeedLimits returns o with the limits every keysync sandbox enforces
// (5 req/s, burst 10, 10,000 a day) filled into the fields that are zero.
func (o Options) WithSeedLimits() Options {
	o.Rates = o.Rates.WithSeedLimits()
	return o
}

// Request is one entry of the request log: every request to the
// integration and public routes, whatever its outcome. Invite tokens in
// paths are replaced by "[token]".
type Request struct {
	// Time is by Options.RateNow.
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	// Org is the caller's organisation, or "" when the API key was refused
	// or the route is public.
	Org string `json:"org"`
}

// Server is the in-memory OpenApp fake. It serves the integration and
// public routes and the admin API under /_sandbox/; its methods give tests
// the same control directly. A Server is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux
	*clock
	requestLog
	limiter *sandboxkit.Limiter

	mu           sync.Mutex
	keys         map[string]string  // API key -> org
	integrations map[string]string  // integration -> org
	portals      map[string]string  // portal -> integration
	invites      map[string]*invite // by link id
	byToken      map[string]*invite
	order        []string // link ids, oldest first
	nextID       int
	noList       bool // Options.NoList
	noTokens     bool // Options.ListWithoutTokens
	maxPerPage   int  // MaxPerPage, or less (SetMaxPerPage)
	narrowOnly   bool // Options.PutOnlyNarrows
	frozen       bool // SetChangesForbidden
	nameLimit    int  // SetNameLimit
	putConflicts bool // SetPutConflicts
	putNotFound  bool // SetPutNotFound
	offAsStatus  bool // SetDisabledAsStatus
	noHasMore    bool // SetListWithoutHasMore
	refusePast   bool // SetRefusePastStart
}

// clock and requestLog give Server the kit's Now, SetNow, Advance, Requests
// and ResetRequests. The business clock is the "now" of invites created
// without a start, and of the guest side's validity checks.
type (
	clock      = sandboxkit.Clock
	requestLog = sandboxkit.RequestLog[Request]
)

// New returns a Server holding the keys, integrations and portals of opts
// and no invites.
func New(opts Options) *Server {
	s := &Server{
		opts:         opts,
		clock:        sandboxkit.NewClock(opts.Now),
		limiter:      opts.Limiter(),
		keys:         map[string]string{},
		integrations: map[string]string{},
		portals:      map[string]string{},
		invites:      map[string]*invite{},
		byToken:      map[string]*invite{},
		noList:       opts.NoList,
		noTokens:     opts.ListWithoutTokens,
		narrowOnly:   opts.PutOnlyNarrows,
	}
	for k, org := range opts.APIKeys {
		s.keys[k] = org
	}
	for id, org := range opts.Integrations {
		s.integrations[id] = org
	}
	for id, integration := range opts.Portals {
		s.portals[id] = integration
	}
	s.mux = s.routes()
	return s
}

// ServeHTTP serves the integration routes, the public invite routes and
// the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// AddAPIKey lets apiKey act for org.
func (s *Server) AddAPIKey(apiKey, org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[apiKey] = org
}

// AddIntegration adds a Virtual Access integration to org.
func (s *Server) AddIntegration(id, org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.integrations[id] = org
}

// AddPortal adds a portal to integration, or moves it there.
func (s *Server) AddPortal(id, integration string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.portals[id] = integration
}

// Portal is a portal as the admin API lists it.
type Portal struct {
	ID          string `json:"id"`
	Integration string `json:"integration_id"`
	// Org is the integration's organisation, or "" if the integration is unknown.
	Org string `json:"org_id"`
}

// Portals returns every portal, by id.
func (s *Server) Portals() []Portal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Portal, 0, len(s.portals))
	for id, in := range s.portals {
		out = append(out, Portal{ID: id, Integration: in, Org: s.integrations[in]})
	}
	slices.SortFunc(out, func(a, b Portal) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// KeyFingerprint is how invites name the API key that created them
// (InviteView.CreatedBy) without revealing it.
func KeyFingerprint(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return "key_" + hex.EncodeToString(sum[:6])
}

// ---- HTTP plumbing -----------------------------------------------------------

// result is a handler's answer. A nil body is sent as no body.
type result struct {
	status     int
	body       any
	retryAfter int // seconds; 0: no Retry-After header
}

func fail(status int, format string, args ...any) result {
	return result{status: status, body: map[string]string{"error": fmt.Sprintf(format, args...)}}
}

// logged wraps an API handler: it records the request (path as logPath
// gives it) and writes the result.
func (s *Server) logged(logPath func(*http.Request) string, h func(*http.Request, *Request) result) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := Request{Time: s.limiter.Now(), Method: r.Method, Path: logPath(r)}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		res := h(r, &rec)
		rec.Status = res.status
		s.Append(rec)
		sandboxkit.Answer(w, res.status, res.body, res.retryAfter)
	}
}

func rawPath(r *http.Request) string { return r.URL.Path }

// caller is an authenticated integration request.
type caller struct {
	key, org, integration string
}

// authorize applies the integration routes' checks in order: a known
// bearer key (401), the key's rate limits (429), X-Org present and equal
// to the key's organisation (403), and the integration in that
// organisation (404).
func (s *Server) authorize(r *http.Request, rec *Request) (caller, *result) {
	key, found := sandboxkit.Bearer(r.Header.Get("Authorization"))
	s.mu.Lock()
	org, ok := s.keys[key]
	s.mu.Unlock()
	if !found || key == "" || !ok {
		res := fail(http.StatusUnauthorized, "unauthorized: missing or unknown API key (send Authorization: Bearer <key>)")
		return caller{}, &res
	}
	if secs, msg := s.limiter.Admit(key); secs > 0 {
		res := fail(http.StatusTooManyRequests, "%s", msg)
		res.retryAfter = secs
		return caller{}, &res
	}
	switch xorg := strings.TrimSpace(r.Header.Get("X-Org")); {
	case xorg == "":
		res := fail(http.StatusForbidden, "forbidden: the X-Org header is required")
		return caller{}, &res
	case xorg != org:
		res := fail(http.StatusForbidden, "forbidden: the API key does not belong to the organization in X-Org")
		return caller{}, &res
	}
	rec.Org = org
	integration := r.PathValue("integration")
	s.mu.Lock()
	iorg, ok := s.integrations[integration]
	s.mu.Unlock()
	if !ok || iorg != org {
		res := fail(http.StatusNotFound, "integration %q not found in this organization", integration)
		return caller{}, &res
	}
	return caller{key: key, org: org, integration: integration}, nil
}

// SetNoList switches Options.NoList.
func (s *Server) SetNoList(on bool) { sandboxkit.Store(&s.mu, &s.noList, on) }

// SetListWithoutTokens switches Options.ListWithoutTokens.
func (s *Server) SetListWithoutTokens(on bool) { sandboxkit.Store(&s.mu, &s.noTokens, on) }

// SetMaxPerPage lowers the largest per_page the invite list accepts (400
// above; zero: MaxPerPage): the OpenApp document shows no list, and
// keysync asks for 100 a page.
func (s *Server) SetMaxPerPage(n int) { sandboxkit.Store(&s.mu, &s.maxPerPage, max(n, 0)) }

// SetPutOnlyNarrows switches Options.PutOnlyNarrows.
func (s *Server) SetPutOnlyNarrows(on bool) { sandboxkit.Store(&s.mu, &s.narrowOnly, on) }

// SetPutConflicts answers every PUT of an invite 409, as a server that
// will not change an invite in use may: the OpenApp document defines no
// error codes. keysync then replaces or deletes such an invite, as for a
// PUT refused with 400 or 422 (Options.PutOnlyNarrows).
func (s *Server) SetPutConflicts(on bool) { sandboxkit.Store(&s.mu, &s.putConflicts, on) }

// SetPutNotFound answers every PUT of an invite 404, as a server whose
// router has no PUT route for invites answers any unrouted call (many web
// frameworks answer an unknown method 404, not 405): the OpenApp document
// shows PUT but defines no error codes, so a 404 to a PUT does not prove
// the invite is gone. The invite stays live; keysync must not take it for
// deleted (a live invite it no longer records would open the door past
// checkout) but replace or delete it, as for a PUT refused with 409.
func (s *Server) SetPutNotFound(on bool) { sandboxkit.Store(&s.mu, &s.putNotFound, on) }

// SetDisabledAsStatus shows whether a listed invite is switched on as a
// server with another notion of it may: "status": "active" or "disabled",
// and no "is_enabled". The OpenApp document shows is_enabled only as a
// field PUT takes, and no list at all, so it is silent on how a list marks
// an invite switched off; keysync must never read a disabled invite as
// live (adopt it, or keep it for the guest).
func (s *Server) SetDisabledAsStatus(on bool) { sandboxkit.Store(&s.mu, &s.offAsStatus, on) }

// SetListWithoutHasMore leaves has_more out of the list's pages, as a
// server that pages its list without saying whether it goes on may (the
// OpenApp document shows no list call): a page past the end is empty.
func (s *Server) SetListWithoutHasMore(on bool) { sandboxkit.Store(&s.mu, &s.noHasMore, on) }

// SetRefusePastStart refuses (422) a create whose valid_from is before
// the business clock's now, as a server written from the same document
// may: the OpenApp document says an omitted start opens the window at
// once, and says nothing of a start in the past.
func (s *Server) SetRefusePastStart(on bool) { sandboxkit.Store(&s.mu, &s.refusePast, on) }

// SetNameLimit keeps only the first n characters of an invite's name
// (zero: all), as a server with a shorter name field may: the OpenApp
// document gives no limit, and keysync ends the names it gives with the
// owner tag that tells its invites from others after a lost state.
func (s *Server) SetNameLimit(n int) { sandboxkit.Store(&s.mu, &s.nameLimit, max(n, 0)) }

// SetChangesForbidden answers every PUT and DELETE of an invite 403, as a
// server that will not let an integration change an invite once made (one
// a guest has claimed, say) might: the OpenApp document defines no error
// codes, and keysync takes a 401 or 403 as its own API key refused. Creates
// and lists are answered as ever.
func (s *Server) SetChangesForbidden(on bool) { sandboxkit.Store(&s.mu, &s.frozen, on) }
