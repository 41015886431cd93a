package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/keysync/keysync/internal/bench"
	"github.com/keysync/keysync/reconcile"
)

// bench parses bench's flags and runs internal/bench, each night a fresh
// keysync process's reconcile (see benchNight). Missing a target is not an
// error; a night that leaves work undone exits partial.
func (env *environment) bench(ctx context.Context, args []string) error {
	o := bench.Options{Stderr: env.stderr}
	var logLevel, cpuProfile string
	fs := env.flagSet("bench", "usage: keysync bench [--quick] [--rooms N] [--nights N] [flags]\n\nMeasures requests, time and memory against the sandbox over simulated nights.\n\nexample: keysync bench --rooms 500 --nights 7\n\nflags:\n")
	fs.IntVar(&o.Rooms, "rooms", 500, "rooms in the hotel, all opening by PIN")
	fs.IntVar(&o.Nights, "nights", 7, "nights simulated after the first night's backfill")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the occupancy, the churn and the planning input (math/rand/v2 PCG)")
	fs.IntVar(&o.MaxOps, "max-ops", 100, "threerpms.max_ops_per_request: mutations chained per request")
	fs.IntVar(&o.PageSize, "page-size", 100, "threerpms.page_size: stays per read request (keysync's default, the sandbox's maximum)")
	fs.Float64Var(&o.Churn, "churn", 0.10, "share of the in-window stays changed each night (new bookings, date changes, moves, cancellations)")
	fs.IntVar(&o.PlanStays, "plan-stays", 100_000, "stays in the planning measurement; 0 skips it")
	fs.IntVar(&o.Properties, "properties", 25, "portfolio scenario: properties on their own 3RPMS tokens; 0 skips the scenario")
	fs.IntVar(&o.PropertyRooms, "property-rooms", 200, "portfolio scenario: rooms in each property on its own token")
	fs.IntVar(&o.SharedProperties, "shared-properties", 10, "portfolio scenario: properties one hotel (one 3RPMS endpoint and token) is split into")
	fs.IntVar(&o.SharedRooms, "shared-rooms", 100, "portfolio scenario: rooms in each property of the split hotel")
	fs.BoolVar(&o.Quick, "quick", false, "smoke run: 20 rooms, 2 nights, 10,000 stays planned, portfolio of 3 × 12 and 3 × 8 rooms (flags given explicitly win)")
	fs.StringVar(&logLevel, "log-level", "", "keysync's log level (default $KEYSYNC_LOG_LEVEL, else warn)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole bench, keysync and the sandboxes, to this file (go tool pprof)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return withCode(ExitConfig, fmt.Errorf("bench: unexpected argument %q", fs.Arg(0)))
	}
	if o.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rooms"] {
			o.Rooms = 20
		}
		if !set["nights"] {
			o.Nights = 2
		}
		if !set["plan-stays"] {
			o.PlanStays = 10_000
		}
		for _, d := range []struct {
			flag string
			v    *int
			n    int
		}{{"properties", &o.Properties, 3}, {"property-rooms", &o.PropertyRooms, 12}, {"shared-properties", &o.SharedProperties, 3}, {"shared-rooms", &o.SharedRooms, 8}} {
			if !set[d.flag] {
				*d.v = d.n
			}
		}
	}
	switch {
	case o.Rooms < 2:
		return withCode(ExitConfig, fmt.Errorf("bench: --rooms %d: need at least 2", o.Rooms))
	case o.Nights < 0 || o.Nights > 60:
		return withCode(ExitConfig, fmt.Errorf("bench: --nights %d: must be 0 to 60", o.Nights))
	case o.MaxOps < 1 || o.MaxOps > 500:
		return withCode(ExitConfig, fmt.Errorf("bench: --max-ops %d: must be 1 to 500", o.MaxOps))
	case o.PageSize < 1 || o.PageSize > 100:
		return withCode(ExitConfig, fmt.Errorf("bench: --page-size %d: must be 1 to 100", o.PageSize))
	case o.Churn < 0 || o.Churn > 1:
		return withCode(ExitConfig, fmt.Errorf("bench: --churn %g: must be 0 to 1", o.Churn))
	case o.Properties < 0 || o.Properties > 99:
		return withCode(ExitConfig, fmt.Errorf("bench: --properties %d: must be 0 to 99", o.Properties))
	case o.Properties > 0 && (o.PropertyRooms < 2 || o.SharedProperties < 1 || o.SharedProperties > 99 || o.SharedRooms < 2):
		return withCode(ExitConfig, fmt.Errorf("bench: --property-rooms and --shared-rooms need at least 2, --shared-properties 1 to 99"))
	case o.PlanStays < 0:
		return withCode(ExitConfig, fmt.Errorf("bench: --plan-stays %d: must be 0 or more", o.PlanStays))
	}
	log, err := newLogger(env.stderr, cmp.Or(logLevel, env.getenv("KEYSYNC_LOG_LEVEL"), "warn"))
	if err != nil {
		return withCode(ExitConfig, err)
	}

	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return withCode(ExitConfig, fmt.Errorf("bench: --cpuprofile: %w", err))
		}
		defer stop()
	}
	o.Log = log
	o.Night = func(ctx context.Context, n bench.Night) (*reconcile.Report, error) {
		return env.benchNight(ctx, n, log)
	}
	err = bench.Run(ctx, o, env.stdout)
	if errors.Is(err, bench.ErrPartial) {
		return withCode(ExitPartial, err)
	}
	return err
}

// benchNight runs one bench night as a fresh keysync process would: the
// config loaded anew with the bench's environment over the process's, a
// new environment (its own pacers) acting at the night's instant. A night
// that leaves work undone prints its failures.
func (env *environment) benchNight(ctx context.Context, n bench.Night, log *slog.Logger) (*reconcile.Report, error) {
	getenv := func(k string) string {
		if v, ok := n.Env[k]; ok {
			return v
		}
		return env.getenv(k)
	}
	cfg, err := LoadConfig(n.Config, getenv)
	if err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	now := n.Options.Now
	nenv := &environment{stdout: io.Discard, stderr: env.stderr, getenv: getenv, now: func() time.Time { return now }, clock: env.clock, retry: env.retry}
	rep, err := nenv.once(ctx, cfg, n.Options, log)
	if err == nil && rep.Partial() {
		printFailures(env.stderr, rep.Failures)
	}
	return rep, err
}

// startCPUProfile profiles the process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
