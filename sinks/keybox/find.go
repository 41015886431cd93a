package keybox

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

var _ reconcile.BatchFinder = (*Sink)(nil)

// listedAccess is one access of the list (see the package comment).
type listedAccess struct {
	ID  flexString `json:"id"`
	Key struct {
		ID           flexString `json:"id"`
		SerialNumber string     `json:"serialNumber"`
	} `json:"key"`
	Code flexString `json:"code"`
	localWindow
	VisitorName string `json:"visitorName"`
	Cancelled   bool   `json:"cancelled"`
}

// accessList is the answer to a list.
type accessList struct {
	Data []listedAccess `json:"data"`
}

// Find implements reconcile.Finder: it reads back the access that c's
// create made, when the answer to the create was lost. It is FindAll of c
// alone.
func (s *Sink) Find(ctx context.Context, c *reconcile.Credential) (remoteID string, secret reconcile.Secret, found bool, err error) {
	return reconcile.FindOne(ctx, s.FindAll, c)
}

// FindAll implements reconcile.BatchFinder. For each of sought it lists the
// accesses to the key of its room (Options.Rooms[c.RoomID]) with one GET
// per key, shared by the credentials of that key (paced, retried after an
// outage, counted in the Meter as a read), and looks for one that is not
// cancelled, is for that key, and has the start and end date and time
// (and, when the answer gives one, the time zone) a create sends for
// c.Valid: the window in Options.TimeZone, cut to the minute. The Held
// gives its id, its code (empty when the answer has none), c.Valid and
// c's room (whose key it opens).
//
// Sought exactly (a backfill), an access must also carry the visitor name
// a create for the guest would send (visitorName), or the one a create
// for the stay before it had a guest name sent ("Guest <stay id>"): on
// the room's key over the same dates there may be one of a cancelled
// booking, which must not open the box for a new guest. Otherwise (a lost create's read-back,
// whose guest name is not known) it matches on key, start and end alone,
// and when several do, the one named as a create names a stay without a
// guest name ("Guest <stay id>") is preferred, then the newest (the last
// listed). The list holds only the authenticated user's accesses, so
// another user's (the front desk's) are never taken.
//
// Errors are those of Apply (401 and 403 wrap reconcile.ErrUnauthorized, a
// 404 reconcile.ErrNotFound, a 5xx reconcile.ErrUnavailable, and so on),
// plus an unmapped room, a credential without a window or of another
// property (nothing sent) and an answer that is not an access list; none
// holds the password, a code or a compartment.
func (s *Sink) FindAll(ctx context.Context, sought []reconcile.Sought, known map[string]bool) ([]*reconcile.Held, error) {
	refs := make([]KeyRef, len(sought))
	wants := make([]localWindow, len(sought))
	for i, sk := range sought {
		c := sk.Cred
		if c == nil {
			return nil, fmt.Errorf("%s: find access: no credential", s.label())
		}
		what := fmt.Sprintf("find access for stay %s in room %s", c.Stay.ID, c.RoomID)
		switch {
		case s.opts.Property != "" && c.Stay.Property != "" && c.Stay.Property != s.opts.Property:
			return nil, fmt.Errorf("%s: %s: the stay belongs to property %q", s.label(), what, c.Stay.Property)
		case c.Kind != "" && c.Kind != reconcile.KindKeyBoxAccess:
			return nil, fmt.Errorf("%s: %s: credential kind %q is not a key-box access", s.label(), what, c.Kind)
		}
		ref, ok := s.opts.Rooms[c.RoomID]
		if !ok {
			return nil, fmt.Errorf("%s: %s: room is not mapped to a key in the key-box config", s.label(), what)
		}
		if err := ref.check(); err != nil {
			return nil, fmt.Errorf("%s: %s: %v", s.label(), what, err)
		}
		if c.Valid.Start.IsZero() || c.Valid.End.IsZero() {
			return nil, fmt.Errorf("%s: %s (%s): the credential has no access window", s.label(), what, ref.label())
		}
		want, err := s.localWindow(c.Valid)
		if err != nil {
			return nil, fmt.Errorf("%s: %s (%s): %w", s.label(), what, ref.label(), err)
		}
		refs[i], wants[i] = ref, want
	}

	lists := map[KeyRef]accessList{}
	out := make([]*reconcile.Held, len(sought))
	taken := map[flexString]bool{}
	for i, sk := range sought {
		c, ref := sk.Cred, refs[i]
		list, ok := lists[ref]
		if !ok {
			what := fmt.Sprintf("find access for stay %s in room %s (%s)", c.Stay.ID, c.RoomID, ref.label())
			var err error
			if list, err = s.accesses(ctx, what, ref); err != nil {
				return nil, err
			}
			lists[ref] = list
		}
		guestless, named := visitorName("", c.Stay), visitorName(sk.Guest, c.Stay)
		var best *listedAccess
		for j := range list.Data {
			a := &list.Data[j]
			if taken[a.ID] || known[string(a.ID)] || !matches(a, ref, wants[i]) || (sk.Exact && a.VisitorName != named && a.VisitorName != guestless) {
				continue
			}
			if best == nil || a.VisitorName == guestless || best.VisitorName != guestless {
				best = a
			}
		}
		if best != nil {
			taken[best.ID] = true
			out[i] = &reconcile.Held{System: reconcile.SystemKeyBox, RemoteID: string(best.ID), Secret: reconcile.Secret(best.Code), Valid: c.Valid, RoomID: c.RoomID}
		}
	}
	return out, nil
}

