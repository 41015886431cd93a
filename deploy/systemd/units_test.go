// Package systemd holds keysync's systemd units. CI checks them with
// systemd-analyze (verify, and security against a threshold); these tests
// pin what the deployment relies on: the hardening, the credentials and
// paths the sample config names, and a DST-safe timer.
package systemd

import (
	"bufio"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/keysync/keysync/deploy/internal/dst"
)

// unit is a parsed unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func parse(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, section := unit{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", name, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// last is the effective value of a single-valued setting.
func (u unit) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// hardening is what the issue and systemd.exec(5) ask of every keysync unit.
var hardening = map[string]string{
	"DynamicUser":             "yes",
	"User":                    "keysync", // one dynamic user for every unit: see keysync.service
	"Group":                   "keysync",
	"StateDirectory":          "keysync",
	"ProtectSystem":           "strict",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"UMask":                   "0077",
	"PrivateDevices":          "yes",
	"ProtectHome":             "yes",
	"RestrictSUIDSGID":        "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"SystemCallErrorNumber":   "EPERM",
}

func TestUnitsAreHardened(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"keysync.service", "keysync-serve.service", "keysync-check.service"} {
		u := parse(t, name)
		s := u["Service"]
		for k, want := range hardening {
			if _, ok := s[k]; !ok {
				t.Errorf("%s: %s= not set", name, k)
			} else if got := u.last("Service", k); got != want {
				t.Errorf("%s: %s=%s, want %q", name, k, got, want)
			}
		}
		if f := s["SystemCallFilter"]; !slices.Contains(f, "@system-service") {
			t.Errorf("%s: SystemCallFilter=%q, want an allow list of @system-service", name, f)
		}
		creds := map[string]string{}
		for _, lc := range s["LoadCredential"] {
			id, src, _ := strings.Cut(lc, ":")
			creds[id] = src
		}
		if !strings.HasPrefix(creds["keysync.yaml"], "/etc/keysync/") || creds["secrets"] != "/etc/keysync/secrets" {
			t.Errorf("%s: LoadCredential=%q, want keysync.yaml and the secrets directory from /etc/keysync", name, s["LoadCredential"])
		}
		exec := strings.Fields(u.last("Service", "ExecStart"))
		if len(exec) < 4 || exec[0] != "/usr/local/bin/keysync" || exec[2] != "--config" || exec[3] != "%d/keysync.yaml" {
			t.Errorf("%s: ExecStart=%q, want keysync CMD --config %%d/keysync.yaml", name, exec)
		}
	}
	for name, cmd := range map[string]string{"keysync.service": " run ", "keysync-check.service": " check "} {
		oneshot := parse(t, name)
		if oneshot.last("Service", "Type") != "oneshot" || !strings.Contains(oneshot.last("Service", "ExecStart"), cmd) {
			t.Errorf("%s: want a oneshot `keysync%s`", name, cmd)
		}
		// A night's run that left work undone runs again within the
		// hour (twice, as the CronJob's backoffLimit), not the next
		// night; so does a check whose repair did.
		if oneshot.last("Service", "Restart") != "on-failure" || oneshot.last("Service", "RestartSec") != "10min" ||
			oneshot.last("Unit", "StartLimitIntervalSec") != "1h" || oneshot.last("Unit", "StartLimitBurst") != "3" {
			t.Errorf("%s: want a failure restarted after 10min, at most three starts an hour", name)
		}
		if got := strings.Fields(oneshot.last("Service", "RestartPreventExitStatus")); !slices.Equal(got, []string{"2", "5", "6"}) {
			t.Errorf("%s: RestartPreventExitStatus=%q, want 2 5 6 (a person must act)", name, got)
		}
	}
	if c := parse(t, "keysync-check.service"); !strings.Contains(c.last("Service", "ExecStart"), " --repair") {
		t.Error("keysync-check.service: want `keysync check --repair`: a check alone mends nothing")
	}
	u := parse(t, "keysync-serve.service")
	if !strings.Contains(u.last("Service", "ExecStart"), " serve ") || u.last("Service", "Restart") != "on-failure" {
		t.Error("keysync-serve.service: want `keysync serve`, restarted on failure")
	}
	if got := strings.Fields(u.last("Service", "RestartPreventExitStatus")); !slices.Equal(got, []string{"2", "5", "6"}) {
		t.Errorf("keysync-serve.service: RestartPreventExitStatus=%q, want 2 5 6 (a person must act)", got)
	}
	b := parse(t, "keysync-backfill.conf")
	if got := b["Service"]["ExecStart"]; len(got) != 2 || got[0] != "" || !strings.Contains(got[1], " backfill --config %d/keysync.yaml") {
		t.Errorf("keysync-backfill.conf: ExecStart=%q, want a reset then keysync backfill", got)
	}
}

