package state

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// fullCheckEvery is how long Open trusts the last full integrity check of
// a file that was closed cleanly.
const fullCheckEvery = 7 * 24 * time.Hour

// checkIntegrity decides how much of the file Open reads to make sure it is
// sound, and reports whether it ran the full check (which the caller then
// records as meta.checked_at, when it may write).
//
// PRAGMA quick_check reads every page of the file, so on every open it made
// a run's cost grow with the file's whole history; quick_check(N) does not
// help, since N only caps the errors reported. So every open does a cheap
// check that reads a few dozen pages whatever the file's size:
//
//   - checkHeader: the 100-byte header (magic string, page size) and, when
//     no write-ahead log is left beside the file, its page count against
//     the file's size, which catches a truncated file;
//   - SQLite parses the schema (page 1 and the pages it spills to);
//   - walkBTrees: the first and the last entry of every table and index,
//     which reads each b-tree's root and the pages down both edges, where
//     new rows land; SQLite refuses a page that is not a valid b-tree page
//     as corrupt;
//   - then Open reads the migrations table and meta (the PIN key).
//
// The full PRAGMA quick_check still runs when the file has no record of
// one (a new or never-checked file), when the last is older than
// fullCheckEvery, or when the last writer did not close the file cleanly
// (a write-ahead log was left beside it: killed, or still open elsewhere).
// Damage deep inside a table between two full checks is found by the read
// that meets it, which SQLite fails as corrupt (SQLITE_CORRUPT, mapped by
// openError) before anything is written on its account.
func (d *DB) checkIntegrity(ctx context.Context, unclean bool) (full bool, err error) {
	if err := d.walkBTrees(ctx); err != nil {
		return false, err
	}
	full = unclean
	if !full {
		if full, err = d.fullCheckDue(ctx); err != nil {
			return false, err
		}
	}
	if full {
		if err := d.quickCheck(ctx); err != nil {
			return false, err
		}
	}
	return full, nil
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkHeader reads the file's 100-byte header. It refuses a file that is
// not SQLite or is shorter than its header says; with a write-ahead log
// beside it (unclean) the latest pages may live in the log, so the size is
// not compared. A file it cannot read, or an empty one (a state file being
// created), is left to SQLite.
func (d *DB) checkHeader(unclean bool) error {
	f, err := os.Open(d.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return d.corrupt(fmt.Errorf("%d bytes, shorter than an SQLite header", fi.Size()))
	}
	if string(h[:16]) != sqliteMagic {
		return d.corrupt(errors.New("no SQLite header"))
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return d.corrupt(fmt.Errorf("header gives an invalid page size %d", pageSize))
	}
	// The page count at offset 28 is valid when the change counter at 24
	// matches the one at 92 (written by SQLite 3.7.0 and later).
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	if pages > 0 && bytes.Equal(h[24:28], h[92:96]) && !unclean && pages*pageSize > fi.Size() {
		return d.corrupt(fmt.Errorf("truncated: the header gives %d pages of %d bytes, the file holds %d bytes", pages, pageSize, fi.Size()))
	}
	return nil
}

// walkBTrees reads the first and the last entry of every table (by rowid,
// never through an index) and of every index (through it), so that each
// b-tree's root and edge pages are read. Only corruption is an error here:
// anything else is left for the statements after it, which explain it.
//
// Every Open runs it, so it makes its reads in two statements: one lists
// the b-trees with each index's first column, the other reads both edges
// of all of them as scalar subqueries. Compiling some fifty statements one
// by one cost more than the reads. If either statement fails, for any
// reason, the walk is made again one statement per read
// (walkBTreesOneByOne), which gives the verdict and the message.
func (d *DB) walkBTrees(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, `SELECT s.type, s.name, s.tbl_name,
		CASE s.type WHEN 'index' THEN (SELECT i.name FROM pragma_index_info(s.name) i ORDER BY i.seqno LIMIT 1) END
		FROM sqlite_schema s WHERE s.type IN ('table', 'index') AND s.rootpage > 0 ORDER BY s.rootpage`)
	if err != nil {
		return d.walkBTreesOneByOne(ctx)
	}
	var reads []string
	for rows.Next() {
		var kind, name, table string
		var col sql.NullString
		if err := rows.Scan(&kind, &name, &table, &col); err != nil {
			rows.Close()
			return d.walkBTreesOneByOne(ctx)
		}
		for _, dir := range []string{"ASC", "DESC"} {
			switch {
			case kind == "table":
				reads = append(reads, fmt.Sprintf("(SELECT rowid FROM %s NOT INDEXED ORDER BY rowid %s LIMIT 1)", quoteName(name), dir))
			case col.Valid: // else an expression index: not walked
				reads = append(reads, fmt.Sprintf("(SELECT %s FROM %s INDEXED BY %s ORDER BY %s %s LIMIT 1)",
					quoteName(col.String), quoteName(table), quoteName(name), quoteName(col.String), dir))
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d.walkBTreesOneByOne(ctx)
	}
	if len(reads) == 0 {
		return nil
	}
	vals := make([]any, len(reads))
	dest := make([]any, len(reads))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := d.db.QueryRowContext(ctx, "SELECT "+strings.Join(reads, ", ")).Scan(dest...); err != nil {
		return d.walkBTreesOneByOne(ctx)
	}
	return nil
}

// walkBTreesOneByOne is walkBTrees one statement per read: slower (each
// statement is compiled on its own), but it names the b-tree a corrupt read
// met and leaves every other error to the statements after it.
func (d *DB) walkBTreesOneByOne(ctx context.Context) error {
	type btree struct{ kind, name, table string }
	rows, err := d.db.QueryContext(ctx, `SELECT type, name, tbl_name FROM sqlite_schema
		WHERE type IN ('table', 'index') AND rootpage > 0 ORDER BY rootpage`)
	if err != nil {
		return d.walkError(err)
	}
	var trees []btree
	for rows.Next() {
		var b btree
		if err := rows.Scan(&b.kind, &b.name, &b.table); err != nil {
			rows.Close()
			return d.walkError(err)
		}
		trees = append(trees, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d.walkError(err)
	}
	for _, b := range trees {
		var queries []string
		switch b.kind {
		case "table":
			for _, dir := range []string{"ASC", "DESC"} {
				queries = append(queries, fmt.Sprintf("SELECT rowid FROM %s NOT INDEXED ORDER BY rowid %s LIMIT 1", quoteName(b.name), dir))
			}
		case "index":
			var col sql.NullString
			var seq, cid int
			err := d.db.QueryRowContext(ctx, "SELECT seqno, cid, name FROM pragma_index_info(?) ORDER BY seqno LIMIT 1", b.name).Scan(&seq, &cid, &col)
			if err != nil || !col.Valid {
				if isCorrupt(err) {
					return d.corrupt(err)
				}
				continue // an expression index: not walked
			}
			for _, dir := range []string{"ASC", "DESC"} {
				queries = append(queries, fmt.Sprintf("SELECT %s FROM %s INDEXED BY %s ORDER BY %s %s LIMIT 1",
					quoteName(col.String), quoteName(b.table), quoteName(b.name), quoteName(col.String), dir))
			}
		}
		for _, q := range queries {
			var v any
			err := d.db.QueryRowContext(ctx, q).Scan(&v)
			if isCorrupt(err) {
				return d.corrupt(fmt.Errorf("%s %s: %w", b.kind, b.name, err))
			}
		}
	}
	return nil
}

// walkError reports corruption met while listing the b-trees; other errors
// are left to the statements after the walk.
func (d *DB) walkError(err error) error {
	if isCorrupt(err) {
		return d.corrupt(err)
	}
	return nil
}

// fullCheckDue reports whether the file's last full integrity check, as
// recorded in meta.checked_at, is missing or older than fullCheckEvery (or
// oddly in the future: the clock was set back).
func (d *DB) fullCheckDue(ctx context.Context) (bool, error) {
	var s string
	err := d.db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'checked_at'").Scan(&s)
	if isCorrupt(err) {
		return false, d.corrupt(err)
	}
	if err != nil {
		return true, nil // not recorded yet, or no meta table yet
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return true, nil
	}
	age := time.Since(at)
	return age > fullCheckEvery || age < -24*time.Hour, nil
}

// isCorrupt reports whether err is SQLite's verdict that the file is not a
// database or is damaged.
func isCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return true
	}
	return false
}

// quoteName quotes an SQL identifier.
func quoteName(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
