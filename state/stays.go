package state

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keysync/keysync/reconcile"
)

// SaveStays replaces the snapshot of a property's stays in one transaction.
// Rows are keyed by property (the argument, whatever the stays' refs say),
// source and stay id; a stay listed twice keeps its last version. The key a
// stay holds is recorded by id and type only, never its PIN.
func (d *DB) SaveStays(ctx context.Context, property string, stays []reconcile.Stay) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.openError("save stays of "+property+" to", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM stays WHERE property = ?`, property); err != nil {
		return d.openError("save stays of "+property+" to", err)
	}
	for _, s := range stays {
		var keyID, keyType any
		if s.Key != nil {
			keyID, keyType = s.Key.ID, s.Key.Type
		}
		if _, err := d.exec(ctx, tx, `INSERT INTO stays (property, source, stay_id, room_id, room_name,
			arrival, departure, key_id, key_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (property, source, stay_id) DO UPDATE SET room_id = excluded.room_id,
			room_name = excluded.room_name, arrival = excluded.arrival, departure = excluded.departure,
			key_id = excluded.key_id, key_type = excluded.key_type`,
			property, string(s.Ref.Source), s.Ref.ID, s.RoomID, s.RoomName,
			formatDate(s.Arrival), formatDate(s.Departure), keyID, keyType); err != nil {
			return fmt.Errorf("state: save stay %s: %w", s.Ref, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return d.openError("save stays of "+property+" to", err)
	}
	return nil
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
