package reconcile

// Tests of the planner's internal indexes and lists.

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestRecordsSharedStayID checks that stays sharing an id (other sources,
// other properties) keep their credentials apart in records' index.
func TestRecordsSharedStayID(t *testing.T) {
	t.Parallel()
	a := StayRef{Property: "p", Source: System3RPMS, ID: "42"}
	b := StayRef{Property: "p", Source: SystemGuestway, ID: "42"}
	c := StayRef{Property: "q", Source: System3RPMS, ID: "42"}
	creds := []Credential{
		{ID: 1, Stay: a, Status: StatusActive},
		{ID: 2, Stay: b, Status: StatusActive},
		{ID: 3, Stay: a, Status: StatusDeleted},
		{ID: 4, Stay: c, Status: StatusPending},
		{ID: 5, Stay: b, Status: StatusActive},
		{ID: 6, Stay: a, Status: StatusActive},
	}
	r := newRecords(creds)
	want := map[StayRef][]int64{a: {1, 6}, b: {2, 5}, c: {4}}
	for ref, ids := range want {
		g, ok := r.group(ref)
		if !ok {
			t.Fatalf("group(%v): none", ref)
		}
		if r.ref(g) != ref {
			t.Errorf("group(%v) is the group of %v", ref, r.ref(g))
		}
		got, _ := r.recorded(g)
		if len(got) != len(ids) {
			t.Fatalf("recorded(%v) = %d credentials, want %d", ref, len(got), len(ids))
		}
		for i, c := range got {
			if c.ID != ids[i] {
				t.Errorf("recorded(%v)[%d] = credential %d, want %d", ref, i, c.ID, ids[i])
			}
		}
	}
	if _, ok := r.group(StayRef{Property: "p", Source: SystemOpenApp, ID: "42"}); ok {
		t.Error("group of a stay with no credentials found")
	}
}

// TestActionLog checks that since yields the actions added after a mark,
// in order, wherever the chunks begin.
func TestActionLog(t *testing.T) {
	t.Parallel()
	var l actionLog
	for i := range 5000 {
		if a := l.add(Action{Step: i}); a.Step != i {
			t.Fatalf("add returned action %d, want %d", a.Step, i)
		}
	}
	for _, n := range []int{0, 1, 15, 16, 17, 47, 48, 4000, 4999, 5000} {
		want := n
		for a := range l.since(n) {
			if a.Step != want {
				t.Fatalf("since(%d) yields action %d, want %d", n, a.Step, want)
			}
			want++
		}
		if want != l.n {
			t.Errorf("since(%d) ends at %d, want %d", n, want, l.n)
		}
	}
	var empty actionLog
	for range empty.since(0) {
		t.Error("since(0) of an empty log yields an action")
	}
}

// TestSortActions checks sortActions against a stable comparison sort on
// step, priority and deferral.
func TestSortActions(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	deferred := map[StayRef]bool{{ID: "1"}: true, {ID: "3"}: true}
	var l actionLog
	for i := range 1000 {
		l.add(Action{Stay: StayRef{ID: strconv.Itoa(rng.IntN(5))}, Step: 1 + rng.IntN(3), Priority: Priority(1 + rng.IntN(4)), Reason: strconv.Itoa(i)})
	}
	want := slices.Collect(l.since(0))
	deferredFirst := func(a *Action) int {
		if deferred[a.Stay] {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(want, func(a, b *Action) int {
		return cmp.Or(cmp.Compare(a.Step, b.Step), cmp.Compare(a.Priority, b.Priority), cmp.Compare(deferredFirst(a), deferredFirst(b)))
	})
	got := sortActions(&l, deferred)
	if len(got) != len(want) {
		t.Fatalf("sortActions: %d actions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sortActions: action %d is %+v, want %+v", i, *got[i], *want[i])
		}
	}
	if got := sortActions(&actionLog{}, nil); got != nil {
		t.Errorf("sortActions of no actions = %v, want nil", got)
	}
}
