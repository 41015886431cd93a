package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keysync/keysync/internal/metrics"
	"github.com/keysync/keysync/reconcile"
)

// check reads whether every stay in house or arriving within the horizon
// holds what it needs on every system, and exits 6 (a person is needed) naming the rooms
// that do not. It writes nothing upstream; its reads go in the request
// ledger like any other.
func (env *environment) check(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("check", "usage: keysync check --config FILE [--within 24h] [--now T] [--json] [--metrics-file PATH]\n\nexample: keysync check --config /etc/keysync/keysync.yaml --within 24h\n\nflags:\n")
	within := fs.Duration("within", 24*time.Hour, "check the stays in house and those whose access opens within this long")
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
	if !empty {
		defer db.Close()
		if env.clock == nil {
			env.clock = reconcile.WallClock{}
		}
		runner, err := env.buildRunner(cfg, db, log, &reconcile.Meter{Clock: env.clock})
		if err != nil {
			return withCode(ExitConfig, err)
		}
		if checked, unready, failures, err = runner.Check(ctx, now, *within); err != nil {
			return withCode(ExitFailure, fmt.Errorf("check: %w", err))
		}
		// Against an older record than another state file holds (N
		// changed, or this shard's timer is an old one), what the record
		// lacks is no sign of what the stays lack: such a property is a
		// failed read, not a list of unready stays.
		stale, _, err := carryOver(ctx, cfg, db, nil, env.stateBusy, false, now, log)
		if err != nil {
			return err
		}
		for _, r := range stale {
			unready = slices.DeleteFunc(unready, func(u reconcile.Unready) bool { return u.Stay.Property == r.property })
			failures = append(failures, reconcile.Failure{Property: r.property,
				Err: fmt.Sprintf("this state file holds an older record of the property than %s: the next run or backfill of this shard takes that one over; check after it", r.from)})
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
		if err := enc.Encode(map[string]any{"now": now, "within": within.String(), "checked": checked, "unready": nonNilSlice(unready),
			"failures": nonNilSlice(failures)}); err != nil {
			return err
		}
	} else if empty {
		fmt.Fprintf(env.stdout, "Nothing to check: shard %s %v.\n", cfg.shardID(), errEmptyShard)
	} else {
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Stay.Property, u.Stay.ID, roomAndID(u.Room, u.RoomID),
					u.Starts.In(cfg.zone(u.Stay.Property)).Format("2006-01-02 15:04 MST"), strings.Join(u.Why, "; "))
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
	if len(unready) > 0 {
		rooms := make([]string, 0, len(unready))
		for _, u := range unready {
			rooms = append(rooms, roomAndID(u.Room, u.RoomID))
		}
		return withCode(ExitAttention, fmt.Errorf("%d stay(s) not ready, in room(s) %s", len(unready), strings.Join(rooms, ", ")))
	}
	return nil
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
