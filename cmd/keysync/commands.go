package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/metrics"
	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// runFlags are the flags plan, run and backfill share.
type runFlags struct {
	config      string
	now         string
	json        bool
	showSecrets bool
	logLevel    string
	force       bool
	metricsFile string
	stays       string
	property    string
	shard       shardFlags
	// out is plan's --out; planFile is apply's argument.
	out      string
	planFile string
}

func (env *environment) parseRunFlags(name string, args []string) (*runFlags, error) {
	f := &runFlags{}
	usage := fmt.Sprintf("usage: keysync %s --config FILE [flags]\n\nexample: keysync %s --config /etc/keysync/keysync.yaml --now 2026-11-24T02:00:00+01:00\n\nflags:\n", name, name)
	if name == "apply" {
		usage = "usage: keysync apply --config FILE [flags] PLAN\n\nApplies a plan `keysync plan --out PLAN` saved, if it still holds; else refuses (exit 5) naming the stays that changed.\n\nexample: keysync apply --config /etc/keysync/keysync.yaml tonight.plan\n\nflags:\n"
	}
	fs := env.flagSet(name, usage)
	fs.StringVar(&f.config, "config", "", "config file (required)")
	fs.StringVar(&f.now, "now", "", "act as if it were this RFC 3339 instant, e.g. to preview tomorrow night (default: now)")
	fs.BoolVar(&f.json, "json", false, "print the plan or report as JSON (documented in the README)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default $KEYSYNC_LOG_LEVEL, else info)")
	fs.StringVar(&f.metricsFile, "metrics-file", "", "write the run's Prometheus metrics to this file (atomically; for the node exporter's textfile collector, name it *.prom)")
	fs.BoolVar(&f.force, "force", false, "apply even the withdrawals the fail-safe holds (far fewer stays than recorded)")
	f.shard.register(fs)
	if name == "run" {
		fs.StringVar(&f.stays, "stay", "", "a targeted run of these stays only (source ids, comma-separated), as a webhook event triggers one")
		fs.StringVar(&f.property, "property", "", "with --stay: the property the stays belong to (default: every property)")
	}
	if name == "plan" {
		fs.BoolVar(&f.showSecrets, "show-secrets", false, "show the smart-lock PINs Guestway holds and, with --out, the PINs keysync apply will issue")
		fs.StringVar(&f.out, "out", "", "save the plan to this new `FILE` (mode 600) for keysync apply, with the PINs it drew sealed under the state key")
	}
	if help, err := parseFlags(fs, args); help {
		return nil, errHelpShown
	} else if err != nil {
		return nil, err
	}
	if name == "apply" {
		// The plan file, and any flags given after it.
		if rest := fs.Args(); len(rest) > 0 {
			f.planFile = rest[0]
			if err := fs.Parse(rest[1:]); err != nil {
				return nil, withCode(ExitConfig, errQuiet)
			}
		}
		if f.planFile == "" || fs.NArg() > 0 {
			return nil, withCode(ExitConfig, errors.New("apply: give the one plan file `keysync plan --out FILE` wrote: keysync apply --config CONFIG FILE"))
		}
	} else if fs.NArg() > 0 {
		return nil, withCode(ExitConfig, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0)))
	}
	if f.config == "" {
		return nil, withCode(ExitConfig, fmt.Errorf("%s: --config FILE is required", name))
	}
	return f, nil
}

// clock returns the run's instant: --now, or the wall clock.
func (f *runFlags) clock(wall func() time.Time) (time.Time, error) {
	if f.now == "" {
		return wall(), nil
	}
	t, err := time.Parse(time.RFC3339, f.now)
	if err != nil {
		return time.Time{}, withCode(ExitConfig, fmt.Errorf("--now %q: want RFC 3339, like 2026-11-24T02:00:00+01:00", f.now))
	}
	return t, nil
}

