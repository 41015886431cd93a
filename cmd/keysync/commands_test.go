package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestDemoConverges runs the README's first command: the demo must exit 0,
// key the whole property in two write requests and then plan nothing. It
// paces at the seeds' 5 requests/s, on a fake clock that the sandboxes'
// rate limits share, so it waits no real time and no request is refused.
func TestDemoConverges(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	env := newEnvironment(&out, &errb, func(string) string { return "" })
	// The demo books its sandboxes around now; which stays arrive within
	// 24 hours (and so need a person when another integration keyed
	// them) depends on the hour, so the demo runs at 02:00 UTC today, as
	// a nightly run would.
	night := time.Now().UTC().Truncate(24 * time.Hour).Add(2 * time.Hour)
	fake := clocktest.New(night)
	env.now, env.clock, env.retry.Clock = fake.Now, fake, fake
	err := env.run(context.Background(), []string{"demo"})
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	if errb.Len() > 0 {
		t.Errorf("demo printed raw log lines:\n%s", errb.String())
	}
	wantAll(t, "demo output", out.String(),
		"3RPMS keys created and assigned in 2 write request(s) for the whole hotel.",
		"Run straight after: 0 action(s), 0 write request(s).",
		// The sandbox hotel's rs_1 and rs_4 hold another integration's
		// keys in rooms keysync keys.
		"Nothing keysync can do, but 2 item(s) need a person (see Needs a person below).",
		"departed",
		"keyed it",
	)
	if len(fake.Sleeps()) == 0 {
		t.Error("the demo never waited for its pacer")
	}
	// Notes name their property: a portfolio's like-named stays and rooms
	// are told apart.
	if !regexp.MustCompile(`(?m)^KIND +PROPERTY +STAY .*\n(.*\n)*conflict \(attention\) +sandbox-hotel +rs_1 `).MatchString(out.String()) {
		t.Errorf("the demo's notes do not name the property of rs_1's conflict:\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSandboxCommandPrintsAWorkingConfig starts `keysync sandbox`, takes the
// config it prints, and backfills against it.
func TestSandboxCommandPrintsAWorkingConfig(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sandbox", "--listen", "127.0.0.1:0", "--rooms", "10"}, &out, io.Discard, os.Getenv)
	}()
	waitFor(t, "the sandbox banner", func() bool { return strings.Contains(out.String(), "Stop with Ctrl-C") })
	text := out.String()
	if !regexp.MustCompile(`3RPMS GraphQL:\s+http://127\.0\.0\.1:\d+/graphql`).MatchString(text) {
		t.Fatalf("no endpoint in:\n%s", text)
	}
	cfgText := text[strings.Index(text, "# keysync against the sandboxes"):strings.Index(text, "Stop with Ctrl-C")]
	dir := t.TempDir()
	cfgText = strings.Replace(cfgText, "./keysync-sandbox.db", filepath.Join(dir, "k.db"), 1)
	cfgPath := filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	// The banner's export lines, as a shell would apply them.
	exports := map[string]string{}
	for _, m := range regexp.MustCompile(`export (\w+)=(\S+)`).FindAllStringSubmatch(text, -1) {
		exports[m[1]] = m[2]
	}
	getenv := func(k string) string { return exports[k] }
	var rout, rerr bytes.Buffer
	// 6: the sandbox hotel's rs_1 and rs_4 hold another integration's keys
	// in rooms keysync keys, which needs a person.
	if err := Run(context.Background(), []string{"backfill", "--config", cfgPath}, &rout, &rerr, getenv); exitCode(err) != ExitAttention || !strings.Contains(err.Error(), "stay rs_1") {
		t.Fatalf("backfill against the printed config: %v (exit %d), want 6 naming rs_1\n%s", err, exitCode(err), rerr.String())
	}
	if !strings.Contains(rout.String(), "create") {
		t.Errorf("backfill created nothing:\n%s", rout.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sandbox returned %v", err)
	}
}

// TestServeBackfillsThenStopsOnCancel starts serve without a state file:
// it backfills at once, then stops cleanly when its context ends (SIGTERM).
func TestServeBackfillsThenStopsOnCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, "")
	h.stay("s1", "r101", 0, 2)
	h.stay("s2", "r102", 1, 2)
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan error, 1)
	go func() {
		env := &environment{stdout: io.Discard, stderr: &errb, getenv: h.getenv, now: func() time.Time { return h.now }}
		done <- env.run(ctx, []string{"serve", "--config", h.cfgPath})
	}()
	waitFor(t, "serve to backfill", func() bool { return len(h.ours()) == 2 && strings.Contains(errb.String(), "serving") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s of cancellation")
	}
	if _, err := os.Stat(h.cfg.State); err != nil {
		t.Errorf("serve's backfill left no state file: %v", err)
	}
}

// TestShellQuote: the plan-saved hint's paths are one shell word each.
func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/etc/keysync/keysync.yaml": "/etc/keysync/keysync.yaml",
		"my plans/t 2.plan":         "'my plans/t 2.plan'",
		"it's.plan":                 `'it'\''s.plan'`,
		"$HOME/p.plan":              "'$HOME/p.plan'",
		"":                          "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
