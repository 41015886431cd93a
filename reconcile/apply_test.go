package reconcile_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// act is an action for the Batches tests, labelled by its Reason.
func act(sys reconcile.System, op reconcile.Op, step int, label string) *reconcile.Action {
	return &reconcile.Action{System: sys, Op: op, Step: step, Reason: label, Cred: &reconcile.Credential{}}
}

// renderBatches shows batches as "system/step: label label" lines.
func renderBatches(bs []reconcile.Batch) []string {
	var out []string
	for _, b := range bs {
		var labels []string
		for _, a := range b.Actions {
			labels = append(labels, a.Reason)
		}
		out = append(out, fmt.Sprintf("%s/%d: %s", b.System, b.Step, strings.Join(labels, " ")))
	}
	return out
}

func TestBatches(t *testing.T) {
	t.Parallel()
	const rpms, openapp = reconcile.System3RPMS, reconcile.SystemOpenApp
	night := func() []*reconcile.Action {
		return []*reconcile.Action{
			act(rpms, reconcile.OpAbandon, 1, "x1"),
			act(rpms, reconcile.OpRevoke, 1, "r1"),
			act(rpms, reconcile.OpDelete, 1, "d1"),
			act(rpms, reconcile.OpCreate, 1, "c1"),
			act(rpms, reconcile.OpAdopt, 1, "x2"),
			act(rpms, reconcile.OpCreate, 1, "c2"),
			act(rpms, reconcile.OpRelease, 1, "x3"),
			act(rpms, reconcile.OpClaim, 1, "k1"),
			act(rpms, reconcile.OpAssign, 2, "a1"),
			act(rpms, reconcile.OpAssign, 2, "a2"),
		}
	}
	tests := []struct {
		name    string
		actions []*reconcile.Action
		max     map[reconcile.System]int
		want    []string
	}{
		{
			name: "max batch 1: one request per remote action", actions: night(), max: map[reconcile.System]int{rpms: 1},
			want: []string{"3rpms/1: r1", "3rpms/1: d1", "3rpms/1: c1", "3rpms/1: c2", "3rpms/1: k1", "3rpms/2: a1", "3rpms/2: a2"},
		},
		{
			name: "max batch 2", actions: night(), max: map[reconcile.System]int{rpms: 2},
			want: []string{"3rpms/1: r1 d1", "3rpms/1: c1 c2", "3rpms/1: k1", "3rpms/2: a1 a2"},
		},
		{
			name: "max batch 50: one request per step", actions: night(), max: map[reconcile.System]int{rpms: 50},
			want: []string{"3rpms/1: r1 d1 c1 c2 k1", "3rpms/2: a1 a2"},
		},
		{
			name: "max batch 0 counts as 1", actions: night()[1:3], max: map[reconcile.System]int{rpms: 0},
			want: []string{"3rpms/1: r1", "3rpms/1: d1"},
		},
		{
			name: "step 2 listed first still goes second",
			actions: []*reconcile.Action{
				act(rpms, reconcile.OpAssign, 2, "a1"),
				act(rpms, reconcile.OpCreate, 1, "c1"),
			},
			max:  map[reconcile.System]int{rpms: 50},
			want: []string{"3rpms/1: c1", "3rpms/2: a1"},
		},
		{
			name: "systems kept apart, in order of first appearance",
			actions: []*reconcile.Action{
				act(openapp, reconcile.OpCreate, 1, "o1"),
				act(rpms, reconcile.OpCreate, 1, "c1"),
				act(openapp, reconcile.OpDelete, 1, "o2"),
				act(rpms, reconcile.OpCreate, 1, "c2"),
				act(rpms, reconcile.OpAssign, 2, "a1"),
				act(openapp, reconcile.OpAssign, 2, "o3"),
			},
			max:  map[reconcile.System]int{rpms: 50, openapp: 1},
			want: []string{"openapp/1: o1", "openapp/1: o2", "3rpms/1: c1 c2", "3rpms/2: a1", "openapp/2: o3"},
		},
		{
			name:    "local operations only: no request",
			actions: []*reconcile.Action{act(rpms, reconcile.OpAdopt, 1, "x1"), act(rpms, reconcile.OpAbandon, 1, "x2"), act(rpms, reconcile.OpRelease, 1, "x3")},
			max:     map[reconcile.System]int{rpms: 1},
		},
		{name: "no actions", max: map[reconcile.System]int{rpms: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxBatch := func(s reconcile.System) int { return tc.max[s] }
			got := reconcile.Batches(tc.actions, maxBatch)
			if r := renderBatches(got); !slices.Equal(r, tc.want) {
				t.Errorf("Batches:\n got %q\nwant %q", r, tc.want)
			}
			for _, b := range got {
				for _, a := range b.Actions {
					if a.System != b.System || a.Step != b.Step || !a.Op.Remote() {
						t.Errorf("batch %s/%d holds %s %s/%d", b.System, b.Step, a.Op, a.System, a.Step)
					}
				}
			}
			if p := reconcile.Price(tc.actions, maxBatch); p != len(tc.want) {
				t.Errorf("Price = %d, want %d", p, len(tc.want))
			}
		})
	}
}

// TestPricePlan prices a real plan at several batch sizes.
func TestPricePlan(t *testing.T) {
	t.Parallel()
	plan := planCase{
		stays: []reconcile.Stay{
			stay("s1", "r101", "2026-06-11", "2026-06-13"),
			stay("s2", "r102", "2026-06-12", "2026-06-13"),
			holding(stay("s3", "r204", "2026-06-06", "2026-06-10"), "K3", "385917"),
			holding(stay("s4", "r205", "2026-06-09", "2026-06-12"), "K4", "602817"),
		},
		creds: []reconcile.Credential{
			cred("s3", "r204", "K3", active, true, "2026-06-06", "2026-06-10"),
			cred("s4", "r204", "K4", active, true, "2026-06-09", "2026-06-12"), // room moved
			cred("s2", "r102", "", pending, false, "2026-06-12", "2026-06-13"),
		},
	}.compute(t)
	// Step 1: revoke+delete s3, revoke+delete s4, create s4, create s1, create s2 (7);
	// step 2: three assigns. The abandon of s2's pending create costs nothing.
	for max, want := range map[int]int{1: 10, 2: 6, 3: 4, 7: 2, 50: 2} {
		if got := reconcile.Price(plan.Actions, func(reconcile.System) int { return max }); got != want {
			t.Errorf("Price at max batch %d = %d, want %d", max, got, want)
		}
	}
}

// world is an in-memory 3RPMS that a fake source reads and a fake sink
// writes: stays with the key assigned to each, and the keys that exist.
type world struct {
	mu    sync.Mutex
	stays map[string]*reconcile.Stay
	keys  map[string]worldKey
	next  int
}

