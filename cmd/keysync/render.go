package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// printPlan renders a dry run's plan as a table for people. With
// showSecrets it shows the Guestway lock PINs the sources hold, and the
// PINs the plan drew for new keys only when the plan was saved (out, the
// file `keysync apply` issues them from); a plan not saved is thrown away
// with its PINs (a run draws its own), so they show as "generated when
// applied", never as a code a front desk could hand out.
func printPlan(w io.Writer, rep *reconcile.Report, showSecrets bool, out string) {
	fmt.Fprintf(w, "Plan at %s\n\n", rep.Now.Format(time.RFC3339))
	actions := rep.Actions()
	if len(actions) == 0 {
		printNothing(w, rep)
	} else {
		// A dry run's actions have no result, but for those the budget
		// defers or the fail-safe holds: a RESULT column says which.
		results := slices.ContainsFunc(actions, func(a reconcile.ActionReport) bool { return a.Result != "" })
		printActions(w, actions, showSecrets, out != "", results)
	}
	printNotes(w, rep.Notes(), showSecrets)
	printFailures(w, rep.Failures)
	printProblems(w, rep.Problems, nil) // a plan's notes above say which stays need a person
	fmt.Fprintf(w, "\nApplying this plan takes %d write request(s)", rep.PlannedRequests)
	if len(rep.Planned) > 1 {
		var parts []string
		for _, sys := range sortedKeys(rep.Planned) {
			parts = append(parts, fmt.Sprintf("%s %d", sys, rep.Planned[sys]))
		}
		fmt.Fprintf(w, ": %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, ".")
	printRequests(w, rep)
}

// printReport renders a run's report: what was done, what was not, and
// what it cost.
func printReport(w io.Writer, rep *reconcile.Report) {
	if rep.At.IsZero() {
		fmt.Fprintf(w, "Run #%d (%s) at %s\n\n", rep.RunID, rep.Mode, rep.Now.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "Run #%d (%s) at %s, of a plan made for %s\n\n", rep.RunID, rep.Mode, rep.At.Format(time.RFC3339), rep.Now.Format(time.RFC3339))
	}
	actions := rep.Actions()
	if len(actions) == 0 {
		printNothing(w, rep)
	} else {
		printActions(w, actions, false, false, true)
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SYSTEM\tACTION\tRESULT\tCOUNT")
		for _, c := range rep.Counts() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", c.System, c.Op, c.Result, c.N)
		}
		tw.Flush()
	}
	printNotes(w, rep.Notes(), false)
	printFailures(w, rep.Failures)
	printProblems(w, rep.Problems, rep.Attention())
	fmt.Fprintln(w)
	printRequests(w, rep)
	unreachable, refused, retried, transient := 0, 0, false, false
	for _, f := range rep.Failures {
		switch {
		case f.Persistent:
			// A read failing run after run: a problem for a person (Needs
			// a person says so), not a retry.
		case errors.Is(f.Cause, reconcile.ErrUnauthorized) || errors.Is(f.Cause, reconcile.ErrConfig):
			refused++
		case errors.Is(f.Cause, reconcile.ErrEndpoint) || errors.Is(f.Cause, reconcile.ErrUnreachable):
			unreachable++
		default:
			retried, transient = true, true
		}
	}
	for _, a := range actions {
		// As Report.Partial counts: a settled action is done, and one that
		// failed run after run is a problem for a person, not a retry.
		switch a.Result {
		case "", reconcile.ResultDone, reconcile.ResultSettled:
		default:
			retried = retried || !a.Persistent
		}
	}
	if refused > 0 {
		fmt.Fprintln(w, "A system refused a credential, or the config names something it does not have: fix the config field the error names; running again will not help until it is fixed.")
	}
	if unreachable > 0 {
		fmt.Fprintln(w, "A system could not be reached, or not at a path the config names: check the config field the error names; running again will not help until it is fixed.")
	}
	unsafe, stale := false, false
	for _, f := range rep.Failures {
		unsafe = unsafe || errors.Is(f.Cause, reconcile.ErrUnsafe)
		stale = stale || errors.Is(f.Cause, reconcile.ErrStalePlan)
	}
	switch {
	case stale:
		fmt.Fprintln(w, "The saved plan no longer holds: nothing was applied. Make and review a new plan (keysync plan --out FILE), then apply that.")
	case unsafe:
		fmt.Fprintln(w, "The fail-safe held a plan's withdrawals: the stays that would lose a credential keep what they hold, and the next run holds them too; the rest of the plan goes ahead (a saved plan's apply writes nothing). Check the source and the config; rerun with --force if those credentials really must go.")
	case retried && refused+unreachable == 0:
		fmt.Fprintln(w, "Some work was not done; the next run retries it.")
	case transient:
		fmt.Fprintln(w, "The other failures above are retried by the next run.")
	}
}

// printNothing says why a plan has no actions. "Nothing to do" is a claim
// that every stay holds the right key, true only when everything was read;
// with a failure (a source or a read-back that could not be read) the empty
// plan says nothing about the stays it could not see.
func printNothing(w io.Writer, rep *reconcile.Report) {
	if n := len(rep.Attention()) + len(rep.Problems); n > 0 && len(rep.Failures) == 0 {
		fmt.Fprintf(w, "Nothing keysync can do, but %d item(s) need a person (see Needs a person below).\n", n)
		return
	}
	if rep.DryRun && len(rep.Failures) == 0 {
		// A plan lists what needs a person among its notes.
		if n := len(slices.DeleteFunc(rep.Notes(), func(n reconcile.Note) bool { return !n.Attention })); n > 0 {
			fmt.Fprintf(w, "Nothing keysync can do, but %d item(s) need a person (the notes marked attention below).\n", n)
			return
		}
	}
	if len(rep.Failures) == 0 {
		fmt.Fprintln(w, "Nothing to do: every stay holds the right key.")
		return
	}
	fmt.Fprintf(w, "No changes planned, but %d part(s) could not be read (FAILED below): whether every stay holds the right key is not known.\n", len(rep.Failures))
}

// printActions shows each stay's bundle together (property, arrival, stay,
// then execution order); the JSON keeps execution order.
func printActions(w io.Writer, actions []reconcile.ActionReport, showSecrets, saved, results bool) {
	actions = slices.Clone(actions)
	slices.SortStableFunc(actions, func(a, b reconcile.ActionReport) int {
		return cmp.Or(strings.Compare(a.Stay.Property, b.Stay.Property), a.Arrival.Compare(b.Arrival),
			strings.Compare(a.Stay.ID, b.Stay.ID), a.Step-b.Step)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"PROPERTY", "STAY", "ROOM", "ARRIVAL", "DEPARTURE", "SYSTEM", "ACTION", "REASON"}
	if showSecrets {
		head = append(head, "PIN")
	}
	if results {
		head = append(head, "RESULT")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, a := range actions {
		row := []string{a.Stay.Property, a.Stay.ID, roomAndID(a.Room, a.RoomID), a.Arrival.String(), a.Departure.String(), string(a.System), string(a.Op), a.Reason}
		if showSecrets {
			pin := ""
			if a.Op == reconcile.OpCreate && a.Cred != nil && a.Cred.PIN != "" {
				pin = pinWhenApplied
				if saved && a.Result != reconcile.ResultDeferred {
					pin = a.Cred.PIN.Reveal()
				}
			}
			row = append(row, pin)
		}
		if results {
			r := string(a.Result)
			if a.Error != "" {
				r += ": " + a.Error
			}
			row = append(row, r)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// pinWhenApplied stands in a plan's PIN column for a PIN the run that
// applies the plan draws.
const pinWhenApplied = "generated when applied"

func printNotes(w io.Writer, notes []reconcile.Note, showSecrets bool) {
	if len(notes) == 0 {
		return
	}
	slices.SortStableFunc(notes, func(a, b reconcile.Note) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	fmt.Fprintf(w, "\nNotes (%d):\n", len(notes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tPROPERTY\tSTAY\tROOM\tARRIVAL\tDEPARTURE\tDETAIL")
	for _, n := range notes {
		detail := n.Detail
		if showSecrets && n.PIN != "" {
			detail += ": PIN " + n.PIN.Reveal()
		}
		kind := string(n.Kind)
		if n.Attention {
			kind += " (attention)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", kind, n.Stay.Property, n.Stay.ID, orDash(roomAndID(n.Room, n.RoomID)), dateOrDash(n.Arrival), dateOrDash(n.Departure), detail)
	}
	tw.Flush()
}

func printFailures(w io.Writer, failures []reconcile.Failure) {
	for _, f := range failures {
		if f.Property == "" { // the run as a whole (a saved plan refused)
			fmt.Fprintf(w, "\nFAILED: %s\n", f.Err)
			continue
		}
		if f.System == "" { // the property as a whole (a plan against an older record)
			fmt.Fprintf(w, "\nFAILED %s: %s\n", f.Property, f.Err)
			continue
		}
		fmt.Fprintf(w, "\nFAILED %s %s: %s\n", f.Property, f.System, f.Err)
	}
}

// printProblems lists what the next run will not fix by itself: actions
// failing run after run, properties removed from the config, and stays
// arriving soon that keysync cannot give its credential (notes marked
// attention).
func printProblems(w io.Writer, problems []reconcile.Problem, attention []reconcile.Note) {
	if len(problems)+len(attention) == 0 {
		return
	}
	fmt.Fprintf(w, "\nNeeds a person (%d):\n", len(problems)+len(attention))
	for _, n := range attention {
		if n.Arrival.IsZero() { // a stay whose room and dates could not be read
			fmt.Fprintf(w, "  %s stay %s: %s\n", n.Stay.Property, n.Stay.ID, n.Detail)
			continue
		}
		fmt.Fprintf(w, "  %s stay %s room %s (%s to %s): %s\n", n.Stay.Property, n.Stay.ID, roomAndID(n.Room, n.RoomID), n.Arrival, n.Departure, n.Detail)
	}
	for _, p := range problems {
		if p.Stay.ID == "" {
			fmt.Fprintf(w, "  %s: %s\n", p.Property, p.Detail)
			continue
		}
		fmt.Fprintf(w, "  %s stay %s room %s: %s\n", p.Property, p.Stay.ID, cmp.Or(p.Room, p.RoomID), p.Detail)
	}
}

// printRequests shows, per system, the requests sent (reads, writes, the
// most in any second) and what the plan priced, then the daily budget of
// each metered credential (named by its fingerprint and the properties
// using it, never by its value).
func printRequests(w io.Writer, rep *reconcile.Report) {
	if len(rep.Requests) == 0 && len(rep.Budget) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(rep.Requests) > 0 {
		fmt.Fprintln(tw, "SYSTEM\tREADS\tWRITES\tPRICED\tPEAK/S")
		for _, sys := range sortedKeys(rep.Requests) {
			c := rep.Requests[sys]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", sys, c.Reads, c.Writes, rep.Planned[sys], c.Peak)
		}
		tw.Flush()
	}
	if len(rep.Budget) > 0 {
		if len(rep.Requests) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(tw, "CREDENTIAL\tPROPERTIES\tUSED 24H\tLEFT\tDEFERRED")
		for _, acct := range sortedKeys(rep.Budget) {
			b := rep.Budget[acct]
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%d\n", acct, strings.Join(b.Properties, ","), b.UsedToday, b.Cap, b.Left, b.Deferred)
		}
		tw.Flush()
	}
	if n := len(rep.Deferred()); n > 0 {
		fmt.Fprintf(w, "%d action(s) deferred for lack of request budget; the next run does them first.\n", n)
	}
}

// dateOrDash is d, or "-" for the zero Date (a stay whose dates could not
// be read).
func dateOrDash(d reconcile.Date) string {
	if d.IsZero() {
		return "-"
	}
	return d.String()
}
