package metrics_test

import (
	"slices"
	"testing"

	"github.com/keysync/keysync/internal/metrics"
	"github.com/keysync/keysync/reconcile"
)

// TestArrivalsWithoutCredential: the stays the alert counts are those
// arriving within 24 hours or in house whose create or assign was not done,
// and those Guestway holds no lock PIN for; later arrivals, revocations and
// work that was done are not counted, and a stay is counted once.
func TestArrivalsWithoutCredential(t *testing.T) {
	stay := func(id string) reconcile.StayRef {
		return reconcile.StayRef{Property: "hotel", Source: reconcile.System3RPMS, ID: id}
	}
	act := func(id string, op reconcile.Op, pri reconcile.Priority, res reconcile.Result) reconcile.ActionReport {
		return reconcile.ActionReport{Action: &reconcile.Action{System: reconcile.System3RPMS, Op: op, Stay: stay(id), Priority: pri}, Result: res}
	}
	for _, tc := range []struct {
		name    string
		actions []reconcile.ActionReport
		notes   []reconcile.Note
		want    []string
	}{
		{"arrival soon, create failed", []reconcile.ActionReport{act("s1", reconcile.OpCreate, reconcile.PriorityArrivalSoon, reconcile.ResultFailed)}, nil, []string{"s1"}},
		{"in house, new key's create failed", []reconcile.ActionReport{act("s1", reconcile.OpCreate, reconcile.PriorityInHouse, reconcile.ResultFailed)}, nil, []string{"s1"}},
		{"in house, assign of unknown outcome", []reconcile.ActionReport{act("s1", reconcile.OpAssign, reconcile.PriorityInHouse, reconcile.ResultUnknown)}, nil, []string{"s1"}},
		{"arrival soon, deferred and skipped once each", []reconcile.ActionReport{
			act("s1", reconcile.OpCreate, reconcile.PriorityArrivalSoon, reconcile.ResultDeferred),
			act("s1", reconcile.OpAssign, reconcile.PriorityArrivalSoon, reconcile.ResultSkipped),
		}, nil, []string{"s1"}},
		{"done", []reconcile.ActionReport{act("s1", reconcile.OpCreate, reconcile.PriorityInHouse, reconcile.ResultDone)}, nil, nil},
		{"later arrival failed", []reconcile.ActionReport{act("s1", reconcile.OpCreate, reconcile.PriorityLaterArrival, reconcile.ResultFailed)}, nil, nil},
		{"revocation failed", []reconcile.ActionReport{act("s1", reconcile.OpRevoke, reconcile.PriorityRevoke, reconcile.ResultFailed)}, nil, nil},
		{"no lock PIN", nil, []reconcile.Note{{Kind: reconcile.NoteMissingLockPIN, Stay: stay("g1")}}, []string{"g1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &reconcile.Report{Plans: []*reconcile.PlanReport{{Property: "hotel", Actions: tc.actions, Notes: tc.notes}}}
			var got []string
			for _, s := range metrics.ArrivalsWithoutCredential(rep) {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
