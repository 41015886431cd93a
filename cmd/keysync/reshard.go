package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// carryOver gives a shard's new state file what the files of an earlier
// layout knew of its properties (see state.DB.CarryOver). A backfill reads
// back what guests hold, but 3RPMS hides a cancelled reservation's stays:
// without the record, the keys, invites and accesses of a booking
// cancelled around a change of N would stay valid to their end.
//
// It acts only on a file with no credential and no run yet (the backfill
// that creates it, or a plan against a temporary one before it), of a
// shard. The earlier layouts are the configured state file (before
// sharding) and the shard files of every other N beside it. Of those that
// know a property, the one with the latest run gives its live
// credentials: the layout the property was last reconciled in. A file that cannot be read stops the run: carrying over
// less than the record would leave the cancelled guests' credentials on.
func carryOver(ctx context.Context, cfg *Config, store reconcile.Store, key *seal.Key, busy time.Duration, log *slog.Logger) error {
	db, ok := store.(*state.DB)
	if !ok || !cfg.shard.on() {
		return nil
	}
	if fresh, err := isFresh(ctx, db); err != nil || !fresh {
		return err
	}
	own := fmt.Sprintf("-of-%d", cfg.shard.Count)
	var sources []*layoutFile
	defer func() {
		for _, f := range sources {
			f.db.Close()
		}
	}()
	for _, path := range append([]string{cfg.unsharded}, shardFiles(cfg.unsharded)...) {
		if strings.Contains(path, own+".") || strings.HasSuffix(path, own) {
			continue // this layout's own files: other properties, or this one
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		old, err := state.Open(ctx, path, state.Options{ReadOnly: true, Key: key, BusyTimeout: busy})
		if err != nil {
			return withCode(ExitConfig, fmt.Errorf("carry the record of shard %s's properties over from %s: %w; if it is not this deployment's, move it aside", cfg.shard, path, err))
		}
		f := &layoutFile{path: path, db: old}
		sources = append(sources, f)
		if f.last, err = old.LastRunAt(ctx); err != nil {
			return withCode(ExitFailure, err)
		}
	}
	var groups [][]reconcile.Credential
	for _, p := range cfg.Properties {
		var from *layoutFile
		var creds []reconcile.Credential
		for _, f := range sources {
			done, err := f.db.Backfilled(ctx, p.Name)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			live, err := f.db.Credentials(ctx, p.Name)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			// A file knows the property once a backfill of it completed
			// there, or while it records live credentials of it (a
			// backfill cut short).
			if (done || len(live) > 0) && (from == nil || f.last.After(from.last)) {
				from, creds = f, live
			}
		}
		if len(creds) > 0 {
			groups = append(groups, creds)
			log.Info("carrying the record of a property over from the state file it was last reconciled in", "property", p.Name, "from", from.path, "credentials", len(creds))
		}
	}
	if err := db.CarryOver(ctx, groups...); err != nil {
		return withCode(ExitFailure, err)
	}
	return nil
}

// layoutFile is a state file of an earlier layout and its latest run.
type layoutFile struct {
	path string
	db   *state.DB
	last time.Time
}

// isFresh reports whether db records no credential and no run: a file
// just created.
func isFresh(ctx context.Context, db *state.DB) (bool, error) {
	last, err := db.LastRunAt(ctx)
	if err != nil || !last.IsZero() {
		return false, err
	}
	creds, err := db.AllCredentials(ctx)
	return len(creds) == 0, err
}

// shardedLayout is the error for a command without --shard on a deployment
// whose state is kept per shard: the configured state file does not exist
// and shard files do beside it. Creating it (a backfill, as the missing
// file would otherwise suggest) would give every property a second owner
// beside the shards' runs. nil when the layout is not that.
func (c *Config) shardedLayout() error {
	if c.shard.on() {
		return nil
	}
	if _, err := os.Stat(c.State); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	files := shardFiles(c.State)
	if len(files) == 0 {
		return nil
	}
	return fmt.Errorf("state: %s: %w, but the state is kept per shard beside it (%s): give the command its --shard I/N (or --shards N in an Indexed Job); to go back to one process, use --shard 0/1 (its backfill carries the shards' records over)",
		c.State, state.ErrNoState, strings.Join(files, ", "))
}
