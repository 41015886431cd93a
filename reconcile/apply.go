package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sourcegraph/conc/pool"
)

// Crash points: the places Apply calls Runner.Crash (with the system the
// batch is for), so tests can kill the process exactly there and check that
// the next run finishes the job.
const (
	CrashAfterIntent  = "after-intent"  // intent saved, request not sent
	CrashAfterRequest = "after-request" // request answered, outcome not saved
	CrashBetweenSteps = "between-steps" // step 1 recorded, step 2 not begun
)

// batch is the actions of one request.
type batch struct {
	System  System
	Step    int
	Actions []*Action
}

// splitBatches splits a plan's remote actions into requests: by step, then by
// system, each chunked at that system's max batch size, keeping plan order
// within a request. It is pure, so the planner's price and Apply agree.
func splitBatches(actions []*Action, maxBatch func(System) int) []batch {
	var steps []int
	for _, a := range actions {
		if a.Op.Remote() && !slices.Contains(steps, a.Step) {
			steps = append(steps, a.Step)
		}
	}
	slices.Sort(steps)
	var out []batch
	for _, step := range steps {
		var systems []System
		bySystem := map[System][]*Action{}
		for _, a := range actions {
			if a.Step != step || !a.Op.Remote() {
				continue
			}
			if _, ok := bySystem[a.System]; !ok {
				systems = append(systems, a.System)
			}
			bySystem[a.System] = append(bySystem[a.System], a)
		}
		for _, sys := range systems {
			n := max(1, maxBatch(sys))
			for chunk := range slices.Chunk(bySystem[sys], n) {
				out = append(out, batch{System: sys, Step: step, Actions: chunk})
			}
		}
	}
	return out
}

// applier carries one plan through its requests.
type applier struct {
	r    *Runner
	rep  *PlanReport // what became of the plan's actions
	site *Site
	run  int64
	now  time.Time
	log  *slog.Logger
	mu   sync.Mutex       // guards dead, skipped, notOurs and rep.Notes: systems apply concurrently
	dead map[System]error // systems cut off for the rest of the run
	// notOurs holds the credentials of claims refused in this run: keys
	// another integration created.
	notOurs map[*Credential]bool
	// skipped holds audit rows of skipped actions until the next Save.
	skipped []Audit
	// noCreate holds the systems a backfill could not ask what they
	// already hold (siteRead.unsurveyed): nothing is created there.
	noCreate map[System]error
	// resends, when set, is the re-send budget (WithResends) of a batch
	// for a system; revoke says the request sent again carries a
	// revocation or cleanup.
	resends func(sys System) func(revoke bool) bool
	// deferred holds the credentials whose action the budget deferred
	// while applying (a re-send it had no request for), and why: what
	// waits on them is deferred with them.
	deferred map[*Credential]string
}

// deferredWith returns why a credential a's action waits on (its own, its
// upstream's or its replacement's) was deferred while applying, "" when
// none was.
func (ap *applier) deferredWith(a *Action) string {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	for _, c := range []*Credential{a.Cred, a.Upstream, a.After} {
		if why := ap.deferred[c]; c != nil && why != "" {
			return why
		}
	}
	return ""
}

// deferLater records a's action as deferred to the next run (its audit
// line skipped: nothing was sent for it), because of why.
func (ap *applier) deferLater(a *Action, why string) {
	ap.skipAs(a, ResultDeferred, why)
}

func (ap *applier) isNotOurs(c *Credential) bool {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	return ap.notOurs[c]
}

