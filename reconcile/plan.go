package reconcile

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"
	"time"
)

// Op is what an action does to a credential.
type Op string

// Operations. Create, Assign, Revoke, Delete and Claim are sent to the
// system (3RPMS chains many into one request); Adopt, Abandon and Release
// change only keysync's own records.
const (
	OpCreate Op = "create"
	OpAssign Op = "assign"
	OpRevoke Op = "revoke"
	OpDelete Op = "delete"
	// OpUpdate changes a live credential in place: an OpenApp invite's
	// validity window or portals, so the guest's link keeps working.
	OpUpdate Op = "update"
	// OpDisable switches a credential off without deleting it: an OpenApp
	// invite of a cancelled stay (is_enabled false), deleted after grace.
	OpDisable Op = "disable"
	// OpClaim re-asserts a key found on a stay during backfill. It changes
	// nothing remotely and succeeds only for keys keysync's integration
	// created, which are then adopted; any other key is left alone.
	OpClaim Op = "claim"
	OpAdopt Op = "adopt"
	// OpKeep records a change keysync saw that needs no request (a PIN
	// room's stay extended): the plan lists it so a person sees it was
	// not missed.
	OpKeep    Op = "keep"
	OpAbandon Op = "abandon"
	OpRelease Op = "release"
)

// Remote reports whether the operation sends a request.
func (o Op) Remote() bool {
	switch o {
	case OpCreate, OpAssign, OpRevoke, OpDelete, OpClaim, OpUpdate, OpDisable:
		return true
	}
	return false
}

// Priority orders work when the request budget cannot cover a whole plan;
// lower goes first.
type Priority int

// Priorities, most urgent first.
const (
	PriorityRevoke        Priority = 1 // revocation and cleanup
	PriorityArrivalSoon   Priority = 2 // arrival within 24 hours
	PriorityInHouse       Priority = 3 // changes to stays in house
	PriorityLaterArrival  Priority = 4 // later arrivals, soonest first
	priorityArrivalWindow          = 24 * time.Hour
)

// Action is one step of a plan.
type Action struct {
	System    System  `json:"system"`
	Op        Op      `json:"action"`
	Stay      StayRef `json:"stay"`
	RoomID    string  `json:"room_id"`
	Room      string  `json:"room"`
	Arrival   Date    `json:"arrival"`
	Departure Date    `json:"departure"`
	Kind      Kind    `json:"kind,omitempty"`
	// Window is the access window a create or update sets on time-bound
	// credentials (OpenApp invites, key-box accesses).
	Window *Window `json:"window,omitempty"`
	// Guest is the guest's name where the source gives one (key-box
	// visitor name, invite name).
	Guest  string `json:"guest,omitempty"`
	Reason string `json:"reason"`
	// Step is the request round the action goes in: 1 for everything that
	// can go at once, 2 for assigns of keys created in step 1.
	Step     int      `json:"step"`
	Priority Priority `json:"priority"`
	// Cred is the credential acted on; actions on one credential share it.
	// It is apply's working state: apply updates it as outcomes arrive
	// (it is what the store saves), never the action itself.
	Cred *Credential `json:"-"`
	// Upstream is, for the create of a derived 3RPMS key, the credential
	// whose secret it carries; Apply fills the key's content from it.
	Upstream *Credential `json:"-"`
	// After makes the action wait for a replacement: it is sent only once
	// that credential's create succeeded (make before break), so a failed
	// replacement never leaves a guest with nothing.
	After *Credential `json:"-"`
	// Unseen marks an action planned from keysync's records alone: the
	// source no longer shows the stay, so nothing can show whether it
	// still holds the key (see settle.go for what a refusal then means).
	Unseen bool `json:"-"`
}

// Result is what became of an action (ActionReport).
type Result string

// Results of applying an action.
const (
	ResultDone    Result = "done"
	ResultFailed  Result = "failed"
	ResultUnknown Result = "unknown"
	ResultSkipped Result = "skipped"
	// ResultSettled: the system refused the action, and what keysync can
	// see says nothing is left to do (settle.go has the rules); the error
	// says why, and the run is not partial for it.
	ResultSettled Result = "settled"
)

// NoteKind classifies what a plan reports without acting on it.
type NoteKind string

// Note kinds.
const (
	NoteConflict     NoteKind = "conflict"
	NoteUnmappedRoom NoteKind = "unmapped_room"
	// NoteLockPIN shows a smart-lock PIN the source already holds.
	NoteLockPIN NoteKind = "lock_pin"
	// NoteMissingLockPIN flags an arrival within 24 hours in a pin room
	// whose source holds no smart-lock PIN for it.
	NoteMissingLockPIN NoteKind = "missing_lock_pin"
	// NoteUnknownOutcome: an invite or key-box access whose create has an
	// unknown outcome could not be read back yet; nothing more is issued
	// for it until it is.
	NoteUnknownOutcome NoteKind = "unknown_outcome"
	// NoteNoSecret: an invite or key-box access keysync created came back
	// without its token or code, so no 3RPMS key can carry it.
	NoteNoSecret NoteKind = "no_secret"
	// NoteEmptyWindow: a stay whose access window is empty (it arrives
	// and departs the same day, and check-out plus its grace comes no
	// later than check-in less its) can be given no invite or key-box
	// access, nor a key that carries one.
	NoteEmptyWindow NoteKind = "empty_window"
	// NoteUnlisted: a stay the window's read left out twice in a row,
	// though its look-up by id shows it in the window (a cancelled
	// reservation's stay, on a source that still answers for it by id), is
	// taken as gone: its credentials are withdrawn.
	NoteUnlisted NoteKind = "unlisted"
	// NoteUnlistedOnce: a stay the window's read left out, though its
	// look-up by id shows it in the window, and the whole run before did
	// not: kept as the look-up shows it (a read may miss a stay once).
	NoteUnlistedOnce NoteKind = "unlisted_once"
	// NoteUnreadableStay: a stay the source listed but keysync could not
	// read (Stay.Unreadable): what was issued for it is left as recorded
	// until its recorded departure; nothing new is issued. It needs a
	// person.
	NoteUnreadableStay NoteKind = "unreadable_stay"
)

// Note is something an operator should see that keysync will not act on.
type Note struct {
	Kind NoteKind `json:"kind"`
	Stay StayRef  `json:"stay"`
	// Room is the room's name where the source gives one; RoomID its id,
	// which is what the config's rooms are keyed by.
	Room      string `json:"room"`
	RoomID    string `json:"room_id,omitempty"`
	Arrival   Date   `json:"arrival"`
	Departure Date   `json:"departure"`
	Detail    string `json:"detail"`
	// Attention marks a note that needs a person before the guest
	// arrives: a stay arriving within 24 hours, or in house, in a room the
	// config maps explicitly that holds another integration's key, or in a
	// room with no access method.
	Attention bool `json:"attention,omitempty"`
	// Unkeyed marks a NoteUnreadableStay whose stay holds nothing keysync
	// issued and may be in house or arriving (its dates are unknown):
	// nothing was issued for it, or it moved out of the room that was.
	Unkeyed bool `json:"unkeyed,omitempty"`
	// PIN is a lock PIN for NoteLockPIN; it marshals redacted and is shown
	// only by plan --show-secrets.
	PIN Secret `json:"pin,omitempty"`
}

