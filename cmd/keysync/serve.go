package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/keysync/keysync/reconcile"
)

// serve stays up and reconciles on the config's schedule. Without a state
// file it backfills once at start; a tick that finds the previous run still
// going is skipped; SIGTERM stops it after the run in progress.
func (env *environment) serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	config := fs.String("config", "", "config file (required)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default $KEYSYNC_LOG_LEVEL, else info)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return withCode(ExitConfig, errQuiet)
	}
	if *config == "" {
		return withCode(ExitConfig, errors.New("serve: --config FILE is required"))
	}
	log, err := newLogger(env.stderr, cmp.Or(*logLevel, env.getenv("KEYSYNC_LOG_LEVEL")))
	if err != nil {
		return withCode(ExitConfig, err)
	}
	cfg, err := env.loadConfig(*config, log)
	if err != nil {
		return err
	}

	warnShifts(cfg, log, env.now())
	job := func(mode reconcile.Mode) {
		rep, err := env.once(ctx, cfg, reconcile.Options{Mode: mode, Now: env.now()}, log)
		switch {
		case err != nil:
			log.Error("reconcile failed", "mode", mode, "err", err)
		case rep.Partial():
			log.Warn("reconcile partly done; the next run retries", "run", rep.RunID, "failures", len(rep.Failures))
		}
	}
	if _, err := os.Stat(cfg.State); errors.Is(err, os.ErrNotExist) {
		log.Info("no state file: backfilling once before the schedule starts", "path", cfg.State)
		job(reconcile.ModeBackfill)
	}

	l := cronLogger{log.With("component", "cron")}
	c := cron.New(
		cron.WithLocation(cfg.schedule.Location()),
		cron.WithLogger(l),
		cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)),
	)
	// The schedule runs once per scheduled wall-clock time, across
	// daylight-saving switches (internal/schedule).
	c.Schedule(cfg.schedule, cron.FuncJob(func() { job(reconcile.ModeRun) }))
	c.Start()
	next := c.Entries()[0].Next
	log.Info("serving", "schedule", cfg.Schedule, "timezone", cfg.schedule.Location().String(), "next", next.Format(time.RFC3339))
	<-ctx.Done()
	log.Info("stopping: waiting for the run in progress")
	<-c.Stop().Done()
	return nil
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
