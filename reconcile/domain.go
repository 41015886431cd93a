package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// System names an external system keysync reads from or writes to.
type System string

// The systems keysync knows.
const (
	System3RPMS    System = "3rpms"
	SystemGuestway System = "guestway"
	SystemOpenApp  System = "openapp"
	SystemKeyBox   System = "keybox"
)

// Method is how a room is opened, chosen per room in the config.
type Method string

// The access methods: a generated PIN, a key-box access, an OpenApp invite.
const (
	MethodPIN        Method = "pin"
	MethodKeyStorage Method = "key_storage"
	MethodQR         Method = "qr"
)

// Valid reports whether m is one of the known methods.
func (m Method) Valid() bool {
	switch m {
	case MethodPIN, MethodKeyStorage, MethodQR:
		return true
	}
	return false
}

// StayRef identifies a stay across runs: the property, the source system
// and the source's own id for it.
type StayRef struct {
	Property string `json:"property"`
	Source   System `json:"source"`
	ID       string `json:"id"`
}

// String formats the reference as property/source/id.
func (r StayRef) String() string { return fmt.Sprintf("%s/%s/%s", r.Property, r.Source, r.ID) }

// Stay is one room stay as a source reports it now.
type Stay struct {
	Ref       StayRef
	RoomID    string
	RoomName  string
	Arrival   Date
	Departure Date
	// Key is the room access key the source says is assigned to the stay,
	// whoever created it; nil when none.
	Key *RemoteKey
	// Cancelled is set by sources that report cancelled reservations
	// (Guestway); 3RPMS drops them from its reads instead.
	Cancelled bool
	// Guest is the lead guest's name, where the source gives it.
	Guest string
	// Guests is the number of guests, where the source gives it.
	Guests int
	// Locks are the smart-lock accesses the source already holds for the
	// stay (Guestway "reservation accesses"), shown in plans and reports.
	Locks []LockAccess
	// LocksUnread says why the source could not read the stay's Locks
	// ("" when it did): the stay is planned all the same, its PINs only
	// unknown.
	LocksUnread string
	// Unreadable says why the source could not read the stay (its dates,
	// say), "" when it could. Only Ref is then set, with the room where
	// the source could read it (RoomID, RoomName, MovedTo) and Cancelled
	// where it could tell so: the runner plans nothing from it. A
	// cancelled one's credentials are withdrawn; the others are left as
	// recorded until the recorded departure, but for those of a room it
	// has left (see planner.unreadable), and a note asks a person to look.
	Unreadable string
	// MovedTo names the property whose room the stay is in now, when the
	// source serves several properties of one hotel and the stay moved out
	// of this one's rooms into that one's: its PIN key goes with it (and
	// is replaced there, as for any room move).
	MovedTo string
}

// LockAccess is a smart-lock PIN a source system already issued for a
// stay. keysync records and reports it; it does not change it.
type LockAccess struct {
	LockID   string `json:"lock_id"`
	LockName string `json:"lock_name"`
	PIN      Secret `json:"pin"`
	// Unreadable marks a PIN the source sent in a form keysync cannot
	// show truthfully (PIN is then empty): a guest is told none.
	Unreadable bool `json:"pin_unreadable,omitempty"`
}

// RemoteKey is a room access key as a source shows it on a stay.
type RemoteKey struct {
	ID string
	// Type is the GraphQL __typename (RoomAccessPin, RoomAccessKeyStorage,
	// RoomAccessQR, or a type added after keysync was built).
	Type string
	// PIN is the key's PIN for PIN and key-storage types, used to keep new
	// PINs unique in the property.
	PIN Secret
	// QRData is what a RoomAccessQR encodes: for a key derived from an
	// OpenApp invite, the guest's link.
	QRData Secret
}

// Kind is what a credential is, on the system that holds it.
type Kind string

// The kinds of credential keysync issues.
const (
	// KindPINKey is a 3RPMS RoomAccessPin.
	KindPINKey Kind = "RoomAccessPin"
	// KindKeyStorageKey is a 3RPMS RoomAccessKeyStorage.
	KindKeyStorageKey Kind = "RoomAccessKeyStorage"
	// KindQRKey is a 3RPMS RoomAccessQR.
	KindQRKey Kind = "RoomAccessQR"
	// KindInvite is an OpenApp time-bound access invite.
	KindInvite Kind = "openapp_invite"
	// KindKeyBoxAccess is a key-box access to a room's physical key.
	KindKeyBoxAccess Kind = "keybox_access"
)

// Status is where a credential is in its life.
type Status string

