package reconcile

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"
)

// Report is what a run did, for people (cmd renders it) and machines
// (--json). It holds no secrets: Secret fields marshal redacted.
type Report struct {
	RunID  int64     `json:"run_id,omitempty"`
	Mode   Mode      `json:"mode"`
	DryRun bool      `json:"dry_run"`
	Now    time.Time `json:"now"`
	// At is when the run acted (Options.At), where that differs from
	// the instant it planned at (apply of a saved plan).
	At time.Time `json:"at,omitzero"`
	// Plans holds each property's plan with what became of it.
	Plans []*PlanReport `json:"plans"`
	// PlannedRequests is the number of write requests the plans cost, and
	// Planned the same per system.
	PlannedRequests int            `json:"planned_write_requests"`
	Planned         map[System]int `json:"planned_write_requests_by_system,omitempty"`
	// Requests is what the adapters actually sent, per system.
	Requests map[System]RequestCount `json:"requests"`
	// Budget is the daily request budget of each budgeted Account (each
	// metered credential).
	Budget   map[Account]BudgetReport `json:"budget,omitempty"`
	Failures []Failure                `json:"failures"`
	// Problems need a person: actions that failed in this run and in each
	// of the runs before it (repeatLimit), which retrying alone has not
	// fixed, and properties removed from the config that still hold live
	// credentials. They do not make the run partial.
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is something the next run will not fix by itself.
type Problem struct {
	Kind     ProblemKind `json:"kind"`
	Property string      `json:"property"`
	System   System      `json:"system"`
	Op       Op          `json:"action"`
	Stay     StayRef     `json:"stay"`
	Room     string      `json:"room"`
	RoomID   string      `json:"room_id"`
	// Runs is how many runs in a row it failed, this one included.
	Runs   int    `json:"runs,omitempty"`
	Detail string `json:"detail"`
}

// ProblemKind classifies a Problem.
type ProblemKind string

// Problem kinds.
const (
	// ProblemRepeatedFailure: an action failed in this run and in each of
	// the repeatLimit runs before it.
	ProblemRepeatedFailure ProblemKind = "repeated_failure"
	// ProblemPropertyRemoved: the state holds live credentials of a
	// property the config no longer lists; keysync cannot reach its
	// systems, so nothing withdraws them.
	ProblemPropertyRemoved ProblemKind = "property_removed"
	// ProblemRepeatedReadFailure: a property's read failed in this whole
	// run and in each of the repeatLimit whole runs before it (a server
	// answering in a shape keysync cannot read, say): retrying has not
	// helped.
	ProblemRepeatedReadFailure ProblemKind = "repeated_read_failure"
)

// PlanReport is one property's plan and what became of it: each action
// beside its result, and the plan's notes followed by those applying it
// added. It marshals as the plan does, with each action's result, error
// and persistent flag in the action's object.
type PlanReport struct {
	Property string         `json:"property"`
	Now      time.Time      `json:"now"`
	Actions  []ActionReport `json:"actions"`
	Notes    []Note         `json:"notes"`
	// Live and Withdrawn are the plan's: what the fail-safe weighs.
	Live      int `json:"live_credentials"`
	Withdrawn int `json:"withdrawn_credentials"`
	// index finds an action's report.
	index map[*Action]int
}

// ActionReport is a planned action and what became of it.
type ActionReport struct {
	*Action
	// Result and Error say what became of the action: empty for an action
	// a dry run did not apply, ResultDeferred (also in a dry run) for one
	// the request budget left for a later run.
	Result Result `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	// Persistent marks a failure that also happened in each of the runs
	// before this one: a Problem for a person, not a partial run.
	Persistent bool `json:"persistent,omitempty"`
}

// newPlanReport returns the report of a plan none of whose actions has a
// result yet. It shares the plan's actions and copies its notes.
func newPlanReport(p *Plan) *PlanReport {
	// Empty, not nil: a property with nothing to do reads as [] in JSON.
	pr := &PlanReport{Property: p.Property, Now: p.Now, Notes: append([]Note{}, p.Notes...), Live: p.Live, Withdrawn: p.Withdrawn,
		Actions: make([]ActionReport, len(p.Actions)), index: make(map[*Action]int, len(p.Actions))}
	for i, a := range p.Actions {
		pr.Actions[i].Action = a
		pr.index[a] = i
	}
	return pr
}

// set records what became of one of the plan's actions. Calls for
// different actions may run concurrently.
func (pr *PlanReport) set(a *Action, r Result, err string) {
	ar := &pr.Actions[pr.index[a]]
	ar.Result, ar.Error = r, err
}

// Deferred returns the actions the request budget left for a later run.
func (r *Report) Deferred() []ActionReport {
	var out []ActionReport
	for _, a := range r.Actions() {
		if a.Result == ResultDeferred {
			out = append(out, a)
		}
	}
	return out
}

// Failure is a problem that kept a system or property from being
// reconciled this run.
type Failure struct {
	Property string `json:"property"`
	System   System `json:"system"`
	Err      string `json:"error"`
	// Read marks the failure of the property's read: nothing of it was
	// planned or applied.
	Read bool `json:"read,omitempty"`
	// Persistent marks a read that failed in this whole run and in each
	// of the whole runs before it (a ProblemRepeatedReadFailure): a
	// problem for a person, no longer a partial run.
	Persistent bool `json:"persistent,omitempty"`
	// Cause is the error itself, for errors.Is (ErrUnauthorized, say).
	Cause error `json:"-"`
}

// Actions returns every action of every plan with what became of it, in
// order.
func (r *Report) Actions() []ActionReport {
	var out []ActionReport
	for _, p := range r.Plans {
		out = append(out, p.Actions...)
	}
	return out
}

// Attention returns the notes marked attention of a run that applied its
// plans (none for a dry run): stays arriving within 24 hours, or in house,
// that keysync cannot give its credential. With Problems they are what
// needs a person (exit 6).
func (r *Report) Attention() []Note {
	if r.DryRun {
		return nil
	}
	var out []Note
	for _, n := range r.Notes() {
		if n.Attention {
			out = append(out, n)
		}
	}
	return out
}

// Notes returns every note of every plan.
func (r *Report) Notes() []Note {
	var out []Note
	for _, p := range r.Plans {
		out = append(out, p.Notes...)
	}
	return out
}

// Partial reports whether anything planned was left undone: a failed read,
// or an action that failed, was skipped, or has an unknown outcome, unless
// it is one of Problems (it has failed run after run, so retrying is not
// the answer). Such a run exits with the partial-failure code; the next run
// retries.
func (r *Report) Partial() bool {
	for _, f := range r.Failures {
		if !f.Persistent {
			return true
		}
	}
	for _, a := range r.Actions() {
		switch a.Result {
		case "", ResultDone, ResultSettled:
		default:
			if !a.Persistent {
				return true
			}
		}
	}
	return false
}

// Count is how many actions of one kind had one result.
type Count struct {
	System System `json:"system"`
	Op     Op     `json:"action"`
	Result Result `json:"result"`
	N      int    `json:"count"`
}

// Counts tallies the actions by system, operation and result.
func (r *Report) Counts() []Count {
	m := map[Count]int{}
	for _, a := range r.Actions() {
		m[Count{System: a.System, Op: a.Op, Result: a.Result}]++
	}
	out := make([]Count, 0, len(m))
	for c, n := range m {
		c.N = n
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.System, b.System), cmp.Compare(a.Op, b.Op), cmp.Compare(a.Result, b.Result))
	})
	return out
}

// RequestCount is how many requests were sent to a system, and the most
// sent in any one second.
type RequestCount struct {
	Reads  int `json:"reads"`
	Writes int `json:"writes"`
	// Peak is the highest number of requests in any 1-second window.
	Peak int `json:"peak_per_second"`
}

// BudgetReport is an Account's daily request budget around a run.
type BudgetReport struct {
	System System `json:"system"`
	// Properties are the properties of the run using the account.
	Properties []string `json:"properties,omitempty"`
	Cap        int      `json:"daily_cap"`
	// UsedToday counts the last 24 hours' requests, this run's included.
	UsedToday int `json:"used_24h"`
	Left      int `json:"left"`
	Reserve   int `json:"reserve_for_revocations"`
	Deferred  int `json:"deferred_actions"`
}

// Meter counts the requests every adapter sends and keeps them for the
// daily ledger. It is safe for concurrent use; adapters call Count once
// per HTTP request.
type Meter struct {
	// Clock stamps requests; nil means WallClock.
	Clock Clock
	mu    sync.Mutex
	// offset moves stamps into the run's timeline (a run with --now).
	offset   time.Duration
	counts   map[System]RequestCount
	accounts map[Account]int
	times    map[System][]time.Time
	pending  []RequestRecord
}

// Start aligns the meter with a run acting at now.
func (m *Meter) Start(now time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offset = now.Sub(m.clock().Now())
}

func (m *Meter) clock() Clock {
	if m.Clock == nil {
		return WallClock{}
	}
	return m.Clock
}

// Count records one request to a system, sent with the credential a.
func (m *Meter) Count(s System, a Account, write bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts, m.times, m.accounts = map[System]RequestCount{}, map[System][]time.Time{}, map[Account]int{}
	}
	m.accounts[a]++
	at := m.clock().Now().Add(m.offset)
	c := m.counts[s]
	if write {
		c.Writes++
	} else {
		c.Reads++
	}
	m.times[s] = append(m.times[s], at)
	c.Peak = PeakPerSecond(m.times[s])
	m.counts[s] = c
	m.pending = append(m.pending, RequestRecord{System: s, Account: a, At: at, Write: write})
}

// PeakPerSecond is the most of times (in order) in any 1-second window
// [t, t+1s): the report's peak, and the bench's.
func PeakPerSecond(times []time.Time) int {
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= time.Second {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// drain returns the requests not yet written to the ledger.
func (m *Meter) drain() []RequestRecord {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.pending
	m.pending = nil
	return out
}

// byAccount returns the requests counted so far per account.
func (m *Meter) byAccount() map[Account]int {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.accounts)
}

// countOf returns the requests counted so far with account a.
func (m *Meter) countOf(a Account) int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accounts[a]
}

// Snapshot returns the counts so far.
func (m *Meter) Snapshot() map[System]RequestCount {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[System]RequestCount, len(m.counts))
	for s, c := range m.counts {
		out[s] = c
	}
	return out
}
