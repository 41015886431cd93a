package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
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
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.openError("mark events done in", err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET done_at = ? WHERE id = ?`, formatTime(at), id); err != nil {
			return d.openError("mark events done in", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return d.openError("mark events done in", err)
	}
	return nil
}
