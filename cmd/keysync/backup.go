package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// backup writes a consistent copy of the state file. It reads one snapshot
// and takes no run lock, so it is safe while a run is writing.
func (env *environment) backup(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("backup", "usage: keysync backup --config FILE --to PATH\n\nexample: keysync backup --config /etc/keysync/keysync.yaml --to /var/backups/keysync-$(date +%F).db\n\nflags:\n")
	to := fs.String("to", "", "where to write the copy; must not exist (required)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *config == "" || *to == "" {
		return withCode(ExitConfig, errors.New("backup: --config FILE and --to PATH are required"))
	}
	cfg, db, _, err := env.openForReading(ctx, *config, "", sf)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := os.Stat(*to); err == nil {
		return withCode(ExitConfig, fmt.Errorf("backup: --to %s exists; choose another name or remove it first", *to))
	}
	if err := db.Backup(ctx, *to); err != nil {
		return withCode(ExitFailure, err)
	}
	fmt.Fprintf(env.stdout, "backed up %s to %s\n", cfg.State, *to)
	return nil
}