// Plan is the ordered list of actions that brings a property in line, and
// the notes for what it leaves alone. It is a value: budgeting and
// applying it change neither the plan nor its actions; what became of
// them is in the Report's PlanReport.
type Plan struct {
	Property string    `json:"property"`
	Now      time.Time `json:"now"`
	Actions  []*Action `json:"actions"`
	Notes    []Note    `json:"notes"`
	// Sync holds credentials whose records differ from what the source
	// shows (an assignment keysync did not record); applying saves them.
	Sync []*Credential `json:"-"`
	// Live counts the property's live credentials, and Withdrawn those of
	// them the plan takes away for any reason but a departure or a
	// replacement (stays gone or cancelled, rooms unmapped, methods
	// changed): the measure of an outage or a config slip (see Runner's
	// fail-safe).
	Live      int `json:"live_credentials"`
	Withdrawn int `json:"withdrawn_credentials"`
	// withdrawn holds the credentials Withdrawn counts: the fail-safe
	// holds the work of their stays (holdWithdrawals).
	withdrawn map[*Credential]bool
	// Seek holds, in a backfill planned without Input.Held, the invites
	// and key-box accesses to look for before anything is created
	// (BatchFinder, Exact): those the plan creates, and those the stays
	// whose 3RPMS key it claims would need once the claim shows the key is
	// ours. The runner plans again with what it found.
	Seek []Sought `json:"-"`
}

// Input is everything Compute needs: the stays a source reports, what keysync
// has recorded, the property's policy and the time.
type Input struct {
	Now      time.Time
	Property *Property
	// Stays holds the stays read for the window plus any stay outside it
	// that a live credential belongs to and that still exists.
	Stays []Stay
	// Credentials are the property's live recorded credentials.
	Credentials []Credential
	// Backfill claims keys of unknown owner found on stays (OpClaim) instead
	// of reporting them as conflicts: on first connection, or after the
	// state file was lost, some of them may be keysync's own.
	Backfill bool
	// Rand is the source of PIN randomness: crypto/rand.Reader in
	// production, a fixed stream in tests.
	Rand io.Reader
	// Deferred are stays whose work the last run deferred for lack of
	// request budget; their actions go first within their priority.
	Deferred map[StayRef]bool
	// UsedPINs are PINs in use in the property besides those on Stays (the
	// opened PINs and codes of keysync's live credentials, which a
	// targeted run's few stays do not show); new PINs avoid them too.
	UsedPINs []Secret
	// Siblings holds, by remote id, the 3RPMS keys keysync recorded for the
	// other properties of the same hotel (one source serving several
	// properties): a stay that moved into this property's rooms brings its
	// key along, and the key is adopted. Not nil (even empty) for such a
	// property: a key of unknown owner on its stays is then claimed, as in
	// a backfill, since it may be one a sibling let go of without this
	// property taking it up (a run stopped between the two).
	Siblings map[string]*Credential
	// Lent holds, by remote id, the 3RPMS keys keysync let go of while
	// another stay held them (released), with the stay each was issued
	// for, among the keys on Stays that no live record names (ReleasedKeys):
	// hotel staff gave such a key to the stay holding it, which keeps it.
	Lent map[string]StayRef
	// Scope, when not nil, is the stays a partial read covered (a targeted
	// run's stays, a short look-ahead): only their credentials may be
	// taken as gone, since nothing was read about the others.
	Scope map[StayRef]bool
	// Unreadable holds the stays the source listed but could not read
	// (Stay.Unreadable: why, and the room where it could be read; for one
	// holding nothing live, Arrival and Departure as last recorded, where
	// the Store keeps ended credentials): their credentials are left as
	// recorded until the last of their recorded windows ends (then cleaned
	// up as a departure's), and each gets a note that needs a person, but
	// for one in another property's room (MovedTo) that holds nothing here.
	Unreadable map[StayRef]Stay
	// Held holds, by stay, the invites and key-box accesses the systems
	// already hold that keysync has no record of (a backfill's read-back,
	// BatchFinder): the plan adopts one where it would create it.
	Held map[StayRef][]Held
	// KeyCarries holds the live invites and key-box accesses (by
	// credential id) that the 3RPMS key on their stay is made from,
	// whoever that key belongs to, with the key's id, as the runner
	// checked through the sinks' Derivers. A credential a key keysync may
	// not act on is made from is never ended on that key's account: the
	// guest's way in depends on it. In a backfill, such a key is also
	// kept, and the link recorded, where the record lacks it (a backfill
	// adopted them and stopped before it recorded the link).
	KeyCarries map[int64]string
}

// Compute plans the actions that bring the property in line with its
// stays. It is pure: no I/O, no clock, no logging. The only error is a
// failure to draw a PIN.
func Compute(in Input) (*Plan, error) {
	p := &planner{in: in, plan: &Plan{Property: in.Property.Name, Now: in.Now}}
	return p.run()
}

type planner struct {
	in   Input
	plan *Plan
	pins *pinGenerator
	rec  records
	// withdrawn holds the live credentials the plan withdraws (Plan.Withdrawn).
	withdrawn map[*Credential]bool
	// readTo is the last arrival date the run reads (Property.ReadRange):
	// later stays are not yet due.
	readTo Date
	// log holds the actions add made, in order: Plan.Actions once sorted.
	log actionLog
	// creds is where credential allocates, a chunk at a time.
	creds []Credential
	// adopted holds the credentials adoptHeld made, so each Held is
	// adopted once.
	adopted map[heldKey]*Credential
	// seekGone holds the looks for the credentials of cancelled stays and
	// of stays that left for a sibling's rooms, which go after the others
	// in Plan.Seek.
	seekGone []Sought
	// remotes holds the remote ids of the recorded credentials, by system
	// (recordedRemote).
	remotes map[System]map[string]bool
}

// heldKey names a stay's credential on one system.
type heldKey struct {
	stay   StayRef
	system System
}

// actionLog holds a plan's actions in the order they were planned, in
// chunks, so the plan's list of them is allocated once, at its final
// size, when they are sorted.
type actionLog struct {
	chunks [][]Action // all full but the last
	starts []int      // the number of actions before each chunk
	n      int        // the number of actions
}

// add appends a copy of act and returns it.
func (l *actionLog) add(act Action) *Action {
	last := len(l.chunks) - 1
	if last < 0 || len(l.chunks[last]) == cap(l.chunks[last]) {
		size := 16
		if last >= 0 {
			size = min(2*cap(l.chunks[last]), 4096)
		}
		l.chunks = append(l.chunks, make([]Action, 0, size))
		l.starts = append(l.starts, l.n)
		last++
	}
	l.chunks[last] = append(l.chunks[last], act)
	l.n++
	return &l.chunks[last][len(l.chunks[last])-1]
}

// since yields the actions added after the first n, in order.
func (l *actionLog) since(n int) iter.Seq[*Action] {
	return func(yield func(*Action) bool) {
		c := len(l.chunks) - 1
		for c > 0 && l.starts[c] > n {
			c--
		}
		for ; c >= 0 && c < len(l.chunks); c++ {
			chunk := l.chunks[c]
			for i := max(n-l.starts[c], 0); i < len(chunk); i++ {
				if !yield(&chunk[i]) {
					return
				}
			}
		}
	}
}

