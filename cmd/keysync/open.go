package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/state"
)

// stateAccess is how a command that operates on the record (status,
// history, show, check, backup, rekey) opens the state file.
type stateAccess struct {
	// write opens it for writing (check's ledger, rekey); a file with
	// sealed secrets then needs its key.
	write bool
	// secrets opens the sealed secrets (show --secrets): the key is
	// required. what names the command for the error.
	secrets bool
	what    string
	// key is the key to open with instead of the configured one (rekey's
	// old key).
	key *seal.Key
	// calls says the command calls the APIs (check): their credentials
	// must resolve. Every other command loads the config without them
	// (see withoutSecrets).
	calls bool
}

// readOnly reports whether the command only reads the record.
func (a stateAccess) readOnly() bool { return !a.write && !a.secrets && !a.calls && a.key == nil }

// stateFileExists reports whether a state file is at path.
func stateFileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// openForReading loads the config (narrowed to the shard sf names; nil for
// a command without shard flags) and opens the state file read-only, as
// status and history do. now is --now, or the clock's.
func (env *environment) openForReading(ctx context.Context, path, nowFlag string, sf *shardFlags) (*Config, *state.DB, time.Time, error) {
	return env.openStateFile(ctx, path, nowFlag, sf, stateAccess{})
}

// openForWriting is openForReading for a command that calls the APIs and
// records its requests in the ledger (check).
func (env *environment) openForWriting(ctx context.Context, path, nowFlag string, sf *shardFlags) (*Config, *state.DB, time.Time, error) {
	return env.openStateFile(ctx, path, nowFlag, sf, stateAccess{write: true, calls: true})
}

func (env *environment) openStateFile(ctx context.Context, path, nowFlag string, sf *shardFlags, access stateAccess) (*Config, *state.DB, time.Time, error) {
	now := env.now()
	if nowFlag != "" {
		t, err := time.Parse(time.RFC3339, nowFlag)
		if err != nil {
			return nil, nil, now, withCode(ExitConfig, fmt.Errorf("--now %q: want RFC 3339, like 2026-11-24T02:00:00+01:00", nowFlag))
		}
		now = t
	}
	cfg, err := env.commandConfig(path, sf, access.calls)
	if errors.Is(err, errEmptyShard) && access.readOnly() && stateFileExists(cfg.State) {
		// A shard that runs no property can still hold a file: its volume
		// held credentials that a run of it named. What it recorded is
		// read like any other shard's.
		err = nil
	}
	if err != nil {
		// An empty shard's config comes with the error, for a command
		// that has nothing to do there to say so.
		return cfg, nil, now, err
	}
	db, err := env.openStateDB(ctx, cfg, access)
	if err != nil {
		return nil, nil, now, err
	}
	return cfg, db, now, nil
}

// commandConfig loads the config of a command that operates on one state
// file: with shard flags, the shard's properties and its own state file,
// and a shard that holds none of them is an error (there is no state file
// to operate on). Unless calls is set the API credentials need not
// resolve (withoutSecrets).
func (env *environment) commandConfig(path string, sf *shardFlags, calls bool) (*Config, error) {
	if path == "" {
		return nil, withCode(ExitConfig, errors.New("--config FILE is required"))
	}
	getenv := env.getenv
	var unset []string
	if !calls {
		getenv = withoutSecrets(env.getenv, &unset)
	}
	cfg, spec, err := env.shardedConfig(path, sf, func(path string) (*Config, error) {
		cfg, err := LoadConfig(path, getenv)
		if err != nil {
			return nil, withCode(ExitConfig, err)
		}
		cfg.unset = unset
		// These commands take no --log-level: their warnings show at
		// KEYSYNC_LOG_LEVEL, else warn.
		if log, err := newLogger(env.stderr, cmp.Or(env.getenv("KEYSYNC_LOG_LEVEL"), "warn")); err == nil {
			warnConfig(path, cfg, log, env.now())
		}
		return cfg, nil
	})
	if err != nil {
		return nil, err
	}
	if spec.on() && len(cfg.Properties) == 0 {
		return cfg, withCode(ExitConfig, fmt.Errorf("shard %s %w", spec, errEmptyShard))
	}
	return cfg, nil
}

// errEmptyShard is a shard that holds none of the config's properties.
var errEmptyShard = errors.New("holds none of the config's properties")

// shardedConfig loads the config at path with load and narrows it to the
// shard sf names (none when sf is nil or names none; see applyShard).
func (env *environment) shardedConfig(path string, sf *shardFlags, load func(string) (*Config, error)) (*Config, shardSpec, error) {
	var spec shardSpec
	if sf != nil {
		var err error
		if spec, err = sf.resolve(env.getenv); err != nil {
			return nil, spec, withCode(ExitConfig, err)
		}
	}
	cfg, err := load(path)
	if err != nil {
		return nil, spec, err
	}
	if err := applyShard(cfg, spec); err != nil {
		return nil, spec, withCode(ExitConfig, fmt.Errorf("config %s: %w", path, err))
	}
	return cfg, spec, nil
}

// openStateDB opens cfg's state file as access says. A missing file, or a
// key that is missing or not the file's, is the config's to mend (exit 2);
// anything else (a damaged or busy file) is a failure (exit 1).
func (env *environment) openStateDB(ctx context.Context, cfg *Config, access stateAccess) (*state.DB, error) {
	opts := state.Options{ReadOnly: !access.write, BusyTimeout: env.stateBusy, Key: access.key, CountAs: cfg.renamedAccounts()}
	if opts.Key == nil && (access.write || access.secrets) {
		key, _, err := env.stateKey(cfg)
		switch {
		case err != nil && access.secrets:
			return nil, withCode(ExitConfig, fmt.Errorf("%s: %w", access.what, err))
		case err != nil && !errors.Is(err, seal.ErrNoKey):
			// A writing open of a file without sealed secrets needs none.
			return nil, withCode(ExitConfig, err)
		}
		opts.Key = key
	}
	db, err := state.Open(ctx, cfg.State, opts)
	switch {
	case errors.Is(err, state.ErrNoState):
		return nil, withCode(ExitConfig, cfg.noState(err))
	case errors.Is(err, seal.ErrNoKey), errors.Is(err, seal.ErrWrongKey):
		return nil, withCode(ExitConfig, err)
	case err != nil:
		return nil, withCode(ExitFailure, err)
	}
	return db, nil
}

// withoutSecrets is getenv for a command that calls no API (status,
// history, show, backup, rekey, schedule): a variable that is not set
// reads as a stand-in, so that a backup job, say, needs none of the API
// credentials; the names of those it stood in for go to unset. A
// credential named by a stand-in is not the real one, so its fingerprint
// (reconcile.Account) is not either: see Config.unset.
func withoutSecrets(getenv func(string) string, unset *[]string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		if !slices.Contains(*unset, k) {
			*unset = append(*unset, k)
		}
		return standIn + k
	}
}

// standIn starts the value withoutSecrets gives a variable that is not
// set; Validate does not check a credential's format on it.
const standIn = "unset:"
