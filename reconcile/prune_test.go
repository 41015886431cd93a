package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// prunedStore is a fakeStore that is also a Pruner, recording its calls.
type prunedStore struct {
	*fakeStore
	calls []string
	err   error
}

func (s *prunedStore) Prune(_ context.Context, now time.Time, keep time.Duration) (int, error) {
	s.calls = append(s.calls, now.UTC().Format(time.RFC3339)+" keep "+keep.String())
	return 0, s.err
}

// TestRunnerPrunes: a run that writes prunes the store once, at the run's
// time with the configured retention; a dry run, or a Runner without a
// retention, never does; a failed prune is reported (the run is partial),
// not fatal.
func TestRunnerPrunes(t *testing.T) {
	t.Parallel()
	const keep = 90 * 24 * time.Hour
	for _, tc := range []struct {
		name      string
		retention time.Duration
		dryRun    bool
		err       error
		calls     int
		failed    bool
	}{
		{name: "run", retention: keep, calls: 1},
		{name: "dry run", retention: keep, dryRun: true},
		{name: "no retention", retention: 0},
		{name: "prune fails", retention: keep, err: errors.New("disk I/O error"), calls: 1, failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(stay("s1", "r204", "2026-06-11", "2026-06-14"))
			store := &prunedStore{fakeStore: newStore(), err: tc.err}
			r := newRig(50, w, store.fakeStore)
			r.runner.Store, r.runner.Retention = store, tc.retention
			rep, err := r.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeRun, Now: tonight, DryRun: tc.dryRun})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var want []string
			if tc.calls > 0 {
				want = []string{tonight.UTC().Format(time.RFC3339) + " keep 2160h0m0s"}
			}
			if !slices.Equal(store.calls, want) {
				t.Errorf("Prune calls %q, want %q", store.calls, want)
			}
			var failed bool
			for _, f := range rep.Failures {
				if f.System == reconcile.SystemState && errors.Is(f.Cause, tc.err) {
					failed = true
				}
			}
			if failed != tc.failed || rep.Partial() != tc.failed {
				t.Errorf("failures %+v, partial %v; want a state failure: %v", rep.Failures, rep.Partial(), tc.failed)
			}
			if !tc.dryRun {
				if got := results(rep); !slices.Equal(got, []string{"create s1 done", "assign s1 done"}) {
					t.Errorf("results %q", got)
				}
			}
		})
	}
}
