package reconcile

// Test-only access to the request budgeting and batching the Runner does
// inside, and to rules the Runner applies, for the external tests.

// Allowance is allowance, for budget tests.
type Allowance = allowance

// Batch is batch, for batching tests.
type Batch = batch

// RepeatLimit is repeatLimit.
const RepeatLimit = repeatLimit

// Budget is budget.
func Budget(actions []*Action, allow map[System]Allowance, maxBatch func(System) int) ([]*Action, []deferral) {
	return budget(actions, allow, maxBatch)
}

// Batches is splitBatches.
func Batches(actions []*Action, maxBatch func(System) int) []Batch {
	return splitBatches(actions, maxBatch)
}

// Price is the number of requests applying the actions takes.
func Price(actions []*Action, maxBatch func(System) int) int {
	return len(splitBatches(actions, maxBatch))
}

// CheckRoomKeys is p.checkRoomKeys.
func CheckRoomKeys(p *Property, stays []Stay) error { return p.checkRoomKeys(stays) }

// DateChangeForTest is dateChange, for the table test.
var DateChangeForTest = dateChange

// Backfilled is backfilled.
func Backfilled(plan *PlanReport) bool { return backfilled(plan) }
