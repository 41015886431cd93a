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
	"github.com/keysync/keysync/state"
)

// statusReport is what `keysync status --json` prints.
type statusReport struct {
	State     string              `json:"state"`
	SizeBytes int64               `json:"size_bytes"`
	Runs      []statusRun         `json:"runs"`
	Open      state.OpenWork      `json:"open"`
	Failures  []reconcile.Failure `json:"failures"`
	Problems  []reconcile.Problem `json:"problems"`
	Notes     []reconcile.Note    `json:"notes"`
	// Unkeyed are the last run's stays arriving within 24 hours, or in house,
	// whose credential it did not issue (metrics.ArrivalsWithoutCredential).
	Unkeyed []reconcile.StayRef             `json:"arrivals_without_credential"`
	Budget  map[reconcile.Account]budgetUse `json:"budget"`
	// BudgetNote says why Budget is empty when the API credentials were
	// not all set: credentials are named by a fingerprint of their value.
	BudgetNote string    `json:"budget_note,omitempty"`
	Next       time.Time `json:"next_scheduled_run"`
	// Note says why there is nothing to report (a shard that runs no
	// property and holds no state file).
	Note string `json:"note,omitempty"`
}

// statusRun is one recorded run as status shows it.
type statusRun struct {
	ID      int64          `json:"id"`
	Mode    reconcile.Mode `json:"mode"`
	Started time.Time      `json:"started"`
	// ExitCode and Seconds say how the run's command ended and how long
	// it took; both are absent for a run that was killed or still runs.
	ExitCode *int     `json:"exit_code,omitempty"`
	Seconds  *float64 `json:"duration_seconds,omitempty"`
	Result   string   `json:"result"`
	Actions  int      `json:"actions"`
	Failed   int      `json:"failed"`
	Problems int      `json:"problems"`
}

// budgetUse is a metered credential's request budget over the last 24
// hours, and the properties that use it.
type budgetUse struct {
	System     reconcile.System `json:"system"`
	Properties []string         `json:"properties"`
	Used       int              `json:"used_24h"`
	Cap        int              `json:"daily_cap"`
	Left       int              `json:"left"`
	// Reserve is the part of the cap kept for revocations and cleanup.
	Reserve int `json:"reserve_for_revocations"`
}