// worldKey is a key in the fake 3RPMS.
type worldKey struct {
	pin  string
	ours bool
}

// newWorld returns a world holding the stays and the keys they hold, which
// are ours when their id starts with "K".
func newWorld(stays ...reconcile.Stay) *world {
	w := &world{stays: map[string]*reconcile.Stay{}, keys: map[string]worldKey{}}
	for _, s := range stays {
		w.stays[s.Ref.ID] = &s
		if s.Key != nil {
			w.keys[s.Key.ID] = worldKey{pin: s.Key.PIN.Reveal(), ours: strings.HasPrefix(s.Key.ID, "K")}
		}
	}
	return w
}

// ourKeys returns the ids of the keys of ours that exist, sorted.
func (w *world) ourKeys() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for id, k := range w.keys {
		if k.ours {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// keyOn returns the id of the key on a stay, "" when none.
func (w *world) keyOn(stayID string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.stays[stayID]; s != nil && s.Key != nil {
		return s.Key.ID
	}
	return ""
}

// fakeSource is a StaySource over a world.
type fakeSource struct{ w *world }

// Stays returns the stays departing after from and arriving by to.
func (f *fakeSource) Stays(_ context.Context, from, to reconcile.Date) ([]reconcile.Stay, error) {
	return f.find(func(s *reconcile.Stay) bool { return from.Before(s.Departure) && !to.Before(s.Arrival) }), nil
}

// StaysByID returns those of ids that exist.
func (f *fakeSource) StaysByID(_ context.Context, ids []string) ([]reconcile.Stay, error) {
	return f.find(func(s *reconcile.Stay) bool { return slices.Contains(ids, s.Ref.ID) }), nil
}

// find copies out the stays that match, in id order.
func (f *fakeSource) find(match func(*reconcile.Stay) bool) []reconcile.Stay {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	var out []reconcile.Stay
	for _, id := range slices.Sorted(maps.Keys(f.w.stays)) {
		if s := f.w.stays[id]; match(s) {
			c := *s
			if s.Key != nil {
				k := *s.Key
				c.Key = &k
			}
			out = append(out, c)
		}
	}
	return out
}

// fakeSink is a 3RPMS Sink over a world. Before applying a request it checks
// that the store holds the intent of every action in it.
type fakeSink struct {
	w     *world
	store *fakeStore
	max   int
	// fail, when set, gives the error an action fails with, nil for none.
	fail func(a *reconcile.Action) error
	// failRequest, when set, gives the error the n-th request (from 1)
	// fails with as a whole, nil for none; a failed request changes nothing.
	failRequest func(n int) error
	// plain answers every refusal with its message alone, no sentinel: a
	// server whose errors carry no code keysync knows.
	plain bool

	mu            sync.Mutex
	calls         [][]string // "op stay" per action, per request
	missingIntent []string
}

// MaxBatch implements reconcile.Sink.
func (f *fakeSink) MaxBatch() int { return f.max }

// Apply implements reconcile.Sink.
func (f *fakeSink) Apply(_ context.Context, actions []*reconcile.Action) ([]reconcile.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var call []string
	for _, a := range actions {
		label := fmt.Sprintf("%s %s", a.Op, a.Stay.ID)
		call = append(call, label)
		if why := f.store.checkIntent(a); why != "" {
			f.missingIntent = append(f.missingIntent, label+": "+why)
		}
	}
	f.calls = append(f.calls, call)
	if f.failRequest != nil {
		if err := f.failRequest(len(f.calls)); err != nil {
			return nil, fmt.Errorf("3rpms: request %d: %w", len(f.calls), err)
		}
	}
	out := make([]reconcile.Outcome, len(actions))
	for i, a := range actions {
		if f.fail != nil {
			if err := f.fail(a); err != nil {
				out[i].Err = fmt.Errorf("3rpms: %s for stay %s: %w", a.Op, a.Stay.ID, err)
				continue
			}
		}
		out[i] = f.w.apply(a)
	}
	if f.plain {
		for i := range out {
			if err := out[i].Err; err != nil && !errors.Is(err, reconcile.ErrUnknownOutcome) {
				out[i].Err = errors.New(err.Error())
			}
		}
	}
	return out, nil
}

// apply performs one action as 3RPMS would (the 3RPMS Room Access Key API): one key per stay,
// delete only unassigned keys, only our own keys.
func (w *world) apply(a *reconcile.Action) reconcile.Outcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := a.Cred.RemoteID
	k, exists := w.keys[id]
	s := w.stays[a.Stay.ID]
	fail := func(err error) reconcile.Outcome {
		return reconcile.Outcome{Err: fmt.Errorf("3rpms: %s %s on %s: %w", a.Op, id, a.Stay.ID, err)}
	}
	switch a.Op {
	case reconcile.OpCreate:
		w.next++
		id := fmt.Sprintf("K%d", 100+w.next)
		w.keys[id] = worldKey{pin: a.Cred.PIN.Reveal(), ours: true}
		return reconcile.Outcome{RemoteID: id}
	case reconcile.OpAssign:
		switch {
		case s == nil || !exists:
			return fail(reconcile.ErrNotFound)
		case !k.ours:
			return fail(reconcile.ErrNotOurs)
		case s.Key != nil:
			return fail(reconcile.ErrConflict)
		}
		s.Key = &reconcile.RemoteKey{ID: id, Type: string(a.Cred.Kind), PIN: reconcile.Secret(k.pin)}
	case reconcile.OpRevoke:
		switch {
		case s == nil || s.Key == nil || s.Key.ID != id:
			return fail(reconcile.ErrNotFound)
		case !k.ours:
			return fail(reconcile.ErrNotOurs)
		}
		s.Key = nil
	case reconcile.OpClaim:
		switch {
		case !exists:
			return fail(reconcile.ErrNotFound)
		case !k.ours:
			return fail(reconcile.ErrNotOurs)
		}
	case reconcile.OpDelete:
		switch {
		case !exists:
			return fail(reconcile.ErrNotFound)
		case !k.ours:
			return fail(reconcile.ErrNotOurs)
		}
		for _, s := range w.stays {
			if s.Key != nil && s.Key.ID == id {
				return fail(reconcile.ErrConflict)
			}
		}
		delete(w.keys, id)
	default:
		return fail(fmt.Errorf("unexpected %s", a.Op))
	}
	return reconcile.Outcome{}
}

// fakeStore is an in-memory Store with an audit log.
type fakeStore struct {
	mu      sync.Mutex
	creds   map[int64]reconcile.Credential
	nextID  int64
	audit   []auditRow
	run     int64
	saves   int
	reports []*reconcile.Report
	// backfilled holds the properties whose backfill completed.
	backfilled map[string]bool
}

// auditRow is one audit entry as the fake store keeps it.
type auditRow struct {
	run    int64
	system reconcile.System
	op     reconcile.Op
	stay   string
	cred   int64
	remote string
	phase  reconcile.Phase
}

// newStore returns a store holding creds, numbered from 1.
func newStore(creds ...reconcile.Credential) *fakeStore {
	// The rig's runs are nightly runs after a completed backfill.
	s := &fakeStore{creds: map[int64]reconcile.Credential{}, backfilled: map[string]bool{"bled": true}}
	for _, c := range creds {
		s.nextID++
		c.ID = s.nextID
		s.creds[c.ID] = c
	}
	return s
}

// LiveProperties implements reconcile.PropertyLister.
func (s *fakeStore) LiveProperties(context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.creds {
		if c.Status.Live() {
			out[c.Stay.Property]++
		}
	}
	return out, nil
}

// Credentials implements reconcile.Store.
func (s *fakeStore) Credentials(_ context.Context, property string) ([]reconcile.Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []reconcile.Credential
	for _, id := range slices.Sorted(maps.Keys(s.creds)) {
		if c := s.creds[id]; c.Stay.Property == property && c.Status.Live() {
			out = append(out, c)
		}
	}
	return out, nil
}

// Backfilled implements reconcile.Store.
func (s *fakeStore) Backfilled(_ context.Context, property string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backfilled[property], nil
}

// MarkBackfilled implements reconcile.Store.
func (s *fakeStore) MarkBackfilled(_ context.Context, property string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backfilled == nil {
		s.backfilled = map[string]bool{}
	}
	s.backfilled[property] = true
	return nil
}

// RecentFailures implements reconcile.Store.
func (s *fakeStore) RecentFailures(_ context.Context, property string, before int64, n int) (map[reconcile.FailureKey]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := map[reconcile.FailureKey]map[int64]bool{}
	for _, r := range s.audit {
		if r.run >= before || r.run < before-int64(n) || (r.phase != reconcile.PhaseFailed && r.phase != reconcile.PhaseUnknown) {
			continue
		}
		k := reconcile.FailureKey{Stay: ref(r.stay), System: r.system, Op: r.op}
		if runs[k] == nil {
			runs[k] = map[int64]bool{}
		}
		runs[k][r.run] = true
	}
	out := map[reconcile.FailureKey]int{}
	for k, rs := range runs {
		out[k] = len(rs)
	}
	return out, nil
}

// Save implements reconcile.Store. Like the real store it keeps a hash of a
// new PIN, never the PIN.
func (s *fakeStore) Save(_ context.Context, creds []*reconcile.Credential, audit []reconcile.Audit, requests ...reconcile.RequestRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	for _, c := range creds {
		if c.ID == 0 {
			s.nextID++
			c.ID = s.nextID
		}
		cp := *c
		cp.PIN = "" // this fake keeps no secrets
		s.creds[c.ID] = cp
	}
	for _, a := range audit {
		s.audit = append(s.audit, auditRow{run: a.RunID, system: a.System, op: a.Op, stay: a.Stay.ID, cred: a.Cred.ID, remote: a.RemoteID, phase: a.Phase})
	}
	return nil
}

// Spent implements reconcile.Store: these tests set no budget.
func (s *fakeStore) Spent(context.Context, time.Time) (map[reconcile.Account]int, error) {
	return map[reconcile.Account]int{}, nil
}

// DeferredStays implements reconcile.Store.
func (s *fakeStore) DeferredStays(context.Context, string) (map[reconcile.StayRef]bool, error) {
	return nil, nil
}

// SaveStays implements reconcile.Store.
func (s *fakeStore) SaveStays(context.Context, string, []reconcile.Stay) error { return nil }

// BeginRun implements reconcile.Store.
func (s *fakeStore) BeginRun(context.Context, reconcile.Mode, time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run++
	return s.run, nil
}

// FinishRun implements reconcile.Store.
func (s *fakeStore) FinishRun(_ context.Context, _ int64, r *reconcile.Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r)
	return nil
}

