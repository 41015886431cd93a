package main

import (
	"errors"
	"fmt"
	"time"
)

// schedule prints the next instants serve's schedule runs at, in its zone,
// so an operator can see what a daylight-saving switch does to it.
func (env *environment) schedule(args []string) error {
	fs := env.flagSet("schedule", "usage: keysync schedule --config FILE [--from T] [--count N]\n\nexample: keysync schedule --config keysync.yaml --from 2027-03-25T00:00:00Z --count 7\n\nflags:\n")
	config := fs.String("config", "", "config file (required)")
	from := fs.String("from", "", "list the runs after this RFC 3339 instant (default: now)")
	count := fs.Int("count", 7, "how many runs to list")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *config == "" {
		return withCode(ExitConfig, errors.New("schedule: --config FILE is required"))
	}
	if *count < 1 {
		return withCode(ExitConfig, fmt.Errorf("schedule: --count %d: must be at least 1", *count))
	}
	cfg, err := env.commandConfig(*config, nil, false)
	if err != nil {
		return err
	}
	t := env.now()
	if *from != "" {
		if t, err = time.Parse(time.RFC3339, *from); err != nil {
			return withCode(ExitConfig, fmt.Errorf("--from %q: want RFC 3339, like 2027-03-25T00:00:00Z", *from))
		}
	}
	loc := cfg.schedule.Location()
	fmt.Fprintf(env.stdout, "schedule %q in %s, the next %d run(s) after %s:\n", cfg.Schedule, loc, *count, t.In(loc).Format(time.RFC3339))
	shifted := map[time.Time]string{}
	for _, sh := range cfg.schedule.Shifts(t, t.AddDate(2, 0, 0)) {
		if sh.Gap {
			shifted[sh.At] = "  (" + sh.Wall + " does not exist: the clock jumps past it)"
		} else {
			shifted[sh.At] = "  (" + sh.Wall + " happens twice: runs the first time only)"
		}
	}
	for range *count {
		t = cfg.schedule.Next(t)
		if t.IsZero() {
			break
		}
		fmt.Fprintf(env.stdout, "  %s  %-4s  %s%s\n", t.In(loc).Format("Mon 2006-01-02 15:04"), zoneAbbrev(t.In(loc)), t.UTC().Format(time.RFC3339), shifted[t])
	}
	return nil
}

func zoneAbbrev(t time.Time) string {
	name, _ := t.Zone()
	return name
}
