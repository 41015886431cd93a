package threerpms

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestChainSharesDocuments: three properties' batches on one Chain. The
// first goes alone and is held in flight; the two that arrive meanwhile go
// in one document when they fit in maxOps, else in full documents (a batch
// split across two when it must be). Each batch gets its own outcomes; a
// shared request that fails fails both.
func TestChainSharesDocuments(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		maxOps   int
		failAt   int  // this request is answered 503 (0: none)
		split    bool // the queued batches are 1 and 2 mutations, not 2 and 1
		requests int
	}{
		{"shared", 0, 0, false, 2},
		{"too many for one", 2, 0, false, 3},
		{"a batch split across two", 2, 0, true, 3},
		{"shared request fails", 0, 2, false, 2},
		{"half of a split batch fails", 2, 3, true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := chainSandbox(t, 4)
			arrived, release := make(chan struct{}), make(chan struct{})
			var mu sync.Mutex
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				i := n
				mu.Unlock()
				if i == 1 {
					close(arrived)
					<-release
				}
				if i == tt.failAt {
					http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
					return
				}
				sb.ServeHTTP(w, r)
			}))
			defer srv.Close()
			gql, err := threerpms.NewClient(threerpms.ClientOptions{Endpoint: srv.URL + "/graphql", Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			chain := NewChain(gql, tt.maxOps, nil)
			batches := [][]*reconcile.Action{{pinCreate("s1")}, {pinCreate("s2"), pinCreate("s3")}, {pinCreate("s4")}}
			if tt.split {
				batches = [][]*reconcile.Action{{pinCreate("s1")}, {pinCreate("s2")}, {pinCreate("s3"), pinCreate("s4")}}
			}
			outs := make([][]reconcile.Outcome, len(batches))
			errs := make([]error, len(batches))
			var wg sync.WaitGroup
			run := func(i int) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], errs[i] = chain.Sink().Apply(t.Context(), batches[i])
				}()
			}
			run(0)
			<-arrived
			for i := 1; i <= 2; i++ { // queued in this order
				run(i)
				for chain.queue.Len() < i {
					time.Sleep(time.Millisecond)
				}
			}
			close(release)
			wg.Wait()
			if reqs := sb.Requests(); n != tt.requests {
				t.Errorf("%d requests (%d reached the sandbox), want %d", n, len(reqs), tt.requests)
			}
			for i, b := range batches {
				if tt.failAt == 2 && i > 0 {
					if errs[i] == nil {
						t.Errorf("batch %d: no error from a failed shared request", i)
					}
					continue
				}
				if tt.failAt == 3 && i == 2 {
					// s3 went with s2 and was answered; s4's request failed
					// as a whole: unknown, for the next read to decide, not
					// a refusal.
					if errs[i] != nil || len(outs[i]) != 2 || outs[i][0].Err != nil || !errors.Is(outs[i][1].Err, reconcile.ErrUnknownOutcome) {
						t.Errorf("split batch with its second request failed: %+v, %v; want s3 done, s4 unknown", outs[i], errs[i])
					}
					continue
				}
				if errs[i] != nil || len(outs[i]) != len(b) {
					t.Fatalf("batch %d: %d outcomes, %v", i, len(outs[i]), errs[i])
				}
				for j, o := range outs[i] {
					if o.Err != nil || o.RemoteID == "" {
						t.Errorf("batch %d action %d: %+v", i, j, o)
					}
				}
			}
			want := map[int]int{0: 4, 2: 1, 3: 3}[tt.failAt]
			if keys := sb.Keys(); len(keys) != want {
				t.Errorf("%d keys in the sandbox, want %d", len(keys), want)
			}
		})
	}
}

// pinCreate is an action creating a PIN key for stay.
func pinCreate(stay string) *reconcile.Action {
	return &reconcile.Action{
		System: reconcile.System3RPMS, Op: reconcile.OpCreate, Kind: reconcile.KindPINKey,
		Stay: reconcile.StayRef{Property: "hotel", Source: reconcile.System3RPMS, ID: stay},
		Cred: &reconcile.Credential{System: reconcile.System3RPMS, Kind: reconcile.KindPINKey, PIN: reconcile.Secret("4" + stay[1:] + "7391")},
	}
}

// TestChainGathersAPartDocument: with a clock, a document the queued
// batches do not fill waits (Gather) for the batches of other properties
// that plan at about the same time, and they go in one request; a batch
// that fills a document goes at once. Without a clock nothing waits.
func TestChainGathersAPartDocument(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		maxOps   int
		requests int
		waits    bool
	}{
		{"part documents share one", 0, 1, true},
		{"a full document goes at once", 1, 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := chainSandbox(t, 2)
			srv := sandboxtest.Serve(t, sb)
			gql, err := threerpms.NewClient(threerpms.ClientOptions{Endpoint: srv.URL + "/graphql", Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			clock := clocktest.NewGate(time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC))
			chain := NewChain(gql, tt.maxOps, clock)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			apply := func(i int) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = chain.Sink().Apply(t.Context(), []*reconcile.Action{pinCreate(fmt.Sprintf("s%d", i+1))})
				}()
			}
			apply(0)
			if tt.waits {
				<-clock.Asleep() // the first batch's document waits for more
				apply(1)
				for chain.queue.Len() < 1 {
					time.Sleep(time.Millisecond)
				}
				clock.Open()
			} else {
				clock.Open()
				apply(1)
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("batch %d: %v", i, err)
				}
			}
			if n := len(sb.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if waited := clock.Slept() > 0; waited != tt.waits {
				t.Errorf("waited for more batches: %v, want %v", waited, tt.waits)
			}
		})
	}
}

// chainSandbox returns a sandbox that knows the token "tok" and holds n
// rooms r1…rn, each with a stay s1…sn over January 30 to February 2.
func chainSandbox(t *testing.T, n int) *sandbox.Server {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Integrations: map[string]string{"tok": "keysync"}, Now: time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)})
	for i := 1; i <= n; i++ {
		sb.AddRoom(fmt.Sprintf("r%d", i), fmt.Sprintf("Room %d", i))
		if err := sb.AddStay(sandbox.Stay{ID: fmt.Sprintf("s%d", i), RoomID: fmt.Sprintf("r%d", i), Arrival: "2026-01-30", Departure: "2026-02-02"}); err != nil {
			t.Fatal(err)
		}
	}
	return sb
}
