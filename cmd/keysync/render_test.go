package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestReportSaysWhatRetryingFixes: the report's last words say whether
// running again helps: not for a refused credential or a wrong URL (fix
// the field), yes for any other failure, and both in a run with both.
func TestReportSaysWhatRetryingFixes(t *testing.T) {
	t.Parallel()
	refused := reconcile.Failure{Property: "hotel", System: reconcile.System3RPMS, Err: "401", Cause: fmt.Errorf("read: %w", reconcile.ErrUnauthorized)}
	unreachable := reconcile.Failure{Property: "hotel", System: reconcile.SystemKeyBox, Err: "no route", Cause: fmt.Errorf("read: %w", reconcile.ErrUnreachable)}
	transient := reconcile.Failure{Property: "apartments", System: reconcile.SystemGuestway, Err: "503 Service Unavailable", Cause: errors.New("read: 503 Service Unavailable")}
	const fix, retry, others = "A system refused a credential", "Some work was not done; the next run retries it.", "The other failures above are retried by the next run."
	// acted is a plan of one 3RPMS delete that ended as res.
	acted := func(res reconcile.Result, persistent bool) []*reconcile.PlanReport {
		a := &reconcile.Action{System: reconcile.System3RPMS, Op: reconcile.OpDelete, Stay: reconcile.StayRef{Property: "hotel", Source: reconcile.System3RPMS, ID: "s1"}}
		return []*reconcile.PlanReport{{Property: "hotel", Actions: []reconcile.ActionReport{{Action: a, Result: res, Persistent: persistent}}}}
	}
	for _, c := range []struct {
		name     string
		failures []reconcile.Failure
		plans    []*reconcile.PlanReport
		want     []string
		not      []string
	}{
		{"refused", []reconcile.Failure{refused}, nil, []string{fix}, []string{retry, others}},
		{"transient", []reconcile.Failure{transient}, nil, []string{retry}, []string{fix, others}},
		{"refused and transient", []reconcile.Failure{refused, transient}, nil, []string{fix, others}, []string{retry}},
		{"unreachable and transient", []reconcile.Failure{unreachable, transient}, nil, []string{"could not be reached", others}, []string{retry}},
		{"an action failed", nil, acted(reconcile.ResultFailed, false), []string{retry}, []string{fix, others}},
		// Settled is done (the run exits 0), and an action failing run
		// after run is a problem for a person (exit 6): neither is retried.
		{"an action settled", nil, acted(reconcile.ResultSettled, false), nil, []string{retry, others}},
		{"an action failed run after run", nil, acted(reconcile.ResultFailed, true), nil, []string{retry, others}},
		{"a read failed run after run", []reconcile.Failure{{Property: "hotel", System: reconcile.System3RPMS, Err: "no room_stays", Read: true, Persistent: true}}, nil, nil, []string{retry, others}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			printReport(&b, &reconcile.Report{Mode: reconcile.ModeRun, Now: t0, Failures: c.failures, Plans: c.plans})
			for _, s := range c.want {
				if !strings.Contains(b.String(), s) {
					t.Errorf("no %q in:\n%s", s, b.String())
				}
			}
			for _, s := range c.not {
				if strings.Contains(b.String(), s) {
					t.Errorf("%q in:\n%s", s, b.String())
				}
			}
		})
	}
}