// cutOffAfter cuts sys off for the rest of the run after a request of
// its failed as a whole (err), with one exception. A change to credentials
// sys holds (an update, switch-off, revoke or delete, never a create)
// answered 401 or 403 may be that credential's refusal rather than
// keysync's credential (the OpenApp and key-box documents define no error
// codes; a server may forbid changing an invite a guest has used, say):
// it fails its actions alone, however many such refusals come, and they
// are retried each run and named for a person after three. Withdrawals go
// first, so otherwise the invites a server guards would cut every new
// guest off from sys, every run. A create refused the same way still cuts
// sys off (a wrong key: exit 2); a wrong key in a run that only withdraws
// shows as those withdrawals failing with the refusal.
func (ap *applier) cutOffAfter(sys System, sent []*Action, err error) {
	if err == nil {
		return
	}
	changes := !slices.ContainsFunc(sent, func(a *Action) bool { return a.Op == OpCreate || a.Cred == nil || a.Cred.RemoteID == "" })
	if errors.Is(err, ErrUnauthorized) && changes {
		return
	}
	if errors.Is(err, ErrOverBudget) && !errors.Is(err, ErrUnknownOutcome) {
		// A re-send the budget had no request for: nothing ran, and the
		// system's later batches are paid for.
		return
	}
	ap.mu.Lock()
	defer ap.mu.Unlock()
	ap.dead[sys] = err
}

func (ap *applier) cutOff(sys System) error {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	return ap.dead[sys]
}

// apply runs the actions of a plan the budget kept, sending batches (those
// actions' requests, from splitBatches), and records in rep, the plan's
// report, what became of them: records to sync (the plan's Sync and the
// read-backs) and local record changes first, then each batch with its
// intent recorded before the request and each action's outcome after. It
// changes neither the plan nor its actions, only their credentials (what
// the store saves).
func (ap *applier) apply(ctx context.Context, plan *Plan, rep *PlanReport, sync []*Credential, actions []*Action, batches []batch) error {
	ap.rep = rep
	return ap.applyAll(ctx, slices.Concat(plan.Sync, sync), actions, batches)
}

func (ap *applier) applyAll(ctx context.Context, sync []*Credential, actions []*Action, batches []batch) error {
	// Record-only actions go first, except those waiting for a
	// replacement, which go after the requests, once it exists.
	var local, after []*Action
	for _, a := range actions {
		switch {
		case a.Op.Remote():
		case a.After != nil:
			after = append(after, a)
		default:
			local = append(local, a)
		}
	}
	if err := ap.applyLocal(ctx, sync, local); err != nil {
		return err
	}
	// Within a step the systems are independent: each sends its batches in
	// order on its own goroutine, paced by its own limiter.
	for i := 0; i < len(batches); {
		step := batches[i].Step
		if i > 0 {
			ap.r.crash(CrashBetweenSteps, "")
		}
		var systems []System
		bySystem := map[System][]batch{}
		for ; i < len(batches) && batches[i].Step == step; i++ {
			b := batches[i]
			if _, ok := bySystem[b.System]; !ok {
				systems = append(systems, b.System)
			}
			bySystem[b.System] = append(bySystem[b.System], b)
		}
		p := pool.New().WithErrors()
		for _, sys := range systems {
			p.Go(func() error {
				var out outcomes
				for _, b := range bySystem[sys] {
					var err error
					if out, err = ap.send(ctx, b, out); err != nil {
						return err
					}
				}
				if err := ap.r.Store.Save(context.WithoutCancel(ctx), out.creds, out.audit, ap.r.Meter.drain()...); err != nil {
					return fmt.Errorf("record outcomes for %s %s: %w", ap.site.Property.Name, sys, err)
				}
				return nil
			})
		}
		if err := p.Wait(); err != nil {
			return err
		}
	}
	var ready []*Action
	for _, a := range after {
		switch why := ap.deferredWith(a); {
		case a.After.Status == StatusActive:
			ready = append(ready, a)
		case why != "":
			ap.deferLater(a, "what it waits on was deferred: "+why)
		default:
			ap.skip(a, fmt.Sprintf("its replacement %s was not created", a.After.Kind))
		}
	}
	// The last local changes and the skipped actions' audit lines go in
	// one write.
	ap.mu.Lock()
	skipped := ap.skipped
	ap.skipped = nil
	ap.mu.Unlock()
	return ap.applyLocal(ctx, nil, ready, skipped...)
}

