package reconcile

import (
	"errors"
	"fmt"
)

// What keysync assumes about the errors of the systems it writes to, and
// what it does when the assumption is wrong.
//
// The API documents define no error codes. Where an error carries one
// keysync knows (the adapters map them to ErrNotFound, ErrNotOurs,
// ErrConflict and ErrRejected), it is a hint that saves a read; where it
// does not, keysync never waits for a code that will not come: an action
// the system refused is settled by what keysync can observe, now or on the
// next read, never by the message's text. A refusal is an error the system
// gave for that one action (a GraphQL field error, an HTTP 4xx for that
// call); a failed request, an answer that was lost, a 5xx, a 429 or a
// wrong credential is not one, and leaves the action to the next run.
//
// The rules, for 3RPMS keys:
//   - A claim (backfill's ownership check) that is refused means the key is
//     not ours: a conflict note, left alone.
//   - An assign that is refused retires the key (StatusRetired): it is never
//     assigned again; the next run deletes it and gives the stay a new key.
//     Should that read show the retired key on the stay after all, it is the
//     stay's key again. A key left unassigned for as long as 3RPMS keeps
//     such keys is not assigned either, but deleted and replaced.
//   - A revoke is planned only when the read shows the key on the stay, or
//     for a stay the source no longer shows (Unseen: deleted, or its
//     reservation cancelled) whose record says it holds the key. A refused
//     revoke of an Unseen stay is settled, since no read can show the key
//     on it: once 3RPMS's own cleanup has passed (keysKeptAfterDeparture
//     after the recorded window) the key is off; before that it is retired,
//     and keysync waits: a read that shows the stay again decides (a
//     reactivated reservation holding the key takes it back), or the
//     cleanup passes and the record is abandoned. A revoke refused on a
//     stay the read showed fails, and the next read decides: a stay that no
//     longer holds the key needs no revoke.
//   - An invite update or switch-off (OpenApp) that is refused marks the
//     invite ReplaceOnly: the runs after replace it, new before old,
//     instead of updating it, and delete it instead of switching it off.
//   - A delete that is refused for a key no stay holds (the read showed it
//     on none, or this run's revoke of it succeeded) is settled: the key is
//     abandoned to 3RPMS's cleanup, which deletes unassigned keys itself. A
//     "not found" answer to a revoke or delete is done.
//
// Whatever still fails run after run is not hidden: Runner marks an action
// that failed in each of the two runs before as a Problem, which needs a
// person and no longer makes the run partial.

// refused reports whether err is the system's answer to one action, as
// opposed to a failed request, a lost answer or an outage.
func refused(err error) bool {
	return err != nil && !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, ErrUnavailable) &&
		!errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrOverBudget)
}

// settle applies one outcome to the action's credential. whole says the
// request failed as a whole, so o.Err is that failure, not an answer to
// the action.
func (ap *applier) settle(a *Action, o Outcome, whole bool) (Phase, string) {
	c := a.Cred
	c.UpdatedAt = ap.now
	err := o.Err
	// Already gone counts as done for the operations that make things go.
	if err != nil && errors.Is(err, ErrNotFound) && (a.Op == OpRevoke || a.Op == OpDelete) {
		err = nil
	}
	if err != nil && !whole && refused(err) && a.System == System3RPMS {
		if phase, detail, ok := ap.settleRefusal(a, err); ok {
			return phase, detail
		}
	}
	if err != nil && !whole && (errors.Is(err, ErrRejected) || errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound)) && (a.Op == OpUpdate || a.Op == OpDisable) {
		// The system will not change this credential in place (OpenApp's
		// document shows PUT switching an invite off or narrowing it;
		// keysync also widens, moves and switches on; it defines no error
		// codes, so a 409 says as much as a 400 or 422): from now on it is
		// replaced, new before old, or deleted where it would be switched
		// off, and stays live until then. A 404 is one more such answer,
		// not proof that the invite is gone (a server without the call
		// answers it too): forgetting a live invite would leave it open
		// past the stay, so it is deleted too, where a delete of one
		// already gone is done.
		c.ReplaceOnly = true
		detail := fmt.Sprintf("%v; %s would not change it in place: the next run replaces or deletes it instead", err, a.System)
		ap.rep.set(a, ResultFailed, detail)
		return PhaseFailed, detail
	}
	if err != nil {
		if errors.Is(err, ErrUnknownOutcome) {
			ap.rep.set(a, ResultUnknown, err.Error())
			return PhaseUnknown, err.Error()
		}
		if errors.Is(err, ErrOverBudget) {
			// Sent, refused for the rate limit (or undone) and not sent
			// again for want of budget: nothing ran, so it is deferred,
			// first in the next run, as the plan's deferred work is.
			if a.Op == OpCreate {
				c.Status = StatusAbandoned // nothing was created
			}
			ap.rep.set(a, ResultDeferred, err.Error())
			ap.mu.Lock()
			ap.deferred[c] = err.Error()
			ap.mu.Unlock()
			return PhaseSkipped, err.Error()
		}
		ap.rep.set(a, ResultFailed, err.Error())
		if a.Op == OpCreate {
			c.Status = StatusAbandoned // nothing was created
		}
		return PhaseFailed, err.Error()
	}
	ap.rep.set(a, ResultDone, "")
	switch a.Op {
	case OpCreate:
		c.RemoteID, c.Status, c.Secret = o.RemoteID, StatusActive, o.Secret
		c.Secretless = o.Secret == "" && (c.Kind == KindInvite || c.Kind == KindKeyBoxAccess)
	case OpUpdate:
		c.Status, c.RoomID = StatusActive, a.RoomID
		if a.Window != nil {
			c.Valid = *a.Window
		}
	case OpDisable:
		c.Status = StatusDisabled
	case OpAssign:
		c.Assigned = true
	case OpRevoke:
		c.Assigned = false
	case OpDelete:
		c.Status, c.Assigned = StatusDeleted, false
	case OpClaim:
		c.Status, c.Assigned, c.Adopted = StatusActive, true, true
	}
	return PhaseDone, ""
}