// reconcile implements plan, run, backfill and apply (a run of a saved
// plan).
func (env *environment) reconcile(ctx context.Context, mode string, args []string) error {
	f, err := env.parseRunFlags(mode, args)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	if err != nil {
		return err
	}
	var saved *savedPlan
	var actsAt time.Time // apply of a saved plan: reconcile.Options.At
	if mode == "apply" {
		if saved, err = readSavedPlan(f.planFile); err != nil {
			return withCode(ExitConfig, err)
		}
		mode = string(reconcile.ModeRun)
		if f.now == "" {
			// The plan's instant: the windows it computed.
			switch age := env.now().Sub(saved.Now); {
			case age > savedPlanMaxAge:
				return withCode(ExitConfig, fmt.Errorf("apply %s: the plan was made for %s, %s ago (more than %s); make and review a new plan",
					f.planFile, saved.Now.Format(time.RFC3339), age.Round(time.Minute), savedPlanMaxAge))
			case age < -savedPlanMaxAhead:
				// A plan made with plan --now for a later instant: applied
				// now, it would withdraw what guests hold until then.
				return withCode(ExitConfig, fmt.Errorf("apply %s: the plan was made for %s, %s from now; apply acts at the plan's instant: apply it then, or give --now to act for that instant now",
					f.planFile, saved.Now.Format(time.RFC3339), (-age).Round(time.Minute)))
			}
			f.now = saved.Now.Format(time.RFC3339Nano)
			// It acts now, though: what it records (history, the
			// request ledger) is when it happened.
			actsAt = env.now()
		}
	}
	now, err := f.clock(env.now)
	if err != nil {
		return err
	}
	log, err := newLogger(env.stderr, cmp.Or(f.logLevel, env.getenv("KEYSYNC_LOG_LEVEL")))
	if err != nil {
		return withCode(ExitConfig, err)
	}
	cfg, err := env.loadShard(f.config, &f.shard, log)
	if err != nil {
		return err
	}
	if saved != nil && saved.Shard != cfg.shardID() {
		// Before anything is written: another shard's file is not the
		// record the plan was made against.
		return withCode(ExitConfig, fmt.Errorf("apply %s: the plan was made for %s, not %s; apply it with the --shard it was made with, or make a new plan",
			f.planFile, shardWords(saved.Shard), shardWords(cfg.shardID())))
	}
	if saved != nil && saved.Forced && !f.force {
		// Else the fail-safe refuses it at apply, which would read as a
		// plan that no longer holds.
		return withCode(ExitUnsafe, fmt.Errorf("apply %s: the plan was made with --force, past the fail-safe; apply it with --force too, or make and review a new plan", f.planFile))
	}
	if len(cfg.Properties) == 0 {
		alone, err := heldAlone(ctx, cfg, env.stateBusy)
		if err != nil {
			return err
		}
		if len(alone) == 0 {
			return env.nothingToDo(ctx, f, cfg, now, log)
		}
		// Its volume holds live credentials no other shard sees: the run
		// goes on, with no property, to name them.
		log.Warn("this shard holds none of the config's properties, but its volume, which no other shard sees, holds live credentials: naming them", "properties", alone)
	}
	opts := reconcile.Options{Mode: reconcile.Mode(mode), Now: now, At: actsAt, Force: f.force}
	var key *seal.Key
	var position string
	// checks look at the record under the run lock, before the run writes.
	var checks []func(context.Context, reconcile.Store) error
	if f.out != "" || saved != nil {
		if key, _, err = env.stateKey(cfg); err != nil {
			return withCode(ExitConfig, err)
		}
	}
	if f.out != "" {
		checks = append(checks, func(ctx context.Context, db reconcile.Store) error {
			if p, ok := db.(interface{ Path() string }); !ok || p.Path() != cfg.State {
				// openState planned against a temporary file: there is none.
				return withCode(ExitConfig, cfg.noState(fmt.Errorf("state: %s: %w\nplan --out needs the state file: run `keysync backfill --config FILE` first", cfg.State, state.ErrNoState)))
			}
			var err error
			if position, err = positionOf(ctx, db); err != nil {
				return withCode(ExitFailure, err)
			}
			return nil
		})
	}
	if saved != nil {
		if saved.Key != key.ID() {
			return withCode(ExitConfig, fmt.Errorf("apply %s: its PINs are sealed under state key %s, not the current key %s (a rekey since?); make a new plan", f.planFile, saved.Key, key.ID()))
		}
		checks = append(checks, func(ctx context.Context, db reconcile.Store) error {
			position, err := positionOf(ctx, db)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if position != saved.Position {
				return withCode(ExitUnsafe, fmt.Errorf("apply %s: %w: the record changed since the plan was made (%s; now %s): a run acted in between; make and review a new plan",
					f.planFile, reconcile.ErrStalePlan, saved.Position, position))
			}
			return nil
		})
		opts.Review = saved.review(key)
	}
	if f.stays != "" {
		if opts.Targets, err = targets(cfg, f.property, f.stays); err != nil {
			return withCode(ExitConfig, err)
		}
		opts.Mode, opts.ReadBack = reconcile.ModeTargeted, true
	}
	if f.now != "" && !f.force && opts.Mode != reconcile.ModePlan {
		checks = append(checks, func(ctx context.Context, db reconcile.Store) error { return pastNow(ctx, db, now) })
	}
	var planFile *os.File
	if f.out != "" {
		if planFile, err = createPlanFile(f.out); err != nil {
			return withCode(ExitConfig, err)
		}
	}
	start := env.clock.Now()
	rep, err := env.once(ctx, cfg, opts, log, checks...)
	if planFile != nil {
		if err == nil {
			err = savePlan(rep, position, cfg.shardID(), key, f.force, planFile)
		}
		if err != nil {
			planFile.Close()
			os.Remove(f.out)
			f.out = "" // the PINs shown would be issued by no one
		} else {
			env.planSaved(f, cfg)
		}
	}
	if rep != nil {
		if perr := env.print(rep, f); perr != nil && err == nil {
			err = perr
		}
	}
	if err == nil {
		err = reportError(cfg, rep)
	}
	if f.metricsFile != "" {
		if merr := env.writeMetrics(ctx, f.metricsFile, cfg, rep, start, exitCode(err)); merr != nil {
			log.Error("could not write the metrics file", "path", f.metricsFile, "err", merr)
		}
	}
	return err
}

