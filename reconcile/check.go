package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Unready is an arriving stay that does not hold everything it needs.
type Unready struct {
	Stay    StayRef `json:"stay"`
	Room    string  `json:"room"`
	RoomID  string  `json:"room_id"`
	Arrival Date    `json:"arrival"`
	// Starts is when the stay's access window opens; zero, and left out
	// of JSON, for a stay whose dates could not be read.
	Starts time.Time `json:"starts,omitzero"`
	Why    []string  `json:"why"`
}

// Check reads, and writes nothing, whether every stay in house at now
// (its access window open) or whose window opens between now and
// now+within holds a live credential on every
// system its room's method needs: a 3RPMS key on the stay, an OpenApp
// invite enabled over the whole window, a key-box access over it (read
// back from the sinks that are Checkers), a lock PIN from Guestway. It
// returns how many stays it checked, those that are not ready, and the
// reads that failed, one per property and system: an unknown answer is not
// "ready", so a stay whose credential could not be read back is not ready
// ("could not check ..."), and a property whose stays could not be read is
// a failure alone; the other properties and stays are checked all the
// same. err is the state's. The requests it sent are recorded in the
// ledger, like every command's.
func (r *Runner) Check(ctx context.Context, now time.Time, within time.Duration) (checked int, unready []Unready, failures []Failure, err error) {
	r.Meter.Start(now)
	defer func() {
		if reqs := r.Meter.drain(); len(reqs) > 0 {
			if serr := r.Store.Save(context.WithoutCancel(ctx), nil, nil, reqs...); serr != nil && err == nil {
				err = fmt.Errorf("record requests: %w", serr)
			}
		}
	}()
	failed := func(property string, sys System, err error) {
		if !slices.ContainsFunc(failures, func(f Failure) bool { return f.Property == property && f.System == sys }) {
			failures = append(failures, Failure{Property: property, System: sys, Err: err.Error(), Cause: err})
		}
	}
	for _, site := range r.Sites {
		p := site.Property
		creds, err := r.Store.Credentials(ctx, p.Name)
		if err != nil {
			return checked, unready, failures, fmt.Errorf("load credentials of %s: %w", p.Name, err)
		}
		loc := p.Location
		if loc == nil {
			loc = time.UTC
		}
		from, _ := p.ReadRange(now)
		// A window opening within the horizon is that of an arrival
		// whose check-in comes by the horizon plus the grace before it.
		stays, err := site.Source.Stays(ctx, from, DateOf(now.Add(within+p.GraceBefore).In(loc)))
		if err != nil {
			failed(p.Name, site.sourceSystem(), fmt.Errorf("read stays: %w", err))
			continue
		}
		slices.SortFunc(stays, func(a, b Stay) int { return a.Arrival.Compare(b.Arrival) })
		for _, s := range stays {
			if s.Unreadable != "" {
				// Its dates are not known: listed in the window, it may be
				// in house, and what it holds cannot be judged. One in
				// another property's room is that property's to check.
				if !s.Cancelled && s.MovedTo == "" {
					checked++
					unready = append(unready, Unready{Stay: s.Ref, Room: roomLabel(s), RoomID: s.RoomID,
						Why: []string{fmt.Sprintf("keysync could not read the stay from %s (%s)", sourceName(s.Ref.Source), s.Unreadable)}})
				}
				continue
			}
			win := p.Window(s.Arrival, s.Departure)
			// In house (the window open) or opening within the horizon:
			// an in-house guest whose access was cancelled or deleted
			// since is the most urgent of all.
			// A stay in another property's room (MovedTo: a split hotel
			// or organisation) is that property's to check.
			if s.Cancelled || s.MovedTo != "" || !now.Before(win.End) || win.Start.After(now.Add(within)) {
				continue
			}
			checked++
			// What of the window has passed needs nothing now: a credential
			// opening later than an in-house guest's (corrected) arrival,
			// but already open, is ready (the planner keeps it so).
			why := r.checkStay(ctx, site, s, win.From(now), creds, func(sys System, err error) { failed(p.Name, sys, err) })
			if len(why) > 0 {
				unready = append(unready, Unready{Stay: s.Ref, Room: roomLabel(s), RoomID: s.RoomID, Arrival: s.Arrival, Starts: win.Start, Why: why})
			}
		}
	}
	return checked, unready, failures, nil
}

// checkStay says what a stay lacks, or nothing when it is ready; a
// credential it could not read back is lacking, and its read's error goes
// to failed.
func (r *Runner) checkStay(ctx context.Context, site *Site, s Stay, win Window, creds []Credential, failed func(System, error)) []string {
	p := site.Property
	method, ok := p.methodFor(s.RoomID)
	if !ok {
		return []string{fmt.Sprintf("room %s has no access method in the config", roomNamed(s))}
	}
	var why []string
	live := func(sys System) *Credential {
		for i := range creds {
			if c := &creds[i]; c.Stay == s.Ref && c.System == sys && c.Status == StatusActive {
				return c
			}
		}
		return nil
	}
	checkOn := func(sys System, what string) {
		c := live(sys)
		if c == nil {
			why = append(why, fmt.Sprintf("no %s recorded", what))
			return
		}
		chk, ok := site.Sinks[sys].(Checker)
		if !ok {
			return // recorded live; this system cannot be read back
		}
		got, err := chk.Check(ctx, c, win)
		switch {
		case errors.Is(err, ErrNoList):
			return // the system lists nothing: as one that cannot be read back
		case err != nil:
			why = append(why, fmt.Sprintf("could not check its %s", what))
			failed(sys, fmt.Errorf("check the %s of stay %s: %w", what, s.Ref.ID, err))
		case !got.Live:
			why = append(why, got.Why)
		}
	}
	needsInvite := p.SharedPortals || method == MethodQR
	if s.Ref.Source == SystemGuestway && method == MethodPIN {
		held := slices.ContainsFunc(s.Locks, func(l LockAccess) bool { return l.PIN != "" })
		switch i := slices.IndexFunc(s.Locks, func(l LockAccess) bool { return l.Unreadable }); {
		case held:
		case i >= 0:
			// Guestway holds one keysync cannot read (a JSON number):
			// not "none", which would have a person issue another.
			why = append(why, fmt.Sprintf("Guestway's smart-lock PIN for lock %s is not a JSON string, so keysync cannot show it: give the guest the PIN Guestway shows",
				cmp.Or(s.Locks[i].LockName, s.Locks[i].LockID)))
		case s.LocksUnread != "":
			why = append(why, "keysync could not read Guestway's smart-lock PIN: "+s.LocksUnread)
		default:
			why = append(why, "Guestway holds no smart-lock PIN")
		}
	}
	// A key on the stay is what the guest is told, whoever created it.
	if s.Ref.Source == System3RPMS && s.Key == nil {
		why = append(why, "no 3RPMS key on the stay")
	}
	if needsInvite {
		checkOn(SystemOpenApp, "OpenApp invite")
	}
	if method == MethodKeyStorage {
		checkOn(SystemKeyBox, "key-box access")
	}
	return why
}
