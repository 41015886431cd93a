package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
)

// savedPlanVersion is the format of the file `plan --out` writes.
const savedPlanVersion = 1

// savedPlan is what `keysync plan --out FILE` writes and `keysync apply
// FILE` applies: each property's actions, named by what they do (never by
// the PINs they carry), the PINs the plan drew, sealed under the state key,
// and the position of the record the plan was made at.
type savedPlan struct {
	Version  int       `json:"version"`
	Now      time.Time `json:"now"`
	Position string    `json:"state_position"`
	// Shard is the --shard I/N the plan was made for; "" unsharded. A
	// plan is applied to the state file it was made against, its shard's.
	Shard string `json:"shard,omitempty"`
	// Forced says the plan was made with --force (past the fail-safe):
	// apply needs it too.
	Forced bool `json:"forced,omitempty"`
	// Key is the id of the state key the PINs are sealed under.
	Key        string                   `json:"state_key"`
	Properties map[string][]savedAction `json:"properties"`
}

// savedAction is one planned action: its signature, and for a key with a
// generated PIN the PIN sealed under the state key, bound to the
// property and the signature.
type savedAction struct {
	Action string `json:"action"`
	PIN    string `json:"sealed_pin,omitempty"`
}

// signature names what an action does, without its PIN or its reason: two
// plans whose actions have the same signatures do the same thing.
func signature(a *reconcile.Action) string {
	kind, remote := a.Kind, ""
	if a.Cred != nil {
		kind, remote = a.Cred.Kind, a.Cred.RemoteID
	}
	sig := fmt.Sprintf("stay %s/%s: step %d %s %s %s", a.Stay.Source, a.Stay.ID, a.Step, a.System, a.Op, kind)
	if remote != "" {
		sig += " " + remote
	}
	sig += fmt.Sprintf(" room %s, %s to %s", a.RoomID, a.Arrival, a.Departure)
	if a.Window != nil {
		sig += fmt.Sprintf(", window %s – %s", a.Window.Start.UTC().Format(time.RFC3339), a.Window.End.UTC().Format(time.RFC3339))
	}
	return sig
}

// pinContext binds a sealed PIN to the action it was drawn for.
func pinContext(property, sig string) string { return "plan " + property + ": " + sig }

// newSavedPlan records a dry run's plans, sealing their drawn PINs.
func newSavedPlan(rep *reconcile.Report, position, shard string, key *seal.Key, forced bool) *savedPlan {
	sp := &savedPlan{Version: savedPlanVersion, Now: rep.Now, Position: position, Shard: shard, Forced: forced, Key: key.ID(), Properties: map[string][]savedAction{}}
	for _, p := range rep.Plans {
		actions := []savedAction{}
		for _, ar := range p.Actions {
			a := ar.Action
			sa := savedAction{Action: signature(a)}
			if a.Op == reconcile.OpCreate && a.Cred != nil && a.Cred.PIN != "" && ar.Result != reconcile.ResultDeferred {
				sa.PIN = key.Seal(a.Cred.PIN.Reveal(), pinContext(p.Property, sa.Action))
			}
			actions = append(actions, sa)
		}
		sp.Properties[p.Property] = actions
	}
	return sp
}

// createPlanFile creates the --out file before the plan runs (new, mode
// 0600), so a file that exists or a folder that cannot be written fails
// before any request is spent.
func createPlanFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("--out %s: %w (a saved plan is never overwritten: choose another name)", path, err)
	case err != nil:
		return nil, fmt.Errorf("--out %s: %w; check that its directory exists and keysync may write there", path, err)
	}
	return f, nil
}

// writeTo writes the plan into f and closes it.
func (sp *savedPlan) writeTo(f *os.File) error {
	b, err := json.MarshalIndent(sp, "", "  ")
	if err == nil {
		_, err = f.Write(append(b, '\n'))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--out %s: %w", f.Name(), err)
	}
	return nil
}

// savedPlanMaxAge is how old a plan apply takes when no --now is given:
// it acts at the plan's instant, so the request ledger and the windows
// are the plan's; hours later they no longer match the wall clock.
const savedPlanMaxAge = 6 * time.Hour

// savedPlanMaxAhead is how far in the future a plan's instant may be (a
// clock a little ahead on the machine that planned) for apply without
// --now to take it.
const savedPlanMaxAhead = 5 * time.Minute

