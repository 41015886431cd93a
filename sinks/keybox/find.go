package keybox

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

var _ reconcile.BatchFinder = (*Sink)(nil)

// listedAccess is one access of the list (see the package comment).
//
// How the list marks a cancelled access is an assumption: the key-box API
// document shows no list call, so it is silent on it. Reading a cancelled
// access as live would keep or adopt it and hand its dead code to the guest
// (locked out at the box); reading a live one as cancelled only costs a
// replacement. So an access counts as cancelled when any of these says so
// (see isCancelled):
//   - "cancelled" or "canceled" is true (a JSON boolean, a non-zero
//     number, or the string "true", "1", "yes", "y" or "on";
//     httpapi.LooseFlag);
//   - "status" or "state" is, ignoring case and surrounding blanks,
//     "cancelled", "canceled", "revoked", "deleted", "expired", "void",
//     "voided" or "disabled": words for an access that no longer opens the
//     box though its dates may still say it does. "ended" (what a box may
//     call an access whose end has simply passed) and any other word
//     ("active", "upcoming", ...) do not tell: the dates are judged on
//     their own;
//   - "cancelledAt", "canceledAt", "cancelled_at", "canceled_at" or
//     "revokedAt" holds a time (a non-zero number, or a string but a
//     blank one, "null", "none", "false", "0" or a zero date such as
//     0000-00-00 00:00:00; httpapi.LooseStamp).
//
// Decoding stays tolerant: unknown fields are ignored, and one of these
// fields of an unexpected JSON type (a status object, a number for
// cancelled) does not fail the list; it tells nothing.
type listedAccess struct {
	ID  httpapi.FlexString `json:"id"`
	Key struct {
		ID           httpapi.FlexString `json:"id"`
		SerialNumber string             `json:"serialNumber"`
	} `json:"key"`
	Code httpapi.FlexString `json:"code"`
	// BookingCode is the code under the document's own word for it, read
	// when code is absent (see created).
	BookingCode httpapi.FlexString `json:"bookingCode"`
	localWindow
	VisitorName string `json:"visitorName"`

	Cancelled        httpapi.LooseFlag  `json:"cancelled"`
	Canceled         httpapi.LooseFlag  `json:"canceled"`
	Status           httpapi.LooseWord  `json:"status"`
	State            httpapi.LooseWord  `json:"state"`
	CancelledAt      httpapi.LooseStamp `json:"cancelledAt"`
	CanceledAt       httpapi.LooseStamp `json:"canceledAt"`
	CancelledAtSnake httpapi.LooseStamp `json:"cancelled_at"`
	CanceledAtSnake  httpapi.LooseStamp `json:"canceled_at"`
	RevokedAt        httpapi.LooseStamp `json:"revokedAt"`
}

// cancelledWords are the status (or state) values, lower case, that mark an
// access as cancelled (see listedAccess).
var cancelledWords = map[string]bool{
	"cancelled": true, "canceled": true, "revoked": true, "deleted": true,
	"expired": true, "void": true, "voided": true, "disabled": true,
}

