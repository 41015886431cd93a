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
	for _, c := range []struct {
		name     string
		failures []reconcile.Failure
		want     []string
		not      []string
	}{
		{"refused", []reconcile.Failure{refused}, []string{fix}, []string{retry, others}},
		{"transient", []reconcile.Failure{transient}, []string{retry}, []string{fix, others}},
		{"refused and transient", []reconcile.Failure{refused, transient}, []string{fix, others}, []string{retry}},
		{"unreachable and transient", []reconcile.Failure{unreachable, transient}, []string{"could not be reached", others}, []string{retry}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			printReport(&b, &reconcile.Report{Mode: reconcile.ModeRun, Now: t0, Failures: c.failures})
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
