package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// allowance is what one system's daily request budget still allows this
// run: Left requests, of which Reserve are kept for revocations and
// cleanup. A system without an allowance is unlimited.
type allowance struct {
	Left    int `json:"left"`
	Reserve int `json:"reserve"`
	// Kept is the part of the reserve no write has spent today: reads,
	// which are never deferred, do not take it from revocations, even
	// where they take the day past its cap (see purse.price).
	Kept int `json:"-"`
}

// ResultDeferred marks an action the request budget left for a later run.
const ResultDeferred Result = "deferred"

// deferral is an action the request budget left for a later run, and why.
type deferral struct {
	Action *Action
	// Why names the allowances the action's group did not fit in.
	Why string
}

// budget splits actions, in priority order, into those whose requests fit
// in each system's allowance and those deferred to a later run (by
// Priority: revocations and cleanup, arrivals within 24 hours, stays in
// house, later arrivals soonest first). Actions that depend on each other (a
// create and its assign; an invite or key-box access and the 3RPMS key
// carrying its secret) are kept or deferred together. Only revocations may
// use the reserve. kept keeps the order of actions. It is pure: neither
// the slice nor the actions are changed.
func budget(actions []*Action, allow map[System]allowance, maxBatch func(System) int) (kept []*Action, deferred []deferral) {
	return budgetAhead(actions, allow, maxBatch, nil)
}

// budgetAhead is budget keeping, besides the reserve, ahead(sys, p) of
// sys's allowance from every group of priority p: what the more urgent
// work of the properties budgeted after this one on the same account
// costs (purse.price), so that a short day goes to every property's
// revocations, then to every property's arrivals within 24 hours, and so
// on, whatever the config's order. A nil ahead keeps nothing more.
func budgetAhead(actions []*Action, allow map[System]allowance, maxBatch func(System) int, ahead func(System, Priority) int) (kept []*Action, deferred []deferral) {
	if len(allow) == 0 {
		return slices.Clone(actions), nil
	}
	units := budgetUnits(actions)
	// count[system][step] is how many kept actions go in that step's
	// requests; a system's price is the sum of ceil(count / max batch).
	count := map[System]map[int]int{}
	price := func(sys System) int {
		n, max := 0, maxBatch(sys)
		for _, c := range count[sys] {
			n += (c + max - 1) / max
		}
		return n
	}
	out := map[*Action]bool{}
	for _, u := range units {
		for _, a := range u.remote {
			if count[a.System] == nil {
				count[a.System] = map[int]int{}
			}
			count[a.System][a.Step]++
		}
		fits := true
		for _, sys := range u.systems {
			al, limited := allow[sys]
			if !limited {
				continue
			}
			limit := al.Left
			if u.priority != PriorityRevoke {
				limit -= al.Reserve
			}
			if ahead != nil {
				limit -= ahead(sys, u.priority)
			}
			if price(sys) > limit {
				fits = false
			}
		}
		if fits {
			continue
		}
		for _, a := range u.remote {
			count[a.System][a.Step]--
		}
		why := fmt.Sprintf("not enough of today's request budget left (%s)", u.budgetNote(allow))
		for _, a := range u.actions {
			out[a] = true
			deferred = append(deferred, deferral{Action: a, Why: why})
		}
	}
	kept = make([]*Action, 0, len(actions)-len(deferred))
	for _, a := range actions {
		if !out[a] {
			kept = append(kept, a)
		}
	}
	return kept, deferred
}

// priorityPrices is the requests, by priority and system, of the groups of
// actions of each priority budget orders them by, each priority batched
// alone (so never less than they take together).
func priorityPrices(actions []*Action, maxBatch func(System) int) map[Priority]map[System]int {
	by := map[Priority][]*Action{}
	for _, u := range budgetUnits(actions) {
		by[u.priority] = append(by[u.priority], u.actions...)
	}
	out := map[Priority]map[System]int{}
	for prio, acts := range by {
		out[prio] = requestsBySystem(acts, maxBatch)
	}
	return out
}

// unit is a group of actions kept or deferred together.
type unit struct {
	actions  []*Action
	remote   []*Action
	systems  []System
	priority Priority
	first    int
}

func (u *unit) budgetNote(allow map[System]allowance) string {
	var parts []string
	for _, sys := range u.systems {
		if al, ok := allow[sys]; ok {
			parts = append(parts, fmt.Sprintf("%s: %d left, %d reserved for revocations", sys, al.Left, al.Reserve))
		}
	}
	return strings.Join(parts, "; ")
}

// budgetUnits groups linked actions and orders the groups by priority,
// then plan order.
func budgetUnits(actions []*Action) []*unit {
	parent := make([]int, len(actions))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	byCred := map[*Credential]int{}
	for i, a := range actions {
		if j, ok := byCred[a.Cred]; ok {
			parent[find(i)] = find(j)
		} else {
			byCred[a.Cred] = i
		}
	}
	for i, a := range actions {
		for _, dep := range []*Credential{a.Upstream, a.After} {
			if j, ok := byCred[dep]; ok && dep != nil {
				parent[find(i)] = find(j)
			}
		}
	}
	byRoot := map[int]*unit{}
	var units []*unit
	for i, a := range actions {
		r := find(i)
		u := byRoot[r]
		if u == nil {
			u = &unit{priority: a.Priority, first: i}
			byRoot[r] = u
			units = append(units, u)
		}
		u.actions = append(u.actions, a)
		u.priority = min(u.priority, a.Priority)
		if a.Op.Remote() {
			u.remote = append(u.remote, a)
			if !slices.Contains(u.systems, a.System) {
				u.systems = append(u.systems, a.System)
			}
		}
	}
	slices.SortStableFunc(units, func(a, b *unit) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.first, b.first))
	})
	return units
}
