package sandbox

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// Window is one validity interval of an invite.
type Window struct {
	From time.Time `json:"valid_from"`
	To   time.Time `json:"valid_to"`
}

// invite is an access invite. Deleted invites are kept for InviteView.
type invite struct {
	id, token, name      string
	integration, org     string
	createdBy            string // KeyFingerprint of the creating key, or a label
	portals              []string
	windows              []Window // sorted by From, at least one
	enabled              bool
	maxUses, uses        int // maxUses 0: unlimited
	deleted              bool
	createdAt, updatedAt time.Time
}

func (in *invite) from() time.Time { return in.windows[0].From }

func (in *invite) to() time.Time {
	to := in.windows[0].To
	for _, w := range in.windows[1:] {
		if w.To.After(to) {
			to = w.To
		}
	}
	return to
}

// InviteView is an invite as tests and the admin API see it, token and
// creator included.
type InviteView struct {
	ID          string `json:"invite_link_id"`
	Token       string `json:"invite_token"`
	Name        string `json:"name"`
	Integration string `json:"integration_id"`
	Org         string `json:"org_id"`
	// CreatedBy is KeyFingerprint of the API key that created the invite,
	// or the label given to AddInvite.
	CreatedBy string    `json:"created_by"`
	PortalIDs []string  `json:"portal_ids"`
	ValidFrom time.Time `json:"valid_from"`
	ValidTo   time.Time `json:"valid_to"`
	// Schedules holds the windows of a multi-window invite; nil for one window.
	Schedules []Window  `json:"schedules,omitempty"`
	Enabled   bool      `json:"is_enabled"`
	MaxUses   int       `json:"max_uses,omitempty"`
	Uses      int       `json:"uses"`
	Deleted   bool      `json:"deleted"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (in *invite) view() InviteView {
	v := InviteView{
		ID: in.id, Token: in.token, Name: in.name, Integration: in.integration, Org: in.org,
		CreatedBy: in.createdBy, PortalIDs: slices.Clone(in.portals), ValidFrom: in.from(), ValidTo: in.to(),
		Enabled: in.enabled, MaxUses: in.maxUses, Uses: in.uses, Deleted: in.deleted,
		CreatedAt: in.createdAt, UpdatedAt: in.updatedAt,
	}
	if len(in.windows) > 1 {
		v.Schedules = slices.Clone(in.windows)
	}
	return v
}

// Invites returns every invite, deleted ones included, oldest first.
func (s *Server) Invites() []InviteView {
	return sandboxkit.Views(&s.mu, &s.order, func(id string) InviteView { return s.invites[id].view() })
}

// Invite returns the invite with link id id, deleted or not.
func (s *Server) Invite(id string) (InviteView, bool) {
	return sandboxkit.Lookup(&s.mu, &s.invites, id, (*invite).view)
}

// Planted is an invite for AddInvite: one made outside keysync, by staff
// in the dashboard or by another integration's key.
type Planted struct {
	Integration string
	// CreatedBy is the creating API key (recorded as its KeyFingerprint)
	// or, when it is not a known key, a label such as "dashboard".
	CreatedBy string
	Name      string
	PortalIDs []string
	ValidFrom time.Time
	ValidTo   time.Time
	Disabled  bool
	MaxUses   int
}

// AddInvite plants an invite under the same rules as the API (known
// integration, its own portals, a name, a window that ends after it
// starts) and returns it.
func (s *Server) AddInvite(p Planted) (InviteView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	org, ok := s.integrations[p.Integration]
	if !ok {
		return InviteView{}, fmt.Errorf("sandbox: add invite: integration %q not found", p.Integration)
	}
	portals, e := s.checkPortals(p.Integration, &p.PortalIDs)
	if e == nil && strings.TrimSpace(p.Name) == "" {
		e = &apiError{http.StatusBadRequest, "name: required"}
	}
	if e == nil && !p.ValidTo.After(p.ValidFrom) {
		e = &apiError{http.StatusUnprocessableEntity, "valid_to: must be after valid_from"}
	}
	if e == nil && p.MaxUses < 0 {
		e = &apiError{http.StatusUnprocessableEntity, "max_uses: must be at least 1"}
	}
	if e != nil {
		return InviteView{}, fmt.Errorf("sandbox: add invite: %s", e.msg)
	}
	by := p.CreatedBy
	if _, known := s.keys[by]; known {
		by = KeyFingerprint(by)
	}
	in := s.insert(org, p.Integration, by, p.Name, portals, []Window{{p.ValidFrom.UTC(), p.ValidTo.UTC()}}, !p.Disabled, p.MaxUses)
	return in.view(), nil
}

// insert stores a new invite. Caller holds s.mu.
func (s *Server) insert(org, integration, by, name string, portals []string, windows []Window, enabled bool, maxUses int) *invite {
	s.nextID++
	now := s.Now()
	in := &invite{
		id: fmt.Sprintf("inv_%06d", s.nextID), token: newToken(), name: sandboxkit.Cut(name, s.nameLimit),
		integration: integration, org: org, createdBy: by, portals: portals, windows: windows,
		enabled: enabled, maxUses: maxUses, createdAt: now, updatedAt: now,
	}
	s.invites[in.id] = in
	s.byToken[in.token] = in
	s.order = append(s.order, in.id)
	return in
}

// newToken returns an unguessable invite token.
func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "oat_" + base64.RawURLEncoding.EncodeToString(b)
}

// ---- request bodies ------------------------------------------------------------

// windowIn is one window as sent: absolute or relative bounds.
type windowIn struct {
	ValidFrom *string `json:"valid_from"`
	ValidTo   *string `json:"valid_to"`
	StartsIn  *string `json:"starts_in"`
	ExpiresIn *string `json:"expires_in"`
}

func (w *windowIn) present() bool {
	return w.ValidFrom != nil || w.ValidTo != nil || w.StartsIn != nil || w.ExpiresIn != nil
}

// inviteIn is a create or update body. Absent and null fields are nil;
// unknown fields are ignored.
type inviteIn struct {
	PortalIDs *[]string `json:"portal_ids"`
	Name      *string   `json:"name"`
	windowIn
	Schedules *[]windowIn `json:"schedules"`
	MaxUses   *int        `json:"max_uses"`
	IsEnabled *bool       `json:"is_enabled"`
}

// sortedCopy returns ids sorted, leaving ids as they are.
func sortedCopy(ids []string) []string { return slices.Sorted(slices.Values(ids)) }

// apiError is a refusal: an HTTP status and a message that names the field
// and never quotes a value that could be a secret.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) result() result { return fail(e.status, "%s", e.msg) }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func unprocessable(format string, args ...any) *apiError {
	return &apiError{http.StatusUnprocessableEntity, fmt.Sprintf(format, args...)}
}

// decodeBody reads a JSON object body.
func decodeBody(r *http.Request, v any) *apiError {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &apiError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	err = dec.Decode(v)
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		if dec.More() {
			return badRequest("body must hold one JSON object")
		}
		return nil
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the limit is %d bytes", MaxBodyBytes)}
	case errors.As(err, &syntax):
		return badRequest("body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return badRequest("%s: wrong JSON type (got %s)", typ.Field, typ.Value)
	case errors.As(err, &typ):
		return badRequest("body must be a JSON object")
	}
	return badRequest("body is not valid JSON")
}

// checkPortals validates portal ids against an integration and returns them
// without duplicates, in the order given. Caller holds s.mu.
func (s *Server) checkPortals(integration string, ids *[]string) ([]string, *apiError) {
	if ids == nil || len(*ids) == 0 {
		return nil, badRequest("portal_ids: must include at least one portal")
	}
	var out []string
	for i, id := range *ids {
		switch owner, ok := s.portals[id]; {
		case id == "":
			return nil, unprocessable("portal_ids[%d]: must not be empty", i)
		case !ok || owner != integration:
			return nil, unprocessable("portal_ids[%d]: portal %q is not a portal of integration %q", i, id, integration)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// resolve turns a window as sent into instants. now is the business clock;
// base, when non-nil, holds the bounds an update keeps where the body is
// silent. prefix names the entry in messages ("" or "schedules[1].").
func resolve(w windowIn, prefix string, now time.Time, base *Window) (Window, *apiError) {
	if w.ValidFrom != nil && w.StartsIn != nil {
		return Window{}, badRequest("%svalid_from and %sstarts_in are mutually exclusive", prefix, prefix)
	}
	if w.ValidTo != nil && w.ExpiresIn != nil {
		return Window{}, badRequest("%svalid_to and %sexpires_in are mutually exclusive; provide one", prefix, prefix)
	}
	var out Window
	from, ok, e := bound(w.ValidFrom, w.StartsIn, now.UTC(), prefix+"valid_from", prefix+"starts_in", "2026-06-01T15:00:00Z")
	switch {
	case e != nil:
		return Window{}, e
	case ok:
		out.From = from
	case base != nil:
		out.From = base.From
	default:
		out.From = now.UTC() // the window opens immediately
	}
	to, ok, e := bound(w.ValidTo, w.ExpiresIn, out.From, prefix+"valid_to", prefix+"expires_in", "2026-06-05T11:00:00Z")
	switch {
	case e != nil:
		return Window{}, e
	case ok:
		out.To = to
	case base != nil:
		out.To = base.To
	default:
		return Window{}, badRequest("%svalid_to or %sexpires_in: provide one", prefix, prefix)
	}
	if !out.To.After(out.From) {
		return Window{}, unprocessable("%svalid_to: must be after valid_from", prefix)
	}
	return out, nil
}

// bound resolves one end of a window as sent: at, an RFC 3339 time (named
// atName in messages, with example), or in, a duration after origin (named
// inName). ok is false when the body gives neither.
func bound(at, in *string, origin time.Time, atName, inName, example string) (time.Time, bool, *apiError) {
	switch {
	case at != nil:
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return time.Time{}, false, badRequest("%s: want an RFC 3339 time such as %s", atName, example)
		}
		return t.UTC(), true, nil
	case in != nil:
		d, err := ParseDuration(*in)
		if err != nil {
			return time.Time{}, false, badRequest("%s: %v", inName, err)
		}
		return origin.Add(d), true, nil
	}
	return time.Time{}, false, nil
}

// windows resolves a body's window or schedules. current is the invite's
// windows on update, nil on create. It returns nil, nil when an update
// leaves the windows alone.
func windows(in *inviteIn, now time.Time, current []Window) ([]Window, *apiError) {
	if in.Schedules != nil {
		if in.present() {
			return nil, badRequest("schedules and valid_from, valid_to, starts_in or expires_in are mutually exclusive")
		}
		if len(*in.Schedules) == 0 {
			return nil, badRequest("schedules: must hold at least one entry")
		}
		out := make([]Window, 0, len(*in.Schedules))
		for i, w := range *in.Schedules {
			win, e := resolve(w, fmt.Sprintf("schedules[%d].", i), now, nil)
			if e != nil {
				return nil, e
			}
			out = append(out, win)
		}
		slices.SortStableFunc(out, func(a, b Window) int { return a.From.Compare(b.From) })
		return out, nil
	}
	if current != nil && !in.present() {
		return nil, nil
	}
	var base *Window
	if current != nil {
		base = &Window{From: current[0].From, To: current[len(current)-1].To}
		for _, w := range current {
			if w.To.After(base.To) {
				base.To = w.To
			}
		}
	}
	w, e := resolve(in.windowIn, "", now, base)
	if e != nil {
		return nil, e
	}
	return []Window{w}, nil
}

// ---- integration routes ----------------------------------------------------------

// authorizeInvite is authorize, then the decoding of the invite body a
// create or an update sends; a refusal of either is the result.
func (s *Server) authorizeInvite(r *http.Request, rec *Request) (caller, inviteIn, *result) {
	c, res := s.authorize(r, rec)
	if res != nil {
		return caller{}, inviteIn{}, res
	}
	var in inviteIn
	if e := decodeBody(r, &in); e != nil {
		res := e.result()
		return caller{}, inviteIn{}, &res
	}
	return c, in, nil
}

func (s *Server) create(r *http.Request, rec *Request) result {
	c, in, res := s.authorizeInvite(r, rec)
	if res != nil {
		return *res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	portals, e := s.checkPortals(c.integration, in.PortalIDs)
	if e != nil {
		return e.result()
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return badRequest("name: required").result()
	}
	if in.MaxUses != nil && *in.MaxUses < 1 {
		return unprocessable("max_uses: must be at least 1").result()
	}
	now := s.Now()
	wins, e := windows(&in, now, nil)
	if e != nil {
		return e.result()
	}
	if in.ValidFrom != nil && s.refusePast && wins[0].From.Before(now) { // s.mu is held
		return unprocessable("valid_from: must not be in the past").result()
	}
	enabled := in.IsEnabled == nil || *in.IsEnabled
	maxUses := 0
	if in.MaxUses != nil {
		maxUses = *in.MaxUses
	}
	inv := s.insert(c.org, c.integration, KeyFingerprint(c.key), *in.Name, portals, wins, enabled, maxUses)
	return result{status: http.StatusCreated, body: map[string]string{"invite_token": inv.token, "invite_link_id": inv.id}}
}

// List paging: per_page when the query gives none, and its largest value.
const (
	DefaultPerPage = 50
	MaxPerPage     = 100
)

// ListedInvite is one invite as the list route shows it.
type ListedInvite struct {
	ID        string    `json:"invite_link_id"`
	Token     string    `json:"invite_token"`
	Name      string    `json:"name"`
	PortalIDs []string  `json:"portal_ids"`
	ValidFrom time.Time `json:"valid_from"`
	ValidTo   time.Time `json:"valid_to"`
	Enabled   bool      `json:"is_enabled"`
}

// list serves GET …/access-invites: the integration's invites that are not
// deleted, oldest first, a page at a time.
func (s *Server) list(r *http.Request, rec *Request) result {
	if sandboxkit.Load(&s.mu, &s.noList) {
		return fail(http.StatusMethodNotAllowed, "method not allowed")
	}
	c, res := s.authorize(r, rec)
	if res != nil {
		return *res
	}
	q := r.URL.Query()
	page, e := queryInt(q.Get("page"), "page", 1, 1, math.MaxInt32)
	if e != nil {
		return e.result()
	}
	maxPer := cmp.Or(sandboxkit.Load(&s.mu, &s.maxPerPage), MaxPerPage)
	perPage, e := queryInt(q.Get("per_page"), "per_page", min(DefaultPerPage, maxPer), 1, maxPer)
	if e != nil {
		return e.result()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var live []*invite
	for _, id := range s.order {
		if in := s.invites[id]; !in.deleted && in.integration == c.integration {
			live = append(live, in)
		}
	}
	data := []any{}
	lo := min(int64(page-1)*int64(perPage), int64(len(live)))
	hi := min(lo+int64(perPage), int64(len(live)))
	for _, in := range live[lo:hi] {
		li := ListedInvite{
			ID: in.id, Token: in.token, Name: in.name, PortalIDs: slices.Clone(in.portals),
			ValidFrom: in.from(), ValidTo: in.to(), Enabled: in.enabled,
		}
		if s.noTokens {
			li.Token, li.PortalIDs = "", nil
		}
		if !s.offAsStatus {
			data = append(data, li)
			continue
		}
		raw, _ := json.Marshal(li)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		delete(m, "is_enabled")
		m["status"] = map[bool]string{true: "active", false: "disabled"}[in.enabled]
		data = append(data, m)
	}
	body := map[string]any{"data": data, "page": page, "per_page": perPage, "has_more": hi < int64(len(live))}
	if s.noHasMore {
		delete(body, "has_more")
	}
	return result{status: http.StatusOK, body: body}
}

// queryInt reads an optional integer query parameter in [lo, hi].
func queryInt(v, name string, def, lo, hi int) (int, *apiError) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s: want an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// liveInvite finds an integration's invite that is not deleted. Caller
// holds s.mu.
func (s *Server) liveInvite(integration, id string) (*invite, *apiError) {
	in, ok := s.invites[id]
	if !ok || in.deleted || in.integration != integration {
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("access invite %q not found", id)}
	}
	return in, nil
}

// alterableInvite is liveInvite, refused 403 while the invites are frozen;
// done ("changed", "deleted") names the refused change. Caller holds s.mu.
func (s *Server) alterableInvite(integration, id, done string) (*invite, *apiError) {
	in, e := s.liveInvite(integration, id)
	if e != nil {
		return nil, e
	}
	if s.frozen {
		return nil, &apiError{http.StatusForbidden, "forbidden: this invite cannot be " + done}
	}
	return in, nil
}

func (s *Server) update(r *http.Request, rec *Request) result {
	c, body, res := s.authorizeInvite(r, rec)
	if res != nil {
		return *res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, e := s.alterableInvite(c.integration, r.PathValue("link"), "changed")
	if e != nil {
		return e.result()
	}
	if s.putConflicts {
		return fail(http.StatusConflict, "conflict: the invite is in use and cannot be changed")
	}
	if s.putNotFound {
		return fail(http.StatusNotFound, "not found")
	}
	// Check everything before changing anything.
	portals := inv.portals
	if body.PortalIDs != nil {
		if portals, e = s.checkPortals(c.integration, body.PortalIDs); e != nil {
			return e.result()
		}
	}
	if body.Name != nil && strings.TrimSpace(*body.Name) == "" {
		return badRequest("name: must not be empty").result()
	}
	if body.MaxUses != nil && *body.MaxUses < 1 {
		return unprocessable("max_uses: must be at least 1").result()
	}
	now := s.Now()
	wins, e := windows(&body, now, inv.windows)
	if e != nil {
		return e.result()
	}
	if s.narrowOnly {
		if !slices.Equal(sortedCopy(portals), sortedCopy(inv.portals)) {
			return unprocessable("portal_ids: an invite's portals cannot be changed").result()
		}
		for _, w := range wins {
			if w.From.Before(inv.from()) || w.To.After(inv.to()) {
				return unprocessable("valid_from, valid_to: an invite's validity can only be narrowed").result()
			}
		}
	}
	inv.portals = portals
	if body.Name != nil {
		inv.name = sandboxkit.Cut(*body.Name, s.nameLimit)
	}
	if body.MaxUses != nil {
		inv.maxUses = *body.MaxUses
	}
	if wins != nil {
		inv.windows = wins
	}
	if body.IsEnabled != nil {
		inv.enabled = *body.IsEnabled
	}
	inv.updatedAt = now
	return result{status: http.StatusOK, body: s.publicView(inv)}
}

func (s *Server) remove(r *http.Request, rec *Request) result {
	c, res := s.authorize(r, rec)
	if res != nil {
		return *res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, e := s.alterableInvite(c.integration, r.PathValue("link"), "deleted")
	if e != nil {
		return e.result()
	}
	inv.deleted, inv.updatedAt = true, s.Now()
	delete(s.byToken, inv.token)
	return result{status: http.StatusNoContent}
}

// ---- public (guest) routes -------------------------------------------------------

// Invite states on the guest side, by the business clock.
const (
	StatusActive      = "active"
	StatusNotYetValid = "not_yet_valid"
	StatusExpired     = "expired"
	StatusDisabled    = "disabled"
	StatusUsedUp      = "used_up"
)

// state is where an invite stands at now. Caller holds s.mu.
func (in *invite) state(now time.Time) string {
	switch {
	case !in.enabled:
		return StatusDisabled
	case in.maxUses > 0 && in.uses >= in.maxUses:
		return StatusUsedUp
	}
	for _, w := range in.windows {
		if !now.Before(w.From) && now.Before(w.To) {
			return StatusActive
		}
	}
	if now.Before(in.from()) {
		return StatusNotYetValid
	}
	for _, w := range in.windows {
		if now.Before(w.From) {
			return StatusNotYetValid // between windows
		}
	}
	return StatusExpired
}

// Grant is one action an invite allows on a portal; the guest sends its
// GrantID to execute.
type Grant struct {
	GrantID  string `json:"grant_id"`
	PortalID string `json:"portal_id"`
	Action   string `json:"action"`
}

// PublicInvite is the guest side's view of an invite
// (GET /public/access/invites/{token}).
type PublicInvite struct {
	ID        string    `json:"invite_link_id"`
	Name      string    `json:"name"`
	PortalIDs []string  `json:"portal_ids"`
	ValidFrom time.Time `json:"valid_from"`
	ValidTo   time.Time `json:"valid_to"`
	Schedules []Window  `json:"schedules,omitempty"`
	Enabled   bool      `json:"is_enabled"`
	MaxUses   *int      `json:"max_uses"`
	Uses      int       `json:"uses"`
	// Status is one of the Status… constants, by the business clock.
	Status string  `json:"status"`
	Grants []Grant `json:"grants"`
}

// publicView builds the guest payload. Caller holds s.mu.
func (s *Server) publicView(in *invite) PublicInvite {
	v := in.view()
	p := PublicInvite{
		ID: v.ID, Name: v.Name, PortalIDs: v.PortalIDs, ValidFrom: v.ValidFrom, ValidTo: v.ValidTo,
		Schedules: v.Schedules, Enabled: v.Enabled, Uses: v.Uses, Status: in.state(s.Now()), Grants: []Grant{},
	}
	if v.MaxUses > 0 {
		p.MaxUses = &v.MaxUses
	}
	for _, id := range in.portals {
		p.Grants = append(p.Grants, Grant{GrantID: "grant_" + id, PortalID: id, Action: "portal_open"})
	}
	return p
}

// publicPath keeps the token out of the request log.
func publicPath(r *http.Request) string {
	p := "/public/access/invites/[token]"
	if _, tail, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/public/access/invites/"), "/"); ok {
		p += "/" + tail
	}
	return p
}

// byTokenLocked finds a live invite by token. Caller holds s.mu.
func (s *Server) byTokenLocked(token string) (*invite, *apiError) {
	in, ok := s.byToken[token]
	if !ok || in.deleted {
		return nil, &apiError{http.StatusNotFound, "invite not found"}
	}
	return in, nil
}

func (s *Server) publicGet(r *http.Request, _ *Request) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.byTokenLocked(r.PathValue("token"))
	if e != nil {
		return e.result()
	}
	return result{status: http.StatusOK, body: s.publicView(in)}
}

func (s *Server) publicClaim(r *http.Request, _ *Request) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.byTokenLocked(r.PathValue("token"))
	if e != nil {
		return e.result()
	}
	return result{status: http.StatusOK, body: map[string]any{"claimed": true, "status": in.state(s.Now())}}
}

// publicExecute opens a portal: the invite must be enabled, inside a
// window and have uses left; each success counts one use.
func (s *Server) publicExecute(r *http.Request, _ *Request) result {
	var body struct {
		GrantID string `json:"grant_id"`
	}
	if e := decodeBody(r, &body); e != nil {
		return e.result()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, e := s.byTokenLocked(r.PathValue("token"))
	if e != nil {
		return e.result()
	}
	portal, ok := strings.CutPrefix(body.GrantID, "grant_")
	if !ok || !slices.Contains(in.portals, portal) {
		return badRequest("grant_id: not a grant of this invite").result()
	}
	if st := in.state(s.Now()); st != StatusActive {
		return fail(http.StatusForbidden, "invite is %s", strings.ReplaceAll(st, "_", " "))
	}
	in.uses++
	return result{status: http.StatusOK, body: map[string]any{"opened": portal, "uses": in.uses}}
}
