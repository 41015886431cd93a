package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// SaveStays replaces the snapshot of a property's stays in one transaction,
// and records when (on the wall clock) this file last took in a read of
// the property (Peeked.Record). Rows are keyed by property (the argument,
// whatever the stays' refs say), source and stay id; a stay listed twice
// keeps its last version. The key a stay holds is recorded by id and type
// only, never its PIN.
func (d *DB) SaveStays(ctx context.Context, property string, stays []reconcile.Stay) error {
	// The snapshot is read first, outside the writer's turn: only this
	// property's run writes it, and it holds the run lock.
	old, err := d.stayRows(ctx, property)
	if err != nil {
		return d.openError("save stays of "+property+" to", err)
	}
	type change struct {
		key stayKey
		row *stayRow // nil: the stay is gone
	}
	var changes []change
	for _, s := range stays {
		k, r := stayKey{string(s.Ref.Source), s.Ref.ID}, rowOf(s)
		was, ok := old[k]
		delete(old, k)
		if !ok || was != r {
			changes = append(changes, change{k, &r})
		}
	}
	for k := range old {
		changes = append(changes, change{key: k})
	}
	// The writes go in the writer's turn, as Saves do: the properties of a
	// run save their snapshots while others save their credentials, and
	// SQLite would otherwise make them wait out its busy handler's sleeps.
	d.saves.Do(func() {
		err = func() error {
			tx, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				return d.openError("save stays of "+property+" to", err)
			}
			defer tx.Rollback()
			// Many rows a statement, as Save writes credentials.
			var gone, kept []change
			for _, c := range changes {
				if c.row == nil {
					gone = append(gone, c)
				} else {
					kept = append(kept, c)
				}
			}
			for chunk := range chunks(gone) {
				args := []any{property}
				for _, c := range chunk {
					args = append(args, c.key.source, c.key.id)
				}
				if _, err := d.exec(ctx, tx, stayDelete.sql(len(chunk)), args...); err != nil {
					return fmt.Errorf("state: save stays of %s: drop %d stays, the first %s: %w", property, len(chunk), chunk[0].key.id, err)
				}
			}
			for chunk := range chunks(kept) {
				args := make([]any, 0, len(chunk)*9)
				for _, c := range chunk {
					r := c.row
					args = append(args, property, c.key.source, c.key.id, r.roomID, r.roomName, r.arrival, r.departure, r.keyID, r.keyType)
				}
				if _, err := d.exec(ctx, tx, stayUpsert.sql(len(chunk)), args...); err != nil {
					return fmt.Errorf("state: save %d stays of %s, the first %s: %w", len(chunk), property, chunk[0].key.id, err)
				}
			}
			// Never earlier than it was: a record carried over from a file
			// whose clock ran ahead keeps that file's time.
			if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`, reconciledKey(property), formatTime(time.Now())); err != nil {
				return fmt.Errorf("state: record that %s was read: %w", property, err)
			}
			if err := tx.Commit(); err != nil {
				return d.openError("save stays of "+property+" to", err)
			}
			return nil
		}()
	})
	return err
}

// reconciledKey is the meta key recording when a property was last read.
func reconciledKey(property string) string { return "reconciled/" + property }

// stayDelete drops stays of a property; stayUpsert writes them.
var (
	stayDelete = newRowStatement(`DELETE FROM stays WHERE property = ? AND (source, stay_id) IN (VALUES `, 2, `)`)
	stayUpsert = newRowStatement(`INSERT INTO stays (property, source, stay_id, room_id, room_name, arrival, departure, key_id, key_type) VALUES `, 9,
		` ON CONFLICT (property, source, stay_id) DO UPDATE SET room_id = excluded.room_id,
	room_name = excluded.room_name, arrival = excluded.arrival, departure = excluded.departure,
	key_id = excluded.key_id, key_type = excluded.key_type`)
)

// stayKey names a stay in the stays table, within its property.
type stayKey struct{ source, id string }

// stayRow is a stay as the stays table holds it.
type stayRow struct {
	roomID, roomName                   string
	arrival, departure, keyID, keyType sql.NullString
}

func rowOf(s reconcile.Stay) stayRow {
	r := stayRow{roomID: s.RoomID, roomName: s.RoomName}
	if !s.Arrival.IsZero() {
		r.arrival = sql.NullString{String: s.Arrival.String(), Valid: true}
	}
	if !s.Departure.IsZero() {
		r.departure = sql.NullString{String: s.Departure.String(), Valid: true}
	}
	if s.Key != nil {
		r.keyID = sql.NullString{String: s.Key.ID, Valid: true}
		r.keyType = sql.NullString{String: s.Key.Type, Valid: true}
	}
	return r
}

// stayRows reads a property's snapshot as stored.
func (d *DB) stayRows(ctx context.Context, property string) (map[stayKey]stayRow, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT source, stay_id, room_id, room_name, arrival, departure, key_id, key_type
		FROM stays WHERE property = ?`, property)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[stayKey]stayRow{}
	for rows.Next() {
		var k stayKey
		var r stayRow
		if err := rows.Scan(&k.source, &k.id, &r.roomID, &r.roomName, &r.arrival, &r.departure, &r.keyID, &r.keyType); err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, rows.Err()
}

// Stays returns the recorded snapshot of a property's stays, ordered by
// arrival, source and id. A stay's Key, when set, has no PIN.
func (d *DB) Stays(ctx context.Context, property string) ([]reconcile.Stay, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT source, stay_id, room_id, room_name, arrival, departure, key_id, key_type
		FROM stays WHERE property = ? ORDER BY arrival, source, stay_id`, property)
	if err != nil {
		return nil, fmt.Errorf("state: load stays of %s: %w", property, err)
	}
	defer rows.Close()
	var out []reconcile.Stay
	for rows.Next() {
		var (
			s                                  reconcile.Stay
			source                             string
			arrival, departure, keyID, keyType sql.NullString
		)
		if err := rows.Scan(&source, &s.Ref.ID, &s.RoomID, &s.RoomName, &arrival, &departure, &keyID, &keyType); err != nil {
			return nil, fmt.Errorf("state: load stays of %s: %w", property, err)
		}
		s.Ref.Property, s.Ref.Source = property, reconcile.System(source)
		if s.Arrival, err = parseDate(arrival); err != nil {
			return nil, fmt.Errorf("state: load stay %s: arrival: %w", s.Ref, err)
		}
		if s.Departure, err = parseDate(departure); err != nil {
			return nil, fmt.Errorf("state: load stay %s: departure: %w", s.Ref, err)
		}
		if keyID.Valid {
			s.Key = &reconcile.RemoteKey{ID: keyID.String, Type: keyType.String}
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: load stays of %s: %w", property, err)
	}
	return out, nil
}
