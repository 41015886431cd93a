package main

import (
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestRenamedAccountsNeverTakeALiveAccount: the name a credential had
// before canonicalHost may be the name another credential of the config
// has now (the same key on the same host and port under the other scheme:
// https://h:443 was named by "h:443", as http://h:443 still is). Its rows
// are that credential's own requests: CountAs must not move them to the
// other, which would leave it a full budget and pace every day (the API's
// limit passed), nor may a name of the config's be renamed at all.
func TestRenamedAccountsNeverTakeALiveAccount(t *testing.T) {
	t.Parallel()
	yaml := `state: /data/keysync.db
properties:
  - name: lan
    timezone: UTC
    threerpms: {endpoint: "http://pms.example:443/graphql", token: "${TOKEN}"}
    rooms: {r1: pin}
  - name: wan
    timezone: UTC
    threerpms: {endpoint: "https://pms.example:443/graphql", token: "${TOKEN}"}
    rooms: {r2: pin}
`
	cfg, err := ParseConfig(strings.NewReader(yaml), func(string) string { return "secret-token" })
	if err != nil {
		t.Fatal(err)
	}
	live := map[reconcile.Account]string{}
	for _, p := range cfg.Properties {
		for _, a := range p.accounts() {
			live[a] = p.Name
		}
	}
	if len(live) != 2 {
		t.Fatalf("accounts %v, want two (the host's port is kept for http, dropped for https)", live)
	}
	for from, to := range cfg.renamedAccounts() {
		if p, ok := live[from]; ok {
			t.Errorf("renamedAccounts counts the ledger rows of %s (%s's account now) under %s: %s's requests would count against another credential, its own budget never spent", from, p, to, p)
		}
	}
}
