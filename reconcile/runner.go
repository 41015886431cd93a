package reconcile

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Site is one property with the adapters that serve it.
type Site struct {
	Property *Property
	Source   StaySource
	// SourceSystem is the system Source reads (3RPMS or Guestway).
	SourceSystem System
	// Sinks holds the sink of each system the property writes to. The
	// sink of a derived key's upstream credential builds the key (Deriver).
	Sinks map[System]Sink
	// Accounts holds, per system, the metered credential the property's
	// requests to it count against; a system missing here counts against
	// NewAccount(system, "").
	Accounts map[System]Account
	// Siblings names the other properties Source serves (one hotel, or
	// one Guestway organisation, split into properties): a stay moving
	// between them is let go of by the one and taken up by the other in
	// the same run, a hotel's PIN key going along (Stay.MovedTo,
	// Input.Siblings).
	Siblings []string
}

// Runner performs reconcile runs. cmd/keysync builds one from the config.
type Runner struct {
	Store Store
	Sites []*Site
	Log   *slog.Logger
	// Rand is the PIN randomness; nil means crypto/rand.
	Rand io.Reader
	// Meter counts requests; the adapters share it.
	Meter *Meter
	// Crash, when set, is called at each crash point (see CrashAfterIntent)
	// with the system of the batch ("" between steps); the fault tests kill
	// the process there.
	Crash func(point string, system System)
	// RequestTimeout bounds one request; zero means 60 s.
	RequestTimeout time.Duration
	// Budgets are the daily request budgets of the accounts (metered
	// credentials) that have one. Sites sharing an account share its
	// budget; sites on different accounts of one system do not.
	Budgets map[Account]DailyBudget
	// OnPlanned, when set, is told the write requests planned so far, as
	// each property's plan is priced (for a progress display).
	OnPlanned func(writes int)
	// Retention is how long the store keeps settled credentials, audit
	// entries, ledger rows and run reports: a run that writes prunes what
	// is older, when the Store is a Pruner. Zero keeps everything.
	Retention time.Duration
	// Elsewhere, when set, says whether a property with live credentials in
	// the Store but no Site here is another process's to run or to name (a
	// shard of the same config): this run does not name it as a property
	// the config no longer lists. Nil: every such property is named.
	Elsewhere func(property string) bool
}

// repeatLimit is how many runs in a row an action may fail before its
// failure is a Problem for a person rather than work the next run retries.
const repeatLimit = 2

// DailyBudget is an account's request cap over a rolling 24 hours, and the
// part of it kept for revocations.
type DailyBudget struct {
	Cap     int
	Reserve int
}

// Options says what kind of run to do and when it is.
type Options struct {
	Mode Mode
	// Now is the instant the run plans at; keysync reads no other clock.
	Now time.Time
	// At is when the run happens, for what it records and counts (the
	// run's start, audit lines, the request ledger and the day's budget,
	// the times of its outcomes); zero means Now. Only apply of a saved
	// plan sets it apart: it plans at the plan's instant, which may be
	// hours before it acts, and history must show when things were done.
	At time.Time
	// DryRun plans and reports without writing anything, remote or local,
	// but the request ledger: the reads it sends count against the daily
	// cap like any run's.
	DryRun bool
	// Force applies the withdrawals the fail-safe would hold (see unsafe).
	Force bool
	// Targets, when set, restricts the run to the properties it names. A
	// property mapped to stay ids is read only for those stays, by id, and
	// planned only for them and the credentials of ours they concern: one
	// the source no longer returns is gone, and nothing else is withdrawn.
	// A property mapped to nil is read whole.
	Targets map[string][]string
	// ReadBack, with Targets naming stays, reads back the invites and
	// key-box accesses of those stays that a 3RPMS key carries, and
	// replaces one a read shows not live, with the key (confirmKept). An
	// operator's run at a stay sets it; a webhook's does not, so a list
	// that leaves a live credential out cannot change a guest's code at
	// every event.
	ReadBack bool
	// LookaheadDays, when above zero, reads only that many days from today
	// (a poll of a source without webhooks) and, like Targets, withdraws
	// only what that read covered.
	LookaheadDays int
	// Review, when set, sees every property's plan after all are computed
	// and before anything is written (a saved plan checks that the run
	// would do what it showed, and puts back the PINs it showed). An error
	// stops the run: nothing is written, every action is reported skipped
	// and each property fails with the error (wrap ErrStalePlan).
	// deferred holds the actions the day's budget leaves for a later run.
	Review func(plans []*Plan, deferred map[*Action]bool) error
}

// at is when the run happens (Options.At).
func (o Options) at() time.Time {
	if o.At.IsZero() {
		return o.Now
	}
	return o.At
}

// visits reports whether the run reads the site at all.
func (o Options) visits(site *Site) bool {
	if o.Targets == nil {
		return true
	}
	_, ok := o.Targets[site.Property.Name]
	return ok
}

// unsafe is the fail-safe: a plan that would withdraw more than max(5, 20%)
// of the property's live credentials from stays that have not departed,
// whatever the cause (stays vanished or cancelled, rooms unmapped, methods
// changed), is more likely an outage, a wrong filter or a config slip than
// a wave of real changes, so it is not applied unless forced.
func unsafe(p *Plan, source System) error {
	limit := max(5, p.Live/5)
	if p.Withdrawn <= limit {
		return nil
	}
	return fmt.Errorf("applying would withdraw %d of %d live credentials from stays that have not departed (more than %d): "+
		"%s returned far fewer stays than recorded, or the config's rooms or methods changed; check both, then rerun with --force if those credentials really must go: %w",
		p.Withdrawn, p.Live, limit, source, ErrUnsafe)
}