// records indexes the live recorded credentials by stay and by remote key
// id. The planner works on copies of them (Compute never mutates its
// input), made when their stay is planned; a copy that the plan neither
// changed nor refers to is dropped again, so a portfolio of stays with
// nothing to do costs no copies.
type records struct {
	in []Credential // Input.Credentials
	// order holds the indexes into in of the live credentials, grouped by
	// stay, each group in input order; groups[g] is one stay's span of it.
	order  []int32
	groups []credGroup
	// ids holds the first group of each stay id, by the id's hash
	// (idHash); groups of stays whose ids hash alike in ids (the same id
	// in other properties or sources, or a collision) are chained by
	// credGroup.next, and the stay's full ref picks among them. Keyed by
	// a number, a probe reads no string but the one looked up.
	ids  hashSlots
	seed maphash.Seed
	// keys holds each remote key id of the live 3RPMS credentials, found
	// by the id's hash in remotes.
	keys    []remoteKey
	remotes hashSlots
	// copies is, by index into in, the planner's copy once made; ptrs
	// holds a group's copies in order's layout.
	copies []*Credential
	ptrs   []*Credential
	// spare is where copies are made, a chunk at a time.
	spare []Credential
}

type credGroup struct {
	first, n int32
	next     int32 // the next group whose stay has the same id, or -1
	seen     bool  // the source returned the stay
}

// remoteKey is what records knows of a remote key id.
type remoteKey struct {
	// cred is the index into in of the live 3RPMS credential holding the
	// key (the last one recorded).
	cred int32
	// live counts the stays holding the key, so a key shared by two
	// stays (a split stay, the 3RPMS Room Access Key API) is deleted only
	// with the last one.
	live int32
}

func newRecords(creds []Credential) records {
	r := records{in: creds, seed: maphash.MakeSeed()}
	live, withKey := 0, 0
	for i := range creds {
		if c := &creds[i]; c.Status.Live() {
			live++
			if c.keyed() {
				withKey++
			}
		}
	}
	r.ids = newHashSlots(live)
	r.groups = make([]credGroup, 0, live)
	r.remotes = newHashSlots(withKey)
	r.keys = make([]remoteKey, 0, withKey)
	group := make([]int32, 0, live) // each live credential's group
	// The credentials go in blocks: the slots their look-ups start at
	// are warmed, then each is indexed.
	var idBuf, keyBuf [warmBlock]uint64
	for start := 0; start < len(creds); start += warmBlock {
		block := creds[start:min(start+warmBlock, len(creds))]
		idHashes, keyHashes := idBuf[:0], keyBuf[:0]
		for i := range block {
			if c := &block[i]; c.Status.Live() {
				idHashes = append(idHashes, r.idHash(c.Stay.ID))
				if c.keyed() {
					keyHashes = append(keyHashes, r.idHash(c.RemoteID))
				}
			}
		}
		r.ids.warm(idHashes)
		r.remotes.warm(keyHashes)
		for j := range block {
			c, i := &block[j], start+j
			if !c.Status.Live() {
				continue
			}
			// Until order is laid out below, a group's first is the index
			// into creds of its first credential, which names its stay.
			h := idHashes[0]
			idHashes = idHashes[1:]
			slot, first, chained := r.ids.seek(h, r.ids.home(h))
			g, ok := first, chained
			for ok && creds[r.groups[g].first].Stay != c.Stay {
				g = r.groups[g].next
				ok = g >= 0
			}
			if !ok {
				g = int32(len(r.groups))
				next := int32(-1)
				if chained {
					next = first
				}
				r.ids.set(slot, h, g)
				r.groups = append(r.groups, credGroup{first: int32(i), next: next})
			}
			r.groups[g].n++
			group = append(group, g)
			if c.keyed() {
				k := r.addKey(c.RemoteID, keyHashes[0])
				keyHashes = keyHashes[1:]
				k.cred, k.live = int32(i), k.live+1
			}
		}
	}
	var at int32
	for g := range r.groups {
		r.groups[g].first = at
		at += r.groups[g].n
	}
	r.order = make([]int32, live)
	filled := make([]int32, len(r.groups))
	j := 0
	for i := range creds {
		if !creds[i].Status.Live() {
			continue
		}
		g := &r.groups[group[j]]
		r.order[g.first+filled[group[j]]] = int32(i)
		filled[group[j]]++
		j++
	}
	r.copies = make([]*Credential, len(creds))
	r.ptrs = make([]*Credential, live)
	return r
}

// recorded returns the stay's credentials as the planner's copies, and
// how many of them were copied just now.
func (r *records) recorded(g int32) ([]*Credential, int) {
	grp := r.groups[g]
	idx := r.order[grp.first : grp.first+grp.n]
	missing := 0
	for _, i := range idx {
		if r.copies[i] == nil {
			missing++
		}
	}
	if cap(r.spare)-len(r.spare) < missing {
		// A new chunk: one group's copies are side by side, for drop.
		r.spare = make([]Credential, 0, max(min(2*cap(r.spare), 4096), 16, missing))
	}
	out := r.ptrs[grp.first : grp.first+grp.n : grp.first+grp.n]
	made := 0
	for k, i := range idx {
		c := r.copies[i]
		if c == nil {
			r.spare = append(r.spare, r.in[i])
			c = &r.spare[len(r.spare)-1]
			r.copies[i] = c
			made++
		}
		out[k] = c
	}
	return out, made
}

// drop takes back the copies recorded made for group g if the plan, since
// it had made actions and syncs, neither changed them nor holds them.
// They were the last made, so their room is reused.
func (p *planner) drop(g int32, made, actions, syncs int) {
	r := &p.rec
	grp := r.groups[g]
	if int(grp.n) != made {
		return // copies kept earlier are in use
	}
	idx := r.order[grp.first : grp.first+grp.n]
	for _, i := range idx {
		c := r.copies[i]
		if *c != r.in[i] || p.withdrawn[c] {
			return
		}
		for a := range p.log.since(actions) {
			if a.Cred == c || a.After == c || a.Upstream == c {
				return
			}
		}
		if slices.Contains(p.plan.Sync[syncs:], c) {
			return
		}
	}
	for _, i := range idx {
		r.copies[i] = nil
	}
	r.spare = r.spare[:len(r.spare)-made]
}

// keyed says whether records indexes c by its remote key id (keys): a
// 3RPMS key that was created.
func (c *Credential) keyed() bool { return c.System == System3RPMS && c.RemoteID != "" }

// warmBlock is how many look-ups in a records table are warmed
// (hashSlots.warm) at a time.
const warmBlock = 64

// idHash is the hash of a stay id in ids, or of a remote key id in
// remotes.
func (r *records) idHash(id string) uint64 { return maphash.String(r.seed, id) }

// findKey returns the index in keys of the remote key id, whose hash is
// h, or false and the slot of remotes it would go in.
func (r *records) findKey(id string, h uint64) (slot uint64, k int32, ok bool) {
	slot, k, ok = r.remotes.seek(h, r.remotes.home(h))
	for ok && r.in[r.keys[k].cred].RemoteID != id {
		slot, k, ok = r.remotes.seek(h, slot+1)
	}
	return slot, k, ok
}