// nothingToDo ends the run of a shard that holds none of the config's
// properties (more shards than properties, say after some were removed):
// it succeeds, so an Indexed Job's index does not fail every night, and
// says so in its metrics, so that its last success does not go stale and
// raise the alert. plan --out saves its empty plan, which apply applies as
// the nothing it is.
func (env *environment) nothingToDo(ctx context.Context, f *runFlags, cfg *Config, now time.Time, log *slog.Logger) error {
	if !f.json {
		fmt.Fprintf(env.stdout, "Nothing to do: shard %s holds none of the config's properties.\n", cfg.shardID())
	}
	if f.out != "" {
		file, err := createPlanFile(f.out)
		if err != nil {
			return withCode(ExitConfig, err)
		}
		empty := &savedPlan{Version: savedPlanVersion, Now: now, Shard: cfg.shardID(), Properties: map[string][]savedAction{}}
		if err := empty.writeTo(file); err != nil {
			return withCode(ExitConfig, err)
		}
		env.planSaved(f, cfg)
	}
	if f.metricsFile != "" {
		if err := env.writeMetrics(ctx, f.metricsFile, cfg, nil, env.clock.Now(), ExitOK); err != nil {
			log.Error("could not write the metrics file", "path", f.metricsFile, "err", err)
		}
	}
	return nil
}

// planSaved says where plan --out saved the plan and how to apply it, as
// a command to run as printed.
func (env *environment) planSaved(f *runFlags, cfg *Config) {
	shard := ""
	if id := cfg.shardID(); id != "" {
		shard = " --shard " + id
	}
	// A plan saved with --force is applied only with it.
	if f.force {
		shard += " --force"
	}
	fmt.Fprintf(env.stderr, "keysync: plan saved to %s; review it, then: keysync apply --config %s%s %s\n", f.out, shellQuote(f.config), shard, shellQuote(f.out))
}

