package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
)

// demo runs keysync end to end against an in-process sandbox: preview,
// backfill, a second run that plans nothing, and the next night.
func (env *environment) demo(ctx context.Context, args []string) error {
	fs := env.flagSet("demo", "usage: keysync demo [--rooms N] [--listings N]\n\nRuns keysync against in-process sandboxes of all four systems: no account, no config.\n\nexample: keysync demo --rooms 50\n\nflags:\n")
	rooms := fs.Int("rooms", 20, "rooms in the sandbox hotel (3RPMS)")
	listings := fs.Int("listings", 6, "listings in the sandbox apartments (Guestway)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	// The demo narrates what it does; raw log lines only when asked for.
	log := slog.New(slog.DiscardHandler)
	if level := env.getenv("KEYSYNC_LOG_LEVEL"); level != "" {
		var err error
		if log, err = newLogger(env.stderr, level); err != nil {
			return withCode(ExitConfig, err)
		}
	}
	dir, err := os.MkdirTemp("", "keysync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	now := env.now().UTC().Truncate(time.Second)
	// The sandboxes' rate limits run on keysync's clock, which paces it.
	sb, err := startSandboxes("127.0.0.1:0", *rooms, *listings, now, env.clock.Now)
	if err != nil {
		return err
	}
	defer sb.stop()
	getenv := func(k string) string {
		if v, ok := sandboxEnv[k]; ok {
			return v
		}
		return env.getenv(k)
	}
	cfg, err := ParseConfig(strings.NewReader(sb.config(filepath.Join(dir, "keysync.db"))), getenv)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	cfg.StateKeyFile = filepath.Join(dir, "keysync.key")
	denv := &environment{stdout: env.stdout, stderr: env.stderr, getenv: getenv, now: env.now, clock: env.clock, retry: env.retry}
	w := env.stdout
	fmt.Fprintf(w, "Sandboxes at %s: a %d-room hotel on 3RPMS (%d stays, %d keys of another integration) and %d apartments on Guestway.\n",
		sb.base, *rooms, len(sb.rpms.Stays()), len(sb.rpms.Keys()), *listings)
	fmt.Fprintln(w, "Rooms open by PIN (3RPMS RoomAccessPin), QR (OpenApp invite + RoomAccessQR) or key box (access + RoomAccessKeyStorage).")

	section := func(title string) { fmt.Fprintf(w, "\n=== %s\n\n", title) }
	step := func(mode reconcile.Mode, at time.Time) (*reconcile.Report, error) {
		rep, err := denv.once(ctx, cfg, reconcile.Options{Mode: mode, Now: at}, log)
		if err != nil {
			return nil, err
		}
		if rep.DryRun {
			printPlan(w, rep, false, "")
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
	sb.setNow(tomorrow)
	if _, err := step(reconcile.ModeRun, tomorrow); err != nil {
		return err
	}

	section("5. keysync serve: a booking made during the day, keyed by its webhook")
	if err := env.demoWebhook(ctx, w, sb, getenv, filepath.Join(dir, "keysync.db"), dir, tomorrow.Add(8*time.Hour)); err != nil {
		return err
	}

	section("Summary")
	ours := 0
	for _, k := range sb.rpms.Keys() {
		if k.Owner == sandboxIntegration && !k.Deleted && len(k.StayIDs) > 0 {
			ours++
		}
	}
	fmt.Fprintf(w, "First connection: %s.\n", requestSummary(first))
	fmt.Fprintf(w, "3RPMS keys created and assigned in %d write request(s) for the whole hotel.\n", first.Requests[reconcile.System3RPMS].Writes)
	fmt.Fprintf(w, "Run straight after: %d action(s), %d write request(s).\n", len(second.Actions()), writeRequests(second))
	fmt.Fprintf(w, "Keys of keysync assigned in the sandbox 3RPMS now: %d.\n", ours)
	if first.Partial() || second.Partial() || len(second.Actions()) > 0 {
		return withCode(ExitPartial, errors.New("demo: a run did not converge; see above"))
	}
	return nil
}

// demoWebhook runs serve against the sandboxes with a listener, books a
// stay arriving today at `at`, and shows the webhook keying it.
func (env *environment) demoWebhook(ctx context.Context, w io.Writer, sb *sandboxes, getenv func(string) string, statePath, dir string, at time.Time) error {
	cfgPath := filepath.Join(dir, "serve.yaml")
	cfg := strings.Replace(sb.config(statePath), "properties:\n", "listen: 127.0.0.1:0\nwebhook_debounce: 200ms\nproperties:\n", 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	bound := make(chan string, 1)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	senv := &environment{stdout: io.Discard, stderr: io.Discard, getenv: getenv, now: func() time.Time { return at },
		clock: env.clock, retry: env.retry, listening: func(a string) { bound <- a }}
	go func() { done <- senv.run(sctx, []string{"serve", "--config", cfgPath, "--log-level", "error"}) }()
	defer func() { stop(); <-done }()
	var addr string
	select {
	case addr = <-bound:
	case err := <-done:
		return fmt.Errorf("demo: serve did not start: %w", err)
	}
	sb.rpms.SetWebhook("http://"+addr+"/webhooks/3rpms/sandbox-hotel", sandboxWebhookSecret)
	defer sb.rpms.SetWebhook("", "")

	// A room free tonight and tomorrow.
	day := at.Format(rpmsandbox.DateLayout)
	next := at.Add(24 * time.Hour).Format(rpmsandbox.DateLayout)
	busy := map[string]bool{}
	for _, s := range sb.rpms.Stays() {
		if !s.Deleted && !s.Cancelled && s.Arrival <= next && s.Departure > day {
			busy[s.RoomID] = true
		}
	}
	room := ""
	for _, r := range sb.rpms.Rooms() {
		if !busy[r.ID] && sb.hotel[r.ID] == "pin" {
			room = r.ID
			break
		}
	}
	if room == "" {
		fmt.Fprintln(w, "No PIN room is free tonight in this sandbox; skipped.")
		return nil
	}
	before := len(sb.rpms.Requests())
	start := time.Now()
	if err := sb.rpms.AddStay(rpmsandbox.Stay{ID: "late-1", RoomID: room, Arrival: day, Departure: next}); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: a guest books room %s for tonight (stay late-1); 3RPMS posts room_stay.created to %s.\n", at.Format("15:04"), room, "http://"+addr+"/webhooks/3rpms/sandbox-hotel")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s, _ := sb.rpms.Stay("late-1"); s.KeyID != "" {
			break
		}
		if time.Now().After(deadline) {
			return withCode(ExitPartial, errors.New("demo: the webhook's booking was not keyed within 10 s"))
		}
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let the run record its end
	reads, writes := 0, 0
	for _, r := range sb.rpms.Requests()[before:] {
		if r.Operation == "mutation" {
			writes++
		} else {
			reads++
		}
	}
	fmt.Fprintf(w, "serve queued the event, ran for that stay alone and keyed it %s later, in %d read and %d write request(s).\n",
		elapsed.Round(10*time.Millisecond), reads, writes)
	return nil
}

// writeRequests is how many write requests a run sent, all systems.
func writeRequests(rep *reconcile.Report) int {
	n := 0
	for _, c := range rep.Requests {
		n += c.Writes
	}
	return n
}

// requestSummary lists a run's write requests per system.
func requestSummary(rep *reconcile.Report) string {
	var parts []string
	for _, sys := range sortedKeys(rep.Requests) {
		parts = append(parts, fmt.Sprintf("%s %d", sys, rep.Requests[sys].Writes))
	}
	return "write requests " + strings.Join(parts, ", ")
}

// sandbox runs the sandboxes until SIGTERM, printing a config to use them.
func (env *environment) sandbox(ctx context.Context, args []string) error {
	fs := env.flagSet("sandbox", "usage: keysync sandbox [--listen ADDR] [--serve-listen ADDR] [--rooms N] [--listings N]\n\nServes the four sandboxes until stopped and prints a config that uses them.\n\nexample: keysync sandbox --listen 127.0.0.1:8080   (then save the printed config, from its first comment line, as keysync.sandbox.yaml, mode 600)\n\nflags:\n")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on (keep it on loopback)")
	serveAt := fs.String("serve-listen", "127.0.0.1:8081", "where keysync serve will listen: the sandbox 3RPMS posts its webhooks there, and the printed config says so")
	rooms := fs.Int("rooms", 20, "rooms in the sandbox hotel (3RPMS)")
	listings := fs.Int("listings", 6, "listings in the sandbox apartments (Guestway)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	sb, err := startSandboxes(*listen, *rooms, *listings, env.now().UTC().Truncate(time.Second), nil)
	if err != nil {
		return withCode(ExitConfig, err)
	}
	defer sb.stop()
	sb.rpms.SetWebhook("http://"+*serveAt+"/webhooks/3rpms/sandbox-hotel", sandboxWebhookSecret)
	var exports strings.Builder
	for _, k := range sortedKeys(sandboxEnv) {
		fmt.Fprintf(&exports, "  export %s=%s\n", k, sandboxEnv[k])
	}
	fmt.Fprintf(env.stdout, `Sandboxes serving.
  3RPMS GraphQL:  %[1]s/graphql      admin %[1]s/_sandbox/
  OpenApp:        %[1]s/openapp/     admin %[1]s/openapp/_sandbox/
  key box:        %[1]s/keybox/      admin %[1]s/keybox/_sandbox/
  Guestway:       %[1]s/guestway/    admin %[1]s/guestway/_sandbox/
(GET an admin URL for its list of routes.)

Save the config below, from its first line ("# keysync against the
sandboxes") to its last, as keysync.sandbox.yaml (mode 600), then:
%[2]s  go run ./cmd/keysync backfill --config keysync.sandbox.yaml

To see webhooks at work, run serve, then book a stay for today with the
admin API: the sandbox posts room_stay.created to serve, which keys it
within seconds.
  go run ./cmd/keysync serve --config keysync.sandbox.yaml
  curl -X POST %[1]s/_sandbox/stays -d '{"room_id": "<a free room>", "arrival": "<today>", "departure": "<tomorrow>"}'

%[3]s
Stop with Ctrl-C.
`, sb.base, exports.String(), strings.Replace(sb.config("./keysync-sandbox.db"), "properties:\n", "listen: "+*serveAt+"\nproperties:\n", 1))
	<-ctx.Done()
	return nil
}
