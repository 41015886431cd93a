package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
	"github.com/keysync/keysync/state"
)

// TestBudgetNearlySpentDefersCreationsNotRevocations seeds the ledger at
// 9,990 of 3RPMS's 10,000 daily requests: the next run still revokes and
// deletes the departed guest's key (revocations may use the reserve), defers
// the new arrivals' keys, reports them and exits partial; once the ledger's
// day has passed, the deferred stays are keyed first.
func TestBudgetNearlySpentDefersCreationsNotRevocations(t *testing.T) {
	t.Parallel()
	h := backfilledHarness(t, 4, "", booking{"leaving", "r101", -2, 0})
	h.stay("new1", "r102", 1, 3)
	h.stay("new2", "r103", 2, 4)

	// Past checkout (10:00Z + 2 h grace), with the day's budget nearly gone.
	h.setNow(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC))
	db := openState(t, h.cfg.State, state.Options{Key: stateKeyOf(t, h.cfg)})
	spent := make([]reconcile.RequestRecord, 9990)
	for i := range spent {
		spent[i] = reconcile.RequestRecord{System: reconcile.System3RPMS, At: h.now.Add(-time.Hour), Write: i%2 == 0}
	}
	if err := db.Save(context.Background(), nil, nil, spent...); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rep := h.mustRun(ExitPartial, "run")
	if countOps(rep, reconcile.OpRevoke, reconcile.ResultDone) != 1 || countOps(rep, reconcile.OpDelete, reconcile.ResultDone) != 1 {
		t.Errorf("revocations not done: %v", rep.Counts())
	}
	deferred := map[string]bool{}
	for _, a := range rep.Deferred() {
		deferred[a.Stay.ID] = true
	}
	if !deferred["new1"] || !deferred["new2"] || countOps(rep, reconcile.OpCreate, reconcile.ResultDone) != 0 {
		t.Errorf("want new1 and new2 deferred and nothing created; deferred %v, counts %v", deferred, rep.Counts())
	}
	b := onlyAccount(t, rep.Budget, reconcile.System3RPMS)
	if b.Cap != 10000 || b.UsedToday < 9991 || b.Left > 9 || b.Deferred != 4 {
		t.Errorf("budget report = %+v", b)
	}
	if s, _ := h.sb.Stay("new1"); s.KeyID != "" {
		t.Error("a deferred stay was keyed")
	}

	// A day later the ledger's requests have aged out: the deferred stays
	// come first in the plan, before new0, which arrives with new1 and
	// would sort before it by id.
	h.stay("new0", "r104", 1, 3)
	h.setNow(h.now.Add(24 * time.Hour))
	rep = h.mustRun(ExitOK, "run")
	var order []string
	for _, a := range rep.Actions() {
		if a.Op == reconcile.OpCreate {
			order = append(order, a.Stay.ID)
		}
	}
	if len(order) != 3 || !deferred[order[0]] || !deferred[order[1]] || order[2] != "new0" {
		t.Errorf("creates in order %v, want the deferred stays first", order)
	}
	h.checkInvariants("")
}

// TestBudgetReadsLeaveTheReserveToRevocations: with the day's budget down
// to its reserve, the run's own reads do not take the reserve from the
// revocation they find: the departed guest's key is revoked and deleted,
// though the reads take the day past its cap, and only the arrival waits.
func TestBudgetReadsLeaveTheReserveToRevocations(t *testing.T) {
	t.Parallel()
	const limit, reserve = 60, 1
	h := leavingWithABudget(t, limit, reserve)
	h.stay("new1", "r102", 1, 3)
	h.setNow(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)) // past checkout
	h.spendDownTo(limit-reserve, false)

	rep := h.mustRun(ExitPartial, "run")
	if countOps(rep, reconcile.OpRevoke, reconcile.ResultDone) != 1 || countOps(rep, reconcile.OpDelete, reconcile.ResultDone) != 1 {
		t.Errorf("the departed guest's key is not revoked and deleted: %v", rep.Counts())
	}
	if d := rep.Deferred(); len(d) != 2 || d[0].Stay.ID != "new1" || countOps(rep, reconcile.OpCreate, reconcile.ResultDone) != 0 {
		t.Errorf("want new1's create and assign deferred, nothing created; deferred %+v, counts %v", d, rep.Counts())
	}
	if b := onlyAccount(t, rep.Budget, reconcile.System3RPMS); b.UsedToday <= limit || b.Left != 0 {
		t.Errorf("budget %+v: want the reads and the revocation past the cap of %d", b, limit)
	}
	if _, _, stderr := h.run("plan"); !strings.Contains(stderr, "the day's requests are past the daily cap") {
		t.Errorf("a plan past the cap does not warn:\n%s", stderr)
	}
	h.setNow(h.now.Add(24 * time.Hour))
	h.mustRun(ExitOK, "run")
	h.checkInvariants("")
}