// shardID is the --shard I/N the config was cut to, or "" unsharded: what
// a saved plan records and the metrics' shard label.
func (c *Config) shardID() string {
	if !c.shard.on() {
		return ""
	}
	return c.shard.String()
}

// shellQuote is s as one word of a POSIX shell command: as it is when it
// holds nothing a shell reads otherwise, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shardWords names a saved plan's shard for a person.
func shardWords(shard string) string {
	if shard == "" {
		return "the unsharded state file"
	}
	return "shard " + shard
}

// savePlan writes a dry run's plan to the --out file, unless a property
// could not be planned whole (a failed read, the fail-safe): a saved plan
// holds every property's work, or none. forced says it was planned with
// --force, which its apply then needs too.
func savePlan(rep *reconcile.Report, position, shard string, key *seal.Key, forced bool, file *os.File) error {
	for _, f := range rep.Failures {
		code := ExitPartial
		if errors.Is(f.Cause, reconcile.ErrUnsafe) {
			code = ExitUnsafe
		}
		return withCode(code, fmt.Errorf("plan --out: not saved: %s: %s", strings.TrimSpace(f.Property+" "+string(f.System)), f.Err))
	}
	if err := newSavedPlan(rep, position, shard, key, forced).writeTo(file); err != nil {
		return withCode(ExitConfig, err)
	}
	return nil
}

// endRun records a recorded run's exit status and duration in the state
// file the run used, for `keysync status`: err is the run's failure, else
// the report decides (reportError). The run's outcome is in the state
// already; failing to add these is logged, not fatal.
func endRun(ctx context.Context, db reconcile.Store, cfg *Config, rep *reconcile.Report, err error, took time.Duration, log *slog.Logger) {
	ender, ok := db.(interface {
		EndRun(ctx context.Context, id int64, exitCode int, took time.Duration) error
	})
	if !ok || rep == nil || rep.RunID == 0 || rep.DryRun {
		return
	}
	if err == nil {
		err = reportError(cfg, rep)
	}
	if err := ender.EndRun(context.WithoutCancel(ctx), rep.RunID, exitCode(err), took); err != nil {
		log.Warn("could not record the run's exit status for `keysync status`", "run", rep.RunID, "err", err)
	}
}

// pastNow refuses a --now more than a day before the last recorded run: a
// run in the past keys stays that have departed since. A run without
// --now acts at the wall clock, which is never "in the past".
func pastNow(ctx context.Context, db reconcile.Store, now time.Time) error {
	runs, ok := db.(interface {
		LastRunAt(ctx context.Context) (time.Time, error)
	})
	if !ok {
		return nil
	}
	last, err := runs.LastRunAt(ctx)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if !last.IsZero() && now.Before(last.Add(-24*time.Hour)) {
		return withCode(ExitConfig, fmt.Errorf("--now %s is more than a day before the last recorded run (%s): a run in the past would key stays that have departed since; add --force if that is really what you want",
			now.Format(time.RFC3339), last.Format(time.RFC3339)))
	}
	return nil
}

