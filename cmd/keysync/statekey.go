package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keysync/keysync/internal/seal"
)

// stateKeyEnv names the environment variable that may hold the state key
// (64 hex digits).
const stateKeyEnv = "KEYSYNC_STATE_KEY"

// stateKeyCredential is the name of the state key among systemd's
// credentials ($CREDENTIALS_DIRECTORY).
const stateKeyCredential = "state-key"

// stateKey finds the key the state file's secrets are sealed under: the
// environment, then a systemd credential, then the config's
// state_key_file. where says which it was. A key found nowhere is an error
// wrapping seal.ErrNoKey that says where keysync looked.
func (env *environment) stateKey(cfg *Config) (key *seal.Key, where string, err error) {
	if text := env.getenv(stateKeyEnv); text != "" {
		k, err := seal.Parse(text)
		if err != nil {
			return nil, stateKeyEnv, fmt.Errorf("%s: %w", stateKeyEnv, err)
		}
		return k, stateKeyEnv, nil
	}
	if dir := env.getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		path := filepath.Join(dir, stateKeyCredential)
		if b, err := os.ReadFile(path); err == nil {
			// systemd makes credentials readable by the service alone,
			// whatever their mode bits say.
			k, err := seal.Parse(string(b))
			if err != nil {
				return nil, path, fmt.Errorf("state key credential %s: %w", path, err)
			}
			return k, path, nil
		}
	}
	k, err := seal.Load(cfg.StateKeyFile)
	if errors.Is(err, seal.ErrNoKey) {
		err = fmt.Errorf("%w: %s is unset and state_key_file %s does not exist; the state file's PINs, codes and invite tokens are sealed under it, so restore the key file from where it is backed up (a state file predating sealed secrets gets one from `keysync rekey --config FILE`)", err, stateKeyEnv, cfg.StateKeyFile)
	}
	return k, cfg.StateKeyFile, err
}
