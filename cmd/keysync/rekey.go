package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/state"
)

// rekey seals every secret in the state file under a new key: under the run
// lock, the new key is written to PATH.new, every value is opened with the
// old key and sealed with the new one in one transaction, and only then
// does the new key file take the old one's place (the old one kept as
// PATH.old-KEYID, which backups taken before the rekey need). A failure before
// the commit leaves the state file and the old key as they were.
func (env *environment) rekey(ctx context.Context, args []string) error {
	fs := env.flagSet("rekey", "usage: keysync rekey --config FILE [--new-key-file PATH]\n\nexample: keysync rekey --config /etc/keysync/keysync.yaml\n\nflags:\n")
	config := fs.String("config", "", "config file (required)")
	newKeyFile := fs.String("new-key-file", "", "where to write the new key (default: the config's state_key_file)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	cfg, err := env.commandConfig(*config, nil, false)
	if err != nil {
		return err
	}
	target := *newKeyFile
	if target == "" {
		target = cfg.StateKeyFile
	}
	if shards := shardFiles(cfg.State); len(shards) > 0 {
		return withCode(ExitConfig, fmt.Errorf("rekey: the shards' state files %s are sealed under the same key as %s: rekeying one file would leave the others under a key moved aside, and their runs would stop with exit 2; give each shard a config of its own with its own state_key_file, and rekey each (README, Secrets); files of a number of shards no longer in use can be moved away instead",
			strings.Join(shards, ", "), cfg.State))
	}
	// A missing old key is fine only for a state file without sealed
	// secrets (one from before they were sealed): opening it says so.
	old, where, err := env.stateKey(cfg)
	if err != nil && !errors.Is(err, seal.ErrNoKey) {
		return withCode(ExitConfig, err)
	}
	lock, err := state.Lock(cfg.State)
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return withCode(ExitLocked, err)
		}
		return withCode(ExitFailure, err)
	}
	defer lock.Unlock()
	db, err := env.openStateDB(ctx, cfg, stateAccess{write: true, key: old})
	if err != nil {
		return err
	}
	defer db.Close()

	pending := target + ".new"
	next, err := seal.Create(pending)
	if err != nil {
		return withCode(ExitFailure, fmt.Errorf("rekey: %w (a %s left by an earlier rekey that failed can be removed)", err, pending))
	}
	n, err := db.Rekey(ctx, next)
	if err != nil {
		os.Remove(pending)
		return withCode(ExitFailure, fmt.Errorf("rekey: %w; nothing was changed", err))
	}
	// The key moved aside is named by its id, so a second rekey never
	// overwrites the key the backups from before the first one need.
	aside := ""
	if _, err := os.Stat(target); err == nil {
		aside = target + ".old"
		if k, err := seal.Load(target); err == nil {
			aside = target + ".old-" + k.ID()
		}
		if err := os.Rename(target, aside); err != nil {
			return withCode(ExitFailure, fmt.Errorf("rekey: the state file is sealed under the key in %s, but %s could not be moved aside: %w; move it, then rename %s to %s", pending, target, err, pending, target))
		}
	}
	if err := os.Rename(pending, target); err != nil {
		return withCode(ExitFailure, fmt.Errorf("rekey: the state file is sealed under the key in %s, but it could not be renamed: %w; rename it to %s", pending, err, target))
	}
	fmt.Fprintf(env.stdout, "sealed %d secrets under the new key %s in %s\n", n, next.ID(), target)
	if old != nil {
		if aside != "" {
			fmt.Fprintf(env.stdout, "the key that was in %s is now in %s: backups of the state file taken before now need the key they were sealed under\n", target, aside)
		}
		if where != target {
			fmt.Fprintf(env.stdout, "the previous key %s came from %s, which still holds it: point keysync at the new key (state_key_file: %s in the config, or put it in %s); until then every command that writes stops with exit 2\n", old.ID(), where, target, where)
		}
	}
	return nil
}
