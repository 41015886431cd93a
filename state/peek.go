package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Peeked is what Peek reads of a state file that another process may be
// writing, migrating or creating: its Record of each property, with none
// of the checks, migrations or key that Open needs. A file that does not exist, is empty or has no schema yet
// knows no property.
type Peeked struct {
	path    string
	db      *sql.DB // nil: the file knows nothing
	lastRun time.Time
}

// Peek opens the state file at path for Record, read-only. Another
// process opening, recovering or writing the file can make SQLite answer
// "busy" at once, without waiting out the busy timeout (a WAL being
// recovered, say): Peek tries again until busy has passed, then fails
// with ErrBusy.
func Peek(ctx context.Context, path string, busy time.Duration) (*Peeked, error) {
	deadline := time.Now().Add(busy)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		p, err := peek(ctx, path, busy)
		if !isBusy(err) {
			return p, err
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("%w (%w)", ErrBusy, err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func peek(ctx context.Context, path string, busy time.Duration) (*Peeked, error) {
	p := &Peeked{path: path}
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		return p, nil
	}
	db, err := sql.Open("sqlite", dsn(path, true, busy))
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", path, err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'credentials', 'runs')`).Scan(&tables); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: read %s: %w", path, err)
	}
	if tables < 3 {
		db.Close()
		return p, nil // being created: no record yet
	}
	var at sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT max(started_at) FROM runs`).Scan(&at); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: read %s: the last run: %w", path, err)
	}
	if p.lastRun, err = parseTime(at); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: read %s: the last run: %w", path, err)
	}
	p.db = db
	return p, nil
}

// Path is the peeked file's path.
func (p *Peeked) Path() string { return p.path }

// Close closes the file.
func (p *Peeked) Close() error {
	if p.db == nil {
		return nil
	}
	return p.db.Close()
}

// Record is what a state file knows of a property and how recent it is.
type Record struct {
	// Known: the file took in a read of the property, completed a
	// backfill of it or records live credentials of it.
	Known bool
	// Marked: At is when the file last took in a read of it (SaveStays);
	// otherwise, for a file from before reads were marked, At is its
	// latest run.
	Marked bool
	At     time.Time
}

// Newer reports whether r is a newer record than other: a known one
// before none, a marked one (written by a run since reads are marked)
// before an unmarked one, then the later.
func (r Record) Newer(other Record) bool {
	switch {
	case r.Known != other.Known:
		return r.Known
	case r.Marked != other.Marked:
		return r.Marked
	}
	return r.At.After(other.At)
}

// LiveProperties counts the live credentials of every property the file
// records any of, as DB.LiveProperties does.
func (p *Peeked) LiveProperties(ctx context.Context) (map[string]int, error) {
	if p.db == nil {
		return nil, nil
	}
	out, err := liveProperties(ctx, p.db)
	if err != nil {
		return nil, fmt.Errorf("state: read %s's properties: %w", p.path, err)
	}
	return out, nil
}

// Backfilled reports whether the file records a completed backfill of
// property, as DB.Backfilled does.
func (p *Peeked) Backfilled(ctx context.Context, property string) (bool, error) {
	if p.db == nil {
		return false, nil
	}
	var n int
	if err := p.db.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = ?`, backfilledKey(property)).Scan(&n); err != nil {
		return false, fmt.Errorf("state: read whether %s backfilled %s: %w", p.path, property, err)
	}
	return n > 0, nil
}

// Record returns what the file knows of property.
func (p *Peeked) Record(ctx context.Context, property string) (Record, error) {
	if p.db == nil {
		return Record{}, nil
	}
	var read, backfilled sql.NullString
	if err := p.db.QueryRowContext(ctx, `SELECT (SELECT value FROM meta WHERE key = ?), (SELECT value FROM meta WHERE key = ?)`,
		reconciledKey(property), backfilledKey(property)).Scan(&read, &backfilled); err != nil {
		return Record{}, fmt.Errorf("state: read %s's record of %s: %w", p.path, property, err)
	}
	if read.Valid {
		t, err := parseTime(read)
		if err != nil {
			return Record{}, fmt.Errorf("state: read %s's record of %s: %w", p.path, property, err)
		}
		return Record{Known: true, Marked: true, At: t}, nil
	}
	var live int
	if err := p.db.QueryRowContext(ctx, `SELECT count(*) FROM credentials WHERE property = ? AND `+liveIn, liveArgs(property)...).Scan(&live); err != nil {
		return Record{}, fmt.Errorf("state: read %s's record of %s: %w", p.path, property, err)
	}
	if backfilled.Valid || live > 0 {
		return Record{Known: true, At: p.lastRun}, nil
	}
	return Record{}, nil
}
