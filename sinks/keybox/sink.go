// Package keybox gives guests time-bound access to a room's physical key in
// a key box (the key box's "Create Access" API: Keycafe-style REST with HTTP Basic
// auth). Each stay of a key_storage room gets one access for its window; the
// box answers with a booking code (PIN) the guest types at the box, and
// keysync writes that code and the key's compartment back to 3RPMS.
//
// Assumptions where the API document is silent, made here once and in package
// sandbox alike; the paths and the cancel method are configurable:
//   - Create is POST {BaseURL}{CreatePath} (default /v2/accesses) with the
//     document's body: key {"id"} or {"serialNumber"}, startDate/startTime,
//     endDate/endTime ("YYYY-MM-DD", "HH:MM") and timeZone (the property's
//     IANA zone), visitorName, silent, locale, returnReminder false. The
//     deprecated ISO 8601 startDate/endDate are never sent. The window's
//     instants are shown in Options.TimeZone and cut to the minute; the
//     end is the first minute the access no longer opens the box (a box
//     that takes it as inclusive gives the guest a minute more). An edge
//     in the hour an autumn DST switch repeats is sent as its wall-clock
//     time, which names two instants an hour apart: the box picks one
//     (the sandbox, as Go does), so such an edge may move by an hour;
//     hotel check-in and check-out times are far from that hour. silent
//     and returnReminder are always sent (the document's defaults, false,
//     unless silent is configured); locale is left out when not
//     configured, for the box's own default.
//   - A 2xx answer to a create is JSON {"id": ..., "code": ...}: the access
//     id and the booking code, each a JSON string or integer; a code
//     named "bookingCode" (the document's word) is read when "code" is
//     absent, there and in the list (the sandbox's CodeAsBookingCode). One without an
//     id is an unknown outcome; one with an id but no code did create the
//     access and is returned with an empty Secret, so the id is recorded.
//   - Cancel (end access) is {CancelMethod} {BaseURL}{CancelPath} with {id}
//     replaced by the access id (defaults DELETE and /v2/accesses/{id}); any
//     2xx means cancelled and 404 (or 410) means no such live access, which
//     the caller counts as done, unless the list shows the access live (or
//     cannot be read: not done, tried again next run): a
//     box without that call answers 404 too (the sandbox's CancelNotFound),
//     and the cancel then fails naming the settings to check.
//   - There is no update call: a date or room change is a cancel followed by
//     a fresh create, two actions the planner schedules; MaxBatch is 1.
//   - List is GET {BaseURL}{ListPath} (default /v2/accesses) with the query
//     keyId=<key id> or keySerialNumber=<serial number> (a listed access
//     is taken for a key named by serial number when its key shows that
//     serial number or none, so a box that ignores keySerialNumber and
//     shows keys by id alone lists other keys' accesses as this one's:
//     with such a box, name keys by id): 200 {"data": [{"id",
//     "code", "key": {"id"}, "startDate", "startTime", "endDate",
//     "endTime", "timeZone", "visitorName", "cancelled"}, …]}, every access
//     to that key the authenticated user created (cancelled ones with
//     "cancelled": true; as read, one also counts as cancelled when
//     "canceled" is true, a "status" or "state" says so, or a cancellation
//     time is set, all listed at listedAccess), oldest first, in one answer
//     (no pages); id and code a string or an integer. A listed window
//     is read as instants (listedWindow): local dates and times ("HH:MM"
//     or "HH:MM:SS") in the access's timeZone, whatever zone that is (the
//     property's when none is given), or ISO 8601 date-times in
//     startDate/endDate alone; an access is recognised by those instants,
//     to the minute, not by the local times a create sent (the sandbox's
//     ListInUTC). An unknown key lists nothing. Sink.Find uses it to read back
//     a create whose answer was lost. The key-box document shows no list
//     call at all: a 405 to it, or Options.NoList, is reconcile.ErrNoList,
//     on which a backfill creates rather than adopts and a lost create is
//     issued again; a 404 (the sandbox's NoList) stays a failure that
//     names keybox.no_list.
//   - Error answers are JSON with a "message" (or "error") string; that
//     string, with secrets removed and cut short, is all of a body that ever
//     reaches an error.
//
// The key's compartment (KeyRef.Compartment) is staff-only: it is never sent
// to the key box nor put in an error; Sink.Compartment hands it to the caller
// that writes it back to 3RPMS.
package keybox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// Defaults for the parts of the API its document does not give.
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
	// DefaultMaxResponseBytes caps a response body; a larger one is an
	// error, not an allocation.
	DefaultMaxResponseBytes = 1 << 20
)

