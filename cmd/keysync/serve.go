package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// serve stays up and reconciles on the config's schedule. Without a state
// file it backfills once at start; a tick that finds the previous run still
// going is skipped; SIGTERM stops it after the run in progress. With a
// listen address it also answers 3RPMS webhooks (queued in the state file,
// then coalesced into targeted runs), /livez, /readyz and /metrics, and it
// polls the Guestway properties that set poll_every.
func (env *environment) serve(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("serve", "usage: keysync serve --config FILE [--listen ADDR]\n\nexample: keysync serve --config /etc/keysync/keysync.yaml --listen 127.0.0.1:8080\n\nflags:\n")
	listen := fs.String("listen", "", "answer webhooks, /livez, /readyz and /metrics on this address (default: the config's listen)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default $KEYSYNC_LOG_LEVEL, else info)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *config == "" {
		return withCode(ExitConfig, errors.New("serve: --config FILE is required"))
	}
	log, err := newLogger(env.stderr, cmp.Or(*logLevel, env.getenv("KEYSYNC_LOG_LEVEL")))
	if err != nil {
		return withCode(ExitConfig, err)
	}
	cfg, err := env.loadShard(*config, sf, log)
	if err != nil {
		return err
	}
	if len(cfg.Properties) == 0 {
		return withCode(ExitConfig, errors.New("serve: this shard holds none of the config's properties; use fewer shards"))
	}
	addr := cmp.Or(*listen, cfg.Listen)
	if env.clock == nil {
		env.clock = reconcile.WallClock{}
	}

	var runMu sync.Mutex
	var lis *listener
	retries := newWholeRetries(ctx)
	defer retries.stop()
	// runLocked runs once; runMu is held. A whole run that leaves work a
	// retry may do schedules one, which runs unless another whole run
	// ended while it waited for runMu.
	var runLocked func(opts reconcile.Options)
	run := func(opts reconcile.Options) {
		runMu.Lock()
		defer runMu.Unlock()
		runLocked(opts)
	}
	runLocked = func(opts reconcile.Options) {
		start, began := env.clock.Now(), env.now()
		opts.Now = began
		rep, err := env.once(ctx, cfg, opts, log)
		switch {
		case err != nil:
			log.Error("reconcile failed", "mode", opts.Mode, "err", err)
		case rep.Partial():
			log.Warn("reconcile partly done; the next run retries", "run", rep.RunID, "failures", len(rep.Failures))
		}
		partial := opts.Targets != nil || opts.LookaheadDays > 0 // a few stays, not all
		if lis != nil {
			lis.finished(rep, start, err, partial)
			// A full run read every stay: unless a read failed (one that
			// failed run after run too, which no longer makes the run
			// partial), its events are covered.
			if err == nil && !rep.Partial() && len(rep.Failures) == 0 && !partial {
				lis.coverAll(ctx, began)
			}
		}
		if !partial && ctx.Err() == nil {
			readsFailed := err == nil && len(rep.Failures) > 0
			retries.after(env, runExit(cfg, rep, err), readsFailed, log, func(current func() bool) {
				runMu.Lock()
				defer runMu.Unlock()
				if current() {
					runLocked(reconcile.Options{Mode: reconcile.ModeRun})
				}
			})
		}
	}
	unfinished, err := env.notBackfilled(ctx, cfg)
	if err != nil {
		return withCode(ExitFailure, fmt.Errorf("serve: %w", err))
	}
	if len(unfinished) > 0 {
		log.Info("backfilling once before the schedule starts: no state file, or properties it has not completed a backfill of", "path", cfg.State, "properties", unfinished)
		run(reconcile.Options{Mode: reconcile.ModeBackfill})
		if ctx.Err() != nil {
			// Stopped during the backfill, which finished its requests in
			// flight and recorded what it did: the next start backfills
			// again what it did not complete.
			log.Info("stopped during the backfill")
			return nil
		}
	}

	if addr != "" {
		key, _, err := env.stateKey(cfg)
		if err != nil {
			return withCode(ExitConfig, fmt.Errorf("serve: %w", err))
		}
		queue, err := state.Open(ctx, cfg.State, state.Options{Key: key, CountAs: cfg.renamedAccounts()})
		if err != nil {
			return withCode(ExitFailure, fmt.Errorf("serve: open the state file for the event queue: %w", err))
		}
		defer queue.Close()
		// Under runMu: a retry of the backfill may be running.
		runMu.Lock()
		env.held = queue
		lis = newListener(env, cfg, log, queue, &runMu)
		runMu.Unlock()
		defer func() {
			runMu.Lock()
			env.held = nil
			runMu.Unlock()
		}()
		defer retries.stop() // before the queue closes: a retry runs on it
		lis.resume(ctx)
		bound, stop, err := lis.serveHTTP(ctx, addr)
		if err != nil {
			return err
		}
		defer stop()
		log.Info("listening", "addr", bound, "webhooks", "POST /webhooks/3rpms/{property}")
		if env.listening != nil {
			env.listening(bound)
		}
		done := make(chan struct{})
		go func() { defer close(done); lis.dispatch(ctx) }()
		defer func() { <-done }()
		select { // events queued before a stop are run now
		case lis.wake <- struct{}{}:
		default:
		}
	}

	l := cronLogger{log.With("component", "cron")}
	c := cron.New(
		cron.WithLocation(cfg.schedule.Location()),
		cron.WithLogger(l),
		cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)),
	)
	// The schedule runs once per scheduled wall-clock time, across
	// daylight-saving switches (internal/schedule).
	nightly := c.Schedule(cfg.schedule, cron.FuncJob(func() { run(reconcile.Options{Mode: reconcile.ModeRun}) }))
	// Guestway sends no webhooks: poll a short look-ahead instead.
	for _, p := range guestwayPolls(cfg) {
		opts := reconcile.Options{Mode: reconcile.ModeTargeted, Targets: map[string][]string{p.property: nil}, LookaheadDays: p.days}
		c.Schedule(cron.Every(p.every), cron.FuncJob(func() { run(opts) }))
		log.Info("polling Guestway", "property", p.property, "every", p.every.String(), "days", p.days)
	}
	c.Start()
	log.Info("serving", "schedule", cfg.Schedule, "timezone", cfg.schedule.Location().String(), "next", c.Entry(nightly).Next.Format(time.RFC3339))
	<-ctx.Done()
	log.Info("stopping: a run in progress, if any, finishes first")
	<-c.Stop().Done()
	retries.stop()
	return nil
}

