// Package state is keysync's memory: an SQLite file (modernc.org/sqlite, no
// cgo) recording the credentials keysync issued, the stays it last read, an
// audit trail of every intent and outcome, and the runs with their reports.
//
// DB implements reconcile.Store. Open applies the embedded migrations in
// migrations/ (to a file that has some, each in its own transaction after
// a backup; to a new one, all in one), and sets the connection pragmas
// in the DSN so that every pooled connection gets them: a busy timeout (5 s
// unless Options.BusyTimeout says otherwise),
// WAL journaling, foreign keys, and immediate (write-locking) transactions.
// No table holds a secret in plain text: a credential's PIN, key-box code or
// invite token is sealed (AES-256-GCM, package seal) under Options.Key,
// which is never stored in the file.
//
// Lock serialises runs on one state file with an advisory lock file beside
// it.
package state

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/internal/turn"
	"github.com/keysync/keysync/reconcile"
)

// Conditions callers branch on; Open wraps them with the path and a remedy.
var (
	// ErrNoState means the state file does not exist and Options.Create was
	// not set.
	ErrNoState = errors.New("state file is missing")
	// ErrCorrupt means the state file is not an SQLite database or fails
	// SQLite's integrity check.
	ErrCorrupt = errors.New("state file is corrupt or not an SQLite database")
	// ErrBusy means another process held the state file (a shard writing
	// or creating it) for longer than the busy timeout: a later read may
	// well succeed.
	ErrBusy = errors.New("state file is busy")
)

// isBusy reports whether err is SQLite's "busy" or "locked", in any of their
// extended forms (recovery, snapshot).
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// Options says how Open treats the state file.
type Options struct {
	// Create makes Open create a missing state file (mode 0600) instead of
	// failing with ErrNoState. Only backfill should set it.
	Create bool
	// ReadOnly opens the file for reading only, for reports and checks. It
	// never creates or migrates the file; every write method fails.
	ReadOnly bool
	// BusyTimeout is how long a statement waits for another writer's lock
	// on the file before it fails; zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Key seals the secrets Save writes and opens the ones Credentials
	// reads. A read-write open of a file that holds sealed secrets needs
	// it (an error wrapping seal.ErrNoKey otherwise), and a key that did not
	// seal them is refused (seal.ErrWrongKey); a read-only open without it
	// reads credentials with their secrets left empty.
	Key *seal.Key
	// CountAs renames the ledger's accounts as DB.CountAs does, from the
	// open on.
	CountAs map[reconcile.Account]reconcile.Account
}

// DefaultBusyTimeout is the busy timeout of Options whose BusyTimeout is
// zero.
const DefaultBusyTimeout = 5 * time.Second

// DB is a keysync state file. It implements reconcile.Store and is safe for
// concurrent use.
type DB struct {
	db   *sql.DB
	path string
	key  *seal.Key

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // by query text; see stmt
	// saves serialises Save's transactions, and commits those that queue
	// meanwhile together: SQLite takes one writer at a time anyway, and
	// in-process writers queued here never meet its busy timeout
	// (properties apply at once, each with several systems).
	saves turn.Queue[*pendingSave]
	// renamed maps the accounts ledger rows were recorded under to the
	// ones they count against now (CountAs).
	renamed atomic.Pointer[map[reconcile.Account]reconcile.Account]
	// oldReports: opened read-only before migration 0011 (see
	// readCompatible), the file keeps every report in report_json.
	oldReports bool
}

var _ reconcile.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Open opens the state file at path, creating it only if opts.Create is set,
// checks its integrity (see checkIntegrity: cheaply on every open, the whole
// file now and then) and brings its schema up to date.
// A missing file gives an error wrapping ErrNoState, a damaged one an error
// wrapping ErrCorrupt; other errors name the path and what to check.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !opts.Create || opts.ReadOnly {
			return nil, fmt.Errorf("state: %s: %w; run `keysync backfill` to create it and adopt the keys keysync already issued", path, ErrNoState)
		}
		if err := createFile(path); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("state: open %s: %w; check that its directory exists and is readable by the user keysync runs as", path, err)
	case info.IsDir():
		return nil, fmt.Errorf("state: open %s: is a directory, not a state file", path)
	case info.Size() == 0 && !opts.Create:
		// An empty file is not a record that nothing was issued: treat it
		// like a missing one.
		return nil, fmt.Errorf("state: %s is empty: %w; run `keysync backfill` to set it up and adopt the keys keysync already issued", path, ErrNoState)
	}

	// A write-ahead log left beside the file means the last writer did not
	// close it (killed, or still running): check the whole file.
	unclean := false
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		unclean = true
	}
	d := &DB{path: path, key: opts.Key}
	d.CountAs(opts.CountAs)
	if err := d.checkHeader(unclean); err != nil {
		return nil, err
	}
	sdb, err := sql.Open("sqlite", dsn(path, opts.ReadOnly, cmp.Or(opts.BusyTimeout, DefaultBusyTimeout)))
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	d.db = sdb
	if err := d.init(ctx, opts.ReadOnly, opts.Create, unclean); err != nil {
		sdb.Close()
		return nil, err
	}
	return d, nil
}