// addKey returns the remote key id's entry in keys, new if need be.
func (r *records) addKey(id string, h uint64) *remoteKey {
	slot, k, ok := r.findKey(id, h)
	if !ok {
		k = int32(len(r.keys))
		r.keys = append(r.keys, remoteKey{})
		r.remotes.set(slot, h, k)
	}
	return &r.keys[k]
}

// key returns the remote key id's entry in keys, or nil.
func (r *records) key(id string) *remoteKey {
	if _, k, ok := r.findKey(id, r.idHash(id)); ok {
		return &r.keys[k]
	}
	return nil
}

// ref is the stay of group g.
func (r *records) ref(g int32) StayRef { return r.in[r.order[r.groups[g].first]].Stay }

// group returns the group of the stay's credentials, and false when it
// has none.
func (r *records) group(ref StayRef) (int32, bool) {
	return r.groupHashed(ref, r.idHash(ref.ID))
}

// groupHashed is group for a stay whose id hashes to h.
func (r *records) groupHashed(ref StayRef, h uint64) (int32, bool) {
	_, g, ok := r.ids.seek(h, r.ids.home(h))
	for ok && r.ref(g) != ref {
		g = r.groups[g].next
		ok = g >= 0
	}
	return g, ok
}

// claimsUnknown says whether the plan claims a key of unknown owner on a
// stay (an ownership check, adopted if keysync made it): in a backfill,
// and for a property of a split hotel (Input.Siblings).
func (p *planner) claimsUnknown() bool { return p.in.Backfill || p.in.Siblings != nil }

// letGo counts one live record of remote key id fewer and returns how
// many are left.
func (r *records) letGo(id string) int32 {
	k := r.key(id)
	if k == nil {
		return 0
	}
	k.live--
	return k.live
}

// remote returns our credential holding the remote key id, or nil. It is
// for reading only: it may be the input's own record.
func (r *records) remote(id string) *Credential {
	k := r.key(id)
	if k == nil {
		return nil
	}
	if c := r.copies[k.cred]; c != nil {
		return c
	}
	return &r.in[k.cred]
}

// pinsInUse is the set of PINs a new one must differ from: those on the
// stays' keys and the others in use (UsedPINs).
func pinsInUse(stays []Stay, others []Secret) map[string]bool {
	// Room for the PINs on the stays and about one new one a stay.
	used := make(map[string]bool, len(stays)+len(stays)/8+len(others))
	for i := range stays {
		if k := stays[i].Key; k != nil && k.PIN != "" {
			used[k.PIN.Reveal()] = true
		}
	}
	for _, pin := range others {
		used[pin.Reveal()] = true
	}
	return used
}

// pinsToAvoid is pinsInUse for drawing PINs of the policy: it keeps only
// the PINs the policy can draw, and as numbers (pinSet).
func pinsToAvoid(policy PINPolicy, stays []Stay, others []Secret) *pinSet {
	used := newPINSet(policy, len(stays)+len(stays)/8+len(others))
	for i := range stays {
		if k := stays[i].Key; k != nil && k.PIN != "" {
			used.add([]byte(k.PIN.Reveal()))
		}
	}
	for _, pin := range others {
		used.add([]byte(pin.Reveal()))
	}
	return used
}

func (p *planner) run() (*Plan, error) {
	in := p.in
	_, p.readTo = in.Property.ReadRange(in.Now)
	p.pins = &pinGenerator{policy: in.Property.PIN, rand: in.Rand, used: pinsToAvoid(in.Property.PIN, in.Stays, in.UsedPINs)}

	p.rec = newRecords(in.Credentials)
	rec := &p.rec
	p.withdrawn = map[*Credential]bool{}
	p.plan.Live = len(rec.order)

	stays := stayOrder(in.Stays)
	// Each stay's group of credentials, or -1: looked up once, in input
	// order, which reads the stays front to back rather than in the order
	// they are planned.
	//
	// A stay holding a key of ours recorded for another stay (3RPMS reused
	// it when splitting a stay) will adopt it below. Count that holder
	// before any stay is planned, so the departed part of a split does not
	// delete the key the other part still holds. The stay's own records
	// are checked first: most stays hold the key recorded for them, and
	// need no look-up by key id.
	groupOf := make([]int32, len(in.Stays))
	var hashes [warmBlock]uint64
	for start := 0; start < len(in.Stays); start += warmBlock {
		block := in.Stays[start:min(start+warmBlock, len(in.Stays))]
		for j := range block {
			hashes[j] = rec.idHash(block[j].Ref.ID)
		}
		rec.ids.warm(hashes[:len(block)])
		for j := range block {
			s := &block[j]
			g, ok := rec.groupHashed(s.Ref, hashes[j])
			if !ok {
				g = -1
			}
			groupOf[start+j] = g
			if s.Key == nil {
				continue
			}
			if ok {
				grp := rec.groups[g]
				if slices.ContainsFunc(rec.order[grp.first:grp.first+grp.n], func(j int32) bool {
					c := &in.Credentials[j]
					return c.System == System3RPMS && c.RemoteID == s.Key.ID
				}) {
					continue
				}
			}
			if k := rec.key(s.Key.ID); k != nil {
				k.live++
			}
		}
	}
	for _, k := range stays {
		s := &in.Stays[k.stay]
		g := groupOf[k.stay]
		if g < 0 {
			if err := p.stay(*s, nil); err != nil {
				return nil, err
			}
			continue
		}
		rec.groups[g].seen = true
		creds, made := rec.recorded(g)
		actions, syncs := p.log.n, len(p.plan.Sync)
		if err := p.stay(*s, creds); err != nil {
			return nil, err
		}
		if made > 0 {
			p.drop(g, made, actions, syncs)
		}
	}

	// Credentials whose stay the source no longer returns at all.
	var gone []int32
	for g, grp := range rec.groups {
		if !grp.seen && (in.Scope == nil || in.Scope[rec.ref(int32(g))]) {
			gone = append(gone, int32(g))
		}
	}
	slices.SortFunc(gone, func(a, b int32) int { return strings.Compare(rec.ref(a).ID, rec.ref(b).ID) })
	for _, g := range gone {
		ref := rec.ref(g)
		creds, _ := rec.recorded(g)
		if u, ok := p.in.Unreadable[ref]; ok {
			p.unreadable(u, creds)
			continue
		}
		first := creds[0]
		p.endGone(Stay{Ref: ref, RoomID: first.RoomID, Arrival: first.Arrival, Departure: first.Departure}, creds,
			fmt.Sprintf("cancelled or deleted in %s (the stay is gone from its reads)", sourceName(ref.Source)))
	}
	// The unreadable stays keysync holds no record of: never issued
	// anything, or only ended credentials (their window in u). One in
	// another property's room is that property's to note.
	for _, ref := range slices.SortedFunc(maps.Keys(p.in.Unreadable), func(a, b StayRef) int { return strings.Compare(a.ID, b.ID) }) {
		u := p.in.Unreadable[ref]
		if _, recorded := rec.group(ref); recorded || u.MovedTo != "" {
			continue // planned with its records (unreadable); or not this property's
		}
		left := !u.Departure.IsZero() && p.departed(u.Arrival, u.Departure)
		p.unreadableNote(u, !left, true)
	}
	p.plan.Withdrawn = len(p.withdrawn)
	p.plan.withdrawn = p.withdrawn
	// The looks for a cancelled stay and for one now in a sibling's rooms
	// go after the live stays': a credential on a room over its dates is
	// a live stay's first.
	p.plan.Seek = append(p.plan.Seek, p.seekGone...)

	p.alignKeySteps()
	p.plan.Actions = sortActions(&p.log, p.in.Deferred)
	return p.plan, nil
}