// notBackfilled names the properties the state file has not completed a
// backfill of: every one when there is no file yet. serve backfills them
// before it starts its schedule (a first start, or one after a backfill was
// stopped or could not read everything).
func (env *environment) notBackfilled(ctx context.Context, cfg *Config) ([]string, error) {
	p, err := state.Peek(ctx, cfg.State, env.stateBusy)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var out []string
	for _, prop := range cfg.Properties {
		done, err := p.Backfilled(ctx, prop.Name)
		if err != nil {
			return nil, err
		}
		if !done {
			out = append(out, prop.Name)
		}
	}
	return out, nil
}

// guestwayPoll is one look-ahead serve polls: a targeted run of property,
// every so often, over days from today.
type guestwayPoll struct {
	property string
	every    time.Duration
	days     int
}

// guestwayPolls is what serve polls: each Guestway property with
// poll_every, but a split organisation once, as its first polling
// property, at its members' shortest interval over their longest
// look-ahead. A targeted run of one of them takes in the others; a poll of
// each would do all of it again.
func guestwayPolls(cfg *Config) []guestwayPoll {
	leader := map[int]int{} // a split organisation's members → its first
	for _, idx := range cfg.splitOrgs() {
		for _, i := range idx {
			leader[i] = idx[0]
		}
	}
	var out []guestwayPoll
	at := map[int]int{} // leader → its poll in out
	for i, p := range cfg.Properties {
		g := p.Guestway
		if g == nil || g.pollEvery <= 0 {
			continue
		}
		l, split := leader[i]
		if !split {
			l = i
		}
		if j, ok := at[l]; ok {
			out[j].every, out[j].days = min(out[j].every, g.pollEvery), max(out[j].days, g.PollDays)
			continue
		}
		at[l] = len(out)
		out = append(out, guestwayPoll{property: p.Name, every: g.pollEvery, days: g.PollDays})
	}
	return out
}

