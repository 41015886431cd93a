package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version prints what keysync was built from, as the Go toolchain recorded
// it: the module version, the VCS revision and time, and the Go version.
func (env *environment) version(_ context.Context, args []string) error {
	fs := env.flagSet("version", "usage: keysync version\n\nPrints what the binary was built from: module version, VCS revision and time, Go.\n\nexample: keysync version\n")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(env.stdout, "keysync (no build information)")
		return nil
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "unknown"
	} else if settings["vcs.modified"] == "true" {
		rev += " (modified)"
	}
	fmt.Fprintf(env.stdout, "keysync %s\nrevision %s", bi.Main.Version, rev)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(env.stdout, " from %s", t)
	}
	fmt.Fprintf(env.stdout, "\n%s %s/%s\n", bi.GoVersion, settings["GOOS"], settings["GOARCH"])
	return nil
}
