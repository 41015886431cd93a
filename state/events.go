package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// Event is a webhook event waiting in the durable queue.
type Event struct {
	ID       int64
	Property string
	// Event is the event's name (room_stay.updated, …), ObjectID the id
	// it is about.
	Event      string
	ObjectID   string
	ReceivedAt time.Time
}

// Enqueue records an event before serve acknowledges it; it returns its id.
func (d *DB) Enqueue(ctx context.Context, e Event) (int64, error) {
	res, err := d.db.ExecContext(ctx, `INSERT INTO events (property, event, object_id, received_at) VALUES (?, ?, ?, ?)`,
		e.Property, e.Event, e.ObjectID, formatTime(e.ReceivedAt))
	if err != nil {
		return 0, d.openError("queue an event in", err)
	}
	return res.LastInsertId()
}

// PendingEvents returns the events not yet covered by a run, oldest first.
func (d *DB) PendingEvents(ctx context.Context) ([]Event, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, property, event, object_id, received_at FROM events WHERE done_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("state: read the event queue: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at sql.NullString
		if err := rows.Scan(&e.ID, &e.Property, &e.Event, &e.ObjectID, &at); err != nil {
			return nil, fmt.Errorf("state: read the event queue: %w", err)
		}
		if e.ReceivedAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("state: read the event queue: event %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventsDone marks events as covered by a run, at the given time.
func (d *DB) EventsDone(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	// One statement for all of them: the ids go as one JSON array.
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("state: mark events done: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, `UPDATE events SET done_at = ? WHERE id IN (SELECT value FROM json_each(?))`, formatTime(at), string(list)); err != nil {
		return d.openError("mark events done in", err)
	}
	return nil
}

// RetireKey records that 3RPMS reported one of our keys deleted (a
// room_access_key.deleted event): the live 3RPMS credential with that
// remote id, if any, is retired and unassigned, so the next run gives its
// stay a new key instead of trying to assign the deleted one. It returns
// the credential's stay id, and found false when the key is not ours.
func (d *DB) RetireKey(ctx context.Context, property, remoteID string, at time.Time) (stayID string, found bool, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return "", false, d.openError("retire a key in", err)
	}
	defer tx.Rollback()
	var id int64
	var source, status string
	var assigned bool
	err = tx.QueryRowContext(ctx, `SELECT id, source, stay_id, status, assigned FROM credentials
		WHERE property = ? AND system = ? AND remote_id = ? AND status IN (?, ?) ORDER BY id DESC LIMIT 1`,
		property, string(reconcile.System3RPMS), remoteID, string(reconcile.StatusActive), string(reconcile.StatusRetired)).Scan(&id, &source, &stayID, &status, &assigned)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, d.openError("retire a key in", err)
	}
	if status == string(reconcile.StatusRetired) && !assigned {
		// Retired already (the same event again: serve retries its events
		// every second while another run holds the lock): nothing to write.
		return stayID, true, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE credentials SET status = ?, assigned = 0, updated_at = ? WHERE id = ?`,
		string(reconcile.StatusRetired), formatTime(at), id); err != nil {
		return "", false, d.openError("retire a key in", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit (at, system, op, property, source, stay_id, credential_id, remote_id, phase, detail)
		VALUES (?, ?, 'retire', ?, ?, ?, ?, ?, ?, ?)`, formatTime(at), string(reconcile.System3RPMS), property, source, stayID, id, remoteID,
		string(reconcile.PhaseDone), "3RPMS reported the key deleted (room_access_key.deleted)"); err != nil {
		return "", false, d.openError("retire a key in", err)
	}
	if err := tx.Commit(); err != nil {
		return "", false, d.openError("retire a key in", err)
	}
	return stayID, true, nil
}
