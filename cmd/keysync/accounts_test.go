package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
	"github.com/keysync/keysync/state"
)

// onlyAccount returns the entry of the one account of sys in m, failing
// the test unless there is exactly one.
func onlyAccount[V any](t *testing.T, m map[reconcile.Account]V, sys reconcile.System) V {
	t.Helper()
	var out V
	n := 0
	for acct, v := range m {
		if acct.System() == sys {
			out, n = v, n+1
		}
	}
	if n != 1 {
		t.Fatalf("%d accounts of %s in %v, want 1", n, sys, m)
	}
	return out
}

// systemSpent is the ledger's requests to sys, over all its accounts.
func systemSpent(m map[reconcile.Account]int, sys reconcile.System) int {
	n := 0
	for acct, v := range m {
		if acct.System() == sys {
			n += v
		}
	}
	return n
}

// portfolioYAML is two hotels on one 3RPMS endpoint with their own tokens
// and one OpenApp API key, and two apartment organisations on Guestway
// behind one partner key.
const portfolioYAML = `
properties:
  - name: hotel-a
    timezone: UTC
    threerpms: {endpoint: "https://rpms.example/graphql", token: "${TOKEN_A}"}
    openapp: {base_url: "https://openapp.example", api_key: "${OPENAPP_KEY}", org_id: o, integration_id: i, guest_url: "https://open.example/i/{token}"}
    default_method: pin
  - name: hotel-b
    timezone: UTC
    threerpms: {endpoint: "https://rpms.example/graphql", token: "${TOKEN_B}"}
    openapp: {base_url: "https://openapp.example", api_key: "${OPENAPP_KEY}", org_id: o, integration_id: i, guest_url: "https://open.example/i/{token}"}
    default_method: pin
  - name: apartments-1
    timezone: UTC
    guestway: {base_url: "https://guestway.example", partner_key: "${PARTNER_KEY}", token: "${GW_TOKEN_1}"}
    default_method: pin
  - name: apartments-2
    timezone: UTC
    guestway: {base_url: "https://guestway.example", partner_key: "${PARTNER_KEY}", token: "${GW_TOKEN_2}"}
    default_method: pin
`

var portfolioSecrets = map[string]string{
	"TOKEN_A": "secret-token-of-hotel-a", "TOKEN_B": "secret-token-of-hotel-b", "OPENAPP_KEY": "secret-openapp-key",
	"PARTNER_KEY": "secret-partner-key", "GW_TOKEN_1": "gw_org-one-token", "GW_TOKEN_2": "gw_org-two-token",
}

// TestAccountsFollowTheMeteredCredential: each 3RPMS token is its own
// account, with its own budget; a Guestway partner key and an OpenApp API
// key shared by properties are one account each, one budget listing the
// properties that share it; no account name reveals its secret.
func TestAccountsFollowTheMeteredCredential(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(strings.NewReader(portfolioYAML), func(k string) string { return portfolioSecrets[k] })
	if err != nil {
		t.Fatal(err)
	}
	acct := func(i int, sys reconcile.System) reconcile.Account {
		a, ok := cfg.Properties[i].accounts()[sys]
		if !ok {
			t.Fatalf("%s has no %s account", cfg.Properties[i].Name, sys)
		}
		return a
	}
	if acct(0, reconcile.System3RPMS) == acct(1, reconcile.System3RPMS) {
		t.Error("two 3RPMS tokens share an account")
	}
	if acct(0, reconcile.SystemOpenApp) != acct(1, reconcile.SystemOpenApp) {
		t.Error("one OpenApp API key is two accounts")
	}
	if acct(2, reconcile.SystemGuestway) != acct(3, reconcile.SystemGuestway) {
		t.Error("one Guestway partner key is two accounts (the organisations' tokens differ, the partner key is what is metered)")
	}
	b := budgets(cfg)
	if len(b) != 4 {
		t.Errorf("budgets %v, want 4 accounts (2 tokens, 1 OpenApp key, 1 partner key)", b)
	}
	for a, want := range map[reconcile.Account][]string{
		acct(0, reconcile.System3RPMS):    {"hotel-a"},
		acct(1, reconcile.System3RPMS):    {"hotel-b"},
		acct(0, reconcile.SystemOpenApp):  {"hotel-a", "hotel-b"},
		acct(2, reconcile.SystemGuestway): {"apartments-1", "apartments-2"},
	} {
		if b[a].Cap != 10000 {
			t.Errorf("%s budget %+v, want the default cap", a, b[a])
		}
		if got := cfg.usersOf(a); !slices.Equal(got, want) {
			t.Errorf("%s is used by %v, want %v", a, got, want)
		}
		if a.System() == "" || !strings.HasPrefix(string(a), string(a.System())+":") {
			t.Errorf("account %q does not name its system", a)
		}
		for _, secret := range portfolioSecrets {
			if strings.Contains(string(a), secret) {
				t.Errorf("account %q reveals a secret", a)
			}
		}
	}
}

