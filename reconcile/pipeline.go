package reconcile

import (
	"context"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync"
)

// siteWork is one visited property's way through a run: read, plan,
// budget, apply, each property on its own goroutine (see Runner.pipeline),
// so a property's writes start as soon as its own read and plan are done.
type siteWork struct {
	site *Site
	// rand is the randomness of the property's PINs.
	rand io.Reader
	// job is the property's planned work; nil when nothing is planned to
	// apply (the read failed, or the fail-safe refused a saved plan).
	job *siteJob
	// refused is the report of a saved plan the fail-safe refused.
	refused  *PlanReport
	failures []Failure
	// requests counts the plan's requests per system.
	requests map[System]int

	// read is closed once the property has read, planned once its plan
	// is made (prices then holds its costs), priced once the budget has
	// had its turn (or will not: the property stopped before it).
	read, planned, priced             chan struct{}
	readDone, plannedDone, pricedDone bool
	// prices is what each priority of the plan's work costs, by system
	// (priorityPrices): the properties before it on an account keep from
	// their less urgent work what its more urgent work costs, and leave
	// its revocations and cleanup (PriorityRevoke) what they cost.
	prices map[Priority]map[System]int
	// shares are the other properties on any budgeted account of this
	// one, and its siblings (Site.Siblings): an account's allowance is
	// known once all of its properties have read (their reads count
	// against it), and siblings read each other's records, which none may
	// change before all have read. before are the account sharers earlier
	// in site order: each account's allowance is shared out in site order,
	// as the properties come in the config, the same way every run; after
	// are the account sharers later in site order, whose revocations the
	// allowance keeps from this one's other work.
	shares, before, after []*siteWork
}

func (w *siteWork) doneReading() {
	if !w.readDone {
		w.readDone = true
		close(w.read)
	}
}

func (w *siteWork) donePlanning() {
	if !w.plannedDone {
		w.plannedDone = true
		close(w.planned)
	}
}

func (w *siteWork) donePricing() {
	if !w.pricedDone {
		w.pricedDone = true
		close(w.priced)
	}
}

// siteJob is one property's planned work in a run: what apply needs and
// what its report becomes.
type siteJob struct {
	site     *Site
	rd       siteRead
	plan     *Plan
	kept     []*Action
	deferred []deferral
	// held is what the fail-safe holds (holdWithdrawals).
	held    []*Action
	batches []batch
	pr      *PlanReport
	ap      *applier
}

// purse is the run's allowances, shared out among the properties as each
// is priced.
type purse struct {
	mu    sync.Mutex
	allow map[Account]allowance
	// counted marks the accounts whose allowance already takes this run's
	// reads off; base is the Meter's count per account before the run.
	counted map[Account]bool
	base    map[Account]int
	// planned is the write requests planned so far (Runner.OnPlanned).
	planned int
	// priced marks the properties priced so far.
	priced map[*siteWork]bool
}