// holdWithdrawals splits the actions of a plan the fail-safe refused into
// those that go ahead and those it holds. It holds every action of a stay
// that would lose a credential the plan counts as withdrawn
// (Plan.Withdrawn), the actions linked to those (budgetUnits: a
// credential's actions, a replacement and what waits for it, a key and
// the secret it carries) and, in turn, every action of their stays. What
// goes ahead does not rest on the withdrawals the fail-safe doubts: the
// cleanup of stays that have departed, and the credentials of stays that
// lose none (arrivals, changed dates), so a guest arriving tonight is
// keyed and one who left is locked out while a person looks. It is pure:
// kept and held keep the order of the plan's actions.
func holdWithdrawals(p *Plan) (kept, held []*Action) {
	stays := map[StayRef]bool{}
	for _, a := range p.Actions {
		if p.withdrawn[a.Cred] {
			stays[a.Stay] = true
		}
	}
	out := map[*Action]bool{}
	units := budgetUnits(p.Actions)
	for grew := true; grew; {
		grew = false
		for _, u := range units {
			if out[u.actions[0]] || !slices.ContainsFunc(u.actions, func(a *Action) bool { return stays[a.Stay] }) {
				continue
			}
			for _, a := range u.actions {
				out[a] = true
				if !stays[a.Stay] {
					stays[a.Stay], grew = true, true
				}
			}
		}
	}
	for _, a := range p.Actions {
		if out[a] {
			held = append(held, a)
		} else {
			kept = append(kept, a)
		}
	}
	return kept, held
}

// Run reads every site, plans and, unless it is a dry run, applies. Problems
// with one property (a failed read, a failed request) are recorded in the
// report and the others go on; the error is for failures that make going on
// unsafe, such as the state store refusing a write.
func (r *Runner) Run(ctx context.Context, opts Options) (*Report, error) {
	rep := &Report{Mode: opts.Mode, DryRun: opts.DryRun, Now: opts.Now, Failures: []Failure{}}
	if !opts.at().Equal(opts.Now) {
		rep.At = opts.at()
	}
	// A stop signal cancels ctx: no new work starts, but what is in flight
	// and the run's end are still recorded.
	sctx := context.WithoutCancel(ctx)
	if !opts.DryRun {
		id, err := r.Store.BeginRun(sctx, opts.Mode, opts.at())
		if err != nil {
			return nil, fmt.Errorf("begin run: %w", err)
		}
		rep.RunID = id
	}

	opts.Targets = r.withSiblings(opts.Targets)
	r.Meter.Start(opts.at())
	allow, err := r.allowances(sctx, opts)
	if err != nil {
		return nil, err
	}
	rep.Budget = map[Account]BudgetReport{}
	works, err := r.pipeline(ctx, opts, rep.RunID, allow, rep)
	if err != nil {
		return nil, err
	}
	for _, w := range works {
		site := w.site
		rep.Failures = append(rep.Failures, w.failures...)
		if w.refused != nil {
			rep.Plans = append(rep.Plans, w.refused)
		}
		j := w.job
		if j == nil {
			continue
		}
		rep.Plans = append(rep.Plans, j.pr)
		for sys, n := range w.requests {
			if rep.Planned == nil {
				rep.Planned = map[System]int{}
			}
			rep.Planned[sys] += n
			rep.PlannedRequests += n
		}
		for _, a := range j.held {
			j.pr.set(a, ResultSkipped, "held by the fail-safe: the plan would withdraw too many live credentials (see the property's failure)")
		}
		for _, d := range j.deferred {
			j.pr.set(d.Action, ResultDeferred, d.Why)
		}
		// Those the budget deferred, and those deferred while applying
		// (a re-send it had no request for).
		for _, a := range j.pr.Actions {
			if a.Result != ResultDeferred {
				continue
			}
			acct := site.account(a.System)
			b := rep.Budget[acct]
			b.Deferred++
			rep.Budget[acct] = b
		}
		if opts.DryRun || j.ap != nil {
			// A system a backfill could not ask what it holds, unless
			// the apply cut it off anyway (reported below).
			for sys, err := range j.rd.unsurveyed {
				if j.ap == nil || j.ap.dead[sys] == nil {
					rep.Failures = append(rep.Failures, Failure{Property: site.Property.Name, System: sys, Err: err.Error(), Cause: err})
				}
			}
		}
		if opts.DryRun || j.ap == nil {
			continue
		}
		for sys, err := range j.ap.dead {
			rep.Failures = append(rep.Failures, Failure{Property: site.Property.Name, System: sys, Err: err.Error(), Cause: err})
		}
		if err := r.markPersistent(sctx, rep, j.pr); err != nil {
			return nil, err
		}
		// A backfill stopped while it ran is not complete, though every
		// claim it reached was answered: what it left unsent or unanswered
		// is the next start's backfill, before serve waits for its
		// schedule. Nor is one that could not read a stay in its rooms:
		// what the systems hold for it is looked for once it can be.
		if j.rd.backfill && j.rd.scope == nil && len(j.rd.unsurveyed) == 0 && j.rd.unreadableHere == 0 && ctx.Err() == nil && backfilled(j.pr) {
			if err := r.Store.MarkBackfilled(sctx, site.Property.Name, opts.at()); err != nil {
				return nil, err
			}
		}
	}
	if err := r.removedProperties(sctx, opts, rep); err != nil {
		return nil, err
	}
	slices.SortFunc(rep.Failures, func(a, b Failure) int {
		return cmp.Or(cmp.Compare(a.Property, b.Property), cmp.Compare(a.System, b.System))
	})
	if err := r.markRepeatedReads(ctx, sctx, opts, rep); err != nil {
		return nil, err
	}
	if r.Meter != nil {
		rep.Requests = r.Meter.Snapshot()
	}
	// Requests not yet in the ledger (reads without a budget, a dry run's
	// read-backs, say).
	if reqs := r.Meter.drain(); len(reqs) > 0 {
		if err := r.Store.Save(sctx, nil, nil, reqs...); err != nil {
			return nil, fmt.Errorf("record requests: %w", err)
		}
	}
	if !opts.DryRun {
		r.prune(sctx, opts, rep)
	}
	if err := r.budgetReport(sctx, opts, rep); err != nil {
		return nil, err
	}
	if !opts.DryRun {
		if err := r.Store.FinishRun(sctx, rep.RunID, rep); err != nil {
			return rep, fmt.Errorf("finish run: %w", err)
		}
	}
	return rep, nil
}

