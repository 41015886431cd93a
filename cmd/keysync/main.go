// Command keysync keeps guest door access in step with bookings: it reads
// room stays from 3RPMS, plans the fewest key changes, and applies them.
//
//	keysync demo                      try it against the built-in sandbox
//	keysync plan --config FILE        dry run: print the plan
//	keysync run --config FILE         one reconcile (systemd timer, CronJob)
//	keysync backfill --config FILE    first connection: create state, adopt keys
//	keysync serve --config FILE       stay up, reconcile on the schedule
//	keysync sandbox --listen ADDR     run the sandbox 3RPMS server
//
// This package only wires: config, state, adapters and the core.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
	// Property time zones must resolve on a machine without tzdata
	// (distroless images, minimal containers).
	_ "time/tzdata"
)

// Exit codes, documented in the README. A timer or CronJob can act on them.
const (
	ExitOK      = 0 // everything planned was done
	ExitFailure = 1 // the run failed (state store), or a system never accepted a connection
	ExitConfig  = 2 // bad flags, config, credentials or URL (no such host, 404 on the endpoint)
	ExitPartial = 3 // some work failed or was deferred; the next run retries
	ExitLocked  = 4 // another run holds the state file's lock
	ExitUnsafe  = 5 // the fail-safe held the withdrawals of a plan that looks like a source outage; --force applies them
	// ExitAttention: everything the run could do was done, but something
	// needs a person: an action that failed run after run (report.Problems).
	ExitAttention = 6
)

// exitError carries an exit code with the message to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode attaches an exit code to an error.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitCode maps an error from Run to the process's exit status.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitFailure
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	if err != nil && !errors.Is(err, errQuiet) {
		fmt.Fprintln(os.Stderr, "keysync:", err)
	}
	os.Exit(exitCode(err))
}

// errQuiet marks an exit whose message was already printed (the report
// says what went wrong).
var errQuiet = errors.New("reported above")

// errHelpShown marks a command that printed its --help: exit 0.
var errHelpShown = errors.New("help shown")

// command is one of keysync's subcommands.
type command struct {
	name, summary string
	run           func(env *environment, ctx context.Context, args []string) error
}

// commands are keysync's subcommands, in the order the usage lists them:
// the one list the dispatch, the usage and the help test read. (A function,
// not a variable: the commands' code dispatches through it, which would
// make a variable's initialization refer to itself.)
func commands() []command {
	return []command{
		{"demo", "run a full reconcile against the built-in sandbox (no setup)", (*environment).demo},
		{"plan", "dry run: read, diff and print the plan; writes nothing but the request ledger", reconcileAs("plan")},
		{"run", "one reconcile, as a systemd timer or CronJob calls it", reconcileAs("run")},
		{"apply", "apply a plan saved by plan --out, after checking it still holds", reconcileAs("apply")},
		{"backfill", "first connection: create the state file, adopt keys of ours", reconcileAs("backfill")},
		{"serve", "stay up and reconcile on the config's schedule", (*environment).serve},
		{"sandbox", "run the four sandboxes (3RPMS, OpenApp, key box, Guestway) to try keysync by hand", (*environment).sandbox},
		{"bench", "measure requests and planning against the sandbox", (*environment).bench},
		{"schedule", "list the next runs of serve's schedule in its time zone", func(env *environment, _ context.Context, args []string) error { return env.schedule(args) }},
		{"backup", "write a consistent copy of the state file, safe during a run", (*environment).backup},
		{"status", "the last runs, open work, problems, budgets and the next run", (*environment).status},
		{"history", "the audit trail: one line per action, by stay, room or time", (*environment).history},
		{"show", "one stay's credentials on every system; --secrets adds its PINs, codes and tokens", (*environment).show},
		{"rekey", "seal the state file's secrets under a new key", (*environment).rekey},
		{"check", "readiness: does every arrival within 24 h hold its credentials (reads only; --repair mends what it can)", (*environment).check},
		{"version", "print the version keysync was built from", (*environment).version},
	}
}

// reconcileAs runs the reconcile command of one mode.
func reconcileAs(mode string) func(env *environment, ctx context.Context, args []string) error {
	return func(env *environment, ctx context.Context, args []string) error {
		return env.reconcile(ctx, mode, args)
	}
}

// usage is keysync's usage: a line per command.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: keysync <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'keysync <command> -h' for a command's flags.")
	return b.String()
}

// Run is keysync's entry point without process globals, so end-to-end tests
// call it directly. getenv resolves ${VAR} in the config and
// KEYSYNC_LOG_LEVEL.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return newEnvironment(stdout, stderr, getenv).run(ctx, args)
}

// newEnvironment is a process's environment: the wall clock, pacing and
// retries on it.
func newEnvironment(stdout, stderr io.Writer, getenv func(string) string) *environment {
	clock := reconcile.WallClock{}
	return &environment{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now, clock: clock, retry: httpapi.Retry{Clock: clock}}
}

// run dispatches a command line.
func (env *environment) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, usage())
		return withCode(ExitConfig, errQuiet)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprintln(env.stdout, usage())
		return nil
	case "--version":
		cmd = "version"
	}
	for _, c := range commands() {
		if c.name == cmd {
			return c.run(env, ctx, rest)
		}
	}
	fmt.Fprintln(env.stderr, usage())
	return withCode(ExitConfig, fmt.Errorf("unknown command %q", cmd))
}

// environment is what a command may touch of the process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// now is the wall clock, read only when a run has no --now; it is the
	// one place keysync reads it.
	now func() time.Time
	// clock paces and backs off requests; tests use a fake one.
	clock reconcile.Clock
	// retry is the retry policy of every adapter.
	retry    httpapi.Retry
	limiters limiters
	// listening, when set, is told the address serve's listener bound
	// (tests listen on port 0).
	listening func(addr string)
	// stateBusy is how long the state file waits for another process's
	// write lock; zero means state.DefaultBusyTimeout.
	stateBusy time.Duration
	// held is a state file the process keeps open (serve's, for its event
	// queue): runs use it rather than opening the file again, which, with
	// the write-ahead log the open handle keeps, would check every page of
	// the file on every run as after an unclean shutdown.
	held *state.DB
	// wholeRetry is how long serve waits before it runs again after a
	// whole run that left work undone; zero means wholeRetryAfter.
	wholeRetry time.Duration
}

// flagSet is a subcommand's flag set: errors and usage go to stderr, and
// --help prints usage (a usage line, an example and "flags:") followed by
// the flags.
func (env *environment) flagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		io.WriteString(env.stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// stateFlagSet is flagSet with the flags of a command that reads one
// property set's state file: --config, and --shard and --shards to pick
// the shard whose file it is.
func (env *environment) stateFlagSet(name, usage string) (fs *flag.FlagSet, config *string, sf *shardFlags) {
	fs = env.flagSet(name, usage)
	config = fs.String("config", "", "config file (required)")
	sf = &shardFlags{}
	sf.register(fs)
	return fs, config, sf
}

// parseFlags parses a subcommand's flags. help is true when --help was
// asked for (and shown): the command exits 0. A bad flag, already reported
// by the flag package, is ExitConfig.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, withCode(ExitConfig, errQuiet)
	}
	return false, nil
}
