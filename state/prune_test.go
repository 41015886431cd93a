package state

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

const day = 24 * time.Hour

// TestPruneKeepsWhatIsLive: Prune removes exactly the settled credentials
// and the old audit entries, ledger rows and runs, and keeps every live
// credential whatever its age, the ledger's last 24 hours, recent audit
// entries, the last run of each mode, an upstream a live key was derived
// from, and the newest credential.
func TestPruneKeepsWhatIsLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	now := t0
	keep := reconcile.MinRetention // 3 days: the shortest allowed
	old, recent := now.Add(-keep-time.Minute), now.Add(-keep+time.Minute)

	type credCase struct {
		stay   string
		status reconcile.Status
		at     time.Time
		kept   bool
	}
	cases := []credCase{
		{"pending-old", reconcile.StatusPending, old, true},
		{"active-old", reconcile.StatusActive, old, true},
		{"disabled-old", reconcile.StatusDisabled, old, true},
		{"deleted-old", reconcile.StatusDeleted, old, false},
		{"released-old", reconcile.StatusReleased, old, false},
		{"abandoned-old", reconcile.StatusAbandoned, old, false},
		{"deleted-recent", reconcile.StatusDeleted, recent, true},
		{"released-recent", reconcile.StatusReleased, recent, true},
		{"abandoned-recent", reconcile.StatusAbandoned, recent, true},
		{"upstream-old", reconcile.StatusDeleted, old, true}, // a live key was derived from it
		{"newest-old", reconcile.StatusDeleted, old, true},   // the highest id: never reused
	}
	creds := map[string]*reconcile.Credential{}
	var all []*reconcile.Credential
	for _, c := range cases {
		cr := newCred(c.stay)
		cr.Status, cr.UpdatedAt = c.status, c.at
		creds[c.stay] = cr
		all = append(all, cr)
	}
	if err := db.Save(ctx, all[:len(all)-1], nil); err != nil {
		t.Fatal(err)
	}
	derived := creds["active-old"]
	derived.DerivedFrom = creds["upstream-old"].ID
	if err := db.Save(ctx, []*reconcile.Credential{derived, creds["newest-old"]}, []reconcile.Audit{
		{At: old, Cred: creds["deleted-old"], Detail: "old"},
		{At: recent, Cred: creds["deleted-old"], Detail: "recent, about a pruned credential"},
		{At: recent, Cred: creds["active-old"], Detail: "recent"},
	},
		reconcile.RequestRecord{System: reconcile.System3RPMS, At: now.Add(-keep - time.Hour)},
		reconcile.RequestRecord{System: reconcile.System3RPMS, At: now.Add(-25 * time.Hour)},
		reconcile.RequestRecord{System: reconcile.System3RPMS, At: now.Add(-23 * time.Hour), Write: true},
		reconcile.RequestRecord{System: reconcile.SystemOpenApp, At: now.Add(-time.Minute)},
	); err != nil {
		t.Fatal(err)
	}
	runAt := func(mode reconcile.Mode, at time.Time) int64 {
		id, err := db.BeginRun(ctx, mode, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.FinishRun(ctx, id, &reconcile.Report{RunID: id, Mode: mode, Now: at}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	backfill := runAt(reconcile.ModeBackfill, old.Add(-30*day)) // the only backfill: kept
	runAt(reconcile.ModeRun, old.Add(-day))
	lastOldRun := runAt(reconcile.ModeRun, old)
	newRun := runAt(reconcile.ModeRun, recent)

	n, err := db.Prune(ctx, now, keep)
	if err != nil {
		t.Fatal(err)
	}
	// 3 credentials, 1 audit entry, 1 ledger row, 2 runs.
	if n != 7 {
		t.Errorf("Prune removed %d rows, want 7", n)
	}

	left, err := db.AllCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, c := range left {
		got = append(got, c.Stay.ID)
	}
	for _, c := range cases {
		if c.kept {
			want = append(want, c.stay)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("credentials left %v\nwant %v", got, want)
	}
	if live, _ := db.Credentials(ctx, "hotel"); len(live) != 3 {
		t.Errorf("%d live credentials left, want 3", len(live))
	}

	log, _ := db.AuditLog(ctx, 0)
	var details []string
	for _, a := range log {
		details = append(details, fmt.Sprintf("%s %d", a.Detail, a.CredentialID))
	}
	wantAudit := []string{"recent, about a pruned credential 0", fmt.Sprintf("recent %d", derived.ID)}
	if !slices.Equal(details, wantAudit) {
		t.Errorf("audit left %q\nwant %q", details, wantAudit)
	}

	spent, err := db.Spent(ctx, now.Add(-24*time.Hour))
	if err != nil || spent[reconcile.AnyAccount(reconcile.System3RPMS)] != 1 || spent[reconcile.AnyAccount(reconcile.SystemOpenApp)] != 1 {
		t.Errorf("ledger's last 24 h = %v, %v; want 1 3rpms and 1 openapp request", spent, err)
	}
	if all, _ := db.Spent(ctx, time.Time{}.Add(time.Nanosecond)); all[reconcile.AnyAccount(reconcile.System3RPMS)] != 2 {
		t.Errorf("ledger holds %d 3rpms requests, want 2 (the one at 25 h is younger than the retention)", all[reconcile.AnyAccount(reconcile.System3RPMS)])
	}

	runs, _ := db.Runs(ctx, 0)
	var runIDs []int64
	for _, r := range runs {
		runIDs = append(runIDs, r.ID)
	}
	if want := []int64{backfill, newRun}; !slices.Equal(runIDs, want) {
		t.Errorf("runs left %v, want %v (not %d)", runIDs, want, lastOldRun)
	}

	if n, err := db.Prune(ctx, now, keep); err != nil || n != 0 {
		t.Errorf("second Prune: %d, %v", n, err)
	}
}

// TestPruneRefusesShortRetention: a retention that would cut into the
// request ledger's 24 hours is an error, never a silent default.
func TestPruneRefusesShortRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	if err := db.Save(ctx, nil, nil, reconcile.RequestRecord{System: reconcile.System3RPMS, At: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []time.Duration{0, -day, time.Hour, reconcile.MinRetention - time.Nanosecond} {
		if n, err := db.Prune(ctx, t0, keep); err == nil || !strings.Contains(err.Error(), "minimum") {
			t.Errorf("Prune(keep %s) = %d, %v; want an error naming the minimum", keep, n, err)
		}
	}
	if spent, _ := db.Spent(ctx, t0.Add(-day)); spent[reconcile.AnyAccount(reconcile.System3RPMS)] != 1 {
		t.Errorf("ledger lost its row: %v", spent)
	}
}

// TestPruneIsOneTransaction: when one of Prune's deletes fails, the others
// are rolled back.
func TestPruneIsOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	c := newCred("gone")
	c.Status, c.UpdatedAt = reconcile.StatusDeleted, t0.Add(-100*day)
	if err := db.Save(ctx, []*reconcile.Credential{c, newCred("newest")}, []reconcile.Audit{{At: t0.Add(-100 * day), Cred: c}},
		reconcile.RequestRecord{System: reconcile.System3RPMS, At: t0.Add(-100 * day)}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []reconcile.Mode{reconcile.ModeRun, reconcile.ModeRun} {
		if _, err := db.BeginRun(ctx, m, t0.Add(-100*day)); err != nil {
			t.Fatal(err)
		}
	}
	// The runs are deleted last; make that fail.
	if _, err := db.db.ExecContext(ctx, `CREATE TRIGGER no_run_delete BEFORE DELETE ON runs
		BEGIN SELECT RAISE(ABORT, 'runs are not to be deleted'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Prune(ctx, t0, 90*day); err == nil || !strings.Contains(err.Error(), "runs") {
		t.Fatalf("Prune with a failing delete: %v, want an error naming the runs", err)
	}
	if all, _ := db.AllCredentials(ctx); len(all) != 2 {
		t.Errorf("%d credentials after a failed Prune, want 2", len(all))
	}
	if log, _ := db.AuditLog(ctx, 0); len(log) != 1 {
		t.Errorf("%d audit entries after a failed Prune, want 1", len(log))
	}
	if spent, _ := db.Spent(ctx, time.Time{}.Add(time.Nanosecond)); spent[reconcile.AnyAccount(reconcile.System3RPMS)] != 1 {
		t.Errorf("ledger after a failed Prune: %v", spent)
	}
}

// TestPruneBatches: a backlog larger than pruneBatch drains over several
// Prunes, each deleting at most pruneBatch rows a table.
func TestPruneBatches(t *testing.T) {
	ctx := context.Background()
	db, _ := openNew(t)
	defer func(n int) { pruneBatch = n }(pruneBatch)
	pruneBatch = 2
	var reqs []reconcile.RequestRecord
	for i := range 5 {
		reqs = append(reqs, reconcile.RequestRecord{System: reconcile.System3RPMS, At: t0.Add(-100*day + time.Duration(i)*time.Second)})
	}
	if err := db.Save(ctx, nil, nil, reqs...); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 4 {
		n, err := db.Prune(ctx, t0, 90*day)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if want := []int{2, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("rows pruned per call %v, want %v", got, want)
	}
}

// TestPruneUsesIndexes: every statement Prune runs finds its rows through
// an index; none reads a whole table.
func TestPruneUsesIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	cut, n := formatTime(t0), pruneBatch
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT id FROM audit WHERE at < ? ORDER BY at LIMIT ?`, []any{cut, n}},
		{`SELECT id FROM credentials WHERE status IN ('deleted', 'released', 'abandoned') AND updated_at < ?
			AND id < (SELECT max(id) FROM credentials)
			AND id NOT IN (SELECT derived_from FROM credentials WHERE status IN ('pending', 'active', 'disabled') AND derived_from IS NOT NULL)
			LIMIT ?`, []any{cut, n}},
		{`SELECT id FROM requests WHERE at < ? ORDER BY at LIMIT ?`, []any{cut, n}},
		{`SELECT id FROM runs WHERE started_at < ? AND id NOT IN (SELECT max(id) FROM runs GROUP BY mode) ORDER BY started_at LIMIT ?`, []any{cut, n}},
		{`DELETE FROM credentials WHERE id = 1`, nil}, // and the foreign key's look-up in audit
	} {
		rows, err := db.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "INDEX") {
				t.Errorf("%s\nreads a whole table: %q", q.sql, plan)
			}
		}
	}
}

// history is a busy property's history, written through the store's
// normal API as nightly runs write it: each night a run with a report,
// perNight new active credentials (intent and outcome audited, one request
// each) and as many settled (deleted, audited twice, one request each)
// from three nights before, then Prune when keep is set.
type history struct {
	db       *DB
	perNight int
	keep     time.Duration
	start    time.Time
	night    int
	live     [][]*reconcile.Credential // by night, oldest first
}

// nights writes the next n nights and returns the time of the last.
func (h *history) nights(tb testing.TB, n int) time.Time {
	tb.Helper()
	ctx := context.Background()
	var now time.Time
	for range n {
		night := h.night
		h.night++
		now = h.start.Add(time.Duration(night) * day)
		run, err := h.db.BeginRun(ctx, reconcile.ModeRun, now)
		if err != nil {
			tb.Fatal(err)
		}
		plan := &reconcile.PlanReport{Property: "hotel", Now: now}
		var creds []*reconcile.Credential
		var audit []reconcile.Audit
		var reqs []reconcile.RequestRecord
		note := func(c *reconcile.Credential, op reconcile.Op) {
			audit = append(audit,
				reconcile.Audit{RunID: run, At: now, System: c.System, Op: op, Stay: c.Stay, Cred: c, Phase: reconcile.PhaseIntent},
				reconcile.Audit{RunID: run, At: now, System: c.System, Op: op, Stay: c.Stay, Cred: c, RemoteID: c.RemoteID, Phase: reconcile.PhaseDone})
			reqs = append(reqs, reconcile.RequestRecord{System: c.System, At: now, Write: true})
			plan.Actions = append(plan.Actions, reconcile.ActionReport{Action: &reconcile.Action{System: c.System, Op: op, Stay: c.Stay, RoomID: c.RoomID,
				Arrival: c.Arrival, Departure: c.Departure, Kind: c.Kind, Reason: "stay has no key", Step: 1}, Result: reconcile.ResultDone})
		}
		var fresh []*reconcile.Credential
		for i := range h.perNight {
			c := newCred(fmt.Sprintf("n%d-%d", night, i))
			c.Status, c.UpdatedAt, c.RemoteID = reconcile.StatusActive, now, fmt.Sprintf("key-%d-%d", night, i)
			c.Arrival = reconcile.DateOf(now.Add(day))
			c.Departure = reconcile.DateOf(now.Add(3 * day))
			c.PIN = reconcile.Secret(fmt.Sprintf("%06d", (night*h.perNight+i)%1000000))
			note(c, reconcile.OpCreate)
			fresh = append(fresh, c)
		}
		creds = append(creds, fresh...)
		if len(h.live) >= 3 {
			for _, c := range h.live[0] {
				c.Status, c.UpdatedAt, c.PIN = reconcile.StatusDeleted, now, ""
				note(c, reconcile.OpDelete)
				creds = append(creds, c)
			}
			h.live = h.live[1:]
		}
		h.live = append(h.live, fresh)
		if err := h.db.Save(ctx, creds, audit, reqs...); err != nil {
			tb.Fatal(err)
		}
		if err := h.db.FinishRun(ctx, run, &reconcile.Report{RunID: run, Mode: reconcile.ModeRun, Now: now, Plans: []*reconcile.PlanReport{plan}}); err != nil {
			tb.Fatal(err)
		}
		if h.keep > 0 {
			if _, err := h.db.Prune(ctx, now, h.keep); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return now
}

// fileStats is what a state file holds: its pages (free ones included, as
// on disk) and its rows per table.
type fileStats struct {
	pages int
	rows  map[string]int
}

func statsOf(tb testing.TB, db *DB) fileStats {
	tb.Helper()
	ctx := context.Background()
	s := fileStats{rows: map[string]int{}}
	if _, err := db.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	if err := db.db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&s.pages); err != nil {
		tb.Fatal(err)
	}
	for _, table := range []string{"credentials", "audit", "requests", "runs"} {
		var n int
		if err := db.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		s.rows[table] = n
	}
	return s
}

// TestStateLevelsOffOverAYear: with a run every night pruning at a 90-day
// retention, the file grows for the first 90 days and then holds, after a
// whole year, what it held after half of one: the same rows (90 days'
// worth plus the live credentials) and about the same pages, since SQLite
// reuses the pages freed by deletes. Measured, not timed; history is
// written through the store's normal API, a few credentials a night to
// keep the test quick under the race detector (the shapes, not the volume,
// decide whether it levels off; BenchmarkOpenAfterYear writes 150 a night).
func TestStateLevelsOffOverAYear(t *testing.T) {
	t.Parallel()
	db, _ := openNew(t)
	const perNight, keepDays = 4, 90
	h := &history{db: db, perNight: perNight, keep: keepDays * day, start: time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)}

	h.nights(t, 60)
	growing := statsOf(t, db)
	h.nights(t, 120)
	half := statsOf(t, db)
	h.nights(t, 185)
	year := statsOf(t, db)
	t.Logf("pages and rows after 60 nights: %d %v; 180: %d %v; 365: %d %v",
		growing.pages, growing.rows, half.pages, half.rows, year.pages, year.rows)

	// What retention allows: keepDays+1 nights of history (the night at the
	// cut-off included), plus the three nights of live credentials.
	nights := keepDays + 1
	bounds := map[string]int{
		"credentials": (nights + 3) * perNight,
		"audit":       nights * 4 * perNight,
		"requests":    nights * 2 * perNight,
		"runs":        nights,
	}
	for table, bound := range bounds {
		if growing.rows[table] >= half.rows[table] {
			t.Errorf("%s: %d rows after 60 nights, %d after 180; want growth until the retention is reached", table, growing.rows[table], half.rows[table])
		}
		if n := year.rows[table]; n > bound || n != half.rows[table] {
			t.Errorf("%s: %d rows after 180 nights, %d after 365; want the same, at most %d", table, half.rows[table], n, bound)
		}
	}
	if year.pages > half.pages+half.pages/20 {
		t.Errorf("the file grew from %d to %d pages between night 180 and 365; want it level (within 5%%)", half.pages, year.pages)
	}
}

// historyFile returns the path of a closed state file holding nights of a
// busy property's history (perNight mutations a night), pruned nightly
// when keep is set.
func historyFile(b *testing.B, nights, perNight int, keep time.Duration) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "keysync.db")
	db, err := Open(context.Background(), path, Options{Create: true, Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	h := &history{db: db, perNight: perNight, keep: keep, start: time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)}
	h.nights(b, nights)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpenAfterYear measures what a run that changes nothing costs
// the state file: Open (with its integrity check), reading the live
// credentials, the deferred stays and the ledger's last 24 hours, Prune,
// and Close. "fresh" is a file three nights old, holding the same live
// credentials as the others (150 new a night, each live three nights);
// "year" has a year of history pruned nightly at 90 days; "year-unpruned"
// a year never pruned (and not pruned here). Compare ns/op:
//
//	go test -run '^$' -bench OpenAfterYear -benchtime 20x ./state/
func BenchmarkOpenAfterYear(b *testing.B) {
	const perNight, keep = 150, 90 * day
	for _, bc := range []struct {
		name   string
		nights int
		keep   time.Duration
	}{
		{"fresh", 3, keep},
		{"year", 365, keep},
		{"year-unpruned", 365, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := historyFile(b, bc.nights, perNight, bc.keep)
			now := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC).Add(time.Duration(bc.nights-1) * day)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				db, err := Open(ctx, path, Options{Key: testKey})
				if err != nil {
					b.Fatal(err)
				}
				if live, err := db.Credentials(ctx, "hotel"); err != nil || len(live) != 3*perNight {
					b.Fatalf("%d live credentials, %v", len(live), err)
				}
				if _, err := db.DeferredStays(ctx, "hotel"); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Spent(ctx, now.Add(-day)); err != nil {
					b.Fatal(err)
				}
				if bc.keep > 0 {
					if _, err := db.Prune(ctx, now, bc.keep); err != nil {
						b.Fatal(err)
					}
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
