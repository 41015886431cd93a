package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/metrics"
	"github.com/keysync/keysync/internal/sinktest"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/internal/webhook"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// serveWorld is a faultWorld with `keysync serve` running against it,
// listening for the sandbox 3RPMS's webhooks.
type serveWorld struct {
	*faultWorld
	addr   string
	stderr *syncBuffer
	stop   func() error
}

// startServe backfills, then starts serve with a listener and points the
// sandbox's webhooks at it. debounce is serve's webhook_debounce.
func startServe(t *testing.T, fw *faultWorld, debounce string, backfill bool) *serveWorld {
	t.Helper()
	if backfill {
		fw.mustExec(ExitOK, "backfill")
	}
	listenFor(t, fw, debounce)
	sw := &serveWorld{faultWorld: fw, stderr: &syncBuffer{}}
	now := fw.now
	sw.addr, sw.stop = launchServe(t, fw, func() time.Time { return now }, sw.stderr)
	t.Cleanup(func() { sw.stop() })
	return sw
}

// listenFor gives fw's config a listen address and webhook_debounce, unless
// it has a listen address already.
func listenFor(t *testing.T, fw *faultWorld, debounce string) {
	t.Helper()
	cfg, err := os.ReadFile(fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte("listen:")) {
		fw.editConfig("properties:\n", "listen: 127.0.0.1:0\nwebhook_debounce: "+debounce+"\nproperties:\n")
	}
}

// editConfig replaces the first old in fw's config file with new.
func (fw *faultWorld) editConfig(old, new string) {
	fw.t.Helper()
	cfg, err := os.ReadFile(fw.cfg)
	if err != nil {
		fw.t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(old)) {
		fw.t.Fatalf("the config has no %q to replace:\n%s", old, cfg)
	}
	if err := os.WriteFile(fw.cfg, bytes.Replace(cfg, []byte(old), []byte(new), 1), 0o600); err != nil {
		fw.t.Fatal(err)
	}
}

// launchServe starts serve on fw's config, on the clock now and logging
// to stderr, and points the sandbox's webhooks at it. stop cancels it, as
// SIGTERM does, and returns how it ended; a second call does nothing.
func launchServe(t *testing.T, fw *faultWorld, now func() time.Time, stderr *syncBuffer, with ...func(*environment)) (addr string, stop func() error) {
	t.Helper()
	bound := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		clock := reconcile.WallClock{}
		env := &environment{stdout: &bytes.Buffer{}, stderr: stderr, getenv: fw.getenv, now: now,
			clock: clock, retry: httpapi.Retry{Clock: clock}, listening: func(a string) { bound <- a }}
		for _, f := range with {
			f(env)
		}
		done <- env.run(ctx, []string{"serve", "--config", fw.cfg})
	}()
	select {
	case addr = <-bound:
	case err := <-done:
		t.Fatalf("serve ended before listening: %v\n%s", err, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not listen:\n%s", stderr.String())
	}
	fw.sb.rpms.SetWebhook("http://"+addr+"/webhooks/3rpms/sandbox-hotel", sandboxWebhookSecret)
	var once sync.Once
	var err error
	return addr, func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop within 20 s")
			}
		})
		return err
	}
}

