package state

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
)

// testPIN is distinctive enough that finding it in the file means it leaked.
const testPIN = "739154"

var t0 = time.Date(2026, 2, 1, 9, 30, 0, 123456789, time.UTC)

// testKey is the state key of the files tests create.
var testKey = func() *seal.Key {
	k, _, err := seal.Generate()
	if err != nil {
		panic(err)
	}
	return k
}()

func openNew(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keysync.db")
	db, err := Open(context.Background(), path, Options{Create: true, Key: testKey})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// mustOpen opens the state file at path with opts, failing the test when it
// cannot; the caller closes it.
func mustOpen(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func date(s string) reconcile.Date {
	d, err := reconcile.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func newCred(stay string) *reconcile.Credential {
	return &reconcile.Credential{
		Stay:      reconcile.StayRef{Property: "hotel", Source: reconcile.System3RPMS, ID: stay},
		System:    reconcile.System3RPMS,
		Kind:      reconcile.KindPINKey,
		RoomID:    "r204",
		Status:    reconcile.StatusPending,
		Arrival:   date("2026-02-01"),
		Departure: date("2026-02-04"),
		UpdatedAt: t0,
	}
}

func TestOpenMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keysync.db")
	for _, opts := range []Options{{}, {ReadOnly: true}, {ReadOnly: true, Create: true}} {
		_, err := Open(context.Background(), path, opts)
		if !errors.Is(err, ErrNoState) {
			t.Fatalf("Open(%+v) of a missing file: got %v, want ErrNoState", opts, err)
		}
		if !strings.Contains(err.Error(), "keysync backfill") || !strings.Contains(err.Error(), path) {
			t.Errorf("message should name the path and keysync backfill: %v", err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open without Create made the file: %v", err)
	}
}

// TestOpenAnotherSQLiteFile: an SQLite file with none of keysync's tables
// (an empty database, or another program's) is no state file: opened
// without Create it is refused as a missing one and left as it was.
func TestOpenAnotherSQLiteFile(t *testing.T) {
	t.Parallel()
	for _, table := range []string{"", "CREATE TABLE foo (x)"} {
		path := filepath.Join(t.TempDir(), "keysync.db")
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(cmp.Or(table, "VACUUM")); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		for _, opts := range []Options{{}, {ReadOnly: true}} {
			if _, err := Open(context.Background(), path, opts); !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "keysync backfill") {
				t.Errorf("%q: Open(%+v): %v, want ErrNoState naming keysync backfill", table, opts, err)
			}
		}
		raw, err = sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := raw.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'schema_migrations'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%q: Open added keysync's tables (%d, %v)", table, n, err)
		}
		raw.Close()
	}
}

func TestCreateMode(t *testing.T) {
	t.Parallel()
	db, path := openNew(t)
	// Write something so that the WAL exists too.
	if err := db.Save(context.Background(), []*reconcile.Credential{newCred("s1")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), perm)
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	c := newCred("s1")
	c.PIN = testPIN
	if err := db.Save(ctx, []*reconcile.Credential{c}, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		db, err := Open(ctx, path, Options{Key: testKey})
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		var n int
		if err := db.db.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) {
			t.Errorf("reopen %d: %d migrations recorded, want %d", i, n, len(ms))
		}
		got, err := db.Credentials(ctx, "hotel")
		if err != nil || len(got) != 1 || got[0].ID != c.ID || got[0].PIN != testPIN {
			t.Errorf("reopen %d: credentials %+v, %v", i, got, err)
		}
		db.Close()
	}
}

func TestCorrupt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keysync.db")
	garbage := bytes.Repeat([]byte("this is not an SQLite database\n"), 200)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{}, {Create: true}, {ReadOnly: true}} {
		_, err := Open(context.Background(), path, opts)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open(%+v) of garbage: got %v, want ErrCorrupt", opts, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, "backup") || !strings.Contains(msg, "keysync backfill") {
			t.Errorf("message should name the path, backups and backfill: %s", msg)
		}
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, garbage) {
		t.Error("Open changed the corrupt file")
	}
}

func TestCorruptPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	for i := range 50 {
		c := newCred(strings.Repeat("x", 200) + string(rune('a'+i%26)))
		if err := db.Save(ctx, []*reconcile.Credential{c}, nil); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 4*4096 {
		t.Fatalf("database only %d bytes", len(b))
	}
	// Keep the header intact; smash the b-tree pages after the schema page.
	for i := 4096; i < len(b); i++ {
		b[i] = 0xA5
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a file with damaged pages: got %v, want ErrCorrupt", err)
	}
	t.Log(err)
}

func TestOpenDirectory(t *testing.T) {
	t.Parallel()
	if _, err := Open(context.Background(), t.TempDir(), Options{Create: true}); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
}

func TestOpenUnwritable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	ctx := context.Background()
	wantHint := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "writable") {
			t.Errorf("%s: got %v, want an error saying what must be writable", what, err)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "keysync.db")
	db := mustOpen(t, path, Options{Create: true})
	db.Close()
	t.Cleanup(func() { os.Chmod(dir, 0o700); os.Chmod(path, 0o600) })

	// A read-only file opens read-only, but not for writing.
	os.Chmod(path, 0o400)
	_, err := Open(ctx, path, Options{})
	wantHint("read-only file", err)
	if ro, err := Open(ctx, path, Options{ReadOnly: true}); err != nil {
		t.Errorf("read-only file, ReadOnly: %v", err)
	} else {
		ro.Close()
	}

	// A read-only directory: no new file, no WAL for an existing one.
	os.Chmod(path, 0o600)
	os.Chmod(dir, 0o500)
	_, err = Open(ctx, filepath.Join(dir, "new.db"), Options{Create: true})
	wantHint("create in read-only dir", err)
	_, err = Open(ctx, path, Options{})
	wantHint("existing file in read-only dir", err)
}

func TestSaveRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)

	a, b := newCred("s1"), newCred("s2")
	b.Stay.Property, b.System, b.Kind = "annex", reconcile.SystemOpenApp, ""
	audit := []reconcile.Audit{{
		RunID: 7, At: t0, System: reconcile.System3RPMS, Op: reconcile.OpCreate,
		Stay: a.Stay, Cred: a, Phase: reconcile.PhaseIntent, Detail: "new stay",
	}}
	if err := db.Save(ctx, []*reconcile.Credential{a, b}, audit); err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || b.ID == 0 || a.ID == b.ID {
		t.Fatalf("IDs not set on insert: %d, %d", a.ID, b.ID)
	}
	got, err := db.Credentials(ctx, "hotel")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !credEqual(got[0], *a) {
		t.Fatalf("Credentials(hotel) = %+v, want [%+v]", got, *a)
	}

	// pending → active
	a.Status, a.RemoteID, a.Assigned, a.UpdatedAt = reconcile.StatusActive, "rak-1", true, t0.Add(time.Minute)
	done := audit[0]
	done.Phase, done.RemoteID = reconcile.PhaseDone, "rak-1"
	if err := db.Save(ctx, []*reconcile.Credential{a}, []reconcile.Audit{done}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Credentials(ctx, "hotel")
	if len(got) != 1 || !credEqual(got[0], *a) {
		t.Fatalf("after activation: %+v, want %+v", got, *a)
	}

	// active → deleted: no longer live
	a.Status, a.Assigned = reconcile.StatusDeleted, false
	if err := db.Save(ctx, []*reconcile.Credential{a}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ = db.Credentials(ctx, "hotel"); len(got) != 0 {
		t.Fatalf("deleted credential still returned: %+v", got)
	}
	all, err := db.AllCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != a.ID || all[0].Status != reconcile.StatusDeleted || all[1].ID != b.ID {
		t.Fatalf("AllCredentials = %+v", all)
	}

	log, err := db.AuditLog(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].CredentialID != a.ID || log[0].Phase != reconcile.PhaseIntent ||
		log[1].RemoteID != "rak-1" || !log[0].At.Equal(t0) || log[0].Stay != a.Stay {
		t.Fatalf("AuditLog(7) = %+v", log)
	}
	if all, _ := db.AuditLog(ctx, 0); len(all) != 2 {
		t.Fatalf("AuditLog(0) has %d entries, want 2", len(all))
	}
	if other, _ := db.AuditLog(ctx, 8); len(other) != 0 {
		t.Fatalf("AuditLog(8) = %+v, want none", other)
	}
}

func credEqual(a, b reconcile.Credential) bool {
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	a.PIN, b.PIN = "", ""
	return a == b
}

func TestSaveFailureLeavesIDs(t *testing.T) {
	t.Parallel()
	db, _ := openNew(t)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	c := newCred("s1")
	c.PIN = testPIN
	if err := db.Save(cancelled, []*reconcile.Credential{c}, nil); err == nil {
		t.Fatal("Save with a cancelled context succeeded")
	}
	if c.ID != 0 {
		t.Fatalf("failed Save changed the credential: ID %d", c.ID)
	}

	// The insert succeeds inside the transaction, then an update of an
	// unknown id fails it: the insert must be rolled back and c untouched.
	ghost := newCred("s2")
	ghost.ID = 999
	audit := []reconcile.Audit{{At: t0, Cred: c, Phase: reconcile.PhaseIntent}}
	err := db.Save(context.Background(), []*reconcile.Credential{c, ghost}, audit)
	if err == nil || !strings.Contains(err.Error(), "999") {
		t.Fatalf("Save with an unknown id: got %v, want an error naming it", err)
	}
	if c.ID != 0 {
		t.Fatalf("failed Save changed the credential: ID %d", c.ID)
	}
	all, _ := db.AllCredentials(context.Background())
	log, _ := db.AuditLog(context.Background(), 0)
	if len(all) != 0 || len(log) != 0 {
		t.Fatalf("failed Save left rows: %+v %+v", all, log)
	}

	// An invalid status is refused before anything is written.
	bad := newCred("s3")
	bad.Status = ""
	if err := db.Save(context.Background(), []*reconcile.Credential{bad}, nil); err == nil {
		t.Fatal("Save with an empty status succeeded")
	}

	// And the same credential saves fine afterwards.
	if err := db.Save(context.Background(), []*reconcile.Credential{c}, audit); err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 {
		t.Fatalf("after a good Save: ID %d", c.ID)
	}
	if got, err := db.Credentials(context.Background(), "hotel"); err != nil || len(got) != 1 || got[0].PIN != testPIN {
		t.Fatalf("after a good Save: %+v, %v; want the credential with its PIN", got, err)
	}
}

func TestPINNeverStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)

	c := newCred("s1")
	c.PIN = testPIN
	if err := db.Save(ctx, []*reconcile.Credential{c}, []reconcile.Audit{{At: t0, Cred: c, Op: reconcile.OpCreate, Phase: reconcile.PhaseIntent}}); err != nil {
		t.Fatal(err)
	}
	var sealed string
	if err := db.db.QueryRowContext(ctx, "SELECT sealed_secret FROM credentials WHERE id = ?", c.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if seal.KeyOf(sealed) != testKey.ID() {
		t.Fatalf("sealed_secret = %q, want a value sealed under key %s", sealed, testKey.ID())
	}

	// An update without the PIN keeps the sealed one.
	c.PIN, c.Status, c.RemoteID = "", reconcile.StatusActive, "rak-1"
	if err := db.Save(ctx, []*reconcile.Credential{c}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Credentials(ctx, "hotel")
	if err != nil || len(got) != 1 {
		t.Fatalf("Credentials: %+v, %v", got, err)
	}
	if got[0].PIN != testPIN {
		t.Fatalf("loaded PIN %q, want %q", got[0].PIN.Reveal(), testPIN)
	}

	stay := reconcile.Stay{
		Ref: c.Stay, RoomID: "r204", RoomName: "204", Arrival: c.Arrival, Departure: c.Departure,
		Key: &reconcile.RemoteKey{ID: "rak-1", Type: "RoomAccessPin", PIN: testPIN},
	}
	if err := db.SaveStays(ctx, "hotel", []reconcile.Stay{stay}); err != nil {
		t.Fatal(err)
	}

	assertNoPIN := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(path + "*")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(testPIN)) {
				t.Errorf("%s: %s contains the PIN", when, filepath.Base(f))
			}
		}
	}
	assertNoPIN("while open")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoPIN("after close")
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(sealed)) {
		t.Error("the sealed PIN is not in the database file")
	}
}

