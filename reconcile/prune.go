package reconcile

import (
	"context"
	"fmt"
)

// SystemState names the state store in a Failure (a failed prune).
const SystemState System = "state"

// prune has the store forget what Retention no longer needs, once per run
// that writes. A failure is logged and reported (the run is partial and
// the next one prunes again) but does not stop the run: the work is done
// and recorded, and Pruner writes all of its deletes or none.
func (r *Runner) prune(ctx context.Context, opts Options, rep *Report) {
	p, ok := r.Store.(Pruner)
	if !ok || r.Retention <= 0 {
		return
	}
	n, err := p.Prune(ctx, opts.at(), r.Retention)
	if err != nil {
		err = fmt.Errorf("prune state older than %s: %w", r.Retention, err)
		r.log().Error("pruning the state failed; the next run tries again", "err", err)
		rep.Failures = append(rep.Failures, Failure{System: SystemState, Err: err.Error(), Cause: err})
		return
	}
	if n > 0 {
		r.log().Info("state pruned", "rows", n, "retention", r.Retention)
	}
}