// Locales are the notification languages the API document lists for locale.
var Locales = []string{"en", "fr", "ja", "es", "nl", "it", "pt"}

// KeyRef is the physical key of one room: exactly one of ID and
// SerialNumber names it to the box.
type KeyRef struct {
	ID           string
	SerialNumber string
	// Compartment is where the key sits in the box. It is staff-only: never
	// sent to the key-box API, never logged; see Sink.Compartment.
	Compartment reconcile.Secret
}

// Options configures a Sink for one property.
type Options struct {
	// BaseURL is the API's scheme and host (and any path prefix), e.g.
	// https://api.keycafe.com; the paths below are appended to it.
	BaseURL string
	// Username and Password are sent as HTTP Basic auth.
	Username string
	Password reconcile.Secret
	// CreatePath, CancelPath and CancelMethod place the two calls; empty
	// means DefaultCreatePath, DefaultCancelPath and DefaultCancelMethod.
	// CancelPath must hold the placeholder {id}.
	CreatePath, CancelPath, CancelMethod string
	// ListPath places the list call Find makes (GET, with the query keyId
	// or keySerialNumber); empty means DefaultListPath.
	ListPath string
	// NoList says the API has no list call (the key-box document shows
	// none): FindAll, Find and Check fail with reconcile.ErrNoList
	// without a request. A 405 to the list says so too.
	NoList bool
	// Rooms maps a room id to its key.
	Rooms map[string]KeyRef
	// TimeZone is the property's IANA zone (Europe/Ljubljana, say): start
	// and end go to the box as local date and time in it.
	TimeZone *time.Location
	// Locale is the guest notification language, one of Locales; "" omits it.
	Locale string
	// Silent stops the box from notifying the guest.
	Silent bool
	// Property is the property's name; actions for stays of another
	// property are refused, and errors name it.
	Property string
	// Transport is the shared HTTP client's part: 429s waited out,
	// idempotent calls (a cancel, unless CancelMethod is POST) retried
	// after an outage, creates never; MaxResponseBytes 0 means
	// DefaultMaxResponseBytes.
	httpapi.Transport
}

// Validate reports the first problem with the options, naming the field,
// or nil. New does not fail; Apply returns Validate's error instead of
// sending anything.
func (o Options) Validate() error {
	u, err := url.Parse(o.BaseURL)
	switch {
	case o.BaseURL == "":
		return errors.New("keybox: base URL must be set")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("keybox: base URL must be an http or https URL with a host")
	case u.User != nil:
		return errors.New("keybox: base URL must not hold credentials; set the username and password")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("keybox: base URL must not have a query or fragment")
	case o.Username == "":
		return errors.New("keybox: username must be set (HTTP Basic)")
	case o.Password == "":
		return errors.New("keybox: password must be set (HTTP Basic)")
	case o.CreatePath != "" && !strings.HasPrefix(o.CreatePath, "/"):
		return fmt.Errorf("keybox: create path %q must start with /", o.CreatePath)
	case o.CancelPath != "" && (!strings.HasPrefix(o.CancelPath, "/") || !strings.Contains(o.CancelPath, "{id}")):
		return fmt.Errorf("keybox: cancel path %q must start with / and hold {id}", o.CancelPath)
	case o.ListPath != "" && (!strings.HasPrefix(o.ListPath, "/") || strings.ContainsAny(o.ListPath, "?#{}")):
		return fmt.Errorf("keybox: list path %q must start with / and hold no query, fragment or placeholder", o.ListPath)
	case o.CancelMethod != "" && !slices.Contains([]string{"DELETE", "POST", "PUT", "PATCH"}, strings.ToUpper(o.CancelMethod)):
		return fmt.Errorf("keybox: cancel method %q must be DELETE, POST, PUT or PATCH", o.CancelMethod)
	case o.TimeZone == nil || o.TimeZone.String() == "" || o.TimeZone.String() == "Local":
		return errors.New("keybox: time zone must be the property's IANA zone (e.g. Europe/Ljubljana)")
	case o.Locale != "" && !slices.Contains(Locales, o.Locale):
		return fmt.Errorf("keybox: locale %q must be one of %s", o.Locale, strings.Join(Locales, ", "))
	case o.MaxResponseBytes < 0:
		return errors.New("keybox: max response bytes must not be negative")
	}
	rooms := make([]string, 0, len(o.Rooms))
	for id := range o.Rooms {
		rooms = append(rooms, id)
	}
	sort.Strings(rooms)
	for _, id := range rooms {
		if err := o.Rooms[id].check(); err != nil {
			return fmt.Errorf("keybox: rooms[%q]: %w", id, err)
		}
	}
	return nil
}