// checkIntent says what is missing for a to be sent: an intent row of the
// current run for the action, and for a create the pending credential row.
// A claim's credential has no row until the claim succeeds.
func (s *fakeStore) checkIntent(a *reconcile.Action) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.Cred.ID == 0 && a.Op != reconcile.OpClaim {
		return "credential never saved"
	}
	if a.Op == reconcile.OpCreate {
		if c, ok := s.creds[a.Cred.ID]; !ok || c.Status != reconcile.StatusPending {
			return fmt.Sprintf("credential row is %+v, want pending", c)
		}
	}
	for _, r := range s.audit {
		if r.run == s.run && r.op == a.Op && r.cred == a.Cred.ID && r.stay == a.Stay.ID &&
			r.remote == a.Cred.RemoteID && r.phase == reconcile.PhaseIntent {
			return ""
		}
	}
	return "no intent row"
}

// rows returns the audit rows about one stay, as "op phase" strings.
func (s *fakeStore) rows(stayID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.audit {
		if r.stay == stayID {
			out = append(out, fmt.Sprintf("%s %s", r.op, r.phase))
		}
	}
	return out
}

// live returns the live credentials as "stay remote-id status assigned".
func (s *fakeStore) live() []string {
	creds, _ := s.Credentials(context.Background(), "bled")
	var out []string
	for _, c := range creds {
		out = append(out, fmt.Sprintf("%s %s %s %v", c.Stay.ID, cmp.Or(c.RemoteID, "-"), c.Status, c.Assigned))
	}
	return out
}

// rig is a Runner wired to a fake world, sink and store.
type rig struct {
	w      *world
	store  *fakeStore
	sink   *fakeSink
	runner *reconcile.Runner
}

// newRig builds a rig for the test property with the given max batch.
func newRig(maxBatch int, w *world, store *fakeStore) *rig {
	sink := &fakeSink{w: w, store: store, max: maxBatch}
	return &rig{w: w, store: store, sink: sink, runner: &reconcile.Runner{
		Store: store,
		Rand:  seeded(9),
		Sites: []*reconcile.Site{{
			Property: testProperty(),
			Source:   &fakeSource{w: w},
			Sinks:    map[reconcile.System]reconcile.Sink{reconcile.System3RPMS: sink},
		}},
	}}
}

// run does one run at now and checks that every request was preceded by
// its intent.
func (r *rig) run(t *testing.T, now time.Time) *reconcile.Report {
	t.Helper()
	rep, err := r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeRun, Now: now})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	if len(r.sink.missingIntent) > 0 {
		t.Errorf("requests sent before their intent was saved: %q", r.sink.missingIntent)
	}
	return rep
}

