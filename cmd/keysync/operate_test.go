package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	oasandbox "github.com/keysync/keysync/sinks/openapp/sandbox"
	"github.com/keysync/keysync/state"
)

// TestScheduleCommand: `keysync schedule` lists serve's next runs in the
// schedule's zone, one a day across both switches, naming the ones a
// switch moves.
func TestScheduleCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone, spec, from string
		want             []string // lines, in order, that must appear
	}{
		{"Europe/Ljubljana", "0 2 * * *", "2027-03-26T12:00:00Z", []string{
			"Sat 2027-03-27 02:00  CET ", "Sun 2027-03-28 03:00  CEST  2027-03-28T01:00:00Z  (2027-03-28 02:00 does not exist", "Mon 2027-03-29 02:00  CEST"}},
		{"Europe/Ljubljana", "30 2 * * *", "2027-10-30T12:00:00Z", []string{
			"Sun 2027-10-31 02:30  CEST  2027-10-31T00:30:00Z  (2027-10-31 02:30 happens twice", "Mon 2027-11-01 02:30  CET "}},
		{"America/Vancouver", "0 2 * * *", "2027-03-13T12:00:00Z", []string{
			"Sun 2027-03-14 03:00  PDT   2027-03-14T10:00:00Z  (2027-03-14 02:00 does not exist", "Mon 2027-03-15 02:00  PDT"}},
		{"America/Vancouver", "30 1 * * *", "2027-11-06T12:00:00Z", []string{
			"Sun 2027-11-07 01:30  PDT   2027-11-07T08:30:00Z  (2027-11-07 01:30 happens twice", "Mon 2027-11-08 01:30  PST"}},
	} {
		t.Run(tc.zone+" "+tc.spec, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "k.yaml")
			yaml := "state: " + filepath.Join(dir, "k.db") + "\nschedule: \"" + tc.spec + "\"\nproperties:\n  - name: p\n    timezone: " + tc.zone +
				"\n    threerpms: {endpoint: \"https://x.example/graphql\", token: \"t\"}\n    default_method: pin\n"
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if err := Run(context.Background(), []string{"schedule", "--config", cfg, "--from", tc.from, "--count", "3"}, &out, &errb, os.Getenv); err != nil {
				t.Fatalf("schedule: %v\n%s", err, errb.String())
			}
			got := out.String()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("output lacks %q after position %d:\n%s", w, at, got)
				}
				at += i + len(w)
			}
			if n := strings.Count(got, "\n  "); n != 3 {
				t.Errorf("%d runs listed, want 3:\n%s", n, got)
			}
		})
	}
}

// TestVersionAndHelp: `keysync version` prints what it was built from;
// every command's --help exits 0.
func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, &out, &errb, os.Getenv); err != nil || !strings.HasPrefix(out.String(), "keysync ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("version: %v, %q", err, out.String())
	}
	out.Reset()
	if err := Run(context.Background(), []string{"help"}, &out, &errb, os.Getenv); err != nil {
		t.Fatal(err)
	}
	usage := out.String()
	for _, c := range commands() {
		cmd := c.name
		if !regexp.MustCompile(`(?m)^  ` + cmd + ` +\S`).MatchString(usage) {
			t.Errorf("keysync help does not list %s:\n%s", cmd, usage)
		}
		out.Reset()
		errb.Reset()
		if err := Run(context.Background(), []string{cmd, "--help"}, &out, &errb, os.Getenv); exitCode(err) != ExitOK {
			t.Errorf("%s --help exited %d: %v\n%s", cmd, exitCode(err), err, errb.String())
		}
		if help := errb.String(); !strings.Contains(help, "usage: keysync "+cmd) || !strings.Contains(help, "example: keysync "+cmd) {
			t.Errorf("%s --help lacks its usage line or an example:\n%s", cmd, help)
		}
	}
}

// TestBackupWhileARunHoldsTheLock: `keysync backup` copies the state file
// while another process holds the run lock; the copy opens, holds every
// credential, is private, and a second backup to the same path is refused.
func TestBackupWhileARunHoldsTheLock(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 3, "", booking{"s1", "r101", 0, 2}, booking{"s2", "r102", 1, 3})
	lock, err := state.Lock(h.cfg.State)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	to := filepath.Join(t.TempDir(), "copy.db")
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"backup", "--config", h.cfgPath, "--to", to}, &out, &errb, h.getenv); err != nil {
		t.Fatalf("backup: %v\n%s", err, errb.String())
	}
	if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy: %v, mode %v", err, fi.Mode())
	}
	db, err := state.Open(context.Background(), to, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := db.AllCredentials(context.Background())
	db.Close()
	if err != nil || len(creds) != len(h.credentials()) || len(creds) != 2 {
		t.Errorf("copy holds %d credentials (%v), the state %d", len(creds), err, len(h.credentials()))
	}
	if err := Run(context.Background(), []string{"backup", "--config", h.cfgPath, "--to", to}, &out, &errb, h.getenv); exitCode(err) != ExitConfig || !strings.Contains(err.Error(), "exists") {
		t.Errorf("backup over an existing file: %v", err)
	}
}