// createFile creates an empty state file with mode 0600, which SQLite takes
// as an empty database. SQLite itself would create it 0644; its -wal and
// -shm files copy the database file's mode.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // created meanwhile by someone else; open it as it is
	}
	if err != nil {
		return fmt.Errorf("state: create %s: %w; check that the directory exists, is writable by the user keysync runs as, and that the disk is not full", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state: create %s: %w", path, err)
	}
	return nil
}

// dsn builds a modernc.org/sqlite URI with busy as the busy timeout. The
// path is escaped so that '?', '#' and '%' in it reach SQLite as part of the
// name.
func dsn(path string, readOnly bool, busy time.Duration) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p}
	// secure_delete overwrites deleted content, so a value removed from the
	// file is not left behind in a free page.
	q := []string{fmt.Sprintf("_pragma=busy_timeout(%d)", busy.Milliseconds()), "_pragma=foreign_keys(1)", "_pragma=secure_delete(1)"}
	if readOnly {
		q = append(q, "mode=ro")
	} else {
		q = append(q, "_pragma=journal_mode(WAL)", "_txlock=immediate")
	}
	return u.String() + "?" + strings.Join(q, "&")
}

// init connects, checks integrity, migrates and checks the state key.
func (d *DB) init(ctx context.Context, readOnly, create, unclean bool) error {
	if err := d.db.PingContext(ctx); err != nil {
		return d.openError("open", err)
	}
	checked, err := d.checkIntegrity(ctx, unclean)
	if err != nil {
		return err
	}
	if !create {
		// An SQLite file with none of keysync's tables (made by hand, or
		// another program's) is no record of what was issued: as a missing
		// file, only a backfill may set it up.
		var n int
		if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
			return d.openError("open", err)
		}
		if n == 0 {
			return fmt.Errorf("state: %s holds none of keysync's tables: %w; if it is keysync's state file, restore it from a backup, else move it aside and run `keysync backfill` to create one that adopts the keys keysync already issued", d.path, ErrNoState)
		}
	}
	if readOnly {
		if err := d.checkSchema(ctx); err != nil {
			return err
		}
		return d.checkKey(ctx, true)
	}
	if err := d.migrate(ctx); err != nil {
		return err
	}
	if err := d.checkKey(ctx, false); err != nil {
		return err
	}
	// A write that changes nothing: a file or directory keysync cannot write
	// fails here rather than at the first Save of a run. (BEGIN IMMEDIATE
	// alone succeeds on a read-only file.)
	if _, err := d.db.ExecContext(ctx, "UPDATE meta SET value = value WHERE 0"); err != nil {
		return d.openError("open", err)
	}
	if checked {
		if _, err := d.db.ExecContext(ctx, "INSERT OR REPLACE INTO meta (key, value) VALUES ('checked_at', ?)", formatTime(time.Now())); err != nil {
			return d.openError("open", err)
		}
	}
	return nil
}

// openError explains an error met while opening or writing the file; op
// says what keysync was doing.
func (d *DB) openError(op string, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("state: %s %s: %w", op, d.path, err)
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return d.corrupt(err)
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		base := filepath.Base(d.path)
		return fmt.Errorf("state: %s %s: %w; check that the file and its directory are writable by the user keysync runs as (SQLite keeps %s-wal and %s-shm beside it)", op, d.path, err, base, base)
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("state: %s %s: %w; the disk holding it is full: free space and run again", op, d.path, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("state: %s %s: %w; another program is writing to it (a backup tool, an sqlite3 shell?): stop it and run again", op, d.path, err)
	case sqlite3.SQLITE_IOERR:
		return fmt.Errorf("state: %s %s: %w; check the disk holding it (free space, errors in the kernel log)", op, d.path, err)
	}
	return fmt.Errorf("state: %s %s: %w", op, d.path, err)
}