// results renders a report's actions as "op stay result".
func results(rep *reconcile.Report) []string {
	var out []string
	for _, a := range rep.Actions() {
		out = append(out, fmt.Sprintf("%s %s %s", a.Op, a.Stay.ID, a.Result))
	}
	return out
}

// calls returns the requests the sink received so far.
func (r *rig) calls() [][]string {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	return slices.Clone(r.sink.calls)
}

func TestRunnerRunConverges(t *testing.T) {
	t.Parallel()
	w := newWorld(
		stay("s1", "r204", "2026-06-11", "2026-06-14"),
		stay("s2", "r205", "2026-06-09", "2026-06-12"),
		holding(stay("s3", "r101", "2026-06-07", "2026-06-10"), "K1", "385917"),
		holding(stay("s5", "r102", "2026-06-10", "2026-06-12"), "X9", "582039"),
	)
	w.keys["K2"] = worldKey{pin: "602817", ours: true} // s4's, left when s4 was deleted
	store := newStore(
		cred("s3", "r101", "K1", active, true, "2026-06-07", "2026-06-10"),
		cred("s4", "r204", "K2", active, true, "2026-06-12", "2026-06-13"),
	)
	r := newRig(50, w, store)

	rep := r.run(t, tonight)
	wantResults := []string{
		"revoke s3 done", "delete s3 done",
		"revoke s4 done", "delete s4 done", // the revoke is answered not found
		"create s1 done", "create s2 done", // arrival within 24 h before in house
		"assign s1 done", "assign s2 done",
	}
	if got := results(rep); !slices.Equal(got, wantResults) {
		t.Errorf("first run:\n got %q\nwant %q", got, wantResults)
	}
	wantCalls := [][]string{
		{"revoke s3", "delete s3", "revoke s4", "delete s4", "create s1", "create s2"},
		{"assign s1", "assign s2"},
	}
	if got := r.calls(); !slices.EqualFunc(got, wantCalls, slices.Equal) {
		t.Errorf("requests:\n got %q\nwant %q", got, wantCalls)
	}
	if rep.Partial() || len(rep.Failures) > 0 || rep.PlannedRequests != 2 {
		t.Errorf("partial %v, failures %v, planned requests %d", rep.Partial(), rep.Failures, rep.PlannedRequests)
	}
	if got := store.live(); !slices.Equal(got, []string{"s1 K101 active true", "s2 K102 active true"}) {
		t.Errorf("live credentials: %q", got)
	}
	if got := w.ourKeys(); !slices.Equal(got, []string{"K101", "K102"}) {
		t.Errorf("our keys in 3RPMS: %q", got)
	}
	if w.keyOn("s1") != "K101" || w.keyOn("s2") != "K102" || w.keyOn("s3") != "" || w.keyOn("s5") != "X9" {
		t.Errorf("keys on stays: s1 %q, s2 %q, s3 %q, s5 %q", w.keyOn("s1"), w.keyOn("s2"), w.keyOn("s3"), w.keyOn("s5"))
	}
	for stay, want := range map[string][]string{
		"s1": {"create intent", "create done", "assign intent", "assign done"},
		"s3": {"revoke intent", "delete intent", "revoke done", "delete done"},
	} {
		if got := store.rows(stay); !slices.Equal(got, want) {
			t.Errorf("audit of %s: got %q, want %q", stay, got, want)
		}
	}

	rep = r.run(t, tonight)
	if len(rep.Actions()) != 0 || len(r.calls()) != 2 {
		t.Errorf("second run planned %q and sent %d requests in all", results(rep), len(r.calls()))
	}
	if got := noteSummary(rep.Plans[0].Notes); !slices.Equal(got, []string{"conflict s5"}) {
		t.Errorf("second run notes: %q", got)
	}

	// The next night s2's stay is over.
	rep = r.run(t, tonight.Add(48*time.Hour))
	if got, want := results(rep), []string{"revoke s2 done", "delete s2 done"}; !slices.Equal(got, want) {
		t.Errorf("two nights later: got %q, want %q", got, want)
	}
}

// TestRunnerActionFailures fails one action of a run and checks what is
// recorded and that the next run finishes the job.
func TestRunnerActionFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stays  []reconcile.Stay
		creds  []reconcile.Credential
		fail   func(a *reconcile.Action) error
		want   []string // results of the first run
		live   []string // live credentials after it
		second []string // results of the second run
	}{
		{
			name:   "create rejected: its assign is skipped",
			stays:  []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14"), stay("s2", "r205", "2026-06-12", "2026-06-14")},
			fail:   failOn(reconcile.OpCreate, "s2", reconcile.ErrConflict),
			want:   []string{"create s1 done", "create s2 failed", "assign s1 done", "assign s2 skipped"},
			live:   []string{"s1 K101 active true"},
			second: []string{"create s2 done", "assign s2 done"},
		},
		{
			name:   "create outcome unknown: its assign is skipped, the next run abandons it",
			stays:  []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			fail:   failOn(reconcile.OpCreate, "s1", reconcile.ErrUnknownOutcome),
			want:   []string{"create s1 unknown", "assign s1 skipped"},
			live:   []string{"s1 - pending false"},
			second: []string{"abandon s1 done", "create s1 done", "assign s1 done"},
		},
		{
			name:   "assign refused: the key is retired and the stay gets a new one next run",
			stays:  []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			fail:   failOn(reconcile.OpAssign, "s1", reconcile.ErrConflict),
			want:   []string{"create s1 done", "assign s1 failed"},
			live:   []string{"s1 K101 retired false"},
			second: []string{"delete s1 done", "create s1 done", "assign s1 done"},
		},
		{
			name:  "revoke answered not found counts as done",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
			fail: func(a *reconcile.Action) error {
				if a.Op == reconcile.OpRevoke {
					return reconcile.ErrNotFound
				}
				if a.Op == reconcile.OpDelete {
					return reconcile.ErrNotFound
				}
				return nil
			},
			want: []string{"revoke s1 done", "delete s1 done"},
		},
		{
			name:   "delete refused for a key no stay holds: settled, left to 3RPMS's cleanup",
			creds:  []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14")},
			fail:   failOn(reconcile.OpDelete, "s1", reconcile.ErrConflict),
			want:   []string{"delete s1 settled"},
			live:   nil,
			second: nil,
		},
		{
			name:   "revoke refused on a stay that shows the key: failed, retried next run",
			stays:  []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917")},
			creds:  []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
			fail:   failOn(reconcile.OpRevoke, "s1", errors.New("internal error")),
			want:   []string{"revoke s1 failed", "delete s1 failed"},
			live:   []string{"s1 K1 active true"},
			second: []string{"revoke s1 done", "delete s1 done"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(tc.stays...)
			for _, c := range tc.creds {
				w.keys[c.RemoteID] = worldKey{pin: "385917", ours: true}
			}
			r := newRig(50, w, newStore(tc.creds...))
			r.sink.fail = tc.fail
			rep := r.run(t, tonight)
			if got := results(rep); !slices.Equal(got, tc.want) {
				t.Errorf("first run:\n got %q\nwant %q", got, tc.want)
			}
			if got := r.store.live(); !slices.Equal(got, tc.live) {
				t.Errorf("live credentials: got %q, want %q", got, tc.live)
			}
			for _, a := range rep.Actions() {
				if a.Result == reconcile.ResultSkipped {
					if rows := r.store.rows(a.Stay.ID); slices.Contains(rows, fmt.Sprintf("%s done", a.Op)) {
						t.Errorf("skipped %s %s recorded as done: %q", a.Op, a.Stay.ID, rows)
					}
					for _, call := range r.calls() {
						if slices.Contains(call, fmt.Sprintf("%s %s", a.Op, a.Stay.ID)) {
							t.Errorf("skipped %s %s was sent", a.Op, a.Stay.ID)
						}
					}
				}
			}
			if failed := slices.ContainsFunc(tc.want, func(s string) bool {
				return !strings.HasSuffix(s, " done") && !strings.HasSuffix(s, " settled")
			}); rep.Partial() != failed {
				t.Errorf("Partial() = %v, want %v", rep.Partial(), failed)
			}

			r.sink.fail = nil
			if got := results(r.run(t, tonight)); !slices.Equal(got, tc.second) {
				t.Errorf("second run:\n got %q\nwant %q", got, tc.second)
			}
			if got := results(r.run(t, tonight)); len(got) != 0 {
				t.Errorf("third run: %q, want nothing", got)
			}
		})
	}
}