// Credential statuses. Pending and Active are live; Deleted, Released and
// Abandoned are final and kept only for the audit trail.
const (
	// StatusPending: the create was sent (or about to be) and its outcome is
	// not known; the remote id is unknown.
	StatusPending Status = "pending"
	// StatusActive: the credential exists remotely under RemoteID.
	StatusActive Status = "active"
	// StatusDisabled: it exists remotely but is switched off (an OpenApp
	// invite of a cancelled stay); it is deleted once the stay's window
	// has passed, or switched on again if the stay comes back.
	StatusDisabled Status = "disabled"
	// StatusDeleted: keysync deleted it remotely.
	StatusDeleted Status = "deleted"
	// StatusReleased: removed from its stay while another stay still holds
	// the same remote key, which that stay's credential now owns.
	StatusReleased Status = "released"
	// StatusAbandoned: keysync gave the credential up: a create that failed
	// or whose outcome was lost, or an unassigned 3RPMS key that 3RPMS would
	// not delete. For 3RPMS such a key can only exist unassigned, which
	// grants nothing and which 3RPMS deletes after two days (the 3RPMS Room
	// Access Key API, "Cleanup").
	StatusAbandoned Status = "abandoned"
	// StatusRetired: a 3RPMS key keysync stopped acting on because 3RPMS
	// refused to assign it, or to take it off a stay the source no longer
	// shows. It is never assigned again: once a read shows it on no stay it
	// is deleted (and the stay gets a new key); a read that shows it on its
	// stay makes it the stay's key again; while the stay is unseen keysync
	// waits for 3RPMS's own cleanup (see settle.go).
	StatusRetired Status = "retired"
)

// keysKeptAfterDeparture is how long 3RPMS keeps a key on a departed stay
// before its own cleanup revokes and deletes it ("2 days after room stay
// departure", the 3RPMS Room Access Key API); it also deletes keys left
// unassigned that long.
const keysKeptAfterDeparture = 48 * time.Hour

// Live reports whether a credential in status s may exist remotely.
func (s Status) Live() bool {
	return s == StatusPending || s == StatusActive || s == StatusDisabled || s == StatusRetired
}

// Credential is one credential keysync issued (or adopted), as recorded in
// the state store.
type Credential struct {
	// ID is the store's id; 0 until first saved.
	ID     int64
	Stay   StayRef
	System System
	Kind   Kind
	// RoomID is the room the credential was issued for.
	RoomID string
	// RemoteID is the id the remote system gave it; empty while pending.
	RemoteID string
	Status   Status
	// Assigned records that the key is assigned to the stay in 3RPMS, as
	// far as keysync last knew. A fresh read of the stay overrides it.
	Assigned bool
	// Adopted marks a credential found during backfill rather than created.
	Adopted bool
	// Secretless marks an invite or key-box access whose create answer
	// carried no secret (a key box that answers without the code): no key
	// can be made from it, and a replacement would not carry one either.
	Secretless bool
	// Stale is set by the runner, for this run only (never stored), on a
	// credential whose secret it forgot because a read-back did not show
	// it live (confirmKept): the planner replaces it.
	Stale bool
	// Drifted is set by the runner, for this run only (never stored), on a
	// credential a read-back found switched off or valid over less than
	// its window (Checked.InPlace): the planner updates it in place.
	Drifted bool
	// ReplaceOnly marks a time-bound credential the system refused to
	// change in place (an update refused): the planner replaces it, new
	// before old, instead of updating it (settle.go).
	ReplaceOnly bool
	// Valid is the access window a time-bound credential (invite, key-box
	// access) was last set to.
	Valid Window
	// DerivedFrom is the store id of the credential whose secret a 3RPMS
	// key carries: the key-box access behind a RoomAccessKeyStorage, the
	// invite behind a RoomAccessQR. 0 for keys keysync generates.
	DerivedFrom int64
	// PIN is a generated key's PIN (a derived key's code): set by the
	// planner on a create, and by the store, which keeps it sealed, on
	// credentials it loads.
	PIN Secret
	// Compartment and QRData are the rest of a derived 3RPMS key's content,
	// set only while it is being created; never stored.
	Compartment Secret
	QRData      Secret
	// Secret is what a create returned (an invite token, a key-box code);
	// the store keeps it sealed and sets it on credentials it loads.
	Secret    Secret
	Arrival   Date
	Departure Date
	UpdatedAt time.Time
}

// Window is the interval in which a stay's credentials must work.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// From is what is left of w at t: its start moved up to t if it has
// passed. A credential that opened later than a window that has already
// begun (an in-house guest's invite, opened when it was made) covers all
// that still needs covering.
func (w Window) From(t time.Time) Window {
	if w.Start.Before(t) {
		w.Start = t
	}
	return w
}

