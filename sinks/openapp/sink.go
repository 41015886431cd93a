package openapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// DefaultMaxResponseBytes caps a response body; a larger one is an error,
// not an allocation.
const DefaultMaxResponseBytes = 1 << 20

// Options configures a Sink.
type Options struct {
	// BaseURL is the API base, such as https://api.openapp.house/api/v1.
	BaseURL string
	// APIKey is sent as Authorization: Bearer.
	APIKey reconcile.Secret
	// OrgID is sent as X-Org; it must be the API key's organisation.
	OrgID string
	// IntegrationID is the Virtual Access integration the invites belong to.
	IntegrationID string
	// Rooms maps a room id to the ids of its portals (the room door).
	Rooms map[string][]string
	// SharedPortals are added to every invite (lobby, garage).
	SharedPortals []string
	// MaxUses is sent as max_uses on create; 0 leaves it out (unlimited).
	MaxUses int
	// GuestURL is the base of the link a guest opens for an invite (see
	// GuestURL); Derive writes that link into a RoomAccessQR.
	GuestURL string
	// Property is the property whose stays this sink serves; it is the
	// owner tag's property when an action's stay names none, and an action
	// for another property is refused.
	Property string
	// Listed are the names of every property of the config (this one's
	// too). An invite whose owner tag names a property not among them (one
	// renamed or removed) is FindAll's for a stay of Property with the
	// same source and id only when it opens exactly that stay's room over
	// exactly the window sought: a renamed property takes its invites
	// over, and never another property's. Nil: such an invite is never
	// taken.
	Listed []string
	// NoList says the API has no call that lists invites (the OpenApp
	// document shows none): FindAll, Find and Check fail with
	// reconcile.ErrNoList without a request. A 405 to the list says so
	// too.
	NoList bool
	// Transport is the shared HTTP client's part: 429s waited out,
	// idempotent calls (PUT, DELETE) retried after an outage, creates
	// never; MaxResponseBytes 0 means DefaultMaxResponseBytes.
	httpapi.Transport
}

// Sink applies invite actions to OpenApp. It implements reconcile.Sink,
// reconcile.Finder and reconcile.Deriver.
type Sink struct {
	opts Options
	http *httpapi.Client
	// serverPages is set once the invite list refused per_page and took
	// a read without it (eachInvite).
	serverPages atomic.Bool
}

var (
	_ reconcile.Sink    = (*Sink)(nil)
	_ reconcile.Deriver = (*Sink)(nil)
)

// New returns a Sink, or the error of options the HTTP client cannot be
// built from (a negative MaxResponseBytes).
func New(opts Options) (*Sink, error) {
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	client, err := httpapi.New(httpapi.Options{
		Transport: opts.Transport, System: reconcile.SystemOpenApp, Name: "openapp", BaseURL: opts.BaseURL,
		MaxResponseBytes: DefaultMaxResponseBytes,
		Auth: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+opts.APIKey.Reveal())
			r.Header.Set("X-Org", opts.OrgID)
		},
	})
	if err != nil {
		return nil, err
	}
	return &Sink{opts: opts, http: client}, nil
}

// MaxBatch implements reconcile.Sink: OpenApp takes one invite per request.
func (s *Sink) MaxBatch() int { return 1 }

