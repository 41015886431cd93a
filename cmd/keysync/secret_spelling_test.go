package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestOneTokenWhateverItsWhitespaceIsOneCredential: a 3RPMS token (or a
// Guestway partner key) that two properties take from different places,
// one from a file (read with its trailing newline trimmed), the other from
// the environment or the config with a stray space or newline around it,
// is one credential: the API is sent the same value (an HTTP server trims
// a header value's surrounding whitespace, and a newline cannot be sent at
// all), so it must be one account, paced and budgeted once, and the two
// properties on one endpoint and token one split hotel (README, "Requests:
// pace, budget and report": "properties sharing a credential share both";
// "Split hotels"), whose properties each list their own rooms, read the
// window once and are kept in one shard. Before, only a file's value was
// trimmed: a space made the one token two accounts with a full budget and
// pace each, and two hotels, each flagging the other's rooms unmapped
// every night; a newline from the environment (a Kubernetes secretKeyRef
// of a file ending in one) failed every request with "invalid header
// field value" (exit 3, retried every night) instead of a config error.
func TestOneTokenWhateverItsWhitespaceIsOneCredential(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, v := range map[string]string{"token": "secret-token\n", "partner-key": "secret-partner-key\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, spelled := range []string{"secret-token ", " secret-token", "secret-token\n", "\tsecret-token\r\n"} {
		yaml := `
properties:
  - name: hotel
    timezone: UTC
    threerpms: {endpoint: "https://rpms.example/graphql", token_file: "` + filepath.Join(dir, "token") + `"}
    rooms: {r1: pin}
  - name: annex
    timezone: UTC
    threerpms: {endpoint: "https://rpms.example/graphql", token: "${TOKEN}"}
    rooms: {r2: pin}
  - name: apartments-1
    timezone: UTC
    guestway: {base_url: "https://guestway.example", partner_key_file: "` + filepath.Join(dir, "partner-key") + `", token: "${GW_TOKEN_1}"}
    default_method: pin
  - name: apartments-2
    timezone: UTC
    guestway: {base_url: "https://guestway.example", partner_key: "${PARTNER_KEY}", token: "${GW_TOKEN_2}"}
    default_method: pin
`
		env := map[string]string{
			"TOKEN": spelled, "PARTNER_KEY": strings.Replace(spelled, "secret-token", "secret-partner-key", 1),
			"GW_TOKEN_1": "gw_org-one-token", "GW_TOKEN_2": "gw_org-two-token",
		}
		cfg, err := ParseConfig(strings.NewReader(yaml), func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("token %q: %v", spelled, err)
			continue
		}
		for _, pair := range [][2]int{{0, 1}, {2, 3}} {
			a, b := cfg.Properties[pair[0]], cfg.Properties[pair[1]]
			for sys, acct := range a.accounts() {
				if other := b.accounts()[sys]; other != acct {
					t.Errorf("%q: %s and %s: one %s credential is two accounts, %s and %s, each paced and budgeted at the whole of its limits", spelled, a.Name, b.Name, sys, acct, other)
				}
			}
		}
		if n := len(cfg.splitHotels()); n != 1 {
			t.Errorf("%q: %d split hotels, want hotel and annex as one", spelled, n)
		}
		if n := len(budgets(cfg)); n != 2 {
			t.Errorf("%q: %d budgets, want 2 (the token, the partner key)", spelled, n)
		}
		if tok := cfg.Properties[1].ThreeRPMS.token; tok != reconcile.Secret("secret-token") {
			t.Errorf("%q: annex sends the token as %q, which a header cannot carry as written", spelled, string(tok))
		}
	}
}
