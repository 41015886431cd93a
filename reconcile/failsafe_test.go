package reconcile

import (
	"slices"
	"testing"
)

// TestHoldWithdrawals: what the fail-safe holds of a plan it refused, and
// what goes ahead.
func TestHoldWithdrawals(t *testing.T) {
	ref := func(id string) StayRef { return StayRef{Property: "hotel", Source: System3RPMS, ID: id} }
	creds := map[string]*Credential{}
	cred := func(name string) *Credential {
		if creds[name] == nil {
			creds[name] = &Credential{RemoteID: name}
		}
		return creds[name]
	}
	act := func(name string, op Op, stay, c string) *Action {
		return &Action{Op: op, Stay: ref(stay), Cred: cred(c), Reason: name}
	}
	tests := []struct {
		name      string
		actions   func() []*Action
		withdrawn []string
		held      []string // the actions' names (Reason)
	}{
		{
			name: "nothing withdrawn",
			actions: func() []*Action {
				return []*Action{act("create a", OpCreate, "a", "ka"), act("revoke gone", OpRevoke, "gone", "kg")}
			},
		},
		{
			name: "a withdrawn stay's other work is held with it; departures and arrivals go ahead",
			actions: func() []*Action {
				return []*Action{
					act("revoke cancelled", OpRevoke, "cancelled", "old"),
					act("create cancelled's new", OpCreate, "cancelled", "new"),
					act("revoke gone", OpRevoke, "gone", "kg"),
					act("delete gone", OpDelete, "gone", "kg"),
					act("create arrives", OpCreate, "arrives", "ka"),
					act("assign arrives", OpAssign, "arrives", "ka"),
				}
			},
			withdrawn: []string{"old"},
			held:      []string{"revoke cancelled", "create cancelled's new"},
		},
		{
			name: "work linked to a held credential is held, and its stay's too",
			actions: func() []*Action {
				carrier := act("create b's key carrying a's code", OpCreate, "b", "kb")
				carrier.Upstream = cred("a-access")
				return []*Action{
					act("update a's access", OpUpdate, "a", "a-access"),
					act("revoke a's key", OpRevoke, "a", "a-key"),
					carrier,
					act("assign b's key", OpAssign, "b", "kb"),
					act("update b's invite", OpUpdate, "b", "b-invite"),
					act("create c", OpCreate, "c", "kc"),
				}
			},
			withdrawn: []string{"a-key"},
			held:      []string{"update a's access", "revoke a's key", "create b's key carrying a's code", "assign b's key", "update b's invite"},
		},
		{
			name: "every stay withdrawn: nothing goes ahead",
			actions: func() []*Action {
				return []*Action{act("revoke a", OpRevoke, "a", "ka"), act("revoke b", OpRevoke, "b", "kb")}
			},
			withdrawn: []string{"ka", "kb"},
			held:      []string{"revoke a", "revoke b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(creds)
			p := &Plan{Actions: tt.actions(), withdrawn: map[*Credential]bool{}}
			for _, c := range tt.withdrawn {
				p.withdrawn[cred(c)] = true
			}
			kept, held := holdWithdrawals(p)
			var names []string
			for _, a := range held {
				names = append(names, a.Reason)
			}
			if !slices.Equal(names, tt.held) {
				t.Errorf("held %q, want %q", names, tt.held)
			}
			if len(kept)+len(held) != len(p.Actions) {
				t.Errorf("kept %d and held %d of %d actions", len(kept), len(held), len(p.Actions))
			}
			for i := 1; i < len(kept); i++ {
				if slices.Index(p.Actions, kept[i-1]) > slices.Index(p.Actions, kept[i]) {
					t.Errorf("kept out of the plan's order")
				}
			}
		})
	}
}
