package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keysync/keysync/internal/metrics"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// check reads whether every stay in house or arriving within the horizon
// holds what it needs on every system, and exits 6 (a person is needed) naming the rooms
// that do not. It writes nothing upstream; its reads go in the request
// ledger like any other. With --repair it then runs at the stays that are
// not ready (as `run --stay` does: their credentials read back, what is
// not live replaced, under the run lock and fail-safe) and checks again:
// a run over the window takes invites and accesses at their record, so a
// scheduled check is what finds and mends one staff cancelled upstream.
func (env *environment) check(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("check", "usage: keysync check --config FILE [--within 24h] [--repair] [--now T] [--json] [--metrics-file PATH]\n\nexample: keysync check --config /etc/keysync/keysync.yaml --within 24h --repair\n\nflags:\n")
	within := fs.Duration("within", 24*time.Hour, "check the stays in house and those whose access opens within this long")
	repair := fs.Bool("repair", false, "run at the stays that are not ready (as run --stay: read back, replace what is not live), then check again")
	nowFlag := fs.String("now", "", "check as if it were this RFC 3339 instant (default: now)")
	asJSON := fs.Bool("json", false, "print JSON")
	metricsFile := fs.String("metrics-file", "", "write the check's Prometheus metrics (keysync_check_*) to this file, atomically, for the node exporter's textfile collector")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default $KEYSYNC_LOG_LEVEL, else warn)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *within <= 0 {
		return withCode(ExitConfig, fmt.Errorf("check: --within %s: must be positive", *within))
	}
	log, err := newLogger(env.stderr, firstNonEmpty(*logLevel, env.getenv("KEYSYNC_LOG_LEVEL"), "warn"))
	if err != nil {
		return withCode(ExitConfig, err)
	}
	cfg, db, now, err := env.openForWriting(ctx, *config, *nowFlag, sf)
	// A shard that holds no property has nothing to check, as a run of it
	// has nothing to do: not a failure, so an Indexed Job's index does not
	// fail every day.
	empty := errors.Is(err, errEmptyShard)
	if err != nil && !empty {
		return err
	}
	var checked int
	var unready []reconcile.Unready
	var failures []reconcile.Failure
	var mended *repairRun
	if !empty {
		defer db.Close()
		if env.clock == nil {
			env.clock = reconcile.WallClock{}
		}
		runner, err := env.buildRunner(cfg, db, log, &reconcile.Meter{Clock: env.clock})
		if err != nil {
			return withCode(ExitConfig, err)
		}
		if checked, unready, failures, err = env.checkOnce(ctx, cfg, db, runner, now, *within, log); err != nil {
			return err
		}
		if targets := repairTargets(unready, failures); *repair && len(targets) > 0 {
			mended = env.repair(ctx, cfg, targets, now, *nowFlag != "", log)
			if checked, unready, failures, err = env.checkOnce(ctx, cfg, db, runner, now, *within, log); err != nil {
				return err
			}
		}
	}
	if *metricsFile != "" {
		if err := metrics.WriteCheckFile(*metricsFile, cfg.shardID(), now, checked, len(unready), len(failures)); err != nil {
			log.Error("could not write the metrics file", "path", *metricsFile, "err", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{"now": now, "within": within.String(), "checked": checked, "unready": nonNilSlice(unready),
			"failures": nonNilSlice(failures)}
		if mended != nil {
			out["repair"] = mended
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if empty {
		fmt.Fprintf(env.stdout, "Nothing to check: shard %s %v.\n", cfg.shardID(), errEmptyShard)
	} else {
		if mended != nil {
			made := "made no change"
			if mended.Actions > 0 {
				made = fmt.Sprintf("made %d change(s) (keysync history shows them)", mended.Actions)
			}
			fmt.Fprintf(env.stdout, "Repair: a run at the %d stay(s) that were not ready %s", mended.Stays, made)
			if mended.err != nil {
				fmt.Fprintf(env.stdout, " and ended with exit %d: %s", exitCode(mended.err), mended.Error)
			}
			fmt.Fprintln(env.stdout, "; checked again:")
		}
		fmt.Fprintf(env.stdout, "Checked %d stay(s) in house or whose access opens within %s of %s.\n", checked, *within, now.Format(time.RFC3339))
		switch {
		case len(unready) == 0 && len(failures) > 0:
			fmt.Fprintf(env.stdout, "%d read(s) failed (FAILED below): the stays they concern are not known ready.\n", len(failures))
		case len(unready) == 0:
			fmt.Fprintln(env.stdout, "Every one holds what it needs on every system.")
		default:
			fmt.Fprintf(env.stdout, "\nNot ready (%d):\n", len(unready))
			tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROPERTY\tSTAY\tROOM\tOPENS\tWHAT IS MISSING")
			for _, u := range unready {
				opens := "unknown" // a stay whose dates could not be read
				if !u.Starts.IsZero() {
					opens = u.Starts.In(cfg.zone(u.Stay.Property)).Format("2006-01-02 15:04 MST")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Stay.Property, u.Stay.ID, cmp.Or(roomAndID(u.Room, u.RoomID), "unknown"), opens, strings.Join(u.Why, "; "))
			}
			tw.Flush()
		}
		printFailures(env.stdout, failures)
	}
	if len(failures) > 0 {
		// As a run's: a refused credential or a wrong URL names the field
		// to fix (exit 2), an unreachable server exits 1, any other
		// failed read 3.
		return reportError(cfg, &reconcile.Report{Failures: failures})
	}
	if len(unready) == 0 {
		return nil // ready, the repair run's own failures (printed above) notwithstanding
	}
	if mended != nil && mended.err != nil && exitCode(mended.err) != ExitAttention {
		// The repair run's own failure (the lock held by a run, a
		// partial run, the fail-safe) says more of what is left.
		return fmt.Errorf("check --repair: %w", mended.err)
	}
	rooms := make([]string, 0, len(unready))
	for _, u := range unready {
		rooms = append(rooms, cmp.Or(roomAndID(u.Room, u.RoomID), "unknown (stay "+u.Stay.ID+")"))
	}
	return withCode(ExitAttention, fmt.Errorf("%d stay(s) not ready, in room(s) %s", len(unready), strings.Join(rooms, ", ")))
}

// repairRun is what check --repair's run did.
type repairRun struct {
	Stays   int    `json:"stays"`
	Actions int    `json:"actions"`
	Error   string `json:"error,omitempty"`
	err     error
}

// repair runs at targets, the stays check found not ready, as run --stay
// does (read back, what is not live replaced), and says what it did. With
// --now (nowSet) it refuses an instant more than a day before the last
// run, as run does: a repair writes upstream.
func (env *environment) repair(ctx context.Context, cfg *Config, targets map[string][]string, now time.Time, nowSet bool, log *slog.Logger) *repairRun {
	opts := reconcile.Options{Mode: reconcile.ModeTargeted, ReadBack: true, Now: now, Targets: targets}
	var checks []func(context.Context, reconcile.Store) error
	if nowSet {
		checks = append(checks, func(ctx context.Context, db reconcile.Store) error {
			err := pastNow(ctx, db, now)
			if exitCode(err) == ExitConfig {
				return withCode(ExitConfig, fmt.Errorf("check --repair: --now %s is more than a day before the last recorded run, and a repair writes upstream: leave --now out, or check without --repair", now.Format(time.RFC3339)))
			}
			return err
		})
	}
	rep, err := env.once(ctx, cfg, opts, log, checks...)
	if err == nil {
		err = reportError(cfg, rep)
	}
	mended := &repairRun{err: err}
	for _, ids := range targets {
		mended.Stays += len(ids)
	}
	if rep != nil {
		for _, a := range rep.Actions() {
			if a.Result == reconcile.ResultDone {
				mended.Actions++ // what it changed, not what it tried
			}
		}
	}
	if err != nil {
		mended.Error = err.Error()
	}
	return mended
}

// checkOnce runs the readiness check. Against an older record than another
// state file holds (N changed, or this shard's timer is an old one), what
// the record lacks is no sign of what the stays lack: such a property is a
// failed read, not a list of unready stays.
func (env *environment) checkOnce(ctx context.Context, cfg *Config, db *state.DB, runner *reconcile.Runner, now time.Time, within time.Duration, log *slog.Logger) (int, []reconcile.Unready, []reconcile.Failure, error) {
	checked, unready, failures, err := runner.Check(ctx, now, within)
	if err != nil {
		return 0, nil, nil, withCode(ExitFailure, fmt.Errorf("check: %w", err))
	}
	stale, _, err := carryOver(ctx, cfg, db, nil, env.stateBusy, false, now, log)
	if err != nil {
		return 0, nil, nil, err
	}
	for _, r := range stale {
		unready = slices.DeleteFunc(unready, func(u reconcile.Unready) bool { return u.Stay.Property == r.property })
		failures = append(failures, reconcile.Failure{Property: r.property,
			Err: fmt.Sprintf("this state file holds an older record of the property than %s: the next run or backfill of this shard takes that one over; check after it", r.from)})
	}
	return checked, unready, failures, nil
}

// repairTargets returns the stays check --repair runs at: the unready ones,
// by property, but for properties a read failed for (what they lack is
// not known).
func repairTargets(unready []reconcile.Unready, failures []reconcile.Failure) map[string][]string {
	out := map[string][]string{}
	for _, u := range unready {
		p := u.Stay.Property
		if slices.ContainsFunc(failures, func(f reconcile.Failure) bool { return f.Property == p }) || slices.Contains(out[p], u.Stay.ID) {
			continue
		}
		out[p] = append(out[p], u.Stay.ID)
	}
	return out
}

// roomAndID names a room by name, with its id where they differ.
func roomAndID(name, id string) string {
	if name != "" && id != "" && name != id {
		return fmt.Sprintf("%s (%s)", name, id)
	}
	if name != "" {
		return name
	}
	return id
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