func (k KeyRef) check() error {
	if (k.ID == "") == (k.SerialNumber == "") {
		return errors.New("give exactly one of key id or serial number")
	}
	return nil
}

// Sink creates and cancels key-box accesses. It implements reconcile.Sink
// and reconcile.Finder.
type Sink struct {
	opts Options
	base string
	// secrets are removed from every server message that reaches an
	// error; as Secrets they print redacted should the Sink be printed.
	secrets []reconcile.Secret
	http    *httpapi.Client
}

var (
	_ reconcile.Sink    = (*Sink)(nil)
	_ reconcile.Deriver = (*Sink)(nil)
)

// New returns a Sink, or the error of Options.Validate for invalid options.
func New(opts Options) (*Sink, error) {
	opts.CreatePath = cmp.Or(opts.CreatePath, DefaultCreatePath)
	opts.CancelPath = cmp.Or(opts.CancelPath, DefaultCancelPath)
	opts.CancelMethod = strings.ToUpper(cmp.Or(opts.CancelMethod, DefaultCancelMethod))
	opts.ListPath = cmp.Or(opts.ListPath, DefaultListPath)
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{opts: opts, base: strings.TrimRight(opts.BaseURL, "/")}
	client, err := httpapi.New(httpapi.Options{
		Transport: opts.Transport, System: reconcile.SystemKeyBox, Name: s.label(), BaseURL: s.base,
		MaxResponseBytes: DefaultMaxResponseBytes,
		Auth:             func(r *http.Request) { r.SetBasicAuth(opts.Username, opts.Password.Reveal()) },
	})
	if err != nil {
		return nil, err
	}
	s.http = client
	if opts.Password != "" {
		s.secrets = append(s.secrets, opts.Password)
	}
	for _, k := range opts.Rooms {
		if k.Compartment != "" {
			s.secrets = append(s.secrets, k.Compartment)
		}
	}
	// Longest first, so a secret that contains another is removed whole.
	slices.SortFunc(s.secrets, func(a, b reconcile.Secret) int { return cmp.Compare(len(b), len(a)) })
	return s, nil
}

// String describes the Sink without its secrets, so printing one (with
// %v or %+v) cannot leak the password or a compartment.
func (s *Sink) String() string { return "keybox.Sink(" + s.base + ")" }

// GoString is String for %#v.
func (s *Sink) GoString() string { return s.String() }

// Compartment returns where the key of a room sits in the box, for the
// caller to write back to 3RPMS; ok is false when the room is not mapped or
// has no compartment.
func (s *Sink) Compartment(roomID string) (reconcile.Secret, bool) {
	k, ok := s.opts.Rooms[roomID]
	return k.Compartment, ok && k.Compartment != ""
}

// Derive implements reconcile.Deriver: a RoomAccessKeyStorage carries the
// code of the key-box access it is derived from (upstreamSecret) as its
// PIN, and the compartment of its room's key. The code must meet 3RPMS's
// PIN rule (reconcile.ValidPIN).
func (s *Sink) Derive(key *reconcile.Credential, upstreamSecret reconcile.Secret) error {
	if key.Kind != reconcile.KindKeyStorageKey {
		return fmt.Errorf("%s is not derived from a key-box access", key.Kind)
	}
	comp, ok := s.Compartment(key.RoomID)
	if !ok {
		return fmt.Errorf("room %s has no key-box compartment", key.RoomID)
	}
	if !reconcile.ValidPIN(upstreamSecret.Reveal()) {
		return errors.New("the key box's access code breaks 3RPMS's PIN rule (1-10 letters or digits, one case)")
	}
	key.PIN, key.Compartment = upstreamSecret, comp
	return nil
}

