// Package reconcile is the core of keysync: it knows what a stay, a
// credential, a plan and a run are, and nothing about HTTP, GraphQL or SQLite.
//
// A run reads stays from every StaySource, loads what keysync has issued from
// the Store, computes a Plan with the pure function Plan, and applies it
// through the Sink of each system, recording intent before every request and
// each action's outcome after it. Adapters in sources/, sinks/ and state/
// implement the small interfaces declared here; this package imports none of
// them.
package reconcile