// pipeline runs every visited property through read, plan, budget and
// apply at once and returns each one's work in site order. A property
// waits only for what it shares: the reads of the properties on its
// budgeted accounts and of its siblings, and the pricing of those before
// it on an account; with a Review,
// every property waits for all to be planned and for the review. The error
// is the first fatal one (the state store failed); it stops the others
// starting anything more. A panic in one property's work (a test's
// simulated kill) is raised again here, as it was, once every property
// has stopped.
func (r *Runner) pipeline(ctx context.Context, opts Options, run int64, allow map[Account]allowance, rep *Report) ([]*siteWork, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var works []*siteWork
	users := map[Account][]*siteWork{}
	for _, site := range r.Sites {
		if !opts.visits(site) {
			continue
		}
		w := &siteWork{site: site, read: make(chan struct{}), planned: make(chan struct{}), priced: make(chan struct{})}
		for _, acct := range site.accounts() {
			if _, ok := allow[acct]; !ok {
				continue
			}
			for _, u := range users[acct] {
				if !slices.Contains(w.shares, u) {
					w.shares = append(w.shares, u)
					w.before = append(w.before, u)
					u.shares = append(u.shares, w)
					u.after = append(u.after, w)
				}
			}
			users[acct] = append(users[acct], w)
		}
		works = append(works, w)
	}
	// A property reads its siblings' records of keys (a stay moving between
	// them takes its key along): none of them may write before all have
	// read.
	for _, w := range works {
		for _, u := range works {
			if u != w && slices.Contains(w.site.Siblings, u.site.Property.Name) && !slices.Contains(w.shares, u) {
				w.shares = append(w.shares, u)
			}
		}
	}
	if err := r.rands(works); err != nil {
		return nil, err
	}
	p := &purse{allow: allow, counted: map[Account]bool{}, base: r.Meter.byAccount(), priced: map[*siteWork]bool{}}
	records := &recordLoads{}

	// With a Review, nothing is written until every plan is reviewed:
	// gate opens then, and stop says whether to apply.
	var gate chan struct{}
	var stop error
	if !opts.DryRun && opts.Review != nil {
		gate = make(chan struct{})
	}
	errs := make([]error, len(works))
	panics := make([]any, len(works))
	var wg sync.WaitGroup
	for i, w := range works {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					panics[i] = v
					cancel()
				}
			}()
			defer w.donePricing()
			defer w.donePlanning()
			defer w.doneReading()
			if err := r.work(ctx, opts, run, w, p, records, gate, &stop); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	if gate != nil {
		for _, w := range works {
			<-w.priced
		}
		stop = r.review(ctx, opts, works)
		if stop != nil {
			rep.Failures = append(rep.Failures, Failure{Err: stop.Error(), Cause: stop})
		}
		close(gate)
	}
	wg.Wait()
	for _, v := range panics {
		if v != nil {
			panic(v)
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return works, nil
}

// rands gives each property its PIN randomness: crypto/rand, safe for
// properties planning at once. A Runner.Rand (a test's or the demo's
// seeded reader) need not be: one property reads it directly, several get
// a stream each, seeded from it in site order, so a seeded run draws the
// same PINs whichever property plans first.
func (r *Runner) rands(works []*siteWork) error {
	if r.Rand == nil || len(works) == 1 {
		for _, w := range works {
			w.rand = r.rand()
		}
		return nil
	}
	for _, w := range works {
		var seed [32]byte
		if _, err := io.ReadFull(r.Rand, seed[:]); err != nil {
			return fmt.Errorf("seed the PIN randomness of %s: %w", w.site.Property.Name, err)
		}
		w.rand = mrand.NewChaCha8(seed)
	}
	return nil
}

// review shows every plan to opts.Review and checks the PINs it put back;
// an error means nothing is applied, and every kept action is reported
// skipped. What the budget deferred stays deferred, so those stays keep
// their turn.
func (r *Runner) review(ctx context.Context, opts Options, works []*siteWork) error {
	var jobs []*siteJob
	var plans []*Plan
	deferred := map[*Action]bool{}
	for _, w := range works {
		if w.job == nil {
			continue
		}
		jobs, plans = append(jobs, w.job), append(plans, w.job.plan)
		for _, d := range w.job.deferred {
			deferred[d.Action] = true
		}
	}
	err := ctx.Err()
	if err != nil {
		err = fmt.Errorf("not applied: %w", context.Cause(ctx))
	} else if err = opts.Review(plans, deferred); err == nil {
		err = pinsStillFree(jobs)
	}
	if err != nil {
		for _, j := range jobs {
			for _, a := range j.kept {
				j.pr.set(a, ResultSkipped, "not applied: the saved plan no longer holds")
			}
		}
	}
	return err
}

// work takes one property through the run. Source failures and the
// fail-safe's refusal are recorded in w; the error is for the state
// store, which stops the run.
func (r *Runner) work(ctx context.Context, opts Options, run int64, w *siteWork, p *purse, records *recordLoads, gate chan struct{}, stop *error) error {
	site := w.site
	rd, err := r.read(ctx, site, opts, records, run)
	if err != nil {
		return err
	}
	if !rd.backfill {
		w.doneReading() // a backfill reads on: see findHeld below
	}
	for _, sys := range slices.Sorted(maps.Keys(rd.unread)) {
		err := rd.unread[sys]
		w.failures = append(w.failures, Failure{Property: site.Property.Name, System: sys, Err: err.Error(), Cause: err})
	}
	if err := rd.lookupErr; err != nil {
		w.failures = append(w.failures, Failure{Property: site.Property.Name, System: site.sourceSystem(), Err: err.Error(), Cause: err})
		r.log().Error("look-up of stays the read did not return failed; their credentials are left as they are this run", "property", site.Property.Name, "err", err)
	}
	if rd.err == nil {
		rd.err = site.Property.checkRoomKeys(rd.stays)
	}
	if rd.err != nil {
		// A read a stop cut short is no failed read: it does not count
		// towards a repeated read failure.
		w.failures = append(w.failures, Failure{Property: site.Property.Name, System: rd.system, Err: rd.err.Error(), Cause: rd.err, Read: ctx.Err() == nil})
		r.log().Error("read failed; property skipped this run", "property", site.Property.Name, "system", rd.system, "err", rd.err)
		return nil
	}
	in := Input{
		Now: opts.Now, Property: site.Property, Stays: slices.Concat(rd.stays, rd.moved, rd.unlistedOnce),
		Credentials: rd.creds, Backfill: rd.backfill, Rand: w.rand,
		Deferred: rd.deferred, Scope: rd.scope, UsedPINs: usedPINs(rd.creds), Siblings: rd.siblings, Unreadable: rd.unreadable,
	}
	in.Lent = r.lent(ctx, site, in.Stays, rd.creds, rd.siblings)
	byRef := staysByRef(in.Stays)
	in.KeyCarries = carries(site, byRef, rd.creds)
	plan, err := Compute(in)
	if err != nil {
		return err
	}
	if rd.backfill {
		// A backfill knows nothing of what it issued before: the
		// invites and accesses its plan would create are looked for
		// first, and those found are adopted (planned again with them).
		// A system that could not be read creates nothing this run
		// (applier.noCreate); its other work goes on.
		var held map[StayRef][]Held
		held, rd.unsurveyed = r.findHeld(ctx, site, plan, byRef, rd.creds)
		if len(held) > 0 {
			in.Held = held
			if plan, err = Compute(in); err != nil {
				return err
			}
		}
	}
	for _, s := range rd.unlisted {
		plan.Notes = append(plan.Notes, Note{Kind: NoteUnlisted, Stay: s.Ref, Room: s.RoomName, RoomID: s.RoomID, Arrival: s.Arrival, Departure: s.Departure,
			Detail: "the window's read left it out twice in a row, though its look-up by id shows it in the window: taken as cancelled, its credentials are withdrawn"})
	}
	for _, s := range rd.unlistedOnce {
		plan.Notes = append(plan.Notes, Note{Kind: NoteUnlistedOnce, Stay: s.Ref, Room: s.RoomName, RoomID: s.RoomID, Arrival: s.Arrival, Departure: s.Departure,
			Detail: "the window's read left it out, though its look-up by id shows it in the window: kept this run; taken as cancelled if the next read leaves it out too"})
	}
	// A backfill's reads are done, its look for what the systems hold
	// included: the properties sharing an account may price it now.
	w.doneReading()
	actions, held := plan.Actions, []*Action(nil)
	if err := unsafe(plan, site.sourceSystem()); err != nil && !opts.Force {
		w.failures = append(w.failures, Failure{Property: site.Property.Name, System: site.sourceSystem(), Err: err.Error(), Cause: err})
		if opts.Review != nil {
			// A saved plan is applied whole or not at all.
			r.log().Error("plan refused by the fail-safe; property not applied", "property", site.Property.Name, "err", err)
			w.refused = newPlanReport(plan)
			for _, a := range plan.Actions {
				w.refused.set(a, ResultSkipped, "refused by the fail-safe")
			}
			return nil
		}
		actions, held = holdWithdrawals(plan)
		r.log().Error("the fail-safe holds the plan's withdrawals and the other work of their stays; the rest is applied",
			"property", site.Property.Name, "held", len(held), "applied", len(actions), "err", err)
	}

	w.prices = priorityPrices(actions, site.maxBatch)
	w.donePlanning()

	for _, u := range w.shares {
		<-u.read
	}
	// Revocations go first across the properties sharing an account, not
	// only within each: those of the properties priced after this one
	// are kept from its other work (see purse.price).
	for _, u := range w.after {
		<-u.planned
	}
	for _, u := range w.before {
		<-u.priced
	}
	w.requests = requestsBySystem(actions, site.maxBatch)
	w.job = p.price(r, w, rd, plan, actions)
	w.job.held = held
	w.donePricing()

	if opts.DryRun {
		return nil
	}
	if gate != nil {
		<-gate
		if *stop != nil {
			return nil
		}
	}
	j := w.job
	j.ap = &applier{r: r, site: site, run: run, now: opts.at(), log: r.log().With("property", site.Property.Name), dead: map[System]error{},
		noCreate: rd.unsurveyed, notOurs: map[*Credential]bool{}, deferred: map[*Credential]string{},
		resends: func(sys System) func(revoke bool) bool { return p.resends(w, sys) }}
	if err := j.ap.apply(ctx, j.plan, j.pr, rd.resolved, j.kept, j.batches); err != nil {
		return err
	}
	// The stays snapshot is a record for people and reports (nothing plans
	// from it; history finds a room by its name there), so it is written
	// after the property's requests, not ahead of them in the state's one
	// writer: a run stopped mid-apply leaves the last run's snapshot, and
	// history finds this run's new stays by room id only until the next
	// whole run. It is of the whole read: a partial read would replace it
	// with a few stays.
	if rd.scope == nil {
		if err := r.Store.SaveStays(context.WithoutCancel(ctx), site.Property.Name, rd.stays); err != nil {
			return fmt.Errorf("save stays of %s: %w", site.Property.Name, err)
		}
	}
	return nil
}

// price budgets the actions of w's plan (those the fail-safe does not
// hold) against what the run's allowances have left and takes their
// requests off them (w.requests is their requests per system). The first
// time an account is priced, all of the run's reads on
// it are done (see siteWork.shares) and come off its allowance.
//
// The more urgent work of the properties sharing an account that are
// priced after this one (w.after) is kept from its less urgent work, as its
// reserve is from all but revocations: with too little left for all,
// every property's revocations go before any property's arrivals within
// 24 hours, those before any property's stays in house, and those before
// any later arrival, whatever the config's order.
func (p *purse) price(r *Runner, w *siteWork, rd siteRead, plan *Plan, actions []*Action) *siteJob {
	site, planned := w.site, w.requests
	job := &siteJob{site: site, rd: rd, plan: plan, pr: newPlanReport(plan)}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.priced[w] = true
	for _, acct := range site.accounts() {
		if al, ok := p.allow[acct]; ok && !p.counted[acct] {
			// The reads come off what is left, but never off the reserve
			// no write has spent (allowance.Kept): keysync reads to learn
			// what to withdraw, and the revocations a read finds still
			// get that reserve, even where the day's reads, this run's
			// and earlier ones', take it past its cap.
			al.Left = max(al.Left-(r.Meter.countOf(acct)-p.base[acct]), al.Kept)
			p.allow[acct] = al
			p.counted[acct] = true
		}
	}
	allow := site.allowances(p.allow)
	job.kept, job.deferred = budgetAhead(actions, allow, site.maxBatch, func(sys System, prio Priority) int {
		return p.urgentToCome(w, sys, prio)
	})
	job.batches = splitBatches(job.kept, site.maxBatch)
	for _, b := range job.batches {
		if al, ok := p.allow[site.account(b.System)]; ok {
			al.Left--
			p.allow[site.account(b.System)] = al
		}
	}
	for _, n := range planned {
		p.planned += n
	}
	if r.OnPlanned != nil {
		r.OnPlanned(p.planned)
	}
	return job
}

// resends is the re-send budget (WithResends) of w's batches for sys: each
// request it grants comes off the account's allowance, as the plan's
// requests did when priced; nil when the account has no budget. The
// request sent again decides (revoke): one carrying a revocation or
// cleanup may spend the reserve; any other keeps it, and the revocations
// of the properties sharing the account not priced yet, as price does,
// whatever else its batch carries.
func (p *purse) resends(w *siteWork, sys System) func(revoke bool) bool {
	acct := w.site.account(sys)
	p.mu.Lock()
	_, limited := p.allow[acct]
	p.mu.Unlock()
	if !limited {
		return nil
	}
	return func(revoke bool) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		al := p.allow[acct]
		floor := 0
		if !revoke {
			floor = al.Reserve + p.revokesToCome(w, sys)
		}
		if al.Left <= floor {
			return false
		}
		al.Left--
		p.allow[acct] = al
		return true
	}
}

// urgentToCome is what the work more urgent than prio (of a lower
// Priority) of the properties sharing sys's account with w and priced
// after it (w.after) costs there, for those not priced yet: price keeps it
// from w's work of priority prio, so every property's revocations go
// before any property's arrivals within 24 hours, those before any stay in
// house, and so on. p.mu is held.
func (p *purse) urgentToCome(w *siteWork, sys System, prio Priority) int {
	n := 0
	for _, u := range w.after {
		if !p.priced[u] && u.site.account(sys) == w.site.account(sys) {
			for q, bySys := range u.prices {
				if q < prio {
					n += bySys[sys]
				}
			}
		}
	}
	return n
}

// revokesToCome is what the revocations of the properties sharing sys's
// account with w and priced after it (w.after) cost there, for those not
// priced yet: price and resends keep it from w's work other than
// revocations. p.mu is held.
func (p *purse) revokesToCome(w *siteWork, sys System) int {
	n := 0
	for _, u := range w.after {
		if !p.priced[u] && u.site.account(sys) == w.site.account(sys) {
			n += u.prices[PriorityRevoke][sys]
		}
	}
	return n
}
