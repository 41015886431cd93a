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

// TestHashSlots checks that values of one tag are found in turn from a
// hash's home, past other tags and across the end of the table.
func TestHashSlots(t *testing.T) {
	t.Parallel()
	s := newHashSlots(4) // 16 slots
	last := s.mask
	a := 7<<32 | last      // home: the last slot
	b := uint64(7<<32 | 3) // the same tag, another home
	c := 9<<32 | last      // another tag, a's home
	for v, h := range []uint64{a, c, b, a} {
		i := s.home(h)
		for {
			slot, _, ok := s.seek(h, i)
			if !ok {
				s.set(slot, h, int32(v))
				break
			}
			i = slot + 1
		}
	}
	// a went in the last slot, c wrapped to slot 0, b to its home, and
	// the second value of a's tag after c.
	want := []struct {
		h    uint64
		from uint64
		v    int32
		ok   bool
	}{
		{a, last, 0, true},
		{a, last + 1, 3, true}, // past c, at slot 1
		{b, 3, 2, true},
		{c, last, 1, true},
		{c, 1, 0, false}, // no other value of c's tag
		{11<<32 | 5, 5, 0, false},
	}
	for _, w := range want {
		_, v, ok := s.seek(w.h, w.from)
		if ok != w.ok || ok && v != w.v {
			t.Errorf("seek(%#x, %d) = %d, %v; want %d, %v", w.h, w.from, v, ok, w.v, w.ok)
		}
	}
	s.warm([]uint64{a, b, c}) // reads only
	if _, v, _ := s.seek(a, s.home(a)); v != 0 {
		t.Errorf("after warm, seek(a) = %d, want 0", v)
	}
}
