package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// carryOver keeps a state file's record of each of its properties the
// newest there is, among the files of the deployment's layouts beside it
// (the configured state file and every shard file of every N; see
// layoutFiles), before a whole run plans against it.
//
// A property this file knows nothing of (a shard's new file after N
// changed, or a property that moved to this shard) takes over the record
// of the file that last read it (state.DB.CarryOver): a backfill reads
// back what guests hold, but 3RPMS hides a cancelled reservation's stays,
// so without the record the keys, invites and accesses of a booking
// cancelled around the move would stay valid to their end. A property
// this file knows, but another file read since (it moved away and came
// back), has its record here replaced by that one. The files beside are
// peeked at (state.Peek: no checks, no key; one being created or written
// by another shard is fine); only a file a record is taken from is opened
// in full, and one that cannot be stops the run (exit 2, naming it):
// carrying over less than the record would leave cancelled guests'
// credentials on.
//
// write false (a plan against the state file, which holds no lock) only
// checks: the properties run here whose newer record a run would take over
// are returned as stale, for the plan to say. What is taken over is in the
// audit trail, at now.
//
// It also returns, as quiet, the properties this file holds live
// credentials of that another shard keeps the record of (Config.owner: it
// runs them, or names the removed ones) in the directory the shards share:
// that shard takes the record over, so this one does not name them as
// removed. On a volume of its own (ownVolume), this shard goes on naming
// them: no one else can.
func carryOver(ctx context.Context, cfg *Config, store reconcile.Store, key *seal.Key, busy time.Duration, write bool, now time.Time, log *slog.Logger) (stale []staleRecord, quiet map[string]bool, err error) {
	db, ok := store.(*state.DB)
	if l, isLedgerless := store.(ledgerless); isLedgerless {
		db, ok, write = l.DB, true, false
	}
	if !ok {
		return nil, nil, nil
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
		return nil, nil, nil
	}
	var peeked []*state.Peeked
	defer func() {
		for _, p := range peeked {
			p.Close()
		}
	}()
	peek := func(path string) (*state.Peeked, error) {
		p, err := state.Peek(ctx, path, busy)
		if err != nil {
			return nil, withCode(ExitFailure, err)
		}
		peeked = append(peeked, p)
		return p, nil
	}
	here, err := peek(db.Path())
	if err != nil {
		return nil, nil, err
	}
	var others []*state.Peeked
	for _, path := range paths {
		p, err := peek(path)
		if errors.Is(err, state.ErrBusy) {
			// Another shard creating or writing it (shards start
			// together): not a foreign file, and the next run reads it.
			return nil, nil, withCode(ExitFailure, fmt.Errorf("%w; another shard is most likely opening or writing it: run again (the next run reads it)", err))
		}
		if err != nil {
			return nil, nil, withCode(ExitConfig, fmt.Errorf("%w; keysync reads the record of every layout beside the state file (other shards, other N): if it is not this deployment's, move it aside", err))
		}
		others = append(others, p)
	}
	full := map[string]*state.DB{} // the files records are taken from
	defer func() {
		for _, f := range full {
			f.Close()
		}
	}()
	if quiet, err = keptElsewhere(ctx, cfg, here, paths); err != nil {
		return nil, nil, err
	}
	names, err := recordsToKeep(ctx, cfg, append(others, here), paths)
	if err != nil {
		return nil, nil, err
	}
	var carry []state.Carried
	for _, name := range names {
		mine, err := here.Record(ctx, name)
		if err != nil {
			return nil, nil, withCode(ExitFailure, err)
		}
		var best *state.Peeked
		var newest state.Record
		for _, f := range others {
			r, err := f.Record(ctx, name)
			if err != nil {
				return nil, nil, withCode(ExitFailure, err)
			}
			if r.Newer(newest) {
				best, newest = f, r
			}
		}
		if best == nil || !newest.Newer(mine) {
			continue
		}
		listed := cfg.runs(name)
		if listed && !cfg.shard.on() {
			// The unsharded file of a deployment that runs in shards now
			// (an old timer left on): two owners of the property.
			return nil, nil, withCode(ExitConfig, fmt.Errorf("state: property %q was read since %s's last read of it, in %s: the state is kept per shard now; give the command its --shard I/N (or --shards N in an Indexed Job), and stop what runs keysync without it; to go back to one process, use --shard 0/1",
				name, db.Path(), best.Path()))
		}
		if !write {
			if listed {
				// A removed property's record changes nothing a plan
				// would do.
				stale = append(stale, staleRecord{property: name, from: best.Path()})
			}
			continue
		}
		src := full[best.Path()]
		if src == nil {
			if src, err = state.Open(ctx, best.Path(), state.Options{ReadOnly: true, Key: key, BusyTimeout: busy}); err != nil {
				return nil, nil, withCode(ExitConfig, fmt.Errorf("state: %s holds the newest record of property %q, which %s takes over, but cannot be read: %w; if it is not this deployment's, move it aside", best.Path(), name, db.Path(), err))
			}
			full[best.Path()] = src
		}
		creds, err := src.Credentials(ctx, name)
		if err != nil {
			return nil, nil, withCode(ExitFailure, err)
		}
		carry = append(carry, state.Carried{Property: name, ReconciledAt: newest.At, Credentials: creds, Replace: mine.Known, From: best.Path()})
		log.Info("taking over the record of a property from the state file that holds the newest", "property", name, "from", best.Path(), "credentials", len(creds), "replacing", mine.Known, "listed", listed)
		if other, ok := shardFileSpec(base, best.Path()); ok && mine.Known && cfg.shard.on() && other.Count != cfg.shard.Count {
			// This file knew the property, then another N's shard read it
			// later: N went back, or a timer of one of the two N is left
			// on, and the two take the record from each other every run.
			log.Warn("a shard of another number of shards read this property since this file did: expected once after going back to this N; if the deployment runs the other N, a timer or Job of this N is still on: stop it",
				"property", name, "shard", cfg.shard.String(), "read_since_by", other.String())
		}
	}
	if err := db.CarryOver(ctx, now, carry...); err != nil {
		return nil, nil, withCode(ExitFailure, err)
	}
	return stale, quiet, nil
}