// postWebhook delivers a webhook body to serve at addr, signed with secret.
func postWebhook(t *testing.T, addr, body, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/3rpms/sandbox-hotel", strings.NewReader(body))
	if secret != "" {
		req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// post delivers a webhook body to serve, signed with secret.
func (sw *serveWorld) post(t *testing.T, body, secret string) int {
	t.Helper()
	return postWebhook(t, sw.addr, body, secret)
}

// targetedRuns counts the state's runs of the targeted mode.
func (sw *serveWorld) targetedRuns(t *testing.T) int {
	t.Helper()
	cfg, err := LoadConfig(sw.cfg, sw.getenv)
	if err != nil {
		t.Fatal(err)
	}
	return finishedRuns(t, cfg.State, reconcile.ModeTargeted)
}

// finishedRuns counts the runs of mode the state file at path records as
// finished.
func finishedRuns(t *testing.T, path string, mode reconcile.Mode) int {
	t.Helper()
	db := openState(t, path, state.Options{ReadOnly: true})
	defer db.Close()
	runs, err := db.Runs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range runs {
		if r.Mode == mode && r.Status != state.RunRunning {
			n++
		}
	}
	return n
}

// keyedWithin waits for a stay to hold a key of ours.
func (sw *serveWorld) keyedWithin(t *testing.T, stay string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s, _ := sw.sb.rpms.Stay(stay); s.KeyID != "" {
			for _, k := range sw.sb.rpms.Keys() {
				if k.ID == s.KeyID && k.Owner == sandboxIntegration {
					return k.ID
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("stay %s not keyed within %s\n%s", stay, d, sw.stderr.String())
	return ""
}

// TestWebhookSameDayBookingKeyedWithinSeconds: a booking for today made
// while serve runs is keyed within 5 s of its event, in at most 3
// requests (one read, two writes), its duplicate delivery included; a
// duplicate delivered after the run reads and writes nothing.
//
// It and TestWebhookCoalescesABurst run alone (not t.Parallel): their
// verdicts rest on the wall clock (keyed within 5 s; a hundred events
// within ten debounces), which the package's other tests must not crowd.
func TestWebhookSameDayBookingKeyedWithinSeconds(t *testing.T) {
	fw := newFaultWorld(t, pinRooms(4), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	sw := startServe(t, fw, "200ms", true)
	before := len(fw.sb.rpms.Requests())
	start := time.Now()
	if err := fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "late", RoomID: "r102", Arrival: day(0), Departure: day(1)}); err != nil {
		t.Fatal(err)
	}
	// 3RPMS delivers the event twice: the duplicate adds no request.
	if code := sw.post(t, `{"event":"room_stay.created","data":{"id":"late"}}`, sandboxWebhookSecret); code != http.StatusAccepted {
		t.Fatalf("duplicate event answered %d", code)
	}
	sw.keyedWithin(t, "late", 5*time.Second)
	t.Logf("keyed %s after the booking", time.Since(start))
	waitFor(t, "the targeted run to finish", func() bool { return sw.targetedRuns(t) == 1 })
	if n := len(fw.sb.rpms.Requests()) - before; n > 3 {
		t.Errorf("the event cost %d requests, want at most 3", n)
	}
	// The same event again, later: a run that reads the stay and writes
	// nothing.
	after := len(fw.sb.rpms.Requests())
	if code := sw.post(t, `{"event":"room_stay.created","data":{"id":"late"}}`, sandboxWebhookSecret); code != http.StatusAccepted {
		t.Fatalf("duplicate event answered %d", code)
	}
	waitFor(t, "the duplicate's run", func() bool { return sw.targetedRuns(t) == 2 })
	for _, r := range fw.sb.rpms.Requests()[after:] {
		if r.Operation == "mutation" {
			t.Errorf("the duplicate event wrote: %+v", r)
		}
	}
	fw.checkInvariants("")
}

// TestWebhookCoalescesABurst: 100 events within the debounce become one
// targeted run, which keys every stay they name.
func TestWebhookCoalescesABurst(t *testing.T) {
	fw := newFaultWorld(t, pinRooms(50), nil)
	sw := startServe(t, fw, "1s", true)
	for i := range 50 {
		id := "b" + strconv.Itoa(i)
		if err := fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: id, RoomID: roomID(i), Arrival: day(0), Departure: day(2)}); err != nil {
			t.Fatal(err)
		}
		if err := fw.sb.rpms.ChangeDates(id, day(0), day(3)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every stay keyed", func() bool {
		for i := range 50 {
			if s, _ := fw.sb.rpms.Stay("b" + strconv.Itoa(i)); s.KeyID == "" {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	if n := sw.targetedRuns(t); n != 1 {
		t.Errorf("100 events became %d targeted runs, want 1", n)
	}
	fw.checkInvariants("")
}

// TestWebhookRefusals: a wrong or missing signature gets 401 and no read;
// an unknown property 404; an oversized body 413; an unknown event 202 and
// no work.
func TestWebhookRefusals(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(2), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	sw := startServe(t, fw, "100ms", true)
	before := len(fw.sb.rpms.Requests())
	body := `{"event":"room_stay.updated","data":{"id":"s1"}}`
	if code := sw.post(t, body, "wrong-secret"); code != http.StatusUnauthorized {
		t.Errorf("wrong signature: %d", code)
	}
	if code := sw.post(t, body, ""); code != http.StatusUnauthorized {
		t.Errorf("no signature: %d", code)
	}
	if code := sw.post(t, `{"event":"invoice.paid","data":{"id":"x"}}`, sandboxWebhookSecret); code != http.StatusAccepted {
		t.Errorf("unknown event: %d", code)
	}
	big := `{"event":"room_stay.updated","data":{"id":"` + strings.Repeat("x", webhook.MaxBody) + `"}}`
	if code := sw.post(t, big, sandboxWebhookSecret); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+sw.addr+"/webhooks/3rpms/no-such-hotel", strings.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown property: %v %v", resp, err)
	}
	// Signed, but not the payload keysync assumes (the API document
	// shows none).
	if code := sw.post(t, `{"type":"room_stay.updated","payload":{"id":"s1"}}`, sandboxWebhookSecret); code != http.StatusBadRequest {
		t.Errorf("another payload shape: %d", code)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(fw.sb.rpms.Requests()) - before; n != 0 {
		t.Errorf("refused deliveries caused %d requests", n)
	}
	// An operator can alert on refusals: deliveries count by result.
	got := parseMetrics(t, scrape(t, "http://"+sw.addr+"/metrics"))
	for result, want := range map[string]float64{"bad_signature": 2, "ignored": 1, "too_large": 1, "unknown_property": 1, "bad_request": 1} {
		if name := `keysync_webhooks_total{result="` + result + `"}`; got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := http.Get("http://" + sw.addr + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %v %v", path, resp, err)
		}
	}
}

// TestWebhookKeyDeletedAndReservationCancelled: a key of ours deleted in
// 3RPMS re-keys its stay; a cancelled reservation's key is revoked on its
// event.
func TestWebhookKeyDeletedAndReservationCancelled(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(3), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 1, 3)
	sw := startServe(t, fw, "100ms", true)
	old := fw.key("s1").ID
	if err := fw.sb.rpms.DeleteKey(old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "s1 re-keyed", func() bool {
		s, _ := fw.sb.rpms.Stay("s1")
		return s.KeyID != "" && s.KeyID != old
	})
	s2 := fw.key("s2").ID
	if err := fw.sb.rpms.CancelReservation("res-s2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "s2's key revoked", func() bool {
		for _, k := range fw.sb.rpms.Keys() {
			if k.ID == s2 {
				return k.Deleted
			}
		}
		return false
	})
	waitFor(t, "runs to settle", func() bool { return sw.targetedRuns(t) >= 2 })
	time.Sleep(300 * time.Millisecond)
	fw.checkInvariants("")
}

// TestWebhookWaitsForTheLockAndSurvivesAStop: an event that arrives while
// another process holds the run lock is applied after it lets go; events
// queued when serve stops are run by the next serve.
func TestWebhookWaitsForTheLockAndSurvivesAStop(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(3), nil)
	sw := startServe(t, fw, "100ms", true)
	unlock := fw.holdLock()
	if err := fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "w1", RoomID: "r101", Arrival: day(0), Departure: day(1)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if s, _ := fw.sb.rpms.Stay("w1"); s.KeyID != "" {
		t.Fatal("keyed while another run held the lock")
	}
	unlock()
	sw.keyedWithin(t, "w1", 5*time.Second)

	// Stop serve with an event queued and not yet run.
	fw.sb.rpms.SetWebhook("", "")
	if code := sw.post(t, `{"event":"room_stay.created","data":{"id":"w2"}}`, sandboxWebhookSecret); code != http.StatusAccepted {
		t.Fatal(code)
	}
	if err := sw.stop(); err != nil {
		t.Fatal(err)
	}
	if err := fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "w2", RoomID: "r102", Arrival: day(0), Departure: day(1)}); err != nil {
		t.Fatal(err)
	}
	next := startServe(t, fw, "100ms", false)
	next.keyedWithin(t, "w2", 5*time.Second)
}

// TestRunStay: `keysync run --stay` is the same targeted run from the
// command line: it keys the stays named and touches nothing else.
func TestRunStay(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(3), nil)
	fw.mustExec(ExitOK, "backfill")
	fw.hotelStay("t1", "r101", 0, 2)
	fw.hotelStay("t2", "r102", 0, 2)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"run", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339), "--stay", "t1", "--json"}, &out, &errb, fw.getenv)
	if err != nil {
		t.Fatalf("run --stay: %v\n%s", err, errb.String())
	}
	var rep reconcile.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Mode != reconcile.ModeTargeted {
		t.Errorf("mode %s", rep.Mode)
	}
	for _, a := range rep.Actions() {
		if a.Stay.ID != "t1" {
			t.Errorf("run --stay t1 acted on %s", a.Stay.ID)
		}
	}
	if s, _ := fw.sb.rpms.Stay("t1"); s.KeyID == "" {
		t.Error("t1 not keyed")
	}
	if s, _ := fw.sb.rpms.Stay("t2"); s.KeyID != "" {
		t.Error("t2 keyed by a run for t1")
	}
}

