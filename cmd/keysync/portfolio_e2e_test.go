package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// splitHotelWithABudget is a 3RPMS hotel on one endpoint and token split
// into hotel (r101-r104) and annex (r105, r106), one mutation a document
// (each action one request), sharing the token's daily cap and reserve.
func splitHotelWithABudget(t *testing.T, limit, reserve int) *harness {
	t.Helper()
	h := newHarness(t, 6, "")
	yaml, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	limits := "      max_ops_per_request: 1\n      daily_cap: " + strconv.Itoa(limit) + "\n      reserve_for_revocations: " + strconv.Itoa(reserve) + "\n"
	split := strings.Replace(string(yaml), "      burst: 1000\n    default_method: pin\n", "      burst: 1000\n"+limits+"    rooms: {r101: pin, r102: pin, r103: pin, r104: pin}\n", 1) + `  - name: annex
    timezone: Europe/Ljubljana
    check_in: "15:00"
    check_out: "11:00"
    grace: {before_arrival: 2h, after_departure: 2h}
    threerpms:
      endpoint: ` + h.srv.URL + `/graphql
      token: ${KEYSYNC_3RPMS_TOKEN}
      rate_per_second: 1000
      burst: 1000
` + limits + `    rooms: {r105: pin, r106: pin}
`
	if err := os.WriteFile(h.cfgPath, []byte(split), 0o600); err != nil {
		t.Fatal(err)
	}
	if h.cfg, err = LoadConfig(h.cfgPath, h.getenv); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBudgetRevocationsFirstAcrossProperties: properties sharing a
// metered credential share its day; with too little of it left, the
// revocations of every one of them go before any property's arrivals,
// whatever the config's order. The annex's two departed guests' keys are
// revoked and deleted, while the hotel (first in the config) defers the
// arrivals of next week that no longer fit.
func TestBudgetRevocationsFirstAcrossProperties(t *testing.T) {
	t.Parallel()
	h := splitHotelWithABudget(t, 1000, 1)
	h.stay("gone1", "r105", -2, 0)
	h.stay("gone2", "r106", -2, 0)
	h.mustRun(ExitOK, "backfill")
	for i, room := range []string{"r101", "r102", "r103", "r104"} {
		h.stay("next"+strconv.Itoa(i), room, 5, 7)
	}
	// Past checkout (10:00Z + 2 h grace): the annex revokes and deletes
	// two keys (4 requests), the hotel creates and assigns four (8).
	h.setNow(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC))
	plan := h.mustRun(ExitOK, "plan")
	reads := plan.Requests[reconcile.System3RPMS].Reads
	// Leave the run 9 requests after its own reads: enough for every
	// revocation (4) and two of the four arrivals (4), the reserve (1)
	// kept.
	h.spendDownTo(1000-reads-9, true)

	rep := h.mustRun(ExitPartial, "run")
	for _, id := range []string{"gone1", "gone2"} {
		if s, _ := h.sb.Stay(id); s.KeyID != "" {
			t.Errorf("the annex's departed guest %s still holds key %s after checkout", id, s.KeyID)
		}
	}
	for _, a := range rep.Deferred() {
		if a.Stay.Property == "annex" {
			t.Errorf("annex's %s of %s deferred (%s) while the hotel's later arrivals went ahead; counts %v", a.Op, a.Stay.ID, a.Error, rep.Counts())
		}
	}
}

// TestBudgetArrivalsSoonFirstAcrossProperties: properties sharing a
// metered credential share its day, and a short day is spent by priority
// (README, "Requests: pace, budget and report": revocations and cleanup,
// arrivals within 24 hours, stays in house, later arrivals soonest
// first): the annex's guest arriving today is keyed before the hotel's
// guests of next week, though the hotel comes first in the config. Before,
// only revocations went first across properties: the hotel, budgeted
// first, keyed two arrivals five days out and left today's guest at the
// annex without a key.
func TestBudgetArrivalsSoonFirstAcrossProperties(t *testing.T) {
	t.Parallel()
	h := splitHotelWithABudget(t, 1000, 1)
	h.mustRun(ExitOK, "backfill")
	for i, room := range []string{"r101", "r102", "r103", "r104"} {
		h.stay("next"+strconv.Itoa(i), room, 5, 7)
	}
	h.stay("today", "r105", 0, 2)
	plan := h.mustRun(ExitOK, "plan")
	reads := plan.Requests[reconcile.System3RPMS].Reads
	// Leave the run 5 requests after its own reads: the reserve (1) and
	// two create-and-assign pairs of the five the plan holds.
	h.spendDownTo(1000-reads-5, true)

	rep := h.mustRun(ExitPartial, "run")
	if s, _ := h.sb.Stay("today"); s.KeyID == "" {
		t.Errorf("the annex's guest arriving today holds no key, while the hotel's arrivals of next week went ahead; counts %v", rep.Counts())
	}
	for _, a := range rep.Deferred() {
		if a.Stay.Property == "annex" {
			t.Errorf("annex's %s of %s deferred (%s)", a.Op, a.Stay.ID, a.Error)
		}
	}
}