// failOn fails the op on one stay with err.
func failOn(op reconcile.Op, stayID string, err error) func(*reconcile.Action) error {
	return func(a *reconcile.Action) error {
		if a.Op == op && a.Stay.ID == stayID {
			return err
		}
		return nil
	}
}

// TestRunnerRequestFailure fails a whole request and checks that all its
// actions share the outcome and that the system is cut off for the run.
func TestRunnerRequestFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		want   []string
		live   []string
		second []string
	}{
		{
			name: "outcome unknown",
			err:  reconcile.ErrUnknownOutcome,
			want: []string{
				"create s1 unknown", "create s2 unknown", "create s3 skipped",
				"assign s1 skipped", "assign s2 skipped", "assign s3 skipped",
			},
			live: []string{"s1 - pending false", "s2 - pending false"},
			second: []string{
				"abandon s1 done", "abandon s2 done", "create s1 done", "create s2 done", "create s3 done",
				"assign s1 done", "assign s2 done", "assign s3 done",
			},
		},
		{
			name: "refused as a whole",
			err:  reconcile.ErrUnauthorized,
			want: []string{
				"create s1 failed", "create s2 failed", "create s3 skipped",
				"assign s1 skipped", "assign s2 skipped", "assign s3 skipped",
			},
			second: []string{
				"create s1 done", "create s2 done", "create s3 done",
				"assign s1 done", "assign s2 done", "assign s3 done",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(
				stay("s1", "r101", "2026-06-11", "2026-06-14"),
				stay("s2", "r102", "2026-06-12", "2026-06-14"),
				stay("s3", "r204", "2026-06-13", "2026-06-14"),
			)
			r := newRig(2, w, newStore())
			r.sink.failRequest = func(n int) error {
				if n == 1 {
					return tc.err
				}
				return nil
			}
			rep := r.run(t, tonight)
			if got := results(rep); !slices.Equal(got, tc.want) {
				t.Errorf("first run:\n got %q\nwant %q", got, tc.want)
			}
			if got := r.calls(); len(got) != 1 {
				t.Errorf("requests after the failed one: %q", got)
			}
			if len(rep.Failures) != 1 || rep.Failures[0].System != reconcile.System3RPMS || !strings.Contains(rep.Failures[0].Err, tc.err.Error()) {
				t.Errorf("failures: %+v", rep.Failures)
			}
			if !rep.Partial() {
				t.Error("Partial() = false")
			}
			if got := r.store.live(); !slices.Equal(got, tc.live) {
				t.Errorf("live credentials: got %q, want %q", got, tc.live)
			}
			if got := w.ourKeys(); len(got) != 0 {
				t.Errorf("keys created by a failed request: %q", got)
			}
			unknown := errors.Is(tc.err, reconcile.ErrUnknownOutcome)
			for _, a := range rep.Actions() {
				ok := a.Result == reconcile.ResultSkipped ||
					unknown && a.Result == reconcile.ResultUnknown ||
					!unknown && a.Result == reconcile.ResultFailed
				if !ok || a.Error == "" {
					t.Errorf("%s %s: result %q, error %q", a.Op, a.Stay.ID, a.Result, a.Error)
				}
			}

			r.sink.failRequest = nil
			if got := results(r.run(t, tonight)); !slices.Equal(got, tc.second) {
				t.Errorf("second run:\n got %q\nwant %q", got, tc.second)
			}
			if got := results(r.run(t, tonight)); len(got) != 0 {
				t.Errorf("third run: %q, want nothing", got)
			}
			if got := w.ourKeys(); len(got) != 3 {
				t.Errorf("our keys: %q, want one per stay", got)
			}
		})
	}
}

// TestRunnerIntentPerRequest sends one action per request and checks, in
// the sink, that each one's intent was saved first.
func TestRunnerIntentPerRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(
		stay("s1", "r204", "2026-06-11", "2026-06-14"),
		holding(stay("s2", "r205", "2026-06-09", "2026-06-12"), "K1", "385917"), // room moved
		holding(stay("s3", "r101", "2026-06-07", "2026-06-10"), "K2", "602817"),
	)
	r := newRig(1, w, newStore(
		cred("s2", "r204", "K1", active, true, "2026-06-09", "2026-06-12"),
		cred("s3", "r101", "K2", active, true, "2026-06-07", "2026-06-10"),
	))
	var sent int
	r.sink.fail = func(*reconcile.Action) error { sent++; return nil }
	rep := r.run(t, tonight)
	if sent != 8 || len(r.calls()) != 8 || rep.PlannedRequests != 8 {
		t.Errorf("sent %d actions in %d requests, planned %d; want 8", sent, len(r.calls()), rep.PlannedRequests)
	}
	if rep.Partial() {
		t.Errorf("partial: %q", results(rep))
	}
	if got := results(r.run(t, tonight)); len(got) != 0 {
		t.Errorf("second run: %q", got)
	}
}

