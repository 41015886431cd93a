package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/threerpms/sandbox"
)

// The sandbox's integration token for keysync. It is not a secret: the
// sandbox only runs on this machine.
const (
	sandboxToken       = "sandbox-token"
	sandboxIntegration = "keysync"
)

// startSandbox serves a seeded sandbox 3RPMS on addr and returns its
// GraphQL endpoint and a stop function.
func startSandbox(addr string, rooms int, now time.Time) (*sandbox.Server, string, func(), error) {
	sb := sandbox.New(sandbox.Options{
		Integrations: map[string]string{sandboxToken: sandboxIntegration},
		Now:          now,
	}.WithSeedLimits())
	sb.SeedDemo(rooms)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", nil, fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return sb, "http://" + ln.Addr().String() + "/graphql", stop, nil
}

// sandboxConfig is a config for a sandbox endpoint; the token comes from
// $KEYSYNC_3RPMS_TOKEN like a real one would.
func sandboxConfig(statePath, endpoint string) string {
	return fmt.Sprintf(`# keysync against the sandbox 3RPMS
state: %s
properties:
  - name: sandbox-hotel
    timezone: UTC
    check_in: "15:00"
    check_out: "11:00"
    grace: {before_arrival: 2h, after_departure: 2h}
    threerpms:
      endpoint: %s
      token: ${KEYSYNC_3RPMS_TOKEN}
    default_method: pin
`, statePath, endpoint)
}

// demo runs keysync end to end against an in-process sandbox: preview,
// backfill, a second run that plans nothing, and the next night.
func (env *environment) demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	rooms := fs.Int("rooms", 40, "rooms in the sandbox property")
	if err := fs.Parse(args); err != nil {
		return withCode(ExitConfig, errQuiet)
	}
	log, err := newLogger(env.stderr, cmpOrEnv(env.getenv("KEYSYNC_LOG_LEVEL"), "warn"))
	if err != nil {
		return withCode(ExitConfig, err)
	}
	dir, err := os.MkdirTemp("", "keysync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	now := env.now().UTC().Truncate(time.Second)
	sb, endpoint, stop, err := startSandbox("127.0.0.1:0", *rooms, now)
	if err != nil {
		return err
	}
	defer stop()
	getenv := func(k string) string {
		if k == "KEYSYNC_3RPMS_TOKEN" {
			return sandboxToken
		}
		return env.getenv(k)
	}
	cfg, err := ParseConfig(strings.NewReader(sandboxConfig(filepath.Join(dir, "keysync.db"), endpoint)), getenv)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	denv := &environment{stdout: env.stdout, stderr: env.stderr, getenv: getenv, now: env.now}
	w := env.stdout
	fmt.Fprintf(w, "Sandbox 3RPMS at %s: %d rooms, %d stays, %d keys of another integration.\n",
		endpoint, *rooms, len(sb.Stays()), len(sb.Keys()))

	section := func(title string) { fmt.Fprintf(w, "\n=== %s\n\n", title) }
	step := func(mode reconcile.Mode, at time.Time) (*reconcile.Report, error) {
		rep, err := denv.once(ctx, cfg, mode, at, log)
		if err != nil {
			return nil, err
		}
		if rep.DryRun {
			printPlan(w, rep, false)
		} else {
			printReport(w, rep)
		}
		return rep, nil
	}

	section("1. keysync plan: what the first connection would do (dry run)")
	if _, err := step(reconcile.ModePlan, now); err != nil {
		return err
	}
	section("2. keysync backfill: first connection")
	first, err := step(reconcile.ModeBackfill, now)
	if err != nil {
		return err
	}
	section("3. keysync run straight after: nothing to do")
	second, err := step(reconcile.ModeRun, now)
	if err != nil {
		return err
	}
	section("4. keysync run the next night: departures cleaned up, new arrivals keyed")
	tomorrow := now.Add(24 * time.Hour)
	sb.SetNow(tomorrow)
	if _, err := step(reconcile.ModeRun, tomorrow); err != nil {
		return err
	}

	section("Summary")
	ours := 0
	for _, k := range sb.Keys() {
		if k.Owner == sandboxIntegration && !k.Deleted && len(k.StayIDs) > 0 {
			ours++
		}
	}
	fmt.Fprintf(w, "First connection: %d write request(s) for the whole property.\n", first.Requests[reconcile.System3RPMS].Writes)
	fmt.Fprintf(w, "Run straight after: %d action(s), %d write request(s).\n", len(second.Actions()), second.Requests[reconcile.System3RPMS].Writes)
	fmt.Fprintf(w, "Keys of keysync assigned in the sandbox now: %d.\n", ours)
	if first.Partial() || second.Partial() || len(second.Actions()) > 0 {
		return withCode(ExitPartial, errors.New("demo: a run did not converge; see above"))
	}
	return nil
}

// sandbox runs the sandbox 3RPMS until SIGTERM, printing a config to use it.
func (env *environment) sandbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on (keep it on loopback)")
	rooms := fs.Int("rooms", 40, "rooms in the seeded property")
	if err := fs.Parse(args); err != nil {
		return withCode(ExitConfig, errQuiet)
	}
	_, endpoint, stop, err := startSandbox(*listen, *rooms, env.now().UTC().Truncate(time.Second))
	if err != nil {
		return withCode(ExitConfig, err)
	}
	defer stop()
	admin := strings.TrimSuffix(endpoint, "graphql") + "_sandbox/"
	fmt.Fprintf(env.stdout, `Sandbox 3RPMS serving.
  GraphQL endpoint: %s
  admin API:        %s (GET it for the list of routes)

Save this as keysync.sandbox.yaml, then:
  export KEYSYNC_3RPMS_TOKEN=%s
  go run ./cmd/keysync backfill --config keysync.sandbox.yaml

%s
Stop with Ctrl-C.
`, endpoint, admin, sandboxToken, sandboxConfig("./keysync-sandbox.db", endpoint))
	<-ctx.Done()
	return nil
}