// MaxBatch implements reconcile.Sink: the API has no batching.
func (s *Sink) MaxBatch() int { return 1 }

// Apply implements reconcile.Sink for one action: reconcile.OpCreate creates
// an access for the action's window and returns its id and code;
// reconcile.OpDelete cancels the access a.Cred.RemoteID.
//
// The request is paced by Options.Pacer; a 429 is waited out and, after
// an outage, a cancel sent again (unless CancelMethod is POST) as
// Options.Retry allows, each attempt counted in the Meter. A create is
// never sent twice.
//
// The returned error is for the request as a whole: more than one action,
// or a refused or cancelled wait for the pacer (nothing sent); a dial failure (nothing sent; wrapping reconcile.ErrUnavailable);
// 401 and 403 (wrapping reconcile.ErrUnauthorized); 429 (a
// *httpapi.RateLimitedError, wrapped in httpapi.ErrWaitTooLong when
// its Retry-After is longer than the run waits); a redirect or another
// unexpected status; no answer or a 5xx (wrapping both
// reconcile.ErrUnavailable and reconcile.ErrUnknownOutcome); and, wrapping
// reconcile.ErrUnknownOutcome alone, a 2xx to a create that is not JSON,
// is too large, or lacks an id. The outcome's error is for this action
// alone: an unmapped room or a missing window (nothing sent), 404 or 410
// (reconcile.ErrNotFound; for a cancel, already done), 409
// (reconcile.ErrConflict), 400 or 422 (reconcile.ErrRejected, with the
// server's message). No error ever holds the password, an access code, a
// compartment or a response body.
func (s *Sink) Apply(ctx context.Context, actions []*reconcile.Action) ([]reconcile.Outcome, error) {
	switch {
	case len(actions) == 0:
		return nil, nil
	case len(actions) > 1:
		return nil, fmt.Errorf("%s: %d actions in one request; the key box takes one (MaxBatch is 1)", s.label(), len(actions))
	}
	a := actions[0]
	if s.opts.Property != "" && a.Stay.Property != "" && a.Stay.Property != s.opts.Property {
		return fail(fmt.Errorf("%s: %s for stay %s: the stay belongs to property %q", s.label(), a.Op, a.Stay, a.Stay.Property))
	}
	switch a.Op {
	case reconcile.OpCreate:
		return s.create(ctx, a)
	case reconcile.OpDelete:
		return s.cancel(ctx, a)
	}
	return fail(fmt.Errorf("%s: %s for stay %s: the key box has no such call (only create and cancel; a change is cancel + create)", s.label(), a.Op, a.Stay.ID))
}

// fail returns one outcome holding err: the action failed, nothing was sent
// or the failure concerns this action alone.
func fail(err error) ([]reconcile.Outcome, error) {
	return []reconcile.Outcome{{Err: err}}, nil
}

// label prefixes every error: "keybox", with the property when known.
func (s *Sink) label() string {
	if s.opts.Property != "" {
		return "keybox " + s.opts.Property
	}
	return "keybox"
}

// createBody is the API document's create body. It has no field for a compartment,
// so none can be sent.
type createBody struct {
	Key keyJSON `json:"key"`
	localWindow
	VisitorName    string `json:"visitorName"`
	ReturnReminder bool   `json:"returnReminder"`
	Silent         bool   `json:"silent"`
	Locale         string `json:"locale,omitempty"`
}

type keyJSON struct {
	ID           string `json:"id,omitempty"`
	SerialNumber string `json:"serialNumber,omitempty"`
}

