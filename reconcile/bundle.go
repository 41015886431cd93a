package reconcile

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A stay's bundle: the credentials it needs, one per system at most.
//
//	method       3RPMS stay                               Guestway stay
//	pin          RoomAccessPin (generated PIN)            the lock PIN Guestway holds (reported)
//	key_storage  key-box access + RoomAccessKeyStorage    key-box access
//	qr           OpenApp invite + RoomAccessQR            OpenApp invite
//
// and, where the property has shared portals (lobby, garage), an OpenApp
// invite for every stay. A RoomAccessKeyStorage carries the key-box code and
// a RoomAccessQR the invite's guest link, so they are derived: created the
// step after their upstream credential, from the secret its create returned.
type bundle struct {
	key     Kind   // the 3RPMS key, or ""
	keyFrom System // the system the key's secret comes from, or ""
	invite  bool   // an OpenApp invite
	keybox  bool   // a key-box access
}

func (p *planner) bundle(s Stay, m Method) bundle {
	b := bundle{invite: p.in.Property.SharedPortals}
	in3RPMS := s.Ref.Source == System3RPMS
	switch m {
	case MethodPIN:
		if in3RPMS {
			b.key = KindPINKey
		}
	case MethodKeyStorage:
		b.keybox = true
		if in3RPMS {
			b.key, b.keyFrom = KindKeyStorageKey, m.keyFrom()
		}
	case MethodQR:
		b.invite = true
		if in3RPMS {
			b.key, b.keyFrom = KindQRKey, m.keyFrom()
		}
	}
	return b
}

// timeBoundPart is one of a bundle's time-bound credentials: the system
// that holds it, its kind, and whether the bundle wants it.
type timeBoundPart struct {
	system System
	kind   Kind
	want   bool
}

// timeBound returns the bundle's key-box access and OpenApp invite, in the
// order they are planned.
func (b bundle) timeBound() []timeBoundPart {
	return []timeBoundPart{{SystemKeyBox, KindKeyBoxAccess, b.keybox}, {SystemOpenApp, KindInvite, b.invite}}
}

// waitingOnPending reports, with a note, whether creds hold a create of
// kind whose outcome is unknown: it may have made a working invite or
// access, so nothing more is issued for it until it is read back.
func (p *planner) waitingOnPending(s Stay, kind Kind, creds []*Credential) bool {
	if !slices.ContainsFunc(creds, func(c *Credential) bool { return c.Status == StatusPending }) {
		return false
	}
	p.note(NoteUnknownOutcome, s, fmt.Sprintf("a %s create has an unknown outcome; waiting to read it back", kind))
	return true
}

// keyFrom is the system whose credential's secret a 3RPMS key of a room
// opened by m carries, or "" when the key carries its own PIN.
func (m Method) keyFrom() System {
	switch m {
	case MethodKeyStorage:
		return SystemKeyBox
	case MethodQR:
		return SystemOpenApp
	}
	return ""
}

// observeAssigned records on each of a read stay's 3RPMS keys whether the
// read shows it on the stay: the read decides, not keysync's record (a
// revoke or assign whose answer was lost, 3RPMS's own cleanup, a front
// desk that took the key off).
func (p *planner) observeAssigned(s Stay, keys []*Credential) {
	for _, c := range keys {
		if c.Status == StatusPending || c.RemoteID == "" {
			continue
		}
		if on := s.Key != nil && s.Key.ID == c.RemoteID; on != c.Assigned {
			c.Assigned = on
			p.plan.Sync = append(p.plan.Sync, c)
		}
	}
}

// upstream is the credential a derived key takes its secret from, as the
// plan leaves it: fresh when created in this plan (at step).
type upstream struct {
	cred  *Credential
	fresh bool
	step  int
	// carriedBy is the id of the stay's 3RPMS key when that key is made
	// from cred and the record does not say so (cred adopted in this plan,
	// Held.CarriedBy, or by a backfill cut short, Input.KeyCarries): the key
	// is kept, and the plan records that it carries cred.
	carriedBy string
	// noSecret says cred holds no secret and a new one would not either
	// (the system answered its create without one): no key is made from
	// it, and a person is told.
	noSecret bool
}

// systemCreds is a stay's credentials split by the system holding them.
type systemCreds struct {
	threeRPMS, openApp, keyBox []*Credential
}

// of returns the credentials sys holds; none for a system no bundle
// issues credentials in.
func (c *systemCreds) of(sys System) []*Credential {
	if slot := c.slot(sys); slot != nil {
		return *slot
	}
	return nil
}