// isCancelled reports whether the list marks a as cancelled, in any of the
// ways listedAccess accepts.
func (a *listedAccess) isCancelled() bool {
	return bool(a.Cancelled) || bool(a.Canceled) ||
		cancelledWords[string(a.Status)] || cancelledWords[string(a.State)] ||
		bool(a.CancelledAt) || bool(a.CanceledAt) || bool(a.CancelledAtSnake) || bool(a.CanceledAtSnake) || bool(a.RevokedAt)
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
// A sought access none matched whose stay's 3RPMS key carries a code
// (Sought.Carries) is the not-cancelled access with that code on any of
// the property's keys, over any window. One sought without a room (a stay
// now in another property's room, whose accesses here are sought to be
// ended) is looked for that way alone.
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
		case c.RoomID == "":
			// A stay in none of the property's rooms (moved into another
			// property's): only the code its key carries can show one
			// of the property's accesses is its, below.
			continue
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

	// Each key's list is read once, for the first stay that needs it.
	lists := map[KeyRef]accessList{}
	listOf := func(ref KeyRef, what func() string) (accessList, error) {
		if list, ok := lists[ref]; ok {
			return list, nil
		}
		list, err := s.accesses(ctx, what(), ref)
		if err == nil {
			lists[ref] = list
		}
		return list, err
	}
	out := make([]*reconcile.Held, len(sought))
	taken := map[httpapi.FlexString]bool{}
	for i, sk := range sought {
		c, ref := sk.Cred, refs[i]
		if c.RoomID == "" {
			continue
		}
		list, err := listOf(ref, func() string {
			return fmt.Sprintf("find access for stay %s in room %s (%s)", c.Stay.ID, c.RoomID, ref.label())
		})
		if err != nil {
			return nil, err
		}
		guestless, named := visitorName("", c.Stay), visitorName(sk.Guest, c.Stay)
		var best *listedAccess
		for j := range list.Data {
			a := &list.Data[j]
			if taken[a.ID] || known[string(a.ID)] || !s.matches(a, ref, wants[i], c.Valid) || (sk.Exact && a.VisitorName != named && a.VisitorName != guestless) {
				continue
			}
			if best == nil || a.VisitorName == guestless || best.VisitorName != guestless {
				best = a
			}
		}
		if best != nil {
			taken[best.ID] = true
			out[i] = &reconcile.Held{System: reconcile.SystemKeyBox, RemoteID: string(best.ID), Secret: reconcile.Secret(best.code()), Valid: c.Valid, RoomID: c.RoomID}
		}
	}
	// A stay none matched whose 3RPMS key carries a code: the access with
	// that code, on any of the property's keys, over any window, is the
	// stay's (moved or re-dated while the state was lost). Taken, it is
	// replaced like any access whose key or window changed; left, its
	// code would open the box of a room the stay left, or past its end.
	var keys []KeyRef // the property's usable keys, by room
	for _, room := range slices.Sorted(maps.Keys(s.opts.Rooms)) {
		if ref := s.opts.Rooms[room]; ref.check() == nil {
			keys = append(keys, ref)
		}
	}
	for i, sk := range sought {
		if out[i] != nil || sk.Carries == "" {
			continue
		}
		c := sk.Cred
		for _, ref := range keys {
			list, err := listOf(ref, func() string {
				return fmt.Sprintf("find access for stay %s by the code its key carries (%s)", c.Stay.ID, ref.label())
			})
			if err != nil {
				return nil, err
			}
			a := carrying(list, sk, taken, known)
			if a == nil {
				continue
			}
			taken[a.ID] = true
			h := &reconcile.Held{System: reconcile.SystemKeyBox, RemoteID: string(a.ID), Secret: reconcile.Secret(a.code())}
			if start, end, ok := s.listedWindow(a); ok {
				h.Valid = reconcile.Window{Start: start, End: end}
			}
			if ref == refs[i] {
				h.RoomID = c.RoomID
			}
			out[i] = h
			break
		}
	}
	return out, nil
}

// carrying is the first access of list that is live, neither taken nor
// known, carries the code sk.Carries and, for an Exact sought, names the
// stay's visitor (or none); nil when there is none.
func carrying(list accessList, sk reconcile.Sought, taken map[httpapi.FlexString]bool, known map[string]bool) *listedAccess {
	guestless, named := visitorName("", sk.Cred.Stay), visitorName(sk.Guest, sk.Cred.Stay)
	for j := range list.Data {
		a := &list.Data[j]
		if a.ID == "" || a.isCancelled() || taken[a.ID] || known[string(a.ID)] || string(a.code()) != sk.Carries.Reveal() ||
			(sk.Exact && a.VisitorName != named && a.VisitorName != guestless) {
			continue
		}
		return a
	}
	return nil
}

// code is the access's code: "code", else "bookingCode".
func (a *listedAccess) code() httpapi.FlexString { return cmp.Or(a.Code, a.BookingCode) }

