// Package reconcile is the core of keysync: it knows what a stay, a
// credential, a plan and a run are, and nothing about HTTP, GraphQL or SQLite.
//
// A run reads stays from every StaySource, loads what keysync has issued from
// the Store, computes a Plan with the pure function Compute, keeps what the
// daily request budget allows, and applies that through the Sink of each
// system, recording intent before every request and each action's outcome
// after it. A plan is a value: budgeting and applying it change neither the
// plan nor its actions; what became of each action is in the Report
// (PlanReport), beside it. Adapters in sources/, sinks/ and state/ implement
// the small interfaces declared here; this package imports none of them.
package reconcile