// targets turns --stay and --property into a targeted run's stays per
// property.
func targets(cfg *Config, property, stays string) (map[string][]string, error) {
	var ids []string
	for _, id := range strings.Split(stays, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("--stay: give one or more stay ids, comma-separated")
	}
	out := map[string][]string{}
	for _, p := range cfg.Properties {
		if property == "" || p.Name == property {
			out[p.Name] = ids
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--property %q: no such property in the config", property)
	}
	return out, nil
}

// writeMetrics writes a run's metrics to a node-exporter textfile. The
// last success time of a run that failed comes from the state's runs. A
// run refused before it had a report (the lock held, no state file) keeps
// the last whole run's gauges (problems, arrivals without a credential),
// as serve's /metrics does: writing them as zeros would clear their
// alerts until the next run.
func (env *environment) writeMetrics(ctx context.Context, path string, cfg *Config, rep *reconcile.Report, start time.Time, code int) error {
	run := metrics.Run{Report: rep, Start: start, End: env.clock.Now(), ExitCode: code}
	m := metrics.New(cfg.shardID())
	if !metrics.Succeeded(code) || rep == nil || rep.DryRun {
		if db, err := state.Open(ctx, cfg.State, state.Options{ReadOnly: true}); err == nil {
			if at, err := db.LastSuccessAt(ctx); err == nil {
				run.LastSuccess = at
			}
			if rep == nil {
				m.Resume(lastWholeRun(ctx, db))
			}
			db.Close()
		}
	}
	m.Observe(run)
	return m.WriteFile(path)
}

// lastWholeRun is, for the metrics, the state's last whole run (not a
// plan, nor a webhook's) that recorded how it ended, with its report; the
// zero Run when there is none.
func lastWholeRun(ctx context.Context, db *state.DB) metrics.Run {
	var run metrics.Run
	if r, ok, err := db.LastWholeRun(ctx); err == nil && ok {
		run.Start, run.End, run.ExitCode = r.StartedAt, r.StartedAt.Add(r.Duration), r.ExitCode
		var rep reconcile.Report
		if r.Report != nil && json.Unmarshal(r.Report, &rep) == nil {
			run.Report = &rep
		}
	}
	return run
}

// loadConfig loads the config and warns when others can read it or when a
// daylight-saving switch moves one of its scheduled runs.
func (env *environment) loadConfig(path string, log *slog.Logger) (*Config, error) {
	cfg, err := LoadConfig(path, env.getenv)
	if err != nil {
		return nil, withCode(ExitConfig, err)
	}
	warnConfig(path, cfg, log, env.now())
	return cfg, nil
}

// warnConfig warns when others can read the config file at path or when a
// daylight-saving switch moves one of cfg's scheduled runs: every command
// that reads the config says so.
func warnConfig(path string, cfg *Config, log *slog.Logger, now time.Time) {
	// Group bits are allowed: a Kubernetes ConfigMap or Secret mounted for
	// the pod's group, or a systemd credential, is mode 0440.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 != 0 {
		log.Warn("config file is readable by other users; it may hold secrets (chmod 600)", "path", path, "mode", fi.Mode().Perm().String())
	}
	warnShifts(cfg, log, now)
}

// loadShard loads the config and narrows it to the shard the flags name,
// if any (see applyShard).
func (env *environment) loadShard(path string, sf *shardFlags, log *slog.Logger) (*Config, error) {
	cfg, spec, err := env.shardedConfig(path, sf, func(path string) (*Config, error) { return env.loadConfig(path, log) })
	if err != nil {
		return nil, err
	}
	if spec.on() && len(cfg.Properties) == 0 {
		log.Warn("this shard holds none of the config's properties: nothing to do (use fewer shards)", "shard", spec.String())
		return cfg, nil
	}
	if spec.on() {
		names := make([]string, len(cfg.Properties))
		for i, p := range cfg.Properties {
			names[i] = p.Name
		}
		log.Info("shard", "shard", spec.String(), "state", cfg.State, "properties", strings.Join(names, ","))
	}
	return cfg, nil
}