// accesses lists the accesses to the key ref (one GET, paced, retried
// after an outage, counted as a read). codes, the access codes the read
// concerns, are kept out of a server message as send keeps them.
func (s *Sink) accesses(ctx context.Context, what string, ref KeyRef, codes ...reconcile.Secret) (accessList, error) {
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
	verdict, err := s.send(ctx, what, http.MethodGet, s.opts.ListPath+"?"+q.Encode(), nil, &list, codes...)
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
// window w would have made: the same local dates and times in the same
// zone, or a window that reads (listedWindow) as the same instants, to the
// minute, however the list shows it.
func (s *Sink) matches(a *listedAccess, ref KeyRef, w localWindow, valid reconcile.Window) bool {
	switch {
	case a.ID == "" || a.isCancelled():
		return false
	case ref.ID != "" && string(a.Key.ID) != ref.ID:
		return false
	case ref.SerialNumber != "" && a.Key.SerialNumber != "" && a.Key.SerialNumber != ref.SerialNumber:
		return false
	case (a.TimeZone == "" || a.TimeZone == w.TimeZone) &&
		a.StartDate == w.StartDate && a.StartTime == w.StartTime && a.EndDate == w.EndDate && a.EndTime == w.EndTime:
		return true
	}
	start, end, ok := s.listedWindow(a)
	return ok && start.Equal(valid.Start.Truncate(time.Minute)) && end.Equal(valid.End.Truncate(time.Minute))
}

// listedWindow reads the instants of a listed access's window. The
// key-box document shows no list, so how one shows a window is an
// assumption, read tolerantly: local dates ("YYYY-MM-DD") and times
// ("HH:MM", or "HH:MM:SS") in the access's timeZone, or in the property's
// (Options.TimeZone) when the list gives none or one this host does not
// know; or, with no time, a date that is an ISO 8601 date-time with its
// offset (the document's deprecated startDate and endDate). ok is false
// when either end cannot be read.
func (s *Sink) listedWindow(a *listedAccess) (start, end time.Time, ok bool) {
	loc := s.opts.TimeZone
	if l := listedZone(a.TimeZone); l != nil {
		loc = l
	}
	at := func(date, clock string) (time.Time, bool) {
		date, clock = strings.TrimSpace(date), strings.TrimSpace(clock)
		if clock == "" {
			t, err := time.Parse(time.RFC3339, date)
			return t, err == nil
		}
		for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05"} {
			if t, err := time.ParseInLocation(layout, date+" "+clock, loc); err == nil {
				return t, true
			}
		}
		return time.Time{}, false
	}
	start, sok := at(a.StartDate, a.StartTime)
	end, eok := at(a.EndDate, a.EndTime)
	return start, end, sok && eok
}

// zones holds the zones listedZone loaded, by name (nil: none by that
// name): FindAll reads every listed access's window against each stay it
// seeks, and time.LoadLocation reads the zone database on every call.
var zones sync.Map

// listedZone is the zone a listed access names, or nil for none, "Local"
// or a name this host does not know.
func listedZone(name string) *time.Location {
	if name == "" || name == "Local" {
		return nil
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = nil
	}
	zones.Store(name, l)
	return l
}

var _ reconcile.Checker = (*Sink)(nil)

// Check implements reconcile.Checker: it lists the accesses to the key of
// c's room and reports whether the access c records is there, not
// cancelled, and open over the whole of need (to the minute, as the key box
// keeps times).
func (s *Sink) Check(ctx context.Context, c *reconcile.Credential, need reconcile.Window) (reconcile.Checked, error) {
	not := func(format string, args ...any) (reconcile.Checked, error) {
		return reconcile.Checked{Why: fmt.Sprintf(format, args...)}, nil // the key box has no update call: never InPlace
	}
	if c == nil || c.RemoteID == "" {
		return not("no access recorded")
	}
	ref, known := s.opts.Rooms[c.RoomID]
	if !known {
		return not("room %s is not mapped to a key in the key-box config", c.RoomID)
	}
	what := fmt.Sprintf("check access %s for stay %s", c.RemoteID, c.Stay.ID)
	list, err := s.accesses(ctx, what, ref)
	if err != nil {
		return reconcile.Checked{}, err
	}
	for _, a := range list.Data {
		if string(a.ID) != c.RemoteID {
			continue
		}
		if a.isCancelled() {
			return not("access %s is cancelled", c.RemoteID)
		}
		start, end, readable := s.listedWindow(&a)
		switch {
		case !readable:
			return not("access %s has no readable window", c.RemoteID)
		case start.After(need.Start.Truncate(time.Minute)) || end.Before(need.End.Truncate(time.Minute)):
			return not("access %s opens %s %s to %s %s, not the whole stay", c.RemoteID, a.StartDate, a.StartTime, a.EndDate, a.EndTime)
		}
		return reconcile.Checked{Live: true}, nil
	}
	return not("access %s is not in the key box", c.RemoteID)
}