// TestStatusNamesWhatStoppedARun: a run refused for a wrong token is shown
// in status as refused, with its exit code, not as partial with nothing
// failed.
func TestStatusNamesWhatStoppedARun(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 3, "", booking{"s1", "r101", 0, 2})
	wrong := func(k string) string {
		if k == "KEYSYNC_3RPMS_TOKEN" {
			return "wrong-token"
		}
		return h.getenv(k)
	}
	mustRunText(t, ExitConfig, wrong, "run", "--config", h.cfgPath, "--now", h.now.Format(time.RFC3339))
	var st statusReport
	if err := json.Unmarshal([]byte(mustRunText(t, ExitOK, h.getenv, "status", "--json", "--config", h.cfgPath, "--now", h.now.Format(time.RFC3339)).stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 2 || st.Runs[0].ExitCode == nil || *st.Runs[0].ExitCode != ExitConfig || st.Runs[0].Result != "refused: config, credentials or URL" || st.Runs[1].Result != "ok" {
		t.Errorf("status runs %+v, want the refused run first, exit %d", st.Runs, ExitConfig)
	}
}

// TestStatusAndHistory: status lists the runs, the open work, the problems
// and the budget; history shows one line per action with its outcome, by
// stay and by room.
func TestStatusAndHistory(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 3, "", booking{"s1", "r101", 0, 2}, booking{"s2", "r102", 1, 3})
	h.mustRun(ExitOK, "run")
	// A run killed before it finished: begun, never ended.
	db := openState(t, h.cfg.State, state.Options{Key: stateKeyOf(t, h.cfg)})
	if _, err := db.BeginRun(context.Background(), reconcile.ModeRun, h.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	run := func(args ...string) string {
		t.Helper()
		return mustRunText(t, ExitOK, h.getenv, append(args, "--config", h.cfgPath)...).stdout
	}
	var st statusReport
	if err := json.Unmarshal([]byte(run("status", "--json", "--now", h.now.Format(time.RFC3339))), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 3 || st.Runs[1].Mode != reconcile.ModeRun || st.Runs[2].Mode != reconcile.ModeBackfill ||
		st.Runs[2].Actions != 4 || st.Runs[1].Result != "ok" || st.SizeBytes == 0 {
		t.Fatalf("status runs %+v, size %d", st.Runs, st.SizeBytes)
	}
	for _, r := range st.Runs[1:] {
		if r.ExitCode == nil || *r.ExitCode != ExitOK || r.Seconds == nil || *r.Seconds < 0 {
			t.Errorf("run #%d: exit %v, took %v; want exit 0 and a duration", r.ID, r.ExitCode, r.Seconds)
		}
	}
	if k := st.Runs[0]; k.ExitCode != nil || k.Result != "running, or killed" {
		t.Errorf("killed run: %+v", k)
	}
	if b := onlyAccount(t, st.Budget, reconcile.System3RPMS); b.Cap != 10000 || b.Used < 3 || b.Left != b.Cap-b.Used || b.Reserve != 200 {
		t.Errorf("budget %+v", b)
	}
	if st.Next.IsZero() {
		t.Error("no next scheduled run")
	}
	text := run("status")
	wantAll(t, "status", text, "Last runs (times in Europe/Ljubljana)", "#1", "backfill", "TOOK", "EXIT", "running, or killed", "Open\n  nothing", "3rpms", "RESERVED FOR REVOCATIONS")
	hist := run("history", "--stay", "s1")
	if !strings.Contains(hist, "create") || !strings.Contains(hist, "assign") || strings.Contains(hist, "s2") || strings.Contains(hist, "intent") {
		t.Errorf("history --stay s1:\n%s", hist)
	}
	for _, r := range []string{"r102", "102"} { // by id, and by the name reports show
		if room := run("history", "--room", r); !strings.Contains(room, "s2") || strings.Contains(room, " s1 ") {
			t.Errorf("history --room %s:\n%s", r, room)
		}
	}
	if none := run("history", "--since", "2030-01-01T00:00:00Z"); !strings.Contains(none, "no actions recorded") {
		t.Errorf("history --since later:\n%s", none)
	}
}

// TestMetricsFile: --metrics-file writes the run's metrics for the node
// exporter's textfile collector; a failed run keeps the last success time.
func TestMetricsFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, "")
	h.stay("s1", "r101", 0, 2)
	h.stay("s2", "r102", 1, 3)
	path := filepath.Join(t.TempDir(), "keysync.prom")
	h.mustRun(ExitOK, "backfill", "--metrics-file", path)
	first := readMetrics(t, path)
	for name, want := range map[string]float64{
		`keysync_actions_total{action="create",result="done",system="3rpms"}`: 2,
		`keysync_actions_total{action="assign",result="done",system="3rpms"}`: 2,
		`keysync_last_run_exit_code`:                                          0,
		`keysync_arrivals_without_credential`:                                 0,
		`keysync_budget_remaining{system="3rpms"}`:                            first[`keysync_budget_remaining{system="3rpms"}`],
	} {
		if got, ok := first[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if first["keysync_last_success_timestamp_seconds"] == 0 || first["keysync_requests_total{system=\"3rpms\"}"] < 3 ||
		first[`keysync_budget_remaining{system="3rpms"}`] <= 9990 {
		t.Errorf("metrics %v", first)
	}
	// 3RPMS down: the run is partial; the last success stays what it was.
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	if _, code, _ := h.run("run", "--metrics-file", path); code != ExitPartial {
		t.Fatalf("run with 3RPMS down exited %d", code)
	}
	second := readMetrics(t, path)
	if second["keysync_last_run_exit_code"] != ExitPartial || second["keysync_last_success_timestamp_seconds"] == 0 ||
		second["keysync_last_success_timestamp_seconds"] > second["keysync_last_run_timestamp_seconds"] {
		t.Errorf("after a failed run: %v", second)
	}
}

// TestMetricsFileOfARefusedRun: a run refused before it has a report (the
// lock held by another run) writes its exit code, and keeps the last whole
// run's problems and arrivals without a credential rather than zeros, which
// would clear their alerts until the next run.
func TestMetricsFileOfARefusedRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	annex := h.addAnnex(nil)
	if err := annex.AddStay(sandbox.Stay{ID: "a1", RoomID: "r101", Arrival: day(0), Departure: day(3), ReservationID: "res-a1", ReservationCode: "C-a1"}); err != nil {
		t.Fatal(err)
	}
	h.mustRun(ExitOK, "backfill")
	// The annex leaves the config with its guest's key live: a problem.
	h.removeAnnex()
	path := filepath.Join(t.TempDir(), "keysync.prom")
	h.mustRun(ExitAttention, "run", "--metrics-file", path)
	before := readMetrics(t, path)
	if before["keysync_problems"] == 0 {
		t.Fatalf("no problems to keep: %v", before)
	}
	lock, err := state.Lock(h.cfg.State)
	if err != nil {
		t.Fatal(err)
	}
	_, code, _ := h.run("run", "--metrics-file", path)
	lock.Unlock()
	if code != ExitLocked {
		t.Fatalf("run beside a held lock exited %d, want %d", code, ExitLocked)
	}
	after := readMetrics(t, path)
	for _, name := range []string{"keysync_problems", "keysync_arrivals_without_credential"} {
		if after[name] != before[name] {
			t.Errorf("%s = %v after the refused run, want the last whole run's %v", name, after[name], before[name])
		}
	}
	if after["keysync_last_run_exit_code"] != ExitLocked {
		t.Errorf("exit code %v, want %d", after["keysync_last_run_exit_code"], ExitLocked)
	}
}

// TestMetricsFileOfAShard: a shard's metrics carry its shard label, so the
// files of a config's shards in one collector's folder are series of their
// own; a shard that holds no property writes its file too, a success.
func TestMetricsFileOfAShard(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, "")
	h.stay("s1", "r101", 0, 2)
	name := h.cfg.Properties[0].Name
	mine := shardSpec{shardOf(name, 2), 2}
	empty := shardSpec{1 - mine.Index, 2}
	dir := t.TempDir()
	path := filepath.Join(dir, "keysync-"+strconv.Itoa(mine.Index)+".prom")
	h.mustRun(ExitOK, "backfill", "--shard", mine.String(), "--metrics-file", path)
	m := readMetrics(t, path)
	label := `shard="` + mine.String() + `"`
	if got, ok := m[`keysync_actions_total{action="create",result="done",`+label+`,system="3rpms"}`]; !ok || got != 1 {
		t.Errorf("the shard's create count = %v (present %v), want 1, labelled with its shard:\n%v", got, ok, m)
	}
	if got, ok := m[`keysync_last_run_exit_code{`+label+`}`]; !ok || got != 0 {
		t.Errorf("the shard's exit code = %v (present %v), want 0 labelled with its shard", got, ok)
	}
	path = filepath.Join(dir, "keysync-"+strconv.Itoa(empty.Index)+".prom")
	h.mustRun(ExitOK, "run", "--shard", empty.String(), "--metrics-file", path)
	m = readMetrics(t, path)
	label = `shard="` + empty.String() + `"`
	if m[`keysync_last_success_timestamp_seconds{`+label+`}`] == 0 || m[`keysync_last_run_exit_code{`+label+`}`] != 0 {
		t.Errorf("the empty shard's metrics: %v, want a success labelled with its shard", m)
	}
	// A plan there saves the empty plan it is, which apply applies.
	plan := filepath.Join(dir, "empty.plan")
	if out := h.text(ExitOK, "plan", "--shard", empty.String(), "--out", plan); !strings.Contains(out, "Nothing to do: shard "+empty.String()+" holds none of the config's properties.") ||
		!strings.Contains(out, "keysync apply --config "+h.cfgPath+" --shard "+empty.String()+" "+plan) {
		t.Errorf("plan --out of the empty shard said:\n%s", out)
	}
	h.text(ExitOK, "apply", "--shard", empty.String(), plan)
	h.text(ExitConfig, "apply", "--shard", mine.String(), plan)
	// check has nothing to check there either: not a failure.
	path = filepath.Join(dir, "keysync-check-"+strconv.Itoa(empty.Index)+".prom")
	if out := h.text(ExitOK, "check", "--shard", empty.String(), "--metrics-file", path); !strings.Contains(out, "Nothing to check: shard "+empty.String()+" holds none of the config's properties") {
		t.Errorf("check of the empty shard said:\n%s", out)
	}
	if m := readMetrics(t, path); m[`keysync_check_timestamp_seconds{`+label+`}`] == 0 || m[`keysync_check_unready{`+label+`}`] != 0 {
		t.Errorf("the empty shard's check metrics: %v, want a check of nothing labelled with its shard", m)
	}
	// status and history have nothing to show there, and say why.
	nothing := "Nothing to show: shard " + empty.String() + " holds none of the config's properties, and no state file is at "
	for _, args := range [][]string{{"status", "--now", h.now.Format(time.RFC3339)}, {"history"}} {
		if r := mustRunText(t, ExitOK, h.getenv, append(args, "--config", h.cfgPath, "--shard", empty.String())...); !strings.Contains(r.stdout, nothing) {
			t.Errorf("%s of the empty shard said:\n%s%s", args[0], r.stdout, r.stderr)
		}
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(h.text(ExitOK, "status", "--shard", empty.String(), "--json")), &rep); err != nil || rep.Runs == nil || len(rep.Runs) > 0 || !strings.HasPrefix(rep.Note, "shard "+empty.String()) {
		t.Errorf("status --json of the empty shard: %+v (%v), want no runs and a note", rep, err)
	}
}

