package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkOpen measures Open and Close of a new state file (every
// migration applied) and of one already up to date, the two opens every
// backfill and every run make.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	b.Run("new", func(b *testing.B) {
		dir := b.TempDir()
		for n := 0; b.Loop(); n++ {
			db, err := Open(ctx, filepath.Join(dir, fmt.Sprint(n, ".db")), Options{Create: true, Key: testKey})
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
	b.Run("current", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "state.db")
		db, err := Open(ctx, path, Options{Create: true, Key: testKey})
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
		for b.Loop() {
			db, err := Open(ctx, path, Options{Key: testKey})
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
}