// TestRunnerCrashBetweenSteps kills a run after its creates and checks the
// next run assigns the keys created, without creating more.
func TestRunnerCrashBetweenSteps(t *testing.T) {
	t.Parallel()
	w := newWorld(
		stay("s1", "r204", "2026-06-11", "2026-06-14"),
		stay("s2", "r205", "2026-06-12", "2026-06-14"),
	)
	r := newRig(50, w, newStore())
	type killed struct{}
	r.runner.Crash = func(point string, _ reconcile.System) {
		if point == reconcile.CrashBetweenSteps {
			panic(killed{})
		}
	}
	func() {
		defer func() {
			if v := recover(); v != (killed{}) {
				t.Fatalf("run was not killed between steps: %v", v)
			}
		}()
		r.run(t, tonight)
	}()
	if got := r.store.live(); !slices.Equal(got, []string{"s1 K101 active false", "s2 K102 active false"}) {
		t.Errorf("after the kill: %q", got)
	}

	r.runner.Crash = nil
	if got, want := results(r.run(t, tonight)), []string{"assign s1 done", "assign s2 done"}; !slices.Equal(got, want) {
		t.Errorf("run after the kill: got %q, want %q", got, want)
	}
	if got := w.ourKeys(); !slices.Equal(got, []string{"K101", "K102"}) {
		t.Errorf("our keys: %q", got)
	}
	if got := results(r.run(t, tonight)); len(got) != 0 {
		t.Errorf("third run: %q", got)
	}
}

// TestRunnerDryRun checks that a dry run plans and writes nothing (these
// fakes send no metered request, so not even the ledger).
func TestRunnerDryRun(t *testing.T) {
	t.Parallel()
	w := newWorld(stay("s1", "r204", "2026-06-11", "2026-06-14"))
	r := newRig(50, w, newStore())
	rep, err := r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModePlan, Now: tonight, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := actionSummary(planned(rep.Plans[0])); !slices.Equal(got, []string{"1 create s1 - soon", "2 assign s1 - soon"}) {
		t.Errorf("plan: %q", got)
	}
	if rep.PlannedRequests != 2 || r.store.saves != 0 || r.store.run != 0 || len(r.calls()) != 0 {
		t.Errorf("dry run: planned %d, saves %d, runs %d, requests %d", rep.PlannedRequests, r.store.saves, r.store.run, len(r.calls()))
	}
}

// TestRunnerReplacesPurgedKey is a recorded key that 3RPMS deleted on its
// own (the 3RPMS Room Access Key API: two days unassigned) while the stay holds none.
func TestRunnerReplacesPurgedKey(t *testing.T) {
	t.Parallel()
	w := newWorld(stay("s1", "r204", "2026-06-11", "2026-06-14"))
	r := newRig(50, w, newStore(cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14")))
	r.run(t, tonight)
	r.run(t, tonight)
	if w.keyOn("s1") == "" {
		t.Errorf("after two runs the stay holds no key; live credentials %q", r.store.live())
	}
}

// TestRunnerBackfill connects to a 3RPMS whose stays hold keys keysync has
// no record of: its own (state lost) are adopted, others are left alone.
func TestRunnerBackfill(t *testing.T) {
	t.Parallel()
	w := newWorld(
		holding(stay("s1", "r204", "2026-06-09", "2026-06-12"), "K7", "385917"), // ours
		holding(stay("s2", "r205", "2026-06-10", "2026-06-12"), "X9", "582039"), // another integration's
		stay("s3", "r101", "2026-06-11", "2026-06-13"),
	)
	r := newRig(50, w, newStore())
	rep, err := r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeBackfill, Now: tonight})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create s3 done", "claim s1 done", "claim s2 done", "assign s3 done"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Errorf("backfill:\n got %q\nwant %q", got, want)
	}
	if got := r.calls(); len(got) != 2 {
		t.Errorf("backfill sent %d requests, want 2: %q", len(got), got)
	}
	if got := noteSummary(rep.Plans[0].Notes); !slices.Equal(got, []string{"conflict s2"}) {
		t.Errorf("notes: %q", got)
	}
	if got := r.store.live(); !slices.Equal(got, []string{"s3 K101 active true", "s1 K7 active true"}) {
		t.Errorf("live credentials: %q", got)
	}
	if rep.Partial() {
		t.Errorf("partial: %q", results(rep))
	}
	if w.keyOn("s2") != "X9" || w.keyOn("s1") != "K7" {
		t.Errorf("keys on stays changed: s1 %q, s2 %q", w.keyOn("s1"), w.keyOn("s2"))
	}
	rep = r.run(t, tonight)
	if got := results(rep); len(got) != 0 {
		t.Errorf("run after backfill: %q", got)
	}
	if got := noteSummary(rep.Plans[0].Notes); !slices.Equal(got, []string{"conflict s2"}) {
		t.Errorf("notes after backfill: %q", got)
	}
}