var onCalendar = regexp.MustCompile(`^\*-\*-\* (\d\d):(\d\d):00 ([A-Za-z_]+/[A-Za-z_]+)$`)

func TestTimerIsNightlyAndDSTSafe(t *testing.T) {
	t.Parallel()
	for timer, unit := range map[string]string{"keysync.timer": "keysync.service", "keysync-check.timer": "keysync-check.service"} {
		t.Run(timer, func(t *testing.T) { checkTimer(t, timer, unit) })
	}
}

// checkTimer checks that timer starts unit once a day, at a time that
// exists exactly once every day in its zone and the DST zones.
func checkTimer(t *testing.T, timer, unit string) {
	t.Helper()
	u := parse(t, timer)
	if u.last("Timer", "Persistent") != "true" {
		t.Error("Persistent=true not set: a night missed while the machine was off would not run")
	}
	if d, err := time.ParseDuration(strings.TrimSuffix(u.last("Timer", "RandomizedDelaySec"), "in")); err != nil || d <= 0 || d > 30*time.Minute {
		t.Errorf("RandomizedDelaySec=%q, want a small delay (at most 30 minutes)", u.last("Timer", "RandomizedDelaySec"))
	}
	m := onCalendar.FindStringSubmatch(u.last("Timer", "OnCalendar"))
	if m == nil {
		t.Fatalf("OnCalendar=%q, want a daily HH:MM:00 in an IANA zone", u.last("Timer", "OnCalendar"))
	}
	h, _ := strconv.Atoi(m[1])
	min, _ := strconv.Atoi(m[2])
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC)
	// The randomized delay moves the run up to 30 minutes later: every
	// minute of that span must be safe too.
	for _, z := range append([]string{m[3]}, dst.Zones...) {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatal(err)
		}
		for d := 0; d <= 30; d += 5 {
			if err := dst.Check(loc, h+(min+d)/60, (min+d)%60, from, to); err != nil {
				t.Errorf("OnCalendar=%s (+%d min): %v", m[0], d, err)
			}
		}
	}
	if u.last("Timer", "Unit") != unit || u.last("Install", "WantedBy") != "timers.target" {
		t.Errorf("%s does not start %s, or is not wanted by timers.target", timer, unit)
	}
}

// The sample config names what keysync.service provides: the state file in
// its StateDirectory, secrets in its credential directory.
func TestSampleConfigMatchesTheUnit(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("keysync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if s, _ := cfg["state"].(string); path.Dir(s) != "/var/lib/keysync" {
		t.Errorf("state = %q, want a file of StateDirectory=keysync (/var/lib/keysync)", s)
	}
	h, m, err := dst.ParseCron(cfg["schedule"].(string))
	if err != nil {
		t.Fatal(err)
	}
	props, _ := cfg["properties"].([]any)
	zone, _ := props[0].(map[string]any)["timezone"].(string)
	for _, z := range append([]string{zone}, dst.Zones...) {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Check(loc, h, m, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Errorf("schedule: %v", err)
		}
	}
	files := 0
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasSuffix(k, "_file") || strings.HasPrefix(k, "#") {
			continue
		}
		v = strings.TrimSpace(v)
		if k == "state_key_file" {
			// Created by the first backfill: it must lie in the unit's
			// StateDirectory, the one place it may write.
			if !strings.HasPrefix(v, "/var/lib/keysync/") {
				t.Errorf("state_key_file: %s, want a path under /var/lib/keysync/ (StateDirectory=keysync)", v)
			}
			continue
		}
		files++
		if !strings.HasPrefix(v, "/run/credentials/keysync.service/secrets_") {
			t.Errorf("%s: %s, want /run/credentials/keysync.service/secrets_NAME (LoadCredential=secrets:/etc/keysync/secrets)", k, v)
		}
	}
	if files == 0 {
		t.Error("the sample config reads no secret from a file")
	}
}