func (c *systemCreds) slot(sys System) *[]*Credential {
	switch sys {
	case System3RPMS:
		return &c.threeRPMS
	case SystemOpenApp:
		return &c.openApp
	case SystemKeyBox:
		return &c.keyBox
	}
	return nil
}

// bySystem splits a stay's credentials by the system holding them. The
// slices are clipped, so appending to one never writes into creds.
func bySystem(creds []*Credential) systemCreds {
	var m systemCreds
	if len(creds) == 0 {
		return m
	}
	if !slices.ContainsFunc(creds[1:], func(c *Credential) bool { return c.System != creds[0].System }) {
		// All in one system, as most stays' are: creds itself.
		if slot := m.slot(creds[0].System); slot != nil {
			*slot = slices.Clip(creds)
		}
		return m
	}
	for _, c := range creds {
		if slot := m.slot(c.System); slot != nil {
			*slot = append(*slot, c)
		}
	}
	return m
}

// stay plans one stay the source returned: its whole bundle.
func (p *planner) stay(s Stay, creds []*Credential) error {
	in := p.in
	prop := in.Property
	sys := bySystem(creds)
	if s.Ref.Source == System3RPMS {
		p.observeAssigned(s, sys.of(System3RPMS))
	}
	win := prop.Window(s.Arrival, s.Departure)
	if !in.Now.Before(win.End) {
		reason := fmt.Sprintf("departed %s", s.Departure)
		keys := sys.of(System3RPMS)
		if k := s.Key; k != nil && s.MovedTo == "" && p.rec.remote(k.ID) != nil && !slices.ContainsFunc(keys, func(c *Credential) bool { return c.RemoteID == k.ID }) {
			// A split stay's part holding our key recorded for the other
			// part: take it off this part too (the other keeps it).
			shared := p.rec.remote(k.ID)
			keys = append(keys, p.adopt(s, shared, "key of ours shared with stay "+shared.Stay.ID))
		}
		p.cleanup(s, keys, true, reason)
		p.end(s, append(sys.of(SystemOpenApp), sys.of(SystemKeyBox)...), reason)
		if k := s.Key; k != nil && p.claimsUnknown() && p.rec.remote(k.ID) == nil && s.Ref.Source == System3RPMS && s.MovedTo == "" &&
			p.in.Siblings[k.ID] == nil && !slices.ContainsFunc(keys, func(c *Credential) bool { return c.RemoteID == k.ID }) {
			// State was lost, or the key came with the stay from another
			// property of the hotel that let go of it: the key may be
			// ours, left on a stay that already left. 3RPMS keeps it for
			// two days; withdraw it now. (A stay in another property's
			// room now holds that property's key, and a key another
			// property records is that property's: it withdraws it.)
			p.claimDeparted(s, reason)
		}
		return nil
	}
	if s.Cancelled {
		p.withdraw(s, append(creds, p.heldOfGone(s, creds, win)...), true, "reservation cancelled")
		return nil
	}
	if s.MovedTo != "" {
		p.handOver(s, creds)
		return nil
	}
	method, ok := prop.methodFor(s.RoomID)
	if s.Ref.Source == SystemGuestway {
		p.lockNotes(s, win, method == MethodPIN)
	}
	if !ok {
		p.attention(NoteUnmappedRoom, s, fmt.Sprintf("room %s has no access method in the config (rooms are keyed by id)", roomNamed(s)))
		// Whatever was issued for a room it left opens the wrong door.
		p.withdraw(s, creds, true, fmt.Sprintf("room %s has no access method in the config", roomNamed(s)))
		return nil
	}
	b := p.bundle(s, method)
	due := !p.readTo.Before(s.Arrival)
	// A window that is empty (a same-day stay whose check-out, plus its
	// grace, comes no later than its check-in less its grace) opens
	// nothing: no invite or key-box access is issued for it (a system
	// would refuse one run after run), what it holds of them is ended,
	// and a person is told.
	empty := !win.End.After(win.Start) && slices.ContainsFunc(b.timeBound(), func(tb timeBoundPart) bool { return tb.want })
	if empty && due {
		p.attention(NoteEmptyWindow, s, fmt.Sprintf("arrives and departs on %s, so its access window (%s to %s) is empty: keysync issues it no invite or key-box access; give the guest access by hand, or widen grace.before_arrival or grace.after_departure",
			s.Arrival, win.Start.Format("15:04"), win.End.Format("15:04")))
	}

	var ks keyState
	if b.key != "" {
		ks = p.observeKey(s, sys.of(System3RPMS))
	} else {
		p.withdrawing(sys.of(System3RPMS))
		p.cleanup(s, sys.of(System3RPMS), true, "room no longer uses a 3RPMS key")
	}
	blocked := ks.conflict || ks.claimed // the key cannot be written this run

	// keyNeeds says whether the key must be created if its upstream is
	// upCred, kept (fresh false) or new (fresh true).
	keyNeeds := func(upCred *Credential, fresh bool) bool {
		if !due || blocked {
			return false
		}
		u := &upstream{cred: upCred, fresh: fresh, carriedBy: p.carriedBy(s, upCred)}
		if ks.current != nil {
			return keyStale(ks.current, s, b.key, u) != ""
		}
		return !slices.ContainsFunc(sys.of(System3RPMS), func(c *Credential) bool {
			return c.Status == StatusActive && keyStale(c, s, b.key, u) == ""
		})
	}

	var up *upstream
	for _, tb := range b.timeBound() {
		derived := b.keyFrom == tb.system
		if derived && ks.claimed && p.in.Backfill {
			// The claim may show the key is ours, carrying what this
			// system holds for the stay: recorded (a backfill cut
			// short), or found by a backfill's look (adopted). Until
			// the claim is answered it is not ended or replaced; a key
			// made from it (carriedBy) is recorded as derived from it
			// once the claim succeeds, so the next run keeps both. An
			// invite is still moved or re-dated in place, which keeps
			// its link.
			if p.waitingOnPending(s, tb.kind, sys.of(tb.system)) {
				continue
			}
			var cur *Credential
			if recs := sys.of(tb.system); len(recs) > 0 {
				cur = recs[0] // none pending: checked above
			}
			if cur == nil {
				cur = p.adoptHeld(s, tb.system, tb.kind)
			}
			if cur == nil {
				p.seek(s, tb.system, tb.kind, win)
			} else {
				if p.carriedBy(s, cur) == s.Key.ID {
					ks.claim.Upstream = cur
				}
				if tb.system == SystemOpenApp {
					p.timeBound(s, tb.system, tb.kind, []*Credential{cur}, win, due, func(*Credential, bool) bool { return false })
				}
				continue
			}
		}
		if derived && blocked && slices.ContainsFunc(sys.of(tb.system), func(c *Credential) bool { return p.keyMadeFrom(s, c) }) {
			// The key keysync may not act on is made from this credential
			// (its PIN is our code, its QR our invite's link): ending it
			// would take the guest's way in away. It is left as it is and
			// ends with the stay.
			continue
		}
		if derived && blocked {
			// The key this credential would carry cannot be written; keep
			// only what stands on its own (an invite's shared portals).
			derived = false
			tb.want = tb.system == SystemOpenApp && prop.SharedPortals
		}
		if !tb.want {
			if creds := sys.of(tb.system); len(creds) > 0 {
				p.withdrawing(creds)
				p.end(s, creds, fmt.Sprintf("room %s no longer uses %s", roomLabel(s), tb.system))
			}
			continue
		}
		if empty {
			if creds := sys.of(tb.system); len(creds) > 0 {
				p.withdrawing(creds)
				p.end(s, creds, "its access window is empty (it arrives and departs the same day)")
			}
			continue
		}
		needs := func(*Credential, bool) bool { return false }
		if derived {
			needs = keyNeeds
		}
		u := p.timeBound(s, tb.system, tb.kind, sys.of(tb.system), win, due, needs)
		if derived {
			up = u
			if u != nil {
				u.carriedBy = p.carriedBy(s, u.cred)
			}
		}
	}
	if b.key == "" || blocked {
		return nil
	}
	if up != nil && up.noSecret {
		// No key can carry it: none is made, and spare keys of ours go.
		p.discard(s, sys.of(System3RPMS), ks.current, "its upstream came back without a secret, so no key is made from it")
		return nil
	}
	if b.keyFrom != "" && up == nil && empty {
		// The key would carry what is not issued: it goes too.
		p.withdrawing(sys.of(System3RPMS))
		p.cleanup(s, sys.of(System3RPMS), true, "its access window is empty (it arrives and departs the same day), so there is nothing for its key to carry")
		return nil
	}
	if b.keyFrom != "" && up == nil {
		// Not yet due: the upstream is not issued, so neither is the key.
		p.discard(s, sys.of(System3RPMS), ks.current, "stay moved beyond the window")
		return nil
	}
	return p.key(s, sys.of(System3RPMS), ks, b.key, up, due)
}