// settleRefusal applies the rules above to a 3RPMS action the server
// refused. ok is false when the refusal is a plain failure.
func (ap *applier) settleRefusal(a *Action, err error) (phase Phase, detail string, ok bool) {
	c := a.Cred
	switch {
	case a.Op == OpClaim:
		ap.rep.set(a, ResultDone, "")
		ap.mu.Lock()
		ap.notOurs[c] = true
		// As a run's plan reports a key it knows is not ours (observeKey).
		ap.rep.Notes = append(ap.rep.Notes, Note{
			Kind: NoteConflict, Stay: a.Stay, Room: a.Room, RoomID: a.RoomID, Arrival: a.Arrival, Departure: a.Departure,
			Detail:    fmt.Sprintf("stay holds a %s key that keysync did not create; left alone", a.Kind),
			Attention: ap.site.Property.needsAPerson(ap.now, a.RoomID, a.Arrival, a.Departure),
		})
		ap.mu.Unlock()
		return PhaseDone, fmt.Sprintf("not created by keysync (claim refused: %v); left alone", err), true
	case a.Op == OpAssign:
		c.Status, c.Assigned = StatusRetired, false
		return ap.settled(a, ResultFailed, PhaseFailed, fmt.Sprintf("%v; key %s retired, the stay gets a new key next run", err, c.RemoteID))
	case a.Op == OpRevoke && a.Unseen && !ap.now.Before(ap.site.Property.Window(a.Arrival, a.Departure).End.Add(keysKeptAfterDeparture)):
		c.Assigned = false
		return ap.settled(a, ResultSettled, PhaseDone, fmt.Sprintf("%v; settled: %s no longer shows stay %s, and its own cleanup has taken keys off it", err, a.System, a.Stay.ID))
	case a.Op == OpRevoke && a.Unseen:
		c.Status = StatusRetired
		return ap.settled(a, ResultSettled, PhaseDone, fmt.Sprintf("%v; settled: %s no longer shows stay %s, so nothing can show the key on it; key %s is retired until a read shows the stay again or 3RPMS's own cleanup passes", err, a.System, a.Stay.ID, c.RemoteID))
	case a.Op == OpDelete && !c.Assigned:
		c.Status = StatusAbandoned
		return ap.settled(a, ResultSettled, PhaseDone, fmt.Sprintf("%v; settled: no stay holds key %s, and %s deletes unassigned keys itself", err, c.RemoteID, a.System))
	case a.Op == OpDelete && c.Status == StatusRetired:
		return ap.settled(a, ResultSettled, PhaseDone, fmt.Sprintf("%v; settled: key %s stays retired", err, c.RemoteID))
	}
	return "", "", false
}

// settled records a refusal's result and returns its audit phase and detail.
func (ap *applier) settled(a *Action, r Result, phase Phase, detail string) (Phase, string, bool) {
	ap.rep.set(a, r, detail)
	return phase, detail, true
}