// Apply implements reconcile.Sink for exactly one action.
//
// The request is paced by Options.Pacer; a 429 is waited out and a PUT or
// DELETE retried after an outage as Options.Retry allows, each attempt
// counted in the Meter. A create is never sent twice.
//
// The returned error is a failure of the request as a whole: 401 and 403
// wrap reconcile.ErrUnauthorized; 429 is a *httpapi.RateLimitedError, or
// wraps httpapi.ErrWaitTooLong when its Retry-After is longer than the
// run waits; a 5xx or a lost answer wraps both reconcile.ErrUnavailable and
// reconcile.ErrUnknownOutcome (the server may have acted), a failed dial
// reconcile.ErrUnavailable alone (nothing was sent), and an unreadable
// answer reconcile.ErrUnknownOutcome alone; an error that wraps none of
// these (a refused or cancelled wait for the pacer, say) means nothing was
// sent. The Outcome's Err holds what concerns the action alone: the action
// cannot be expressed (nothing sent), or the server answered 404
// (reconcile.ErrNotFound), 409 (reconcile.ErrConflict), 400 or 422
// (reconcile.ErrRejected, with the server's message), or a create's answer
// lacks the token or link id (reconcile.ErrUnknownOutcome).
func (s *Sink) Apply(ctx context.Context, actions []*reconcile.Action) ([]reconcile.Outcome, error) {
	if len(actions) != 1 {
		return nil, fmt.Errorf("openapp: %d actions in one request; OpenApp takes one invite per request", len(actions))
	}
	o, err := s.apply(ctx, actions[0])
	if err != nil {
		return nil, err
	}
	return []reconcile.Outcome{o}, nil
}

