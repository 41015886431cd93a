package threerpms

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestHotelSharedByProperties: two properties on one endpoint and token,
// each with its own rooms, through one Hotel. The window is read once and
// each property gets only the stays in its rooms, as its own; look-ups by
// id that queue while one is in flight go in one request, and each gets
// the stays it asked for: those in its rooms, and one now in the other's
// rooms marked MovedTo it. MovedStays (a backfill's) gives the window's
// stays in the other's rooms, marked so, from the same read.
func TestHotelSharedByProperties(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Integrations: map[string]string{"tok": "keysync"}, Now: time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)})
	for i := 1; i <= 4; i++ {
		sb.AddRoom(fmt.Sprintf("r%d", i), fmt.Sprintf("Room %d", i))
		if err := sb.AddStay(sandbox.Stay{ID: fmt.Sprintf("s%d", i), RoomID: fmt.Sprintf("r%d", i), Arrival: "2026-01-30", Departure: "2026-02-02"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var hold chan struct{} // when set, the next request waits for it
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hold
		hold = nil
		mu.Unlock()
		if h != nil {
			arrived <- struct{}{}
			<-h
		}
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	gql, err := threerpms.NewClient(threerpms.ClientOptions{Endpoint: srv.URL + "/graphql", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	hotel := NewHotel(nil)
	a := NewSource(gql, "hotel", 100).Within([]string{"r1", "r2"}, hotel)
	b := NewSource(gql, "annex", 100).Within([]string{"r3", "r4"}, hotel)
	ids := func(stays []reconcile.Stay, property string) []string {
		var out []string
		for _, s := range stays {
			if s.Ref.Property != property {
				t.Errorf("stay %s labelled %s, want %s", s.Ref.ID, s.Ref.Property, property)
			}
			out = append(out, s.Ref.ID)
		}
		slices.Sort(out)
		return out
	}
	from, to := reconcile.Date{Year: 2026, Month: reconcile.Month(time.January), Day: 29}, reconcile.Date{Year: 2026, Month: reconcile.Month(time.February), Day: 5}

	var wg sync.WaitGroup
	var sa, sbStays []reconcile.Stay
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); sa, ea = a.Stays(context.Background(), from, to) }()
	go func() { defer wg.Done(); sbStays, eb = b.Stays(context.Background(), from, to) }()
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatal(ea, eb)
	}
	if got := ids(sa, "hotel"); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("hotel's stays %v, want [s1 s2]", got)
	}
	if got := ids(sbStays, "annex"); !slices.Equal(got, []string{"s3", "s4"}) {
		t.Errorf("annex's stays %v, want [s3 s4]", got)
	}
	// A backfill also reads the stays in the other property's rooms, from
	// the same read of the window, marked MovedTo it.
	moved, err := a.MovedStays(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(moved, "hotel"); !slices.Equal(got, []string{"s3", "s4"}) {
		t.Errorf("hotel's stays in the annex's rooms %v, want [s3 s4]", got)
	}
	for _, st := range moved {
		if st.MovedTo != "annex" {
			t.Errorf("stay %s: MovedTo %q, want annex", st.Ref.ID, st.MovedTo)
		}
	}
	if n := len(sb.Requests()); n != 1 {
		t.Errorf("%d requests for the window, want 1", n)
	}

	// The first look-up is held in flight; two more queue behind it.
	sb.ResetRequests()
	release := make(chan struct{})
	mu.Lock()
	hold = release
	mu.Unlock()
	results := make([][]reconcile.Stay, 3)
	errs := make([]error, 3)
	lookup := func(i int, s *Source, ids ...string) {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = s.StaysByID(context.Background(), ids) }()
	}
	lookup(0, a, "s1")
	<-arrived
	lookup(1, a, "s2", "s3") // s3 is in the annex's rooms: moved there
	lookup(2, b, "s4")
	for hotel.lookups.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, want := range []struct {
		property string
		ids      []string
	}{{"hotel", []string{"s1"}}, {"hotel", []string{"s2", "s3"}}, {"annex", []string{"s4"}}} {
		if errs[i] != nil {
			t.Fatalf("look-up %d: %v", i, errs[i])
		}
		if got := ids(results[i], want.property); !slices.Equal(got, want.ids) {
			t.Errorf("look-up %d: %v, want %v", i, got, want.ids)
		}
	}
	for _, st := range results[1] {
		if want := map[string]string{"s2": "", "s3": "annex"}[st.Ref.ID]; st.MovedTo != want {
			t.Errorf("stay %s: MovedTo %q, want %q", st.Ref.ID, st.MovedTo, want)
		}
	}
	if n := len(sb.Requests()); n != 2 {
		t.Errorf("%d look-up requests, want 2 (the held one, then the two queued together)", n)
	}
}

// TestHotelGathersLookups: with a clock, the first property's look-up by
// id waits for the others' (they read the window together, so theirs
// follow at once), and all go in one read.
func TestHotelGathersLookups(t *testing.T) {
	t.Parallel()
	gate := clocktest.NewGate(time.Time{})
	h := NewHotel(gate)
	var mu sync.Mutex
	var reads [][]string
	read := func(ids []string) ([]reconcile.Stay, error) {
		mu.Lock()
		defer mu.Unlock()
		reads = append(reads, slices.Clone(ids))
		var out []reconcile.Stay
		for _, id := range ids {
			out = append(out, reconcile.Stay{Ref: reconcile.StayRef{ID: id}})
		}
		return out, nil
	}
	got := make([][]reconcile.Stay, 2)
	var wg sync.WaitGroup
	lookUp := func(i int, id string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stays, err := h.staysByID(t.Context(), []string{id}, read)
			if err != nil {
				t.Error(err)
			}
			got[i] = stays
		}()
	}
	lookUp(0, "a")
	<-gate.Asleep()
	lookUp(1, "b")
	for h.lookups.Len() < 1 {
		time.Sleep(time.Millisecond)
	}
	gate.Open()
	wg.Wait()
	if len(reads) != 1 || !slices.Equal(reads[0], []string{"a", "b"}) {
		t.Errorf("reads %q, want one of a and b", reads)
	}
	for i, id := range []string{"a", "b"} {
		if len(got[i]) != 1 || got[i][0].Ref.ID != id {
			t.Errorf("look-up %d got %+v, want stay %s alone", i, got[i], id)
		}
	}
}
