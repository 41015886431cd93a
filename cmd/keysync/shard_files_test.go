package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestShardFilesBesideAnyStatePath: the shard files beside the configured
// state file are found whatever characters its directory or name hold,
// those a glob pattern reads as wildcards included ("[", "*", "?"), and
// only those beside it: not a file in another directory the pattern
// would also match. Before, a state path such as /data/keysync[prod]/
// keysync.db found no shard file at all, so an unsharded backfill beside
// the shards was not refused (every property got a second owner) and a
// change of N carried no record over; and one in /data/k*/ took the shard
// files of /data/kx/, another deployment's, for its own.
func TestShardFilesBesideAnyStatePath(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, dir := range []string{"plain", "keysync[prod]", "k*", "kx", "q?", "qx"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"keysync.shard-0-of-2.db", "keysync.shard-1-of-2.db"} {
			if err := os.WriteFile(filepath.Join(root, dir, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, dir := range []string{"plain", "keysync[prod]", "k*", "q?"} {
		state := filepath.Join(root, dir, "keysync.db")
		want := []string{filepath.Join(root, dir, "keysync.shard-0-of-2.db"), filepath.Join(root, dir, "keysync.shard-1-of-2.db")}
		if got := layoutFiles(state); !slices.Equal(got, want) {
			t.Errorf("state %s: layout files %q, want %q", state, got, want)
		}
		if got := shardFiles(state); !slices.Equal(got, want) {
			t.Errorf("state %s: shard files %q, want %q", state, got, want)
		}
	}
}