// readMetrics reads a Prometheus text file into "name{labels}" → value.
func readMetrics(t *testing.T, path string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseMetrics(t, string(b))
}

// scrape returns what the metrics endpoint at url serves.
func scrape(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sandboxtest.Send(t, http.DefaultClient, req).Raw
}

// parseMetrics reads Prometheus text: each sample's value by its name and
// labels.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndex(line, " ")
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestNowInThePastNeedsForce: --now more than a day before the last
// recorded run is refused (a run in the past keys departed stays) unless
// --force; plan may look anywhere.
func TestNowInThePastNeedsForce(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 2, "", booking{"s1", "r101", 0, 2})
	h.setNow(h.now.Add(-36 * time.Hour))
	_, code, out := h.run("run")
	if code != ExitConfig || !strings.Contains(out, "--force") {
		t.Errorf("run 36 h in the past: exit %d, want %d naming --force:\n%s", code, ExitConfig, out)
	}
	h.mustRun(ExitOK, "plan")
	h.mustRun(ExitOK, "run", "--force")
	h.setNow(h.now.Add(36*time.Hour - time.Hour))
	h.mustRun(ExitOK, "run")
}

// TestCheckReadiness: `keysync check` reads every system and passes when
// each stay in house or arriving within 24 hours holds what it needs; it
// names the rooms whose 3RPMS key was deleted or whose key-box access was
// cancelled (an in-house guest's too), and exits 6 (a person is needed),
// writing nothing but the request ledger.
func TestCheckReadiness(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "key_storage", "r103": "qr", "r104": "pin", "r105": "key_storage"}, nil)
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 0, 2)
	fw.hotelStay("s3", "r103", 0, 3)
	fw.hotelStay("s4", "r104", 5, 7)  // beyond the horizon
	fw.hotelStay("s5", "r105", -1, 1) // in house
	fw.mustExec(ExitOK, "backfill")
	check := func(want int, args ...string) string {
		t.Helper()
		r := mustRunText(t, want, fw.getenv, append([]string{"check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339)}, args...)...)
		return r.stdout + errString(r.err)
	}
	if out := check(ExitOK); !strings.Contains(out, "Checked 4 stay(s)") || !strings.Contains(out, "Every one holds") {
		t.Errorf("all ready:\n%s", out)
	}
	writes := 0
	for _, r := range fw.sb.rpms.Requests() {
		if r.Operation == "mutation" {
			writes++
		}
	}
	if err := fw.sb.rpms.DeleteKey(fw.key("s1").ID); err != nil {
		t.Fatal(err)
	}
	for _, a := range fw.accesses() {
		if err := fw.sb.keybox.CancelAccess(a.ID, "staff"); err != nil {
			t.Fatal(err)
		}
	}
	prom := filepath.Join(t.TempDir(), "check.prom")
	out := check(ExitAttention, "--metrics-file", prom)
	if b, err := os.ReadFile(prom); err != nil || !strings.Contains(string(b), "keysync_check_unready 3\n") || !strings.Contains(string(b), "keysync_check_stays 4\n") {
		t.Errorf("check metrics file: %v\n%s", err, b)
	}
	wantAll(t, "check output", out, "101 (r101)", "no 3RPMS key on the stay", "102 (r102)", "105 (r105)", "cancelled", "3 stay(s) not ready")
	if strings.Contains(out, "r103") {
		t.Errorf("the QR room is ready but was named:\n%s", out)
	}
	after := 0
	for _, r := range fw.sb.rpms.Requests() {
		if r.Operation == "mutation" {
			after++
		}
	}
	if after != writes {
		t.Errorf("check wrote to 3RPMS: %d mutations before, %d after", writes, after)
	}
}

// TestProgressLine: what a long run shows on a terminal; nothing is shown
// when stderr is not one.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sent    map[reconcile.System]reconcile.RequestCount
		planned int
		want    string
	}{
		{map[reconcile.System]reconcile.RequestCount{"3rpms": {Reads: 4}}, 0, "keysync: reading (4 request(s) so far)"},
		{map[reconcile.System]reconcile.RequestCount{"3rpms": {Reads: 4, Writes: 10}, "openapp": {Writes: 10}}, 70, "keysync: 20 of 70 write request(s) sent, about 10s left"},
		{map[reconcile.System]reconcile.RequestCount{"3rpms": {Writes: 12}}, 10, "keysync: 12 of 10 write request(s) sent, about 0s left"},
	} {
		if got := progressLine(tc.sent, tc.planned); got != tc.want {
			t.Errorf("progressLine = %q, want %q", got, tc.want)
		}
	}
	if startProgress(&bytes.Buffer{}, &reconcile.Meter{}) != nil {
		t.Error("progress shown on a writer that is not a terminal")
	}
}