func TestStays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	ref := func(id string) reconcile.StayRef {
		return reconcile.StayRef{Property: "hotel", Source: reconcile.System3RPMS, ID: id}
	}
	first := []reconcile.Stay{
		{Ref: ref("a"), RoomID: "r1", RoomName: "101", Arrival: date("2026-02-03"), Departure: date("2026-02-05")},
		{Ref: ref("b"), RoomID: "r2", RoomName: "102", Arrival: date("2026-02-01"), Departure: date("2026-02-02"),
			Key: &reconcile.RemoteKey{ID: "k1", Type: "RoomAccessQR", PIN: testPIN}},
	}
	if err := db.SaveStays(ctx, "hotel", first); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveStays(ctx, "annex", []reconcile.Stay{{Ref: reconcile.StayRef{Property: "annex", Source: reconcile.SystemGuestway, ID: "x"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Stays(ctx, "hotel")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Ref != ref("b") || got[0].Key == nil || got[0].Key.ID != "k1" || got[0].Key.PIN != "" ||
		got[1].Ref != ref("a") || got[1].Key != nil || got[1].Arrival != date("2026-02-03") || got[1].RoomName != "101" {
		t.Fatalf("Stays(hotel) = %+v", got)
	}

	// Replacing the snapshot drops stays no longer reported, and only the
	// property's own.
	if err := db.SaveStays(ctx, "hotel", first[:1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Stays(ctx, "hotel"); len(got) != 1 || got[0].Ref != ref("a") {
		t.Fatalf("after replace: %+v", got)
	}
	if got, _ := db.Stays(ctx, "annex"); len(got) != 1 {
		t.Fatalf("annex snapshot touched: %+v", got)
	}

	// A stay that changed is written as it is now.
	moved := first[0]
	moved.RoomID, moved.RoomName, moved.Departure = "r9", "109", date("2026-02-06")
	moved.Key = &reconcile.RemoteKey{ID: "k2", Type: "RoomAccessPin"}
	if err := db.SaveStays(ctx, "hotel", []reconcile.Stay{moved}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Stays(ctx, "hotel"); len(got) != 1 || got[0].RoomID != "r9" || got[0].RoomName != "109" ||
		got[0].Departure != date("2026-02-06") || got[0].Key == nil || got[0].Key.ID != "k2" {
		t.Fatalf("after a change: %+v", got)
	}

	// Many stays, more than one statement carries, one of them listed
	// twice (the later version kept); then most of them dropped and the
	// rest changed, in statements of many rows too.
	var many []reconcile.Stay
	for i := range 2*maxRows + 5 {
		many = append(many, reconcile.Stay{Ref: ref(fmt.Sprintf("m%03d", i)), RoomID: "r1", Arrival: date("2026-02-03"), Departure: date("2026-02-05")})
	}
	twice, again := many[7], many[8]
	twice.RoomID, again.RoomID = "r7", "r8"
	// m007's copy comes in the last statement, m008's in the same one.
	if err := db.SaveStays(ctx, "hotel", append(slices.Insert(slices.Clone(many), 9, again), twice)); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Stays(ctx, "hotel")
	if len(got) != len(many) {
		t.Fatalf("%d stays recorded, want %d", len(got), len(many))
	}
	for _, s := range got {
		if want := map[string]string{"m007": "r7", "m008": "r8"}[s.Ref.ID]; s.RoomID != cmp.Or(want, "r1") {
			t.Errorf("stay %s in room %s, want %s", s.Ref.ID, s.RoomID, cmp.Or(want, "r1"))
		}
	}
	rest := many[maxRows+10:]
	for i := range rest {
		rest[i].RoomID = "r2"
	}
	if err := db.SaveStays(ctx, "hotel", rest); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Stays(ctx, "hotel")
	if len(got) != len(rest) {
		t.Fatalf("%d stays recorded after the drop, want %d", len(got), len(rest))
	}
	for i, s := range got {
		if s.Ref != rest[i].Ref || s.RoomID != "r2" {
			t.Errorf("stay %d: %s in room %s, want %s in r2", i, s.Ref.ID, s.RoomID, rest[i].Ref.ID)
		}
	}
}

func TestRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	if at, err := db.LastSuccessAt(ctx); err != nil || !at.IsZero() {
		t.Errorf("LastSuccessAt of a new file = %s, %v; want the zero time", at, err)
	}

	ok, err := db.BeginRun(ctx, reconcile.ModeRun, t0)
	if err != nil {
		t.Fatal(err)
	}
	partial, err := db.BeginRun(ctx, reconcile.ModeBackfill, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ok == 0 || partial == ok {
		t.Fatalf("run ids %d, %d", ok, partial)
	}

	cred := newCred("s1")
	cred.PIN = testPIN
	plan := &reconcile.PlanReport{Property: "hotel", Now: t0, Actions: []reconcile.ActionReport{{Action: &reconcile.Action{
		System: reconcile.System3RPMS, Op: reconcile.OpCreate, Stay: cred.Stay, Cred: cred,
		Arrival: cred.Arrival, Departure: cred.Departure,
	}, Result: reconcile.ResultDone}}}
	if err := db.FinishRun(ctx, ok, &reconcile.Report{RunID: ok, Mode: reconcile.ModeRun, Now: t0, Plans: []*reconcile.PlanReport{plan}}); err != nil {
		t.Fatal(err)
	}
	failed := &reconcile.Report{RunID: partial, Mode: reconcile.ModeBackfill, Now: t0,
		Failures: []reconcile.Failure{{Property: "hotel", System: reconcile.System3RPMS, Err: "boom"}}}
	if err := db.FinishRun(ctx, partial, failed); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRun(ctx, 999, failed); err == nil {
		t.Fatal("FinishRun of an unknown run succeeded")
	}
	if err := db.EndRun(ctx, partial, 4, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := db.EndRun(ctx, 999, 0, time.Second); err == nil {
		t.Fatal("EndRun of an unknown run succeeded")
	}

	runs, err := db.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("Runs = %+v", runs)
	}
	if r := runs[0]; r.ID != ok || r.Status != RunOK || r.Partial || r.Mode != reconcile.ModeRun || !r.StartedAt.Equal(t0) || r.Ended {
		t.Errorf("ok run = %+v", r)
	}
	if r := runs[1]; r.ID != partial || r.Status != RunPartial || !r.Partial || r.Mode != reconcile.ModeBackfill ||
		!r.Ended || r.ExitCode != 4 || r.Duration != 1500*time.Millisecond {
		t.Errorf("partial run = %+v", r)
	}
	if last, err := db.Runs(ctx, 1); err != nil || len(last) != 1 || last[0].ID != partial || last[0].Report == nil {
		t.Errorf("Runs(1) = %+v, %v; want the partial run alone, with its report", last, err)
	}
	if at, err := db.LastSuccessAt(ctx); err != nil || !at.Equal(t0) {
		t.Errorf("LastSuccessAt = %s, %v; want the ok run's start %s", at, err, t0)
	}
	// A webhook's targeted run is no whole run's success.
	targeted, err := db.BeginRun(ctx, reconcile.ModeTargeted, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRun(ctx, targeted, &reconcile.Report{RunID: targeted, Mode: reconcile.ModeTargeted, Now: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if at, err := db.LastSuccessAt(ctx); err != nil || !at.Equal(t0) {
		t.Errorf("LastSuccessAt after a targeted run = %s, %v; want the ok run's start %s", at, err, t0)
	}
	if err := db.EndRun(ctx, targeted, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	// The last whole run that recorded its end: the backfill (exit 4),
	// not the later targeted run, nor the ok run that never recorded one.
	if r, ok, err := db.LastWholeRun(ctx); err != nil || !ok || r.ID != partial || r.ExitCode != 4 || r.Duration != 1500*time.Millisecond {
		t.Errorf("LastWholeRun = %+v, %v, %v; want run %d, exit 4, 1.5 s", r, ok, err, partial)
	}
	for _, r := range runs {
		if bytes.Contains(r.Report, []byte(testPIN)) {
			t.Errorf("run %d report contains the PIN: %s", r.ID, r.Report)
		}
		var rep reconcile.Report
		if err := json.Unmarshal(r.Report, &rep); err != nil || rep.RunID != r.ID {
			t.Errorf("run %d report does not decode: %v (%s)", r.ID, err, r.Report)
		}
	}
}

// TestRunReportsStoredEitherWay reads a report as migration 0011 stores it
// (gzip-compressed) beside one recorded before it (plain JSON), in a file
// that status opens read-only before the upgraded keysync's first run has
// migrated it, and after; and names the run whose stored report does not
// decompress.
func TestRunReportsStoredEitherWay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	before, err := db.BeginRun(ctx, reconcile.ModeRun, t0)
	if err != nil {
		t.Fatal(err)
	}
	// The file as a keysync before migration 0011 left it.
	for _, q := range []string{
		fmt.Sprintf(`UPDATE runs SET status = 'ok', report_json = '{"run_id": %d, "mode": "run"}' WHERE id = %d`, before, before),
		"ALTER TABLE runs DROP COLUMN report_gzip", "DELETE FROM schema_migrations WHERE version = 11"} {
		if _, err := db.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	readsEvery := func(db *DB, want int) {
		t.Helper()
		runs, err := db.Runs(ctx, 0)
		if err != nil || len(runs) != want {
			t.Fatalf("Runs = %d runs, %v; want %d", len(runs), err, want)
		}
		for _, r := range runs {
			var rep reconcile.Report
			if err := json.Unmarshal(r.Report, &rep); err != nil || rep.RunID != r.ID {
				t.Errorf("run %d report = %s, %v", r.ID, r.Report, err)
			}
		}
		if _, err := db.RecentReadFailures(ctx, math.MaxInt64, 5); err != nil {
			t.Errorf("RecentReadFailures: %v", err)
		}
	}
	ro := mustOpen(t, path, Options{ReadOnly: true})
	readsEvery(ro, 1)
	ro.Close()

	db = mustOpen(t, path, Options{Key: testKey})
	defer db.Close()
	after, err := db.BeginRun(ctx, reconcile.ModeRun, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRun(ctx, after, &reconcile.Report{RunID: after, Mode: reconcile.ModeRun, Now: t0}); err != nil {
		t.Fatal(err)
	}
	var plain sql.NullString
	var gz []byte
	if err := db.db.QueryRowContext(ctx, `SELECT report_json, report_gzip FROM runs WHERE id = ?`, after).Scan(&plain, &gz); err != nil {
		t.Fatal(err)
	}
	if plain.Valid || len(gz) < 2 || gz[0] != 0x1f || gz[1] != 0x8b {
		t.Fatalf("run %d stored report_json %v and report_gzip %x; want gzip alone", after, plain, gz)
	}
	readsEvery(db, 2)
	ro = mustOpen(t, path, Options{ReadOnly: true})
	readsEvery(ro, 2)
	ro.Close()

	if _, err := db.db.ExecContext(ctx, `UPDATE runs SET report_gzip = ? WHERE id = ?`, gz[:len(gz)/2], after); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Runs(ctx, 0); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("report of run %d", after)) {
		t.Errorf("Runs with a cut report = %v; want an error naming run %d", err, after)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	old, recent := t0.Add(-60*24*time.Hour), t0
	keep := 30 * 24 * time.Hour // everything before t0 - keep goes

	mk := func(stay string, status reconcile.Status, at time.Time) *reconcile.Credential {
		c := newCred(stay)
		c.Status, c.UpdatedAt = status, at
		return c
	}
	oldDeleted := mk("a", reconcile.StatusDeleted, old)
	oldReleased := mk("b", reconcile.StatusReleased, old)
	oldAbandoned := mk("c", reconcile.StatusAbandoned, old)
	oldActive := mk("d", reconcile.StatusActive, old)
	oldPending := mk("e", reconcile.StatusPending, old)
	newDeleted := mk("f", reconcile.StatusDeleted, recent)
	creds := []*reconcile.Credential{oldDeleted, oldReleased, oldAbandoned, oldActive, oldPending, newDeleted}
	audit := []reconcile.Audit{
		{At: old, Cred: oldDeleted, Phase: reconcile.PhaseDone},
		{At: recent, Cred: oldDeleted, Phase: reconcile.PhaseDone, Detail: "late"},
		{At: recent, Cred: newDeleted, Phase: reconcile.PhaseDone},
	}
	if err := db.Save(ctx, creds, audit); err != nil {
		t.Fatal(err)
	}
	oldRun, _ := db.BeginRun(ctx, reconcile.ModeRun, old)
	newRun, _ := db.BeginRun(ctx, reconcile.ModeRun, recent)

	n, err := db.Prune(ctx, t0, keep)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // 3 credentials, 1 audit entry, 1 run
		t.Errorf("Prune removed %d rows, want 5", n)
	}
	all, _ := db.AllCredentials(ctx)
	var ids []int64
	for _, c := range all {
		ids = append(ids, c.ID)
	}
	want := []int64{oldActive.ID, oldPending.ID, newDeleted.ID}
	if !equalIDs(ids, want) {
		t.Errorf("credentials left %v, want %v", ids, want)
	}
	log, _ := db.AuditLog(ctx, 0)
	if len(log) != 2 || log[0].Detail != "late" || log[0].CredentialID != 0 || log[1].CredentialID != newDeleted.ID {
		t.Errorf("audit left %+v", log)
	}
	runs, _ := db.Runs(ctx, 0)
	if len(runs) != 1 || runs[0].ID != newRun || runs[0].ID == oldRun {
		t.Errorf("runs left %+v", runs)
	}
	if n, err := db.Prune(ctx, t0, keep); err != nil || n != 0 {
		t.Errorf("second Prune: %d, %v", n, err)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	c := newCred("s1")
	if err := db.Save(ctx, []*reconcile.Credential{c}, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ro := mustOpen(t, path, Options{ReadOnly: true})
	defer ro.Close()
	if got, err := ro.Credentials(ctx, "hotel"); err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("read-only Credentials: %+v, %v", got, err)
	}
	if err := ro.Save(ctx, []*reconcile.Credential{newCred("s2")}, nil); err == nil {
		t.Fatal("Save on a read-only DB succeeded")
	}
	if _, err := ro.BeginRun(ctx, reconcile.ModeRun, t0); err == nil {
		t.Fatal("BeginRun on a read-only DB succeeded")
	}
}

func TestConcurrentSaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			c := newCred("s" + string(rune('a'+i)))
			errs <- db.Save(ctx, []*reconcile.Credential{c}, []reconcile.Audit{{At: t0, Cred: c}})
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if all, _ := db.AllCredentials(ctx); len(all) != 8 {
		t.Errorf("%d credentials, want 8", len(all))
	}
}

// TestQueuedSavesShareACommit: Saves that queue behind the writer commit
// together, each with its ids; one that fails is retried alone and fails
// alone, writing nothing, while those it was queued with are kept. The
// test holds the writer's turn while the three queue.
func TestQueuedSavesShareACommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	holding, release := make(chan struct{}), make(chan struct{})
	held := &pendingSave{ctx: ctx}
	go db.saves.Wait(held, func() bool { return held.done }, func(queued []*pendingSave) []*pendingSave {
		close(holding)
		<-release
		held.done = true
		return queued[1:]
	})
	<-holding
	ghost := newCred("ghost")
	ghost.ID = 999 // no such row: its Save fails
	saves := [][]*reconcile.Credential{{newCred("a")}, {newCred("b"), ghost}, {newCred("c")}}
	saves[0][0].PIN = testPIN
	saves[2][0].PIN = testPIN
	errs := make([]chan error, len(saves))
	save := func(i int) {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- db.Save(ctx, saves[i], []reconcile.Audit{{At: t0, Cred: saves[i][0]}}) }()
	}
	for i := range saves {
		save(i)
	}
	for db.saves.Len() < len(saves) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for i, want := range []bool{true, false, true} {
		if err := <-errs[i]; (err == nil) != want {
			t.Errorf("Save %d: error %v, want success %v", i, err, want)
		}
	}
	if saves[0][0].ID == 0 || saves[2][0].ID == 0 || saves[1][0].ID != 0 {
		t.Errorf("ids after the commit: a %d, b %d, c %d; want a and c set, b still 0", saves[0][0].ID, saves[1][0].ID, saves[2][0].ID)
	}
	all, err := db.Credentials(ctx, "hotel")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range all {
		got = append(got, c.Stay.ID)
		if c.PIN != testPIN {
			t.Errorf("%s's PIN did not open after a shared commit: %q", c.Stay.ID, c.PIN.Reveal())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("stored %v, want [a c]", got)
	}
	log, _ := db.AuditLog(ctx, 0)
	if len(log) != 2 {
		t.Errorf("%d audit lines, want 2 (a's and c's)", len(log))
	}
}

// TestBackupBeforeMigration: opening a file a migration behind copies it
// first, as it was, beside itself; a new file and an up-to-date one are
// not copied.
func TestBackupBeforeMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	if err := db.Save(ctx, []*reconcile.Credential{newCred("s1")}, nil); err != nil {
		t.Fatal(err)
	}
	// Make the file look as migration 0004 had not run yet.
	for _, q := range []string{"DROP INDEX credentials_status_updated", "DROP INDEX runs_started_at", "DROP INDEX runs_mode",
		"DELETE FROM schema_migrations WHERE version = 4"} {
		if _, err := db.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if matches, _ := filepath.Glob(path + ".before-*"); len(matches) != 0 {
		t.Fatalf("backups before any migration: %v", matches)
	}
	db2 := mustOpen(t, path, Options{})
	db2.Close()
	bak := path + ".before-0004_retention.bak"
	old, err := sql.Open("sqlite", dsn(bak, true, DefaultBusyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var creds, m4 int
	if err := old.QueryRowContext(ctx, "SELECT count(*) FROM credentials").Scan(&creds); err != nil || creds != 1 {
		t.Errorf("backup holds %d credentials (%v), want 1", creds, err)
	}
	if err := old.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = 4").Scan(&m4); err != nil || m4 != 0 {
		t.Errorf("backup has migration 4 applied (%d, %v): it must be the file as it was", m4, err)
	}
	if fi, err := os.Stat(bak); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode: %v %v", fi.Mode(), err)
	}
	// Opened again, nothing more to copy.
	db3 := mustOpen(t, path, Options{})
	db3.Close()
	if matches, _ := filepath.Glob(path + ".before-*"); len(matches) != 1 {
		t.Errorf("backups: %v, want the one", matches)
	}
}

// TestOpenWaitsOutTheBusyTimeout: while another connection holds the
// file's write lock, Open waits Options.BusyTimeout for it, then fails
// saying another program is writing to the file.
func TestOpenWaitsOutTheBusyTimeout(t *testing.T) {
	t.Parallel()
	holder, path := openNew(t)
	tx, err := holder.db.BeginTx(context.Background(), nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const busy = 100 * time.Millisecond
	start := time.Now()
	db, err := Open(context.Background(), path, Options{BusyTimeout: busy})
	elapsed := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded while another connection held the write lock")
	}
	if !strings.Contains(err.Error(), "another program is writing to it") {
		t.Errorf("Open: %v; want the busy file's remedy", err)
	}
	if elapsed < busy || elapsed > DefaultBusyTimeout {
		t.Errorf("Open gave up after %s; want the busy timeout of %s, not the default %s", elapsed, busy, DefaultBusyTimeout)
	}
}

// TestSealedSecretsNeedTheirKey checks that a file's secrets open only with
// the key that sealed them, that a value moved to another row does not
// open, and that a read-write open without the key fails before anything
// is written.
func TestSealedSecretsNeedTheirKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	a, b := newCred("s1"), newCred("s2")
	a.PIN, b.PIN = testPIN, "615283"
	if err := db.Save(ctx, []*reconcile.Credential{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	sealedUnder := db.key.ID()
	db.Close()

	if _, err := Open(ctx, path, Options{}); !errors.Is(err, seal.ErrNoKey) || !strings.Contains(err.Error(), "state_key_file") {
		t.Errorf("read-write open without the key: %v, want ErrNoKey naming state_key_file", err)
	}
	other, _, _ := seal.Generate()
	if _, err := Open(ctx, path, Options{Key: other}); !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "rekey") || !strings.Contains(err.Error(), ".old-"+sealedUnder) {
		t.Errorf("open with another key: %v, want ErrWrongKey naming rekey and the file rekey kept key %s in (.old-%s)", err, sealedUnder, sealedUnder)
	}
	ro, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open without the key: %v", err)
	}
	got, err := ro.Credentials(ctx, "hotel")
	if err != nil || len(got) != 2 || got[0].PIN != "" || got[1].PIN != "" {
		t.Errorf("read-only without the key: %+v, %v; want the credentials without PINs", got, err)
	}
	ro.Close()

	// Swap the sealed values of the two rows: neither opens.
	sdb, err := sql.Open("sqlite", dsn(path, false, DefaultBusyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.ExecContext(ctx, `UPDATE credentials SET sealed_secret =
		(SELECT sealed_secret FROM credentials c2 WHERE c2.id <> credentials.id)`); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	db2 := mustOpen(t, path, Options{Key: testKey})
	defer db2.Close()
	if _, err := db2.Credentials(ctx, "hotel"); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("swapped sealed values: %v, want ErrWrongKey", err)
	}
}

// TestSaveManyRows: credentials are written many to a statement; a Save
// still reads as its credentials written one after the other: more rows
// than one statement carries, the same credential listed twice, two
// copies of one row (the later one wins), secrets sealed to their own
// rows, and an unknown id among many failing the whole Save.
func TestSaveManyRows(t *testing.T) {
	t.Parallel()
	db, _ := openNew(t)
	ctx := context.Background()
	const n = 2*maxRows + 7
	var creds []*reconcile.Credential
	for i := range n {
		c := newCred(fmt.Sprintf("s%03d", i))
		c.PIN = reconcile.Secret(fmt.Sprintf("%06d", 100000+i))
		creds = append(creds, c)
	}
	// The first credential twice: inserted once.
	if err := db.Save(ctx, append(creds, creds[0]), nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range creds {
		if c.ID != int64(i+1) {
			t.Fatalf("credential %d has id %d, want %d", i, c.ID, i+1)
		}
	}
	// Updates: every one active; credential 5 twice, its later copy
	// retired; one without its PIN keeps the sealed one.
	var upd []*reconcile.Credential
	for i, c := range creds {
		c.Status, c.RemoteID = reconcile.StatusActive, fmt.Sprintf("k%d", i)
		upd = append(upd, c)
	}
	later := *creds[5]
	later.Status = reconcile.StatusRetired
	upd = append(upd, &later)
	creds[9].PIN = ""
	if err := db.Save(ctx, upd, nil); err != nil {
		t.Fatal(err)
	}
	all, err := db.AllCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("%d rows, want %d", len(all), n)
	}
	for i, c := range all {
		want := reconcile.StatusActive
		if i == 5 {
			want = reconcile.StatusRetired
		}
		if c.Status != want || c.RemoteID != fmt.Sprintf("k%d", i) || c.Stay.ID != fmt.Sprintf("s%03d", i) {
			t.Errorf("row %d: %s %s %s, want %s k%d s%03d", c.ID, c.Status, c.RemoteID, c.Stay.ID, want, i, i)
		}
		if pin := fmt.Sprintf("%06d", 100000+i); c.PIN.Reveal() != pin {
			t.Errorf("row %d: PIN does not open to its own", c.ID)
		}
	}
	// An unknown id in the second statement of updates: nothing written.
	ghost := newCred("ghost")
	ghost.ID = 9999
	for _, c := range creds {
		c.Status = reconcile.StatusDeleted
	}
	err = db.Save(ctx, append(append([]*reconcile.Credential{}, creds[:maxRows+3]...), ghost), nil)
	if err == nil || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("Save with an unknown id: %v, want an error naming it", err)
	}
	after, _ := db.AllCredentials(ctx)
	for _, c := range after {
		if c.Status == reconcile.StatusDeleted {
			t.Fatalf("a failed Save wrote row %d", c.ID)
		}
	}
}

// TestSaveCopiesOfOneRow: two copies of one stored credential in one
// Save, the earlier with a new PIN, the later without one: the row ends
// as writing them in order would leave it, the later copy's fields with
// the earlier copy's PIN (not the one stored before the Save).
func TestSaveCopiesOfOneRow(t *testing.T) {
	t.Parallel()
	db, _ := openNew(t)
	ctx := context.Background()
	c := newCred("s1")
	c.PIN = "111111"
	if err := db.Save(ctx, []*reconcile.Credential{c}, nil); err != nil {
		t.Fatal(err)
	}
	a, b := *c, *c
	a.PIN = "222222"
	b.PIN, b.Status = "", reconcile.StatusActive
	if err := db.Save(ctx, []*reconcile.Credential{&a, &b}, nil); err != nil {
		t.Fatal(err)
	}
	all, _ := db.AllCredentials(ctx)
	if len(all) != 1 || all[0].Status != reconcile.StatusActive {
		t.Fatalf("rows: %+v", all)
	}
	if all[0].PIN.Reveal() != "222222" {
		t.Error("the stored PIN is not the earlier copy's new one")
	}
}

// TestSaveUnknownIDBeforeNewOnes: an id the file does not hold (a copy of
// a row since pruned) listed before a new credential that would take the
// same id fails the Save, and nothing is written: the new guest's row is
// never overwritten by the stale copy.
func TestSaveUnknownIDBeforeNewOnes(t *testing.T) {
	t.Parallel()
	db, _ := openNew(t)
	ctx := context.Background()
	if err := db.Save(ctx, []*reconcile.Credential{newCred("s1"), newCred("s2"), newCred("s3")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(ctx, `DELETE FROM credentials WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	stale := newCred("s3")
	stale.ID, stale.Status, stale.RoomID = 3, reconcile.StatusDeleted, "r999"
	fresh := newCred("new-guest")
	fresh.PIN = "424242"
	audit := []reconcile.Audit{{RunID: 1, System: reconcile.System3RPMS, Op: reconcile.OpCreate, Stay: fresh.Stay, Cred: fresh, Phase: reconcile.PhaseIntent}}
	for _, order := range [][]*reconcile.Credential{{stale, fresh}, {fresh, stale}} {
		err := db.Save(ctx, order, audit)
		if err == nil || !strings.Contains(err.Error(), "update credential 3 of stay") || !strings.Contains(err.Error(), "no such credential") {
			t.Fatalf("Save of an unknown id 3 beside a new credential: %v, want it named as no such credential", err)
		}
		if fresh.ID != 0 {
			t.Fatalf("failed Save gave the new credential id %d", fresh.ID)
		}
		if all, _ := db.AllCredentials(ctx); len(all) != 2 {
			t.Fatalf("failed Save wrote rows: %+v", all)
		}
	}
}

// TestCarryOver: two files' credentials, with the same ids in each, go into
// a new file with ids of its own; a key made from an invite names the
// invite's new id, the secrets open under the new rows, and each property
// takes its source's ReconciledAt; a property the file has live
// credentials of is refused (nothing written), another one comes in beside
// them.
func TestCarryOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	group := func(prop string) Carried {
		t.Helper()
		src, _ := openNew(t)
		other := newCred("s0")
		other.Stay.Property = prop
		invite := newCred("s1")
		invite.Stay.Property, invite.System, invite.Kind, invite.RemoteID = prop, reconcile.SystemOpenApp, reconcile.KindInvite, "inv-"+prop
		invite.Secret = reconcile.Secret("link-" + prop)
		if err := src.Save(ctx, []*reconcile.Credential{other, invite}, nil); err != nil {
			t.Fatal(err)
		}
		key := newCred("s1")
		key.Stay.Property, key.Status, key.RemoteID, key.DerivedFrom = prop, reconcile.StatusActive, "rak-"+prop, invite.ID
		key.PIN = reconcile.Secret("1234" + prop[:2])
		if err := src.Save(ctx, []*reconcile.Credential{key}, nil); err != nil {
			t.Fatal(err)
		}
		creds, err := src.Credentials(ctx, prop)
		if err != nil || len(creds) != 3 || creds[2].DerivedFrom != 2 {
			t.Fatalf("source file of %s: %+v, %v", prop, creds, err)
		}
		return Carried{Property: prop, ReconciledAt: t0.Add(time.Duration(len(prop)) * time.Hour), Credentials: creds, From: "/var/lib/keysync/" + prop + ".db"}
	}
	hotel, annex := group("hotel"), group("annex")
	db, _ := openNew(t)
	if err := db.CarryOver(ctx, t0, hotel, annex); err != nil {
		t.Fatal(err)
	}
	all, err := db.AllCredentials(ctx)
	if err != nil || len(all) != 6 {
		t.Fatalf("carried over %d credentials (%v), want 6", len(all), err)
	}
	byRemote := map[string]reconcile.Credential{}
	for _, c := range all {
		byRemote[c.RemoteID] = c
	}
	for _, rec := range []Carried{hotel, annex} {
		prop := rec.Property
		key, invite := byRemote["rak-"+prop], byRemote["inv-"+prop]
		if key.Stay.Property != prop || key.DerivedFrom != invite.ID || invite.ID == 0 {
			t.Errorf("%s: key %d derived from %d, want the invite's new id %d", prop, key.ID, key.DerivedFrom, invite.ID)
		}
		if key.PIN.Reveal() != "1234"+prop[:2] || invite.Secret.Reveal() != "link-"+prop {
			t.Errorf("%s: the secrets did not open under their new rows", prop)
		}
		if r := peekRecord(t, db.Path(), prop); !r.Marked || !r.At.Equal(rec.ReconciledAt) {
			t.Errorf("%s: record %+v, want marked at its source's %v", prop, r, rec.ReconciledAt)
		}
	}
	if hotel.Credentials[2].DerivedFrom != 2 || annex.Credentials[2].ID != 3 {
		t.Error("CarryOver changed the credentials it was given")
	}
	// The audit trail names each credential taken over, by its new id here
	// and its id in the file it came from.
	lines, err := db.AuditLog(ctx, 0)
	if err != nil || len(lines) != 6 {
		t.Fatalf("audit trail after carrying 6 credentials over: %d lines (%v), want 6", len(lines), err)
	}
	for i, a := range lines {
		c := all[i]
		want := fmt.Sprintf("taken over from /var/lib/keysync/%s.db, where it was credential %d", c.Stay.Property, i%3+1)
		if a.Op != OpCarryOver || a.Phase != reconcile.PhaseDone || a.CredentialID != c.ID || a.Stay != c.Stay || a.System != c.System || a.RemoteID != c.RemoteID || !a.At.Equal(t0) || a.Detail != want {
			t.Errorf("audit line %d: %+v, want %s done at %v on credential %d (%s, %s %s): %q", i, a, OpCarryOver, t0, c.ID, c.Stay, c.System, c.RemoteID, want)
		}
	}
	if err := db.CarryOver(ctx, t0, group("spa"), hotel); err == nil || !strings.Contains(err.Error(), "carry the record of hotel over into") || !strings.Contains(err.Error(), "records 3 live credentials of it already") {
		t.Errorf("carrying over a property the file has live credentials of: %v", err)
	}
	if all, _ := db.AllCredentials(ctx); len(all) != 6 {
		t.Errorf("the refused carry-over wrote: %d credentials", len(all))
	}
	// Another property comes in beside them, with ids after theirs.
	if err := db.CarryOver(ctx, t0, group("spa")); err != nil {
		t.Fatal(err)
	}
	spa, _ := db.Credentials(ctx, "spa")
	if len(spa) != 3 || spa[0].ID != 7 || spa[2].DerivedFrom != spa[1].ID {
		t.Errorf("spa carried over beside the others: %+v", spa)
	}
}

// TestPeek: a file that does not exist, is empty or has no schema yet
// knows no property; one a run read a property into knows it, marked with
// the read's time, which a later read never moves back; one from before
// reads were marked knows a property it completed a backfill of, or holds
// live credentials of, as of its last run.
func TestPeek(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for name, content := range map[string][]byte{"missing.db": nil, "empty.db": {}} {
		path := filepath.Join(dir, name)
		if content != nil {
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if r := peekRecord(t, path, "hotel"); r.Known {
			t.Errorf("%s knows hotel", name)
		}
	}
	db, path := openNew(t)
	record := func() (bool, bool, time.Time) {
		t.Helper()
		r := peekRecord(t, path, "hotel")
		return r.Known, r.Marked, r.At
	}
	if known, _, _ := record(); known {
		t.Error("a new file knows hotel")
	}
	if _, err := db.BeginRun(ctx, reconcile.ModeRun, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.Save(ctx, []*reconcile.Credential{newCred("s1")}, nil); err != nil {
		t.Fatal(err)
	}
	if known, marked, at := record(); !known || marked || !at.Equal(t0) {
		t.Errorf("with a live credential of hotel: known %v, marked %v, at %v; want known as of the last run, %v", known, marked, at, t0)
	}
	before := time.Now()
	if err := db.SaveStays(ctx, "hotel", nil); err != nil {
		t.Fatal(err)
	}
	known, marked, at := record()
	if !known || !marked || at.Before(before) || at.After(time.Now()) {
		t.Errorf("after a read: known %v, marked %v, at %v; want marked now", known, marked, at)
	}
	ahead := time.Now().Add(time.Hour)
	if err := db.CarryOver(ctx, t0, Carried{Property: "annex", ReconciledAt: ahead}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveStays(ctx, "annex", nil); err != nil {
		t.Fatal(err)
	}
	if at := peekRecord(t, path, "annex").At; !at.Equal(ahead) {
		t.Errorf("a read after a record carried from a clock an hour ahead moved its time to %v, want it kept at %v", at, ahead)
	}
}

// TestPeekBusy: a file another process holds (here a connection in
// exclusive locking mode, as a writer mid-recovery would) is read once it
// lets go within the busy timeout; held past it, Peek fails with ErrBusy,
// which callers take for "try again later", not for a foreign file.
func TestPeekBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	db.Close()
	hold := func() *sql.DB {
		t.Helper()
		other, err := sql.Open("sqlite", "file:"+path+"?_pragma=locking_mode(EXCLUSIVE)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		other.SetMaxOpenConns(1)
		if _, err := other.ExecContext(ctx, "INSERT OR REPLACE INTO meta (key, value) VALUES ('held', 'yes')"); err != nil {
			t.Fatal(err)
		}
		return other
	}
	other := hold()
	if _, err := Peek(ctx, path, 100*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Errorf("Peek of a held file: %v, want ErrBusy", err)
	}
	time.AfterFunc(200*time.Millisecond, func() { other.Close() })
	p, err := Peek(ctx, path, 10*time.Second)
	if err != nil {
		t.Fatalf("Peek of a file let go within the busy timeout: %v", err)
	}
	p.Close()
}

// peekRecord is the Record of property that Peek reads in the file at path.
func peekRecord(t *testing.T, path, property string) Record {
	t.Helper()
	p, err := Peek(context.Background(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := p.Record(context.Background(), property)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCarryOverReplaces: a property whose record here is older than the
// one carried has its live credentials replaced; the others stay.
func TestCarryOverReplaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	stale, kept, annex := newCred("s1"), newCred("s2"), newCred("a1")
	stale.RemoteID, kept.RemoteID, annex.Stay.Property = "rak-old", "rak-kept", "annex"
	created := reconcile.Audit{At: t0, System: reconcile.System3RPMS, Op: reconcile.OpCreate, Stay: kept.Stay, Cred: kept, RemoteID: "rak-kept", Phase: reconcile.PhaseDone}
	if err := db.Save(ctx, []*reconcile.Credential{stale, kept, annex}, []reconcile.Audit{created}); err != nil {
		t.Fatal(err)
	}
	fresh, still := *newCred("s1"), *newCred("s2")
	fresh.ID, fresh.RemoteID, fresh.Status = 41, "rak-new", reconcile.StatusActive
	still.ID, still.RemoteID, still.Status = 42, "rak-kept", reconcile.StatusActive
	if err := db.CarryOver(ctx, t0, Carried{Property: "hotel", ReconciledAt: t0, Credentials: []reconcile.Credential{fresh, still}, Replace: true, From: "other.db"}); err != nil {
		t.Fatal(err)
	}
	hotel, _ := db.Credentials(ctx, "hotel")
	if len(hotel) != 2 || hotel[0].RemoteID != "rak-new" || hotel[1].RemoteID != "rak-kept" {
		t.Errorf("hotel's record: %+v, want the carried credentials alone", hotel)
	}
	if a, _ := db.Credentials(ctx, "annex"); len(a) != 1 {
		t.Errorf("annex's record: %+v, want it kept", a)
	}
	lines, err := db.AuditLog(ctx, 0)
	if err != nil || len(lines) != 4 {
		t.Fatalf("audit trail: %+v (%v), want the create, the record replaced, then the credentials taken over", lines, err)
	}
	// The create of the key both records hold follows it to its new row.
	if a := lines[0]; a.Op != reconcile.OpCreate || a.CredentialID != hotel[1].ID {
		t.Errorf("the create's audit line: %+v, want it on credential %d, rak-kept's row now", a, hotel[1].ID)
	}
	if a := lines[1]; a.Op != OpCarryOver || a.Stay.Property != "hotel" || a.Stay.ID != "" || a.CredentialID != 0 ||
		a.Detail != "dropped the 2 live credentials recorded here: other.db read the property since, and its record is taken over" {
		t.Errorf("second audit line: %+v, want hotel's record replaced", a)
	}
	if a := lines[2]; a.Op != OpCarryOver || a.CredentialID != hotel[0].ID || a.Detail != "taken over from other.db, where it was credential 41" {
		t.Errorf("third audit line: %+v, want credential %d taken over", a, hotel[0].ID)
	}
}

// TestReleaseHeld: a property's live credentials that a holder records live
// under the same system and remote id, for the same stay, are released,
// with an audit line naming the holder; the rest (a key the holder records
// for another stay, say) and what another property holds are left;
// a dry run only counts; a property that had any released is no longer
// marked backfilled (renamed back, its first run claims and adopts).
func TestReleaseHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	cred := func(prop, stay, remote string, status reconcile.Status) *reconcile.Credential {
		c := newCred(stay)
		c.Stay.Property, c.Status, c.RemoteID = prop, status, remote
		return c
	}
	old := []*reconcile.Credential{
		cred("old", "s1", "rak-1", reconcile.StatusActive),
		cred("old", "s2", "rak-2", reconcile.StatusActive),
		cred("old", "s3", "rak-3", reconcile.StatusActive),
	}
	held := []*reconcile.Credential{
		cred("new", "s1", "rak-1", reconcile.StatusActive),
		cred("new", "s2", "rak-2", reconcile.StatusDeleted), // not live: not held
		cred("new", "s9", "rak-3", reconcile.StatusActive),  // another stay's
		cred("third", "s3", "rak-3", reconcile.StatusActive),
	}
	// A renamed property's new name claims and adopts what it takes over.
	for _, c := range held {
		c.Adopted = true
	}
	if err := db.Save(ctx, append(old, held...), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkBackfilled(ctx, "old", t0); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		if n, err := db.ReleaseHeld(ctx, "old", []string{"new"}, t0, dry); err != nil || n != 1 {
			t.Errorf("dry run %v: released %d (%v), want 1", dry, n, err)
		}
		if done, _ := db.Backfilled(ctx, "old"); done == !dry {
			t.Errorf("dry run %v: old marked backfilled %v", dry, done)
		}
	}
	creds, err := db.Credentials(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		want := reconcile.StatusActive
		if c.RemoteID == "rak-1" {
			want = reconcile.StatusReleased
		}
		if c.Status != want {
			t.Errorf("%s: %s, want %s", c.RemoteID, c.Status, want)
		}
	}
	hist, err := db.History(ctx, HistoryFilter{Stay: "s1"})
	if err != nil || !slices.ContainsFunc(hist, func(h HistoryRow) bool {
		return h.Op == reconcile.OpRelease && h.Stay.Property == "old" && strings.Contains(h.Detail, "property new holds it now")
	}) {
		t.Errorf("history of s1: %+v (%v), want the release", hist, err)
	}
	if done, _ := db.Backfilled(ctx, "old"); done {
		t.Error("old had a credential released, yet is still marked backfilled")
	}
	if n, err := db.ReleaseHeld(ctx, "old", []string{"new", "third"}, t0, false); err != nil || n != 1 {
		t.Errorf("released %d more (%v), want rak-3 alone", n, err)
	}
}

// TestCountAs: ledger rows recorded under an account's earlier name count
// under its name now, in Spent, SpentWrites and RequestTimes (what the
// budget and the pacers start from); the rows of other accounts and those
// without one are counted as before.
func TestCountAs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	old, cur, other := reconcile.NewAccount(reconcile.System3RPMS, "0ld0ld00"), reconcile.NewAccount(reconcile.System3RPMS, "c0ffee00"), reconcile.NewAccount(reconcile.System3RPMS, "07he7000")
	if err := db.Save(ctx, nil, nil,
		reconcile.RequestRecord{System: reconcile.System3RPMS, Account: old, At: now.Add(-3 * time.Minute), Write: true},
		reconcile.RequestRecord{System: reconcile.System3RPMS, Account: old, At: now.Add(-2 * time.Minute)},
		reconcile.RequestRecord{System: reconcile.System3RPMS, Account: cur, At: now.Add(-time.Minute), Write: true},
		reconcile.RequestRecord{System: reconcile.System3RPMS, Account: other, At: now.Add(-time.Minute)},
	); err != nil {
		t.Fatal(err)
	}
	db.CountAs(map[reconcile.Account]reconcile.Account{old: cur})
	since := now.Add(-time.Hour)
	spent, err := db.Spent(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	writes, err := db.SpentWrites(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	times, err := db.RequestTimes(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if spent[cur] != 3 || spent[other] != 1 || spent[old] != 0 || writes[cur] != 2 || len(times[cur]) != 3 || len(times[other]) != 1 || len(times[old]) != 0 {
		t.Errorf("spent %v, writes %v, times %v; want the earlier name's 2 requests (1 write) counted under the name now", spent, writes, times)
	}
}

// TestReleaseHeldOnlyWhatAHolderTookOver: a listed property's record of
// a credential it created itself, not one it claimed or adopted, is of a
// credential on its own systems: a removed property's record of the same
// system, remote id, stay and room (another hotel on a 3RPMS of its own,
// numbering its stays, rooms and keys alike) is of another credential,
// still live, and is not released.
func TestReleaseHeldOnlyWhatAHolderTookOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	removed := newCred("s1")
	removed.Stay.Property, removed.Status, removed.RemoteID = "annex", reconcile.StatusActive, "rak-1"
	own := newCred("s1")
	own.Stay.Property, own.Status, own.RemoteID = "hotel", reconcile.StatusActive, "rak-1"
	if err := db.Save(ctx, []*reconcile.Credential{removed, own}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := db.ReleaseHeld(ctx, "annex", []string{"hotel"}, t0, false); err != nil || n != 0 {
		t.Errorf("released %d (%v), want none: the hotel created its rak-1 itself", n, err)
	}
}

// TestReleased: the 3RPMS keys let go of while another stay held them are
// found by their remote id, with the stay they were issued for; a key
// still recorded live, deleted, of another property or system is not.
func TestReleased(t *testing.T) {
	t.Parallel()
	db, _ := openNew(t)
	ctx := context.Background()
	with := func(stay, remote string, status reconcile.Status, edit func(*reconcile.Credential)) *reconcile.Credential {
		c := newCred(stay)
		c.RemoteID, c.Status = remote, status
		if edit != nil {
			edit(c)
		}
		return c
	}
	creds := []*reconcile.Credential{
		with("A", "K1", reconcile.StatusReleased, nil),
		with("C", "K2", reconcile.StatusActive, nil),
		with("D", "K3", reconcile.StatusDeleted, nil),
		with("E", "K4", reconcile.StatusReleased, func(c *reconcile.Credential) { c.Stay.Property = "annex" }),
		with("F", "K5", reconcile.StatusReleased, func(c *reconcile.Credential) { c.System, c.Kind = reconcile.SystemKeyBox, reconcile.KindKeyBoxAccess }),
	}
	if err := db.Save(ctx, creds, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Released(ctx, "hotel", []string{"K1", "K2", "K3", "K4", "K5", "K9"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]reconcile.StayRef{"K1": {Property: "hotel", Source: reconcile.System3RPMS, ID: "A"}}
	if !maps.Equal(got, want) {
		t.Errorf("Released = %v, want %v", got, want)
	}
}
