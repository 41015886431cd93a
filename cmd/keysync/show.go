package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/keysync/keysync/reconcile"
)

// show is the front desk's view of one stay: its credentials on every
// system, their windows and states and, with --secrets, the PIN, code or
// invite token each one carries (the only place besides plan's
// --show-secrets that prints them).
func (env *environment) show(ctx context.Context, args []string) error {
	fs, config, sf := env.stateFlagSet("show", "usage: keysync show --config FILE --stay ID [--secrets]\n\nexample: keysync show --config /etc/keysync/keysync.yaml --stay rs_12 --secrets\n\nflags:\n")
	stay := fs.String("stay", "", "the stay's id in its source (required)")
	secrets := fs.Bool("secrets", false, "also print each credential's PIN, key-box code or invite token")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *config == "" || *stay == "" {
		return withCode(ExitConfig, errors.New("show: --config FILE and --stay ID are required"))
	}
	cfg, db, _, err := env.openStateFile(ctx, *config, "", sf, stateAccess{secrets: *secrets, what: "show --secrets"})
	if err != nil {
		return err
	}
	defer db.Close()
	all, err := db.AllCredentials(ctx)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	head := "PROPERTY\tSYSTEM\tKIND\tREMOTE ID\tSTATUS\tASSIGNED\tROOM\tWINDOW"
	if *secrets {
		head += "\tSECRET"
	}
	fmt.Fprintln(tw, head)
	n := 0
	for _, c := range all {
		if c.Stay.ID != *stay {
			continue
		}
		n++
		loc := cfg.zone(c.Stay.Property)
		window := c.Arrival.String() + " – " + c.Departure.String()
		if !c.Valid.Start.IsZero() {
			window = c.Valid.Start.In(loc).Format("2006-01-02 15:04") + " – " + c.Valid.End.In(loc).Format("2006-01-02 15:04 MST")
		}
		assigned := "-"
		if c.System == reconcile.System3RPMS {
			assigned = fmt.Sprint(c.Assigned)
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", c.Stay.Property, c.System, c.Kind, orDash(c.RemoteID), c.Status, assigned, orDash(c.RoomID), window)
		if *secrets {
			row += "\t" + orDash(secretShown(c).Reveal())
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
	if n == 0 {
		fmt.Fprintf(env.stdout, "no credentials recorded for stay %s\n", *stay)
	}
	return nil
}

// secretShown is what the guest uses of a credential: a key's PIN (or
// key-box code), an access's code, an invite's token.
func secretShown(c reconcile.Credential) reconcile.Secret {
	if c.PIN != "" {
		return c.PIN
	}
	return c.Secret
}