// TestRunnerSettlesByObservation runs against a 3RPMS whose errors carry no
// code keysync knows: every refusal is a plain message, and each action's
// fate is decided by what the reads show (settle.go's rules).
func TestRunnerSettlesByObservation(t *testing.T) {
	t.Parallel()
	departed := func() reconcile.Stay { return stay("s1", "r204", "2026-06-07", "2026-06-10") }
	arriving := func() reconcile.Stay { return stay("s1", "r204", "2026-06-11", "2026-06-14") }
	spare := func(updated time.Time) reconcile.Credential {
		c := cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14")
		c.UpdatedAt = updated
		return c
	}
	tests := []struct {
		name     string
		stays    []reconcile.Stay
		keys     []string // keys of ours that exist in 3RPMS but on no stay
		creds    []reconcile.Credential
		backfill bool
		runs     [][]string // results of each run, in order
		partial  []bool
		notes    []string // notes of the first run
	}{
		{
			name:     "claim refused: another integration's key, a conflict note",
			stays:    []reconcile.Stay{holding(arriving(), "X9", "582039")},
			backfill: true,
			runs:     [][]string{{"claim s1 done"}, nil},
			partial:  []bool{false, false},
			notes:    []string{"conflict s1"},
		},
		{
			name:    "spare key deleted by 3RPMS's cleanup: assign refused, retired, replaced next run",
			stays:   []reconcile.Stay{arriving()},
			creds:   []reconcile.Credential{spare(tonight.Add(-time.Hour))},
			runs:    [][]string{{"assign s1 failed"}, {"delete s1 settled", "create s1 done", "assign s1 done"}, nil},
			partial: []bool{true, false, false},
		},
		{
			name:    "revoke and delete acted but their answer was lost: the read shows no key, the delete settles",
			stays:   []reconcile.Stay{departed()},
			creds:   []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
			runs:    [][]string{{"delete s1 settled"}, nil},
			partial: []bool{false, false},
		},
		{
			name:    "stay gone from 3RPMS before 3RPMS's own cleanup: a refused revoke retires the key",
			keys:    []string{"K1"},
			creds:   []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14")},
			runs:    [][]string{{"revoke s1 settled", "delete s1 done"}, nil},
			partial: []bool{false, false},
		},
		{
			name:    "stay gone from 3RPMS after 3RPMS's own cleanup: a refused revoke settles",
			keys:    []string{"K1"},
			creds:   []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-05", "2026-06-08")},
			runs:    [][]string{{"revoke s1 settled", "delete s1 done"}, nil},
			partial: []bool{false, false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(tc.stays...)
			for _, id := range tc.keys {
				w.keys[id] = worldKey{pin: "385917", ours: true}
			}
			r := newRig(50, w, newStore(tc.creds...))
			r.sink.plain = true
			mode := reconcile.ModeRun
			if tc.backfill {
				mode = reconcile.ModeBackfill
			}
			for i, want := range tc.runs {
				rep, err := r.runner.Run(context.Background(), reconcile.Options{Mode: mode, Now: tonight})
				if err != nil {
					t.Fatal(err)
				}
				mode = reconcile.ModeRun
				if got := results(rep); !slices.Equal(got, want) {
					t.Errorf("run %d:\n got %q\nwant %q", i+1, got, want)
				}
				if rep.Partial() != tc.partial[i] {
					t.Errorf("run %d: Partial() = %v, want %v (%q)", i+1, rep.Partial(), tc.partial[i], results(rep))
				}
				if i == 0 && tc.notes != nil {
					if got := noteSummary(rep.Plans[0].Notes); !slices.Equal(got, tc.notes) {
						t.Errorf("notes %q, want %q", got, tc.notes)
					}
				}
			}
			if got := w.ourKeys(); len(got) > 1 {
				t.Errorf("keys of ours left in 3RPMS: %q", got)
			}
		})
	}
}