// TestPacersPerAccount: hotels with their own 3RPMS tokens get a pacer
// each, so one spending its burst does not slow the other; organisations
// on one Guestway partner key share a pacer. On a fake clock.
func TestPacersPerAccount(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(strings.NewReader(portfolioYAML), func(k string) string { return portfolioSecrets[k] })
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	clock := clocktest.New(start)
	env := &environment{clock: clock, now: clock.Now, getenv: func(string) string { return "" }}
	if _, err := env.buildRunner(cfg, nil, nil, &reconcile.Meter{Clock: clock}); err != nil {
		t.Fatal(err)
	}
	if n := len(env.limiters.m); n != 4 {
		t.Fatalf("%d pacers, want one per account (4): %v", n, slices.Collect(maps.Keys(env.limiters.m)))
	}
	pacer := func(i int, sys reconcile.System) *httpapi.Pacer {
		return env.limiters.m[cfg.Properties[i].accounts()[sys]]
	}
	spend := func(p *httpapi.Pacer, n int) time.Duration {
		t.Helper()
		before := clock.Now()
		for range n {
			if err := p.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		return clock.Now().Sub(before)
	}
	if d := spend(pacer(0, reconcile.System3RPMS), 10); d != 0 {
		t.Fatalf("hotel-a's first burst of 10 waited %s", d)
	}
	if d := spend(pacer(1, reconcile.System3RPMS), 10); d != 0 {
		t.Errorf("hotel-b waited %s for hotel-a's requests: its token has its own pace", d)
	}
	if d := spend(pacer(2, reconcile.SystemGuestway), 10); d != 0 {
		t.Fatalf("apartments-1's first burst of 10 waited %s", d)
	}
	if d := spend(pacer(3, reconcile.SystemGuestway), 5); d < 700*time.Millisecond {
		t.Errorf("apartments-2's 5 requests after apartments-1's burst took %s, want the shared partner key's steady rate (≥ 0.7 s)", d)
	}
}

// TestPacerSeedPerAccount: a new process seeds each account's pacer from
// its own ledger rows, and rows recorded without an account (before
// migration 0008) into every account of their system.
func TestPacerSeedPerAccount(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	a, b := reconcile.NewAccount(reconcile.System3RPMS, "aaaaaaaa"), reconcile.NewAccount(reconcile.System3RPMS, "bbbbbbbb")
	gw := reconcile.NewAccount(reconcile.SystemGuestway, "cccccccc")
	burst := make([]time.Time, 10)
	for i := range burst {
		burst[i] = start.Add(-100 * time.Millisecond)
	}
	for _, tc := range []struct {
		name   string
		ledger map[reconcile.Account][]time.Time
		waits  map[reconcile.Account]bool
	}{
		{"one token's burst", map[reconcile.Account][]time.Time{a: burst}, map[reconcile.Account]bool{a: true}},
		{"rows without an account", map[reconcile.Account][]time.Time{reconcile.AnyAccount(reconcile.System3RPMS): burst},
			map[reconcile.Account]bool{a: true, b: true}},
	} {
		clock := clocktest.New(start)
		var l limiters
		l.seedFrom(t.Context(), fakeLedger{times: tc.ledger}, start, clock, slog.New(slog.DiscardHandler))
		for _, acct := range []reconcile.Account{a, b, gw} {
			p := l.get(acct, "api.test", 5, 10, clock)
			before := clock.Now()
			for range 10 {
				if err := p.Wait(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if waited := clock.Now().Sub(before) > 0; waited != tc.waits[acct] {
				t.Errorf("%s: %s waited %v, want %v", tc.name, acct, waited, tc.waits[acct])
			}
		}
	}
}

// fakeLedger is a Store that only answers RequestTimes (ledgerTimes).
type fakeLedger struct {
	reconcile.Store
	times map[reconcile.Account][]time.Time
}

func (f fakeLedger) RequestTimes(context.Context, time.Time) (map[reconcile.Account][]time.Time, error) {
	return f.times, nil
}

// TestAccountsWhateverTheHostsSpelling: one credential on one API host is
// one account however the config writes the host: a host name's case and
// the scheme's default port name the same server. A split hotel's two
// properties (one token, the endpoint written twice) are one hotel to the
// config, and must be one account too, or they pace and budget apart,
// each at the whole of the token's limits; so are two organisations on a
// partner key.
func TestAccountsWhateverTheHostsSpelling(t *testing.T) {
	t.Parallel()
	const yaml = `
properties:
  - name: hotel
    timezone: UTC
    threerpms: {endpoint: "https://rpms.example/graphql", token: "${TOKEN}"}
    rooms: {r1: pin}
  - name: annex
    timezone: UTC
    threerpms: {endpoint: "https://RPMS.example:443/graphql", token: "${TOKEN}"}
    rooms: {r2: pin}
  - name: apartments-1
    timezone: UTC
    guestway: {base_url: "https://guestway.example", partner_key: "${PARTNER_KEY}", token: "${GW_TOKEN_1}"}
    default_method: pin
  - name: apartments-2
    timezone: UTC
    guestway: {base_url: "https://Guestway.Example:443", partner_key: "${PARTNER_KEY}", token: "${GW_TOKEN_2}"}
    default_method: pin
`
	secrets := map[string]string{"TOKEN": "secret-token", "PARTNER_KEY": "secret-partner-key", "GW_TOKEN_1": "gw_org-one-token", "GW_TOKEN_2": "gw_org-two-token"}
	cfg, err := ParseConfig(strings.NewReader(yaml), func(k string) string { return secrets[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.splitHotels()) != 1 {
		t.Errorf("split hotels %d, want hotel and annex as one", len(cfg.splitHotels()))
	}
	for _, pair := range [][2]int{{0, 1}, {2, 3}} {
		a, b := cfg.Properties[pair[0]], cfg.Properties[pair[1]]
		for sys, acct := range a.accounts() {
			if other := b.accounts()[sys]; other != acct {
				t.Errorf("%s and %s: one %s credential on one host is two accounts, %s and %s: each paced and budgeted at the whole of its limits", a.Name, b.Name, sys, acct, other)
			}
		}
	}
	if n := len(budgets(cfg)); n != 2 {
		t.Errorf("%d budgets, want 2 (the token, the partner key): %v", n, budgets(cfg))
	}
}

// TestLedgerKeepsCountingAfterTheHostIsCanonical: a state file's ledger
// holds the requests of the last 24 hours under the fingerprint each
// credential had when they were sent. Fingerprints came to take the host in
// lower case and without the scheme's default port (canonicalHost): for a
// config that writes the host otherwise, the requests recorded before the
// upgrade must still count against the credential's daily budget, or the
// day's first run after the upgrade starts from a full budget and the API's
// daily limit is passed ("A name must identify the credential across runs").
func TestLedgerKeepsCountingAfterTheHostIsCanonical(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keysync.yaml")
	yaml := fmt.Sprintf(`
state: %s
state_key_file: %s
properties:
  - name: hotel
    timezone: UTC
    threerpms: {endpoint: "https://RPMS.example:443/graphql", token: "${TOKEN}", daily_cap: 1000}
    rooms: {r1: pin}
  - name: apartments
    timezone: UTC
    guestway: {base_url: "https://Guestway.Example", partner_key: "${PARTNER_KEY}", token: "${GW_TOKEN}", daily_cap: 1000}
    default_method: pin
`, filepath.Join(dir, "keysync.db"), filepath.Join(dir, "keysync.key"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"TOKEN": "secret-token", "PARTNER_KEY": "secret-partner-key", "GW_TOKEN": "gw_org-token"}
	getenv := func(k string) string { return secrets[k] }
	// The fingerprints as keysync took them before canonicalHost: the
	// host as the URL writes it.
	before := func(sys reconcile.System, host, credential string) reconcile.Account {
		sum := sha256.Sum256([]byte(string(sys) + "\x00" + host + "\x00" + credential))
		return reconcile.NewAccount(sys, hex.EncodeToString(sum[:4]))
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	db := openState(t, filepath.Join(dir, "keysync.db"), state.Options{Create: true})
	var reqs []reconcile.RequestRecord
	for i := range 600 {
		at := now.Add(-time.Duration(i+1) * time.Minute)
		reqs = append(reqs,
			reconcile.RequestRecord{System: reconcile.System3RPMS, Account: before(reconcile.System3RPMS, "RPMS.example:443", "secret-token"), At: at, Write: i%2 == 0},
			reconcile.RequestRecord{System: reconcile.SystemGuestway, Account: before(reconcile.SystemGuestway, "Guestway.Example", "secret-partner-key"), At: at})
	}
	if err := db.Save(context.Background(), nil, nil, reqs...); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var st statusReport
	if err := json.Unmarshal([]byte(mustRunText(t, ExitOK, getenv, "status", "--json", "--config", cfgPath, "--now", now.Format(time.RFC3339)).stdout), &st); err != nil {
		t.Fatal(err)
	}
	for _, sys := range []reconcile.System{reconcile.System3RPMS, reconcile.SystemGuestway} {
		if b := onlyAccount(t, st.Budget, sys); b.Used != 600 || b.Left != 400 {
			t.Errorf("%s: status shows %d of %d used, %d left; the ledger holds 600 requests of the credential from the last 24 hours, recorded under its fingerprint from before the upgrade", sys, b.Used, b.Cap, b.Left)
		}
	}
}