// TestScheduleShiftWarning: a run whose config schedules a time a
// daylight-saving switch skips or repeats warns about it; the default
// schedule, 04:15, is outside every switch and stays quiet.
func TestScheduleShiftWarning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schedule string // empty: the default
		warn     bool
	}{
		{"", false},
		{`"30 2 * * *"`, true},
		{`"15 4 * * *"`, false},
	} {
		t.Run(tc.schedule, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, 1, "")
			if tc.schedule != "" {
				b, err := os.ReadFile(h.cfgPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(h.cfgPath, append([]byte("schedule: "+tc.schedule+"\n"), b...), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, _, stderr := h.run("plan")
			if got := strings.Contains(stderr, "daylight-saving switch moves a run"); got != tc.warn {
				t.Errorf("warned %v, want %v\n%s", got, tc.warn, stderr)
			}
		})
	}
}

// TestEveryCommandWarnsAboutTheConfig: the commands that load the config
// without running a reconcile (status, history, show, backup, schedule,
// check) warn, as a run does, about a config others can read and about a
// schedule a daylight-saving switch moves (README: "Every command that
// reads the config warns").
func TestEveryCommandWarnsAboutTheConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, "")
	h.stay("s1", "r101", 0, 2)
	b, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfgPath, append([]byte("schedule: \"30 2 * * *\"\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mustRun(ExitOK, "backfill")
	if err := os.Chmod(h.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	now := h.now.Format(time.RFC3339)
	for _, args := range [][]string{
		{"status", "--now", now},
		{"history"},
		{"show", "--stay", "s1"},
		{"backup", "--to", filepath.Join(t.TempDir(), "copy.db")},
		{"schedule", "--count", "1"},
		{"check", "--now", now},
	} {
		r := mustRunText(t, ExitOK, h.getenv, append(args, "--config", h.cfgPath)...)
		wantAll(t, args[0], r.stderr, "readable by other users", "daylight-saving switch moves a run")
	}
}

// TestStatusArrivalWithoutCredential: when 3RPMS refuses every write, the
// run ends partial; status shows its exit status and names the arriving
// stay that holds no credential.
func TestStatusArrivalWithoutCredential(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	h.stay("s1", "r101", 0, 2)
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := readAll(r)
		if strings.Contains(string(body), "mutation") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.sb.ServeHTTP(w, r)
	})
	h.mustRun(ExitPartial, "backfill")
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"status", "--config", h.cfgPath, "--json", "--now", h.now.Format(time.RFC3339)}, &out, &errb, h.getenv); err != nil {
		t.Fatalf("status: %v\n%s", err, errb.String())
	}
	var st statusReport
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Unkeyed) != 1 || st.Unkeyed[0].ID != "s1" {
		t.Errorf("arrivals without a credential = %+v, want s1", st.Unkeyed)
	}
	if len(st.Runs) != 1 || st.Runs[0].ExitCode == nil || *st.Runs[0].ExitCode != ExitPartial {
		t.Errorf("runs = %+v, want one with exit %d", st.Runs, ExitPartial)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"status", "--config", h.cfgPath, "--now", h.now.Format(time.RFC3339)}, &out, &errb, h.getenv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "without a credential (last run): hotel stay s1") {
		t.Errorf("status text:\n%s", out.String())
	}
}

