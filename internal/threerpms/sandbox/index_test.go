package sandbox

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestIndexesFollowTheStays: through random additions, date changes,
// deletions, keys planted and deleted and the cleanup rule, the count of
// stays holding each key and the cached order of the stays stay what a
// scan of every stay gives.
func TestIndexesFollowTheStays(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := New(Options{Now: start})
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 6 {
		s.AddRoom(fmt.Sprintf("r%d", i), "")
	}
	date := func(days int) string { return start.AddDate(0, 0, days).Format(DateLayout) }
	var stays, keys []string
	// A stay named twice holds the key once.
	if err := s.AddStay(Stay{ID: "twice", RoomID: "r0", Arrival: date(0), Departure: date(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InjectKey("other", Key{Type: KeyTypePin, PIN: "123456"}, "twice", "twice"); err != nil {
		t.Fatal(err)
	}
	for step := range 400 {
		switch rng.IntN(6) {
		case 0, 1:
			id := fmt.Sprintf("s%d", step)
			arr := rng.IntN(10) - 3
			if err := s.AddStay(Stay{ID: id, RoomID: fmt.Sprintf("r%d", rng.IntN(6)), Arrival: date(arr), Departure: date(arr + 1 + rng.IntN(3))}); err == nil {
				stays = append(stays, id)
			}
		case 2:
			if len(stays) > 0 {
				var held []string
				for range 1 + rng.IntN(2) {
					held = append(held, stays[rng.IntN(len(stays))])
				}
				if id, err := s.InjectKey("other", Key{Type: KeyTypePin, PIN: fmt.Sprintf("%06d", 100000+step)}, held...); err == nil {
					keys = append(keys, id)
				}
			}
		case 3:
			if len(stays) > 0 {
				arr := rng.IntN(10) - 3
				s.ChangeDates(stays[rng.IntN(len(stays))], date(arr), date(arr+1+rng.IntN(3)))
			}
		case 4:
			if len(stays) > 0 && rng.IntN(2) == 0 {
				s.DeleteStay(stays[rng.IntN(len(stays))])
			} else if len(keys) > 0 {
				s.DeleteKey(keys[rng.IntN(len(keys))])
			}
		case 5:
			s.Advance(time.Duration(rng.IntN(30)) * time.Hour)
		}
		s.lock()
		want := map[string]int{}
		var all []*stay
		for _, st := range s.stays {
			all = append(all, st)
			if !st.deleted && st.keyID != "" {
				want[st.keyID]++
			}
		}
		sortStays(all)
		for id, n := range want {
			if s.holders[id] != n {
				t.Fatalf("step %d: key %s held by %d stays, counted %d", step, id, n, s.holders[id])
			}
		}
		for id, n := range s.holders {
			if want[id] != n {
				t.Fatalf("step %d: key %s counted %d holders, held by %d", step, id, n, want[id])
			}
		}
		if got := s.sortedStays(); !slices.Equal(got, all) {
			t.Fatalf("step %d: the cached order of the stays is not theirs", step)
		}
		s.mu.Unlock()
	}
}
