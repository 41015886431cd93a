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

// ResendBudget is the re-send budget (purse.resends) of a batch of a property
// whose 3RPMS account has the allowance al, every request sent again
// carrying a revocation or not as revoke says, when a property sharing the
// account and priced after it plans revocations costing later requests.
// price prices that property: its revocations come off what is left.
func ResendBudget(al Allowance, revoke bool, later int) (spend func() bool, price func()) {
	s, price := ResendsOf(al, later)
	return func() bool { return s(revoke) }, price
}

// ResendsOf is ResendBudget's budget, asked at each request's priority.
func ResendsOf(al Allowance, later int) (spend func(revoke bool) bool, price func()) {
	acct := NewAccount(System3RPMS, "token")
	site := &Site{Accounts: map[System]Account{System3RPMS: acct}}
	u := &siteWork{site: site, prices: map[Priority]map[System]int{PriorityRevoke: {System3RPMS: later}}}
	w := &siteWork{site: site, after: []*siteWork{u}}
	p := &purse{allow: map[Account]allowance{acct: al}, priced: map[*siteWork]bool{w: true}}
	return p.resends(w, System3RPMS), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		al := p.allow[acct]
		al.Left -= later
		p.allow[acct] = al
		p.priced[u] = true
	}
}