// unreadable plans, and notes, a stay the source listed but could not
// read (u), whose records are creds.
//
// Held: what it holds for the room it is in (every room, where the source
// could not read that), while any of it is meant to open a door. Nothing
// says its dates changed, and a credential written since a change of
// dates may run later than the others, so the last to end decides.
//
// Ended: what it holds for a room it has left, as a withdrawal the
// fail-safe weighs (a readable stay's would be replaced, but nothing can
// be issued for the new room without the dates, and a read that put every
// stay in a room no config names must not end them all); and, cleaned up
// as a departure's, what ended with its recorded stay.
func (p *planner) unreadable(u Stay, creds []*Credential) {
	src := sourceName(u.Ref.Source)
	var here, left []*Credential // for the room it is in (every one, where that is not known), for others
	for _, c := range creds {
		if u.RoomID == "" || c.RoomID == u.RoomID {
			here = append(here, c)
		} else {
			left = append(left, c)
		}
	}
	if len(left) > 0 {
		last := latestRecorded(p.in.Property, left)
		p.endGone(Stay{Ref: u.Ref, RoomID: last.RoomID, Arrival: last.Arrival, Departure: last.Departure}, left,
			fmt.Sprintf("moved to room %s in %s, which keysync cannot key without the stay's dates (it could not read them)", u.RoomID, src))
	}
	if len(here) > 0 {
		last := latestRecorded(p.in.Property, here)
		s := Stay{Ref: u.Ref, RoomID: last.RoomID, RoomName: u.RoomName, Arrival: last.Arrival, Departure: last.Departure}
		if !p.departed(s.Arrival, s.Departure) {
			n := p.noteFor(NoteUnreadableStay, s, fmt.Sprintf("keysync could not read the stay from %s (%s): what it issued is left as recorded (the room and dates shown) and ended after that departure; check the reservation in %s",
				src, u.Unreadable, src))
			n.Attention = true
			p.plan.Notes = append(p.plan.Notes, n)
			return
		}
		p.endGone(s, here, fmt.Sprintf("its stay as recorded has ended (%s lists it, but keysync could not read it)", src))
	}
	if u.MovedTo == "" { // else the other property's to note
		p.unreadableNote(u, len(left) > 0, false)
	}
}

// unreadableNote notes an unreadable stay (u) that holds nothing live: it
// may be in house or arriving (unkeyed: it moved out of the room keysync
// keyed, or was never keyed and its recorded window, if any, has not
// passed), or it left with its recorded stay. noRecord says keysync holds
// no live record of it (in a backfill: none at all, yet).
func (p *planner) unreadableNote(u Stay, unkeyed, noRecord bool) {
	src := sourceName(u.Ref.Source)
	detail := "nothing is issued for it until it can be; check the reservation in %[1]s, and give the guest access by hand meanwhile"
	switch {
	case unkeyed && noRecord && p.in.Backfill:
		detail = "keysync holds no record of it (a backfill), and what the systems may already hold for it is looked for once it can be read; check the reservation in %[1]s, and whether the guest can get in"
	case !unkeyed:
		detail = "what keysync issued for it ended with its stay as recorded, and nothing is issued for it until it can be read; if the guest stays on, check the reservation in %[1]s and give access by hand meanwhile"
	}
	n := p.noteFor(NoteUnreadableStay, Stay{Ref: u.Ref, RoomID: u.RoomID, RoomName: u.RoomName},
		fmt.Sprintf("keysync could not read the stay from %s (%s): ", src, u.Unreadable)+fmt.Sprintf(detail, src))
	n.Attention, n.Unkeyed = true, unkeyed
	p.plan.Notes = append(p.plan.Notes, n)
}

// endGone withdraws creds, the records of a stay no read shows as it was (s,
// from the records), for reason: counted by the fail-safe, unless the
// stay's window has ended (the cleanup of a departure). The actions are
// planned from the records alone (Action.Unseen).
func (p *planner) endGone(s Stay, creds []*Credential, reason string) {
	n := p.log.n
	p.withdraw(s, creds, false, reason)
	if p.departed(s.Arrival, s.Departure) {
		// It left before it vanished: the cleanup of a departure (a
		// source that drops old stays), not a withdrawal.
		for _, c := range creds {
			delete(p.withdrawn, c)
		}
	}
	for a := range p.log.since(n) {
		a.Unseen = true
	}
}

// departed reports whether the access window of a stay from arrival to
// departure has ended.
func (p *planner) departed(arrival, departure Date) bool {
	return !p.in.Now.Before(p.in.Property.Window(arrival, departure).End)
}

// latestRecorded is the credential of creds (one stay's records, live)
// whose access window ends last; of two ending together, the later
// recorded.
func latestRecorded(prop *Property, creds []*Credential) *Credential {
	var last *Credential
	var end time.Time
	for _, c := range creds {
		if e := prop.Window(c.Arrival, c.Departure).End; last == nil || !e.Before(end) {
			last, end = c, e
		}
	}
	return last
}

// sortActions orders a plan's actions by step, then priority (revocations
// and cleanup first, then by urgency), the deferred stays' first within a
// priority. The sort is stable, so one stay's actions keep their order.
// There are few distinct keys, so each action is placed in one pass (a
// counting sort) instead of being compared n log n times.
func sortActions(actions *actionLog, deferred map[StayRef]bool) []*Action {
	if actions.n == 0 {
		return nil // as a plan with nothing to do always had
	}
	type sortKey struct {
		step  int
		prio  Priority
		later bool // the stay was not deferred
	}
	keyOf := func(a *Action) sortKey { return sortKey{a.Step, a.Priority, !deferred[a.Stay]} }
	next := map[sortKey]int{} // how many have the key, then where the next goes
	for a := range actions.since(0) {
		next[keyOf(a)]++
	}
	keys := slices.SortedFunc(maps.Keys(next), func(a, b sortKey) int {
		later := func(k sortKey) int {
			if k.later {
				return 1
			}
			return 0
		}
		return cmp.Or(cmp.Compare(a.step, b.step), cmp.Compare(a.prio, b.prio), cmp.Compare(later(a), later(b)))
	})
	at := 0
	for _, k := range keys {
		at, next[k] = at+next[k], at
	}
	out := make([]*Action, actions.n)
	for a := range actions.since(0) {
		k := keyOf(a)
		out[next[k]] = a
		next[k]++
	}
	return out
}

// stayKey is a stay's place in the order stays are planned in.
type stayKey struct {
	// arrival is the arrival date as a number in the same order.
	arrival int32
	stay    int32 // index into Input.Stays
	// prefix and prefix2 are the first 16 bytes of the stay's id,
	// big-endian and padded with zeros, which order most ids without
	// reading the stay (the ids of a million stays share their first 8
	// bytes by the hundred).
	prefix, prefix2 uint64
}