// keptElsewhere names the properties here holds live credentials of that
// another shard keeps the record of, when the files beside show a
// directory the shards share (see carryOver and ownVolume).
func keptElsewhere(ctx context.Context, cfg *Config, here *state.Peeked, beside []string) (map[string]bool, error) {
	quiet := map[string]bool{}
	if !cfg.shard.on() || ownVolume(cfg, beside) {
		return quiet, nil
	}
	live, err := here.LiveProperties(ctx)
	if err != nil {
		return nil, withCode(ExitFailure, err)
	}
	for name := range live {
		if owner, _ := cfg.owner(name); !cfg.runs(name) && owner != cfg.shard {
			quiet[name] = true
		}
	}
	return quiet, nil
}

// heldAlone names, for a shard that runs no property, what it must still
// name as removed, on a volume of its own (ownVolume) where no other shard
// can see them: the live credentials its state file holds, and those of
// properties the config no longer lists that an earlier N's file of the
// same index holds there. Its run takes over their record and names them.
// In a directory the shards share, it names nothing: the shards that own
// those properties take their record over.
func heldAlone(ctx context.Context, cfg *Config, busy time.Duration) ([]string, error) {
	var beside []string
	for _, p := range layoutFiles(cfg.unsharded) {
		if p != cfg.State {
			beside = append(beside, p)
		}
	}
	if !ownVolume(cfg, beside) {
		return nil, nil
	}
	var files []*state.Peeked
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, path := range append(beside, cfg.State) {
		f, err := state.Peek(ctx, path, busy)
		if err != nil {
			return nil, withCode(ExitFailure, err)
		}
		files = append(files, f)
	}
	here := files[len(files)-1]
	live, err := here.LiveProperties(ctx)
	if err != nil {
		return nil, withCode(ExitFailure, err)
	}
	removed, err := recordsToKeep(ctx, cfg, files, beside)
	if err != nil {
		return nil, err
	}
	names := slices.Collect(maps.Keys(live))
	names = append(names, removed...)
	slices.Sort(names)
	return slices.Compact(names), nil
}

// ownVolume reports whether the shard's state files seem to be on a volume
// of the shard's own (shards-spread): every file of the layout beside its
// own is of the same index (an earlier N's). The configured state file, or
// another index's file, beside it shows a directory the shards share,
// where the shard that owns a property sees its record and takes it over.
func ownVolume(cfg *Config, beside []string) bool {
	if !cfg.shard.on() {
		return false
	}
	for _, p := range beside {
		if s, ok := shardFileSpec(cfg.unsharded, p); !ok || s.Index != cfg.shard.Index {
			return false
		}
	}
	return true
}

// staleRecord is a property whose newest record another state file holds,
// which a plan (that writes nothing) did not take over.
type staleRecord struct{ property, from string }

// recordsToKeep names the properties whose record this process keeps: its
// config's, and the properties the config no longer lists that one of
// files records live credentials of, so that their record follows them
// too and a person keeps being told of them after N changes, if this
// process names removed properties (Config.namesRemoved), or if the shard
// has a volume of its own (ownVolume), where the one that does cannot see
// them.
func recordsToKeep(ctx context.Context, cfg *Config, files []*state.Peeked, beside []string) ([]string, error) {
	var names []string
	listed := map[string]bool{}
	for _, p := range cfg.every() {
		listed[p.Name] = true
	}
	for _, p := range cfg.Properties {
		names = append(names, p.Name)
	}
	if !cfg.namesRemoved() && !ownVolume(cfg, beside) {
		return names, nil
	}
	removed := map[string]bool{}
	for _, f := range files {
		live, err := f.LiveProperties(ctx)
		if err != nil {
			return nil, withCode(ExitFailure, err)
		}
		for name := range live {
			if !listed[name] {
				removed[name] = true
			}
		}
	}
	return append(names, slices.Sorted(maps.Keys(removed))...), nil
}

// shardName is the I-of-N of a shard file's name (shardState).
var shardName = regexp.MustCompile(`^(0|[1-9][0-9]*)-of-([1-9][0-9]*)$`)

// layoutFiles returns the state files of the layouts of the configured
// state file base that exist: base itself and its shard files of every N
// (shardState's names; other names beside them, such as a file moved
// aside as keysync.shard-0-of-2-old.db, are not).
func layoutFiles(base string) []string {
	var out []string
	if _, err := os.Stat(base); err == nil {
		out = append(out, base)
	}
	for _, f := range shardFiles(base) {
		if _, ok := shardFileSpec(base, f); ok {
			out = append(out, f)
		}
	}
	return out
}

// shardFileSpec is the shard whose state file, beside the configured state
// file base, path is named (shardState's names); false for any other name.
func shardFileSpec(base, path string) (shardSpec, bool) {
	ext := filepath.Ext(base)
	m := shardName.FindStringSubmatch(strings.TrimSuffix(strings.TrimPrefix(path, strings.TrimSuffix(base, ext)+".shard-"), ext))
	if m == nil {
		return shardSpec{}, false
	}
	i, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	return shardSpec{Index: i, Count: n}, true
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