// status prints what keysync did and what is left: the last runs, open
// work, the last run's failures and problems, the request budgets, the
// state file's size and serve's next scheduled run.
func (env *environment) status(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("status", "usage: keysync status --config FILE [--json] [--now T]\n\nexample: keysync status --config /etc/keysync/keysync.yaml\n\nflags:\n")
	asJSON := fs.Bool("json", false, "print JSON")
	nowFlag := fs.String("now", "", "the instant to report at, RFC 3339 (default: now)")
	runs := fs.Int("runs", 10, "how many of the last runs to list")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	cfg, db, now, err := env.openForReading(ctx, *config, *nowFlag, sf)
	if errors.Is(err, errEmptyShard) {
		return env.nothingRecorded(cfg, *asJSON)
	}
	if err != nil {
		return err
	}
	defer db.Close()

	rep := statusReport{State: cfg.State, SizeBytes: db.Size(), Budget: map[reconcile.Account]budgetUse{}}
	rows, err := db.Runs(ctx, *runs)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	var last *reconcile.Report
	for i := len(rows) - 1; i >= 0 && len(rep.Runs) < *runs; i-- {
		r := rows[i]
		sr := statusRun{ID: r.ID, Mode: r.Mode, Started: r.StartedAt, Result: string(r.Status)}
		if r.Ended {
			code, secs := r.ExitCode, r.Duration.Round(time.Millisecond).Seconds()
			sr.ExitCode, sr.Seconds = &code, &secs
		} else if r.Status == state.RunRunning {
			sr.Result = "running, or killed"
		}
		if r.Report != nil {
			var rr reconcile.Report
			if json.Unmarshal(r.Report, &rr) == nil {
				sr.Actions, sr.Problems = len(rr.Actions()), len(rr.Problems)+len(rr.Attention())
				for _, a := range rr.Actions() {
					if a.Result == reconcile.ResultFailed || a.Result == reconcile.ResultUnknown {
						sr.Failed++
					}
				}
				if sr.Result == string(state.RunOK) && sr.Problems > 0 {
					sr.Result = "needs a person"
				}
				if r.Ended && sr.Result == string(state.RunPartial) {
					// What stopped the run, rather than "partial" with
					// no action failed.
					switch r.ExitCode {
					case ExitConfig:
						sr.Result = "refused: config, credentials or URL"
					case ExitUnsafe:
						sr.Result = "fail-safe held withdrawals"
					case ExitFailure:
						sr.Result = "failed"
					}
				}
				if last == nil {
					last = &rr
				}
			}
		}
		rep.Runs = append(rep.Runs, sr)
	}
	// What is open comes from the last whole run (a nightly run or a
	// backfill, which read every stay): a targeted run after it (a
	// webhook's, a poll's, run --stay) read a few stays and clears none of
	// its problems, as /metrics keeps them (TestServeMetricsFromTheRecord).
	// The targeted runs after it add their arrivals without a credential,
	// each until a later one keys the stay, and the newest one's failures.
	var later []*reconcile.Report
	if r, ok, err := db.LastWholeRun(ctx); err != nil {
		return withCode(ExitFailure, err)
	} else if ok && r.Report != nil {
		var whole reconcile.Report
		if json.Unmarshal(r.Report, &whole) == nil {
			last = &whole
		}
		after, err := db.TargetedRunsAfter(ctx, r.ID)
		if err != nil {
			return withCode(ExitFailure, err)
		}
		for _, t := range after {
			var tr reconcile.Report
			if t.Report != nil && json.Unmarshal(t.Report, &tr) == nil {
				later = append(later, &tr)
			}
		}
	}
	if last != nil {
		rep.Failures, rep.Problems, rep.Notes = last.Failures, last.Problems, last.Notes()
		rep.Unkeyed = metrics.ArrivalsWithoutCredential(last)
	}
	for _, tr := range later {
		rep.Unkeyed = slices.DeleteFunc(rep.Unkeyed, func(s reconcile.StayRef) bool { return keyed(tr, s) })
		for _, s := range metrics.ArrivalsWithoutCredential(tr) {
			if !slices.Contains(rep.Unkeyed, s) {
				rep.Unkeyed = append(rep.Unkeyed, s)
			}
		}
	}
	if n := len(later); n > 0 {
		rep.Failures = append(rep.Failures, later[n-1].Failures...)
	}
	if rep.Open, err = db.OpenWork(ctx); err != nil {
		return withCode(ExitFailure, err)
	}
	spent, err := db.Spent(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if len(cfg.unset) > 0 {
		rep.BudgetNote = fmt.Sprintf("not shown: %s not set, and credentials are named by a fingerprint of their value", strings.Join(cfg.unset, ", "))
	} else {
		for acct, b := range budgets(cfg) {
			used := reconcile.SpentBy(spent, acct)
			rep.Budget[acct] = budgetUse{System: acct.System(), Properties: cfg.usersOf(acct), Used: used, Cap: b.Cap, Left: max(b.Cap-used, 0), Reserve: b.Reserve}
		}
	}
	rep.Next = cfg.schedule.Next(now)

	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	loc := cfg.schedule.Location()
	w := env.stdout
	fmt.Fprintf(w, "State %s (%s)\n\nLast runs (times in %s)\n", rep.State, byteSize(rep.SizeBytes), loc)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  RUN\tMODE\tSTARTED\tTOOK\tEXIT\tRESULT\tACTIONS\tFAILED\tPROBLEMS")
	for _, r := range rep.Runs {
		took, exit := "-", "-"
		if r.ExitCode != nil {
			took, exit = (time.Duration(*r.Seconds * float64(time.Second))).Round(100*time.Millisecond).String(), fmt.Sprint(*r.ExitCode)
		}
		fmt.Fprintf(tw, "  #%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", r.ID, r.Mode, r.Started.In(loc).Format("2006-01-02 15:04 MST"), took, exit, r.Result, r.Actions, r.Failed, r.Problems)
	}
	tw.Flush()
	if len(rep.Runs) == 0 {
		fmt.Fprintln(w, "  none yet")
	}
	fmt.Fprintln(w, "\nOpen")
	open := false
	for _, p := range cfg.Properties {
		if n := rep.Open.Pending[p.Name] + rep.Open.Retired[p.Name] + rep.Open.Deferred[p.Name]; n > 0 {
			open = true
			fmt.Fprintf(w, "  %s: %d create(s) with an unknown outcome, %d retired key(s) waiting, %d stay(s) deferred for lack of budget\n",
				p.Name, rep.Open.Pending[p.Name], rep.Open.Retired[p.Name], rep.Open.Deferred[p.Name])
		}
	}
	for _, f := range rep.Failures {
		open = true
		fmt.Fprintf(w, "  last run: %s %s failed: %s\n", f.Property, f.System, f.Err)
	}
	for _, s := range rep.Unkeyed {
		open = true
		fmt.Fprintf(w, "  arriving within 24 hours or in house without a credential (last run): %s stay %s\n", s.Property, s.ID)
	}
	for _, p := range rep.Problems {
		open = true
		fmt.Fprintf(w, "  needs a person: %s: %s\n", p.Property, p.Detail)
	}
	for _, n := range rep.Notes {
		if n.Attention || n.Kind == reconcile.NoteConflict || n.Kind == reconcile.NoteMissingLockPIN || n.Kind == reconcile.NoteUnknownOutcome {
			open = true
			fmt.Fprintf(w, "  %s: %s stay %s room %s (%s to %s): %s\n", n.Kind, n.Stay.Property, n.Stay.ID, orDash(n.Room), dateOrDash(n.Arrival), dateOrDash(n.Departure), n.Detail)
		}
	}
	if !open {
		fmt.Fprintln(w, "  nothing")
	}
	fmt.Fprintln(w, "\nRequest budget, last 24 hours")
	if rep.BudgetNote != "" {
		fmt.Fprintf(w, "  %s\n", rep.BudgetNote)
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CREDENTIAL\tPROPERTIES\tUSED\tCAP\tLEFT\tRESERVED FOR REVOCATIONS")
		for _, acct := range sortedKeys(rep.Budget) {
			b := rep.Budget[acct]
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\n", acct, strings.Join(b.Properties, ","), b.Used, b.Cap, b.Left, b.Reserve)
		}
		tw.Flush()
	}
	if !rep.Next.IsZero() {
		fmt.Fprintf(w, "\nNext scheduled run (serve, %q): %s\n", cfg.Schedule, rep.Next.In(loc).Format("2006-01-02 15:04 MST"))
	}
	return nil
}

// history prints the audit trail: one line per action with its outcome,
// ids and times in the schedule's zone.
func (env *environment) history(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("history", "usage: keysync history --config FILE [--stay ID | --room R] [--since T]\n\nexample: keysync history --config /etc/keysync/keysync.yaml --room r104 --since 2026-11-20T00:00:00Z\n\nflags:\n")
	stay := fs.String("stay", "", "only this stay's actions (its source id)")
	room := fs.String("room", "", "only the actions on credentials issued for this room (its id, or its name)")
	since := fs.String("since", "", "only actions at or after this RFC 3339 instant")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *stay != "" && *room != "" {
		return withCode(ExitConfig, errors.New("history: give --stay or --room, not both"))
	}
	f := state.HistoryFilter{Stay: *stay, Room: *room}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return withCode(ExitConfig, fmt.Errorf("--since %q: want RFC 3339, like 2026-11-20T00:00:00Z", *since))
		}
		f.Since = t
	}
	cfg, db, _, err := env.openForReading(ctx, *config, "", sf)
	if errors.Is(err, errEmptyShard) {
		return env.nothingRecorded(cfg, false)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.History(ctx, f)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tRUN\tPROPERTY\tSTAY\tROOM\tSYSTEM\tACTION\tREMOTE ID\tOUTCOME")
	for _, h := range rows {
		loc := cfg.zone(h.Stay.Property)
		outcome := string(h.Phase)
		if h.Detail != "" {
			outcome += ": " + h.Detail
		}
		run := "-" // a record carried over from another state file, outside any run
		if h.RunID != 0 {
			run = fmt.Sprintf("#%d", h.RunID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.At.In(loc).Format("2006-01-02 15:04 MST"), run, h.Stay.Property, orDash(h.Stay.ID),
			orDash(h.RoomID), orDash(string(h.System)), h.Op, orDash(h.RemoteID), outcome)
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(env.stdout, "no actions recorded that match")
	}
	return nil
}

// nothingRecorded is what status and history say of a shard that runs no
// property and holds no state file: there is nothing to show, which is not
// a failure, as a run of it has nothing to do. With asJSON it prints
// status's report, empty, with the reason as its note.
func (env *environment) nothingRecorded(cfg *Config, asJSON bool) error {
	why := fmt.Sprintf("shard %s %v, and no state file is at %s", cfg.shardID(), errEmptyShard, cfg.State)
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(statusReport{State: cfg.State, Runs: []statusRun{}, Budget: map[reconcile.Account]budgetUse{}, Note: why})
	}
	_, err := fmt.Fprintf(env.stdout, "Nothing to show: %s.\n", why)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// byteSize formats a size for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// keyed reports whether the run rep issued stay s its credential: a create
// or an assign for it done, and none of its creates or assigns left undone.
func keyed(rep *reconcile.Report, s reconcile.StayRef) bool {
	done := false
	for _, a := range rep.Actions() {
		if a.Stay != s || (a.Op != reconcile.OpCreate && a.Op != reconcile.OpAssign) {
			continue
		}
		if a.Result != reconcile.ResultDone {
			return false
		}
		done = true
	}
	return done
}