// TestNeedsAPersonIsShown: a guest in house in a room the config has
// keysync key holds another integration's key. The backfill and the run
// after it both exit 6, and say why where an operator looks: the text
// report's "Needs a person" list and its notes (marked attention), a run
// with nothing to do that does not claim every stay holds the right key,
// and status's runs (a problem each, "needs a person").
func TestNeedsAPersonIsShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "    rooms: {r101: pin}\n")
	h.stay("s1", "r101", -1, 2)
	if _, err := h.sb.InjectKey(otherID, sandbox.Key{Type: sandbox.KeyTypePin, PIN: "482913"}, "s1"); err != nil {
		t.Fatal(err)
	}
	text := func(want int, args ...string) string {
		t.Helper()
		return mustRunText(t, want, h.getenv, append(args, "--config", h.cfgPath, "--now", h.now.Format(time.RFC3339))...).stdout
	}
	for _, cmd := range []string{"backfill", "run"} {
		out := text(ExitAttention, cmd)
		wantAll(t, cmd+"'s report", out, "Needs a person (1):", "hotel stay s1 room 101 (r101)", "conflict (attention)")
		if strings.Contains(out, "every stay holds the right key") {
			t.Errorf("%s's report says every stay holds the right key:\n%s", cmd, out)
		}
	}
	var st statusReport
	if err := json.Unmarshal([]byte(text(ExitOK, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Runs {
		if r.Problems != 1 || r.Result != "needs a person" {
			t.Errorf("status run #%d: %d problem(s), result %q; want 1, \"needs a person\"", r.ID, r.Problems, r.Result)
		}
	}
	// The text names the conflict's property: a portfolio's stays share ids.
	wantAll(t, "status", text(ExitOK, "status"), "conflict: hotel stay s1 room 101")
}

// TestCheckWhenAReadFails: with the OpenApp API key refused, `keysync
// check` still checks every other stay and property, names the stays whose
// invite it could not read back as not ready, exits 2 naming the key to fix (as
// a run does), and still writes its metrics file, which counts the
// failure (the readiness alert must not sit on the last good value). With
// the key box unreachable it exits 1 naming the URL field.
func TestCheckWhenAReadFails(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin", "r102": "key_storage", "r103": "qr"}, map[string]string{"L1": "pin"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.hotelStay("s2", "r102", 0, 2)
	fw.hotelStay("s3", "r103", 0, 3)
	fw.addReservation("G1", "L1", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	check := func(getenv func(string) string, want int) (string, string) {
		t.Helper()
		prom := filepath.Join(t.TempDir(), "check.prom")
		// A fake clock: the retries of the unreachable key box wait no
		// real time.
		r := fw.runOn(clocktest.New(fw.now), getenv, "check", "--metrics-file", prom)
		if r.code != want {
			t.Fatalf("check exited %d, want %d: %v\n%s%s", r.code, want, r.err, r.stdout, r.stderr)
		}
		b, err := os.ReadFile(prom)
		if err != nil {
			t.Fatalf("no metrics file after a failed read: %v", err)
		}
		return r.stdout + errString(r.err), string(b)
	}
	wrongKey := func(k string) string {
		if k == "KEYSYNC_OPENAPP_API_KEY" {
			return "wrong-key"
		}
		return fw.getenv(k)
	}
	out, prom := check(wrongKey, ExitConfig)
	// The apartments' shared portals give G1 an invite too.
	wantAll(t, "check with a refused OpenApp key", out, "Checked 4 stay(s)", "103 (r103)", "G1", "could not check its OpenApp invite", "Authorization: Bearer",
		"properties[0].openapp.api_key:", "properties[1].openapp.api_key:",
		"FAILED sandbox-hotel openapp", "FAILED sandbox-apartments openapp")
	if strings.Contains(out, "r101") || strings.Contains(out, "r102") || strings.Contains(out, "wrong-key") {
		t.Errorf("check named a ready room, or the key:\n%s", out)
	}
	wantAll(t, "metrics file", prom, "keysync_check_failures 2\n", "keysync_check_unready 2\n", "keysync_check_stays 4\n")

	// The key box's URL pointed at a port nothing listens on.
	cfg, err := os.ReadFile(fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if !strings.Contains(string(cfg), fw.sb.base+"/keybox") {
		t.Fatalf("the config has no key-box URL %s/keybox:\n%s", fw.sb.base, cfg)
	}
	if err := os.WriteFile(fw.cfg, []byte(strings.ReplaceAll(string(cfg), fw.sb.base+"/keybox", closed.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = check(fw.getenv, ExitFailure)
	if !strings.Contains(out, ".keybox.base_url") || !strings.Contains(out, "could not check its key-box access") {
		t.Errorf("check with the key box unreachable:\n%s", out)
	}
}

// TestOperatingCommandsWithoutAPISecrets: the commands that call no API
// (status, history, show, backup, schedule) work with the API credentials'
// environment variables unset, as a backup job outside the service runs;
// status says why it shows no budget (credentials are named by a
// fingerprint of their value). check, which calls the APIs, still needs
// them and says which.
func TestOperatingCommandsWithoutAPISecrets(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 2, "", booking{"s1", "r101", 0, 2})
	// A Guestway property whose token has a format Validate checks.
	cfg, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = fmt.Appendf(cfg, `  - name: apartments
    timezone: Europe/Ljubljana
    guestway:
      base_url: http://127.0.0.1:1
      partner_key: ${KEYSYNC_GUESTWAY_PARTNER_KEY}
      token: ${KEYSYNC_GUESTWAY_TOKEN}
    default_method: pin
`)
	if err := os.WriteFile(h.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	// Every call runs without the API credentials (none).
	run := func(want int, args ...string) string {
		t.Helper()
		r := mustRunText(t, want, none, append(args, "--config", h.cfgPath)...)
		return r.stdout + errString(r.err)
	}
	var st statusReport
	if err := json.Unmarshal([]byte(run(ExitOK, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 1 || len(st.Budget) != 0 || !strings.Contains(st.BudgetNote, "KEYSYNC_3RPMS_TOKEN") || !strings.Contains(st.BudgetNote, "KEYSYNC_GUESTWAY_TOKEN") {
		t.Errorf("status: %d run(s), budget %v, note %q; want the backfill, no budget and a note naming the variable", len(st.Runs), st.Budget, st.BudgetNote)
	}
	if out := run(ExitOK, "status"); !strings.Contains(out, "not shown: KEYSYNC_3RPMS_TOKEN, KEYSYNC_GUESTWAY_PARTNER_KEY, KEYSYNC_GUESTWAY_TOKEN not set") {
		t.Errorf("status text:\n%s", out)
	}
	if out := run(ExitOK, "history", "--stay", "s1"); !strings.Contains(out, "create") {
		t.Errorf("history:\n%s", out)
	}
	if out := run(ExitOK, "show", "--stay", "s1"); !strings.Contains(out, "RoomAccessPin") {
		t.Errorf("show:\n%s", out)
	}
	run(ExitOK, "backup", "--to", filepath.Join(t.TempDir(), "copy.db"))
	run(ExitOK, "schedule")
	if out := run(ExitConfig, "check", "--now", h.now.Format(time.RFC3339)); !strings.Contains(out, "KEYSYNC_3RPMS_TOKEN is not set") {
		t.Errorf("check without the token:\n%s", out)
	}
}

// TestRunAtTheStayReplacesACredentialCancelledUpstream: staff cancel an
// in-house guest's key-box access, which the guest's 3RPMS key carries.
// check names the room; a run over the window takes the access at its
// record (it reads back no carried credential); a run at the stay reads
// it back and replaces it, with the key carrying it, and check is then
// satisfied.
func TestRunAtTheStayReplacesACredentialCancelledUpstream(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r301": "key_storage"}, nil)
	fw.hotelStay("s3", "r301", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	old, key := fw.accesses(), fw.key("s3").ID
	if len(old) != 1 {
		t.Fatalf("%d accesses after the backfill, want 1", len(old))
	}
	// A read-back that fails replaces nothing a key carries: the guest
	// may be using its code.
	fw.setFault(when(func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, "/keybox/") && r.Method == http.MethodGet
	},
		func(w http.ResponseWriter, _ *http.Request, _ http.Handler) { fault.Answer503(w) }))
	fw.exec("run", nil, "--stay", "s3", "--property", "sandbox-hotel")
	fw.setFault(nil)
	if now := fw.accesses(); len(now) != 1 || now[0].ID != old[0].ID || fw.key("s3").ID != key {
		t.Fatalf("a failed read-back replaced the access (%+v) or the key", now)
	}
	if err := fw.sb.keybox.CancelAccess(old[0].ID, "staff"); err != nil {
		t.Fatal(err)
	}
	check := func(want int) string {
		t.Helper()
		r := mustRunText(t, want, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
		return r.stdout
	}
	if out := check(ExitAttention); !strings.Contains(out, "cancelled") {
		t.Errorf("check does not name the cancelled access:\n%s", out)
	}
	if rep := fw.mustExec(ExitOK, "run").rep; len(rep.Actions()) != 0 {
		t.Errorf("a run over the window acted (%d actions): it was not to read back a carried access", len(rep.Actions()))
	}
	// Nor does a webhook's run at the stay: only an operator's.
	cfg, err := LoadConfig(fw.cfg, fw.getenv)
	if err != nil {
		t.Fatal(err)
	}
	env := &environment{stdout: io.Discard, stderr: io.Discard, getenv: fw.getenv, now: func() time.Time { return fw.now },
		clock: clocktest.New(fw.now), retry: httpapi.Retry{Clock: clocktest.New(fw.now), Rand: func() float64 { return 0.5 }}}
	opts := reconcile.Options{Mode: reconcile.ModeTargeted, Now: fw.now, Targets: map[string][]string{"sandbox-hotel": {"s3"}}}
	if rep, err := env.once(context.Background(), cfg, opts, slog.New(slog.DiscardHandler)); err != nil || len(rep.Actions()) != 0 {
		t.Errorf("a webhook's run at the stay: %v, %d actions; want none", err, len(rep.Actions()))
	}
	fw.mustExec(ExitOK, "run", "--stay", "s3", "--property", "sandbox-hotel")
	now := fw.accesses()
	if len(now) != 1 || now[0].ID == old[0].ID {
		t.Errorf("accesses after the run at the stay: %+v, want one new one", now)
	}
	if k := fw.key("s3"); k.ID == key {
		t.Errorf("s3 still holds key %s, which carries the cancelled code", key)
	}
	check(ExitOK)
	fw.checkInvariants("")
}

// TestRunAtTheStayReplacesAGuestwayCredentialCancelledUpstream: staff
// delete one Guestway guest's OpenApp invite, switch another's off and
// cancel a third's key-box access, in OpenApp and the key box directly.
// check names all three; an operator's run at the stays reads them back
// and mends each, as for a hotel stay's (no 3RPMS key carries them): the
// deleted invite and the cancelled access replaced, the switched-off
// invite switched on again (TestRunAtTheStaySetsAnInviteRightInPlace).
func TestRunAtTheStayReplacesAGuestwayCredentialCancelledUpstream(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr", "L3": "key_storage"})
	fw.mustExec(ExitOK, "backfill")
	inv1, inv2, acc := fw.liveInvitesOf("G1"), fw.liveInvitesOf("G2"), fw.accesses()
	if len(inv1) != 1 || len(inv2) != 1 || len(acc) != 1 {
		t.Fatalf("after the backfill: invites %v %v, accesses %+v; want one each", inv1, inv2, acc)
	}
	fw.staff(http.MethodDelete, invitePath(inv1[0]), "")
	fw.staff(http.MethodPut, invitePath(inv2[0]), `{"is_enabled": false}`)
	if err := fw.sb.keybox.CancelAccess(acc[0].ID, "staff"); err != nil {
		t.Fatal(err)
	}
	r := mustRunText(t, ExitAttention, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
	wantAll(t, "check", r.stdout, "G1", "G2", "G3")

	fw.mustExec(ExitOK, "run", "--stay", "G1,G2,G3", "--property", "sandbox-apartments")
	for _, stay := range []string{"G1", "G2"} {
		if got := fw.liveInvitesOf(stay); len(got) != 1 {
			t.Errorf("%s holds live invites %v after the run at the stay, want one", stay, got)
		}
	}
	if got := fw.accesses(); len(got) != 1 || got[0].ID == acc[0].ID {
		t.Errorf("accesses after the run at the stay: %+v, want one new one", got)
	}
	mustRunText(t, ExitOK, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))
}

// TestRunAtTheStaySetsAnInviteRightInPlace: an invite staff switched off,
// or narrowed, in OpenApp is found by the read-back and set right with a
// PUT, keeping its link (the guest's way in), where a replacement would
// change it; one staff deleted is replaced. check --repair does the same.
func TestRunAtTheStaySetsAnInviteRightInPlace(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L2": "qr", "L3": "qr"})
	fw.mustExec(ExitOK, "backfill")
	before := map[string]oasandbox.InviteView{}
	for _, stay := range []string{"G1", "G2", "G3"} {
		ids := fw.liveInvitesOf(stay)
		if len(ids) != 1 {
			t.Fatalf("after the backfill %s holds invites %v, want one", stay, ids)
		}
		before[stay], _ = fw.sb.openapp.Invite(ids[0])
	}
	fw.staff(http.MethodPut, invitePath(before["G1"].ID), `{"is_enabled": false}`)
	fw.staff(http.MethodPut, invitePath(before["G2"].ID), `{"valid_to": "`+before["G2"].ValidTo.Add(-24*time.Hour).Format(time.RFC3339)+`"}`)
	fw.staff(http.MethodDelete, invitePath(before["G3"].ID), "")

	fw.mustExec(ExitOK, "run", "--stay", "G1,G2,G3", "--property", "sandbox-apartments")
	for _, stay := range []string{"G1", "G2"} {
		got := fw.liveInvitesOf(stay)
		if len(got) != 1 || got[0] != before[stay].ID {
			t.Errorf("%s holds live invites %v, want %s set right in place", stay, got, before[stay].ID)
			continue
		}
		if in, _ := fw.sb.openapp.Invite(got[0]); !in.ValidTo.Equal(before[stay].ValidTo) || in.Token != before[stay].Token {
			t.Errorf("%s's invite runs to %s (token kept %v), want %s", stay, in.ValidTo, in.Token == before[stay].Token, before[stay].ValidTo)
		}
	}
	if got := fw.liveInvitesOf("G3"); len(got) != 1 || got[0] == before["G3"].ID {
		t.Errorf("G3 (invite deleted) holds live invites %v, want one new one", got)
	}
	mustRunText(t, ExitOK, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339))

	// check --repair sets one right the same way.
	fw.staff(http.MethodPut, invitePath(before["G1"].ID), `{"is_enabled": false}`)
	mustRunText(t, ExitOK, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339), "--repair")
	if got := fw.liveInvitesOf("G1"); len(got) != 1 || got[0] != before["G1"].ID {
		t.Errorf("after check --repair G1 holds live invites %v, want %s switched on again", got, before["G1"].ID)
	}
}

// TestRunAtTheStayKeepsWhatAFailedReadBackCannotShow: an operator's run at
// a Guestway stay (and check --repair's) reads its invite and key-box access
// back; a read that merely fails (a 503) does not replace a live credential
// the guest holds: its code or link would change for nothing. Only a read
// that answers "not live" does.
func TestRunAtTheStayKeepsWhatAFailedReadBackCannotShow(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, nil, map[string]string{"L1": "qr", "L3": "key_storage"})
	fw.mustExec(ExitOK, "backfill")
	inv, acc := fw.liveInvitesOf("G1"), fw.accesses()
	if len(inv) != 1 || len(acc) != 1 {
		t.Fatalf("after the backfill: invites %v, accesses %+v; want one each", inv, acc)
	}
	fw.setFault(when(func(r *http.Request) bool {
		return r.Method == http.MethodGet && (strings.HasPrefix(r.URL.Path, "/keybox/") || strings.HasPrefix(r.URL.Path, "/openapp/"))
	}, func(w http.ResponseWriter, _ *http.Request, _ http.Handler) { fault.Answer503(w) }))
	fw.exec("run", nil, "--stay", "G1,G3", "--property", "sandbox-apartments")
	fw.setFault(nil)
	if got := fw.liveInvitesOf("G1"); len(got) != 1 || got[0] != inv[0] {
		t.Errorf("G1's live invites after a run whose read-back failed: %v, want %v kept", got, inv)
	}
	if got := fw.accesses(); len(got) != 1 || got[0].ID != acc[0].ID {
		t.Errorf("accesses after a run whose read-back failed: %+v, want %s kept (the guest's code changed)", got, acc[0].ID)
	}
}

// TestRunAtTheStayKeepsAnInHouseGuestsInvite: an invite made for a guest
// already in house opens when it is made (keysync sends no start in the
// past), not at the stay's start. A run at the stay reads it back over
// what is left of the window, as check does: read over the whole window
// it was "not the whole stay", and every run at the stay (and check
// --repair) gave the guest a new link.
func TestRunAtTheStayKeepsAnInHouseGuestsInvite(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, nil, map[string]string{"L1": "qr"})
	fw.addReservation("G1", "L1", -1, 2) // in house since yesterday
	fw.mustExec(ExitOK, "backfill")
	inv := fw.liveInvitesOf("G1")
	if len(inv) != 1 {
		t.Fatalf("after the backfill: invites %v, want one", inv)
	}
	for range 2 {
		fw.mustExec(ExitOK, "run", "--stay", "G1", "--property", "sandbox-apartments")
		if got := fw.liveInvitesOf("G1"); len(got) != 1 || got[0] != inv[0] {
			t.Fatalf("after a run at the stay: invites %v, want %v kept", got, inv)
		}
	}
	mustRunText(t, ExitOK, fw.getenv, "check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339), "--repair")
	if got := fw.liveInvitesOf("G1"); len(got) != 1 || got[0] != inv[0] {
		t.Errorf("after check --repair: invites %v, want %v kept", got, inv)
	}
}

// TestCheckRepairMendsWhatStaffCancelled: a run over the window takes
// invites and key-box accesses at their record, so one staff delete,
// switch off or cancel upstream is found by check. check --repair runs at
// the stays that are not ready, mends what is not live (an in-house hotel
// guest's access replaced with the key carrying it, Guestway guests'
// invites replaced or switched on again), and checks again: exit 0. What
// a run cannot mend (a Guestway pin room without a lock PIN) is still
// named, exit 6.
func TestCheckRepairMendsWhatStaffCancelled(t *testing.T) {
	t.Parallel()
	fw := listingsWorld(t, map[string]string{"r301": "key_storage"}, map[string]string{"L1": "qr", "L2": "qr"})
	fw.hotelStay("s3", "r301", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	acc, key := fw.accesses(), fw.key("s3").ID
	inv1, inv2 := fw.liveInvitesOf("G1"), fw.liveInvitesOf("G2")
	if len(acc) != 1 || len(inv1) != 1 || len(inv2) != 1 {
		t.Fatalf("after the backfill: accesses %+v, invites %v %v; want one each", acc, inv1, inv2)
	}
	if err := fw.sb.keybox.CancelAccess(acc[0].ID, "staff"); err != nil {
		t.Fatal(err)
	}
	fw.staff(http.MethodDelete, invitePath(inv1[0]), "")
	fw.staff(http.MethodPut, invitePath(inv2[0]), `{"is_enabled": false}`)
	if rep := fw.mustExec(ExitOK, "run").rep; len(rep.Actions()) != 0 {
		t.Fatalf("the run over the window acted (%d actions); this test is of what it leaves", len(rep.Actions()))
	}
	check := func(want int, args ...string) string {
		t.Helper()
		r := mustRunText(t, want, fw.getenv, append([]string{"check", "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339)}, args...)...)
		return r.stdout
	}
	out := check(ExitOK, "--repair")
	wantAll(t, "check --repair", out, "Repair: a run at the 3 stay(s)", "Every one holds what it needs")
	if now := fw.accesses(); len(now) != 1 || now[0].ID == acc[0].ID {
		t.Errorf("accesses after check --repair: %+v, want one new one", now)
	}
	if k := fw.key("s3"); k.ID == key {
		t.Errorf("s3 still holds key %s, which carries the cancelled code", key)
	}
	for _, stay := range []string{"G1", "G2"} {
		if got := fw.liveInvitesOf(stay); len(got) != 1 {
			t.Errorf("%s holds live invites %v after check --repair, want one", stay, got)
		}
	}
	check(ExitOK)
	fw.checkInvariants("")

	// What no run can mend is still named, after one run at it.
	fw.editConfig("L2: {method: qr, portals: [portal-L2]}", "L2: pin")
	out = check(ExitAttention, "--repair")
	wantAll(t, "check --repair", out, "Repair: a run at the 1 stay(s) that were not ready made", "G2", "Guestway holds no smart-lock PIN")

	// A repair writes upstream: not as of an instant more than a day
	// before the last run.
	r := mustRunText(t, ExitConfig, fw.getenv, "check", "--config", fw.cfg, "--repair", "--within", "96h", "--now", fw.now.Add(-48*time.Hour).Format(time.RFC3339))
	wantAll(t, "check --repair --now (two days back)", r.err.Error(), "leave --now out")
}

// listingsWorld is a fault world with the given hotel rooms and Guestway
// listings, each listing Ln holding a reservation Gn from today for three
// nights.
func listingsWorld(t *testing.T, hotel, listings map[string]string) *faultWorld {
	t.Helper()
	fw := newFaultWorld(t, hotel, listings)
	for _, l := range slices.Sorted(maps.Keys(listings)) {
		fw.addReservation("G"+strings.TrimPrefix(l, "L"), l, 0, 3)
	}
	return fw
}

// staff sends one request to a sandbox API as the hotel's staff would (with
// keysync's own credentials: the sandboxes have no staff login), and
// requires a 2xx without GraphQL errors.
func (w *world) staff(method, path, body string) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.sb.base+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch {
	case strings.HasPrefix(path, "/openapp/"):
		req.Header.Set("Authorization", "Bearer "+sandboxOpenAppKey)
		req.Header.Set("X-Org", sandboxOrg)
	case strings.HasPrefix(path, "/keybox/"):
		req.SetBasicAuth(sandboxBoxUser, sandboxBoxPassword)
	case path == "/graphql":
		req.Header.Set("Authorization", "Bearer "+sandboxToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || strings.Contains(string(b), `"errors"`) {
		w.t.Fatalf("staff %s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// invitePath is the OpenApp sandbox's path of invite id.
func invitePath(id string) string {
	return "/openapp/integrations/" + sandboxOpenAppInt + "/access-invites/" + id
}

// liveInvitesOf returns the ids of the invites tagged for stay that are not
// deleted, switched on and valid now.
func (w *world) liveInvitesOf(stay string) []string {
	var out []string
	for _, in := range w.invites() {
		if strings.Contains(in.Name, ":"+stay+"]") && in.Enabled && in.ValidTo.After(w.now) {
			out = append(out, in.ID)
		}
	}
	return out
}
