package main

import (
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// onlyAccount returns the entry of the one account of sys in m, failing
// the test unless there is exactly one.
func onlyAccount[V any](t *testing.T, m map[reconcile.Account]V, sys reconcile.System) V {
	t.Helper()
	var out V
	n := 0
	for acct, v := range m {
		if acct.System() == sys {
			out, n = v, n+1
		}
	}
	if n != 1 {
		t.Fatalf("%d accounts of %s in %v, want 1", n, sys, m)
	}
	return out
}

// systemSpent is the ledger's requests to sys, over all its accounts.
func systemSpent(m map[reconcile.Account]int, sys reconcile.System) int {
	n := 0
	for acct, v := range m {
		if acct.System() == sys {
			n += v
		}
	}
	return n
}