// applyLocal saves changes to keysync's own records that need no request,
// with more audit lines to record after theirs.
func (ap *applier) applyLocal(ctx context.Context, sync []*Credential, local []*Action, more ...Audit) error {
	if len(sync) == 0 && len(local) == 0 && len(more) == 0 {
		return nil
	}
	var audit []Audit
	for _, a := range local {
		switch a.Op {
		case OpAdopt:
			a.Cred.Status = StatusActive
		case OpAbandon:
			a.Cred.Status = StatusAbandoned
		case OpRelease:
			a.Cred.Status, a.Cred.Assigned = StatusReleased, false
		}
		if a.Upstream != nil {
			// A key found made from a credential recorded in this run.
			a.Cred.DerivedFrom = a.Upstream.ID
		}
		a.Cred.UpdatedAt = ap.now
		ap.rep.set(a, ResultDone, "")
		audit = append(audit, ap.audit(a, PhaseDone, a.Reason))
	}
	audit = append(audit, more...)
	creds := slices.Clone(sync)
	for _, a := range local {
		creds = append(creds, a.Cred)
	}
	if err := ap.r.Store.Save(context.WithoutCancel(ctx), dedupe(creds), audit); err != nil {
		return fmt.Errorf("record local changes for %s: %w", ap.site.Property.Name, err)
	}
	return nil
}

// outcomes is what a batch's request left to record: its credentials and
// audit lines. They are saved with the next batch's intent, in one write
// instead of two, or after the system's last batch: a property's requests
// then wait for one state write each, not two, when many properties share
// the state's one writer. The state recorded at each crash point is the
// same either way: the outcomes of a batch are never needed before the
// next request's intent.
type outcomes struct {
	creds []*Credential
	audit []Audit
}

// send sends one batch as one request, recording first its intent with
// prev, the outcomes of the batch before it, and returns its own outcomes
// to record. A failure to record is fatal for the run: without a record
// keysync must not send anything more.
func (ap *applier) send(ctx context.Context, b batch, prev outcomes) (outcomes, error) {
	sink := ap.site.Sinks[b.System]
	var ready []*Action
	for _, a := range b.Actions {
		switch deferred := ap.deferredWith(a); {
		case sink == nil:
			ap.skip(a, fmt.Sprintf("no %s sink configured", b.System))
		case ap.cutOff(b.System) != nil:
			ap.skip(a, fmt.Sprintf("%s cut off earlier in this run: %v", b.System, ap.cutOff(b.System)))
		case a.Op == OpCreate && ap.noCreate[b.System] != nil:
			ap.skip(a, fmt.Sprintf("%s could not be asked what it already holds, so nothing is created there this run: %v", b.System, ap.noCreate[b.System]))
		case ctx.Err() != nil:
			ap.skip(a, "run stopping: "+context.Cause(ctx).Error())
		case deferred != "":
			ap.deferLater(a, "what it waits on was deferred: "+deferred)
		case a.After != nil && ap.isNotOurs(a.After):
			// Waiting on a claim that showed the key is not ours.
			ap.skipAs(a, ResultSettled, "the key is not keysync's; left alone")
		case a.After != nil && a.After.Status != StatusActive && a.After.Adopted:
			ap.skip(a, "its claim was not answered; the next run claims the key again")
		case a.After != nil && a.After.Status != StatusActive:
			ap.skip(a, fmt.Sprintf("its replacement %s was not created; the old one stays", a.After.Kind))
		case a.Op != OpCreate && a.Cred.RemoteID == "":
			ap.skip(a, "its create did not succeed")
		case a.Upstream != nil && a.Upstream.Secret == "" && a.Upstream.Secretless && a.Upstream.Status == StatusActive:
			// Created, but its answer carried no code: no key can carry it.
			ap.skip(a, fmt.Sprintf("its %s %s was created but came back without its code, so no 3RPMS key can carry it (the guest needs the code from %s)", a.Upstream.Kind, a.Upstream.RemoteID, a.Upstream.System))
		case a.Upstream != nil && a.Upstream.Secret == "":
			ap.skip(a, fmt.Sprintf("its %s was not created", a.Upstream.Kind))
		case a.Upstream != nil:
			if err := ap.derive(a); err != nil {
				ap.rep.set(a, ResultFailed, err.Error())
				ap.mu.Lock()
				ap.skipped = append(ap.skipped, ap.audit(a, PhaseFailed, err.Error()))
				ap.mu.Unlock()
				continue
			}
			ready = append(ready, a)
		default:
			ready = append(ready, a)
		}
	}
	// Intent: new credentials get their row, every action an audit line.
	ap.mu.Lock()
	intent := append(prev.audit, ap.skipped...)
	ap.skipped = nil
	ap.mu.Unlock()
	if len(ready) == 0 {
		return outcomes{creds: prev.creds, audit: intent}, nil
	}
	creds := prev.creds
	for _, a := range ready {
		if a.Op == OpCreate {
			a.Cred.Status, a.Cred.UpdatedAt = StatusPending, ap.now
			creds = append(creds, a.Cred)
		}
		intent = append(intent, ap.audit(a, PhaseIntent, a.Reason))
	}
	if err := ap.r.Store.Save(context.WithoutCancel(ctx), dedupe(creds), intent, ap.r.Meter.drain()...); err != nil {
		return outcomes{}, fmt.Errorf("record intent for %s %s: %w", ap.site.Property.Name, b.System, err)
	}
	ap.r.crash(CrashAfterIntent, b.System)

	// The request itself is not cancelled by a stop signal: a request cut
	// off mid-flight has an unknown outcome, which costs a read-back later.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ap.r.requestTimeout())
	if ap.resends != nil {
		// The plan's price paid for this request once; sending it again
		// comes out of the same day's budget, at the priority of what is
		// sent again: the batch's, for a request carrying it whole (a
		// sink sending it in parts asks at each part's, WithRevocation).
		revoke := slices.ContainsFunc(ready, func(a *Action) bool { return a.Priority == PriorityRevoke })
		rctx = WithResends(rctx, ap.resends(b.System), revoke)
	}
	results, err := sink.Apply(rctx, ready)
	cancel()
	ap.r.crash(CrashAfterRequest, b.System)
	if err == nil && len(results) != len(ready) {
		err = fmt.Errorf("%s sink returned %d outcomes for %d actions: %w", b.System, len(results), len(ready), ErrUnknownOutcome)
	}
	ap.cutOffAfter(b.System, ready, err)
	if err != nil {
		ap.log.Warn("request failed", "system", b.System, "actions", len(ready), "err", err)
		results = make([]Outcome, len(ready))
		for i := range results {
			results[i].Err = err
		}
	}

	var out outcomes
	for i, a := range ready {
		phase, detail := ap.settle(a, results[i], err != nil)
		out.audit = append(out.audit, ap.audit(a, phase, detail))
		if a.Cred.Status != "" { // an unclaimed key gets no record
			out.creds = append(out.creds, a.Cred)
		}
	}
	out.creds = dedupe(out.creds)
	return out, nil
}