// nightNeedingAPerson is a hotel of four PIN rooms whose backfill and
// nightly run needed a person (exit 6): s2 arrives today in a room another
// integration keyed; s1 is keyed.
func nightNeedingAPerson(t *testing.T) *faultWorld {
	t.Helper()
	fw := newFaultWorld(t, pinRooms(4), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 0, 2)
	fw.injectForeign("s2")
	fw.mustExec(ExitAttention, "backfill")
	fw.mustExec(ExitAttention, "run")
	return fw
}

// TestServeMetricsFromTheRecord: serve's /metrics starts from the state's
// record (the last whole run's exit code, the last success), not from
// zeros that would fire the age-of-last-success alert after every restart;
// and a webhook's targeted run, which reads a few stays, does not replace
// the last whole run's exit code (6 here: a stay arriving today in a room
// another integration keyed).
func TestServeMetricsFromTheRecord(t *testing.T) {
	t.Parallel()
	fw := nightNeedingAPerson(t)
	sw := startServe(t, fw, "200ms", false)
	metricsURL := "http://" + sw.addr + "/metrics"
	gauge := func(name string) float64 {
		t.Helper()
		text := scrape(t, metricsURL)
		v, ok := parseMetrics(t, text)[name]
		if !ok {
			t.Fatalf("no %s in /metrics:\n%s", name, text)
		}
		return v
	}
	if got := gauge("keysync_last_run_exit_code"); got != ExitAttention {
		t.Errorf("after a restart keysync_last_run_exit_code = %v, want the last run's %d", got, ExitAttention)
	}
	if got, want := gauge("keysync_last_success_timestamp_seconds"), float64(fw.now.Unix()); got != want {
		t.Errorf("after a restart keysync_last_success_timestamp_seconds = %v, want the last run's %v", got, want)
	}
	// s2's conflict needs a person: it counts among the problems, after a
	// restart too.
	if got := gauge("keysync_problems"); got != 1 {
		t.Errorf("after a restart keysync_problems = %v, want the last run's 1 (s2's conflict)", got)
	}
	if text := scrape(t, metricsURL); strings.Contains(text, "keysync_actions_total{") {
		t.Errorf("after a restart the last run's actions were counted again:\n%s", text)
	}

	if err := fw.sb.rpms.AddStay(rpmsandbox.Stay{ID: "late", RoomID: "r103", Arrival: day(0), Departure: day(1)}); err != nil {
		t.Fatal(err)
	}
	sw.keyedWithin(t, "late", 10*time.Second)
	// serve records a run in /metrics after the state file does.
	waitFor(t, "the targeted run in /metrics", func() bool {
		return strings.Contains(scrape(t, metricsURL), `keysync_requests_total{system="3rpms"}`)
	})
	if got := gauge("keysync_last_run_exit_code"); got != ExitAttention {
		t.Errorf("after a webhook's run keysync_last_run_exit_code = %v, want the last whole run's %d", got, ExitAttention)
	}
	if got := gauge("keysync_problems"); got != 1 {
		t.Errorf("after a webhook's run keysync_problems = %v, want the last whole run's 1", got)
	}
	if got := gauge("keysync_requests_total{system=\"3rpms\"}"); got == 0 {
		t.Error("the webhook's run is not in keysync_requests_total")
	}
	if n := sw.targetedRuns(t); n != 1 {
		t.Errorf("%d targeted runs, want 1", n)
	}
}