func (s *Sink) apply(ctx context.Context, a *reconcile.Action) (reconcile.Outcome, error) {
	what := fmt.Sprintf("%s invite for stay %s", a.Op, a.Stay)
	refuse := func(err error) (reconcile.Outcome, error) {
		return reconcile.Outcome{Err: fmt.Errorf("openapp: %s: %w", what, err)}, nil
	}
	if s.opts.Property != "" && a.Stay.Property != "" && a.Stay.Property != s.opts.Property {
		return refuse(fmt.Errorf("stay belongs to property %q, this OpenApp sink to %q", a.Stay.Property, s.opts.Property))
	}
	var (
		method, u string
		body      any
	)
	switch a.Op {
	case reconcile.OpCreate, reconcile.OpUpdate:
		in, err := s.inviteBody(a)
		if err != nil {
			return refuse(err)
		}
		method, u, body = http.MethodPost, s.invitesPath(), in
		if a.Op == reconcile.OpUpdate {
			id, err := linkID(a)
			if err != nil {
				return refuse(err)
			}
			in.MaxUses, in.IsEnabled = 0, ptr(true)
			method, u = http.MethodPut, s.invitesPath()+"/"+url.PathEscape(id)
		}
	case reconcile.OpDisable:
		id, err := linkID(a)
		if err != nil {
			return refuse(err)
		}
		method, u, body = http.MethodPut, s.invitesPath()+"/"+url.PathEscape(id), inviteBody{IsEnabled: ptr(false)}
	case reconcile.OpDelete:
		id, err := linkID(a)
		if err != nil {
			return refuse(err)
		}
		method, u = http.MethodDelete, s.invitesPath()+"/"+url.PathEscape(id)
	default:
		return refuse(fmt.Errorf("operation %q is not an OpenApp invite operation", a.Op))
	}

	var secrets []string
	if c := a.Cred; c != nil {
		secrets = []string{c.Secret.Reveal(), c.QRData.Reveal()}
	}
	raw, actErr, err := s.do(ctx, what, method, u, body, secrets)
	if he := (*httpapi.Error)(nil); method == http.MethodPut && errors.As(err, &he) && he.Status == http.StatusMethodNotAllowed {
		// The invites' path took the create (or the delete) but takes no
		// PUT: this server changes no invite in place. That is an answer
		// about this invite, not a wrong path (which would fail the
		// create too): reconcile replaces it, new before old, or deletes
		// it where it would switch it off, and the other invites go on.
		return reconcile.Outcome{Err: fmt.Errorf("%w; OpenApp takes no PUT on an invite: %w", err, reconcile.ErrRejected)}, nil
	}
	if err != nil {
		return reconcile.Outcome{}, err
	}
	if actErr != nil {
		return reconcile.Outcome{Err: actErr}, nil
	}
	if a.Op != reconcile.OpCreate {
		return reconcile.Outcome{}, nil
	}
	type invite struct {
		Token  string             `json:"invite_token"`
		LinkID httpapi.FlexString `json:"invite_link_id"`
	}
	var created struct {
		invite
		// Data is the invite wrapped as the list wraps its invites: the
		// OpenApp document shows the create's answer bare, but a server
		// that wraps every answer is read the same.
		Data json.RawMessage `json:"data"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &created); err != nil {
			// do checked the syntax; a field of the wrong type remains.
			return reconcile.Outcome{Err: fmt.Errorf("openapp: %s: answer is not an invite: %v: %w", what, jsonErrorWithoutValue(err), reconcile.ErrUnknownOutcome)}, nil
		}
		if created.Token == "" && created.LinkID == "" && len(created.Data) > 0 {
			_ = json.Unmarshal(created.Data, &created.invite) // what it cannot read stays unknown below
		}
	}
	if created.Token == "" || created.LinkID == "" {
		return reconcile.Outcome{Err: fmt.Errorf("openapp: %s: answer lacks invite_token or invite_link_id; the invite may exist: %w", what, reconcile.ErrUnknownOutcome)}, nil
	}
	return reconcile.Outcome{RemoteID: string(created.LinkID), Secret: reconcile.Secret(created.Token)}, nil
}

// inviteBody is the JSON of a create or update; omitted fields are left
// out of the request.
type inviteBody struct {
	PortalIDs []string `json:"portal_ids,omitempty"`
	Name      string   `json:"name,omitempty"`
	ValidFrom string   `json:"valid_from,omitempty"`
	ValidTo   string   `json:"valid_to,omitempty"`
	MaxUses   int      `json:"max_uses,omitempty"`
	IsEnabled *bool    `json:"is_enabled,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// inviteBody builds the fields a create and an update share.
func (s *Sink) inviteBody(a *reconcile.Action) (*inviteBody, error) {
	portals := s.portals(a.RoomID)
	if len(portals) == 0 {
		return nil, fmt.Errorf("room %q has no OpenApp portals and no shared portals are configured", a.RoomID)
	}
	w := a.Window
	if w == nil || w.Start.IsZero() || w.End.IsZero() {
		return nil, errors.New("the action has no access window")
	}
	from, to := wireTime(w.Start), wireTime(w.End)
	if !w.End.Truncate(time.Second).After(w.Start.Truncate(time.Second)) {
		return nil, fmt.Errorf("window ends (%s) no later than it starts (%s)", to, from)
	}
	ref := a.Stay
	if ref.Property == "" {
		ref.Property = s.opts.Property
	}
	if a.Op == reconcile.OpCreate && a.Priority == reconcile.PriorityInHouse {
		// The guest's window has opened already: a create without a
		// start opens at once, as the OpenApp document says, where a start
		// in the past may be refused. (The planner takes any start already
		// passed as good as another.)
		from = ""
	}
	return &inviteBody{
		PortalIDs: portals,
		Name:      inviteName(a, ref),
		ValidFrom: from,
		ValidTo:   to,
		MaxUses:   max(0, s.opts.MaxUses),
	}, nil
}

// portals returns a room's portals and the shared ones, deduplicated and
// sorted.
func (s *Sink) portals(roomID string) []string {
	var out []string
	for _, id := range slices.Concat(s.opts.Rooms[roomID], s.opts.SharedPortals) {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// wireTime formats an instant as RFC 3339 UTC with whole seconds.
func wireTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

func linkID(a *reconcile.Action) (string, error) {
	if a.Cred == nil || a.Cred.RemoteID == "" {
		return "", errors.New("the credential has no invite_link_id")
	}
	return a.Cred.RemoteID, nil
}

// invitesPath is the invite collection's path below Options.BaseURL.
func (s *Sink) invitesPath() string {
	return "/integrations/" + url.PathEscape(s.opts.IntegrationID) + "/access-invites"
}
