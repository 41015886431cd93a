package main

// Truthful outcomes: what keysync says and how it exits when the servers
// are not the friendly sandbox (unreachable, refusing, rate limiting), and
// that what it reports and counts is what happened.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// execText runs keysync in-process on a fake clock like exec, with the
// given extra arguments and without --json, and returns what it printed.
func (fw *faultWorld) execText(cmd string, getenv func(string) string, extra ...string) faultRun {
	fw.t.Helper()
	return fw.runOn(clocktest.New(fw.now), getenv, cmd, extra...)
}

// TestNothingToDoOnlyWhenEveryReadSucceeded: with every source read
// refused (503, 429 beyond the run's patience, 401), neither the plan nor
// the run report may open with "Nothing to do", which claims every stay
// holds the right key; they say the reads failed instead.
func TestNothingToDoOnlyWhenEveryReadSucceeded(t *testing.T) {
	t.Parallel()
	// Refused reads are not a wrong URL: 503 and 429 stay partial (3), a
	// refused credential is a config error (2).
	codes := map[string]int{"503": ExitPartial, "429": ExitPartial, "401": ExitConfig}
	refuse := map[string]func(rw http.ResponseWriter){
		"503": fault.Answer503,
		"429": func(rw http.ResponseWriter) {
			rw.Header().Set("Retry-After", "86400")
			rw.WriteHeader(http.StatusTooManyRequests)
		},
		"401": func(rw http.ResponseWriter) {
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusUnauthorized)
			io.WriteString(rw, `{"error":"unauthorized"}`)
		},
	}
	for name, answer := range refuse {
		t.Run(name, func(t *testing.T) {
			fw := newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "pin"})
			fw.hotelStay("s1", "r101", 0, 2)
			fw.addReservation("G1", "L1", 0, 2)
			fw.mustExec(ExitOK, "backfill")
			// Converged: a run with working reads has nothing to do.
			if ok := fw.execText("run", nil); ok.code != ExitOK || !strings.Contains(ok.stdout, "Nothing to do") {
				t.Fatalf("converged run: exit %d, want %d and \"Nothing to do\"\n%s", ok.code, ExitOK, ok.stdout)
			}
			fw.setFault(when(func(r *http.Request) bool {
				s := sysOf(r)
				return s == reconcile.System3RPMS || s == reconcile.SystemGuestway
			}, func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) { answer(rw) }))
			for _, cmd := range []string{"plan", "run"} {
				r := fw.execText(cmd, nil)
				if r.code != codes[name] {
					t.Errorf("%s exited %d, want %d", cmd, r.code, codes[name])
				}
				if strings.Contains(r.stdout, "Nothing to do") {
					t.Errorf("%s says \"Nothing to do\" although every read failed:\n%s", cmd, r.stdout)
				}
				if !strings.Contains(r.stdout, "could not be read") {
					t.Errorf("%s does not say the reads failed:\n%s", cmd, r.stdout)
				}
			}
		})
	}
}

// TestNothingToDoNotClaimedWhenAReadBackFails: an invite create whose
// answer was lost is read back (GET) on the next run; when that read fails
// the stay gets nothing this run, so the report must not say "Nothing to
// do", and the run is partial.
func TestNothingToDoNotClaimedWhenAReadBackFails(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r201": "qr"}, nil)
	fw.hotelStay("s1", "r201", 0, 2)
	fw.setFault(when(func(r *http.Request) bool { return requestTo(r, reconcile.SystemOpenApp, http.MethodPost) }, fault.Drop))
	fw.mustExec(ExitPartial, "backfill")
	fw.setFault(when(func(r *http.Request) bool { return requestTo(r, reconcile.SystemOpenApp, http.MethodGet) }, sinktest.Unavailable))
	r := fw.execText("run", nil)
	if r.code != ExitPartial {
		t.Errorf("run exited %d, want %d (a read-back failed)\n%s", r.code, ExitPartial, r.stdout)
	}
	if strings.Contains(r.stdout, "Nothing to do") {
		t.Errorf("the report says \"Nothing to do\" although a read-back failed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "FAILED sandbox-hotel openapp") {
		t.Errorf("the report does not name the failed read-back:\n%s", r.stdout)
	}
	fw.setFault(nil)
	fw.mustExec(ExitOK, "run")
	fw.checkInvariants(fw.foreign())
}

// TestErrorsShowIds: stay, key and reservation ids are not secrets and an
// operator needs them. A stay deleted between keysync's create and assign
// makes 3RPMS answer "room stay rs_1042 not found"; the action's error quotes
// it with the id, over real HTTP against the sandbox. PINs stay out.
func TestErrorsShowIds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, "")
	h.stay("s1", "r101", 0, 2)
	h.stay("rs_1042", "r102", 0, 2)
	deleted := false
	h.before = func(r *http.Request, body []byte) {
		if !deleted && bytes.Contains(body, []byte("addRoomAccessKey")) {
			deleted = true
			if err := h.sb.DeleteStay("rs_1042"); err != nil {
				t.Error(err)
			}
		}
	}
	rep := h.mustRun(ExitPartial, "backfill")
	var msg string
	for _, a := range rep.Actions() {
		if a.Op == reconcile.OpAssign && a.Stay.ID == "rs_1042" {
			msg = a.Error
		}
	}
	if !strings.Contains(msg, "room stay rs_1042 not found") {
		t.Errorf("assign rs_1042 error = %q, want the server's \"room stay rs_1042 not found\" with the id", msg)
	}
	if strings.Contains(msg, "[redacted]") {
		t.Errorf("assign rs_1042 error = %q redacts something although it quotes only ids", msg)
	}
	for _, k := range h.sb.Keys() {
		if k.PIN != "" && strings.Contains(msg, k.PIN) {
			t.Errorf("assign rs_1042 error = %q quotes a PIN", msg)
		}
	}
}