// TestServeResumesTheLastSuccess: serve's /metrics takes the last success
// from the record even when the run that had it did not record how it
// ended (killed after its report, or a state file from before exit codes
// were kept): the later of that and the last whole run's end, never 0.
func TestServeResumesTheLastSuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		earlier bool // an earlier run recorded its end (exit 0)
	}{
		{"the last success recorded no end", true},
		{"nothing recorded its end", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := state.Open(ctx, filepath.Join(t.TempDir(), "k.db"), state.Options{Create: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if tc.earlier {
				id, err := db.BeginRun(ctx, reconcile.ModeRun, t0)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.FinishRun(ctx, id, &reconcile.Report{RunID: id, Mode: reconcile.ModeRun, Now: t0}); err != nil {
					t.Fatal(err)
				}
				if err := db.EndRun(ctx, id, ExitOK, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			later := t0.Add(24 * time.Hour)
			id, err := db.BeginRun(ctx, reconcile.ModeRun, later)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.FinishRun(ctx, id, &reconcile.Report{RunID: id, Mode: reconcile.ModeRun, Now: later}); err != nil {
				t.Fatal(err)
			}
			l := &listener{queue: db, metrics: metrics.New("")}
			l.resume(ctx)
			srv := httptest.NewServer(l.metrics.Handler())
			defer srv.Close()
			if got := parseMetrics(t, scrape(t, srv.URL))["keysync_last_success_timestamp_seconds"]; got != float64(later.Unix()) {
				t.Errorf("keysync_last_success_timestamp_seconds = %v, want %v", got, float64(later.Unix()))
			}
		})
	}
}

// TestServeRetriesAWholeRunThatLeftWorkUndone: serve's first backfill
// meets a 3RPMS that refuses its writes for a moment (503): rather than
// leave today's guest without a key until the nightly run, serve runs
// again after a pause (10 minutes in production, shortened here), keys
// the guest, and then, with nothing left undone, runs no more.
func TestServeRetriesAWholeRunThatLeftWorkUndone(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(4), nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.editConfig("properties:\n", "listen: 127.0.0.1:0\nproperties:\n")
	var refused atomic.Int64
	fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "") && refused.Add(1) == 1 }, sinktest.Unavailable))
	stderr := &syncBuffer{}
	const pause = 50 * time.Millisecond
	_, stop := launchServe(t, fw, func() time.Time { return fw.now }, stderr, func(env *environment) { env.wholeRetry = pause })
	defer stop()
	waitFor(t, "s1 keyed by a retry of the backfill whose write was refused", func() bool {
		s, _ := fw.sb.rpms.Stay("s1")
		return s.KeyID != ""
	})
	if refused.Load() == 0 {
		t.Fatal("no write was refused: the test did not test a retry")
	}
	time.Sleep(8 * pause) // long enough for more retries, were any due
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	out := stderr.String()
	if n := strings.Count(out, `"msg":"reconcile starting"`); n != 2 {
		t.Errorf("serve ran %d times, want 2 (the backfill, then one retry that did what it left)\n%s", n, out)
	}
	if !strings.Contains(out, "whole run left work undone; running again") {
		t.Errorf("serve did not say it would run again\n%s", out)
	}
	fw.checkInvariants("")
}