// once performs one run of the given mode: lock (not for plan), open the
// state, run the checks on it (any error stops the run before it writes),
// wire the adapters, reconcile.
func (env *environment) once(ctx context.Context, cfg *Config, opts reconcile.Options, log *slog.Logger, checks ...func(context.Context, reconcile.Store) error) (*reconcile.Report, error) {
	start := env.clock.Now()
	mode, now := opts.Mode, opts.Now
	at := opts.At // when it acts: what it records and counts is then
	if at.IsZero() {
		at = now
	}
	dry := mode == reconcile.ModePlan
	opts.DryRun = dry
	if err := cfg.shardedLayout(); err != nil {
		return nil, withCode(ExitConfig, err)
	}
	key, err := env.runKey(cfg, mode, log)
	if err != nil {
		return nil, err
	}
	if !dry {
		lock, err := state.Lock(cfg.State)
		if err != nil {
			if errors.Is(err, state.ErrLocked) {
				return nil, withCode(ExitLocked, err)
			}
			return nil, withCode(ExitFailure, err)
		}
		defer lock.Unlock()
	}
	db, closeDB, err := env.openState(ctx, cfg, key, mode, log)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	// A plan against the state file itself writes nothing to it (it holds
	// no lock): there, carryOver only checks. Targeted runs (webhooks,
	// polls) leave it to the whole runs: which file holds a property's
	// record changes only with the config or N, and they come often.
	write := !dry
	if p, ok := db.(interface{ Path() string }); ok && p.Path() != cfg.State {
		write = true // a plan's temporary file, before the first backfill
	}
	// The checks (a saved plan's position) look at the record the plan was
	// made against, before a carry-over changes it; a run that then plans
	// otherwise is refused by the plan's review.
	for _, check := range checks {
		if err := check(ctx, db); err != nil {
			return nil, err
		}
	}
	var stale []staleRecord
	var quiet map[string]bool
	if mode != reconcile.ModeTargeted {
		if stale, quiet, err = carryOver(ctx, cfg, db, key, env.stateBusy, write, at, log); err != nil {
			return nil, err
		}
	}
	meter := &reconcile.Meter{Clock: env.clock}
	env.limiters.seedFrom(ctx, db, at, env.clock, log)
	runner, err := env.buildRunner(cfg, db, log, meter)
	if err != nil {
		return nil, withCode(ExitConfig, err)
	}
	runner.Elsewhere = func(property string) bool { return quiet[property] }
	if pr := startProgress(env.stderr, meter); pr != nil {
		runner.OnPlanned = func(n int) { pr.planned.Store(int64(n)) }
		defer pr.finish()
	}
	log.Info("reconcile starting", "mode", mode, "now", now.Format(time.RFC3339), "properties", len(cfg.Properties))
	rep, err := runner.Run(ctx, opts)
	if err != nil {
		err = withCode(ExitFailure, err)
	} else {
		// A plan against an older record than another file holds is not
		// what the run will do: it takes that record over first. Said as
		// a failure of the property, so plan --out saves no such plan.
		for _, r := range stale {
			rep.Failures = append(rep.Failures, reconcile.Failure{Property: r.property,
				Err: fmt.Sprintf("this plan is against an older record of the property than %s holds: the next run or backfill takes that one over first, and may do more than planned here; plan again after it", r.from)})
		}
	}
	endRun(ctx, db, cfg, rep, err, env.clock.Now().Sub(start), log)
	if err != nil {
		return rep, err
	}
	log.Info("reconcile finished", "run", rep.RunID, "actions", len(rep.Actions()), "partial", rep.Partial())
	return rep, nil
}

