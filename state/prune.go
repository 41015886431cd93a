package state

import (
	"context"
	"fmt"
	"time"

	"github.com/keysync/keysync/reconcile"
)

var _ reconcile.Pruner = (*DB)(nil)

// pruneBatch caps the rows one Prune deletes from each table. A run's own
// history is a few thousand rows, so a file pruned every run never reaches
// it; a file that went years without pruning drains over a few runs
// instead of holding the write lock through one long delete.
var pruneBatch = 50000

// Prune implements reconcile.Pruner. It deletes, in one transaction:
//
//   - credentials that are settled (deleted, released or abandoned) and
//     were last updated before now - keep, except one a live credential
//     was derived from and the newest one (so that ids are never reused);
//     audit entries still kept that refer to a pruned credential lose the
//     link (the foreign key's ON DELETE SET NULL);
//   - audit entries, ledger rows and runs (with their reports) from before
//     now - keep, except the last run of each mode.
//
// Each delete walks an index range (see migration 0004) and removes at
// most pruneBatch rows a table; what is left goes next run. keep must be
// at least reconcile.MinRetention, which also keeps the ledger's last 24
// hours for the daily budget. It returns the rows deleted, all tables
// together; after an error nothing was deleted.
func (d *DB) Prune(ctx context.Context, now time.Time, keep time.Duration) (int, error) {
	if keep < reconcile.MinRetention {
		return 0, fmt.Errorf("state: prune: keeping %s is less than the minimum %s", keep, reconcile.MinRetention)
	}
	if now.IsZero() {
		return 0, fmt.Errorf("state: prune: no time given")
	}
	cut := formatTime(now.Add(-keep))
	settled := []any{string(reconcile.StatusDeleted), string(reconcile.StatusReleased), string(reconcile.StatusAbandoned)}

	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, d.openError("prune", err)
	}
	defer tx.Rollback()
	total := 0
	// Audit first: fewer entries are left for the credentials' delete to
	// unlink.
	for _, q := range []struct {
		what, sql string
		args      []any
	}{
		{"audit", `DELETE FROM audit WHERE id IN (
			SELECT id FROM audit WHERE at < ? ORDER BY at LIMIT ?)`, []any{cut, pruneBatch}},
		{"credentials", `DELETE FROM credentials WHERE id IN (
			SELECT id FROM credentials WHERE status IN (?, ?, ?) AND updated_at < ?
			AND id < (SELECT max(id) FROM credentials)
			AND id NOT IN (SELECT derived_from FROM credentials WHERE ` + liveIn + ` AND derived_from IS NOT NULL)
			LIMIT ?)`, append(liveArgs(append(settled, cut)...), pruneBatch)},
		{"webhook events", `DELETE FROM events WHERE id IN (
			SELECT id FROM events WHERE done_at IS NOT NULL AND done_at < ? LIMIT ?)`, []any{cut, pruneBatch}},
		{"the request ledger", `DELETE FROM requests WHERE id IN (
			SELECT id FROM requests WHERE at < ? ORDER BY at LIMIT ?)`, []any{cut, pruneBatch}},
		{"runs", `DELETE FROM runs WHERE id IN (
			SELECT id FROM runs WHERE started_at < ?
			AND id NOT IN (SELECT max(id) FROM runs GROUP BY mode)
			ORDER BY started_at LIMIT ?)`, []any{cut, pruneBatch}},
	} {
		res, err := d.exec(ctx, tx, q.sql, q.args...)
		if err != nil {
			return 0, d.openError("prune "+q.what+" in", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, d.openError("prune "+q.what+" in", err)
		}
		total += int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, d.openError("prune", err)
	}
	return total, nil
}