// TestBudgetEarlierReadsLeaveTheReserveToo: with the day's writes down to
// the reserve, a morning of read-only runs does not spend it either: the
// run that finds the checkout still revokes.
func TestBudgetEarlierReadsLeaveTheReserveToo(t *testing.T) {
	t.Parallel()
	const limit, reserve = 60, 3
	h := leavingWithABudget(t, limit, reserve)
	h.setNow(time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC))
	h.spendDownTo(limit-reserve, true) // writes down to the reserve
	// A quiet morning: read-only runs.
	for i := range reserve {
		h.setNow(time.Date(2026, 11, 23, 8+i, 0, 0, 0, time.UTC))
		h.mustRun(ExitOK, "run")
	}
	h.setNow(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)) // past checkout
	rep := h.mustRun(ExitOK, "run")
	if countOps(rep, reconcile.OpRevoke, reconcile.ResultDone) != 1 || countOps(rep, reconcile.OpDelete, reconcile.ResultDone) != 1 {
		t.Errorf("the departed guest's key is not revoked and deleted: %v; budget %+v", rep.Counts(), onlyAccount(t, rep.Budget, reconcile.System3RPMS))
	}
}

// leavingWithABudget is a hotel whose 3RPMS day has the cap and reserve
// given, backfilled with a guest who left two days ago.
func leavingWithABudget(t *testing.T, limit, reserve int) *harness {
	t.Helper()
	h := backfilledHarness(t, 4, fmt.Sprintf("      daily_cap: %d\n      reserve_for_revocations: %d\n", limit, reserve), booking{"leaving", "r101", -2, 0})
	return h
}

// spendDownTo plans (its reads count) and then fills 3RPMS's ledger an hour
// back with reads, or writes, until the day has used the given number of
// requests.
func (h *harness) spendDownTo(used int, writes bool) {
	h.t.Helper()
	n := used - onlyAccount(h.t, h.mustRun(ExitOK, "plan").Budget, reconcile.System3RPMS).UsedToday
	db := openState(h.t, h.cfg.State, state.Options{Key: stateKeyOf(h.t, h.cfg)})
	defer db.Close()
	spent := make([]reconcile.RequestRecord, n)
	for i := range spent {
		spent[i] = reconcile.RequestRecord{System: reconcile.System3RPMS, At: h.now.Add(-time.Hour), Write: writes}
	}
	if err := db.Save(context.Background(), nil, nil, spent...); err != nil {
		h.t.Fatal(err)
	}
}

// TestBudgetPerToken: two hotels on 3RPMS, each with its own token (two
// sandboxes over HTTP). With hotel's token's day nearly spent, only
// hotel's arrival is deferred: annex, on its own token, is keyed, and the
// report shows each token's budget apart.
func TestBudgetPerToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	annex := h.addAnnex(nil)
	hotelAcct, annexAcct := h.cfg.Properties[0].accounts()[reconcile.System3RPMS], h.cfg.Properties[1].accounts()[reconcile.System3RPMS]
	h.mustRun(ExitOK, "backfill")
	h.stay("h1", "r101", 1, 3)
	if err := annex.AddStay(sandbox.Stay{ID: "a1", RoomID: "r101", Arrival: day(1), Departure: day(3), ReservationID: "res-a1", ReservationCode: "C-a1"}); err != nil {
		t.Fatal(err)
	}

	db := openState(t, h.cfg.State, state.Options{})
	spent := make([]reconcile.RequestRecord, 9990)
	for i := range spent {
		spent[i] = reconcile.RequestRecord{System: reconcile.System3RPMS, Account: hotelAcct, At: h.now.Add(-time.Hour)}
	}
	if err := db.Save(context.Background(), nil, nil, spent...); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rep := h.mustRun(ExitPartial, "run")
	deferred := map[string]bool{}
	for _, a := range rep.Deferred() {
		deferred[a.Stay.Property+"/"+a.Stay.ID] = true
	}
	if !deferred["hotel/h1"] || len(deferred) != 1 {
		t.Errorf("deferred %v, want only hotel/h1", deferred)
	}
	if s, _ := h.sb.Stay("h1"); s.KeyID != "" {
		t.Error("hotel's deferred stay was keyed")
	}
	if s, _ := annex.Stay("a1"); s.KeyID == "" {
		t.Error("annex's stay was not keyed: its token's budget is its own")
	}
	hb, ab := rep.Budget[hotelAcct], rep.Budget[annexAcct]
	if len(rep.Budget) != 2 || hb.UsedToday < 9991 || hb.Left > 9 || hb.Deferred != 2 || !slices.Equal(hb.Properties, []string{"hotel"}) {
		t.Errorf("hotel's budget %+v (of %v)", hb, rep.Budget)
	}
	if ab.Cap != 10000 || ab.UsedToday == 0 || ab.UsedToday > 20 || ab.Left != ab.Cap-ab.UsedToday || ab.Deferred != 0 || !slices.Equal(ab.Properties, []string{"annex"}) {
		t.Errorf("annex's budget %+v", ab)
	}
}

