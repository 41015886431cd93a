package reconcile_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestBudget plans a busy night (a departure, a cancellation, arrivals
// within 24 hours and later, a QR room whose invite and key depend on each
// other) and checks what each allowance keeps and defers.
func TestBudget(t *testing.T) {
	t.Parallel()
	plan := func() *reconcile.Plan {
		p, err := reconcile.Compute(reconcile.Input{
			Now:      tonight,
			Property: testProperty(),
			Stays: []reconcile.Stay{
				holding(stay("gone", "r205", "2026-06-06", "2026-06-10"), "K1", "385917"),
				stay("soon1", "r101", "2026-06-11", "2026-06-13"),
				stay("soon2", "r102", "2026-06-11", "2026-06-12"),
				stay("later", "r204", "2026-06-14", "2026-06-16"),
				stay("qr", "r301", "2026-06-15", "2026-06-16"),
			},
			Credentials: []reconcile.Credential{cred("gone", "r205", "K1", active, true, "2026-06-06", "2026-06-10")},
			Rand:        seeded(7),
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	max3RPMS := func(reconcile.System) int { return 2 } // two mutations per document
	tests := []struct {
		name  string
		allow map[reconcile.System]reconcile.Allowance
		want  []string // deferred actions, by summary
	}{
		{name: "no budget: nothing deferred"},
		{name: "ample budget", allow: map[reconcile.System]reconcile.Allowance{reconcile.System3RPMS: {Left: 100, Reserve: 10}, reconcile.SystemOpenApp: {Left: 100}}},
		{
			// The revocation's request goes; creates need more than is left.
			name:  "one request left, kept for revocations",
			allow: map[reconcile.System]reconcile.Allowance{reconcile.System3RPMS: {Left: 1, Reserve: 1}},
			want: []string{
				"2 create soon1 - soon", "2 create soon2 - soon", "2 create later - later", "2 create qr - later",
				"3 assign soon1 - soon", "3 assign soon2 - soon", "3 assign later - later", "3 assign qr - later",
				"1 create qr - later",
			},
		},
		{
			// Four 3RPMS requests: revocations and the arrivals within 24 h
			// fit (steps 2 and 3 of two documents each); later ones wait.
			name:  "arrivals within 24 hours before later ones",
			allow: map[reconcile.System]reconcile.Allowance{reconcile.System3RPMS: {Left: 4}},
			want: []string{
				"2 create later - later", "2 create qr - later", "3 assign later - later", "3 assign qr - later",
				"1 create qr - later",
			},
		},
		{
			// No OpenApp request left: the QR room's invite, and with it the
			// key carrying its link, wait; the PIN rooms go.
			name:  "a unit spanning systems waits together",
			allow: map[reconcile.System]reconcile.Allowance{reconcile.SystemOpenApp: {Left: 0}},
			want:  []string{"2 create qr - later", "3 assign qr - later", "1 create qr - later"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan()
			all := summary(p)
			kept, deferred := reconcile.Budget(p.Actions, tt.allow, max3RPMS)
			if got := summary(p); !slices.Equal(got, all) {
				t.Errorf("Budget changed the plan:\n got %q\nwant %q", got, all)
			}
			why := map[*reconcile.Action]string{}
			for _, d := range deferred {
				why[d.Action] = d.Why
			}
			var got []string
			for i, a := range p.Actions {
				_, isDeferred := why[a]
				if isDeferred == slices.Contains(kept, a) {
					t.Errorf("%s: deferred %v, kept %v; want exactly one", all[i], isDeferred, slices.Contains(kept, a))
				}
				if isDeferred {
					got = append(got, all[i])
					if why[a] == "" {
						t.Errorf("%s: deferred without a reason", all[i])
					}
				}
			}
			if len(kept)+len(deferred) != len(p.Actions) {
				t.Errorf("kept %d + deferred %d != %d actions", len(kept), len(deferred), len(p.Actions))
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("deferred:\n got %q\nwant %q\nplan %q", got, want, all)
			}
			// What is kept fits: never more requests than allowed.
			for sys, al := range tt.allow {
				n := 0
				for _, b := range reconcile.Batches(kept, max3RPMS) {
					if b.System == sys {
						n++
					}
				}
				if n > al.Left {
					t.Errorf("%s: kept actions take %d requests, %d left", sys, n, al.Left)
				}
			}
		})
	}
}

// TestResendBudget: the re-sends of a batch's request (a 429 waited out,
// an idempotent write after an outage, a 3RPMS document sent again) come
// out of what the day's budget has left after the plan's price, at the
// priority of the request sent again (here every one at revoke's; see
// TestResendPriority): one carrying a revocation or cleanup may spend
// the reserve, any other keeps it and the revocations of a property
// sharing the account that is priced later, until they are priced (and
// so taken off what is left).
func TestResendBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		al     reconcile.Allowance
		revoke bool
		// later is the price of the revocations of a property priced
		// later; priced says it was priced before the re-sends.
		later  int
		priced bool
		// grants is how many re-sends the budget gives before it refuses
		// one.
		grants int
	}{
		{name: "nothing left", al: reconcile.Allowance{Left: 0}, grants: 0},
		{name: "revocation, nothing left", al: reconcile.Allowance{Left: 0}, revoke: true, grants: 0},
		{name: "arrivals, left above the reserve", al: reconcile.Allowance{Left: 3, Reserve: 1}, grants: 2},
		{name: "arrivals keep the reserve", al: reconcile.Allowance{Left: 2, Reserve: 2}, grants: 0},
		{name: "revocation spends the reserve", al: reconcile.Allowance{Left: 2, Reserve: 2}, revoke: true, grants: 2},
		{name: "arrivals keep a later property's revocations", al: reconcile.Allowance{Left: 3}, later: 2, grants: 1},
		{name: "arrivals after the later property is priced", al: reconcile.Allowance{Left: 5}, later: 2, priced: true, grants: 3},
		{name: "arrivals keep the reserve and a later property's revocations", al: reconcile.Allowance{Left: 6, Reserve: 1}, later: 2, grants: 3},
		{name: "revocation does not wait for a later property's", al: reconcile.Allowance{Left: 2}, revoke: true, later: 2, grants: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spend, price := reconcile.ResendBudget(tt.al, tt.revoke, tt.later)
			if tt.priced {
				price()
			}
			n := 0
			for n < 100 && spend() {
				n++
			}
			if n != tt.grants {
				t.Errorf("%d re-sends granted, want %d", n, tt.grants)
			}
			if spend() {
				t.Error("a re-send granted after one was refused")
			}
		})
	}
}

// TestResendPriority: a re-send may spend the revocation reserve, and
// ignore the revocations of a property sharing the account and priced
// later, only when the request sent again carries a revocation or
// cleanup. A request carrying its batch whole asks at the batch's priority
// (WithResends' default); a part of the batch sent on its own (a 3RPMS
// document's half, its fields sent again) asks at its own
// (WithRevocation), whatever the rest of its batch carries.
func TestResendPriority(t *testing.T) {
	t.Parallel()
	const (
		whole      = iota // the batch's request, sent again whole
		creates           // a part carrying creates and assigns alone
		revocation        // a part carrying a revocation or cleanup
	)
	tests := []struct {
		name string
		// batch says the batch carries a revocation or cleanup.
		batch   bool
		request int
		al      reconcile.Allowance
		later   int
		grants  int
	}{
		{name: "revocations' batch, whole, spends the reserve", batch: true, request: whole, al: reconcile.Allowance{Left: 2, Reserve: 2}, grants: 2},
		{name: "arrivals' batch, whole, keeps the reserve", request: whole, al: reconcile.Allowance{Left: 3, Reserve: 2}, grants: 1},
		{name: "mixed batch, creates-only part keeps the reserve", batch: true, request: creates, al: reconcile.Allowance{Left: 3, Reserve: 2}, grants: 1},
		{name: "mixed batch, creates-only part, nothing above the reserve", batch: true, request: creates, al: reconcile.Allowance{Left: 2, Reserve: 2}, grants: 0},
		{name: "mixed batch, part carrying a revocation spends the reserve", batch: true, request: revocation, al: reconcile.Allowance{Left: 2, Reserve: 2}, grants: 2},
		{name: "mixed batch, creates-only part keeps a later property's revocations", batch: true, request: creates, al: reconcile.Allowance{Left: 3}, later: 2, grants: 1},
		{name: "mixed batch, part carrying a revocation does not wait for a later property's", batch: true, request: revocation, al: reconcile.Allowance{Left: 2}, later: 2, grants: 2},
		{name: "creates-only part, reserve and a later property's revocations kept", batch: true, request: creates, al: reconcile.Allowance{Left: 4, Reserve: 1}, later: 2, grants: 1},
		{name: "part carrying a revocation, nothing left", batch: true, request: revocation, al: reconcile.Allowance{Left: 0}, grants: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spend, _ := reconcile.ResendsOf(tt.al, tt.later)
			ctx := reconcile.WithResends(t.Context(), spend, tt.batch)
			switch tt.request {
			case creates:
				ctx = reconcile.WithRevocation(ctx, false)
			case revocation:
				ctx = reconcile.WithRevocation(ctx, true)
			}
			n := 0
			for n < 100 && reconcile.Resend(ctx) == nil {
				n++
			}
			if n != tt.grants {
				t.Errorf("%d re-sends granted, want %d", n, tt.grants)
			}
			if err := reconcile.Resend(ctx); !errors.Is(err, reconcile.ErrOverBudget) {
				t.Errorf("after a refusal, Resend = %v, want ErrOverBudget", err)
			}
		})
	}
}

// TestResendWithoutBudget: WithRevocation on a context that carries no
// re-send budget leaves re-sends unbudgeted.
func TestResendWithoutBudget(t *testing.T) {
	t.Parallel()
	for _, revoke := range []bool{false, true} {
		ctx := reconcile.WithRevocation(t.Context(), revoke)
		if spend, _ := reconcile.Resends(ctx); spend != nil {
			t.Errorf("WithRevocation(%v) without a budget made one", revoke)
		}
		if err := reconcile.Resend(ctx); err != nil {
			t.Errorf("Resend without a budget: %v", err)
		}
	}
}