func (d *DB) corrupt(err error) error {
	return fmt.Errorf("state: %s: %w (%w); restore it from a backup, or move it aside and run `keysync backfill` to start a new one that adopts the keys already issued", d.path, ErrCorrupt, err)
}

// quickCheck runs PRAGMA quick_check, which reads every page. (Its
// argument, quick_check(N), only caps the errors reported: a sound file is
// read whole either way.)
func (d *DB) quickCheck(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return d.openError("check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return d.openError("check", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return d.openError("check", err)
	}
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], "…")
		}
		return d.corrupt(errors.New("quick_check: " + strings.Join(problems, "; ")))
	}
	return nil
}

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. A file is
// named NNNN_description.sql; the number is its version.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrate applies the migrations the file has not had, each with its
// schema_migrations row: a new file all in one transaction, a file that
// has some each in its own, after a backup.
func (d *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT NOT NULL
)`); err != nil {
		return d.openError("migrate", err)
	}
	applied, err := d.appliedVersions(ctx)
	if err != nil {
		return d.openError("migrate", err)
	}
	if err := d.checkNotNewer(applied, ms); err != nil {
		return err
	}
	var pending []migration
	for _, m := range ms {
		if !applied[m.version] {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	// A new file has nothing to keep: it takes every migration in one
	// transaction (all or none, as each alone would be), one commit
	// instead of one a migration.
	if len(applied) == 0 {
		if name, err := d.apply(ctx, pending...); err != nil {
			return d.openError("migrate ("+name+")", err)
		}
		return nil
	}
	to := fmt.Sprintf("%s.before-%s.bak", d.path, strings.TrimSuffix(pending[0].name, ".sql"))
	if err := d.Backup(ctx, to); err != nil {
		return fmt.Errorf("state: back up %s before migrating it to %s: %w", d.path, pending[0].name, err)
	}
	for _, m := range pending {
		if _, err := d.apply(ctx, m); err != nil {
			return d.openError("migrate ("+m.name+")", err)
		}
	}
	return nil
}

// Backup writes a consistent copy of the state file to path with VACUUM
// INTO, which reads one snapshot: it is safe while a run holds the lock and
// writes. path must not exist yet; the copy is created 0600, like the state
// file, because it holds the same records.
func (d *DB) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("state: back up to %s: the file exists; choose another name or remove it first", path)
	}
	if err := createFile(path); err != nil {
		return err
	}
	// VACUUM INTO wants an empty or missing target; an empty file is an
	// empty database to SQLite, and keeps the mode createFile set.
	if _, err := d.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		os.Remove(path)
		return fmt.Errorf("state: back up %s to %s: %w", d.path, path, err)
	}
	return nil
}

// appliedVersions returns the versions recorded in schema_migrations.
func (d *DB) appliedVersions(ctx context.Context) (map[int]bool, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[v] = true
	}
	return out, rows.Err()
}

// apply runs migrations in one transaction, each unless it is recorded
// already, and names the one it failed at (or, for the commit, all of
// them). The check is made in the transaction, so two processes migrating
// at once apply each once.
func (d *DB) apply(ctx context.Context, ms ...migration) (string, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return ms[0].name, err
	}
	defer tx.Rollback()
	for _, m := range ms {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
			return m.name, err
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return m.name, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
			m.version, formatTime(time.Now())); err != nil {
			return m.name, err
		}
	}
	name := ms[0].name
	if len(ms) > 1 {
		name += " to " + ms[len(ms)-1].name
	}
	return name, tx.Commit()
}

// checkNotNewer refuses a file written by a newer keysync, whose schema this
// one does not know.
func (d *DB) checkNotNewer(applied map[int]bool, ms []migration) error {
	latest := ms[len(ms)-1].version
	for v := range applied {
		if v > latest {
			return fmt.Errorf("state: %s has schema version %d, newer than this keysync knows (%d); upgrade keysync", d.path, v, latest)
		}
	}
	return nil
}

// checkSchema makes sure a file opened read-only is fully migrated, since a
// read-only open cannot migrate it.
func (d *DB) checkSchema(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	var exists int
	if err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&exists); err != nil {
		return d.openError("open", err)
	}
	if exists == 0 {
		return fmt.Errorf("state: %s has no keysync schema; open it read-write once (any keysync run) to set it up", d.path)
	}
	applied, err := d.appliedVersions(ctx)
	if err != nil {
		return d.openError("open", err)
	}
	if err := d.checkNotNewer(applied, ms); err != nil {
		return err
	}
	for _, m := range ms {
		switch {
		case applied[m.version]:
		case readCompatible[m.version]:
			d.oldReports = d.oldReports || m.version == 11
		default:
			return fmt.Errorf("state: %s lacks schema migration %s, which a read-only open cannot apply; run keysync on it read-write once", d.path, m.name)
		}
	}
	return nil
}

// readCompatible are the migrations a read-only open can do without, so
// that status and history read a file the first run of an upgraded
// keysync has not migrated yet: 0011 adds a column that only the reports
// of runs after it fill.
var readCompatible = map[int]bool{11: true}

// checkKey makes sure the secrets in the file can be opened before
// anything is written: a read-write open without a key, of a file holding
// sealed secrets, fails (issuing every credential again is never the
// answer to a lost key), and so does any open with a key that did not seal
// them.
func (d *DB) checkKey(ctx context.Context, readOnly bool) error {
	if d.key == nil {
		if readOnly {
			return nil
		}
		var n int
		if err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM credentials WHERE sealed_secret IS NOT NULL").Scan(&n); err != nil {
			return d.openError("open", err)
		}
		if n > 0 {
			return fmt.Errorf("state: %s holds %d sealed secrets and no state key was given: %w; set state_key_file (default keysync.key beside the config), KEYSYNC_STATE_KEY or the state-key credential to the key it was sealed with", d.path, n, seal.ErrNoKey)
		}
		return nil
	}
	var other string
	err := d.db.QueryRowContext(ctx, `SELECT sealed_secret FROM credentials
		WHERE sealed_secret IS NOT NULL AND sealed_secret NOT LIKE ? LIMIT 1`, "v1:"+d.key.ID()+":%").Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return d.openError("open", err)
	}
	return fmt.Errorf("state: %s: secrets sealed under key %s, not the given key %s: %w; %s", d.path, seal.KeyOf(other), d.key.ID(), seal.ErrWrongKey, wrongKeyRemedyFor(seal.KeyOf(other)))
}

// Path returns the file name the DB was opened with.
func (d *DB) Path() string { return d.path }

// Close closes the database. SQLite checkpoints the WAL into the main file
// when the last connection closes.
func (d *DB) Close() error {
	d.mu.Lock()
	for _, s := range d.stmts {
		s.Close()
	}
	d.stmts = nil
	d.mu.Unlock()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("state: close %s: %w", d.path, err)
	}
	return nil
}

// stmt returns query prepared for tx. A query is parsed once for the file
// and each pooled connection, not once per call: Save and SaveStays run
// the same few statements for every row of every transaction.
func (d *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	d.mu.Lock()
	s, ok := d.stmts[query]
	if !ok {
		var err error
		if s, err = d.db.PrepareContext(ctx, query); err != nil {
			d.mu.Unlock()
			return nil, err
		}
		if d.stmts == nil {
			d.stmts = map[string]*sql.Stmt{}
		}
		d.stmts[query] = s
	}
	d.mu.Unlock()
	return tx.StmtContext(ctx, s), nil
}

// exec runs query in tx as a statement prepared by stmt.
func (d *DB) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	s, err := d.stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// timeLayout is RFC 3339 in UTC with a fixed nine fractional digits, so that
// stored instants sort as text in time order (time.RFC3339Nano trims zeros).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// formatTime returns t as stored text, or nil (NULL) for the zero time.
func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// parseTime reads a stored instant; NULL gives the zero time.
func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s.String)
}

// formatDate returns d as YYYY-MM-DD, or nil (NULL) for the zero Date.
func formatDate(d reconcile.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.String()
}

// parseDate reads a stored date; NULL gives the zero Date.
func parseDate(s sql.NullString) (reconcile.Date, error) {
	if !s.Valid || s.String == "" {
		return reconcile.Date{}, nil
	}
	return reconcile.ParseDate(s.String)
}