// timeBound plans a stay's OpenApp invite or key-box access: create it,
// move its window or room (an invite in place, so the guest's link keeps
// working; a key-box access, which has no update call, by replacing it),
// or replace it when a derived key needs its secret and only a fresh create
// returns one. It returns the credential as the plan leaves it.
func (p *planner) timeBound(s Stay, sys System, kind Kind, creds []*Credential, win Window, due bool, keyNeeds func(*Credential, bool) bool) *upstream {
	if p.waitingOnPending(s, kind, creds) {
		return nil
	}
	var cur *Credential
	for _, c := range creds {
		switch {
		case c.Status == StatusPending:
		case cur == nil,
			cur.Status == StatusDisabled && c.Status == StatusActive,
			// The replacement of one that cannot change in place, its old
			// one not yet deleted: keep the replacement.
			cur.ReplaceOnly && !c.ReplaceOnly && c.Status == cur.Status:
			cur = c
		}
	}
	var spares []*Credential
	for _, c := range creds {
		if c != cur {
			spares = append(spares, c)
		}
	}
	p.end(s, spares, "duplicate credential for the stay")
	prio := p.priority(s)

	if cur == nil {
		cur = p.adoptHeld(s, sys, kind)
	}
	if cur == nil {
		if !due {
			return nil
		}
		p.seek(s, sys, kind, win)
		return p.issueTimeBound(s, sys, kind, win, prio, fmt.Sprintf("stay has no %s", kind))
	}
	moved := cur.RoomID != s.RoomID
	// A start already passed on both sides opens the door as well as any
	// other: moving it (an in-house guest's arrival corrected) changes
	// nothing a guest can use, and is no cause to give the guest a new
	// key-box code or to send a start in the past.
	started := !cur.Valid.Start.After(p.in.Now) && !win.Start.After(p.in.Now)
	redated := !cur.Valid.Start.Equal(win.Start) && !started || !cur.Valid.End.Equal(win.End)
	reason := ""
	switch {
	case moved:
		reason = movedReason(cur.RoomID, s)
	case redated:
		reason = cmp.Or(dateChange(cur.Arrival, cur.Departure, s.Arrival, s.Departure),
			fmt.Sprintf("window changed to %s – %s", win.Start.UTC().Format("2006-01-02 15:04Z"), win.End.UTC().Format("2006-01-02 15:04Z")))
	case cur.Status == StatusDisabled:
		reason = "the booking is back: switch the invite on again"
	case cur.Drifted:
		// A read-back found it switched off or narrowed upstream
		// (confirmKept): set right in place, the guest's link kept.
		reason = "OpenApp shows it switched off or narrower than the stay: set right in place"
	}
	// What the system cannot change in place is replaced: the new one
	// made first, the old one ended once it exists.
	var cannot, then string
	switch {
	case sys == SystemKeyBox && (moved || redated):
		// The key box's API documents no update call.
		cannot, then = "the key box has no update call", "a new access replaces it"
		if prio == PriorityInHouse {
			then += ": the guest, already in house, gets a new code"
		}
	case cur.ReplaceOnly && reason != "":
		// The system refused to change it in place (settle.go).
		cannot, then = "it cannot be changed in place", "a new one replaces it"
	}
	if cannot != "" {
		if !due {
			p.end(s, []*Credential{cur}, reason+"; "+cannot)
			return nil
		}
		return p.replaceTimeBound(s, cur, kind, win, prio, reason+"; "+cannot+", so "+then)
	}
	if cur.Stale && due && !keyNeeds(cur, false) {
		// A targeted run's read-back does not show it live (cancelled or
		// deleted upstream, confirmKept), though a key carries it: a new
		// one replaces it, and the key then carries the new one.
		return p.replaceTimeBound(s, cur, kind, win, prio, "a read-back does not show it live (cancelled or deleted upstream): a new one replaces it")
	}
	if keyNeeds(cur, false) && cur.Secret == "" && cur.Secretless && !cur.Stale {
		// keysync created it and the system's answer carried no secret
		// (a key box whose create answer has no code): a replacement would
		// come without one too, every run. It is kept, and no key made.
		p.attention(NoteNoSecret, s, fmt.Sprintf("%s %s came back without its code, so no 3RPMS key can carry it (a new one would come without one too): give the guest the code from %s", cur.Kind, cur.RemoteID, cur.System))
		return &upstream{cred: cur, noSecret: true}
	}
	if keyNeeds(cur, false) && cur.Secret == "" {
		// The key must be (re)created and needs this credential's secret,
		// which the state does not hold (a credential adopted from a list
		// that does not return it) or the runner forgot because a read did
		// not show the credential live (confirmKept): replace it. A secret the state kept is used as it is: an interrupted
		// run, a lost answer or a crash never changes a code a guest may
		// already hold.
		return p.replaceTimeBound(s, cur, kind, win, prio, "the stay's 3RPMS key needs this credential's secret, which keysync does not hold or the system no longer shows live: a new one replaces it")
	}
	if reason != "" {
		p.add(Action{Op: OpUpdate, Reason: reason, Cred: cur, Window: &win, Guest: s.Guest, Step: 1, Priority: prio}, s)
		if keyNeeds(cur, false) {
			// A key written from the kept secret waits for the update
			// (an invite switched on again, moved, re-dated).
			return &upstream{cred: cur, step: 1}
		}
	}
	return &upstream{cred: cur, step: 0}
}