// openState opens the state file as the mode needs: run requires it,
// backfill creates it, plan reads it and appends to its request ledger
// only (or, before the first backfill, plans against an empty temporary
// one, whose ledger goes with it). key seals and opens its secrets.
func (env *environment) openState(ctx context.Context, cfg *Config, key *seal.Key, mode reconcile.Mode, log *slog.Logger) (reconcile.Store, func(), error) {
	path := cfg.State
	if env.held != nil && env.held.Path() == path {
		return env.held, func() {}, nil
	}
	renamed := cfg.renamedAccounts()
	opts := state.Options{Create: mode == reconcile.ModeBackfill, BusyTimeout: env.stateBusy, Key: key, CountAs: renamed}
	db, err := state.Open(ctx, path, opts)
	if errors.Is(err, seal.ErrNoKey) || errors.Is(err, seal.ErrWrongKey) {
		return nil, nil, withCode(ExitConfig, err)
	}
	if err != nil && mode == reconcile.ModePlan && !errors.Is(err, state.ErrNoState) && !errors.Is(err, state.ErrCorrupt) {
		// A state file plan may read but not write (another user's, a
		// read-only mount): plan anyway, without recording its requests.
		if ro, rerr := state.Open(ctx, path, state.Options{ReadOnly: true, BusyTimeout: env.stateBusy, Key: key, CountAs: renamed}); rerr == nil {
			log.Warn("state file is not writable; planning without recording this plan's requests in the daily ledger", "path", path, "err", err)
			return ledgerless{ro}, func() { ro.Close() }, nil
		}
	}
	switch {
	case err == nil:
		return db, func() { db.Close() }, nil
	case errors.Is(err, state.ErrNoState) && mode == reconcile.ModePlan:
		log.Warn("no state file yet; planning as a first backfill would, without checking which existing keys are ours", "path", path)
		tmp, terr := os.MkdirTemp("", "keysync-plan-")
		if terr != nil {
			return nil, nil, withCode(ExitFailure, terr)
		}
		db, err := state.Open(ctx, filepath.Join(tmp, "plan.db"), state.Options{Create: true, Key: key})
		if err != nil {
			os.RemoveAll(tmp)
			return nil, nil, withCode(ExitFailure, err)
		}
		return db, func() { db.Close(); os.RemoveAll(tmp) }, nil
	case errors.Is(err, state.ErrNoState):
		return nil, nil, withCode(ExitConfig, cfg.noState(err))
	}
	return nil, nil, withCode(ExitFailure, err)
}

// runKey returns the state key a run of mode uses. backfill creates the key
// file when there is neither a key nor a state file; plan before the first
// backfill plans with a key of its own, which goes with its temporary
// state. Otherwise a missing key stops the run before anything is written:
// issuing every credential again is never the answer to a lost key.
func (env *environment) runKey(cfg *Config, mode reconcile.Mode, log *slog.Logger) (*seal.Key, error) {
	key, _, err := env.stateKey(cfg)
	if err == nil {
		return key, nil
	}
	_, serr := os.Stat(cfg.State)
	fresh := errors.Is(serr, fs.ErrNotExist)
	switch {
	case !errors.Is(err, seal.ErrNoKey):
		return nil, withCode(ExitConfig, err)
	case fresh && mode == reconcile.ModeBackfill:
		key, err := seal.Create(cfg.StateKeyFile)
		if errors.Is(err, fs.ErrExist) {
			// Another shard's backfill created it a moment ago.
			if key, _, err = env.stateKey(cfg); err != nil {
				return nil, withCode(ExitConfig, err)
			}
			return key, nil
		}
		if err != nil {
			return nil, withCode(ExitFailure, err)
		}
		log.Info("created the state key file; back it up, apart from the state file", "path", cfg.StateKeyFile)
		return key, nil
	case fresh && mode == reconcile.ModePlan:
		key, _, err := seal.Generate()
		if err != nil {
			return nil, withCode(ExitFailure, err)
		}
		return key, nil
	case fresh:
		return nil, nil // opening the state says it is missing, and what to do
	}
	return nil, withCode(ExitConfig, err)
}

// ledgerless is a read-only state file for plan: saving only requests (all
// a dry run saves) does nothing.
type ledgerless struct{ *state.DB }

// Save implements reconcile.Store.
func (l ledgerless) Save(ctx context.Context, creds []*reconcile.Credential, audit []reconcile.Audit, requests ...reconcile.RequestRecord) error {
	if len(creds) == 0 && len(audit) == 0 {
		return nil
	}
	return l.DB.Save(ctx, creds, audit, requests...)
}