// TestRunnerRepeatedFailureBecomesAProblem: a revoke 3RPMS keeps refusing
// while the stay still shows the key fails twice (partial runs), and the
// third time it is a Problem for a person: not partial, named in the report.
func TestRunnerRepeatedFailureBecomesAProblem(t *testing.T) {
	t.Parallel()
	w := newWorld(holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917"))
	r := newRig(50, w, newStore(cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")))
	r.sink.plain = true
	r.sink.fail = failOn(reconcile.OpRevoke, "s1", errors.New("revoke is not allowed right now"))
	for run := 1; run <= 4; run++ {
		rep := r.run(t, tonight)
		persistent := run > reconcile.RepeatLimit
		if rep.Partial() == persistent || (len(rep.Problems) > 0) != persistent {
			t.Fatalf("run %d: partial %v, problems %+v", run, rep.Partial(), rep.Problems)
		}
		if persistent {
			p := rep.Problems[0]
			if p.Op != reconcile.OpRevoke || p.Stay.ID != "s1" || p.Runs != reconcile.RepeatLimit+1 ||
				!strings.Contains(p.Detail, "revoke is not allowed right now") {
				t.Errorf("run %d: problem %+v", run, p)
			}
		}
	}
	r.sink.fail = nil
	rep := r.run(t, tonight)
	if got := results(rep); !slices.Equal(got, []string{"revoke s1 done", "delete s1 done"}) || len(rep.Problems) != 0 || rep.Partial() {
		t.Errorf("once 3RPMS accepts it: %q, problems %+v", got, rep.Problems)
	}
}

// TestRunnerNamesRemovedProperties: live credentials of a property with no
// site are named as a removed property's, once a run, and nothing of them
// is withdrawn, unless Elsewhere says another process runs or names it.
func TestRunnerNamesRemovedProperties(t *testing.T) {
	t.Parallel()
	w := newWorld(holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917"))
	of := func(property string, c reconcile.Credential) reconcile.Credential {
		c.Stay.Property = property
		return c
	}
	store := newStore(cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10"),
		of("piran", cred("p1", "r1", "P1", active, true, "2026-06-07", "2026-06-10")),
		of("koper", cred("k1", "r1", "Q1", active, true, "2026-06-07", "2026-06-10")),
		of("koper", cred("k2", "r2", "Q2", active, true, "2026-06-07", "2026-06-10")))
	r := newRig(50, w, store)
	removed := func(rep *reconcile.Report) []string {
		var out []string
		for _, p := range rep.Problems {
			if p.Kind == reconcile.ProblemPropertyRemoved {
				out = append(out, fmt.Sprintf("%s: %s", p.Property, p.Detail[:strings.Index(p.Detail, ",")]))
			}
		}
		return out
	}
	want := []string{"koper: the state holds 2 live credential(s) of property koper", "piran: the state holds 1 live credential(s) of property piran"}
	if got := removed(r.run(t, tonight)); !slices.Equal(got, want) {
		t.Errorf("without Elsewhere: %q, want %q", got, want)
	}
	r.runner.Elsewhere = func(p string) bool { return p == "koper" }
	if got := removed(r.run(t, tonight)); !slices.Equal(got, want[1:]) {
		t.Errorf("with koper elsewhere: %q, want %q", got, want[1:])
	}
	if live, _ := store.LiveProperties(context.Background()); live["piran"] != 1 || live["koper"] != 2 {
		t.Errorf("live credentials after the runs: %v; nothing of piran's or koper's may go", live)
	}
}

// TestRunnerTargeted: a targeted run reads only the stays it is given, by
// id, plans only for them, and withdraws only the credentials of a stay it
// asked for and the source no longer returns; a look-ahead run withdraws
// only what its short read returned.
func TestRunnerTargeted(t *testing.T) {
	w := newWorld(
		stay("s1", "r204", "2026-06-11", "2026-06-14"),                          // new booking: keyed
		stay("s2", "r205", "2026-06-11", "2026-06-14"),                          // needs a key too, but not asked for
		holding(stay("s5", "r101", "2026-06-13", "2026-06-15"), "K5", "602817"), // ours, fine
	)
	store := newStore(
		cred("s3", "r102", "K3", active, true, "2026-06-11", "2026-06-13"), // gone from the source, not asked for
		cred("s4", "r101", "K4", active, true, "2026-06-11", "2026-06-12"), // gone from the source, asked for
		cred("s5", "r101", "K5", active, true, "2026-06-13", "2026-06-15"),
	)
	w.keys["K3"], w.keys["K4"] = worldKey{pin: "1", ours: true}, worldKey{pin: "2", ours: true}
	r := newRig(50, w, store)
	rep, err := r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeTargeted, Now: tonight,
		Targets: map[string][]string{"bled": {"s1", "s4", "s5"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"revoke s4 done", "delete s4 done", "create s1 done", "assign s1 done"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Errorf("targeted run: %q, want %q", got, want)
	}
	if got := store.live(); !slices.Equal(got, []string{"s3 K3 active true", "s5 K5 active true", "s1 K101 active true"}) {
		t.Errorf("live after: %q", got)
	}
	if got := r.calls(); len(got) != 2 {
		t.Errorf("requests %q, want 2", got)
	}
	// Another property is not visited at all.
	rep, err = r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeTargeted, Now: tonight,
		Targets: map[string][]string{"elsewhere": {"s2"}}})
	if err != nil || len(rep.Plans) != 0 {
		t.Errorf("a run for another property planned %d plans (%v)", len(rep.Plans), err)
	}
	// A two-day look-ahead reads s1 and s2 (arriving tomorrow), not s5
	// (in three days): it keys s2 and leaves s3, which it did not read,
	// alone.
	rep, err = r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeRun, Now: tonight, LookaheadDays: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := results(rep), []string{"create s2 done", "assign s2 done"}; !slices.Equal(got, want) {
		t.Errorf("look-ahead run: %q, want %q", got, want)
	}
	if got := store.live(); !slices.Contains(got, "s3 K3 active true") {
		t.Errorf("the look-ahead withdrew s3, which it did not read: %q", got)
	}
}

// twoProperties is bled (the test property) with stay s1 and the annex
// with stay s2, each in a world of its own, and one store.
func twoProperties() (bled, annex *world, store *fakeStore, annexProperty *reconcile.Property) {
	s2 := stay("s2", "r205", "2026-06-11", "2026-06-14")
	s2.Ref.Property = "annex"
	annexProperty = testProperty()
	annexProperty.Name = "annex"
	return newWorld(stay("s1", "r204", "2026-06-11", "2026-06-14")), newWorld(s2), newStore(), annexProperty
}

// TestRunnerPipelinesProperties: a property's writes start as soon as its
// own read and plan are done, not after every property's read. The annex's
// read waits for bled's first write; if writes waited for all reads, it
// would wait out its 5 s and bled's write would come after it.
func TestRunnerPipelinesProperties(t *testing.T) {
	t.Parallel()
	wA, wB, store, propB := twoProperties()
	written := make(chan struct{}, 1)
	var early atomic.Bool
	runner := &reconcile.Runner{Store: store, Rand: seeded(9), Sites: []*reconcile.Site{
		{Property: testProperty(), Source: &fakeSource{w: wA}, Sinks: map[reconcile.System]reconcile.Sink{
			reconcile.System3RPMS: &signalSink{Sink: &fakeSink{w: wA, store: store, max: 50}, applied: written}}},
		{Property: propB, Source: &waitingSource{fakeSource: fakeSource{w: wB}, wait: written, early: &early}, Sinks: map[reconcile.System]reconcile.Sink{
			reconcile.System3RPMS: &fakeSink{w: wB, store: store, max: 50}}},
	}}
	rep, err := runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeRun, Now: tonight})
	if err != nil {
		t.Fatal(err)
	}
	if !early.Load() {
		t.Error("bled's first write waited for the annex's read")
	}
	if got := results(rep); !slices.Equal(got, []string{"create s1 done", "assign s1 done", "create s2 done", "assign s2 done"}) {
		t.Errorf("results %q", got)
	}
}

// signalSink tells applied of its first write.
type signalSink struct {
	reconcile.Sink
	once    sync.Once
	applied chan<- struct{}
}

func (s *signalSink) Apply(ctx context.Context, actions []*reconcile.Action) ([]reconcile.Outcome, error) {
	s.once.Do(func() { s.applied <- struct{}{} })
	return s.Sink.Apply(ctx, actions)
}

// waitingSource holds its window read until wait is signalled (early is
// then set), or 5 s.
type waitingSource struct {
	fakeSource
	wait  <-chan struct{}
	early *atomic.Bool
}

func (s *waitingSource) Stays(ctx context.Context, from, to reconcile.Date) ([]reconcile.Stay, error) {
	select {
	case <-s.wait:
		s.early.Store(true)
	case <-time.After(5 * time.Second):
	}
	return s.fakeSource.Stays(ctx, from, to)
}

// meetingSink holds a property's first write until the other property's
// first write has arrived too.
type meetingSink struct {
	reconcile.Sink
	once    sync.Once
	arrived chan<- struct{}
	other   <-chan struct{}
	met     *atomic.Int32
}

func (s *meetingSink) Apply(ctx context.Context, actions []*reconcile.Action) ([]reconcile.Outcome, error) {
	s.once.Do(func() {
		s.arrived <- struct{}{}
		select {
		case <-s.other:
			s.met.Add(1)
		case <-time.After(5 * time.Second): // applied one after the other
		}
	})
	return s.Sink.Apply(ctx, actions)
}

// TestRunnerAppliesPropertiesAtOnce: two properties' writes are in flight
// together, so a property on its own credentials never waits for
// another's paced writes. Each property's first write waits for the
// other's: applied one after the other, they would never meet.
func TestRunnerAppliesPropertiesAtOnce(t *testing.T) {
	t.Parallel()
	wA, wB, store, propB := twoProperties()
	a, b := make(chan struct{}, 1), make(chan struct{}, 1)
	var met atomic.Int32
	runner := &reconcile.Runner{Store: store, Rand: seeded(9), Sites: []*reconcile.Site{
		{Property: testProperty(), Source: &fakeSource{w: wA}, Sinks: map[reconcile.System]reconcile.Sink{
			reconcile.System3RPMS: &meetingSink{Sink: &fakeSink{w: wA, store: store, max: 50}, arrived: a, other: b, met: &met}}},
		{Property: propB, Source: &fakeSource{w: wB}, Sinks: map[reconcile.System]reconcile.Sink{
			reconcile.System3RPMS: &meetingSink{Sink: &fakeSink{w: wB, store: store, max: 50}, arrived: b, other: a, met: &met}}},
	}}
	rep, err := runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeRun, Now: tonight})
	if err != nil {
		t.Fatal(err)
	}
	if n := met.Load(); n != 2 {
		t.Errorf("%d of 2 properties met the other's write in flight: they were applied one after the other", n)
	}
	if got := results(rep); !slices.Equal(got, []string{"create s1 done", "assign s1 done", "create s2 done", "assign s2 done"}) {
		t.Errorf("results %q", got)
	}
}