// movedReason says a stay moved rooms, naming the new room as people know
// it.
func movedReason(from string, s Stay) string {
	if from == "" {
		return fmt.Sprintf("opens other doors than room %s's", roomNamed(s))
	}
	return fmt.Sprintf("moved from room %s to %s", from, roomNamed(s))
}

// dateChange says, as people would, how a stay's dates changed: "extended
// to 2026-03-28 (was 03-27)", "arrives a day early", …; "" when they did
// not.
func dateChange(oldArr, oldDep, newArr, newDep Date) string {
	days := func(n int) string {
		if n == 1 {
			return "a day"
		}
		return fmt.Sprintf("%d days", n)
	}
	var parts []string
	switch d := oldArr.DaysUntil(newArr); {
	case d < 0:
		parts = append(parts, fmt.Sprintf("arrives %s early (%s, was %s)", days(-d), newArr, oldArr))
	case d > 0:
		parts = append(parts, fmt.Sprintf("arrives %s later (%s, was %s)", days(d), newArr, oldArr))
	}
	switch d := oldDep.DaysUntil(newDep); {
	case d > 0:
		parts = append(parts, fmt.Sprintf("extended to %s (was %s)", newDep, oldDep))
	case d < 0:
		parts = append(parts, fmt.Sprintf("shortened to %s (was %s)", newDep, oldDep))
	}
	return strings.Join(parts, ", ")
}