// addAnnex adds a second property, "annex", to the harness's config: its
// own 3RPMS sandbox (one room, r101) on its own token, served through
// wrap when it is not nil. It returns the annex's sandbox.
func (h *harness) addAnnex(wrap func(http.Handler) http.Handler) *sandbox.Server {
	h.t.Helper()
	annex := sandbox.New(sandbox.Options{Integrations: map[string]string{"annex-token": ourID}, Now: t0, MessageOnlyErrors: messageOnly3RPMS, RollbackDocuments: rollback3RPMS})
	annex.AddRoom("r101", "101")
	var handler http.Handler = annex
	if wrap != nil {
		handler = wrap(annex)
	}
	srv := httptest.NewServer(handler)
	h.t.Cleanup(srv.Close)
	yaml, err := os.ReadFile(h.cfgPath)
	if err != nil {
		h.t.Fatal(err)
	}
	yaml = fmt.Appendf(yaml, `  - name: annex
    timezone: Europe/Ljubljana
    threerpms:
      endpoint: %s/graphql
      token: annex-token
      rate_per_second: 1000
      burst: 1000
    default_method: pin
`, srv.URL)
	if err := os.WriteFile(h.cfgPath, yaml, 0o600); err != nil {
		h.t.Fatal(err)
	}
	if h.cfg, err = LoadConfig(h.cfgPath, h.getenv); err != nil {
		h.t.Fatal(err)
	}
	return annex
}

// TestSharedPartnerKeyOneLedger: two Guestway organisations, each with its
// own token, behind one partnership key (the Guestway document meters the
// key). A run of both records every Guestway request against one account,
// and the report shows one Guestway budget naming both properties.
func TestSharedPartnerKeyOneLedger(t *testing.T) {
	t.Parallel()
	const second = "gw_secondorganisationtoken01"
	w := newWorld(t, nil, map[string]string{"L1": "pin"}, withConfigEdit(func(cfg string) string {
		i := strings.Index(cfg, "  - name: sandbox-apartments")
		block := strings.Replace(cfg[i:], "name: sandbox-apartments", "name: sandbox-apartments-2", 1)
		block = strings.Replace(block, "token: ${KEYSYNC_GUESTWAY_TOKEN}", "token: "+second, 1)
		return cfg + block
	}))
	w.sb.guestway.AddToken(second, gwsandbox.ScopeReservationsRead, gwsandbox.ScopeAccessesRead)
	rep := w.run(ExitOK, "backfill")
	var accounts []reconcile.Account
	for acct, b := range rep.Budget {
		if b.System == reconcile.SystemGuestway {
			accounts = append(accounts, acct)
			if !slices.Contains(b.Properties, "sandbox-apartments") || !slices.Contains(b.Properties, "sandbox-apartments-2") {
				t.Errorf("the Guestway budget %s names %v, want both properties", acct, b.Properties)
			}
		}
	}
	if len(accounts) != 1 {
		t.Fatalf("Guestway budgets %v, want one for the shared partner key", accounts)
	}
	spent := ledgerSpent(t, w.statePath(), w.now.Add(-24*time.Hour))
	reads := rep.Requests[reconcile.SystemGuestway].Reads
	if reads < 2 || spent[accounts[0]] != reads {
		t.Errorf("ledger: %d Guestway requests on %s, the run sent %d (both properties' reads on one account); ledger %v", spent[accounts[0]], accounts[0], reads, spent)
	}
}

// TestPropertiesOnOwnTokensWriteAtOnce: hotel and annex, each on its own
// 3RPMS sandbox and token. The hotel's first write is held until the
// annex's sandbox has answered a write. Properties applied one after the
// other (hotel, first in the config, before annex) never let the annex
// write while the hotel's write is held, and the test fails after 10 s; on
// their own tokens they write at once.
func TestPropertiesOnOwnTokensWriteAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, "")
	annexWrote := make(chan struct{})
	var wrote sync.Once
	annex := h.addAnnex(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := readAll(r)
			next.ServeHTTP(w, r)
			if isGQLMutation(r, body) {
				wrote.Do(func() { close(annexWrote) })
			}
		})
	})
	h.stay("h1", "r101", 1, 3)
	if err := annex.AddStay(sandbox.Stay{ID: "a1", RoomID: "r101", Arrival: day(1), Departure: day(3)}); err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	h.before = func(r *http.Request, body []byte) {
		if !isGQLMutation(r, body) || held.Swap(true) {
			return
		}
		select {
		case <-annexWrote:
		case <-time.After(10 * time.Second):
			t.Error("the hotel's first write was held 10 s and the annex wrote nothing meanwhile: the properties did not write at once")
		}
	}
	h.mustRun(ExitOK, "backfill")
	if s, _ := h.sb.Stay("h1"); s.KeyID == "" {
		t.Error("hotel's stay was not keyed")
	}
	if s, _ := annex.Stay("a1"); s.KeyID == "" {
		t.Error("annex's stay was not keyed")
	}
}