// cronLogger adapts slog to cron.Logger.
type cronLogger struct{ log *slog.Logger }

// Info implements cron.Logger.
func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug(msg, kv...) }

// Error implements cron.Logger.
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(kv, "err", err)...)
}

// warnShifts warns about the scheduled runs a daylight-saving switch moves
// in the coming year: they still run once, but not at the time written.
func warnShifts(cfg *Config, log *slog.Logger, now time.Time) {
	for _, sh := range cfg.schedule.Shifts(now, now.AddDate(1, 0, 0)) {
		what := "happens twice (it runs once, the first time)"
		if sh.Gap {
			what = "does not exist (it runs when the clock jumps past it)"
		}
		log.Warn("schedule: a daylight-saving switch moves a run; a time outside 01:00-03:59 (such as 04:15) avoids it",
			"wall_time", sh.Wall, "zone", cfg.schedule.Location().String(), "detail", what, "runs_at", sh.At.Format(time.RFC3339))
	}
}

// wholeRetryAfter is how long serve waits, by default, before it runs
// again after a whole run (the nightly one, the backfill at start, or a
// retry) that failed or left work undone (exit 1, 3 or 4): a 3RPMS outage
// at the nightly run's minute would otherwise leave the day's arrivals
// without keys until the next night. Each retry that fails again waits
// twice as long, up to maxWholeRetries times; then the schedule takes
// over. A run that needs a person (exit 2, 5 or 6) is not retried:
// retrying does not fix it; but for a read that fails run after run
// (exit 6 once three whole runs in a row failed it), whose outage may end.
const wholeRetryAfter = 10 * time.Minute

// maxWholeRetries bounds the retries of one failed whole run (10, 20, 40
// and 80 minutes after it, by default: a few reads each, inside the day's
// budget), as the Kubernetes CronJob's backoffLimit bounds its retries.
const maxWholeRetries = 4

// wholeRetries schedules serve's retries of a whole run that left work
// undone: at most one is waiting at a time, and a whole run that ends
// otherwise (the nightly run, say) cancels it.
type wholeRetries struct {
	ctx     context.Context // ends the wait for a retry
	cancel  context.CancelFunc
	mu      sync.Mutex
	seq     int // whole runs finished
	retried int // retries since the last whole run that needed none
	wg      sync.WaitGroup
}

// newWholeRetries returns the retries of a serve that stops with ctx.
func newWholeRetries(ctx context.Context) *wholeRetries {
	ctx, cancel := context.WithCancel(ctx)
	return &wholeRetries{ctx: ctx, cancel: cancel}
}

// after is told how a whole run ended (its exit code, and whether a
// system failed: a read failing run after run is a problem for a person,
// exit 6, and still retried) and, when it left work a retry may do, waits
// and calls again, which runs the retry if current still says no other
// whole run ended meanwhile (asked once again holds what it needs).
func (w *wholeRetries) after(env *environment, code int, failed bool, log *slog.Logger, again func(current func() bool)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	switch {
	case code == ExitFailure, code == ExitPartial, code == ExitLocked, code == ExitAttention && failed:
	default:
		w.retried = 0
		return
	}
	if w.retried >= maxWholeRetries {
		log.Warn("whole run left work undone again; no more retries before the schedule's next run", "retries", w.retried)
		w.retried = 0
		return
	}
	wait := cmp.Or(env.wholeRetry, wholeRetryAfter) << w.retried
	w.retried++
	seq := w.seq
	log.Info("whole run left work undone; running again", "in", wait.String(), "retry", w.retried, "of", maxWholeRetries)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if env.clock.Sleep(w.ctx, wait) != nil {
			return
		}
		again(func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.seq == seq && w.ctx.Err() == nil // no other whole run ended meanwhile
		})
	}()
}

// stop drops a retry still waiting and waits for one running: serve
// returns after its runs, and before the state file it runs on closes.
func (w *wholeRetries) stop() {
	w.cancel()
	w.wg.Wait()
}
