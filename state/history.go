package state

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// HistoryFilter selects audit entries for History. Zero fields select all.
type HistoryFilter struct {
	// Property and Stay select one stay's entries (Stay needs Property).
	Property string
	Stay     string
	// Room selects the entries about credentials issued for a room, by its
	// id or by the name the last read gave it.
	Room  string
	Since time.Time
}

// HistoryRow is one action's outcome as the audit trail recorded it.
type HistoryRow struct {
	RunID    int64
	At       time.Time
	System   reconcile.System
	Op       reconcile.Op
	Stay     reconcile.StayRef
	RoomID   string
	RemoteID string
	Phase    reconcile.Phase
	Detail   string
}

// History returns the outcomes the audit trail recorded (not the intents),
// oldest first, that match f.
func (d *DB) History(ctx context.Context, f HistoryFilter) ([]HistoryRow, error) {
	q := `SELECT a.run_id, a.at, a.system, a.op, a.property, a.source, a.stay_id, coalesce(c.room_id, ''), a.remote_id, a.phase, a.detail
		FROM audit a LEFT JOIN credentials c ON c.id = a.credential_id
		LEFT JOIN stays st ON st.property = a.property AND st.source = a.source AND st.stay_id = a.stay_id
		WHERE a.phase != ?`
	args := []any{string(reconcile.PhaseIntent)}
	if f.Property != "" {
		q += ` AND a.property = ?`
		args = append(args, f.Property)
	}
	if f.Stay != "" {
		q += ` AND a.stay_id = ?`
		args = append(args, f.Stay)
	}
	if f.Room != "" {
		q += ` AND (c.room_id = ? OR (st.room_id = c.room_id AND st.room_name = ?))`
		args = append(args, f.Room, f.Room)
	}
	if !f.Since.IsZero() {
		q += ` AND a.at >= ?`
		args = append(args, formatTime(f.Since))
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("state: read the audit trail: %w", err)
	}
	defer rows.Close()
	var out []HistoryRow
	for rows.Next() {
		var (
			h                         HistoryRow
			at                        sql.NullString
			system, op, source, phase string
		)
		if err := rows.Scan(&h.RunID, &at, &system, &op, &h.Stay.Property, &source, &h.Stay.ID, &h.RoomID, &h.RemoteID, &phase, &h.Detail); err != nil {
			return nil, fmt.Errorf("state: read the audit trail: %w", err)
		}
		h.System, h.Op, h.Stay.Source, h.Phase = reconcile.System(system), reconcile.Op(op), reconcile.System(source), reconcile.Phase(phase)
		if h.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("state: read the audit trail: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// OpenWork is what is left open in the state: credentials whose create has an
// unknown outcome, keys retired and waiting, and stays whose work was
// deferred, per property.
type OpenWork struct {
	Pending  map[string]int `json:"pending_creates"`
	Retired  map[string]int `json:"retired_keys"`
	Deferred map[string]int `json:"deferred_stays"`
}

// OpenWork counts what is left open in the state, per property.
func (d *DB) OpenWork(ctx context.Context) (OpenWork, error) {
	out := OpenWork{Pending: map[string]int{}, Retired: map[string]int{}, Deferred: map[string]int{}}
	for _, q := range []struct {
		sql  string
		args []any
		into map[string]int
	}{
		{`SELECT property, count(*) FROM credentials WHERE status = ? GROUP BY property`, []any{string(reconcile.StatusPending)}, out.Pending},
		{`SELECT property, count(*) FROM credentials WHERE status = ? GROUP BY property`, []any{string(reconcile.StatusRetired)}, out.Retired},
		{`SELECT property, count(*) FROM deferred GROUP BY property`, nil, out.Deferred},
	} {
		rows, err := d.db.QueryContext(ctx, q.sql, q.args...)
		if err != nil {
			return out, fmt.Errorf("state: count open work: %w", err)
		}
		for rows.Next() {
			var p string
			var n int
			if err := rows.Scan(&p, &n); err != nil {
				rows.Close()
				return out, fmt.Errorf("state: count open work: %w", err)
			}
			q.into[p] = n
		}
		rows.Close()
	}
	return out, nil
}

// Size is the state file's size on disk, its write-ahead log included.
func (d *DB) Size() int64 {
	var n int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(d.path + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n
}