// TestExplicitZeroReserveReported: reserve_for_revocations: 0 is a valid
// choice (no reserve); the plan's budget reports 0, not the default 200.
func TestExplicitZeroReserveReported(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, "      reserve_for_revocations: 0\n")
	h.stay("s1", "r101", 0, 2)
	rep := h.mustRun(ExitOK, "plan")
	if b := onlyAccount(t, rep.Budget, reconcile.System3RPMS); b.Reserve != 0 || b.Cap != 10000 {
		t.Errorf("3RPMS budget = %+v, want the default cap 10000 with reserve 0", b)
	}
}

// TestPlanRequestsInTheLedger: plan reads the source, and those requests
// count against the daily cap like any other: they are in the state file's
// ledger afterwards, and a plan writes nothing else (no run, no credential).
func TestPlanRequestsInTheLedger(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 3, "", booking{"s1", "r101", 0, 2})
	h.stay("s2", "r102", 1, 3)
	spent := func() int {
		t.Helper()
		return systemSpent(ledgerSpent(t, h.cfg.State, h.now.Add(-24*time.Hour)), reconcile.System3RPMS)
	}
	before, creds := spent(), len(h.credentials())
	rep := h.mustRun(ExitOK, "plan")
	reads := rep.Requests[reconcile.System3RPMS].Reads
	if reads == 0 {
		t.Fatal("plan made no read request")
	}
	if got := spent(); got != before+reads {
		t.Errorf("ledger: %d 3RPMS requests after plan, want %d before + %d plan reads", got, before, reads)
	}
	if b := onlyAccount(t, rep.Budget, reconcile.System3RPMS); b.UsedToday != before+reads {
		t.Errorf("plan reports %d used in 24 h, want %d", b.UsedToday, before+reads)
	}
	if n := len(h.credentials()); n != creds {
		t.Errorf("plan changed the recorded credentials: %d, was %d", n, creds)
	}
	if len(h.ours()) != 1 {
		t.Error("plan wrote to 3RPMS")
	}
}

// closedURL is an http URL on a local port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestUnreachableSourceNamesTheField: a source that cannot be reached at
// all is a configuration problem, not a partial run that "the next run
// retries": connection refused exits 1, a wrong URL (404 on the endpoint,
// a host that does not resolve) exits 2, each with one line naming the
// config field to check. Nothing is written anywhere.
func TestUnreachableSourceNamesTheField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		hotel bool // else the Guestway apartments
		url   func(t *testing.T, base string) string
		code  int
		field string
	}{
		{"3rpms refused", true, func(t *testing.T, _ string) string { return closedURL(t) + "/graphql" }, ExitFailure, "properties[0].threerpms.endpoint"},
		{"3rpms 404", true, func(_ *testing.T, base string) string { return base + "/api/graphql" }, ExitConfig, "properties[0].threerpms.endpoint"},
		{"3rpms no such host", true, func(t *testing.T, _ string) string { return noSuchHost(t) + "/graphql" }, ExitConfig, "properties[0].threerpms.endpoint"},
		{"guestway refused", false, func(t *testing.T, _ string) string { return closedURL(t) + "/guestway" }, ExitFailure, "properties[0].guestway.base_url"},
		{"guestway 404", false, func(_ *testing.T, base string) string { return base + "/guestway/v9" }, ExitConfig, "properties[0].guestway.base_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fw *faultWorld
			var from string
			if tc.hotel {
				fw = newFaultWorld(t, map[string]string{"r101": "pin", "r201": "qr"}, nil)
				fw.hotelStay("s1", "r101", 0, 2)
				fw.hotelStay("s2", "r201", 0, 2)
				from = "endpoint: " + fw.sb.base + "/graphql"
			} else {
				fw = newFaultWorld(t, nil, map[string]string{"L1": "pin", "L2": "qr"})
				fw.addReservation("G1", "L2", 0, 2)
				from = "base_url: " + fw.sb.base + "/guestway"
			}
			cfg, err := os.ReadFile(fw.cfg)
			if err != nil {
				t.Fatal(err)
			}
			to := strings.SplitN(from, ": ", 2)[0] + ": " + tc.url(t, fw.sb.base)
			if !bytes.Contains(cfg, []byte(from)) {
				t.Fatalf("config has no %q:\n%s", from, cfg)
			}
			if err := os.WriteFile(fw.cfg, bytes.Replace(cfg, []byte(from), []byte(to), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"backfill", "plan"} {
				r := fw.execText(cmd, nil)
				msg := errString(r.err)
				t.Logf("%s: exit %d: %s", cmd, r.code, msg)
				if r.code != tc.code {
					t.Errorf("%s exited %d, want %d\n%s%s", cmd, r.code, tc.code, r.stdout, r.stderr)
				}
				if !strings.HasPrefix(msg, tc.field+": ") || strings.Contains(msg, "\n") {
					t.Errorf("%s: error %q, want one line starting with %s", cmd, msg, tc.field)
				}
				if strings.Contains(r.stdout, "next run retries") {
					t.Errorf("%s says the next run retries a configuration error:\n%s", cmd, r.stdout)
				}
			}
			if n := len(fw.invites()); n != 0 {
				t.Errorf("%d OpenApp invites although the source was never read", n)
			}
		})
	}
}

