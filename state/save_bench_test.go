package state

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// BenchmarkSave measures what apply asks of the state per batch: the
// intents of 100 new PIN keys (credential, sealed PIN, audit line), then
// their outcomes (each credential again, with an audit line). One state
// writer serves every property of a run, so this is the part of a
// portfolio's writes that does not run in parallel.
func BenchmarkSave(b *testing.B) {
	db := benchDB(b)
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		if err := saveBatch(db, fmt.Sprint(n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSaveConcurrent is BenchmarkSave from 25 properties at once, as
// a portfolio's applies call it: ns/op is per batch.
func BenchmarkSaveConcurrent(b *testing.B) {
	db := benchDB(b)
	b.ReportAllocs()
	b.SetParallelism(13) // 26 goroutines on 2 CPUs
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := saveBatch(db, fmt.Sprint(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchDB is a new state file for a benchmark.
func benchDB(b *testing.B) *DB {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "keysync.db"), Options{Create: true, Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// saveBatch saves the intents and then the outcomes of 100 new PIN keys.
func saveBatch(db *DB, n string) error {
	ctx := context.Background()
	const batch = 100
	creds := make([]*reconcile.Credential, batch)
	intent := make([]reconcile.Audit, batch)
	for i := range creds {
		c := newCred(fmt.Sprintf("s%s-%d", n, i))
		c.PIN = reconcile.Secret(testPIN)
		creds[i] = c
		intent[i] = reconcile.Audit{RunID: 1, At: t0, System: c.System, Op: reconcile.OpCreate, Stay: c.Stay, Cred: c, Phase: reconcile.PhaseIntent}
	}
	if err := db.Save(ctx, creds, intent); err != nil {
		return err
	}
	outcome := make([]reconcile.Audit, batch)
	for i, c := range creds {
		c.Status, c.RemoteID = reconcile.StatusActive, fmt.Sprintf("k%s-%d", n, i)
		outcome[i] = reconcile.Audit{RunID: 1, At: t0, System: c.System, Op: reconcile.OpCreate, Stay: c.Stay, Cred: c, RemoteID: c.RemoteID, Phase: reconcile.PhaseDone}
	}
	return db.Save(ctx, creds, outcome)
}
