package sandbox

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // timeZone is checked against IANA names on any host

	"github.com/keysync/keysync/internal/sandboxkit"
)

// Paths, limits and defaults. The rate limits are the ones keysync's design
// gives for its APIs (5 req/s, burst 10, 10,000 a day); they apply only when
// set in Options (see Options.WithSeedLimits).
const (
	// DefaultCreatePath is the create call's path when Options.CreatePath is empty.
	DefaultCreatePath = "/v2/accesses"
	// DefaultCancelPath is the cancel call's path when Options.CancelPath is
	// empty; {id} stands for the access id.
	DefaultCancelPath = "/v2/accesses/{id}"
	// DefaultCancelMethod is the cancel call's method when Options.CancelMethod is empty.
	DefaultCancelMethod = http.MethodDelete
	// DefaultListPath is the list call's path when Options.ListPath is empty.
	DefaultListPath = "/v2/accesses"
	// DefaultRatePerSecond is the sustained request rate per user of WithSeedLimits.
	DefaultRatePerSecond = sandboxkit.SeedPerSecond
	// DefaultBurst is the burst per user, used when Options.Burst is zero.
	DefaultBurst = sandboxkit.SeedBurst
	// DefaultDailyCap is the number of requests per user per UTC day of WithSeedLimits.
	DefaultDailyCap = sandboxkit.SeedDailyCap
	// MaxBodyBytes is the largest request body accepted (HTTP 413 beyond).
	MaxBodyBytes = sandboxkit.MaxBodyBytes
	// CodeDigits is the length of the PIN codes the box hands out.
	CodeDigits = 6
)

// Locales are the values the API document allows for locale.
var Locales = []string{"en", "fr", "ja", "es", "nl", "it", "pt"}

// Options configures a Server. The zero value is usable: no users, business
// clock at time.Now(), no rate limits, the default paths.
type Options struct {
	// Users maps usernames to passwords for HTTP Basic auth.
	Users map[string]string
	// Now starts the business clock; zero means time.Now().
	Now time.Time
	// Rates limit each user (RatePerSecond, Burst and DailyCap) on the
	// clock RateNow; the zero value sets no limits.
	sandboxkit.Rates
	// CreatePath, CancelPath and CancelMethod place the two calls; empty
	// means DefaultCreatePath, DefaultCancelPath and DefaultCancelMethod.
	// CancelPath must hold the placeholder {id}.
	CreatePath, CancelPath, CancelMethod string
	// ListPath places the list call (GET); empty means DefaultListPath.
	ListPath string
	// ListWithoutCodes leaves the codes out of the list, as a key box that
	// shows a code only when it makes it may: the key-box API document
	// shows the code in a create's answer only. keysync reads codes back
	// when they are listed; SetListWithoutCodes switches it at run time.
	ListWithoutCodes bool
	// NoList answers the list call 404, as a key box without one would:
	// the key-box API document shows the create call only, and keysync
	// lists accesses to adopt what a guest holds after its state was
	// lost. SetNoList switches it at run time.
	NoList bool
	// VisitorNameLimit, when positive, keeps only that many characters of
	// a create's visitorName, as a key box with a shorter field may: the
	// key-box API document gives no limit, and keysync recognises its own
	// access after a lost state by the name it sent.
	VisitorNameLimit int
	// CreateWithoutCode leaves the code out of a create's answer, as a key
	// box that only tells the guest may: the key-box document shows no
	// response. keysync writes the code into a 3RPMS key_storage key.
	// SetCreateWithoutCode switches it at run time.
	CreateWithoutCode bool
	// CancelledAsStatus marks a cancelled access in the list as a box with
	// another notion of it may: "status": "CANCELLED" and "cancelledAt"
	// (RFC 3339, UTC), and no "cancelled" boolean on any access (the other
	// statuses upper case too: "ACTIVE", "UPCOMING", "ENDED"). The key-box
	// API document shows no list, so it is silent on how one marks a
	// cancelled access, and keysync must never read a cancelled access as
	// live (adopt it, or keep its dead code for the guest).
	// SetCancelledAsStatus switches it at run time.
	CancelledAsStatus bool
	// CancelNotFound answers every cancel 404 and cancels nothing, as a
	// key box without the cancel call keysync assumes may (a router
	// answers a path or method it does not serve 404): the key-box API
	// document shows no cancel call at all, so a 404 to one does not show
	// the access gone, and keysync must not take a live access for
	// cancelled. SetCancelNotFound switches it at run time.
	CancelNotFound bool
	// ListInUTC shows each listed access's window in UTC: startDate,
	// startTime, endDate and endTime as UTC wall-clock times and
	// "timeZone": "UTC", as a box that keeps instants and shows them in
	// one zone may. The key-box API document shows no list, so it is
	// silent on the zone a listed window is shown in; keysync must
	// recognise its own access by the instants, not by the local times
	// it sent. SetListInUTC switches it at run time.
	ListInUTC bool
	// CodeAsBookingCode names the code "bookingCode" (the document's
	// word: "the booking code, booking URL, and instructions") instead of
	// "code", in a create's answer and in the list. The key-box document
	// shows no response, so it is silent on the field's name; keysync
	// writes the code into the guest's 3RPMS key, and a code it cannot
	// read leaves the guest without one. SetCodeAsBookingCode switches it
	// at run time.
	CodeAsBookingCode bool
}

