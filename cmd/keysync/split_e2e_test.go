package main

import (
	"os"
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestSplitHotel: one 3RPMS hotel (one endpoint and token) split into two
// properties that list their own rooms. Each keys only the stays in its
// rooms, once; the window is read once for both; a stay moved into the
// other property's room is withdrawn by the one and keyed by the other,
// and the plan then has nothing left to do. (The two properties read at
// once: the run that sees the move withdraws the old key, the next one
// keys the stay anew; see the README's split hotels.)
func TestSplitHotel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4, "")
	yaml, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := h.srv.URL + "/graphql"
	split := strings.Replace(string(yaml), "    default_method: pin\n", "    rooms: {r101: pin, r102: pin}\n", 1) + `  - name: annex
    timezone: Europe/Ljubljana
    threerpms:
      endpoint: ` + endpoint + `
      token: ${KEYSYNC_3RPMS_TOKEN}
      rate_per_second: 1000
      burst: 1000
    rooms: {r103: pin, r104: pin}
`
	if err := os.WriteFile(h.cfgPath, []byte(split), 0o600); err != nil {
		t.Fatal(err)
	}
	if h.cfg, err = LoadConfig(h.cfgPath, h.getenv); err != nil {
		t.Fatal(err)
	}
	for _, s := range [][2]string{{"h1", "r101"}, {"h2", "r102"}, {"a1", "r103"}, {"a2", "r104"}} {
		h.stay(s[0], s[1], 1, 3)
	}
	owner := map[string]string{"h1": "hotel", "h2": "hotel", "a1": "annex", "a2": "annex"}
	check := func(when string) {
		t.Helper()
		keys := map[string]bool{}
		for id := range owner {
			v, _ := h.sb.Stay(id)
			if v.KeyID == "" {
				t.Errorf("%s: stay %s holds no key", when, id)
			}
			if keys[v.KeyID] {
				t.Errorf("%s: key %s is on two stays", when, v.KeyID)
			}
			keys[v.KeyID] = true
		}
		live := map[string]int{}
		for _, c := range readCredentials(t, h.cfg.State) {
			if !c.Status.Live() {
				continue
			}
			live[c.Stay.ID]++
			if c.Stay.Property != owner[c.Stay.ID] {
				t.Errorf("%s: %s holds a credential of stay %s, which is in %s's rooms", when, c.Stay.Property, c.Stay.ID, owner[c.Stay.ID])
			}
		}
		for id := range owner {
			if live[id] != 1 {
				t.Errorf("%s: stay %s has %d live credentials, want 1", when, id, live[id])
			}
		}
		if rep := h.mustRun(ExitOK, "plan"); len(rep.Actions()) != 0 {
			t.Errorf("%s: the plan still has %d actions", when, len(rep.Actions()))
		}
	}

	h.sb.ResetRequests()
	rep := h.mustRun(ExitOK, "backfill")
	for _, a := range rep.Actions() {
		if a.Stay.Property != owner[a.Stay.ID] {
			t.Errorf("backfill: %s acted on stay %s", a.Stay.Property, a.Stay.ID)
		}
	}
	windowReads := 0
	for _, r := range h.sb.Requests() {
		if r.Operation == "query" && r.Name == "RoomStays" {
			windowReads++
		}
	}
	if windowReads != 1 {
		t.Errorf("the window was read %d times for the two properties, want once", windowReads)
	}
	check("after the backfill")

	if err := h.sb.MoveStay("h1", "r103"); err != nil {
		t.Fatal(err)
	}
	owner["h1"] = "annex"
	var withdrawn, issued bool
	for _, a := range append(h.mustRun(ExitOK, "run").Actions(), h.mustRun(ExitOK, "run").Actions()...) {
		if a.Stay.ID != "h1" || a.Result != reconcile.ResultDone {
			continue
		}
		withdrawn = withdrawn || (a.Stay.Property == "hotel" && a.Op == reconcile.OpRevoke)
		issued = issued || (a.Stay.Property == "annex" && a.Op == reconcile.OpCreate)
	}
	if !withdrawn || !issued {
		t.Errorf("after the move: hotel withdrew h1's key %v, annex issued one %v; want both", withdrawn, issued)
	}
	check("after h1 moved into the annex")
}