// accesses lists the accesses to the key ref (one GET, paced, retried
// after an outage, counted as a read).
func (s *Sink) accesses(ctx context.Context, what string, ref KeyRef) (accessList, error) {
	q := url.Values{}
	if ref.ID != "" {
		q.Set("keyId", ref.ID)
	} else {
		q.Set("keySerialNumber", ref.SerialNumber)
	}
	var list accessList
	if s.opts.NoList {
		return list, fmt.Errorf("%s: %s: no_list is set: %w", s.label(), what, reconcile.ErrNoList)
	}
	verdict, err := s.send(ctx, what, http.MethodGet, s.opts.ListPath+"?"+q.Encode(), nil, &list)
	switch {
	case err != nil:
		return list, httpapi.NoList(err, "keybox.no_list: true")
	case verdict != nil:
		return list, httpapi.NoList(verdict, "keybox.no_list: true")
	case list.Data == nil:
		return list, fmt.Errorf("%s: %s: the answer has no data list", s.label(), what)
	}
	return list, nil
}

// matches reports whether a listed access is one a create for key ref over
// window w would have made.
func matches(a *listedAccess, ref KeyRef, w localWindow) bool {
	switch {
	case a.ID == "" || a.Cancelled:
		return false
	case ref.ID != "" && string(a.Key.ID) != ref.ID:
		return false
	case ref.SerialNumber != "" && a.Key.SerialNumber != "" && a.Key.SerialNumber != ref.SerialNumber:
		return false
	case a.TimeZone != "" && a.TimeZone != w.TimeZone:
		return false
	}
	return a.StartDate == w.StartDate && a.StartTime == w.StartTime && a.EndDate == w.EndDate && a.EndTime == w.EndTime
}

var _ reconcile.Checker = (*Sink)(nil)

// Check implements reconcile.Checker: it lists the accesses to the key of
// c's room and reports whether the access c records is there, not
// cancelled, and open over the whole of need (to the minute, as the key box
// keeps times).
func (s *Sink) Check(ctx context.Context, c *reconcile.Credential, need reconcile.Window) (ok bool, why string, err error) {
	if c == nil || c.RemoteID == "" {
		return false, "no access recorded", nil
	}
	ref, known := s.opts.Rooms[c.RoomID]
	if !known {
		return false, fmt.Sprintf("room %s is not mapped to a key in the key-box config", c.RoomID), nil
	}
	what := fmt.Sprintf("check access %s for stay %s", c.RemoteID, c.Stay.ID)
	list, err := s.accesses(ctx, what, ref)
	if err != nil {
		return false, "", err
	}
	for _, a := range list.Data {
		if string(a.ID) != c.RemoteID {
			continue
		}
		if a.Cancelled {
			return false, fmt.Sprintf("access %s is cancelled", c.RemoteID), nil
		}
		loc := s.opts.TimeZone
		if a.TimeZone != "" {
			if l, err := time.LoadLocation(a.TimeZone); err == nil {
				loc = l
			}
		}
		start, serr := time.ParseInLocation("2006-01-02 15:04", a.StartDate+" "+a.StartTime, loc)
		end, eerr := time.ParseInLocation("2006-01-02 15:04", a.EndDate+" "+a.EndTime, loc)
		switch {
		case serr != nil || eerr != nil:
			return false, fmt.Sprintf("access %s has no readable window", c.RemoteID), nil
		case start.After(need.Start.Truncate(time.Minute)) || end.Before(need.End.Truncate(time.Minute)):
			return false, fmt.Sprintf("access %s opens %s %s to %s %s, not the whole stay", c.RemoteID, a.StartDate, a.StartTime, a.EndDate, a.EndTime), nil
		}
		return true, "", nil
	}
	return false, fmt.Sprintf("access %s is not in the key box", c.RemoteID), nil
}