// TestServeStoppedDuringItsFirstBackfill: serve stopped (SIGTERM) while its
// first backfill runs stops cleanly, exit 0, with the backfill's record
// kept; started again, it backfills once more what it had not completed
// before it serves, so today's guest is keyed without waiting for the
// nightly run. The stop arrives with the backfill's first read, whose
// answer may or may not come back before the run sees the stop, or with
// its first write, which the server refuses (503): every claim the
// stopped backfill reached was answered, yet it is not complete.
func TestServeStoppedDuringItsFirstBackfill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		at   func(r *http.Request) bool
		// refuse answers the request the stop arrives with 503 instead
		// of passing it on.
		refuse bool
	}{
		{"first read", func(r *http.Request) bool { return r.URL.Path == "/graphql" }, false},
		{"first write", func(r *http.Request) bool { return mutationNaming(r, "") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fw := newFaultWorld(t, pinRooms(4), nil)
			fw.hotelStay("s1", "r101", 0, 2)
			fw.hotelStay("s2", "r102", 1, 3)
			fw.editConfig("properties:\n", "listen: 127.0.0.1:0\nproperties:\n")
			clock := reconcile.WallClock{}
			// serve runs serve until ctx is done, or, with stop, until it
			// listens (its start is over).
			serve := func(ctx context.Context, stop func()) (string, error) {
				stderr := &syncBuffer{}
				env := &environment{stdout: &bytes.Buffer{}, stderr: stderr, getenv: fw.getenv, now: func() time.Time { return fw.now },
					clock: clock, retry: httpapi.Retry{Clock: clock}, listening: func(string) { stop() }}
				err := env.run(ctx, []string{"serve", "--config", fw.cfg})
				return stderr.String(), err
			}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var once sync.Once
			fw.setFault(func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
				stopped := false
				if tc.at(r) {
					once.Do(func() { stop(); stopped = true })
				}
				if stopped && tc.refuse {
					sinktest.Unavailable(rw, r, next)
					return
				}
				next.ServeHTTP(rw, r)
			})
			if out, err := serve(ctx, stop); err != nil {
				t.Errorf("serve stopped during its first backfill: %v, want a clean stop\n%s", err, out)
			}
			if !fileExists(fw.statePath()) {
				t.Fatal("no state file after the stopped backfill")
			}
			if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != "" {
				t.Fatal("the stopped backfill keyed s1: the stop came too late to test the restart")
			}
			fw.setFault(nil)
			ctx, stop = context.WithCancel(context.Background())
			defer stop()
			out, err := serve(ctx, stop)
			if err != nil {
				t.Fatalf("serve started again: %v\n%s", err, out)
			}
			if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID == "" {
				t.Errorf("serve started again after a stopped first backfill serves, but s1, arriving today, holds no key\n%s", out)
			}
			fw.checkInvariants("")
		})
	}
}