// readSavedPlan reads a file `plan --out` wrote.
func readSavedPlan(path string) (*savedPlan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("saved plan: %w", err)
	}
	var sp savedPlan
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("saved plan %s: not a plan `keysync plan --out` wrote: %w", path, err)
	}
	if sp.Version != savedPlanVersion {
		return nil, fmt.Errorf("saved plan %s: format version %d, this keysync reads %d", path, sp.Version, savedPlanVersion)
	}
	if sp.Now.IsZero() || sp.Properties == nil {
		return nil, fmt.Errorf("saved plan %s: no instant or no properties", path)
	}
	return &sp, nil
}

// review checks that the plans a run computed are the saved ones, action
// for action, and gives the creates the PINs the saved plan drew (and
// showed). Any difference refuses the run, naming the stays whose actions
// changed.
func (sp *savedPlan) review(key *seal.Key) func([]*reconcile.Plan, map[*reconcile.Action]bool) error {
	return func(plans []*reconcile.Plan, deferred map[*reconcile.Action]bool) error {
		var changed []string
		seen := map[string]bool{}
		type pinAt struct {
			a   *reconcile.Action
			sig string
		}
		var pins []pinAt
		for _, p := range plans {
			name := p.Property
			seen[name] = true
			want := map[string]int{}
			for _, sa := range sp.Properties[name] {
				want[sa.Action]++
			}
			got := map[string]int{}
			for _, a := range p.Actions {
				sig := signature(a)
				got[sig]++
				if a.Op == reconcile.OpCreate && a.Cred != nil && a.Cred.PIN != "" && !deferred[a] {
					pins = append(pins, pinAt{a, sig})
				}
			}
			stays := map[string]bool{}
			for sig, n := range got {
				if want[sig] != n {
					stays[stayOf(sig)] = true
				}
			}
			for sig, n := range want {
				if got[sig] != n {
					stays[stayOf(sig)] = true
				}
			}
			for _, s := range slices.Sorted(maps.Keys(stays)) {
				changed = append(changed, name+" "+s)
			}
		}
		for name, actions := range sp.Properties {
			if !seen[name] && len(actions) > 0 {
				changed = append(changed, name+" (not planned this time)")
			}
		}
		if len(changed) > 0 {
			slices.Sort(changed)
			return fmt.Errorf("%w: what the run would do differs from the plan for %s; make and review a new plan", reconcile.ErrStalePlan, strings.Join(changed, ", "))
		}
		for _, p := range plans {
			for _, a := range p.Actions {
				if deferred[a] && a.Op == reconcile.OpCreate && a.Cred != nil && a.Cred.PIN != "" {
					for _, sa := range sp.Properties[p.Property] {
						if sa.PIN != "" && sa.Action == signature(a) {
							return fmt.Errorf("%w: the day's request budget no longer covers %s, whose PIN the plan showed", reconcile.ErrStalePlan, stayOf(sa.Action))
						}
					}
				}
			}
		}
		sealed := map[string]string{}
		for name, actions := range sp.Properties {
			for _, sa := range actions {
				if sa.PIN != "" {
					sealed[name+"\x00"+sa.Action] = sa.PIN
				}
			}
		}
		for _, p := range pins {
			name := p.a.Stay.Property
			s, ok := sealed[name+"\x00"+p.sig]
			if !ok {
				// The plan deferred it for the day's budget, and showed
				// no PIN for it: a PIN drawn now would be one no one saw.
				return fmt.Errorf("%w: %s: the plan showed no PIN for it (deferred for the day's budget then)", reconcile.ErrStalePlan, stayOf(p.sig))
			}
			delete(sealed, name+"\x00"+p.sig) // two creates alike would share it: refuse the second
			pin, err := key.Open(s, pinContext(name, p.sig))
			if err != nil {
				return fmt.Errorf("%w: the PIN saved for %s does not open with this state key: %v", reconcile.ErrStalePlan, p.sig, err)
			}
			p.a.Cred.PIN = reconcile.Secret(pin)
		}
		return nil
	}
}

// stayOf is the stay a signature names.
func stayOf(sig string) string {
	s, _, _ := strings.Cut(strings.TrimPrefix(sig, "stay "), ":")
	return "stay " + s
}

// positionOf reads the record's position from the state a run opened.
func positionOf(ctx context.Context, db reconcile.Store) (string, error) {
	p, ok := db.(interface {
		Position(ctx context.Context) (string, error)
	})
	if !ok {
		return "", errors.New("the state store cannot say its position")
	}
	return p.Position(ctx)
}
