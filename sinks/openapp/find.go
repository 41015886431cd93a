package openapp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// listPageSize is the per_page the sink asks the invite list for.
const listPageSize = 100

// maxListPages bounds how many pages Find follows: a server that always
// answers has_more would otherwise keep it reading for ever.
const maxListPages = 1000

var _ reconcile.BatchFinder = (*Sink)(nil)

// listedInvite is one invite of the list (see the package comment).
type listedInvite struct {
	LinkID    httpapi.FlexString `json:"invite_link_id"`
	Token     string             `json:"invite_token"`
	Name      string             `json:"name"`
	PortalIDs []string           `json:"portal_ids"`
	ValidFrom string             `json:"valid_from"`
	ValidTo   string             `json:"valid_to"`
	// IsEnabled absent counts as enabled, as on create.
	IsEnabled *bool `json:"is_enabled"`
	// Enabled, Status and State are other marks of an invite switched
	// off (see off).
	Enabled offFlag           `json:"enabled"`
	Status  httpapi.LooseWord `json:"status"`
	State   httpapi.LooseWord `json:"state"`
}

// offWords are the status (or state) values, lower case, that mark an
// invite as switched off (see listedInvite.off).
var offWords = map[string]bool{
	"disabled": true, "revoked": true, "cancelled": true, "canceled": true,
	"deleted": true, "suspended": true, "void": true, "voided": true,
}

// off reports whether the list shows the invite switched off. The OpenApp
// document shows is_enabled only as a field PUT takes, and no list at all,
// so how a list marks an invite switched off is an assumption. Read as
// enabled, a disabled invite would be adopted or kept for a guest it does
// not let in; read as disabled, an enabled one only costs a replacement.
// So any mark says so: is_enabled or enabled false, or a status or state
// (any case) of disabled, revoked, cancelled, canceled, deleted,
// suspended, void or voided; "expired", "inactive" (which may say only
// that the invite has not started) and other words leave it to the
// window. A mark of an unexpected type tells nothing and fails nothing.
func (in *listedInvite) off() bool {
	return (in.IsEnabled != nil && !*in.IsEnabled) || bool(in.Enabled) || offWords[string(in.Status)] || offWords[string(in.State)]
}

// offFlag is true when a JSON value is false (or the string "false"): an
// "enabled" field that switches the invite off. Any other value,
// whatever its type, is false; it never fails to decode.
type offFlag bool

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *offFlag) UnmarshalJSON(b []byte) error {
	var v any
	_ = json.Unmarshal(b, &v)
	switch v := v.(type) {
	case bool:
		*f = offFlag(!v)
	case string:
		*f = offFlag(strings.EqualFold(strings.TrimSpace(v), "false"))
	default:
		*f = false
	}
	return nil
}

// invitePage is one page of the invite list.
type invitePage struct {
	Data []listedInvite `json:"data"`
	// HasMore is nil when the server does not say (the OpenApp document
	// shows no list, so its paging is a guess): the list is then read on
	// while pages come back with invites, to the first empty one, or the
	// first a 400, 404 or 422 refuses (a page number past the end); a page
	// with no invite the pages before did not hold (a server that does
	// not page) ends it too. Stopping at the first page instead would take
	// a list cut at the server's page size for the whole, and issue again
	// what is listed further on.
	HasMore *bool `json:"has_more"`
}

// Find implements reconcile.Finder: it reads back the invite that c's
// create made, when the answer to the create was lost. It is FindAll of c
// alone.
func (s *Sink) Find(ctx context.Context, c *reconcile.Credential) (remoteID string, secret reconcile.Secret, found bool, err error) {
	return reconcile.FindOne(ctx, s.FindAll, c)
}