// adoptHeld records the invite or key-box access sys already holds for the
// stay (Input.Held), which keysync has no record of, or returns nil. The
// plan then treats it as its own: kept, moved or re-dated as any other.
func (p *planner) adoptHeld(s Stay, sys System, kind Kind) *Credential {
	if c := p.adopted[heldKey{s.Ref, sys}]; c != nil {
		return c
	}
	c, spares := p.adoptAllHeld(s, sys, kind)
	p.end(s, spares, "duplicate credential for the stay")
	return c
}

// adoptAllHeld records what sys holds for the stay (Input.Held) as
// adoptHeld does: the one the sink chose, returned first, and its Spares,
// returned beside it for the caller to end. It returns nil when sys holds
// nothing for the stay that keysync has no record of.
func (p *planner) adoptAllHeld(s Stay, sys System, kind Kind) (*Credential, []*Credential) {
	k := heldKey{s.Ref, sys}
	i := slices.IndexFunc(p.in.Held[s.Ref], func(h Held) bool { return h.System == sys })
	if i < 0 {
		return nil, nil
	}
	h := p.in.Held[s.Ref][i]
	if p.recordedRemote(sys, h.RemoteID) {
		return nil, nil // recorded already, for another stay: never taken from it
	}
	c := p.adoptOne(s, h, kind, "")
	if p.adopted == nil {
		p.adopted = map[heldKey]*Credential{}
	}
	p.adopted[k] = c
	// The stay's other ones (a previous install's) are adopted to go:
	// one may open a room the stay has left.
	var spares []*Credential
	for _, sp := range h.Spares {
		if sp.System != sys || sp.RemoteID == "" || p.recordedRemote(sys, sp.RemoteID) {
			continue
		}
		spares = append(spares, p.adoptOne(s, sp, kind, "another "))
	}
	return c, spares
}