// reportError turns a finished run's report into the exit status.
func reportError(cfg *Config, rep *reconcile.Report) error {
	// Every credential refused, one line each: properties that share a
	// credential all name it.
	var refused []error
	for _, f := range rep.Failures {
		switch {
		case errors.Is(f.Cause, reconcile.ErrUnauthorized):
			refused = append(refused, fmt.Errorf("%s: %s %s: %s", cfg.credentialField(f.Property, f.System), f.Property, f.System, f.Err))
		case errors.Is(f.Cause, reconcile.ErrConfig):
			refused = append(refused, fmt.Errorf("%s %s: %s", f.Property, f.System, f.Err))
		}
	}
	if len(refused) > 0 {
		return withCode(ExitConfig, errors.Join(refused...))
	}
	// A system that could not be reached at all is a configuration
	// problem, not a partial run: one line per system naming the field to
	// check. The transports decide it (package reach): a wrong URL (a host
	// that does not resolve, a 404 on the endpoint) is ExitConfig, a server
	// that never accepted a connection ExitFailure.
	for _, c := range []struct {
		cond error
		code int
		what string
	}{
		{reconcile.ErrEndpoint, ExitConfig, "the URL is wrong (its host does not resolve, or nothing serves the API there); fix it"},
		{reconcile.ErrUnreachable, ExitFailure, "no connection could be made; check the URL's host and port, and that the server is up and reachable from here"},
	} {
		var lines []error
		for _, f := range rep.Failures {
			var he *httpapi.Error
			switch {
			case !errors.Is(f.Cause, c.cond):
			case errors.As(f.Cause, &he) && he.Field != "":
				// Another field than the URL: the error says what.
				lines = append(lines, fmt.Errorf("%s: %s %s: %s", cfg.field(f.Property, he.Field), f.Property, f.System, f.Err))
			default:
				lines = append(lines, fmt.Errorf("%s: %s %s: %s (%s)", cfg.urlField(f.Property, f.System), f.Property, f.System, c.what, f.Err))
			}
		}
		if len(lines) > 0 {
			return withCode(c.code, errors.Join(lines...))
		}
	}
	for _, f := range rep.Failures {
		if errors.Is(f.Cause, reconcile.ErrStalePlan) {
			return withCode(ExitUnsafe, errors.New(f.Err))
		}
	}
	for _, f := range rep.Failures {
		if errors.Is(f.Cause, reconcile.ErrUnsafe) {
			return withCode(ExitUnsafe, fmt.Errorf("%s: %s", f.Property, f.Err))
		}
	}
	if rep.Partial() {
		return withCode(ExitPartial, errors.New("some work was not done; see the report (the next run retries it)"))
	}
	if items := needsAPerson(rep); len(items) > 0 {
		return withCode(ExitAttention, fmt.Errorf("a person is needed (see the report's Needs a person): %s", strings.Join(items, "; ")))
	}
	return nil
}

// needsAPerson is a line for each item of the report's Needs a person, each
// naming its property: a problem (an action failing run after run, a
// removed property's live credentials), then a stay arriving soon that
// keysync cannot give its credential.
func needsAPerson(rep *reconcile.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		switch p.Kind {
		case reconcile.ProblemRepeatedFailure:
			out = append(out, fmt.Sprintf("%s: %s %s for stay %s failed in %d runs in a row", p.Property, p.System, p.Op, p.Stay.ID, p.Runs))
		case reconcile.ProblemPropertyRemoved:
			out = append(out, fmt.Sprintf("%s: live credentials of a property the config no longer lists", p.Property))
		case reconcile.ProblemRepeatedReadFailure:
			out = append(out, fmt.Sprintf("%s: reading it from %s failed in %d whole runs in a row", p.Property, p.System, p.Runs))
		default:
			out = append(out, fmt.Sprintf("%s: %s", p.Property, p.Kind))
		}
	}
	for _, n := range rep.Attention() {
		room := ""
		if r := roomAndID(n.Room, n.RoomID); r != "" {
			room = " in room " + r
		}
		out = append(out, fmt.Sprintf("%s: stay %s%s (%s)", n.Stay.Property, n.Stay.ID, room, n.Kind))
	}
	return out
}

func (env *environment) print(rep *reconcile.Report, f *runFlags) error {
	if f.json {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.DryRun {
		printPlan(env.stdout, rep, f.showSecrets, f.out)
		return nil
	}
	printReport(env.stdout, rep)
	return nil
}

func parsePositive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a positive number", s)
	}
	return n, nil
}