// created is a 2xx answer to a create. The code is "code", or, when that
// is absent or empty, "bookingCode": the document calls what the guest is
// given the booking code and shows no response.
type created struct {
	ID          httpapi.FlexString `json:"id"`
	Code        httpapi.FlexString `json:"code"`
	BookingCode httpapi.FlexString `json:"bookingCode"`
	// Access and Data hold the access when the answer wraps it (the key-box
	// document shows the create's answer bare; a server that wraps its
	// answers in "access" or "data" is read the same).
	Access json.RawMessage `json:"access"`
	Data   json.RawMessage `json:"data"`
}

// unwrap returns the access a create's answer holds, bare or wrapped in
// "access" or "data".
func (c created) unwrap() created {
	for _, inner := range []json.RawMessage{c.Access, c.Data} {
		if c.ID != "" {
			break
		}
		var w created
		if len(inner) > 0 && json.Unmarshal(inner, &w) == nil && w.ID != "" {
			c.ID, c.Code, c.BookingCode = w.ID, w.Code, w.BookingCode
		}
	}
	return c
}

func (s *Sink) create(ctx context.Context, a *reconcile.Action) ([]reconcile.Outcome, error) {
	what := fmt.Sprintf("create access for stay %s in room %s", a.Stay.ID, a.RoomID)
	ref, ok := s.opts.Rooms[a.RoomID]
	if !ok {
		return fail(fmt.Errorf("%s: %s: room is not mapped to a key in the key-box config", s.label(), what))
	}
	if err := ref.check(); err != nil {
		return fail(fmt.Errorf("%s: %s: %v", s.label(), what, err))
	}
	what += " (" + ref.label() + ")"
	body, err := s.createBody(a, ref)
	if err != nil {
		return fail(fmt.Errorf("%s: %s: %w", s.label(), what, err))
	}
	var out created
	verdict, err := s.send(ctx, what, http.MethodPost, s.opts.CreatePath, body, &out)
	out = out.unwrap()
	switch {
	case err != nil:
		return nil, err
	case verdict != nil:
		return fail(verdict)
	case out.ID == "":
		return nil, fmt.Errorf("%s: %s: the answer has no access id: %w", s.label(), what, reconcile.ErrUnknownOutcome)
	}
	// An answer with an id but no code still created the access: it is
	// returned with an empty Secret so that its id is recorded.
	return []reconcile.Outcome{{RemoteID: string(out.ID), Secret: reconcile.Secret(cmp.Or(out.Code, out.BookingCode))}}, nil
}

// createBody builds the body for a create from the action's window, shown
// in the property's zone and cut to the minute.
func (s *Sink) createBody(a *reconcile.Action, ref KeyRef) (createBody, error) {
	if a.Window == nil || a.Window.Start.IsZero() || a.Window.End.IsZero() {
		return createBody{}, errors.New("the action has no access window")
	}
	lw, err := s.localWindow(*a.Window)
	if err != nil {
		return createBody{}, err
	}
	return createBody{
		Key:         keyJSON{ID: ref.ID, SerialNumber: ref.SerialNumber},
		localWindow: lw, VisitorName: visitorName(a.Guest, a.Stay),
		ReturnReminder: false, Silent: s.opts.Silent, Locale: s.opts.Locale,
	}, nil
}

// localWindow is an access window as the box reads it: local dates and
// times in the property's zone, the fields of a create's body and of a
// listed access.
type localWindow struct {
	StartDate string `json:"startDate"`
	StartTime string `json:"startTime"`
	EndDate   string `json:"endDate"`
	EndTime   string `json:"endTime"`
	TimeZone  string `json:"timeZone"`
}