// withSiblings widens a targeted run to the siblings of each property it
// targets (Site.Siblings), for the same stays: a stay that moved between
// them is let go of by the one and taken up by the other in the same run,
// never only half. targets itself is not changed.
func (r *Runner) withSiblings(targets map[string][]string) map[string][]string {
	if targets == nil {
		return nil
	}
	out := maps.Clone(targets)
	for _, site := range r.Sites {
		ids, ok := targets[site.Property.Name]
		if !ok {
			continue
		}
		for _, sib := range site.Siblings {
			have, targeted := out[sib]
			switch {
			case targeted && have == nil: // read whole already
			case ids == nil:
				out[sib] = nil
			default:
				merged := slices.Clone(have)
				for _, id := range ids {
					if !slices.Contains(merged, id) {
						merged = append(merged, id)
					}
				}
				out[sib] = merged
			}
		}
	}
	return out
}

// pinsStillFree checks the PINs a plan's creates carry (a saved plan's,
// put back by Review) against the PINs in use in each property, the keys
// on the stays read and keysync's live credentials, and against each
// other: a saved PIN taken since is refused, never issued twice.
func pinsStillFree(jobs []*siteJob) error {
	for _, j := range jobs {
		used := pinsInUse(j.rd.stays, usedPINs(j.rd.creds))
		for _, a := range j.plan.Actions {
			if a.Op != OpCreate || a.Cred == nil || a.Cred.PIN == "" {
				continue
			}
			pin := a.Cred.PIN.Reveal()
			if used[pin] || !ValidPIN(pin) {
				return fmt.Errorf("%w: the PIN the plan drew for stay %s of %s is no longer free; make and review a new plan", ErrStalePlan, a.Stay.ID, j.site.Property.Name)
			}
			used[pin] = true
		}
	}
	return nil
}

// markRepeatedReads turns the failed reads of a whole run that also
// failed in each of the repeatLimit whole runs before it into Problems, as
// markPersistent does failed actions: a read that fails the same way run
// after run (an answer keysync cannot read) would otherwise leave the
// property partial, exit 3, for ever, and no one would be asked to look.
// runCtx is the run's own context: a run a stop cut short raises nothing;
// ctx is the one its state writes use.
func (r *Runner) markRepeatedReads(runCtx, ctx context.Context, opts Options, rep *Report) error {
	h, ok := r.Store.(ReadFailureHistory)
	if !ok || opts.DryRun || opts.Targets != nil || opts.LookaheadDays > 0 || runCtx.Err() != nil {
		return nil
	}
	var failed bool
	for _, f := range rep.Failures {
		failed = failed || f.Read
	}
	if !failed {
		return nil
	}
	past, err := h.RecentReadFailures(ctx, rep.RunID, repeatLimit)
	if err != nil {
		return fmt.Errorf("read recent read failures: %w", err)
	}
	for i := range rep.Failures {
		f := &rep.Failures[i]
		// A refused credential or a config that does not match the source
		// has its own exit status, which says what to fix.
		if n := past[f.Property]; !f.Read || n < repeatLimit || errors.Is(f.Cause, ErrUnauthorized) || errors.Is(f.Cause, ErrConfig) {
			continue
		}
		f.Persistent = true
		rep.Problems = append(rep.Problems, Problem{
			Kind: ProblemRepeatedReadFailure, Property: f.Property, System: f.System, Runs: past[f.Property] + 1,
			Detail: fmt.Sprintf("reading %s from %s failed in this run and in each of the %d whole runs before it: %s; retrying has not helped, a person must look",
				f.Property, f.System, past[f.Property], f.Err),
		})
	}
	return nil
}