// noSuchHost is an http URL whose host does not resolve (.invalid is
// reserved for that). Where the resolver cannot say so (no DNS at all, so
// lookups time out) the test is skipped rather than made to depend on it.
func noSuchHost(t *testing.T) string {
	t.Helper()
	const host = "keysync-test.invalid"
	_, err := net.DefaultResolver.LookupHost(context.Background(), host)
	var dns *net.DNSError
	if !errors.As(err, &dns) || !dns.IsNotFound {
		t.Skipf("the resolver does not report %s as not found (%v)", host, err)
	}
	return "http://" + host
}

// TestBackToBackRunsNo429: two keysync processes run one right after the
// other against a 3RPMS sandbox with the seed's limits (5 requests/s,
// bursts of 10). The second must not assume the server's burst is full:
// it seeds its pacer from the ledger, and the sandbox refuses nothing.
// Each run is a fresh environment (its own pacers, as a new process has);
// keysync's pacer and the sandbox's rate limiter share one fake clock, so
// the waits take no real time and nothing depends on timing.
func TestBackToBackRunsNo429(t *testing.T) {
	t.Parallel()
	fake := clocktest.New(t0)
	sb := sandbox.New(sandbox.Options{
		Integrations: map[string]string{testToken: ourID},
		Now:          t0,
		Rates:        sandboxkit.Rates{RateNow: fake.Now},
	}.WithSeedLimits())
	for i := range 24 {
		room := fmt.Sprintf("r%d", 101+i)
		sb.AddRoom(room, fmt.Sprint(101+i))
		if err := sb.AddStay(sandbox.Stay{ID: fmt.Sprintf("s%d", i), RoomID: room, Arrival: day(i % 3), Departure: day(i%3 + 2)}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keysync.yaml")
	// Two stays a page: 12 reads a run, more than the burst.
	yaml := fmt.Sprintf(`state: %s
properties:
  - name: hotel
    timezone: Europe/Ljubljana
    threerpms:
      endpoint: %s/graphql
      token: ${KEYSYNC_3RPMS_TOKEN}
      page_size: 2
    default_method: pin
`, filepath.Join(dir, "keysync.db"), srv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "KEYSYNC_3RPMS_TOKEN" {
			return testToken
		}
		return ""
	}
	process := func(cmd string) {
		t.Helper()
		var out, errb bytes.Buffer
		env := &environment{
			stdout: &out, stderr: &errb, getenv: getenv,
			now:   fake.Now,
			clock: fake,
			retry: httpapi.Retry{Clock: fake, Rand: func() float64 { return 0.5 }},
		}
		// The run acts at the clock's present, as a timer's run does.
		err := env.run(context.Background(), []string{cmd, "--config", cfg, "--now", fake.Now().Format(time.RFC3339Nano)})
		if code := exitCode(err); code != ExitOK {
			t.Fatalf("%s exited %d: %v\n%s", cmd, code, err, errb.String())
		}
	}
	process("backfill")
	first := len(sb.Requests())
	process("run")
	process("plan")
	var refused int
	for _, q := range sb.Requests() {
		if q.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	t.Logf("%d requests (%d by the backfill), %d refused; fake clock moved %s", len(sb.Requests()), first, refused, fake.Now().Sub(t0))
	if first <= 10 {
		t.Fatalf("the backfill sent %d requests; the test needs more than the burst of 10", first)
	}
	if refused > 0 {
		t.Errorf("the sandbox answered %d requests with 429: a new process assumed a full burst", refused)
	}
}