// localWindow shows a window in the property's zone, cut to the minute:
// what a create sends, and what Find looks for.
func (s *Sink) localWindow(w reconcile.Window) (localWindow, error) {
	if w.Start.IsZero() || w.End.IsZero() {
		return localWindow{}, errors.New("no access window")
	}
	loc := s.opts.TimeZone
	start := w.Start.Truncate(time.Minute).In(loc)
	end := w.End.Truncate(time.Minute).In(loc)
	if !end.After(start) {
		return localWindow{}, fmt.Errorf("the access window ends (%s) before it starts (%s)", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return localWindow{
		StartDate: start.Format(time.DateOnly), StartTime: start.Format("15:04"),
		EndDate: end.Format(time.DateOnly), EndTime: end.Format("15:04"),
		TimeZone: loc.String(),
	}, nil
}

// visitorName is the visitorName a create sends: the guest's name, or
// "Guest <stay id>" when the source gives none.
func visitorName(guest string, stay reconcile.StayRef) string {
	if v := strings.TrimSpace(guest); v != "" {
		return v
	}
	return strings.TrimSpace("Guest " + stay.ID)
}

func (k KeyRef) label() string {
	if k.ID != "" {
		return "key id " + k.ID
	}
	return "key serial number " + k.SerialNumber
}

func (s *Sink) cancel(ctx context.Context, a *reconcile.Action) ([]reconcile.Outcome, error) {
	if a.Cred == nil || a.Cred.RemoteID == "" {
		return fail(fmt.Errorf("%s: cancel access for stay %s: no access id recorded", s.label(), a.Stay.ID))
	}
	id := a.Cred.RemoteID
	what := fmt.Sprintf("cancel access %s for stay %s", id, a.Stay.ID)
	target := strings.ReplaceAll(s.opts.CancelPath, "{id}", url.PathEscape(id))
	verdict, err := s.send(ctx, what, s.opts.CancelMethod, target, nil, nil, a.Cred.Secret)
	switch {
	case err != nil:
		return nil, err
	case errors.Is(verdict, reconcile.ErrConflict):
		// A 409 may say the access is cancelled already (the document
		// shows no cancel call, so nothing says what a second cancel
		// answers): a list that shows it, not live, decides it gone; a box
		// whose list cannot tell keeps the 409 a failure, never "gone".
		if live, known, lerr := s.listsLive(ctx, a.Cred, "answered 409"); lerr == nil && known && !live {
			return fail(fmt.Errorf("%s: %s: the key box answered HTTP 409 and no longer lists the access live: already cancelled (%w)", s.label(), what, reconcile.ErrNotFound))
		}
		return fail(verdict)
	case errors.Is(verdict, reconcile.ErrNotFound):
		// The key-box document shows no cancel call: a box without the
		// one configured answers 404 too, while the access lives on.
		live, _, lerr := s.listsLive(ctx, a.Cred, "answered not found")
		switch {
		case lerr != nil:
			// Nothing shows the access gone: not done, the next run
			// tries again (%v: the list's own 404 is no answer to
			// the cancel; listsLive keeps the access's code out of it).
			return fail(fmt.Errorf("%s: %s: the key box answered HTTP %d, and the list that shows whether the access is gone could not be read (%v): not taken as cancelled, tried again next run",
				s.label(), what, httpapi.Refusal(verdict).Status, lerr))
		case live:
			return fail(fmt.Errorf("%s: %s: the key box answered HTTP %d, yet still lists the access live: it was not cancelled; check keybox.cancel_path and keybox.cancel_method (%s %s)",
				s.label(), what, httpapi.Refusal(verdict).Status, s.opts.CancelMethod, s.opts.CancelPath))
		}
		return fail(verdict)
	case verdict != nil:
		return fail(verdict)
	}
	return []reconcile.Outcome{{}}, nil
}

// listsLive reports whether the list shows c's access live (not
// cancelled), and known, whether a list was read to tell: what decides a
// cancel answered 404 or 410 (which a box without the cancel call keysync
// assumes gives as well) or 409. Where the list cannot tell (a box
// without one: no_list or a 405; a room without a key in the config),
// known is false, and a 404 stays "already gone"; a list that fails
// otherwise (a 5xx, no answer, a 404 to the list itself) is err: the
// access may be live. answered says what the cancel was answered, for the
// list's label.
func (s *Sink) listsLive(ctx context.Context, c *reconcile.Credential, answered string) (live, known bool, err error) {
	ref, ok := s.opts.Rooms[c.RoomID]
	if !ok || s.opts.NoList || ref.check() != nil {
		return false, false, nil
	}
	list, err := s.accesses(ctx, fmt.Sprintf("list accesses to %s after a cancel of access %s %s", ref.label(), c.RemoteID, answered), ref, c.Secret)
	if errors.Is(err, reconcile.ErrNoList) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	for _, l := range list.Data {
		if string(l.ID) == c.RemoteID && !l.isCancelled() {
			return true, true, nil
		}
	}
	return false, true, nil
}