// markPersistent turns the failures of a plan that also failed in each of
// the repeatLimit runs before into Problems: retrying has not fixed them,
// so they need a person, and they no longer make the run partial.
func (r *Runner) markPersistent(ctx context.Context, rep *Report, plan *PlanReport) error {
	var failed []*ActionReport
	for i := range plan.Actions {
		if a := &plan.Actions[i]; a.Result == ResultFailed || a.Result == ResultUnknown {
			failed = append(failed, a)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	past, err := r.Store.RecentFailures(ctx, plan.Property, rep.RunID, repeatLimit)
	if err != nil {
		return fmt.Errorf("read recent failures of %s: %w", plan.Property, err)
	}
	for _, a := range failed {
		n := past[FailureKey{Stay: a.Stay, System: a.System, Op: a.Op}]
		if n < repeatLimit {
			continue
		}
		a.Persistent = true
		rep.Problems = append(rep.Problems, Problem{
			Kind: ProblemRepeatedFailure, Property: plan.Property, System: a.System, Op: a.Op, Stay: a.Stay, Room: a.Room, RoomID: a.RoomID, Runs: n + 1,
			Detail: fmt.Sprintf("%s %s for stay %s failed in this run and in each of the %d before it: %s; retrying has not helped, a person must look",
				a.System, a.Op, a.Stay.ID, n, a.Error),
		})
	}
	// What waits on a persistent failure (the assign of a key whose create
	// is refused, a key carrying the code of an invite that is) was skipped
	// for it: not done, but retrying is no answer for it either.
	stuck := map[*Credential]bool{}
	for _, a := range failed {
		if a.Persistent && a.Cred != nil {
			stuck[a.Cred] = true
		}
	}
	if len(stuck) == 0 {
		return nil
	}
	for i := range plan.Actions {
		a := &plan.Actions[i]
		if a.Result == ResultSkipped && (stuck[a.Cred] || a.Upstream != nil && stuck[a.Upstream] || a.After != nil && stuck[a.After]) {
			a.Persistent = true
		}
	}
	return nil
}

// removedProperties names, as Problems, the properties that hold live
// credentials but are no longer in the config: removing a property
// withdraws nothing by itself (keysync cannot reach its systems without
// its config), so a person must decide.
func (r *Runner) removedProperties(ctx context.Context, opts Options, rep *Report) error {
	pl, ok := r.Store.(PropertyLister)
	if !ok {
		return nil
	}
	live, err := pl.LiveProperties(ctx)
	if err != nil {
		return fmt.Errorf("list the properties in the state: %w", err)
	}
	for _, site := range r.Sites {
		delete(live, site.Property.Name)
	}
	for name := range live {
		if r.Elsewhere != nil && r.Elsewhere(name) {
			delete(live, name)
		}
	}
	holders := make([]string, len(r.Sites))
	for i, site := range r.Sites {
		holders[i] = site.Property.Name
	}
	for _, name := range slices.Sorted(maps.Keys(live)) {
		// What a property here holds now is no longer the removed one's
		// (a renamed property's new name claimed or adopted it).
		if rel, ok := r.Store.(Releaser); ok {
			n, err := rel.ReleaseHeld(ctx, name, holders, opts.at(), opts.DryRun)
			if err != nil {
				return err
			}
			if n > 0 {
				r.log().Info("released the records of a property the config no longer lists: a listed property holds those credentials now (renamed?)", "property", name, "released", n)
			}
			if live[name] -= n; live[name] <= 0 {
				continue
			}
		}
		rep.Problems = append(rep.Problems, Problem{
			Kind: ProblemPropertyRemoved, Property: name,
			Detail: fmt.Sprintf("the state holds %d live credential(s) of property %s, which the config no longer lists; they are left as they are. "+
				"Put the property back to have them withdrawn (a plan shows what would go), or remove them by hand", live[name], name),
		})
	}
	return nil
}

// backfilled reports whether a backfill's plan did what a backfill must
// before the runs after it may stop claiming and looking: every claim was
// answered (the key was ours, adopted, or another integration's) and every
// adoption recorded (none deferred with the work it goes with, say).
func backfilled(plan *PlanReport) bool {
	for _, a := range plan.Actions {
		if (a.Op == OpClaim || a.Op == OpAdopt) && a.Result != ResultDone {
			return false
		}
	}
	return true
}

// siteRead is what a run learned about one site before planning.
type siteRead struct {
	// backfill makes the plan claim keys of unknown owner: a backfill, or
	// any run until a backfill of the property completed (its claims were
	// not all answered, or it never ran), so a backfill cut short by an
	// outage does not leave keys of ours taken for another integration's.
	backfill bool
	// scope is the stays a partial read covered (Input.Scope); nil for a
	// read of the whole window.
	scope map[StayRef]bool
	// siblings holds the siblings' 3RPMS keys by remote id
	// (Input.Siblings).
	siblings map[string]*Credential
	stays    []Stay
	// moved holds, in a backfill of a split hotel's property, the stays
	// now in its siblings' rooms (MovedStaySource), planned beside stays
	// and kept out of the property's stays snapshot.
	moved    []Stay
	creds    []Credential
	resolved []*Credential // pending creates read back, to record
	// unread holds, per sink, the first pending create that could not be
	// read back: its stay gets nothing this run, so the run is partial.
	unread map[System]error
	// unsurveyed holds the systems a backfill could not ask what they
	// already hold (findHeld): nothing is created there this run
	// (applier.noCreate), and the backfill is not complete.
	unsurveyed map[System]error
	deferred   map[StayRef]bool
	// unlisted holds the stays the window read did not return, nor the
	// whole run before's, that their look-up by id shows in the window:
	// taken as gone (NoteUnlisted). unlistedOnce holds those the run
	// before did not keep so: planned as the look-up shows them, each with
	// a NoteUnlistedOnce the next run asks after.
	unlisted, unlistedOnce []Stay
	// unreadable holds the stays the source listed but could not read
	// (Input.Unreadable), but for those it said were cancelled, left out
	// as gone; none are in stays. unreadableHere counts them all, the
	// cancelled included, but for those in another property's rooms: a
	// backfill beside any of them is not complete (with no record, what
	// the systems hold for one is looked for only once its dates can be
	// read).
	unreadable     map[StayRef]Stay
	unreadableHere int
	// lookupErr is the failure of the look-up of stays the window read
	// did not return: they are left out of scope, the rest is planned.
	lookupErr error
	system    System // the system that failed, with err
	err       error
}

// allowances is what each budgeted account's daily budget leaves for this
// run, after the ledger's last 24 hours (requests counted but not yet in
// the ledger are recorded first, a dry run's too), and the part of its
// reserve no write has spent (allowance.Kept). This run's reads come off
// each account's allowance once they are done (purse.price).
func (r *Runner) allowances(ctx context.Context, opts Options) (map[Account]allowance, error) {
	if len(r.Budgets) == 0 {
		return nil, nil
	}
	if reads := r.Meter.drain(); len(reads) > 0 {
		if err := r.Store.Save(ctx, nil, nil, reads...); err != nil {
			return nil, fmt.Errorf("record read requests: %w", err)
		}
	}
	spent, err := r.Store.Spent(ctx, opts.at().Add(-24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("read the request ledger: %w", err)
	}
	writes := spent // without a ledger that tells them apart, all count
	if ws, ok := r.Store.(WriteSpender); ok {
		if writes, err = ws.SpentWrites(ctx, opts.at().Add(-24*time.Hour)); err != nil {
			return nil, fmt.Errorf("read the request ledger: %w", err)
		}
	}
	allow := map[Account]allowance{}
	for acct, b := range r.Budgets {
		allow[acct] = allowance{Left: max(b.Cap-SpentBy(spent, acct), 0), Reserve: b.Reserve, Kept: min(b.Reserve, max(b.Cap-SpentBy(writes, acct), 0))}
	}
	return allow, nil
}

// budgetReport fills the report's budget section from the ledger.
func (r *Runner) budgetReport(ctx context.Context, opts Options, rep *Report) error {
	if len(r.Budgets) == 0 {
		return nil
	}
	spent, err := r.Store.Spent(ctx, opts.at().Add(-24*time.Hour))
	if err != nil {
		return fmt.Errorf("read the request ledger: %w", err)
	}
	users := map[Account][]string{}
	for _, site := range r.Sites {
		for _, acct := range site.accounts() {
			if !slices.Contains(users[acct], site.Property.Name) {
				users[acct] = append(users[acct], site.Property.Name)
			}
		}
	}
	for acct, b := range r.Budgets {
		br := rep.Budget[acct]
		used := SpentBy(spent, acct)
		br.System, br.Properties = acct.System(), users[acct]
		br.Cap, br.Reserve, br.UsedToday = b.Cap, b.Reserve, used
		br.Left = max(b.Cap-used, 0)
		rep.Budget[acct] = br
		if used > b.Cap {
			r.log().Warn("the day's requests are past the daily cap (in a shard, its share): reads are never deferred, and only revocations may still write, within the reserve; fewer runs or polls (poll_every) read less",
				"credential", acct, "used_24h", used, "cap", b.Cap)
		}
	}
	return nil
}

// resolve reads back the pending creates of sinks that can (Finder): found
// ones become active with their remote id, ones that made nothing are
// abandoned. creds is updated in place; the changed ones are returned to
// be recorded. A failed look-up leaves the credential pending: the planner
// then issues nothing more for it, and the first failure per system is
// returned.
func (r *Runner) resolve(ctx context.Context, site *Site, creds []Credential) ([]*Credential, map[System]error) {
	var changed []*Credential
	var failed map[System]error
	noList := map[System]error{} // systems that answered ErrNoList: asked once
	for i := range creds {
		c := &creds[i]
		if c.Status != StatusPending {
			continue
		}
		f, ok := site.Sinks[c.System].(Finder)
		if !ok {
			continue
		}
		var (
			id     string
			secret Secret
			found  bool
			err    error
		)
		if err = noList[c.System]; err == nil {
			id, secret, found, err = f.Find(ctx, c)
		}
		switch {
		case errors.Is(err, ErrNoList):
			noList[c.System] = err // the rest of the system's need not ask
			// Never findable: abandoned, so the stay gets a fresh create.
			// What the lost create may have made was never written into a
			// 3RPMS key, though a key box that notifies the guest may have
			// sent its code: both end with the stay's window.
			r.log().Warn("a create with an unknown outcome cannot be read back (the system lists nothing); issuing it again",
				"system", c.System, "stay", c.Stay.ID, "err", err)
			c.Status = StatusAbandoned
		case err != nil:
			r.log().Warn("could not read back a create with an unknown outcome", "system", c.System, "stay", c.Stay.ID, "err", err)
			if failed[c.System] == nil {
				if failed == nil {
					failed = map[System]error{}
				}
				failed[c.System] = fmt.Errorf("read back the create for stay %s: %w", c.Stay.ID, err)
			}
			continue
		case found:
			c.RemoteID, c.Status, c.Secret = id, StatusActive, secret
		default:
			c.Status = StatusAbandoned
		}
		cp := *c
		changed = append(changed, &cp)
	}
	return changed, failed
}

// findHeld asks each sink that can (BatchFinder) which of the invites and
// accesses a backfill's plan seeks (Plan.Seek) it already holds, one call
// per system, and returns them by stay (Input.Held), and the systems it
// could not read: creating there could issue a guest's credential twice.
func (r *Runner) findHeld(ctx context.Context, site *Site, plan *Plan, stays map[StayRef]*Stay, creds []Credential) (map[StayRef][]Held, map[System]error) {
	creates := map[System][]Sought{}
	for _, sk := range plan.Seek {
		creates[sk.Cred.System] = append(creates[sk.Cred.System], sk)
	}
	// What keysync records is no one else's to adopt: a look must not
	// even consider it, or it hides the stay's own.
	recorded := remoteIDs(creds)
	var (
		held   map[StayRef][]Held
		failed map[System]error
	)
	for _, sys := range slices.Sorted(maps.Keys(creates)) {
		f, ok := site.Sinks[sys].(BatchFinder)
		if !ok {
			continue
		}
		creds := creates[sys]
		found, err := f.FindAll(ctx, creds, recorded[sys])
		if err == nil && len(found) != len(creds) {
			err = fmt.Errorf("%s sink answered %d look-ups for %d credentials", sys, len(found), len(creds))
		}
		if errors.Is(err, ErrNoList) {
			// No list will ever answer: waiting for one would leave these
			// guests without access for good. What a guest may hold from
			// before is for the same stay and ends with its window.
			r.log().Warn("the system lists nothing to adopt; issuing new credentials (one a guest already holds stays valid until its window ends)",
				"property", site.Property.Name, "system", sys, "err", err)
			continue
		}
		if err != nil {
			r.log().Warn("could not read back what the system already holds; nothing is created there this run",
				"property", site.Property.Name, "system", sys, "err", err)
			if failed == nil {
				failed = map[System]error{}
			}
			failed[sys] = fmt.Errorf("read back the %s credentials already issued before creating any: %w", sys, err)
			continue
		}
		n := 0
		for i, h := range found {
			if h == nil {
				continue
			}
			if held == nil {
				held = map[StayRef][]Held{}
			}
			h.System = sys
			ref := creds[i].Cred.Stay
			h.CarriedBy = carriedBy(site, sys, h.Secret, stays[ref])
			for j := range h.Spares {
				h.Spares[j].System = sys
				if h.CarriedBy == "" {
					h.Spares[j].CarriedBy = carriedBy(site, sys, h.Spares[j].Secret, stays[ref])
				}
				if h.Spares[j].CarriedBy != "" {
					// The stay's key carries this one: it is the guest's,
					// kept; the one the sink chose goes instead.
					spares := h.Spares
					main := spares[j]
					h.Spares = nil
					spares[j] = *h
					main.Spares = spares
					*h = main
					break
				}
			}
			if h.CarriedBy == "" && len(h.Spares) > 0 && slices.ContainsFunc(append([]Held{*h}, h.Spares...), func(c Held) bool {
				return cannotTell(site, sys, c.Secret, stays[ref])
			}) {
				// The stay's key may carry any of them, and nothing shows
				// which (3RPMS hides the key's content, or the list the
				// secrets): one opening the stay's room may be the link
				// the guest holds, and its key is rewritten from the kept
				// one only later. Those are left to end with their
				// windows; only one opening other doors goes.
				h.Spares = slices.DeleteFunc(h.Spares, func(sp Held) bool { return sp.RoomID != "" })
			}
			held[ref] = append(held[ref], *h)
			n++
		}
		if n > 0 {
			r.log().Info("adopting credentials the system already holds", "property", site.Property.Name, "system", sys, "count", n)
		}
	}
	return held, failed
}

// carries returns the recorded live invites and key-box
// accesses whose stay's 3RPMS key is made from them, with that key's id
// (Input.KeyCarries).
func carries(site *Site, stays map[StayRef]*Stay, creds []Credential) map[int64]string {
	var out map[int64]string
	for _, c := range creds {
		if c.System == System3RPMS || c.Status != StatusActive || c.Secret == "" || c.ID == 0 {
			continue
		}
		if key := carriedBy(site, c.System, c.Secret, stays[c.Stay]); key != "" {
			if out == nil {
				out = map[int64]string{}
			}
			out[c.ID] = key
		}
	}
	return out
}

// staysByRef indexes stays by reference.
func staysByRef(stays []Stay) map[StayRef]*Stay {
	out := make(map[StayRef]*Stay, len(stays))
	for i := range stays {
		out[stays[i].Ref] = &stays[i]
	}
	return out
}

// carriedBy returns the id of the 3RPMS key on stay s when it is made from
// secret, sys's: what sys's Deriver builds from the secret is what the key
// holds (its PIN, its QR data). "" when it is not, or cannot be told.
func carriedBy(site *Site, sys System, secret Secret, s *Stay) string {
	if secret == "" {
		return ""
	}
	probe := deriveKey(site, sys, secret, s)
	if probe == nil || probe.PIN != s.Key.PIN || probe.QRData != s.Key.QRData {
		return ""
	}
	return s.Key.ID
}

// deriveKey returns what sys's Deriver makes of secret for stay s's 3RPMS
// key (its PIN or QR data), nil when sys has no Deriver, the stay no key,
// or the Deriver makes nothing of it for a key of that kind.
func deriveKey(site *Site, sys System, secret Secret, s *Stay) *Credential {
	d, ok := site.Sinks[sys].(Deriver)
	if !ok || s == nil || s.Key == nil {
		return nil
	}
	probe := &Credential{Stay: s.Ref, System: System3RPMS, Kind: Kind(s.Key.Type), RoomID: s.RoomID}
	if err := d.Derive(probe, secret); err != nil || (probe.PIN == "" && probe.QRData == "") {
		return nil
	}
	return probe
}

// cannotTell reports whether stay s's 3RPMS key is of a kind sys's
// Deriver makes (so it may carry secret) but nothing shows whether it
// does: the secret is unknown (a list without secrets), or 3RPMS shows
// none of what the key holds (its PIN, its QR data).
func cannotTell(site *Site, sys System, secret Secret, s *Stay) bool {
	// Without the secret, any will do: is the key of a kind sys derives?
	probe := deriveKey(site, sys, cmp.Or(secret, "0"), s)
	if probe == nil {
		return false
	}
	return secret == "" || (probe.PIN != "" && s.Key.PIN == "") || (probe.QRData != "" && s.Key.QRData == "")
}

// confirmKept reads back, where the sink can (Checker), each live key-box
// access or invite whose secret the state kept but which no live 3RPMS key
// carries: the plan would write a key from that secret, and the credential
// may have been cancelled or deleted upstream since (staff, a retention
// rule). Unless the read shows it live over its window, its secret is
// forgotten for this run, so the plan replaces it as it does one whose
// secret keysync never saw: a guest never gets a key for a dead code. A
// failed read counts as not shown; a system with no list call
// (ErrNoList) is taken at its record.
//
// For targets, the stays of an operator's run at them (Options.ReadBack),
// it reads back every live invite and access of theirs: those a key
// carries, a shared portal's invite, and a Guestway stay's, which no key
// carries. A run over the whole window takes them at their record (a read
// per credential every night), so a run at the stay is how a credential
// cancelled upstream is replaced, with the key carrying it if any.
func (r *Runner) confirmKept(ctx context.Context, site *Site, creds []Credential, targets []string, now time.Time) {
	carried := map[int64]bool{}
	for _, c := range creds {
		if c.System == System3RPMS && c.Status == StatusActive && c.DerivedFrom != 0 {
			carried[c.DerivedFrom] = true
		}
	}
	for i := range creds {
		c := &creds[i]
		if c.Status != StatusActive || c.Secret == "" && !c.Secretless {
			continue
		}
		// writesKey: the plan would write a 3RPMS key from its secret
		// (none carries it yet).
		m, ok := site.Property.methodFor(c.RoomID)
		writesKey := c.Stay.Source == System3RPMS && !carried[c.ID] && ok && m.keyFrom() == c.System
		if !writesKey && !slices.Contains(targets, c.Stay.ID) {
			continue
		}
		ch, ok := site.Sinks[c.System].(Checker)
		if !ok {
			continue
		}
		// Over what is left of its window: one made for an in-house
		// guest opened when it was made, not at the stay's start (check
		// asks the same).
		got, err := ch.Check(ctx, c, c.Valid.From(now))
		if errors.Is(err, ErrNoList) || err != nil && !writesKey {
			// The system cannot be read back at all (as in check): the
			// record stands. Taking that for "gone" would replace the
			// credential every run. Nor does a failed read replace one
			// no key is about to be written from (one a key carries, a
			// Guestway stay's, a shared portal's): the guest may be
			// using it. Only a read that answers "not live" does.
			continue
		}
		switch {
		case err == nil && got.Live:
		case err == nil && got.InPlace:
			// Found, only switched off or narrowed (staff, say): set
			// right in place, its secret (the guest's link) kept.
			r.log().Warn("a kept credential is switched off or narrower than its window; it is set right in place",
				"system", c.System, "stay", c.Stay.ID, "remote_id", c.RemoteID, "why", got.Why)
			c.Drifted = true
		default:
			r.log().Warn("a kept credential no longer shows live; it is replaced rather than reused",
				"system", c.System, "stay", c.Stay.ID, "remote_id", c.RemoteID, "why", got.Why, "err", err)
			c.Secret, c.Stale = "", true
		}
	}
}

// lent returns Input.Lent: of the keys on stays that no live record of
// the property or of a sibling names, those keysync released while
// another stay held them, where the Store keeps them (ReleasedKeys). A
// failed look-up leaves them unknown, and is only logged.
func (r *Runner) lent(ctx context.Context, site *Site, stays []Stay, creds []Credential, siblings map[string]*Credential) map[string]StayRef {
	rs, ok := r.Store.(ReleasedKeys)
	if !ok {
		return nil
	}
	recorded := map[string]bool{}
	for i := range creds {
		if c := &creds[i]; c.System == System3RPMS && c.RemoteID != "" {
			recorded[c.RemoteID] = true
		}
	}
	var ids []string
	for i := range stays {
		if k := stays[i].Key; k != nil && !recorded[k.ID] && siblings[k.ID] == nil && !slices.Contains(ids, k.ID) {
			ids = append(ids, k.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	out, err := rs.Released(ctx, site.Property.Name, ids)
	if err != nil {
		r.log().Warn("could not read the keys keysync released: keys on stays it has no record of are taken as unknown", "property", site.Property.Name, "err", err)
		return nil
	}
	return out
}

// read gathers one site's inputs. Source failures are reported in the
// result; the returned error is for the state store, which stops the run.
func (r *Runner) read(ctx context.Context, site *Site, opts Options, records *recordLoads, run int64) (siteRead, error) {
	name := site.Property.Name
	rd := siteRead{system: site.sourceSystem()}
	creds, err := records.load(ctx, r.Store, name)
	if err != nil {
		return rd, fmt.Errorf("load credentials of %s: %w", name, err)
	}
	rd.creds = creds
	if len(site.Siblings) > 0 {
		rd.siblings = map[string]*Credential{}
	}
	for _, sib := range site.Siblings {
		creds, err := records.load(ctx, r.Store, sib)
		if err != nil {
			return rd, fmt.Errorf("load credentials of %s: %w", sib, err)
		}
		for i := range creds {
			if c := &creds[i]; c.System == System3RPMS && c.RemoteID != "" {
				rd.siblings[c.RemoteID] = c
			}
		}
	}
	done, err := r.Store.Backfilled(ctx, name)
	if err != nil {
		return rd, fmt.Errorf("load the backfill state of %s: %w", name, err)
	}
	rd.backfill = opts.Mode == ModeBackfill || !done
	rd.resolved, rd.unread = r.resolve(ctx, site, rd.creds)
	var readBack []string
	if opts.ReadBack {
		readBack = opts.Targets[name]
	}
	r.confirmKept(ctx, site, rd.creds, readBack, opts.at())
	if rd.deferred, err = r.Store.DeferredStays(ctx, name); err != nil {
		return rd, fmt.Errorf("load deferred stays of %s: %w", name, err)
	}

	if ids := opts.Targets[name]; ids != nil {
		// A targeted run: those stays, by id. One asked for and not
		// returned is gone (deleted, or its reservation cancelled).
		rd.scope = map[StayRef]bool{}
		for _, id := range ids {
			rd.scope[StayRef{Property: name, Source: site.sourceSystem(), ID: id}] = true
		}
		stays, err := site.Source.StaysByID(ctx, ids)
		if err != nil {
			rd.err = fmt.Errorf("read stays %v: %w", ids, err)
			return rd, nil
		}
		rd.stays = r.takeUnreadable(ctx, site, &rd, stays)
		return rd, nil
	}
	from, to := site.Property.ReadRange(opts.Now)
	if rd.backfill {
		from, to = site.Property.backfillReadRange(opts.Now)
	}
	if opts.LookaheadDays > 0 {
		loc := site.Property.Location
		if loc == nil {
			loc = time.UTC
		}
		today := DateOf(opts.Now.In(loc))
		from, to = today.AddDays(-1), today.AddDays(opts.LookaheadDays-1)
	}
	stays, err := site.Source.Stays(ctx, from, to)
	if err != nil {
		rd.err = fmt.Errorf("read stays %s..%s: %w", from, to, err)
		return rd, nil
	}

	if opts.LookaheadDays > 0 {
		// A short look-ahead covers only what it returned.
		rd.scope = scopeOf(stays)
		rd.stays = r.takeUnreadable(ctx, site, &rd, stays)
		return rd, nil
	}
	if ms, ok := site.Source.(MovedStaySource); ok && rd.backfill && len(site.Siblings) > 0 {
		// With the state lost, a stay that moved into a sibling's rooms
		// meanwhile is in no record: only a read of it shows this
		// property what it issued to the stay for its own doors.
		if rd.moved, err = ms.MovedStays(ctx, from, to); err != nil {
			rd.err = fmt.Errorf("read stays %s..%s in the rooms of %v: %w", from, to, site.Siblings, err)
			return rd, nil
		}
	}
	// Stays we hold credentials for that the window read did not return:
	// look them up by id to tell "moved out of the window" from "gone".
	inRead := map[string]bool{}
	for _, s := range slices.Concat(stays, rd.moved) {
		inRead[s.Ref.ID] = true
	}
	var missing []string
	for _, c := range creds {
		if c.Status.Live() && c.Stay.Source == site.sourceSystem() && !inRead[c.Stay.ID] && !slices.Contains(missing, c.Stay.ID) {
			missing = append(missing, c.Stay.ID)
		}
	}
	if len(missing) > 0 {
		more, err := site.Source.StaysByID(ctx, missing)
		if err != nil {
			// The stays the window read returned are planned all the
			// same (a new guest is keyed); those it did not return,
			// which the look-up was to settle, are left as they are:
			// the read covers only what it returned, and the run is
			// partial.
			rd.lookupErr = fmt.Errorf("look up %d stays the window read did not return: %w", len(missing), err)
			rd.scope = scopeOf(stays)
		}
		var keptBefore func(StayRef) bool
		for _, s := range more {
			// The look-up is to tell a stay that left the window from one
			// that is gone. One it shows in the window contradicts the
			// window's read: the 3RPMS document selects no status, and a
			// source may leave a cancelled reservation's stays out of its
			// lists yet answer for them by id; or the read missed it once
			// (a list that shifted between pages). The window's read
			// decides, once it has left the stay out in two whole runs in
			// a row: the stay is then taken as gone (counted by the
			// fail-safe as any withdrawal). The first time it is kept as
			// the look-up shows it, with a note the next run asks after.
			if s.Unreadable != "" || s.MovedTo != "" || s.Cancelled || !from.Before(s.Departure) || to.Before(s.Arrival) || reportsCancellations(site.Source) {
				stays = append(stays, s)
				continue
			}
			if keptBefore == nil {
				keptBefore = r.lastUnlisted(ctx, site.Property.Name, run)
			}
			if keptBefore(s.Ref) {
				rd.unlisted = append(rd.unlisted, s)
			} else {
				rd.unlistedOnce = append(rd.unlistedOnce, s)
			}
		}
	}
	rd.stays = r.takeUnreadable(ctx, site, &rd, stays)
	return rd, nil
}

// takeUnreadable takes the stays the source could not read
// (Stay.Unreadable) out of stays and returns the rest. A cancelled one is
// left out as a stay gone from the read is (its credentials withdrawn);
// the others go to rd.unreadable, whose credentials the plan leaves as
// recorded (see planner.unreadable). Each of those that holds nothing
// live gets the window last recorded for it (its Arrival and Departure),
// where the Store keeps ended credentials (EndedRecords): the plan then
// tells a stay that has left from one that may be arriving. A failed
// look-up leaves them possibly arriving, and is only logged.
func (r *Runner) takeUnreadable(ctx context.Context, site *Site, rd *siteRead, stays []Stay) []Stay {
	stays = slices.DeleteFunc(stays, func(s Stay) bool {
		if s.Unreadable == "" {
			return false
		}
		if s.MovedTo == "" {
			rd.unreadableHere++
		}
		if s.Cancelled {
			return true
		}
		if rd.unreadable == nil {
			rd.unreadable = map[StayRef]Stay{}
		}
		rd.unreadable[s.Ref] = s
		return true
	})
	er, ok := r.Store.(EndedRecords)
	if !ok || len(rd.unreadable) == 0 {
		return stays
	}
	var refs []StayRef
	for ref := range rd.unreadable {
		if !slices.ContainsFunc(rd.creds, func(c Credential) bool { return c.Stay == ref }) {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return stays
	}
	last, err := er.LastRecorded(ctx, site.Property.Name, refs)
	if err != nil {
		r.log().Warn("could not read the windows recorded for stays the source could not read: they are taken as possibly arriving", "property", site.Property.Name, "err", err)
		return stays
	}
	for ref, rec := range last {
		u := rd.unreadable[ref]
		u.Arrival, u.Departure = rec.Arrival, rec.Departure
		rd.unreadable[ref] = u
	}
	return stays
}

// reportsCancellations reports whether src says a stay is cancelled rather
// than leave it out (CancellationReporter): its look-up by id is then the
// stay as it is, as with a Guestway whose list filters long stays out by
// their arrival.
func reportsCancellations(src StaySource) bool {
	r, ok := src.(CancellationReporter)
	return ok && r.ReportsCancellations()
}

// lastUnlisted reports, for the property, whether the last whole run
// before run kept a stay though its window read left it out; where the
// Store keeps no such history or it cannot be read, it reports no stay: a
// stay is then never taken as gone on this ground.
func (r *Runner) lastUnlisted(ctx context.Context, property string, run int64) func(StayRef) bool {
	h, ok := r.Store.(UnlistedHistory)
	var kept map[StayRef]bool
	var err error
	if run == 0 {
		run = math.MaxInt64 // a plan, which records no run: after every run
	}
	if ok {
		kept, err = h.LastUnlisted(ctx, property, run)
	}
	if err != nil {
		r.log().Warn("could not read which stays the last run kept though its read left them out: they are kept again", "property", property, "err", err)
	}
	return func(ref StayRef) bool { return kept[ref] }
}

// scopeOf is the scope (Input.Scope) of a read that covers only the
// stays it returned.
func scopeOf(stays []Stay) map[StayRef]bool {
	scope := make(map[StayRef]bool, len(stays))
	for _, s := range stays {
		scope[s.Ref] = true
	}
	return scope
}

// recordLoads loads each property's credentials once per run: a split
// hotel's properties each read their siblings' records beside their own.
// Every caller gets a copy of its own (the run changes them in place).
type recordLoads struct {
	mu sync.Mutex
	m  map[string]func() ([]Credential, error)
}

func (l *recordLoads) load(ctx context.Context, store Store, property string) ([]Credential, error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]func() ([]Credential, error){}
	}
	f, ok := l.m[property]
	if !ok {
		f = sync.OnceValues(func() ([]Credential, error) { return store.Credentials(ctx, property) })
		l.m[property] = f
	}
	l.mu.Unlock()
	creds, err := f()
	return slices.Clone(creds), err
}

func (s *Site) sourceSystem() System { return cmp.Or(s.SourceSystem, System3RPMS) }

// account is the Account the site's requests to sys count against.
func (s *Site) account(sys System) Account {
	if a, ok := s.Accounts[sys]; ok {
		return a
	}
	return NewAccount(sys, "")
}

// accounts is the Account of each system the site calls, in system order.
func (s *Site) accounts() []Account {
	systems := slices.Collect(maps.Keys(s.Sinks))
	if s.Source != nil && !slices.Contains(systems, s.sourceSystem()) {
		systems = append(systems, s.sourceSystem())
	}
	slices.Sort(systems)
	out := make([]Account, len(systems))
	for i, sys := range systems {
		out[i] = s.account(sys)
	}
	return out
}

// allowances is what the run's allowances leave for this site, by system:
// each system's entry is the allowance of the site's account on it.
func (s *Site) allowances(allow map[Account]allowance) map[System]allowance {
	if len(allow) == 0 {
		return nil
	}
	out := map[System]allowance{}
	for _, acct := range s.accounts() {
		if al, ok := allow[acct]; ok {
			out[acct.System()] = al
		}
	}
	return out
}

func (s *Site) maxBatch(sys System) int {
	if sink := s.Sinks[sys]; sink != nil {
		return sink.MaxBatch()
	}
	return 1
}

func (r *Runner) crash(point string, system System) {
	if r.Crash != nil {
		r.Crash(point, system)
	}
}

func (r *Runner) rand() io.Reader {
	if r.Rand != nil {
		return r.Rand
	}
	return rand.Reader
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) requestTimeout() time.Duration {
	return cmp.Or(r.RequestTimeout, 60*time.Second)
}

// requestsBySystem is the number of requests applying the actions takes,
// per system.
func requestsBySystem(actions []*Action, maxBatch func(System) int) map[System]int {
	out := map[System]int{}
	for _, b := range splitBatches(actions, maxBatch) {
		out[b.System]++
	}
	return out
}

// usedPINs returns the PINs and key-box codes of live credentials, which
// the store opened: new PINs must differ from them.
func usedPINs(creds []Credential) []Secret {
	var out []Secret
	for _, c := range creds {
		if !c.Status.Live() {
			continue
		}
		if c.PIN != "" {
			out = append(out, c.PIN)
		}
		if c.System == SystemKeyBox && c.Secret != "" {
			out = append(out, c.Secret)
		}
	}
	return out
}