// FindAll implements reconcile.BatchFinder: it lists the integration's
// invites once (every page; each page one read, paced, retried after an
// outage and counted in the Meter as a read) and, for each of sought,
// considers those that are enabled and whose name's owner tag
// (ParseOwnerTag) names the credential's stay, the sink's Property
// standing in for a stay that names none. A disabled invite is never
// taken: a fresh create makes an enabled one, and a disabled invite of the
// stay belongs to a credential keysync switched off. Of those considered,
// one whose window (valid_from, valid_to, to the second) equals c.Valid is
// preferred, then the newest (the last listed). The Held gives its
// invite_link_id, its invite_token, its window, and the credential's room
// when its portal_ids are that room's (Options.Rooms and SharedPortals),
// else no room. The owner tag names the stay, so an exact search
// (reconcile.Sought) takes nothing more.
//
// Errors are those of Apply (401 and 403 wrap reconcile.ErrUnauthorized, a
// 404 reconcile.ErrNotFound, and so on), plus an answer that is not an
// invite list; none holds a token. A credential of another property, or
// not an invite, is refused without a request.
func (s *Sink) FindAll(ctx context.Context, sought []reconcile.Sought, known map[string]bool) ([]*reconcile.Held, error) {
	creds := make([]*reconcile.Credential, len(sought))
	for i, sk := range sought {
		creds[i] = sk.Cred
	}
	refs := make([]reconcile.StayRef, len(creds))
	byStay := map[reconcile.StayRef][]int{}
	var secrets []string
	for i, c := range creds {
		if c == nil {
			return nil, errors.New("openapp: find invite: no credential")
		}
		what := fmt.Sprintf("find invite for stay %s", c.Stay)
		if s.opts.Property != "" && c.Stay.Property != "" && c.Stay.Property != s.opts.Property {
			return nil, fmt.Errorf("openapp: %s: stay belongs to property %q, this OpenApp sink to %q", what, c.Stay.Property, s.opts.Property)
		}
		if c.Kind != "" && c.Kind != reconcile.KindInvite {
			return nil, fmt.Errorf("openapp: %s: credential kind %q is not an OpenApp invite", what, c.Kind)
		}
		refs[i] = c.Stay
		refs[i].Property = cmp.Or(refs[i].Property, s.opts.Property)
		byStay[refs[i]] = append(byStay[refs[i]], i)
		unnamed := reconcile.StayRef{Source: c.Stay.Source, ID: c.Stay.ID}
		byStay[unnamed] = append(byStay[unnamed], i)
		secrets = append(secrets, c.Secret.Reveal())
	}
	what := "find invites"
	if len(creds) == 1 {
		what = fmt.Sprintf("find invite for stay %s", creds[0].Stay)
	}
	best := make([]*listedInvite, len(creds))
	rank := make([]int, len(creds))
	inRoom := make([]bool, len(creds)) // best[i] opens only the stay's room
	tagged := make([][]*listedInvite, len(creds))
	err := s.eachInvite(ctx, what, secrets, func(in *listedInvite) bool {
		if known[string(in.LinkID)] {
			return false
		}
		owner := ownerOf(in)
		for _, i := range byStay[owner] {
			r := s.rank(in, refs[i], creds[i].Valid)
			if r == 0 {
				continue
			}
			tagged[i] = append(tagged[i], in)
			// Ties: the one opening the stay's room, then the later
			// (newer) one.
			if room := s.opensOnly(in, creds[i].RoomID); r > rank[i] || r == rank[i] && (room || !inRoom[i]) {
				best[i], rank[i], inRoom[i] = in, r, room
			}
		}
		if s.opts.Listed == nil || owner.Property == "" || slices.Contains(s.opts.Listed, owner.Property) {
			return false
		}
		// Tagged by a property the config no longer lists: a renamed
		// property's invite, when it opens exactly the stay's room over
		// exactly the window sought.
		owner.Property = ""
		for _, i := range byStay[owner] {
			if windowRank(in, creds[i].Valid) == 2 && s.opensOnly(in, creds[i].RoomID) && rank[i] <= 1 {
				best[i], rank[i], inRoom[i] = in, 1, true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	out := make([]*reconcile.Held, len(creds))
	taken := map[string]bool{}
	for i, in := range best {
		if in == nil || taken[string(in.LinkID)] {
			continue
		}
		taken[string(in.LinkID)] = true
		out[i] = s.held(in, creds[i].RoomID)
	}
	// The other enabled invites whose tag names the stay (a previous
	// install's, left by a move or a replacement it did not finish) go
	// with the one taken, to be withdrawn: each may open doors, another
	// room's too.
	for i, h := range out {
		if h == nil {
			continue
		}
		for _, in := range tagged[i] {
			if !taken[string(in.LinkID)] {
				taken[string(in.LinkID)] = true
				h.Spares = append(h.Spares, *s.held(in, creds[i].RoomID))
			}
		}
	}
	return out, nil
}

// held is the Held of a listed invite sought for roomID: the room when it
// opens only that room's doors (with the shared ones), else "".
func (s *Sink) held(in *listedInvite, roomID string) *reconcile.Held {
	room := ""
	if s.opensOnly(in, roomID) {
		room = roomID
	}
	return &reconcile.Held{System: reconcile.SystemOpenApp, RemoteID: string(in.LinkID), Secret: reconcile.Secret(in.Token),
		Valid: reconcile.Window{Start: listedTime(in.ValidFrom), End: listedTime(in.ValidTo)}, RoomID: room}
}

// opensOnly reports whether the invite's portals are the room's (with the
// shared ones), no more and no fewer.
func (s *Sink) opensOnly(in *listedInvite, roomID string) bool {
	return slices.Equal(slices.Compact(slices.Sorted(slices.Values(in.PortalIDs))), s.portals(roomID))
}

// ownerOf is the stay an invite's owner tag names, or the zero StayRef.
func ownerOf(in *listedInvite) reconcile.StayRef {
	ref, _ := ParseOwnerTag(in.Name)
	return ref
}

// listedTime reads an RFC 3339 time of the list; the zero time if it is not
// one.
func listedTime(wire string) time.Time {
	t, err := time.Parse(time.RFC3339, wire)
	if err != nil {
		return time.Time{}
	}
	return t
}

// eachInvite calls visit for every invite of the integration's list, page
// after page, until visit returns true. secrets are scrubbed from errors.
func (s *Sink) eachInvite(ctx context.Context, what string, secrets []string, visit func(*listedInvite) bool) error {
	if s.opts.NoList {
		return fmt.Errorf("openapp: %s: no_list is set: %w", what, reconcile.ErrNoList)
	}
	ownSize := s.serverPages.Load() // the server's page size, once it refused ours
	seen := map[string]bool{}       // the invite ids of the pages read
	saidNothing := false            // the page before did not say whether the list goes on
	for page := 1; ; page++ {
		if page > maxListPages {
			return fmt.Errorf("openapp: %s: the invite list has more than %d pages", what, maxListPages)
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(listPageSize)}}
		if ownSize {
			q.Del("per_page")
		}
		raw, actErr, err := s.do(ctx, what, http.MethodGet, s.invitesPath()+"?"+q.Encode(), nil, secrets)
		if page == 1 && !ownSize && httpapi.RefusedInput(actErr) {
			// The list and its page size are keysync's guess: a server
			// that refuses per_page is read at its own, from now on.
			q.Del("per_page")
			if raw, actErr, err = s.do(ctx, what, http.MethodGet, s.invitesPath()+"?"+q.Encode(), nil, secrets); err == nil && actErr == nil {
				ownSize = true
				s.serverPages.Store(true)
			}
		}
		switch {
		case err != nil:
			return httpapi.NoList(err, "openapp.no_list: true")
		case actErr != nil && page > 1 && saidNothing && pastEnd(actErr):
			// A list that does not say it goes on, refusing the page past
			// its end (as many servers answer a page number too high).
			return nil
		case actErr != nil:
			return httpapi.NoList(actErr, "openapp.no_list: true")
		case raw == nil:
			return fmt.Errorf("openapp: %s: page %d of the invite list is empty", what, page)
		}
		var p invitePage
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("openapp: %s: page %d is not an invite list: %v", what, page, jsonErrorWithoutValue(err))
		}
		saidNothing = p.HasMore == nil
		fresh := false
		for i := range p.Data {
			if id := string(p.Data[i].LinkID); !seen[id] {
				seen[id], fresh = true, true
			}
		}
		if p.HasMore == nil && len(p.Data) > 0 && !fresh {
			return nil // the server does not page: the pages before held the list
		}
		for i := range p.Data {
			if visit(&p.Data[i]) {
				return nil
			}
		}
		switch {
		case p.HasMore == nil && len(p.Data) == 0, p.HasMore != nil && !*p.HasMore:
			return nil
		case len(p.Data) == 0:
			return fmt.Errorf("openapp: %s: page %d of the invite list is empty but has_more is set", what, page)
		}
	}
}

var _ reconcile.Checker = (*Sink)(nil)

// Check implements reconcile.Checker: it reads the integration's invite
// list for the invite c records and reports whether it is there, enabled,
// and valid over the whole of need.
func (s *Sink) Check(ctx context.Context, c *reconcile.Credential, need reconcile.Window) (reconcile.Checked, error) {
	if c == nil || c.RemoteID == "" {
		return reconcile.Checked{Why: "no invite recorded"}, nil
	}
	what := fmt.Sprintf("check invite %s for stay %s", c.RemoteID, c.Stay.ID)
	var found *listedInvite
	if err := s.eachInvite(ctx, what, []string{c.Secret.Reveal()}, func(in *listedInvite) bool {
		if string(in.LinkID) == c.RemoteID {
			found = in
		}
		return found != nil
	}); err != nil {
		return reconcile.Checked{}, err
	}
	if found == nil {
		return reconcile.Checked{Why: fmt.Sprintf("invite %s is not in OpenApp", c.RemoteID)}, nil
	}
	from, ferr := time.Parse(time.RFC3339, found.ValidFrom)
	to, terr := time.Parse(time.RFC3339, found.ValidTo)
	// Found, but switched off or narrower than need: a PUT sets it right,
	// keeping its link (InPlace).
	switch {
	case found.off():
		return reconcile.Checked{InPlace: true, Why: fmt.Sprintf("invite %s is switched off", c.RemoteID)}, nil
	case ferr != nil || terr != nil:
		return reconcile.Checked{InPlace: true, Why: fmt.Sprintf("invite %s has no readable window", c.RemoteID)}, nil
	case from.After(need.Start) || to.Before(need.End):
		return reconcile.Checked{InPlace: true, Why: fmt.Sprintf("invite %s opens %s to %s, not the whole stay (%s to %s)", c.RemoteID,
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), need.Start.UTC().Format(time.RFC3339), need.End.UTC().Format(time.RFC3339))}, nil
	}
	return reconcile.Checked{Live: true}, nil
}

// rank scores a listed invite for FindAll: 0 when it is not the stay's (no
// link id, disabled, or no tag naming ref), 2 when its window equals w,
// and 1 otherwise.
func (s *Sink) rank(in *listedInvite, ref reconcile.StayRef, w reconcile.Window) int {
	if got, ok := ParseOwnerTag(in.Name); !ok || got != ref {
		return 0
	}
	return windowRank(in, w)
}

// windowRank is rank without the tag: 0 for an invite without a link id or
// disabled, 2 when its window equals w, and 1 otherwise.
func windowRank(in *listedInvite, w reconcile.Window) int {
	if in.LinkID == "" || in.off() {
		return 0
	}
	if sameInstant(in.ValidFrom, w.Start) && sameInstant(in.ValidTo, w.End) {
		return 2
	}
	return 1
}

// sameInstant reports whether an RFC 3339 time of the list is t, to the
// second (as the sink sends windows).
func sameInstant(wire string, t time.Time) bool {
	got := listedTime(wire)
	return !t.IsZero() && !got.IsZero() && got.Truncate(time.Second).Equal(t.Truncate(time.Second))
}

// pastEnd reports whether a list page's refusal may say the page number
// is past the list's end: 400, 404 or 422.
func pastEnd(err error) bool {
	e := httpapi.Refusal(err)
	return e != nil && (e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity)
}