// adoptOne records h, held by h.System for the stay, as a live credential
// of kind and plans its adoption; the reason begins with prefix.
func (p *planner) adoptOne(s Stay, h Held, kind Kind, prefix string) *Credential {
	// Recorded for the room whose doors it opens: one that opens another
	// room's (the stay moved since) is then moved like any other.
	c := p.credential(Credential{
		Stay: s.Ref, System: h.System, Kind: kind, RoomID: h.RoomID, RemoteID: h.RemoteID,
		Status: StatusActive, Adopted: true, Valid: h.Valid, Arrival: s.Arrival, Departure: s.Departure,
	})
	c.Secret = h.Secret
	p.add(Action{Op: OpAdopt, Reason: fmt.Sprintf("%s%s %s the system holds for the stay (keysync had no record of it)", prefix, h.System, kind), Cred: c, Step: 1, Priority: p.priority(s)}, s)
	// A live credential like a recorded one: the fail-safe weighs what a
	// plan withdraws against every live credential.
	p.plan.Live++
	return c
}

// recordedRemote reports whether a credential of sys with the remote id is
// recorded (for any stay, whatever its status).
func (p *planner) recordedRemote(sys System, id string) bool {
	if p.remotes == nil {
		p.remotes = remoteIDs(p.in.Credentials)
	}
	return p.remotes[sys][id]
}

// remoteIDs returns the remote ids of creds by system.
func remoteIDs(creds []Credential) map[System]map[string]bool {
	out := map[System]map[string]bool{}
	for _, c := range creds {
		if c.RemoteID != "" {
			if out[c.System] == nil {
				out[c.System] = map[string]bool{}
			}
			out[c.System][c.RemoteID] = true
		}
	}
	return out
}

// carriedBy returns the id of the stay's 3RPMS key when it is made from
// c, as the runner checked: a credential adoptHeld made (Held.CarriedBy),
// or, in a backfill, one recorded (Input.KeyCarries); "" otherwise.
func (p *planner) carriedBy(s Stay, c *Credential) string {
	switch {
	case c == nil || s.Key == nil:
		return ""
	case p.adopted[heldKey{s.Ref, c.System}] == c:
		for _, h := range p.in.Held[s.Ref] {
			if h.System == c.System && h.CarriedBy == s.Key.ID {
				return h.CarriedBy
			}
		}
	case p.in.Backfill && p.keyMadeFrom(s, c):
		return s.Key.ID
	}
	return ""
}

// keyMadeFrom reports whether the key on stay s is made from recorded
// credential c (Input.KeyCarries).
func (p *planner) keyMadeFrom(s Stay, c *Credential) bool {
	return s.Key != nil && c.ID != 0 && p.in.KeyCarries[c.ID] == s.Key.ID
}

// heldOfGone returns, in a backfill, the invites and key-box accesses the
// systems hold for a cancelled stay that keysync has no record of,
// adopted to be withdrawn (a booking cancelled while the state was lost,
// whose credential would otherwise open the door until its window ends),
// and seeks them, after the live stays' (planner.seekGone), when the plan
// has not been given Input.Held yet.
func (p *planner) heldOfGone(s Stay, creds []*Credential, win Window) []*Credential {
	m, ok := p.in.Property.methodFor(s.RoomID)
	if !p.in.Backfill || !ok {
		return nil
	}
	sys := bySystem(creds)
	var out []*Credential
	for _, tb := range p.bundle(s, m).timeBound() {
		if !tb.want || len(sys.of(tb.system)) > 0 {
			continue
		}
		if c := p.adoptHeld(s, tb.system, tb.kind); c != nil {
			out = append(out, c)
		} else if sk, ok := p.sought(s, tb.system, tb.kind, win); ok {
			p.seekGone = append(p.seekGone, sk)
		}
	}
	return out
}

// seek adds to Plan.Seek, in a backfill planned without Input.Held, the
// invite or access of sys the stay would get over win.
func (p *planner) seek(s Stay, sys System, kind Kind, win Window) {
	if sk, ok := p.sought(s, sys, kind, win); ok {
		p.plan.Seek = append(p.plan.Seek, sk)
	}
}

// sought is the look for the invite or access of sys the stay would get
// over win; ok is false outside a backfill planned without Input.Held.
func (p *planner) sought(s Stay, sys System, kind Kind, win Window) (Sought, bool) {
	if !p.in.Backfill || p.in.Held != nil {
		return Sought{}, false
	}
	sk := Sought{Cred: &Credential{
		Stay: s.Ref, System: sys, Kind: kind, RoomID: s.RoomID, Valid: win, Arrival: s.Arrival, Departure: s.Departure,
	}, Guest: s.Guest, Exact: true}
	if sys == SystemKeyBox && s.Key != nil && Kind(s.Key.Type) == KindKeyStorageKey {
		sk.Carries = s.Key.PIN
	}
	return sk, true
}