// stayOrder returns the stays by arrival, then id, then input order. The
// sort reads the keys alone unless two ids share a prefix, so it does not
// chase each stay's id around the heap.
func stayOrder(stays []Stay) []stayKey {
	keys := make([]stayKey, len(stays))
	for i := range stays {
		s := &stays[i]
		var prefix [16]byte
		copy(prefix[:], s.Ref.ID)
		keys[i] = stayKey{
			arrival: int32(s.Arrival.Year)<<9 | int32(s.Arrival.Month)<<5 | int32(s.Arrival.Day),
			stay:    int32(i),
			prefix:  binary.BigEndian.Uint64(prefix[:8]),
			prefix2: binary.BigEndian.Uint64(prefix[8:]),
		}
	}
	slices.SortFunc(keys, func(a, b stayKey) int {
		if a.arrival != b.arrival {
			return cmp.Compare(a.arrival, b.arrival)
		}
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		if a.prefix2 != b.prefix2 {
			return cmp.Compare(a.prefix2, b.prefix2)
		}
		return cmp.Or(strings.Compare(stays[a.stay].Ref.ID, stays[b.stay].Ref.ID), cmp.Compare(a.stay, b.stay))
	})
	return keys
}

// alignKeySteps keeps 3RPMS creates and assigns at two chained requests
// when the plan has derived keys: those are created in step 2, after the
// invites and key-box accesses whose secrets they carry, so the other
// creates and assigns move one step later to share their documents.
// Cleanup revocations stay in step 1: they go before anything else.
func (p *planner) alignKeySteps() {
	derived := map[*Credential]bool{}
	for a := range p.log.since(0) {
		if a.Upstream != nil {
			derived[a.Cred] = true
		}
	}
	if len(derived) == 0 {
		return
	}
	for a := range p.log.since(0) {
		cleanup := a.Priority == PriorityRevoke && a.After == nil
		if a.System == System3RPMS && !derived[a.Cred] && !cleanup {
			a.Step++
		}
	}
	// An old key's revoke goes in the same request as its replacement's
	// assign, just before it.
	assignStep := map[*Credential]int{}
	for a := range p.log.since(0) {
		if a.Op == OpAssign {
			assignStep[a.Cred] = a.Step
		}
	}
	for a := range p.log.since(0) {
		if step, ok := assignStep[a.After]; ok && a.System == System3RPMS && a.After != nil {
			a.Step = step
		}
	}
}

// keyState is what a stay's 3RPMS key needs, worked out before anything
// is planned so the key's upstream credential can be planned first.
type keyState struct {
	current  *Credential // our key on the stay, or nil
	conflict bool        // the stay holds a key that is not ours
	claimed  bool        // backfill claims the stay's key
	claim    *Action     // that claim
}

// observeKey finds which of our credentials, if any, the stay holds, adopting
// a shared key of ours and, in backfill, planning the claim of an unknown one.
func (p *planner) observeKey(s Stay, creds []*Credential) keyState {
	var current *Credential
	if s.Key != nil {
		for _, c := range creds {
			if c.RemoteID == s.Key.ID {
				current = c
			}
		}
		if current != nil && current.Status == StatusRetired {
			// 3RPMS refused its assign, yet the stay shows it: the read
			// wins, and it is the stay's key again.
			current.Status, current.Assigned = StatusActive, true
			p.plan.Sync = append(p.plan.Sync, current)
		}
		if current == nil {
			if shared := p.rec.remote(s.Key.ID); shared != nil && shared.Stay != s.Ref && !p.splitPart(s) {
				// Our key, recorded for another stay this one is no part
				// of: staff gave it to this stay in 3RPMS. It is theirs to
				// give: never recorded for this stay, revoked or replaced
				// here, nor deleted while this stay holds it (release).
				return p.lentTo(s, creds, shared.Stay)
			} else if lent, ok := p.in.Lent[s.Key.ID]; ok && lent != s.Ref && shared == nil && p.in.Siblings[s.Key.ID] == nil {
				// The same, once keysync let go of its record (the stay
				// it was issued for has a new key, or left).
				return p.lentTo(s, creds, lent)
			} else if shared != nil {
				// Our key, recorded for another part of this stay (3RPMS
				// reused it when it split the stay): record that this
				// part holds it.
				current = p.adopt(s, shared, adoptReason(s, shared))
			} else if sib := p.in.Siblings[s.Key.ID]; sib != nil && sib.System == System3RPMS {
				// Our key, recorded by another property of the hotel: the
				// stay moved into this property's rooms and the key came
				// with it (that property hands it over, see handOver).
				current = p.adopt(s, sib, fmt.Sprintf("key of ours, handed over by %s with the stay", sib.Stay.Property))
				current.PIN = sib.PIN
			} else if p.claimsUnknown() {
				claim := p.claim(s)
				p.discard(s, creds, nil, "stay holds a key of unknown owner")
				return keyState{claimed: true, claim: claim}
			}
		}
		if current == nil {
			n := p.noteFor(NoteConflict, s, fmt.Sprintf("stay holds a %s key keysync has no record of (another integration's, or made by another keysync process); left alone", s.Key.Type))
			n.Attention = p.in.Property.needsAPerson(p.in.Now, s.RoomID, s.Arrival, s.Departure)
			p.plan.Notes = append(p.plan.Notes, n)
			p.discard(s, creds, nil, "stay holds another integration's key")
			return keyState{conflict: true}
		}
	}
	return keyState{current: current}
}