// WithSeedLimits returns o with the rate limits (5 req/s, burst 10, 10,000 a
// day) filled into the fields that are zero.
func (o Options) WithSeedLimits() Options {
	o.Rates = o.Rates.WithSeedLimits()
	return o
}

// Request is one entry of the request log: every API request (anything not
// under /_sandbox/), whatever its outcome.
type Request struct {
	// Time is by Options.RateNow.
	Time time.Time `json:"time"`
	// User is the authenticated username, or "" when authentication failed.
	User   string `json:"user"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// Body is the request body as received (at most MaxBodyBytes).
	Body string `json:"body"`
}

// Server is the in-memory key-box fake. It serves the API and the admin API
// under /_sandbox/; its methods give tests the same control directly. A
// Server is safe for concurrent use.
type Server struct {
	opts  Options
	api   *http.ServeMux
	admin *http.ServeMux
	*clock
	requestLog
	limiter *sandboxkit.Limiter

	mu         sync.Mutex
	noCodes    bool // Options.ListWithoutCodes, as switched
	noList     bool // Options.NoList, as switched
	users      map[string]string
	keys       map[string]*key
	nextKey    int
	accesses   []*access
	nextAccess int
}

// clock and requestLog give Server the kit's Now, SetNow, Advance, Requests
// and ResetRequests.
type (
	clock      = sandboxkit.Clock
	requestLog = sandboxkit.RequestLog[Request]
)

// New returns a Server with no keys and no accesses. It panics when
// CreatePath, CancelPath, CancelMethod and ListPath do not make three
// distinct routes (CancelPath without {id}, say), which is a mistake in the
// test or demo that builds it.
func New(opts Options) *Server {
	if opts.CreatePath == "" {
		opts.CreatePath = DefaultCreatePath
	}
	if opts.CancelPath == "" {
		opts.CancelPath = DefaultCancelPath
	}
	if opts.CancelMethod == "" {
		opts.CancelMethod = DefaultCancelMethod
	}
	if opts.ListPath == "" {
		opts.ListPath = DefaultListPath
	}
	opts.CancelMethod = strings.ToUpper(opts.CancelMethod)
	if !strings.Contains(opts.CancelPath, "{id}") {
		panic(fmt.Sprintf("sandbox: cancel path %q has no {id}", opts.CancelPath))
	}
	s := &Server{
		opts:    opts,
		clock:   sandboxkit.NewClock(opts.Now),
		limiter: opts.Limiter(),
		users:   map[string]string{},
		keys:    map[string]*key{},
		noCodes: opts.ListWithoutCodes,
		noList:  opts.NoList,
	}
	for u, p := range opts.Users {
		s.users[u] = p
	}
	s.api = http.NewServeMux()
	s.api.HandleFunc("POST "+opts.CreatePath, s.serveCreate)
	s.api.HandleFunc(opts.CancelMethod+" "+opts.CancelPath, s.serveCancel)
	s.api.HandleFunc("GET "+opts.ListPath, s.serveList)
	// No catch-all: ServeMux answers 404, or 405 with Allow for a known
	// path and another method.
	s.admin = s.adminRoutes()
	return s
}

// AddUser lets username authenticate with password.
func (s *Server) AddUser(username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[username] = password
}

// ServeHTTP serves the API and, under /_sandbox/, the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sandboxkit.Route(w, r, s.admin, s.serveAPI)
}

// ---- API over HTTP ---------------------------------------------------------

type userKey struct{}

// apiErrorBody is the body of every API error answer.
type apiErrorBody struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// serveAPI authenticates, rate-limits, routes and logs one API request.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: s.limiter.Now(), Method: r.Method, Path: r.URL.Path}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	rec.Body = string(body)
	sr := &statusRecorder{ResponseWriter: w}
	defer func() {
		rec.Status = sr.status
		s.Append(rec)
	}()

	user, ok := s.authenticate(r)
	if !ok {
		sr.Header().Set("WWW-Authenticate", `Basic realm="keybox", charset="UTF-8"`)
		sandboxkit.WriteJSON(sr, http.StatusUnauthorized, apiErrorBody{Message: "unauthorized: HTTP Basic credentials missing or invalid"})
		return
	}
	rec.User = user
	if secs, msg := s.limiter.Admit(user); secs > 0 {
		sandboxkit.Answer(sr, http.StatusTooManyRequests, apiErrorBody{Message: msg}, secs)
		return
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(readErr, &tooLarge):
		sandboxkit.WriteJSON(sr, http.StatusRequestEntityTooLarge, apiErrorBody{Message: fmt.Sprintf("request body too large: the limit is %d bytes", MaxBodyBytes)})
		return
	case readErr != nil:
		sandboxkit.WriteJSON(sr, http.StatusBadRequest, apiErrorBody{Message: "could not read the request body"})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.api.ServeHTTP(sr, r)
}

func (s *Server) authenticate(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		return "", false
	}
	s.mu.Lock()
	want, known := s.users[user]
	s.mu.Unlock()
	if !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		return "", false
	}
	return user, true
}

func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request) {
	user, _ := r.Context().Value(userKey{}).(string)
	body, _ := io.ReadAll(r.Body)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		sandboxkit.WriteJSON(w, http.StatusBadRequest, apiErrorBody{Message: "body: must be a JSON object"})
		return
	}
	in, ferr := parseCreate(fields, s.Now())
	if ferr != nil {
		writeFieldError(w, ferr)
		return
	}
	s.mu.Lock()
	a, ferr := s.createAccess(user, in)
	var out any
	if ferr == nil {
		access := s.accessJSON(a)
		if s.opts.CreateWithoutCode {
			access.Code = ""
		}
		out = s.renameCode(access)
	}
	s.mu.Unlock()
	if ferr != nil {
		writeFieldError(w, ferr)
		return
	}
	sandboxkit.WriteJSON(w, http.StatusCreated, out)
}

func (s *Server) serveCancel(w http.ResponseWriter, r *http.Request) {
	user, _ := r.Context().Value(userKey{}).(string)
	if sandboxkit.Load(&s.mu, &s.opts.CancelNotFound) {
		sandboxkit.WriteJSON(w, http.StatusNotFound, apiErrorBody{Message: "not found"})
		return
	}
	if err := s.CancelAccess(r.PathValue("id"), user); err != nil {
		sandboxkit.WriteJSON(w, http.StatusNotFound, apiErrorBody{Message: "access not found (unknown or already cancelled)"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listedAccess is an access as the list shows it: with "cancelled", or,
// under Options.CancelledAsStatus, with "cancelledAt" for a cancelled one
// instead.
type listedAccess struct {
	accessJSON
	Cancelled   *bool  `json:"cancelled,omitempty"`
	CancelledAt string `json:"cancelledAt,omitempty"`
}

// serveList answers GET ListPath?keyId= (or ?keySerialNumber=): the
// caller's accesses to that key, cancelled ones included, oldest first.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	if sandboxkit.Load(&s.mu, &s.noList) {
		http.NotFound(w, r)
		return
	}
	user, _ := r.Context().Value(userKey{}).(string)
	q := r.URL.Query()
	id, serial := q.Get("keyId"), q.Get("keySerialNumber")
	switch {
	case id != "" && serial != "":
		writeFieldError(w, bad("keyId", "give only one of keyId or keySerialNumber"))
		return
	case id == "" && serial == "":
		writeFieldError(w, bad("keyId", "required: give keyId or keySerialNumber"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var k *key
	if id != "" {
		k = s.keys[id]
	} else {
		k = s.keyBySerial(serial)
	}
	data := []any{}
	for _, a := range s.accesses {
		if k != nil && a.keyID == k.id && a.creator == user {
			la := listedAccess{accessJSON: s.accessJSON(a)}
			if s.opts.CancelledAsStatus {
				la.Status = strings.ToUpper(la.Status)
				if a.cancelled {
					la.CancelledAt = a.cancelledAt.UTC().Format(time.RFC3339)
				}
			} else {
				cancelled := a.cancelled
				la.Cancelled = &cancelled
			}
			if s.noCodes {
				la.Code = ""
			}
			if s.opts.ListInUTC {
				la.StartDate, la.StartTime = a.start.UTC().Format(time.DateOnly), a.start.UTC().Format("15:04")
				if !a.end.IsZero() {
					la.EndDate, la.EndTime = a.end.UTC().Format(time.DateOnly), a.end.UTC().Format("15:04")
				}
				la.TimeZone = "UTC"
			}
			data = append(data, s.renameCode(la))
		}
	}
	sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"data": data})
}

// SetVisitorNameLimit sets Options.VisitorNameLimit (zero: no limit).
func (s *Server) SetVisitorNameLimit(n int) { sandboxkit.Store(&s.mu, &s.opts.VisitorNameLimit, n) }

// SetCreateWithoutCode switches Options.CreateWithoutCode.
func (s *Server) SetCreateWithoutCode(on bool) {
	sandboxkit.Store(&s.mu, &s.opts.CreateWithoutCode, on)
}

// SetCancelledAsStatus switches Options.CancelledAsStatus.
func (s *Server) SetCancelledAsStatus(on bool) {
	sandboxkit.Store(&s.mu, &s.opts.CancelledAsStatus, on)
}

// SetCancelNotFound switches Options.CancelNotFound.
func (s *Server) SetCancelNotFound(on bool) {
	sandboxkit.Store(&s.mu, &s.opts.CancelNotFound, on)
}

// renameCode returns v (an access as JSON) with its "code" named
// "bookingCode" under Options.CodeAsBookingCode, else v itself. The
// caller holds s.mu.
func (s *Server) renameCode(v any) any {
	if !s.opts.CodeAsBookingCode {
		return v
	}
	raw, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	if c, ok := m["code"]; ok {
		m["bookingCode"] = c
		delete(m, "code")
	}
	return m
}

// SetCodeAsBookingCode switches Options.CodeAsBookingCode.
func (s *Server) SetCodeAsBookingCode(on bool) {
	sandboxkit.Store(&s.mu, &s.opts.CodeAsBookingCode, on)
}

// SetListInUTC switches Options.ListInUTC.
func (s *Server) SetListInUTC(on bool) { sandboxkit.Store(&s.mu, &s.opts.ListInUTC, on) }

// SetNoList switches Options.NoList.
func (s *Server) SetNoList(on bool) { sandboxkit.Store(&s.mu, &s.noList, on) }

// SetListWithoutCodes switches Options.ListWithoutCodes.
func (s *Server) SetListWithoutCodes(on bool) { sandboxkit.Store(&s.mu, &s.noCodes, on) }

func writeFieldError(w http.ResponseWriter, e *fieldError) {
	sandboxkit.WriteJSON(w, e.status, apiErrorBody{Message: e.Error(), Field: e.field})
}