// issueTimeBound creates an invite or key-box access for the window.
func (p *planner) issueTimeBound(s Stay, sys System, kind Kind, win Window, prio Priority, reason string) *upstream {
	c := p.credential(Credential{
		Stay: s.Ref, System: sys, Kind: kind, RoomID: s.RoomID, Status: StatusPending,
		Valid: win, Arrival: s.Arrival, Departure: s.Departure,
	})
	p.add(Action{Op: OpCreate, Reason: reason, Cred: c, Window: &win, Guest: s.Guest, Step: 1, Priority: prio}, s)
	return &upstream{cred: c, fresh: true, step: 1}
}

// replaceTimeBound creates a new invite or access and ends the old one a
// step later, only if the new one was created (make before break).
func (p *planner) replaceTimeBound(s Stay, old *Credential, kind Kind, win Window, prio Priority, reason string) *upstream {
	up := p.issueTimeBound(s, old.System, kind, win, prio, reason)
	n := p.log.n
	p.end(s, []*Credential{old}, reason)
	for a := range p.log.since(n) {
		a.Step, a.After = 2, up.cred
	}
	return up
}

// end deletes invites and key-box accesses (a key-box "delete" cancels the
// access); a create whose outcome is unknown waits to be read back.
func (p *planner) end(s Stay, creds []*Credential, reason string) {
	for _, c := range creds {
		if c.Status == StatusPending {
			// Unlike an unassigned 3RPMS key, a lost invite or access may
			// work: it must be read back, not forgotten.
			p.note(NoteUnknownOutcome, s, fmt.Sprintf("a %s create has an unknown outcome; it is ended once read back", c.Kind))
			continue
		}
		p.add(Action{Op: OpDelete, Reason: reason, Cred: c, Step: 1, Priority: PriorityRevoke}, s)
	}
}

// handOver lets go of a stay that moved into a room of another property of
// the same hotel (Stay.MovedTo). Its 3RPMS key goes with it: recorded here
// as released, without a request, and adopted by that property
// (Input.Siblings), so the stay is never without a key and only that
// property revokes it; that property then replaces it as it does for a
// stay that moved between its own rooms (a new PIN; for a key carrying an
// invite or a key-box code, one carrying that property's). What this
// property issued for its own doors (key-box accesses, OpenApp invites) is
// withdrawn as for a stay that left its rooms; in a backfill, what it
// issued and has no record of is adopted and ended (heldOfLeft).
func (p *planner) handOver(s Stay, creds []*Credential) {
	reason := "stay moved to a room of " + s.MovedTo
	// A key carrying this property's invite or code goes along only for a
	// stay the runs read now (the sibling, reading the same hotel, adopts
	// it in this run); one further out is withdrawn with what it carries.
	due := !p.readTo.Before(s.Arrival)
	var rest []*Credential
	for _, c := range creds {
		if c.System == System3RPMS && (c.Status == StatusActive || c.Status == StatusRetired) && s.Key != nil && c.RemoteID == s.Key.ID && (c.Kind == KindPINKey || due) {
			p.rec.letGo(c.RemoteID)
			p.add(Action{Op: OpRelease, Reason: reason + "; its key goes with it, until that property replaces it as for any room move", Cred: c, Step: 1, Priority: PriorityRevoke}, s)
			continue
		}
		rest = append(rest, c)
	}
	if len(rest) > 0 {
		p.withdraw(s, rest, true, reason)
	}
	// Ended live from a stay that has not departed, as handOver's
	// withdrawals are: the fail-safe weighs them (a wrong split of the
	// rooms moves many stays at once).
	left := p.heldOfLeft(s, creds)
	p.withdrawing(left)
	p.end(s, left, reason+"; keysync had no record of it")
}