// Property is the policy for one property: where it is, its hours and how
// each room is opened. It is built from the config.
type Property struct {
	Name        string
	Location    *time.Location
	CheckIn     TimeOfDay
	CheckOut    TimeOfDay
	GraceBefore time.Duration
	GraceAfter  time.Duration
	// WindowDays is how far ahead keysync issues credentials (the 3RPMS
	// Room Access Key API recommends 7).
	WindowDays int
	// Rooms maps a room id to its access method.
	Rooms map[string]Method
	// DefaultMethod applies to rooms not in Rooms; empty means such rooms are
	// reported and skipped.
	DefaultMethod Method
	PIN           PINPolicy
	// SharedPortals gives every stay an OpenApp invite (to the property's
	// lobby, garage and other shared portals), whatever its room's method.
	SharedPortals bool
}

// methodFor returns the access method of a room, and false when the room is
// not mapped and there is no default.
func (p *Property) methodFor(roomID string) (Method, bool) {
	if m, ok := p.Rooms[roomID]; ok {
		return m, true
	}
	if p.DefaultMethod != "" {
		return p.DefaultMethod, true
	}
	return "", false
}

// checkRoomKeys catches a config that keys rooms by name instead of id: a
// key of Rooms that no stay's room id matches but that is the name of a
// room whose own id Rooms does not have. Planned as is, the stays in such
// rooms would lose their credentials or get another room's method, so it
// is an error (wrapping ErrConfig) that names the id the config probably
// meant. Only the rooms of the stays read are known, so a room whose id and
// name both appear in Rooms is taken as meant.
func (p *Property) checkRoomKeys(stays []Stay) error {
	ids := map[string]bool{}
	byName := map[string]string{}
	for _, s := range stays {
		ids[s.RoomID] = true
		if s.RoomName != "" && s.RoomName != s.RoomID {
			byName[s.RoomName] = s.RoomID
		}
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(p.Rooms)) {
		if id, ok := byName[key]; ok && !ids[key] && p.Rooms[id] == "" {
			errs = append(errs, fmt.Errorf("property %s: rooms[%q]: no room has id %q, but room %s (id %s) is named so; rooms are keyed by the source's room id: did you mean rooms[%q]? %w",
				p.Name, key, key, key, id, id, ErrConfig))
		}
	}
	return errors.Join(errs...)
}

// Window returns the access window of a stay: arrival date at check-in time
// to departure date at check-out time in the property's zone, widened by the
// grace on each side. It is the one place keysync computes a window. A
// check-in time a daylight-saving switch repeats opens at its first
// occurrence, a check-out time at its last (Date.At, Date.LastAt).
func (p *Property) Window(arrival, departure Date) Window {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	return Window{
		Start: arrival.At(p.CheckIn, loc).Add(-p.GraceBefore),
		End:   departure.LastAt(p.CheckOut, loc).Add(p.GraceAfter),
	}
}

// ReadRange returns the dates a run reads stays for at instant now: stays
// with departure after from and arrival on or before to, as in the 3RPMS
// Room Access Key API's example ("January 30th + next 6 days" is le 2026-02-05 for 7 days). from
// reaches back two days before now − grace, so a stay departing today is
// seen until its window ends and yesterday's departures, which the nightly
// run cleans up, come with the window read instead of costing look-ups by
// id; the planner decides by exact instants. to reaches further than
// today + WindowDays − 1 when the grace before arrival opens a later
// arrival's window on one of those days: that access must exist when it
// opens, not from the next night's run on.
func (p *Property) ReadRange(now time.Time) (from, to Date) {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	from = DateOf(now.Add(-p.GraceAfter).In(loc)).AddDays(-2)
	last := DateOf(now.In(loc)).AddDays(p.WindowDays - 1)
	to = last
	// Each later arrival's window opens a day later: the loop ends.
	for a := last.AddDays(1); !last.Before(DateOf(a.At(p.CheckIn, loc).Add(-p.GraceBefore).In(loc))); a = a.AddDays(1) {
		to = a
	}
	return from, to
}

// backfillReadRange is ReadRange reaching back as far as 3RPMS keeps keys
// on departed stays (keysKeptAfterDeparture, plus a day for the departure
// date's own hours): after the state file was lost, a backfill must find
// and withdraw the keys of ours still on stays that already left.
func (p *Property) backfillReadRange(now time.Time) (from, to Date) {
	_, to = p.ReadRange(now)
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	from = DateOf(now.Add(-p.GraceAfter).In(loc)).AddDays(-int(keysKeptAfterDeparture/(24*time.Hour)) - 1)
	return from, to
}

// sourceName is a source system as people write it.
func sourceName(s System) string {
	switch s {
	case System3RPMS:
		return "3RPMS"
	case SystemGuestway:
		return "Guestway"
	}
	return string(s)
}