// key plans the stay's 3RPMS key of the given kind. up is the upstream
// credential a derived key carries the secret of (nil for PIN keys), and
// upFresh says it is created in this plan, at step upStep.
func (p *planner) key(s Stay, creds []*Credential, ks keyState, kind Kind, up *upstream, due bool) error {
	current := ks.current
	if !due {
		// Moved beyond the window: keep an assigned key, drop spare ones.
		p.discard(s, creds, current, "stay moved beyond the window")
		return nil
	}

	prio := p.priority(s)
	if current != nil {
		if change := dateChange(current.Arrival, current.Departure, s.Arrival, s.Departure); change != "" && current.Assigned &&
			keyStale(current, s, kind, up) == "" && up == nil {
			// A PIN key is valid for the whole stay, whatever its dates:
			// the change needs nothing, but the plan says it was seen.
			p.add(Action{Op: OpKeep, Reason: change + "; the PIN key stays as it is", Cred: current, Step: 1, Priority: prio}, s)
		}
		if reason := keyStale(current, s, kind, up); reason == "" &&
			(!current.Assigned || current.Arrival != s.Arrival || current.Departure != s.Departure || current.RoomID != s.RoomID) {
			// Record what 3RPMS shows: the assignment, the stay's dates and
			// (for a derived key whose secret followed it) the room.
			current.Assigned, current.Arrival, current.Departure, current.RoomID = true, s.Arrival, s.Departure, s.RoomID
			p.plan.Sync = append(p.plan.Sync, current)
		} else if !current.Assigned {
			current.Assigned = true
			p.plan.Sync = append(p.plan.Sync, current)
		}
		if reason := keyStale(current, s, kind, up); reason == "" {
			p.discard(s, creds, current, "duplicate credential for the stay")
			if up != nil && up.carriedBy == current.RemoteID && (up.cred.ID == 0 || current.DerivedFrom != up.cred.ID) {
				// Made from a credential the record does not link it to
				// (adopted in this plan, or by a backfill cut short):
				// once that is recorded, so is the link.
				p.add(Action{Op: OpKeep, Reason: fmt.Sprintf("the key is made from the %s the system holds: recorded as carrying it", up.cred.Kind),
					Cred: current, Upstream: up.cred, After: up.cred, Step: 1, Priority: prio}, s)
			}
			return nil
		} else {
			// Room moved, method changed, or the secret it carries was
			// replaced: the old key opens the wrong door or none. The new
			// key is created first; the old one is revoked in the same
			// request as the new one's assign, and only if it was created.
			p.discard(s, creds, current, "duplicate credential for the stay")
			fresh, err := p.issue(s, kind, prio, reason, up)
			if err != nil {
				return err
			}
			n := p.log.n
			p.add(Action{Op: OpRevoke, Reason: reason, Cred: current, Priority: PriorityRevoke, After: fresh.Cred}, s)
			p.release(s, current, reason)
			for a := range p.log.since(n) {
				a.Step, a.After = fresh.Step+1, fresh.Cred
			}
			return nil
		}
	}

	// The stay holds no key: assign a spare one of ours, else create one.
	var spare *Credential
	for _, c := range creds {
		if spare == nil && c.Status == StatusActive && keyStale(c, s, kind, up) == "" {
			spare = c
		}
	}
	if spare != nil && p.heldElsewhere(spare) {
		// Taken off the stay and now on another (staff moved it in
		// 3RPMS): put back, one PIN would open both guests' doors. The
		// stay gets a new key; the other keeps this one (released, so
		// never deleted while it holds it).
		p.discard(s, creds, nil, "taken off the stay in 3RPMS and now on another stay")
		_, err := p.issue(s, kind, prio, "the read no longer shows the stay's key on it, and another stay holds that key now: a new key", up)
		return err
	}
	p.discard(s, creds, spare, "credential not assigned to the stay")
	if spare != nil {
		reason := "key created earlier, not yet assigned"
		if slices.Contains(p.plan.Sync, spare) {
			// The record had it on the stay; this read does not
			// (observeAssigned). Put back, it keeps its PIN; deleted,
			// 3RPMS refuses the assign, which retires it (settle.go).
			reason = "the read no longer shows this key on the stay (taken off, or deleted, in 3RPMS): assigned again, and replaced if 3RPMS refuses"
		}
		p.add(Action{Op: OpAssign, Reason: reason, Cred: spare, Step: 1, Priority: prio}, s)
		return nil
	}
	_, err := p.issue(s, kind, prio, "stay has no key", up)
	return err
}

// lentTo notes a stay holding a key of ours issued for stay `from` that
// staff gave it in 3RPMS, and leaves the key alone: nothing is issued for
// the stay while it holds it, and spare records of its own go.
func (p *planner) lentTo(s Stay, creds []*Credential, from StayRef) keyState {
	p.note(NoteConflict, s, fmt.Sprintf("stay holds keysync's %s key %s, issued for stay %s and given to this stay in 3RPMS (this is not a part of that stay split off by 3RPMS): left alone, and nothing is issued for this stay while it holds it",
		s.Key.Type, s.Key.ID, from.ID))
	p.discard(s, creds, nil, "stay holds a key keysync issued for another stay")
	return keyState{conflict: true}
}

// heldElsewhere says whether another stay than c's holds c's remote key
// now, or another live record names it: run counted every holder.
func (p *planner) heldElsewhere(c *Credential) bool {
	k := p.rec.key(c.RemoteID)
	return k != nil && k.live > 1
}

// splitPart says whether the stay holding a key of ours recorded for
// another stay is a part of that stay, split by 3RPMS: it begins on the
// day the other ends, or ends on the day it begins, as recorded or as
// this read shows the other (shortened by the split in the same read). A
// key staff gave to another guest's later stay is not.
func (p *planner) splitPart(s Stay) bool {
	meets := func(arrival, departure Date) bool { return departure == s.Arrival || s.Departure == arrival }
	for i := range p.in.Credentials {
		c := &p.in.Credentials[i]
		if c.System != System3RPMS || c.RemoteID != s.Key.ID || !c.Status.Live() || c.Stay == s.Ref {
			continue
		}
		if meets(c.Arrival, c.Departure) {
			return true
		}
		for j := range p.in.Stays {
			if o := &p.in.Stays[j]; o.Ref == c.Stay && meets(o.Arrival, o.Departure) {
				return true
			}
		}
	}
	return false
}

// keyStale says why a key of ours no longer fits the stay, or "".
func keyStale(c *Credential, s Stay, kind Kind, up *upstream) string {
	switch {
	case c.Kind != kind:
		return fmt.Sprintf("key type changed from %s to %s", c.Kind, kind)
	case c.RoomID != s.RoomID && up == nil:
		// A derived key carries its upstream's secret, which follows the
		// room itself (an invite's portals are updated in place; a key-box
		// access for another room is a new access), so only a PIN key
		// goes stale with the room.
		return movedReason(c.RoomID, s)
	case up != nil && (up.carriedBy == "" || up.carriedBy != c.RemoteID) && (up.fresh || up.cred.ID == 0 || c.DerivedFrom != up.cred.ID):
		return fmt.Sprintf("its %s was replaced", up.cred.Kind)
	}
	return ""
}

// issue creates a fresh key for the stay and assigns it. A PIN key gets a
// generated PIN; a derived key is created the step after its upstream
// credential, whose secret Apply copies into it.
func (p *planner) issue(s Stay, kind Kind, prio Priority, reason string, up *upstream) (*Action, error) {
	c := p.credential(Credential{
		Stay: s.Ref, System: System3RPMS, Kind: kind, RoomID: s.RoomID,
		Status: StatusPending, Arrival: s.Arrival, Departure: s.Departure,
	})
	step := 1
	create := Action{Op: OpCreate, Reason: reason, Cred: c, Priority: prio}
	if up == nil {
		pin, err := p.pins.next(s.RoomName)
		if err != nil {
			return nil, fmt.Errorf("plan stay %s: %w", s.Ref, err)
		}
		c.PIN = pin
	} else {
		step = up.step + 1
		create.Upstream = up.cred
	}
	create.Step = step
	created := p.add(create, s)
	p.add(Action{Op: OpAssign, Reason: reason, Cred: c, Step: step + 1, Priority: prio}, s)
	return created, nil
}

// adopt records that the stay holds a key of ours issued for another stay.
// The credential keeps the room the key was issued for, so a split that
// also moved rooms is caught as a room change. run counted it in live.
func (p *planner) adopt(s Stay, shared *Credential, reason string) *Credential {
	c := p.credential(Credential{
		Stay: s.Ref, System: System3RPMS, Kind: shared.Kind, RoomID: shared.RoomID, RemoteID: s.Key.ID,
		Status: StatusActive, Assigned: true, Adopted: true, Arrival: s.Arrival, Departure: s.Departure,
	})
	p.add(Action{Op: OpAdopt, Reason: reason, Cred: c, Step: 1, Priority: PriorityInHouse}, s)
	return c
}

// adoptReason says why a stay holds a key of ours it has no record for.
func adoptReason(s Stay, c *Credential) string {
	if c.Stay == s.Ref {
		return "key of ours found on the stay"
	}
	return "key of ours shared with stay " + c.Stay.ID
}

