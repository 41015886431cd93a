package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// carryOver keeps a state file's record of each of its properties the
// newest there is, among the files of the deployment's layouts beside it
// (the configured state file and every shard file of every N; see
// layoutFiles), before a run plans against it.
//
// A property this file knows nothing of (a shard's new file after N
// changed, or a property that moved to this shard) takes over the record
// of the file that last reconciled it (state.DB.CarryOver): a backfill
// reads back what guests hold, but 3RPMS hides a cancelled reservation's
// stays, so without the record the keys, invites and accesses of a
// booking cancelled around the move would stay valid to their end. A
// property this file knows, but that another file reconciled later (this
// file is of a layout gone back to), stops the run: its record here is
// stale. A file that cannot be read stops the run too: carrying over less
// than the record would leave cancelled guests' credentials on.
//
// write false (a plan against the state file, which holds no lock) only
// checks: what a run would carry over is logged.
func carryOver(ctx context.Context, cfg *Config, store reconcile.Store, key *seal.Key, busy time.Duration, write bool, log *slog.Logger) error {
	db, ok := store.(*state.DB)
	if !ok {
		return nil
	}
	base := cfg.State
	if cfg.shard.on() {
		base = cfg.unsharded
	}
	var paths []string
	for _, p := range layoutFiles(base) {
		if p != cfg.State && p != db.Path() {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return nil
	}
	var others []*layoutFile
	defer func() {
		for _, f := range others {
			f.db.Close()
		}
	}()
	for _, path := range paths {
		old, err := state.Open(ctx, path, state.Options{ReadOnly: true, Key: key, BusyTimeout: busy})
		if err != nil {
			return withCode(ExitConfig, fmt.Errorf("state: %s beside %s: %w; keysync reads the record of every layout beside the state file (other shards, other N): if it is not this deployment's, move it aside", path, cfg.State, err))
		}
		f := &layoutFile{path: path, db: old}
		others = append(others, f)
		if f.lastRun, err = old.LastRunAt(ctx); err != nil {
			return withCode(ExitFailure, err)
		}
	}
	here := &layoutFile{path: db.Path(), db: db}
	var err error
	if here.lastRun, err = db.LastRunAt(ctx); err != nil {
		return withCode(ExitFailure, err)
	}
	var carry []state.Carried
	for _, p := range cfg.Properties {
		mine, err := here.record(ctx, p.Name)
		if err != nil {
			return withCode(ExitFailure, err)
		}
		var best *layoutFile
		var newest record
		for _, f := range others {
			r, err := f.record(ctx, p.Name)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if r.newer(newest) {
				best, newest = f, r
			}
		}
		switch {
		case best == nil:
		case mine.known:
			if newest.newer(mine) {
				return withCode(ExitConfig, fmt.Errorf("state: %s's record of property %q (%s) is older than %s's (%s): this file is of a layout the deployment has left since; move it aside, and `keysync backfill` carries the newer record over",
					db.Path(), p.Name, mine, best.path, newest))
			}
		case write:
			creds, err := best.db.Credentials(ctx, p.Name)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			carry = append(carry, state.Carried{Property: p.Name, ReconciledAt: newest.at, Credentials: creds})
			log.Info("carrying the record of a property over from the state file that last reconciled it", "property", p.Name, "from", best.path, "credentials", len(creds))
		default:
			log.Warn("this plan lacks the record of a property that another state file holds: a run or backfill carries it over first", "property", p.Name, "from", best.path)
		}
	}
	if err := db.CarryOver(ctx, carry...); err != nil {
		return withCode(ExitFailure, err)
	}
	return nil
}

// layoutFile is a state file of a layout and its latest run.
type layoutFile struct {
	path    string
	db      *state.DB
	lastRun time.Time
}

// record is what a file knows of a property and how recent it is: the
// time it last took in a read of it (marked), or, for a file from before
// that was recorded that completed a backfill of it or records live
// credentials of it, its latest run.
type record struct {
	known, marked bool
	at            time.Time
}

// record returns what f knows of property.
func (f *layoutFile) record(ctx context.Context, property string) (record, error) {
	at, err := f.db.ReconciledAt(ctx, property)
	if err != nil || !at.IsZero() {
		return record{known: true, marked: true, at: at}, err
	}
	done, err := f.db.Backfilled(ctx, property)
	if err != nil {
		return record{}, err
	}
	live, err := f.db.Credentials(ctx, property)
	if err != nil {
		return record{}, err
	}
	if done || len(live) > 0 {
		return record{known: true, at: f.lastRun}, nil
	}
	return record{}, nil
}

// newer orders records: a known one before none, a marked one (written by
// a run since reads are marked) before an unmarked one, then the later.
func (r record) newer(than record) bool {
	switch {
	case r.known != than.known:
		return r.known
	case r.marked != than.marked:
		return r.marked
	}
	return r.at.After(than.at)
}

func (r record) String() string {
	if !r.known {
		return "none"
	}
	s := "last read " + r.at.UTC().Format(time.RFC3339)
	if !r.marked {
		s = "last run " + r.at.UTC().Format(time.RFC3339)
	}
	return s
}

// layoutFiles returns the state files of the layouts of the configured
// state file base that exist: base itself and its shard files of every N
// (shardState's names; other names beside them, such as a file moved
// aside as keysync.shard-0-of-2-old.db, are not).
func layoutFiles(base string) []string {
	var out []string
	if _, err := os.Stat(base); err == nil {
		out = append(out, base)
	}
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + ".shard-"
	name := regexp.MustCompile(`^(0|[1-9][0-9]*)-of-([1-9][0-9]*)$`)
	for _, f := range shardFiles(base) {
		if name.MatchString(strings.TrimSuffix(strings.TrimPrefix(f, prefix), ext)) {
			out = append(out, f)
		}
	}
	return out
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
