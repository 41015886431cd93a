package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// env is a getenv for tests.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigExampleParses(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig("../../config.example.yaml", env("KEYSYNC_3RPMS_TOKEN", "tok",
		"KEYSYNC_OPENAPP_API_KEY", "oa", "KEYSYNC_KEYBOX_PASSWORD", "kb",
		"KEYSYNC_GUESTWAY_PARTNER_KEY", "pk", "KEYSYNC_GUESTWAY_TOKEN", "gw_t", "KEYSYNC_3RPMS_WEBHOOK_SECRET", "wh"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Properties[0]
	if p.ThreeRPMS.webhookSecret.Reveal() != "wh" || cfg.Listen != "127.0.0.1:8080" || cfg.debounce != 2*time.Second {
		t.Errorf("webhooks: secret set %v, listen %q, debounce %s", p.ThreeRPMS.webhookSecret != "", cfg.Listen, cfg.debounce)
	}
	if g := cfg.Properties[1].Guestway; g.pollEvery != 15*time.Minute || g.PollDays != 2 {
		t.Errorf("guestway poll every %s, %d days", g.pollEvery, g.PollDays)
	}
	if p.Name != "hotel-ljubljana" || p.location.String() != "Europe/Ljubljana" {
		t.Errorf("property = %q in %v", p.Name, p.location)
	}
	if p.ThreeRPMS.token.Reveal() != "tok" {
		t.Error("token not resolved from the environment")
	}
	pol := p.policy()
	if pol.GraceBefore != 2*time.Hour || pol.GraceAfter != 2*time.Hour || pol.WindowDays != 7 {
		t.Errorf("policy = %+v", pol)
	}
	if pol.Rooms["r103"] != reconcile.MethodPIN || pol.Rooms["r201"] != reconcile.MethodQR || pol.Rooms["r301"] != reconcile.MethodKeyStorage || !pol.SharedPortals {
		t.Errorf("rooms = %v, shared portals %v", pol.Rooms, pol.SharedPortals)
	}
	if p.OpenApp.apiKey.Reveal() != "oa" || p.KeyBox.password.Reveal() != "kb" || p.Rooms["r301"].Compartment != "3R" {
		t.Error("openapp or keybox secrets not resolved")
	}
	g := cfg.Properties[1]
	if g.Guestway == nil || g.Guestway.token.Reveal() != "gw_t" || g.Guestway.partnerKey.Reveal() != "pk" || g.ThreeRPMS != nil {
		t.Errorf("guestway property = %+v", g.Guestway)
	}
	if cfg.retention != 90*24*time.Hour {
		t.Errorf("retention = %s", cfg.retention)
	}
	if cfg.Schedule != "15 4 * * *" || cfg.State != "/var/lib/keysync/keysync.db" {
		t.Errorf("schedule %q state %q", cfg.Schedule, cfg.State)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(strings.NewReader(`
properties:
  - name: p
    timezone: America/Vancouver
    threerpms: {endpoint: "http://127.0.0.1:1/graphql", token: "${T}"}
    default_method: pin
`), env("T", "x"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Properties[0]
	if p.CheckIn != "15:00" || p.CheckOut != "11:00" || p.WindowDays != 7 || p.ThreeRPMS.PageSize != 100 ||
		p.ThreeRPMS.MaxOpsPerRequest != 100 || p.PIN.Length != 6 || p.graceAfter != 2*time.Hour || p.graceBefore != 0 {
		t.Errorf("defaults not applied: %+v", p)
	}
	if cfg.State != "keysync.db" {
		t.Errorf("state default = %q", cfg.State)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	base := `
properties:
  - name: p
    timezone: Europe/Ljubljana
    threerpms: {endpoint: "https://x.example/graphql", token: "${T}"}
    rooms: {r1: pin}
`
	tests := []struct {
		name, yaml string
		getenv     func(string) string
		want       string
	}{
		{"unknown top-level key", "stat: x\n" + base, env("T", "x"), `field stat not found`},
		{"unknown property key", strings.Replace(base, "name: p", "name: p\n    colour: red", 1), env("T", "x"), "field colour not found"},
		{"unknown room key", strings.Replace(base, "{r1: pin}", "{r1: {method: pin, door: 3}}", 1), env("T", "x"), "field door not found"},
		{"bad method", strings.Replace(base, "{r1: pin}", "{\"204\": pn}", 1), env("T", "x"), `properties[0].rooms["204"].method: unknown method "pn"`},
		{"missing env", base, env(), "properties[0].threerpms.token: environment variable T is not set"},
		{"bad zone", strings.Replace(base, "Europe/Ljubljana", "Mars/Olympus", 1), env("T", "x"), "properties[0].timezone"},
		{"bad check-in", strings.Replace(base, "name: p", "name: p\n    check_in: 25:00", 1), env("T", "x"), "properties[0].check_in"},
		{"bad grace", strings.Replace(base, "name: p", "name: p\n    grace: {after_departure: soon}", 1), env("T", "x"), "properties[0].grace.after_departure"},
		{"bad endpoint", strings.Replace(base, "https://x.example/graphql", "ftp://x", 1), env("T", "x"), "properties[0].threerpms.endpoint"},
		{"mixed-case alphabet", strings.Replace(base, "name: p", "name: p\n    pin: {alphabet: aB3}", 1), env("T", "x"), "properties[0].pin: alphabet: mixes upper and lower case"},
		{"pin too long", strings.Replace(base, "name: p", "name: p\n    pin: {length: 11}", 1), env("T", "x"), "properties[0].pin: length 11"},
		{"bad schedule", "schedule: every night\n" + base, env("T", "x"), "schedule:"},
		{"zero shard share", strings.Replace(base, `token: "${T}"}`, `token: "${T}", shard_budget_share: 0}`, 1), env("T", "x"), "properties[0].threerpms.shard_budget_share: 0: must be a fraction above 0"},
		{"debounce too short", "webhook_debounce: 10ms\n" + base, env("T", "x"), `webhook_debounce: "10ms"`},
		{"webhook secret not set", strings.Replace(base, `token: "${T}"`, `token: "${T}", webhook_secret: "${W}"`, 1), env("T", "x"), "properties[0].threerpms.webhook_secret: environment variable W is not set"},
		{"poll too often", strings.Replace(base, "    threerpms: {endpoint: \"https://x.example/graphql\", token: \"${T}\"}\n", "    guestway: {base_url: \"https://g.example\", partner_key: k, token: gw_x, poll_every: 10s}\n", 1), env("T", "x"), `properties[0].guestway.poll_every: "10s"`},
		{"no properties", "state: x.db\n", env(), "properties: at least one property is required"},
		{"slash in a name", strings.Replace(base, "name: p", "name: p/q", 1), env("T", "x"), `properties[0].name: "p/q": not . or .., no '/'`},
		{"space around a name", strings.Replace(base, "name: p", `name: "p "`, 1), env("T", "x"), `properties[0].name: "p ": not . or .., no '/', '%', '?', '#' or control characters, no spaces at either end`},
		{"dot dot", strings.Replace(base, "name: p", `name: ".."`, 1), env("T", "x"), `properties[0].name: "..": not . or ..`},
		{"query in a name", strings.Replace(base, "name: p", `name: "p?x"`, 1), env("T", "x"), `properties[0].name: "p?x": not . or ..`},
		{"duplicate names", base + "  - name: p\n    timezone: UTC\n    threerpms: {endpoint: \"https://y.example/\", token: \"${T}\"}\n    default_method: pin\n", env("T", "x"), `properties[1].name: "p" is used by another property`},
		{"no rooms", strings.Replace(base, "    rooms: {r1: pin}\n", "", 1), env("T", "x"), "properties[0].rooms: map at least one room"},
		{"token and file", strings.Replace(base, `token: "${T}"`, `token: "${T}", token_file: /x`, 1), env("T", "x"), "properties[0].threerpms.token: set the value or the _file form, not both"},
		{"two sources", strings.Replace(base, "    rooms:", "    guestway: {base_url: \"https://g.example\", partner_key: k, token: gw_x}\n    rooms:", 1), env("T", "x"), "a property has one source"},
		{"no source", strings.Replace(base, "    threerpms: {endpoint: \"https://x.example/graphql\", token: \"${T}\"}\n", "", 1), env("T", "x"), "properties[0]: needs a source"},
		{"qr without openapp", strings.Replace(base, "{r1: pin}", "{r1: {method: qr, portals: [p1]}}", 1), env("T", "x"), `properties[0].rooms["r1"].method: qr needs an openapp section`},
		{"key_storage without key", strings.Replace(base, "{r1: pin}", "{r1: {method: key_storage, compartment: 3R}}", 1) + "    keybox: {base_url: \"https://k.example\", username: u, password: p}\n", env("T", "x"), `properties[0].rooms["r1"]: set exactly one of key_id and key_serial`},
		{"bad compartment", strings.Replace(base, "{r1: pin}", "{r1: {method: key_storage, key_id: K1, compartment: shelf-12}}", 1) + "    keybox: {base_url: \"https://k.example\", username: u, password: p}\n", env("T", "x"), `properties[0].rooms["r1"].compartment`},
		{"guestway token prefix", strings.Replace(strings.Replace(base, "    threerpms: {endpoint: \"https://x.example/graphql\", token: \"${T}\"}\n", "    guestway: {base_url: \"https://g.example\", partner_key: k, token: \"${T}\"}\n", 1), "{r1: pin}", "{L1: pin}", 1), env("T", "abc"), "properties[0].guestway.token: Organization Access Tokens start with gw_"},
		{"openapp without org", strings.Replace(base, "    rooms:", "    openapp: {base_url: \"https://o.example\", api_key: k, integration_id: i, guest_url: \"https://o.example/i/{token}\"}\n    rooms:", 1), env("T", "x"), "properties[0].openapp.org_id: is required"},
		{"retention too short", "retention: 2d\n" + base, env("T", "x"), "retention: 2d is too short: keep at least 3d"},
		{"shared endpoint, default method", base + "  - name: q\n    timezone: UTC\n    threerpms: {endpoint: \"https://X.example/graphql/\", token: \"${T}\"}\n    default_method: pin\n", env("T", "x"), `properties[1].default_method: property "q" shares 3RPMS endpoint`},
		{"shared organisation, default method", "properties:\n  - name: p\n    timezone: UTC\n    guestway: {base_url: \"https://g.example\", partner_key: k, token: gw_x}\n    rooms: {L1: pin}\n  - name: q\n    timezone: UTC\n    guestway: {base_url: \"https://G.example/\", partner_key: k, token: gw_x}\n    default_method: pin\n", env(), `properties[1].default_method: property "q" shares Guestway`},
		{"shared organisation, one listing twice", "properties:\n  - name: p\n    timezone: UTC\n    guestway: {base_url: \"https://g.example\", partner_key: k, token: gw_x}\n    rooms: {L1: pin}\n  - name: q\n    timezone: UTC\n    guestway: {base_url: \"https://g.example\", partner_key: k, token: gw_x}\n    rooms: {L2: pin, L1: pin}\n", env(), `properties[1].rooms["L1"]: listing L1 is also mapped by property "p"`},
		{"shared endpoint, one room twice", base + "  - name: q\n    timezone: UTC\n    threerpms: {endpoint: \"https://x.example/graphql\", token: \"${T}\"}\n    rooms: {r2: pin, r1: pin}\n", env("T", "x"), `properties[1].rooms["r1"]: room r1 is also mapped by property "p"`},
		{"partial reference", strings.Replace(base, `"${T}"`, `"Bearer ${T}"`, 1), env("T", "x"), "whole value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tt.yaml), tt.getenv)
			if err == nil {
				t.Fatalf("no error; want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestConfigTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/tok"
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(strings.NewReader(`
properties:
  - name: p
    timezone: UTC
    threerpms: {endpoint: "https://x.example/graphql", token_file: "`+path+`"}
    default_method: pin
`), env())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Properties[0].ThreeRPMS.token.Reveal(); got != "from-file" {
		t.Errorf("token = %q", got)
	}
}

// TestConfigRetention: retention is whole days, 90d when the field is left
// out; a value set to nothing, to 0 or below the minimum is an error naming
// the field, never replaced by the default.
func TestConfigRetention(t *testing.T) {
	t.Parallel()
	base := `
properties:
  - name: p
    timezone: UTC
    threerpms: {endpoint: "https://x.example/graphql", token: "${T}"}
    default_method: pin
`
	for _, tc := range []struct {
		line string
		want time.Duration
		err  string
	}{
		{"", 90 * 24 * time.Hour, ""},
		{"retention: 90d", 90 * 24 * time.Hour, ""},
		{"retention: 3d", 3 * 24 * time.Hour, ""},
		{"retention: 400d", 400 * 24 * time.Hour, ""},
		{"retention: 0", 0, `retention: "0" is not a number of days such as 90d`},
		{"retention: 0d", 0, "retention: 0d is too short: keep at least 3d"},
		{"retention: 2d", 0, "retention: 2d is too short"},
		{"retention:", 0, "retention: give a number of days such as 90d"},
		{`retention: ""`, 0, "retention: give a number of days such as 90d"},
		{"retention: ~", 0, "retention: give a number of days such as 90d"},
		{"retention: [90d]", 0, "retention: give a number of days such as 90d"},
		{"retention: 2160h", 0, `retention: "2160h" is not a number of days`},
		{"retention: -5d", 0, `retention: "-5d" is not a number of days`},
		{"retention: 99999d", 0, "retention: 99999d: at most 36500d"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(tc.line+"\n"+base), env("T", "x"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.retention != tc.want {
				t.Errorf("retention = %s, want %s", cfg.retention, tc.want)
			}
		})
	}
}

// TestConfigExplicitZeros: a field the file sets to zero or empty is never
// replaced by its default. Where zero is a valid choice it is honoured
// (reserve_for_revocations: 0 is no reserve); elsewhere it is rejected with
// an error naming the field.
func TestConfigExplicitZeros(t *testing.T) {
	t.Parallel()
	base := `
properties:
  - name: p
    timezone: Europe/Ljubljana
    threerpms:
      endpoint: "https://x.example/graphql"
      token: "${T}"
    guestway:
    openapp:
      base_url: "https://o.example"
      api_key: k
      org_id: o
      integration_id: i
      guest_url: "https://o.example/i/{token}"
    keybox:
      base_url: "https://k.example"
      username: u
      password: p
    rooms: {r1: pin}
`
	// set puts "key: value" into a section ("" for the property).
	set := func(section, kv string) string {
		if section == "" {
			return strings.Replace(base, "    timezone:", "    "+kv+"\n    timezone:", 1)
		}
		if section == "guestway" {
			gw := "    guestway:\n      base_url: \"https://g.example\"\n      partner_key: k\n      token: gw_t\n      " + kv + "\n"
			b := strings.Replace(base, "    threerpms:\n      endpoint: \"https://x.example/graphql\"\n      token: \"${T}\"\n", "", 1)
			return strings.Replace(b, "    guestway:\n", gw, 1)
		}
		return strings.Replace(base, "    "+section+":\n", "    "+section+":\n      "+kv+"\n", 1)
	}
	rejected := []struct{ section, kv, want string }{
		{"", "window_days: 0", "properties[0].window_days: 0"},
		{"", "check_in: \"\"", "properties[0].check_in"},
		{"", "check_out: \"\"", "properties[0].check_out"},
		{"", "grace: {before_arrival: \"\"}", "properties[0].grace.before_arrival"},
		{"", "grace: {after_departure: \"\"}", "properties[0].grace.after_departure"},
		{"", "pin: {length: 0}", "properties[0].pin: length 0"},
		{"", "pin: {alphabet: \"\"}", "properties[0].pin: alphabet"},
		{"threerpms", "page_size: 0", "properties[0].threerpms.page_size: 0"},
		{"threerpms", "page_size:", "properties[0].threerpms.page_size: 0"},
		{"threerpms", "max_ops_per_request: 0", "properties[0].threerpms.max_ops_per_request: 0"},
		{"threerpms", "rate_per_second: 0", "properties[0].threerpms.rate_per_second: 0"},
		{"threerpms", "burst: 0", "properties[0].threerpms.burst: 0"},
		{"threerpms", "max_response_bytes: 0", "properties[0].threerpms.max_response_bytes: 0"},
		{"threerpms", "daily_cap: 0", "properties[0].threerpms.daily_cap: 0"},
		{"openapp", "burst: 0", "properties[0].openapp.burst: 0"},
		{"openapp", "rate_per_second: 0", "properties[0].openapp.rate_per_second: 0"},
		{"keybox", "burst: 0", "properties[0].keybox.burst: 0"},
		{"keybox", "create_path: \"\"", "properties[0].keybox.create_path"},
		{"keybox", "cancel_path: \"\"", "properties[0].keybox.cancel_path"},
		{"keybox", "cancel_method: \"\"", "properties[0].keybox.cancel_method"},
		{"keybox", "list_path: \"\"", "properties[0].keybox.list_path"},
		{"guestway", "per_page: 0", "properties[0].guestway.per_page: 0"},
		{"guestway", "burst: 0", "properties[0].guestway.burst: 0"},
		{"guestway", "reservations_path: \"\"", "properties[0].guestway.reservations_path"},
		{"guestway", "reservation_path: \"\"", "properties[0].guestway.reservation_path"},
		{"guestway", "accesses_path: \"\"", "properties[0].guestway.accesses_path"},
	}
	for _, tc := range rejected {
		t.Run(tc.section+" "+tc.kv, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(set(tc.section, tc.kv)), env("T", "x"))
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tc.want)
			}
		})
	}

	// Zero where zero is a choice: honoured.
	cfg, err := ParseConfig(strings.NewReader(set("threerpms", "reserve_for_revocations: 0")), env("T", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Properties[0].ThreeRPMS.Reserve; r != 0 {
		t.Errorf("reserve_for_revocations: 0 read as %d", r)
	}
	if b := onlyAccount(t, budgets(cfg), reconcile.System3RPMS); b.Reserve != 0 || b.Cap != 10000 {
		t.Errorf("3RPMS budget = %+v, want cap 10000 (default) with no reserve", b)
	}
	cfg, err = ParseConfig(strings.NewReader(set("", "grace: {after_departure: 0s}")), env("T", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.Properties[0].graceAfter; g != 0 {
		t.Errorf("grace.after_departure: 0s read as %s", g)
	}
	// A merge key sets what it merges.
	merged := strings.Replace(set("threerpms", "<<: &zero {burst: 0}"), "      org_id: o\n", "      org_id: o\n      <<: *zero\n", 1)
	if _, err := ParseConfig(strings.NewReader(merged), env("T", "x")); err == nil || !strings.Contains(err.Error(), "properties[0].openapp.burst: 0") {
		t.Errorf("burst: 0 merged in: error = %v", err)
	}
}

// TestConfigRelativeStatePath: a relative state path is resolved against
// the config file's folder, not the working directory.
func TestConfigRelativeStatePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "k.yaml")
	yaml := "state: data/keysync.db\nproperties:\n  - name: p\n    timezone: UTC\n    threerpms: {endpoint: \"https://x.example/graphql\", token: \"t\"}\n    default_method: pin\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, env())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data", "keysync.db"); cfg.State != want {
		t.Errorf("state = %q, want %q", cfg.State, want)
	}
}