// claim plans the backfill check of a key keysync has no record of, and
// returns it; its credential is what it adopts if the claim succeeds.
func (p *planner) claim(s Stay) *Action {
	c := p.credential(Credential{
		Stay: s.Ref, System: System3RPMS, Kind: Kind(s.Key.Type), RoomID: s.RoomID, RemoteID: s.Key.ID,
		Assigned: true, Adopted: true, Arrival: s.Arrival, Departure: s.Departure,
	})
	return p.add(Action{Op: OpClaim, Reason: "stay holds a key keysync has no record of: adopted if keysync created it, else left alone", Cred: c, Step: 1, Priority: PriorityInHouse}, s)
}

// claimDeparted plans, in a backfill, the withdrawal of a key of unknown
// owner on a stay that has departed: claimed first, then, only if the claim
// showed it is ours, revoked and deleted.
func (p *planner) claimDeparted(s Stay, reason string) {
	c := p.claim(s).Cred
	p.add(Action{Op: OpRevoke, Reason: reason + "; a key of ours found by backfill", Cred: c, Step: 2, Priority: PriorityRevoke, After: c}, s)
	p.add(Action{Op: OpDelete, Reason: reason + "; a key of ours found by backfill", Cred: c, Step: 2, Priority: PriorityRevoke, After: c}, s)
}

// withdrawing counts credentials the plan takes away from a stay that has
// not departed (Plan.Withdrawn): only those that grant something now.
func (p *planner) withdrawing(creds []*Credential) {
	for _, c := range creds {
		switch {
		case c.Status == StatusPending, c.Status == StatusRetired:
		case c.System == System3RPMS && !c.Assigned:
		case c.Status == StatusDisabled:
		default:
			p.withdrawn[c] = true
		}
	}
}

// cleanup revokes and deletes every credential of a stay that has ended.
// seen says the source returned the stay this run, so s.Key is what it
// holds; for a stay that is gone, keysync's record of the assignment
// decides.
func (p *planner) cleanup(s Stay, creds []*Credential, seen bool, reason string) {
	for _, c := range creds {
		assigned := c.Assigned
		if seen || c.Status == StatusPending {
			assigned = s.Key != nil && c.RemoteID == s.Key.ID
		}
		if c.Status == StatusPending {
			p.add(Action{Op: OpAbandon, Reason: reason + "; create outcome unknown", Cred: c, Step: 1, Priority: PriorityRevoke}, s)
			continue
		}
		if c.Status == StatusRetired && !seen {
			// 3RPMS refused to take it off a stay it no longer shows:
			// wait for a read of the stay, or for 3RPMS's own cleanup.
			if !p.in.Now.Before(p.in.Property.Window(c.Arrival, c.Departure).End.Add(keysKeptAfterDeparture)) {
				p.add(Action{Op: OpAbandon, Reason: reason + "; 3RPMS's own cleanup has removed it", Cred: c, Step: 1, Priority: PriorityRevoke}, s)
			}
			continue
		}
		if assigned {
			p.add(Action{Op: OpRevoke, Reason: reason, Cred: c, Step: 1, Priority: PriorityRevoke}, s)
		}
		p.release(s, c, reason)
	}
}

// discard cleans up every credential of a stay except keep: spares left by
// an interrupted run or a replaced key. They are not assigned to the stay.
func (p *planner) discard(s Stay, creds []*Credential, keep *Credential, reason string) {
	for _, c := range creds {
		if c == keep {
			continue
		}
		if c.Status == StatusPending {
			p.add(Action{Op: OpAbandon, Reason: "create outcome unknown", Cred: c, Step: 1, Priority: PriorityRevoke}, s)
			continue
		}
		p.release(s, c, reason)
	}
}

// release deletes a credential's remote key, or, when another stay still
// holds the same key, only lets go of this stay's record of it.
func (p *planner) release(s Stay, c *Credential, reason string) {
	if p.rec.letGo(c.RemoteID) > 0 {
		p.add(Action{Op: OpRelease, Reason: reason + "; key still held by another stay", Cred: c, Step: 1, Priority: PriorityRevoke}, s)
		return
	}
	p.add(Action{Op: OpDelete, Reason: reason, Cred: c, Step: 1, Priority: PriorityRevoke}, s)
}

// credential returns a new credential the plan issues or adopts.
func (p *planner) credential(c Credential) *Credential {
	if len(p.creds) == cap(p.creds) {
		p.creds = make([]Credential, 0, min(max(2*cap(p.creds), 16), 4096))
	}
	p.creds = append(p.creds, c)
	return &p.creds[len(p.creds)-1]
}

// add appends the action to the plan for stay s and returns it. Actions
// are allocated a chunk at a time.
func (p *planner) add(act Action, s Stay) *Action {
	a := p.log.add(act)
	a.System = a.Cred.System
	a.Stay, a.RoomID, a.Room = s.Ref, s.RoomID, roomLabel(s)
	a.Arrival, a.Departure = s.Arrival, s.Departure
	if a.Kind == "" && a.Cred != nil {
		a.Kind = a.Cred.Kind
	}
	return a
}

func (p *planner) note(k NoteKind, s Stay, detail string) {
	p.plan.Notes = append(p.plan.Notes, p.noteFor(k, s, detail))
}

// attention is note for what needs a person (Note.Attention) when the
// stay arrives within 24 hours or is in house.
func (p *planner) attention(k NoteKind, s Stay, detail string) {
	n := p.noteFor(k, s, detail)
	n.Attention = p.priority(s) != PriorityLaterArrival
	p.plan.Notes = append(p.plan.Notes, n)
}

func (p *planner) noteFor(k NoteKind, s Stay, detail string) Note {
	return Note{Kind: k, Stay: s.Ref, Room: roomLabel(s), RoomID: s.RoomID, Arrival: s.Arrival, Departure: s.Departure, Detail: detail}
}

// priority ranks work on an active stay.
func (p *planner) priority(s Stay) Priority {
	return p.in.Property.priorityAt(p.in.Now, s.Arrival, s.Departure)
}

// priorityAt ranks, at now, work on a stay from arrival to departure: in
// house, arriving within priorityArrivalWindow, or later.
func (prop *Property) priorityAt(now time.Time, arrival, departure Date) Priority {
	start := prop.Window(arrival, departure).Start
	switch {
	case !now.Before(start):
		return PriorityInHouse
	case start.Sub(now) <= priorityArrivalWindow:
		return PriorityArrivalSoon
	}
	return PriorityLaterArrival
}

// needsAPerson says whether a stay of room that holds another
// integration's key needs a person: when it arrives within 24 hours or is
// in house (not departed), and the config names the room as keysync's to
// key (a room it only takes the default method for is shared, and its
// conflicts are reported).
func (prop *Property) needsAPerson(now time.Time, room string, arrival, departure Date) bool {
	_, explicit := prop.Rooms[room]
	return explicit && now.Before(prop.Window(arrival, departure).End) && prop.priorityAt(now, arrival, departure) != PriorityLaterArrival
}

func roomLabel(s Stay) string {
	if s.RoomName != "" {
		return s.RoomName
	}
	return s.RoomID
}

// roomNamed names a room by its name and, where it differs, its id: the
// config keys rooms by id, and people know them by name.
func roomNamed(s Stay) string {
	if s.RoomName != "" && s.RoomName != s.RoomID {
		return fmt.Sprintf("%s (id %s)", s.RoomName, s.RoomID)
	}
	return s.RoomID
}
