package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// populated returns the path of a closed state file whose audit table
// spans many pages, and the page size. The file is built once (3,000 audit
// entries through Save) and each caller gets its own copy of its bytes, so
// the tests that damage it damage only theirs.
func populated(t *testing.T) (string, int) {
	t.Helper()
	populatedOnce.Do(func() { populatedFile, populatedPageSize, populatedErr = buildPopulated(t.TempDir()) })
	if populatedErr != nil {
		t.Fatal(populatedErr)
	}
	path := filepath.Join(t.TempDir(), "keysync.db")
	if err := os.WriteFile(path, populatedFile, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, populatedPageSize
}

var (
	populatedOnce     sync.Once
	populatedFile     []byte
	populatedPageSize int
	populatedErr      error
)

// buildPopulated writes populated's file in dir and returns its bytes.
func buildPopulated(dir string) ([]byte, int, error) {
	ctx := context.Background()
	path := filepath.Join(dir, "keysync.db")
	db, err := Open(ctx, path, Options{Create: true, Key: testKey})
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	var audit []reconcile.Audit
	for i := range 3000 {
		audit = append(audit, reconcile.Audit{At: t0.Add(time.Duration(i) * time.Second), System: reconcile.System3RPMS,
			Op: reconcile.OpCreate, Stay: reconcile.StayRef{Property: "hotel", Source: reconcile.System3RPMS, ID: fmt.Sprint(i)},
			Phase: reconcile.PhaseDone, Detail: "an entry long enough to fill pages quickly"})
	}
	if err := db.Save(ctx, nil, audit); err != nil {
		return nil, 0, err
	}
	var pageSize int
	if err := db.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return nil, 0, err
	}
	if err := db.Close(); err != nil {
		return nil, 0, err
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		return nil, 0, fmt.Errorf("%s-wal left after Close", path)
	}
	b, err := os.ReadFile(path)
	return b, pageSize, err
}

// raw runs statements on the file with a plain SQLite connection.
func raw(t *testing.T, path string, stmts ...string) {
	t.Helper()
	sdb, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	for _, s := range stmts {
		if _, err := sdb.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// auditLeaves returns the page numbers of the audit table's leaves in key
// order.
func auditLeaves(t *testing.T, path string) []int {
	t.Helper()
	return leaves(t, path, "audit")
}

// leaves returns the page numbers of a table's leaves in key order.
func leaves(t *testing.T, path, table string) []int {
	t.Helper()
	sdb, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	rows, err := sdb.Query("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if len(out) < 5 {
		t.Fatalf("%s has %d leaves; the test needs more", table, len(out))
	}
	return out
}

// scribble overwrites page n (1-based) of the file with garbage.
func scribble(t *testing.T, path string, pageSize, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, pageSize)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(junk, int64(n-1)*int64(pageSize)); err != nil {
		t.Fatal(err)
	}
}

func checkedAt(t *testing.T, path string) string {
	t.Helper()
	sdb, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var s string
	if err := sdb.QueryRow("SELECT value FROM meta WHERE key = 'checked_at'").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenChecksCheaplyThenFully: damage in the middle of a table escapes
// the cheap check of every open (the read that meets it fails), and is
// found by the full check once the last one is older than fullCheckEvery.
func TestOpenChecksCheaplyThenFully(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, pageSize := populated(t)
	leaves := auditLeaves(t, path)
	scribble(t, path, pageSize, leaves[len(leaves)/2])

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open with a fresh full check: %v; want the cheap check to pass", err)
	}
	if _, err := db.AuditLog(ctx, 0); err == nil {
		t.Error("reading the damaged audit table succeeded")
	}
	db.Close()

	old := time.Now().Add(-fullCheckEvery - time.Hour).UTC().Format(timeLayout)
	raw(t, path, "UPDATE meta SET value = '"+old+"' WHERE key = 'checked_at'")
	for _, opts := range []Options{{ReadOnly: true}, {}} {
		if _, err := Open(ctx, path, opts); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open(%+v) with the full check due: %v, want ErrCorrupt", opts, err)
		}
	}
}

// TestDamageInsideRunsNamedCorrupt: damage inside the runs table, which
// Open's cheap check does not read, is named corrupt, with the advice to
// restore, by the read that meets it (status's).
func TestDamageInsideRunsNamedCorrupt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, pageSize := populated(t)
	raw(t, path, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
		INSERT INTO runs (mode, started_at, status, partial, report_json) SELECT 'run', '2026-01-01T00:00:00Z', 'ok', 0, printf('%.*c', 600, 'x') FROM n`)
	runs := leaves(t, path, "runs")
	scribble(t, path, pageSize, runs[len(runs)/2])
	db, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("Open: %v; want the cheap check to pass", err)
	}
	defer db.Close()
	if _, err := db.Runs(ctx, 0); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Errorf("reading the damaged runs: %v, want ErrCorrupt with the advice to restore", err)
	}
}

// TestOpenChecksTheEdges: the cheap check reads the first and last pages
// of every b-tree, where new rows land, and the file's length.
func TestOpenChecksTheEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, pageSize int)
	}{
		{"first leaf", func(t *testing.T, path string, pageSize int) {
			scribble(t, path, pageSize, auditLeaves(t, path)[0])
		}},
		{"last leaf", func(t *testing.T, path string, pageSize int) {
			l := auditLeaves(t, path)
			scribble(t, path, pageSize, l[len(l)-1])
		}},
		{"tail cut off", func(t *testing.T, path string, pageSize int) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-int64(pageSize)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, pageSize := populated(t)
			tc.damage(t, path, pageSize)
			if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestOpenFullCheckAfterUncleanShutdown: a write-ahead log left beside the
// file (the writer was killed) makes Open read the whole file and record
// it; a clean file with a recent check is not read whole again.
func TestOpenFullCheckAfterUncleanShutdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	recent := time.Now().Add(-time.Hour).UTC().Format(timeLayout)
	if _, err := db.db.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = 'checked_at'", recent); err != nil {
		t.Fatal(err)
	}
	// Copy the file and its log while the writer still has them open: the
	// state a kill leaves.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	mustOpen(t, path, Options{}).Close()
	if got := checkedAt(t, path); got != recent {
		t.Errorf("a clean open with a check an hour old checked again (checked_at %s, was %s)", got, recent)
	}

	mustOpen(t, crashed, Options{}).Close()
	if got := checkedAt(t, crashed); got <= recent {
		t.Errorf("an open after an unclean shutdown did not check the whole file (checked_at %s)", got)
	}
}