// heldOfLeft returns, in a backfill, the invites and key-box accesses this
// property issued for a stay now in a room of another property of the
// same hotel (Stay.MovedTo) that keysync has no record of, adopted to be
// ended: the state was lost while the stay moved, so no record tells this
// property to withdraw them, and the property it joined, which keys the
// stay, neither sees them (another property's doors) nor may take them.
// Planned without Input.Held, it seeks them (after the live stays' looks,
// as a cancelled stay's) for every system some room of the property gets
// credentials from, without a room (Sought.Cred.RoomID ""): none of the
// property's rooms is the stay's, so only what is surely the stay's is
// taken, an invite whose owner tag names it, an access whose code its
// 3RPMS key carries. A key-box access is sought only then: a key that
// carries no code shows none.
func (p *planner) heldOfLeft(s Stay, creds []*Credential) []*Credential {
	if !p.in.Backfill {
		return nil
	}
	sys := bySystem(creds)
	win := p.in.Property.Window(s.Arrival, s.Departure)
	var out []*Credential
	for _, tb := range p.in.Property.timeBound() {
		if !tb.want || len(sys.of(tb.system)) > 0 {
			continue // recorded ones are withdrawn with the rest
		}
		if c, spares := p.adoptAllHeld(s, tb.system, tb.kind); c != nil {
			out = append(append(out, c), spares...)
			continue
		}
		sk, ok := p.sought(s, tb.system, tb.kind, win)
		if !ok || tb.system == SystemKeyBox && sk.Carries == "" {
			continue
		}
		sk.Cred.RoomID = ""
		p.seekGone = append(p.seekGone, sk)
	}
	return out
}

// timeBound returns the key-box access and OpenApp invite as a bundle's
// timeBound does, each wanted when some stay of the property gets one: a
// room's method or a default method opens with it, or the property has
// shared portals (an invite).
func (p *Property) timeBound() []timeBoundPart {
	var b bundle
	b.invite = p.SharedPortals
	for _, m := range append(slices.Collect(maps.Values(p.Rooms)), p.DefaultMethod) {
		b.keybox = b.keybox || m.keyFrom() == SystemKeyBox
		b.invite = b.invite || m.keyFrom() == SystemOpenApp
	}
	return b.timeBound()
}

// withdraw handles a stay that was cancelled or is gone from its source
// (seen false), or whose room has no method any more:
// 3RPMS keys are revoked and deleted and key-box accesses cancelled at
// once; an OpenApp invite is switched off (is_enabled false) and deleted
// once the stay's window has passed, so a re-activated booking can have it
// back.
func (p *planner) withdraw(s Stay, creds []*Credential, seen bool, reason string) {
	p.withdrawing(creds)
	sys := bySystem(creds)
	p.cleanup(s, sys.of(System3RPMS), seen, reason)
	p.end(s, sys.of(SystemKeyBox), reason)
	for _, c := range sys.of(SystemOpenApp) {
		end := c.Valid.End
		if end.IsZero() {
			end = p.in.Property.Window(c.Arrival, c.Departure).End
		}
		switch {
		case c.Status == StatusPending || !p.in.Now.Before(end):
			p.end(s, []*Credential{c}, reason)
		case c.ReplaceOnly && c.Status == StatusActive:
			// It cannot be switched off in place: deleted at once.
			p.end(s, []*Credential{c}, reason+"; it cannot be switched off in place")
		case c.Status == StatusDisabled:
		case c.Status == StatusActive:
			p.add(Action{Op: OpDisable, Reason: reason, Cred: c, Step: 1, Priority: PriorityRevoke}, s)
		}
	}
}

// lockNotes reports the smart-lock PINs a Guestway reservation already has,
// and, where the lock PIN is the guest's way in (needed: a pin room; in a
// qr or key_storage room it is the invite or key-box access, as check
// asks), flags an arrival within 24 hours that has none.
func (p *planner) lockNotes(s Stay, win Window, needed bool) {
	held, unreadable := false, ""
	for _, l := range s.Locks {
		if l.PIN == "" {
			if l.Unreadable && unreadable == "" {
				unreadable = cmp.Or(l.LockName, l.LockID)
			}
			continue
		}
		held = true
		n := p.noteFor(NoteLockPIN, s, fmt.Sprintf("lock %s holds the guest's PIN", cmp.Or(l.LockName, l.LockID)))
		n.PIN = l.PIN
		p.plan.Notes = append(p.plan.Notes, n)
	}
	none := "Guestway holds no smart-lock PIN for it"
	switch {
	case unreadable != "":
		none = fmt.Sprintf("Guestway's PIN for lock %s is not a JSON string (a number loses its leading zeros), so keysync shows none: give the guest the PIN Guestway shows", unreadable)
	case s.LocksUnread != "":
		none = fmt.Sprintf("keysync could not read Guestway's smart-lock PINs for it (%s): give the guest the PIN Guestway shows", s.LocksUnread)
	}
	switch {
	case held || !needed:
	case p.in.Now.After(win.Start):
		p.note(NoteMissingLockPIN, s, "in house, and "+none)
	case win.Start.Sub(p.in.Now) <= priorityArrivalWindow:
		p.note(NoteMissingLockPIN, s, "arrives within 24 hours and "+none)
	}
}
