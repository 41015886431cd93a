package reconcile

import (
	"strings"
)

// Account names a metered credential: what an API counts requests against
// and limits (a 3RPMS token, Guestway's partner key, the OpenApp API key,
// the key-box account). It is "system:name", where name identifies the
// credential without revealing it (cmd/keysync uses a short fingerprint).
// Each Account has its own pacer and its own daily budget; properties
// sharing a credential share both.
type Account string

// NewAccount returns the Account called name on a system.
func NewAccount(sys System, name string) Account {
	return Account(string(sys) + ":" + name)
}

// System is the system the Account belongs to.
func (a Account) System() System {
	sys, _, _ := strings.Cut(string(a), ":")
	return System(sys)
}

// AnyAccount is what the request ledger reports, under Store.Spent, for
// requests recorded before the ledger named accounts (state migration 0008)
// or without one: it is not known which credential of the system they
// were sent with, so each counts against every Account of that system. That
// is the conservative reading: it may defer work a day early, never let a
// credential's daily cap be overrun.
func AnyAccount(sys System) Account { return NewAccount(sys, "*") }

// SpentBy is how many of the ledger's requests count against a: its own
// and those of its system recorded without an account (AnyAccount).
func SpentBy(spent map[Account]int, a Account) int {
	return spent[a] + spent[AnyAccount(a.System())]
}