// derive fills a derived key's content from its upstream's secret, through
// the upstream system's sink (Deriver).
func (ap *applier) derive(a *Action) error {
	d, ok := ap.site.Sinks[a.Upstream.System].(Deriver)
	if !ok {
		return fmt.Errorf("no way to build a %s from a %s is configured", a.Cred.Kind, a.Upstream.Kind)
	}
	if err := d.Derive(a.Cred, a.Upstream.Secret); err != nil {
		return fmt.Errorf("build %s for stay %s: %w", a.Cred.Kind, a.Stay.ID, err)
	}
	a.Cred.DerivedFrom = a.Upstream.ID
	return nil
}

func (ap *applier) skip(a *Action, why string) {
	ap.skipAs(a, ResultSkipped, why)
}

// skipAs reports a's action as res, because of why, and audits it as
// skipped: nothing is sent for it.
func (ap *applier) skipAs(a *Action, res Result, why string) {
	ap.rep.set(a, res, why)
	ap.mu.Lock()
	ap.skipped = append(ap.skipped, ap.audit(a, PhaseSkipped, why))
	ap.mu.Unlock()
}

func (ap *applier) audit(a *Action, phase Phase, detail string) Audit {
	return Audit{
		RunID: ap.run, At: ap.now, System: a.System, Op: a.Op, Stay: a.Stay,
		Cred: a.Cred, RemoteID: a.Cred.RemoteID, Phase: phase, Detail: detail,
	}
}

// dedupe drops repeated credentials, keeping order.
func dedupe(creds []*Credential) []*Credential {
	seen := map[*Credential]bool{}
	out := creds[:0:0]
	for _, c := range creds {
		if c != nil && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
