package reconcile_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// tonight is the default run instant: 22:00 in Ljubljana, a nightly run.
var tonight = ljAt("2026-06-10", 22, 0)

const (
	active  = reconcile.StatusActive
	pending = reconcile.StatusPending
)

// planCase is one scenario for Compute.
type planCase struct {
	name     string
	now      time.Time // zero means tonight
	prop     func(*reconcile.Property)
	stays    []reconcile.Stay
	creds    []reconcile.Credential
	backfill bool
	held     map[reconcile.StayRef][]reconcile.Held
	carries  map[int64]string
	// unreadable is Input.Unreadable.
	unreadable map[reconcile.StayRef]reconcile.Stay
	// lent is Input.Lent.
	lent  map[string]reconcile.StayRef
	want  []string // summary lines
	notes []string // noteSummary lines
	sync  []string // remote ids of credentials recorded as assigned ("ID off": as unassigned)
}

// compute runs Compute for a case with a fixed PIN stream and checks the
// invariants every plan must keep.
func (tc planCase) compute(t *testing.T) *reconcile.Plan {
	t.Helper()
	prop := testProperty()
	if tc.prop != nil {
		tc.prop(prop)
	}
	now := tc.now
	if now.IsZero() {
		now = tonight
	}
	plan, err := reconcile.Compute(reconcile.Input{
		Now: now, Property: prop, Stays: tc.stays, Credentials: tc.creds,
		Backfill: tc.backfill, Held: tc.held, KeyCarries: tc.carries, Unreadable: tc.unreadable, Lent: tc.lent, Rand: seeded(1),
	})
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	checkPlan(t, prop, plan)
	return plan
}

// checkPlan asserts what holds for every plan: steps in order; a 3RPMS
// create paired with an assign of the same credential one step later; a
// generated PIN that follows the policy; a derived key created the step
// after its upstream credential; time-bound creates carrying their window.
func checkPlan(t *testing.T, prop *reconcile.Property, plan *reconcile.Plan) {
	t.Helper()
	if !slices.IsSortedFunc(plan.Actions, func(a, b *reconcile.Action) int { return a.Step - b.Step }) {
		t.Errorf("actions not ordered by step: %q", summary(plan))
	}
	for i, a := range plan.Actions {
		if a.Cred == nil || a.System != a.Cred.System {
			t.Errorf("action %d %q: system %q, cred %v", i, summary(plan)[i], a.System, a.Cred)
		}
		if a.Op != reconcile.OpCreate {
			continue
		}
		if a.Cred.Status != pending || a.Cred.RemoteID != "" {
			t.Errorf("create for %s: status %q, remote id %q", a.Stay.ID, a.Cred.Status, a.Cred.RemoteID)
		}
		if a.System != reconcile.System3RPMS {
			if a.Window == nil || a.Step != 1 || a.Cred.Valid != *a.Window {
				t.Errorf("%s create for %s: step %d, window %v, recorded %v", a.System, a.Stay.ID, a.Step, a.Window, a.Cred.Valid)
			}
			continue
		}
		if a.Upstream == nil {
			pin := a.Cred.PIN.Reveal()
			if len(pin) != prop.PIN.Length || strings.Trim(pin, prop.PIN.Alphabet) != "" || !reconcile.ValidPIN(pin) {
				t.Errorf("create for %s: PIN %q does not follow the policy", a.Stay.ID, pin)
			}
			// Step 1, or 2 beside the derived keys when the plan has any.
			want := 1
			if slices.ContainsFunc(plan.Actions, func(b *reconcile.Action) bool { return b.Upstream != nil }) {
				want = 2
			}
			if a.Step != want {
				t.Errorf("create for %s: step %d, want %d", a.Stay.ID, a.Step, want)
			}
		} else {
			upStep := 0
			for _, b := range plan.Actions {
				if b.Op == reconcile.OpCreate && b.Cred == a.Upstream {
					upStep = b.Step
				}
			}
			// A kept upstream whose secret the state holds is not created
			// again: the key is written from it at step 1.
			kept := upStep == 0 && a.Upstream.RemoteID != "" && a.Upstream.Secret != "" && (a.Step == 1 || a.Step == 2)
			if a.Cred.PIN != "" || (!kept && (upStep == 0 || a.Step != upStep+1)) {
				t.Errorf("derived create for %s: step %d, upstream created at step %d, PIN set %v", a.Stay.ID, a.Step, upStep, a.Cred.PIN != "")
			}
		}
		paired := slices.ContainsFunc(plan.Actions, func(b *reconcile.Action) bool {
			return b.Op == reconcile.OpAssign && b.Cred == a.Cred && b.Step == a.Step+1
		})
		if !paired {
			t.Errorf("create for %s has no assign of the same credential one step later", a.Stay.ID)
		}
	}
}

func TestCompute(t *testing.T) {
	t.Parallel()
	tests := []planCase{
		{
			name:  "new arrival tomorrow: create then assign, arriving soon",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			want:  []string{"1 create s1 - soon", "2 assign s1 - soon"},
		},
		{
			name:  "new arrival in four days: later arrival",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-14", "2026-06-16")},
			want:  []string{"1 create s1 - later", "2 assign s1 - later"},
		},
		{
			name:  "arrival on the window's last day is issued",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-16", "2026-06-18")},
			want:  []string{"1 create s1 - later", "2 assign s1 - later"},
		},
		{
			name:  "window start (13:00) exactly 24 h away is soon",
			now:   ljAt("2026-06-10", 13, 0),
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			want:  []string{"1 create s1 - soon", "2 assign s1 - soon"},
		},
		{
			name:  "window start a minute more than 24 h away is later",
			now:   ljAt("2026-06-10", 12, 59),
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			want:  []string{"1 create s1 - later", "2 assign s1 - later"},
		},
		{
			name:  "in house without a key",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-09", "2026-06-12")},
			want:  []string{"1 create s1 - inhouse", "2 assign s1 - inhouse"},
		},
		{
			name:  "window started at 13:00: in house",
			now:   ljAt("2026-06-11", 13, 0),
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			want:  []string{"1 create s1 - inhouse", "2 assign s1 - inhouse"},
		},
		{
			name:  "holding our key: converged",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-11", "2026-06-14"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14")},
		},
		{
			name:  "holding our key recorded unassigned: record synced, no action",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-11", "2026-06-14"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14")},
			sync:  []string{"K1"},
		},
		{
			name:  "created but not assigned (crash between steps): assign in step 1",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14")},
			want:  []string{"1 assign s1 K1 soon"},
		},
		{
			name:  "recorded assigned but the stay shows no key: assign again",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-09", "2026-06-14")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-09", "2026-06-14")},
			want:  []string{"1 assign s1 K1 inhouse"},
			sync:  []string{"K1 off"},
		},
		{
			name:  "create outcome unknown: abandon and issue afresh",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			creds: []reconcile.Credential{cred("s1", "r204", "", pending, false, "2026-06-11", "2026-06-14")},
			want:  []string{"1 abandon s1 - revoke", "1 create s1 - soon", "2 assign s1 - soon"},
		},
		{
			name:  "two spares: the first is assigned, the other deleted",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
			creds: []reconcile.Credential{
				cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14"),
				cred("s1", "r204", "K2", active, false, "2026-06-11", "2026-06-14"),
			},
			want: []string{"1 delete s1 K2 revoke", "1 assign s1 K1 soon"},
		},
		{
			name:  "holding our key plus a spare: spare deleted",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-11", "2026-06-14"), "K1", "385917")},
			creds: []reconcile.Credential{
				cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14"),
				cred("s1", "r204", "K2", active, false, "2026-06-11", "2026-06-14"),
			},
			want: []string{"1 delete s1 K2 revoke"},
		},
		{
			name:  "departed (after 11:00 + 2 h): revoke and delete",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
			want:  []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
		},
		{
			name:  "departed exactly at the window's end",
			now:   ljAt("2026-06-10", 13, 0),
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
			want:  []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
		},
		{
			name:  "departure day within grace: nothing",
			now:   ljAt("2026-06-10", 12, 59),
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
		},
		{
			name:  "departed holding another integration's key: delete our spare only",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "X9", "582039")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-07", "2026-06-10")},
			want:  []string{"1 delete s1 K1 revoke"},
		},
		{
			// The read shows no key (a revoke whose answer was lost, or
			// 3RPMS's cleanup): what the read shows decides, not the record.
			name:  "departed, recorded assigned, stay shows no key: no revoke, only the delete",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-07", "2026-06-10")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-07", "2026-06-10")},
			want:  []string{"1 delete s1 K1 revoke"},
			sync:  []string{"K1 off"},
		},
		{
			// The record says unassigned (an assign whose answer was lost),
			// the read shows the key on the stay: the read decides.
			name:  "departed, recorded unassigned, stay shows our key: revoke and delete",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-07", "2026-06-10")},
			want:  []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
			sync:  []string{"K1"},
		},
		{
			name:  "departed with a create outcome unknown: abandon",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-07", "2026-06-10")},
			creds: []reconcile.Credential{cred("s1", "r204", "", pending, false, "2026-06-07", "2026-06-10")},
			want:  []string{"1 abandon s1 - revoke"},
		},
		{
			name:  "gone from the read with an assigned key: revoke and delete",
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14")},
			want:  []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
		},
		{
			name:  "gone with an unassigned key: delete only",
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14")},
			want:  []string{"1 delete s1 K1 revoke"},
		},
		{
			name:  "gone with a create outcome unknown: abandon",
			creds: []reconcile.Credential{cred("s1", "r204", "", pending, false, "2026-06-11", "2026-06-14")},
			want:  []string{"1 abandon s1 - revoke"},
		},
		{
			name:  "another integration's key: conflict noted, left alone",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-11", "2026-06-14"), "X9", "582039")},
			notes: []string{"conflict s1"},
		},
		{
			name:  "our spare on a stay holding another's key: delete ours only",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-11", "2026-06-14"), "X9", "582039")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14")},
			want:  []string{"1 delete s1 K1 revoke"},
			notes: []string{"conflict s1"},
			sync:  []string{"K1 off"},
		},
		{
			name:  "room moved: the new key first, then the old one revoked with the new one assigned",
			stays: []reconcile.Stay{holding(stay("s1", "r205", "2026-06-09", "2026-06-12"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-09", "2026-06-12")},
			want: []string{
				"1 create s1 - inhouse",
				"2 revoke s1 K1 revoke", "2 delete s1 K1 revoke", "2 assign s1 - inhouse",
			},
		},
		{
			name: "split stay: the second part holds our key and adopts it",
			stays: []reconcile.Stay{
				holding(stay("A", "r204", "2026-06-08", "2026-06-11"), "K1", "385917"),
				holding(stay("B", "r204", "2026-06-11", "2026-06-13"), "K1", "385917"),
			},
			creds: []reconcile.Credential{cred("A", "r204", "K1", active, true, "2026-06-08", "2026-06-11")},
			want:  []string{"1 adopt B K1 inhouse"},
		},
		{
			name: "split stay: first part departs later, releases the shared key",
			now:  ljAt("2026-06-11", 22, 0),
			stays: []reconcile.Stay{
				holding(stay("A", "r204", "2026-06-08", "2026-06-11"), "K1", "385917"),
				holding(stay("B", "r204", "2026-06-11", "2026-06-13"), "K1", "385917"),
			},
			creds: []reconcile.Credential{
				cred("A", "r204", "K1", active, true, "2026-06-08", "2026-06-11"),
				cred("B", "r204", "K1", active, true, "2026-06-11", "2026-06-13"),
			},
			want: []string{"1 revoke A K1 revoke", "1 release A K1 revoke"},
		},
		{
			name:  "split stay: first part gone, releases the shared key",
			stays: []reconcile.Stay{holding(stay("B", "r204", "2026-06-11", "2026-06-13"), "K1", "385917")},
			creds: []reconcile.Credential{
				cred("A", "r204", "K1", active, true, "2026-06-08", "2026-06-11"),
				cred("B", "r204", "K1", active, true, "2026-06-11", "2026-06-13"),
			},
			want: []string{"1 revoke A K1 revoke", "1 release A K1 revoke"},
		},
		{
			name: "split stay in the same read: the first part shortened, the second part holds our key and adopts it",
			stays: []reconcile.Stay{
				holding(stay("A", "r204", "2026-06-08", "2026-06-11"), "K1", "385917"),
				holding(stay("B", "r204", "2026-06-11", "2026-06-13"), "K1", "385917"),
			},
			creds: []reconcile.Credential{cred("A", "r204", "K1", active, true, "2026-06-08", "2026-06-13")},
			want:  []string{"1 keep A K1 inhouse", "1 adopt B K1 inhouse"},
			sync:  []string{"K1"},
		},
		{
			name:     "our key released for this very stay (a property renamed back): claimed, not taken as lent",
			stays:    []reconcile.Stay{holding(stay("B", "r205", "2026-06-11", "2026-06-16"), "K1", "385917")},
			lent:     map[string]reconcile.StayRef{"K1": ref("B")},
			backfill: true,
			want:     []string{"1 claim B K1 inhouse"},
		},
		{
			name: "staff gave our key to a later stay of another guest as well: left alone there, never adopted",
			stays: []reconcile.Stay{
				holding(stay("A", "r204", "2026-06-10", "2026-06-12"), "K1", "385917"),
				holding(stay("B", "r205", "2026-06-14", "2026-06-16"), "K1", "385917"),
			},
			creds: []reconcile.Credential{cred("A", "r204", "K1", active, true, "2026-06-10", "2026-06-12")},
			notes: []string{"conflict B"},
		},
		{
			name: "staff moved our key to a later stay of another guest: a new key for its stay, the other keeps it",
			stays: []reconcile.Stay{
				stay("A", "r204", "2026-06-10", "2026-06-12"),
				holding(stay("B", "r204", "2026-06-14", "2026-06-16"), "K1", "385917"),
			},
			creds: []reconcile.Credential{cred("A", "r204", "K1", active, true, "2026-06-10", "2026-06-12")},
			want:  []string{"1 release A K1 revoke", "1 create A - inhouse", "2 assign A - inhouse"},
			notes: []string{"conflict B"},
			sync:  []string{"K1 off"},
		},
		{
			name: "staff gave our key to a later stay, its own stay departs: revoked there, released, not deleted",
			now:  ljAt("2026-06-12", 22, 0),
			stays: []reconcile.Stay{
				holding(stay("A", "r204", "2026-06-10", "2026-06-12"), "K1", "385917"),
				holding(stay("B", "r205", "2026-06-14", "2026-06-16"), "K1", "385917"),
			},
			creds: []reconcile.Credential{cred("A", "r204", "K1", active, true, "2026-06-10", "2026-06-12")},
			want:  []string{"1 revoke A K1 revoke", "1 release A K1 revoke"},
			notes: []string{"conflict B"},
		},
		{
			name:  "our key staff gave a stay, once its own stay's record was let go (released): left alone, noted as ours",
			stays: []reconcile.Stay{holding(stay("B", "r205", "2026-06-11", "2026-06-16"), "K1", "385917")},
			lent:  map[string]reconcile.StayRef{"K1": ref("A")},
			notes: []string{"conflict B"},
		},
		{
			name:     "our released key staff gave a stay, in a backfill: not claimed",
			stays:    []reconcile.Stay{holding(stay("B", "r205", "2026-06-11", "2026-06-16"), "K1", "385917")},
			lent:     map[string]reconcile.StayRef{"K1": ref("A")},
			backfill: true,
			notes:    []string{"conflict B"},
		},
		{
			name:     "backfill: a key of unknown owner is claimed, not replaced",
			stays:    []reconcile.Stay{holding(stay("s1", "r204", "2026-06-09", "2026-06-12"), "K7", "385917")},
			backfill: true,
			want:     []string{"1 claim s1 K7 inhouse"},
		},
		{
			name:     "backfill: claim, and our spare for the stay is deleted",
			stays:    []reconcile.Stay{holding(stay("s1", "r204", "2026-06-09", "2026-06-12"), "K7", "385917")},
			creds:    []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-09", "2026-06-12")},
			backfill: true,
			want:     []string{"1 delete s1 K1 revoke", "1 claim s1 K7 inhouse"},
		},
		{
			name:     "backfill: a departed stay's key of unknown owner is claimed, then withdrawn if ours",
			stays:    []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K7", "385917")},
			backfill: true,
			want:     []string{"1 claim s1 K7 inhouse", "2 revoke s1 K7 revoke", "2 delete s1 K7 revoke"},
		},
		{
			name:  "a departed stay's key of unknown owner outside a backfill: left alone",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-07", "2026-06-10"), "K7", "385917")},
		},
		{
			name:     "backfill: keys keysync knows are not claimed",
			stays:    []reconcile.Stay{holding(stay("s1", "r204", "2026-06-09", "2026-06-12"), "K1", "385917")},
			creds:    []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-09", "2026-06-12")},
			backfill: true,
		},
		{
			name: "backfill: a stay without a key gets one",
			stays: []reconcile.Stay{
				stay("s1", "r204", "2026-06-11", "2026-06-14"),
				holding(stay("s2", "r205", "2026-06-11", "2026-06-14"), "X9", "582039"),
			},
			backfill: true,
			want:     []string{"1 create s1 - soon", "1 claim s2 X9 inhouse", "2 assign s1 - soon"},
		},
		{
			name:  "moved beyond the read range still holding our key: nothing",
			stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-30", "2026-07-02"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-11", "2026-06-14")},
		},
		{
			name:  "moved beyond the read range with an unassigned key: delete it",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-30", "2026-07-02")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, false, "2026-06-11", "2026-06-14")},
			want:  []string{"1 delete s1 K1 revoke"},
		},
		{
			name:  "unmapped room",
			stays: []reconcile.Stay{stay("s1", "r999", "2026-06-11", "2026-06-14")},
			notes: []string{"unmapped_room s1"},
		},
		{
			name:  "default method covers an unmapped room",
			prop:  func(p *reconcile.Property) { p.DefaultMethod = reconcile.MethodPIN },
			stays: []reconcile.Stay{stay("s1", "r999", "2026-06-11", "2026-06-14")},
			want:  []string{"1 create s1 - soon", "2 assign s1 - soon"},
		},
		{
			name: "qr and key-storage rooms: upstream credential, then the derived key, then its assign",
			stays: []reconcile.Stay{
				stay("s1", "r301", "2026-06-11", "2026-06-14"),
				stay("s2", "r302", "2026-06-12", "2026-06-14"),
			},
			want: []string{
				"1 create s1 - soon", "1 create s2 - later", // OpenApp invite, key-box access
				"2 create s1 - soon", "2 create s2 - later", // RoomAccessQR, RoomAccessKeyStorage
				"3 assign s1 - soon", "3 assign s2 - later",
			},
		},
		{
			name:  "same-day stay in a key-box room: its window is empty, nothing is issued and a person is told",
			stays: []reconcile.Stay{stay("s1", "r302", "2026-06-11", "2026-06-11")},
			notes: []string{"empty_window s1"},
		},
		{
			name:  "same-day stay in a PIN room is keyed: 3RPMS holds its key by the stay",
			stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-11")},
			want:  []string{"1 create s1 - soon", "2 assign s1 - soon"},
		},
		{
			name:  "a stay shortened to a day of its own: its key-box access and the key carrying it go",
			stays: []reconcile.Stay{withKey(stay("s1", "r302", "2026-06-11", "2026-06-11"), reconcile.RemoteKey{ID: "K1", Type: string(reconcile.KindKeyStorageKey), PIN: "4821"})},
			creds: []reconcile.Credential{
				{ID: 1, Stay: ref("s1"), System: reconcile.SystemKeyBox, Kind: reconcile.KindKeyBoxAccess, RoomID: "r302", RemoteID: "A1",
					Status: active, Secret: "4821", Arrival: date("2026-06-11"), Departure: date("2026-06-13"),
					Valid: reconcile.Window{Start: ljAt("2026-06-11", 13, 0), End: ljAt("2026-06-13", 13, 0)}},
				{ID: 2, Stay: ref("s1"), System: reconcile.System3RPMS, Kind: reconcile.KindKeyStorageKey, RoomID: "r302", RemoteID: "K1",
					Status: active, Assigned: true, DerivedFrom: 1, Arrival: date("2026-06-11"), Departure: date("2026-06-13")},
			},
			want:  []string{"1 delete s1 A1 revoke", "1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
			notes: []string{"empty_window s1"},
		},
		{
			name: "departed stay in an unmapped room is still cleaned up",
			stays: []reconcile.Stay{
				holding(stay("s1", "r999", "2026-06-07", "2026-06-10"), "K1", "385917"),
			},
			creds: []reconcile.Credential{cred("s1", "r999", "K1", active, true, "2026-06-07", "2026-06-10")},
			want:  []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := tc.compute(t)
			if got := summary(plan); !slices.Equal(got, tc.want) {
				t.Errorf("actions:\n got %q\nwant %q", got, tc.want)
			}
			if got := noteSummary(plan.Notes); !slices.Equal(got, tc.notes) {
				t.Errorf("notes:\n got %q\nwant %q", got, tc.notes)
			}
			var sync []string
			for _, c := range plan.Sync {
				if c.Assigned {
					sync = append(sync, c.RemoteID)
				} else {
					sync = append(sync, c.RemoteID+" off")
				}
			}
			if !slices.Equal(sync, tc.sync) {
				t.Errorf("sync: got %q, want %q", sync, tc.sync)
			}
		})
	}
}

// TestComputeRoomMovedTargets checks which credential each action of a room
// move touches: the old key goes, a new one for the new room comes.
func TestComputeRoomMovedTargets(t *testing.T) {
	t.Parallel()
	plan := planCase{
		stays: []reconcile.Stay{holding(stay("s1", "r205", "2026-06-09", "2026-06-12"), "K1", "385917")},
		creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-09", "2026-06-12")},
	}.compute(t)
	if len(plan.Actions) != 4 {
		t.Fatalf("got %q", summary(plan))
	}
	create, revoke, del, assign := plan.Actions[0], plan.Actions[1], plan.Actions[2], plan.Actions[3]
	if revoke.After != create.Cred || del.After != create.Cred {
		t.Errorf("the old key's revoke and delete must wait for the new key's create")
	}
	if revoke.Cred != del.Cred || revoke.Cred.RoomID != "r204" {
		t.Errorf("revoke and delete should share the old r204 credential, got %+v and %+v", revoke.Cred, del.Cred)
	}
	if create.Cred != assign.Cred || create.Cred.RoomID != "r205" || create.Cred.Stay != ref("s1") {
		t.Errorf("create and assign should share a new r205 credential, got %+v and %+v", create.Cred, assign.Cred)
	}
	for _, a := range plan.Actions {
		if a.RoomID != "r205" || a.Room != "205" {
			t.Errorf("%s: room %q (%q), want the stay's current room r205", a.Op, a.RoomID, a.Room)
		}
	}
}

// TestComputeSplitStaySameRun is a split stay whose first part departs in
// the very run that first sees the second part holding the shared key.
func TestComputeSplitStaySameRun(t *testing.T) {
	t.Parallel()
	plan := planCase{
		now: ljAt("2026-06-11", 22, 0),
		stays: []reconcile.Stay{
			holding(stay("A", "r204", "2026-06-08", "2026-06-11"), "K1", "385917"),
			holding(stay("B", "r204", "2026-06-11", "2026-06-13"), "K1", "385917"),
		},
		creds: []reconcile.Credential{cred("A", "r204", "K1", active, true, "2026-06-08", "2026-06-11")},
	}.compute(t)
	want := []string{"1 revoke A K1 revoke", "1 release A K1 revoke", "1 adopt B K1 inhouse"}
	if got := summary(plan); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestComputeRevocationsFirst checks that revocations for departed or
// cancelled stays come before anything else.
func TestComputeRevocationsFirst(t *testing.T) {
	t.Parallel()
	plan := planCase{
		stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
		creds: []reconcile.Credential{cred("s0", "r205", "K1", active, true, "2026-06-11", "2026-06-14")},
	}.compute(t)
	want := []string{"1 revoke s0 K1 revoke", "1 delete s0 K1 revoke", "1 create s1 - soon", "2 assign s1 - soon"}
	if got := summary(plan); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestComputeDoesNotMutateInput plans a night that touches every kind of
// credential and checks the input slices are as they were.
func TestComputeDoesNotMutateInput(t *testing.T) {
	t.Parallel()
	stays := []reconcile.Stay{
		stay("new", "r101", "2026-06-12", "2026-06-14"),
		holding(stay("sync", "r102", "2026-06-11", "2026-06-14"), "K2", "385917"),
		stay("spare", "r204", "2026-06-11", "2026-06-14"),
		holding(stay("moved", "r205", "2026-06-09", "2026-06-12"), "K4", "602817"),
		holding(stay("gone-b", "r101", "2026-06-09", "2026-06-11"), "K5", "730195"),
	}
	creds := []reconcile.Credential{
		cred("sync", "r102", "K2", active, false, "2026-06-11", "2026-06-14"),
		cred("spare", "r204", "K3", active, false, "2026-06-11", "2026-06-14"),
		cred("spare", "r204", "", pending, false, "2026-06-11", "2026-06-14"),
		cred("moved", "r204", "K4", active, true, "2026-06-09", "2026-06-12"),
		cred("gone", "r101", "K5", active, true, "2026-06-08", "2026-06-11"),
		cred("cancelled", "r101", "K6", active, true, "2026-06-12", "2026-06-13"),
	}
	wantStays := slices.Clone(stays)
	wantCreds := slices.Clone(creds)
	var keys []reconcile.RemoteKey
	for _, s := range stays {
		if s.Key != nil {
			keys = append(keys, *s.Key)
		}
	}
	plan, err := reconcile.Compute(reconcile.Input{
		Now: tonight, Property: testProperty(), Stays: stays, Credentials: creds, Rand: seeded(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) == 0 || len(plan.Sync) == 0 {
		t.Fatalf("scenario too quiet to prove anything: %q, %d synced", summary(plan), len(plan.Sync))
	}
	if !reflect.DeepEqual(stays, wantStays) {
		t.Errorf("stays changed:\n got %+v\nwant %+v", stays, wantStays)
	}
	if !reflect.DeepEqual(creds, wantCreds) {
		t.Errorf("credentials changed:\n got %+v\nwant %+v", creds, wantCreds)
	}
	var after []reconcile.RemoteKey
	for _, s := range stays {
		if s.Key != nil {
			after = append(after, *s.Key)
		}
	}
	if !reflect.DeepEqual(after, keys) {
		t.Errorf("keys on stays changed: got %+v, want %+v", after, keys)
	}
	for _, a := range plan.Actions {
		for i := range creds {
			if a.Cred == &creds[i] {
				t.Errorf("%s %s acts on the caller's credential %d, not a copy", a.Op, a.Stay.ID, i)
			}
		}
	}
}

// TestComputeDeterministic checks that the same input and PIN stream give
// the same plan, PINs included.
func TestComputeDeterministic(t *testing.T) {
	t.Parallel()
	stays := []reconcile.Stay{
		stay("s3", "r101", "2026-06-12", "2026-06-14"),
		stay("s1", "r204", "2026-06-11", "2026-06-14"),
		stay("s2", "r205", "2026-06-11", "2026-06-14"),
	}
	creds := []reconcile.Credential{
		cred("g2", "r102", "K2", active, true, "2026-06-11", "2026-06-14"),
		cred("g1", "r102", "K1", active, false, "2026-06-11", "2026-06-14"),
	}
	render := func() []string {
		plan, err := reconcile.Compute(reconcile.Input{
			Now: tonight, Property: testProperty(), Stays: stays, Credentials: creds, Rand: seeded(3),
		})
		if err != nil {
			t.Fatal(err)
		}
		out := summary(plan)
		for _, a := range plan.Actions {
			out = append(out, a.Cred.PIN.Reveal())
		}
		return out
	}
	first := render()
	for range 5 {
		if got := render(); !slices.Equal(got, first) {
			t.Fatalf("plans differ:\n%q\n%q", first, got)
		}
	}
	want := []string{
		"1 delete g1 K1 revoke", "1 revoke g2 K2 revoke", "1 delete g2 K2 revoke",
		"1 create s1 - soon", "1 create s2 - soon", "1 create s3 - later",
		"2 assign s1 - soon", "2 assign s2 - soon", "2 assign s3 - later",
	}
	if got := first[:len(want)]; !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestDigitStream checks digitStream's assumption about how crypto/rand.Int
// consumes bytes, on which TestComputePINsUnique relies.
func TestDigitStream(t *testing.T) {
	t.Parallel()
	plan, err := reconcile.Compute(reconcile.Input{
		Now: tonight, Property: testProperty(),
		Stays: []reconcile.Stay{stay("s1", "r204", "2026-06-11", "2026-06-14")},
		Rand:  digitStream("582039"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Actions[0].Cred.PIN.Reveal(); got != "582039" {
		t.Fatalf("PIN from digitStream(582039) = %q: crypto/rand.Int no longer draws one byte per digit", got)
	}
}

// TestComputePINsUnique steers the PIN stream into every reason to reject a
// PIN and checks that the planner skips each one.
func TestComputePINsUnique(t *testing.T) {
	t.Parallel()
	stays := []reconcile.Stay{
		holding(stay("foreign", "r101", "2026-06-11", "2026-06-14"), "X9", "582039"),
		holding(stay("ours", "r102", "2026-06-11", "2026-06-14"), "K1", "174628"),
		stay("n1", "r204", "2026-06-12", "2026-06-14"),
		stay("n2", "r205", "2026-06-13", "2026-06-14"),
	}
	creds := []reconcile.Credential{cred("ours", "r102", "K1", active, true, "2026-06-11", "2026-06-14")}
	rand := digitStream(
		"582039", // on another integration's key
		"174628", // on our key of another stay
		"123456", // a straight run
		"999999", // one repeated digit
		"920471", // contains n1's room number, 204
		"305817", // n1
		"305817", // n1's, again
		"220571", // contains n2's room number, 205
		"716309", // n2
	)
	plan, err := reconcile.Compute(reconcile.Input{
		Now: tonight, Property: testProperty(), Stays: stays, Credentials: creds, Rand: rand,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range plan.Actions {
		if a.Op == reconcile.OpCreate {
			got[a.Stay.ID] = a.Cred.PIN.Reveal()
		}
	}
	want := map[string]string{"n1": "305817", "n2": "716309"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PINs: got %v, want %v", got, want)
	}

	// A stream that runs dry is the one error Compute returns.
	_, err = reconcile.Compute(reconcile.Input{
		Now: tonight, Property: testProperty(), Stays: stays, Credentials: creds, Rand: digitStream("582039"),
	})
	if err == nil || !strings.Contains(err.Error(), "generate pin") {
		t.Errorf("Compute with an exhausted stream: err = %v, want a PIN generation error", err)
	}
}

// TestComputePINsAvoidUsedPINs checks that a PIN in Input.UsedPINs (one of
// keysync's live credentials whose stay this run did not read) is never
// drawn again.
func TestComputePINsAvoidUsedPINs(t *testing.T) {
	t.Parallel()
	plan, err := reconcile.Compute(reconcile.Input{
		Now: tonight, Property: testProperty(),
		Stays:    []reconcile.Stay{stay("n1", "r204", "2026-06-12", "2026-06-14")},
		UsedPINs: []reconcile.Secret{"582039"},
		Rand:     digitStream("582039", "716309"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Actions[0].Cred.PIN.Reveal(); got != "716309" {
		t.Errorf("PIN = %q, want 716309 (582039 is in use)", got)
	}
}

// TestComputePINsRandom issues PINs for many stays from a seeded stream and
// checks they are unique, unguessable and not on any other stay.
func TestComputePINsRandom(t *testing.T) {
	t.Parallel()
	var stays []reconcile.Stay
	existing := map[string]bool{}
	rooms := []string{"r101", "r102", "r204", "r205"}
	for i := range 400 {
		s := stay(fmt.Sprintf("n%03d", i), rooms[i%4], "2026-06-11", "2026-06-14")
		if i%10 == 0 {
			pin := []string{"111111", "204204", "913542", "386104"}[i/10%4]
			s = holding(s, "X"+s.Ref.ID, pin)
			existing[pin] = true
		}
		stays = append(stays, s)
	}
	plan, err := reconcile.Compute(reconcile.Input{Now: tonight, Property: testProperty(), Stays: stays, Rand: seeded(4)})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	n := 0
	for _, a := range plan.Actions {
		if a.Op != reconcile.OpCreate {
			continue
		}
		n++
		pin := a.Cred.PIN.Reveal()
		switch {
		case seen[pin]:
			t.Errorf("PIN %s issued twice", pin)
		case existing[pin]:
			t.Errorf("PIN %s already on another stay", pin)
		case reconcile.Guessable(pin, a.Room):
			t.Errorf("PIN %s for room %s is guessable", pin, a.Room)
		case strings.Contains(pin, a.Room):
			t.Errorf("PIN %s contains room %s", pin, a.Room)
		}
		seen[pin] = true
	}
	if n != 360 {
		t.Errorf("issued %d PINs, want 360", n)
	}
}

// goldenAction is an action as a golden plan file shows it: no PIN.
type goldenAction struct {
	System    reconcile.System   `json:"system"`
	Action    reconcile.Op       `json:"action"`
	Stay      string             `json:"stay"`
	RoomID    string             `json:"room_id"`
	Room      string             `json:"room"`
	Arrival   reconcile.Date     `json:"arrival"`
	Departure reconcile.Date     `json:"departure"`
	Reason    string             `json:"reason"`
	Step      int                `json:"step"`
	Priority  reconcile.Priority `json:"priority"`
	RemoteID  string             `json:"remote_id"`
	Status    reconcile.Status   `json:"status"`
}

// goldenPlan is a plan as a golden plan file shows it.
type goldenPlan struct {
	Property string           `json:"property"`
	Now      string           `json:"now"`
	Actions  []goldenAction   `json:"actions"`
	Notes    []reconcile.Note `json:"notes"`
	Sync     []string         `json:"sync"`
}

// renderPlan renders a plan as stable, indented JSON without secrets.
func renderPlan(t *testing.T, p *reconcile.Plan) []byte {
	t.Helper()
	g := goldenPlan{Property: p.Property, Now: p.Now.UTC().Format(time.RFC3339), Actions: []goldenAction{}, Notes: p.Notes, Sync: []string{}}
	if g.Notes == nil {
		g.Notes = []reconcile.Note{}
	}
	for _, a := range p.Actions {
		g.Actions = append(g.Actions, goldenAction{
			System: a.System, Action: a.Op, Stay: a.Stay.ID, RoomID: a.RoomID, Room: a.Room,
			Arrival: a.Arrival, Departure: a.Departure, Reason: a.Reason, Step: a.Step,
			Priority: a.Priority, RemoteID: a.Cred.RemoteID, Status: a.Cred.Status,
		})
	}
	for _, c := range p.Sync {
		g.Sync = append(g.Sync, c.RemoteID)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// checkGolden compares got with testdata/plans/<name>.json, or rewrites the
// file under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "plans", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plan differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestComputeGolden(t *testing.T) {
	t.Parallel()
	tests := []planCase{
		{
			name: "busy_night",
			stays: []reconcile.Stay{
				stay("arrive-soon", "r101", "2026-06-11", "2026-06-13"),
				stay("arrive-later", "r102", "2026-06-15", "2026-06-18"),
				holding(stay("in-house", "r204", "2026-06-08", "2026-06-12"), "K2", "385917"),
				holding(stay("departed", "r205", "2026-06-06", "2026-06-10"), "K3", "602817"),
				holding(stay("foreign", "r205", "2026-06-10", "2026-06-12"), "X9", "582039"),
				stay("lobby", "r301", "2026-06-11", "2026-06-12"),
				stay("annex", "r999", "2026-06-11", "2026-06-12"),
			},
			creds: []reconcile.Credential{
				cred("in-house", "r204", "K2", active, true, "2026-06-08", "2026-06-12"),
				cred("departed", "r205", "K3", active, true, "2026-06-06", "2026-06-10"),
				cred("cancelled", "r102", "K4", active, true, "2026-06-12", "2026-06-14"),
			},
		},
		{
			name:  "room_moved",
			stays: []reconcile.Stay{holding(stay("s1", "r205", "2026-06-09", "2026-06-12"), "K1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-09", "2026-06-12")},
		},
		{
			name: "split_stay_release",
			now:  ljAt("2026-06-11", 22, 0),
			stays: []reconcile.Stay{
				holding(stay("A", "r204", "2026-06-08", "2026-06-11"), "K1", "385917"),
				holding(stay("B", "r204", "2026-06-11", "2026-06-13"), "K1", "385917"),
				holding(stay("C", "r101", "2026-06-11", "2026-06-14"), "K1", "385917"),
			},
			creds: []reconcile.Credential{
				cred("A", "r204", "K1", active, true, "2026-06-08", "2026-06-11"),
				cred("B", "r204", "K1", active, true, "2026-06-11", "2026-06-13"),
			},
		},
		{
			name: "resume_after_crash",
			stays: []reconcile.Stay{
				stay("created", "r101", "2026-06-11", "2026-06-13"),
				stay("unknown", "r102", "2026-06-12", "2026-06-13"),
				holding(stay("unsynced", "r204", "2026-06-09", "2026-06-13"), "K3", "385917"),
			},
			creds: []reconcile.Credential{
				cred("created", "r101", "K1", active, false, "2026-06-11", "2026-06-13"),
				cred("created", "r101", "K2", active, false, "2026-06-11", "2026-06-13"),
				cred("unknown", "r102", "", pending, false, "2026-06-12", "2026-06-13"),
				cred("unsynced", "r204", "K3", active, false, "2026-06-09", "2026-06-13"),
				cred("gone", "r205", "", pending, false, "2026-06-11", "2026-06-13"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := tc.compute(t)
			got := renderPlan(t, plan)
			for _, a := range plan.Actions {
				if pin := a.Cred.PIN.Reveal(); pin != "" && bytes.Contains(got, []byte(pin)) {
					t.Errorf("rendered plan contains the PIN of %s", a.Stay.ID)
				}
			}
			checkGolden(t, tc.name, got)
		})
	}
}

// TestComputeWithdrawn counts what the fail-safe weighs: live credentials
// taken from stays that have not departed, whatever the cause, and nothing
// for departures, replacements or keys no stay holds.
func TestComputeWithdrawn(t *testing.T) {
	t.Parallel()
	held := func(id, room string) reconcile.Stay {
		return holding(stay(id, room, "2026-06-09", "2026-06-12"), "K"+id, "38591"+id[1:])
	}
	ours := func(id, room string) reconcile.Credential {
		return cred(id, room, "K"+id, active, true, "2026-06-09", "2026-06-12")
	}
	tests := []struct {
		name      string
		prop      func(*reconcile.Property)
		stays     []reconcile.Stay
		creds     []reconcile.Credential
		withdrawn int
	}{
		{
			name:      "stays gone from the source",
			creds:     []reconcile.Credential{ours("s1", "r101"), ours("s2", "r102")},
			withdrawn: 2,
		},
		{
			name:      "rooms no longer mapped",
			prop:      func(p *reconcile.Property) { delete(p.Rooms, "r101"); delete(p.Rooms, "r102") },
			stays:     []reconcile.Stay{held("s1", "r101"), held("s2", "r102")},
			creds:     []reconcile.Credential{ours("s1", "r101"), ours("s2", "r102")},
			withdrawn: 2,
		},
		{
			name: "method changed from pin to key box",
			prop: func(p *reconcile.Property) {
				p.Rooms["r101"] = reconcile.MethodKeyStorage
			},
			stays:     []reconcile.Stay{held("s1", "r101")},
			creds:     []reconcile.Credential{ours("s1", "r101")},
			withdrawn: 0, // replaced, not withdrawn: the stay keeps a key
		},
		{
			name:  "departures are not withdrawals",
			stays: []reconcile.Stay{holding(stay("s1", "r101", "2026-06-07", "2026-06-10"), "Ks1", "385917")},
			creds: []reconcile.Credential{cred("s1", "r101", "Ks1", active, true, "2026-06-07", "2026-06-10")},
		},
		{
			name:  "a room move replaces, it does not withdraw",
			stays: []reconcile.Stay{stay("s1", "r102", "2026-06-09", "2026-06-12")},
			creds: []reconcile.Credential{ours("s1", "r101")},
		},
		{
			name:  "an unassigned spare of a gone stay grants nothing",
			creds: []reconcile.Credential{cred("s1", "r101", "Ks1", active, false, "2026-06-09", "2026-06-12")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := planCase{prop: tc.prop, stays: tc.stays, creds: tc.creds}.compute(t)
			if plan.Withdrawn != tc.withdrawn || plan.Live != len(tc.creds) {
				t.Errorf("withdrawn %d of %d live, want %d of %d (%q)", plan.Withdrawn, plan.Live, tc.withdrawn, len(tc.creds), summary(plan))
			}
		})
	}
}

// TestComputeUnreadableStay: a stay the source listed but could not read
// keeps what was issued for it, as recorded, until its recorded departure
// (then cleaned up as a departure, not withdrawn), gets nothing new, and
// always needs a person; the other stays are planned as ever.
func TestComputeUnreadableStay(t *testing.T) {
	t.Parallel()
	unreadable := map[reconcile.StayRef]reconcile.Stay{ref("s1"): {Ref: ref("s1"), RoomID: "r101", Unreadable: "arrival_date is not a date"}}
	elsewhere := map[reconcile.StayRef]reconcile.Stay{ref("s1"): {Ref: ref("s1"), RoomID: "r901", MovedTo: "other", Unreadable: "arrival_date is not a date"}}
	tests := []planCase{
		{
			name:       "in house: its key is left as recorded",
			stays:      []reconcile.Stay{stay("s2", "r102", "2026-06-11", "2026-06-13")},
			creds:      []reconcile.Credential{cred("s1", "r101", "K1", active, true, "2026-06-09", "2026-06-12")},
			unreadable: unreadable,
			want:       []string{"1 create s2 - soon", "2 assign s2 - soon"},
			notes:      []string{"unreadable_stay s1"},
		},
		{
			name:       "arriving later: left as recorded",
			creds:      []reconcile.Credential{cred("s1", "r101", "K1", active, true, "2026-06-14", "2026-06-16")},
			unreadable: unreadable,
			notes:      []string{"unreadable_stay s1"},
		},
		{
			name:       "past its recorded departure: cleaned up as a departure",
			now:        ljAt("2026-06-12", 14, 0),
			creds:      []reconcile.Credential{cred("s1", "r101", "K1", active, true, "2026-06-09", "2026-06-12")},
			unreadable: unreadable,
			want:       []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
			notes:      []string{"unreadable_stay s1"},
		},
		{
			name: "a credential recorded since a change of dates runs later: all are held",
			creds: []reconcile.Credential{
				cred("s1", "r101", "K0", active, true, "2026-06-08", "2026-06-10"),
				cred("s1", "r101", "K1", active, true, "2026-06-08", "2026-06-12"),
			},
			unreadable: unreadable,
			notes:      []string{"unreadable_stay s1"},
		},
		{
			name:       "nothing issued: nothing is",
			unreadable: unreadable,
			notes:      []string{"unreadable_stay s1"},
		},
		{
			name:       "in another property's room, nothing issued here: that property's to note",
			unreadable: elsewhere,
		},
		{
			name:  "readable, the same key gone from the read is withdrawn",
			creds: []reconcile.Credential{cred("s1", "r101", "K1", active, true, "2026-06-09", "2026-06-12")},
			want:  []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := tc.computeUnreadable(t)
			if plan.Withdrawn != 0 && len(tc.unreadable) > 0 {
				t.Errorf("withdrawn %d, want 0: an unreadable stay's credentials are never withdrawals", plan.Withdrawn)
			}
		})
	}
	// The note shows the stay as last recorded, and says so when it ended.
	held := tests[3].compute(t)
	if len(held.Notes) != 1 || held.Notes[0].Departure != date("2026-06-12") || !strings.Contains(held.Notes[0].Detail, "left as recorded") {
		t.Errorf("held: notes %+v, want one showing the departure on 2026-06-12, left as recorded", held.Notes)
	}
	// Holding nothing live: never recorded, it may be arriving; its window
	// known from ended records and passed, it has left; in a backfill,
	// what the systems may hold is looked for once it reads.
	for _, tc := range []struct {
		name     string
		u        reconcile.Stay
		backfill bool
		unkeyed  bool
		says     string
	}{
		{"never recorded", reconcile.Stay{Ref: ref("s1"), Unreadable: "x"}, false, true, "give the guest access by hand"},
		{"left, as recorded", reconcile.Stay{Ref: ref("s1"), Unreadable: "x", Arrival: date("2026-06-07"), Departure: date("2026-06-09")}, false, false, "ended with its stay as recorded"},
		{"recorded, not yet left", reconcile.Stay{Ref: ref("s1"), Unreadable: "x", Arrival: date("2026-06-09"), Departure: date("2026-06-12")}, false, true, "give the guest access by hand"},
		{"in a backfill", reconcile.Stay{Ref: ref("s1"), Unreadable: "x"}, true, true, "looked for once it can be read"},
	} {
		plan := planCase{unreadable: map[reconcile.StayRef]reconcile.Stay{ref("s1"): tc.u}, backfill: tc.backfill}.compute(t)
		if len(plan.Notes) != 1 || plan.Notes[0].Unkeyed != tc.unkeyed || !strings.Contains(plan.Notes[0].Detail, tc.says) {
			t.Errorf("%s: notes %+v; want one, unkeyed %v, saying %q", tc.name, plan.Notes, tc.unkeyed, tc.says)
		}
	}
	ended := tests[2].compute(t)
	if len(ended.Notes) != 1 || !strings.Contains(ended.Notes[0].Detail, "ended with its stay") || !strings.Contains(ended.Actions[0].Reason, "has ended") {
		t.Errorf("ended: notes %+v, reason %q; want both to say the recorded stay has ended", ended.Notes, ended.Actions[0].Reason)
	}
}

// computeUnreadable is compute for a case of unreadable stays: it checks
// the plan's actions and notes, and that every note needs a person.
func (tc planCase) computeUnreadable(t *testing.T) *reconcile.Plan {
	t.Helper()
	plan := tc.compute(t)
	if got := summary(plan); !slices.Equal(got, tc.want) {
		t.Errorf("actions %q, want %q", got, tc.want)
	}
	if got := noteSummary(plan.Notes); !slices.Equal(got, tc.notes) {
		t.Errorf("notes %q, want %q", got, tc.notes)
	}
	for _, n := range plan.Notes {
		if !n.Attention {
			t.Errorf("note %s %s: not marked attention", n.Kind, n.Stay.ID)
		}
	}
	return plan
}

// TestComputeUnreadableStayMoved: an unreadable stay the source shows in
// another room than recorded (its unit changed, or it is in another
// property's room) no longer holds the room it left: that is ended, a
// withdrawal the fail-safe weighs (nothing can be issued for the new room
// without the dates), and what it holds for the room it is in is held.
func TestComputeUnreadableStayMoved(t *testing.T) {
	t.Parallel()
	moved := func(room, to string) map[reconcile.StayRef]reconcile.Stay {
		return map[reconcile.StayRef]reconcile.Stay{ref("s1"): {Ref: ref("s1"), RoomID: room, MovedTo: to, Unreadable: "arrival_date is not a date"}}
	}
	tests := []struct {
		planCase
		withdrawn int
	}{
		{planCase{
			name:       "to another room: the one it left is ended, a person told",
			creds:      []reconcile.Credential{cred("s1", "r101", "K1", active, true, "2026-06-09", "2026-06-12")},
			unreadable: moved("r102", ""),
			want:       []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
			notes:      []string{"unreadable_stay s1"},
		}, 1},
		{planCase{
			name:       "to another property's room: ended here, noted there",
			creds:      []reconcile.Credential{cred("s1", "r101", "K1", active, true, "2026-06-09", "2026-06-12")},
			unreadable: moved("r901", "other"),
			want:       []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
		}, 1},
		{planCase{
			name: "back into a room it holds a credential for: that one held",
			creds: []reconcile.Credential{
				cred("s1", "r101", "K1", active, true, "2026-06-09", "2026-06-12"),
				cred("s1", "r102", "K2", active, true, "2026-06-09", "2026-06-12"),
			},
			unreadable: moved("r102", ""),
			want:       []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke"},
			notes:      []string{"unreadable_stay s1"},
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := tc.computeUnreadable(t)
			for _, a := range plan.Actions {
				if !strings.Contains(a.Reason, "moved to room") {
					t.Errorf("%s %s: reason %q, want it to say the stay moved", a.Op, a.Stay.ID, a.Reason)
				}
			}
			if plan.Withdrawn != tc.withdrawn {
				t.Errorf("withdrawn %d, want %d", plan.Withdrawn, tc.withdrawn)
			}
		})
	}
}

// TestCheckRoomKeys: a config keyed by room names instead of ids is caught
// and names the id it meant; ids, unknown rooms and rooms without stays pass.
func TestCheckRoomKeys(t *testing.T) {
	t.Parallel()
	stays := []reconcile.Stay{stay("s1", "r101", "2026-06-09", "2026-06-12"), stay("s2", "r102", "2026-06-09", "2026-06-12")}
	tests := []struct {
		name  string
		rooms []string
		want  []string // substrings of the error; nil for none
	}{
		{"keyed by id", []string{"r101", "r102"}, nil},
		{"a room with no stay this run", []string{"r101", "r777"}, nil},
		{"keyed by name", []string{"101", "r102"}, []string{`rooms["101"]`, `no room has id "101"`, `did you mean rooms["r101"]`}},
		{"both named", []string{"101", "102"}, []string{`rooms["101"]`, `rooms["102"]`, `rooms["r102"]`}},
		// "101" is the id of a room with no stay tonight; r101, named
		// "101", is in Rooms by its id, so "101" is taken as meant.
		{"an id that is also another room's name", []string{"r101", "r102", "101"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prop := testProperty()
			prop.Rooms = map[string]reconcile.Method{}
			for _, r := range tc.rooms {
				prop.Rooms[r] = reconcile.MethodPIN
			}
			err := reconcile.CheckRoomKeys(prop, stays)
			if (err != nil) != (tc.want != nil) {
				t.Fatalf("err = %v, want one: %v", err, tc.want != nil)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, reconcile.ErrConfig) {
				t.Errorf("err = %v, want it to wrap ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to say %s", err, w)
				}
			}
		})
	}
}

// TestDateChange: how a change of dates reads in a plan.
func TestDateChange(t *testing.T) {
	for _, tc := range []struct {
		oa, od, na, nd, want string
	}{
		{"2026-03-25", "2026-03-27", "2026-03-25", "2026-03-28", "extended to 2026-03-28 (was 2026-03-27)"},
		{"2026-03-25", "2026-03-27", "2026-03-25", "2026-03-26", "shortened to 2026-03-26 (was 2026-03-27)"},
		{"2026-03-25", "2026-03-27", "2026-03-24", "2026-03-27", "arrives a day early (2026-03-24, was 2026-03-25)"},
		{"2026-03-25", "2026-03-27", "2026-03-28", "2026-03-30", "arrives 3 days later (2026-03-28, was 2026-03-25), extended to 2026-03-30 (was 2026-03-27)"},
		{"2026-03-25", "2026-03-27", "2026-03-25", "2026-03-27", ""},
	} {
		if got := reconcile.DateChangeForTest(date(tc.oa), date(tc.od), date(tc.na), date(tc.nd)); got != tc.want {
			t.Errorf("%s..%s → %s..%s: %q, want %q", tc.oa, tc.od, tc.na, tc.nd, got, tc.want)
		}
	}
}

// TestComputeKeepsAPINKeyOverADateChange: a PIN room's stay that gets
// longer needs no request; the plan lists the change as kept.
func TestComputeKeepsAPINKeyOverADateChange(t *testing.T) {
	plan := planCase{
		stays: []reconcile.Stay{holding(stay("s1", "r204", "2026-06-09", "2026-06-13"), "K1", "385917")},
		creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-09", "2026-06-12")},
	}.compute(t)
	if got := summary(plan); !slices.Equal(got, []string{"1 keep s1 K1 inhouse"}) {
		t.Fatalf("actions %q", got)
	}
	if r := plan.Actions[0].Reason; !strings.Contains(r, "extended to 2026-06-13 (was 2026-06-12)") {
		t.Errorf("reason %q", r)
	}
}

// TestComputeAttention: a conflict or an unmapped room needs a person when
// the stay arrives within 24 hours or is in house, and for a conflict only
// in a room the config names (a room keyed by its default method may be
// another integration's).
func TestComputeAttention(t *testing.T) {
	for _, tc := range []struct {
		name string
		stay reconcile.Stay
		prop func(*reconcile.Property)
		want bool
	}{
		{"conflict arriving tomorrow, room named", holding(stay("s1", "r204", "2026-06-11", "2026-06-13"), "X9", "582039"), nil, true},
		{"conflict in house, room named", holding(stay("s1", "r204", "2026-06-09", "2026-06-13"), "X9", "582039"), nil, true},
		{"conflict in four days", holding(stay("s1", "r204", "2026-06-14", "2026-06-16"), "X9", "582039"), nil, false},
		{"conflict tomorrow in a default-method room", holding(stay("s1", "r777", "2026-06-11", "2026-06-13"), "X9", "582039"),
			func(p *reconcile.Property) { p.DefaultMethod = reconcile.MethodPIN }, false},
		{"unmapped room tomorrow", stay("s1", "r999", "2026-06-11", "2026-06-13"), nil, true},
		{"unmapped room in four days", stay("s1", "r999", "2026-06-14", "2026-06-16"), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := planCase{prop: tc.prop, stays: []reconcile.Stay{tc.stay}}.compute(t)
			if len(plan.Notes) != 1 || plan.Notes[0].Attention != tc.want {
				t.Errorf("notes %+v, want one with attention %v", plan.Notes, tc.want)
			}
		})
	}
}

// TestComputeKeyFromKeptUpstream: a key-box access or invite keysync
// created, whose 3RPMS key was never written (a run killed between the
// two, a lost answer), is kept when the state holds its code or token:
// the plan writes the key from it and never replaces a credential a guest
// may already hold. Only without the secret (a credential adopted from a
// list that does not return it, or one a read-back no longer shows live)
// is the upstream replaced. One whose create answer carried no secret
// (Secretless) is kept with no key, and a person told: a replacement would
// come without one too, run after run; unless a read-back no longer shows
// it live (Stale).
func TestComputeKeyFromKeptUpstream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, room    string
		system        reconcile.System
		kind          reconcile.Kind
		secret        string
		adopted       bool
		secretless    bool // the create's answer carried none
		stale         bool // a read-back no longer shows it live
		want          []string
		noSecretNotes int
	}{
		{"key-box code kept", "r302", reconcile.SystemKeyBox, reconcile.KindKeyBoxAccess, "4821", false, false, false, []string{"1 create s1 - soon", "2 assign s1 - soon"}, 0},
		{"invite token kept", "r301", reconcile.SystemOpenApp, reconcile.KindInvite, "tok-0123456789", false, false, false, []string{"1 create s1 - soon", "2 assign s1 - soon"}, 0},
		{"key-box code unknown", "r302", reconcile.SystemKeyBox, reconcile.KindKeyBoxAccess, "", true, false, false, []string{"1 create s1 - soon", "2 create s1 - soon", "2 delete s1 U1 revoke", "3 assign s1 - soon"}, 0},
		{"recorded before secrets were kept", "r302", reconcile.SystemKeyBox, reconcile.KindKeyBoxAccess, "", false, false, false, []string{"1 create s1 - soon", "2 create s1 - soon", "2 delete s1 U1 revoke", "3 assign s1 - soon"}, 0},
		{"key-box code never returned", "r302", reconcile.SystemKeyBox, reconcile.KindKeyBoxAccess, "", false, true, false, nil, 1},
		{"code never returned, no longer live", "r302", reconcile.SystemKeyBox, reconcile.KindKeyBoxAccess, "", false, true, true, []string{"1 create s1 - soon", "2 create s1 - soon", "2 delete s1 U1 revoke", "3 assign s1 - soon"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := reconcile.Credential{
				ID: 7, Stay: ref("s1"), System: tc.system, Kind: tc.kind, Adopted: tc.adopted, Secretless: tc.secretless, Stale: tc.stale,
				RoomID: tc.room, RemoteID: "U1", Status: active, Secret: reconcile.Secret(tc.secret),
				Valid:   testProperty().Window(date("2026-06-11"), date("2026-06-14")),
				Arrival: date("2026-06-11"), Departure: date("2026-06-14"),
			}
			plan := planCase{
				stays: []reconcile.Stay{stay("s1", tc.room, "2026-06-11", "2026-06-14")},
				creds: []reconcile.Credential{up},
			}.compute(t)
			got := summary(plan)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("actions:\n got %q\nwant %q", got, tc.want)
			}
			n := 0
			for _, note := range plan.Notes {
				if note.Kind == reconcile.NoteNoSecret && note.Attention {
					n++
				}
			}
			if n != tc.noSecretNotes {
				t.Errorf("%d notes needing a person for a credential without its secret, want %d: %+v", n, tc.noSecretNotes, plan.Notes)
			}
			if tc.secret == "" {
				return
			}
			create := plan.Actions[0]
			if create.System != reconcile.System3RPMS || create.Upstream == nil || create.Upstream.RemoteID != "U1" {
				t.Errorf("the key is not written from the kept %s: %+v", tc.kind, create)
			}
		})
	}
}

// TestComputeSplitHotel: properties of one hotel on one source. A stay that
// moved into another property's room (MovedTo) lets go of its PIN key
// without a request, withdrawing nothing; the property it joined adopts the
// key from its sibling's record (and, the room being new, replaces it, as
// a room move within one property does); a key on its stays that no
// record names is claimed, and taken off if the stay has left.
func TestComputeSplitHotel(t *testing.T) {
	t.Parallel()
	active := reconcile.StatusActive
	sibling := cred("s1", "r204", "K1", active, true, "2026-06-10", "2026-06-13")
	sibling.Stay.Property, sibling.PIN = "annex", "583920"
	// movedQR is stay s1, holding QR key K1, moved into annex's room;
	// qrCreds records K1 carrying invite U1, both for r204.
	movedQR := func(arrival, departure string) reconcile.Stay {
		s := stay("s1", "r205", arrival, departure)
		s.Key, s.MovedTo = &reconcile.RemoteKey{ID: "K1", Type: string(reconcile.KindQRKey), QRData: "link"}, "annex"
		return s
	}
	qrCreds := func(arrival, departure string) []reconcile.Credential {
		inv := reconcile.Credential{ID: 5, Stay: ref("s1"), System: reconcile.SystemOpenApp, Kind: reconcile.KindInvite, RoomID: "r204", RemoteID: "U1",
			Status: active, Secret: "link", Arrival: date(arrival), Departure: date(departure)}
		key := cred("s1", "r204", "K1", active, true, arrival, departure)
		key.Kind, key.DerivedFrom, key.PIN = reconcile.KindQRKey, 5, ""
		return []reconcile.Credential{inv, key}
	}
	for _, tt := range []struct {
		name     string
		stay     reconcile.Stay
		creds    []reconcile.Credential
		siblings map[string]*reconcile.Credential
		want     []string
		// withdrawn counts what the plan withdraws: never a key handed
		// over, only what the property issued for its own doors.
		withdrawn int
	}{
		{
			name: "moved away: the key goes with the stay",
			stay: func() reconcile.Stay {
				s := holding(stay("s1", "r205", "2026-06-10", "2026-06-13"), "K1", "583920")
				s.MovedTo = "annex"
				return s
			}(),
			creds: []reconcile.Credential{cred("s1", "r204", "K1", active, true, "2026-06-10", "2026-06-13")},
			want:  []string{"1 release s1 K1 revoke"},
		},
		{
			name: "moved away with a key retired here: it goes with the stay too (the other property adopts it)",
			stay: func() reconcile.Stay {
				s := holding(stay("s1", "r205", "2026-06-10", "2026-06-13"), "K1", "583920")
				s.MovedTo = "annex"
				return s
			}(),
			creds: []reconcile.Credential{cred("s1", "r204", "K1", reconcile.StatusRetired, false, "2026-06-10", "2026-06-13")},
			want:  []string{"1 release s1 K1 revoke"},
		},
		{
			name:      "moved away with a key carrying an invite: the key goes with the stay, the invite is switched off",
			stay:      movedQR("2026-06-10", "2026-06-13"),
			creds:     qrCreds("2026-06-10", "2026-06-13"),
			want:      []string{"1 release s1 K1 revoke", "1 disable s1 U1 revoke"},
			withdrawn: 1,
		},
		{
			name:      "moved away past the window with a key carrying an invite: withdrawn with it (no run reads the stay now)",
			stay:      movedQR("2026-06-25", "2026-06-28"),
			creds:     qrCreds("2026-06-25", "2026-06-28"),
			want:      []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke", "1 disable s1 U1 revoke"},
			withdrawn: 2,
		},
		{
			name: "departed from another property's room: its key is that property's, not claimed",
			stay: func() reconcile.Stay {
				s := holding(stay("s1", "r205", "2026-06-07", "2026-06-09"), "K9", "111111")
				s.MovedTo = "annex"
				return s
			}(),
			siblings: map[string]*reconcile.Credential{},
			want:     nil,
		},
		{
			name:     "moved in: the sibling's key is adopted, then replaced for the new room",
			stay:     holding(stay("s1", "r205", "2026-06-10", "2026-06-13"), "K1", "583920"),
			siblings: map[string]*reconcile.Credential{"K1": &sibling},
			want:     []string{"1 adopt s1 K1 inhouse", "1 create s1 - inhouse", "2 revoke s1 K1 revoke", "2 delete s1 K1 revoke", "2 assign s1 - inhouse"},
		},
		{
			name:     "departed, with a key no record names: claimed, then taken off",
			stay:     holding(stay("s1", "r205", "2026-06-07", "2026-06-09"), "K9", "111111"),
			siblings: map[string]*reconcile.Credential{},
			want:     []string{"1 claim s1 K9 inhouse", "2 revoke s1 K9 revoke", "2 delete s1 K9 revoke"},
		},
		{
			name:     "a key no record names: claimed",
			stay:     holding(stay("s1", "r205", "2026-06-10", "2026-06-13"), "K9", "111111"),
			siblings: map[string]*reconcile.Credential{},
			want:     []string{"1 claim s1 K9 inhouse"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := reconcile.Compute(reconcile.Input{
				Now: tonight, Property: testProperty(), Stays: []reconcile.Stay{tt.stay}, Credentials: tt.creds, Siblings: tt.siblings, Rand: seeded(3),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(plan); !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n got %q\nwant %q", got, tt.want)
			}
			if plan.Withdrawn != tt.withdrawn {
				t.Errorf("withdrawn %d, want %d: handing a key over is not a withdrawal", plan.Withdrawn, tt.withdrawn)
			}
			for _, a := range plan.Actions {
				if a.Op == reconcile.OpAdopt && a.Cred.PIN != sibling.PIN {
					t.Errorf("adopted key's PIN %q, want the sibling's", a.Cred.PIN.Reveal())
				}
			}
		})
	}
}

// TestComputeSplitHotelDepartedElsewhere: a split hotel's stay that
// departed from the other property's room is that property's to withdraw:
// this property neither takes off it a key it records for another of its
// stays (3RPMS shares a key between the parts of a split stay) nor, where
// it is the stay's own property, claims a key its sibling records.
func TestComputeSplitHotelDepartedElsewhere(t *testing.T) {
	t.Parallel()
	active := reconcile.StatusActive
	sibling := cred("s2", "r204", "K1", active, true, "2026-06-07", "2026-06-09")
	sibling.Stay.Property = "annex"
	moved := holding(stay("s2", "r205", "2026-06-07", "2026-06-09"), "K1", "111111")
	moved.MovedTo = "annex"
	for _, tt := range []struct {
		name     string
		stays    []reconcile.Stay
		creds    []reconcile.Credential
		siblings map[string]*reconcile.Credential
		want     []string
	}{
		{
			name:     "in the other property's room, with a key recorded here for another stay",
			stays:    []reconcile.Stay{moved, holding(stay("s0", "r204", "2026-06-09", "2026-06-13"), "K1", "111111")},
			creds:    []reconcile.Credential{cred("s0", "r204", "K1", active, true, "2026-06-09", "2026-06-13")},
			siblings: map[string]*reconcile.Credential{},
			want:     nil,
		},
		{
			name:     "moved in, with a key its sibling records",
			stays:    []reconcile.Stay{holding(stay("s2", "r205", "2026-06-07", "2026-06-09"), "K1", "111111")},
			siblings: map[string]*reconcile.Credential{"K1": &sibling},
			want:     nil,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plan, err := reconcile.Compute(reconcile.Input{
				Now: tonight, Property: testProperty(), Stays: tt.stays, Credentials: tt.creds, Siblings: tt.siblings, Rand: seeded(3),
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range summary(plan) {
				if strings.Contains(line, " s2 ") {
					got = append(got, line)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan for s2:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// checkSortedActionsAndSeek checks a backfill's plan: its summary lines,
// sorted, against want, and what it seeks, each rendered by line, against
// seek, every credential sought exactly over win, the stay's window.
func checkSortedActionsAndSeek(t *testing.T, plan *reconcile.Plan, want []string, win reconcile.Window, seek []string, line func(reconcile.Sought) string) {
	t.Helper()
	got := summary(plan)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("actions:\n got %q\nwant %q", got, want)
	}
	var sought []string
	for _, sk := range plan.Seek {
		c := sk.Cred
		sought = append(sought, line(sk))
		if c.Valid != win || !sk.Exact {
			t.Errorf("seeks %s over %v (exact %v), want the stay's window %v, exactly", c.Kind, c.Valid, sk.Exact, win)
		}
	}
	if !slices.Equal(sought, seek) {
		t.Errorf("seek %q, want %q", sought, seek)
	}
}

// TestComputeAdoptsHeld: a backfill looks for the invites and key-box
// accesses it would create (Plan.Seek) and, planned again with what the
// systems hold (Input.Held), adopts them instead of creating them, keeps a
// 3RPMS key made from one (claimed, or recorded without the link) and
// records that it carries it.
func TestComputeAdoptsHeld(t *testing.T) {
	t.Parallel()
	win := testProperty().Window(date("2026-06-10"), date("2026-06-14"))
	other := testProperty().Window(date("2026-06-10"), date("2026-06-13"))
	held := func(sys reconcile.System, id string, w reconcile.Window, carriedBy string) map[reconcile.StayRef][]reconcile.Held {
		room := map[reconcile.System]string{reconcile.SystemOpenApp: "r301", reconcile.SystemKeyBox: "r302"}[sys]
		return map[reconcile.StayRef][]reconcile.Held{ref("s1"): {{System: sys, RemoteID: id, Secret: "secret-1", Valid: w, CarriedBy: carriedBy, RoomID: room}}}
	}
	elsewhere := held(reconcile.SystemOpenApp, "U1", win, "")
	elsewhere[ref("s1")][0].RoomID = ""
	invite := reconcile.Credential{
		ID: 5, Stay: ref("s1"), System: reconcile.SystemOpenApp, Kind: reconcile.KindInvite, RoomID: "r301", RemoteID: "U1",
		Status: active, Adopted: true, Secret: "secret-1", Valid: win, Arrival: date("2026-06-10"), Departure: date("2026-06-14"),
	}
	qr := func(s reconcile.Stay) reconcile.Stay {
		s.Key = &reconcile.RemoteKey{ID: "K1", Type: string(reconcile.KindQRKey), QRData: "link"}
		return s
	}
	disabledInvite := invite
	disabledInvite.Status = reconcile.StatusDisabled
	oldAccess := reconcile.Credential{
		ID: 7, Stay: ref("s1"), System: reconcile.SystemKeyBox, Kind: reconcile.KindKeyBoxAccess, RoomID: "r302", RemoteID: "A1",
		Status: active, Secret: "secret-7", Valid: other, Arrival: date("2026-06-10"), Departure: date("2026-06-13"),
	}
	pendingInvite := invite
	pendingInvite.Status, pendingInvite.RemoteID, pendingInvite.Secret = pending, "", ""
	cancelled := stay("s2", "r302", "2026-06-10", "2026-06-14")
	cancelled.Cancelled = true
	theirs := reconcile.Credential{
		ID: 9, Stay: ref("s9"), System: reconcile.SystemKeyBox, Kind: reconcile.KindKeyBoxAccess, RoomID: "r302", RemoteID: "U9",
		Status: active, Secret: "secret-9", Valid: win, Arrival: date("2026-06-10"), Departure: date("2026-06-14"),
	}
	recorded := reconcile.Credential{
		ID: 3, Stay: ref("s1"), System: reconcile.System3RPMS, Kind: reconcile.KindQRKey, RoomID: "r301", RemoteID: "K1",
		Status: active, Assigned: true, Arrival: date("2026-06-10"), Departure: date("2026-06-14"),
	}
	linked := recorded
	linked.DerivedFrom = 5
	for _, tc := range []struct {
		planCase
		seek     []string // system stay room of Plan.Seek
		upstream string   // the action whose Upstream is the adopted credential
		live     int      // Plan.Live, when not 0
	}{
		{planCase: planCase{
			name:     "backfill seeks the invite it would create",
			stays:    []reconcile.Stay{stay("s1", "r301", "2026-06-10", "2026-06-14")},
			backfill: true,
			want:     []string{"1 create s1 - inhouse", "2 create s1 - inhouse", "3 assign s1 - inhouse"},
		}, seek: []string{"openapp s1 r301"}},
		{planCase: planCase{
			name:  "a run does not seek",
			stays: []reconcile.Stay{stay("s1", "r302", "2026-06-10", "2026-06-14")},
			want:  []string{"1 create s1 - inhouse", "2 create s1 - inhouse", "3 assign s1 - inhouse"},
		}},
		{planCase: planCase{
			name:     "held invite adopted, its key written from it",
			stays:    []reconcile.Stay{stay("s1", "r301", "2026-06-10", "2026-06-14")},
			backfill: true, held: held(reconcile.SystemOpenApp, "U1", win, ""),
			want: []string{"1 adopt s1 U1 inhouse", "1 create s1 - inhouse", "2 assign s1 - inhouse"},
		}, upstream: "create", live: 1},
		{planCase: planCase{
			name:     "a cancelled stay's look goes after the live stays'",
			stays:    []reconcile.Stay{cancelled, stay("s3", "r301", "2026-06-10", "2026-06-14")},
			backfill: true,
			want:     []string{"1 create s3 - inhouse", "2 create s3 - inhouse", "3 assign s3 - inhouse"},
		}, seek: []string{"openapp s3 r301", "keybox s2 r302"}},
		{planCase: planCase{
			name:     "held invite opening another room's doors adopted and moved",
			stays:    []reconcile.Stay{stay("s1", "r301", "2026-06-10", "2026-06-14")},
			backfill: true, held: elsewhere,
			want: []string{"1 adopt s1 U1 inhouse", "1 update s1 U1 inhouse", "2 create s1 - inhouse", "3 assign s1 - inhouse"},
		}, upstream: "create"},
		{planCase: planCase{
			name:     "held access on another window adopted and replaced",
			stays:    []reconcile.Stay{stay("s1", "r302", "2026-06-10", "2026-06-14")},
			backfill: true, held: held(reconcile.SystemKeyBox, "U1", other, ""),
			want: []string{"1 adopt s1 U1 inhouse", "1 create s1 - inhouse", "2 create s1 - inhouse", "2 delete s1 U1 revoke", "3 assign s1 - inhouse"},
		}},
		{planCase: planCase{
			name:     "claimed key made from the held invite",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			backfill: true, held: held(reconcile.SystemOpenApp, "U1", win, "K1"),
			want: []string{"1 adopt s1 U1 inhouse", "1 claim s1 K1 inhouse"},
		}, upstream: "claim"},
		{planCase: planCase{
			name:     "claimed key not made from the held invite",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			backfill: true, held: held(reconcile.SystemOpenApp, "U1", win, ""),
			want: []string{"1 adopt s1 U1 inhouse", "1 claim s1 K1 inhouse"},
		}},
		{planCase: planCase{
			name:     "claimed key seeks its invite",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			backfill: true,
			want:     []string{"1 claim s1 K1 inhouse"},
		}, seek: []string{"openapp s1 r301"}},
		{planCase: planCase{
			name:     "claimed key made from the recorded invite: kept, the claim links them",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{invite},
			backfill: true, carries: map[int64]string{5: "K1"},
			want: []string{"1 claim s1 K1 inhouse"},
		}, upstream: "claim"},
		{planCase: planCase{
			name:     "claimed key not made from the recorded invite: the invite kept until the claim is answered",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{invite},
			backfill: true,
			want:     []string{"1 claim s1 K1 inhouse"},
		}},
		{planCase: planCase{
			name:     "recorded key and invite without the link: kept, link recorded",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{invite, recorded},
			backfill: true, carries: map[int64]string{5: "K1"},
			want: []string{"1 keep s1 K1 inhouse"},
		}, upstream: "keep"},
		{planCase: planCase{
			name:     "claimed key, invite of a create with an unknown outcome: nothing adopted beside it",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{pendingInvite},
			backfill: true, held: held(reconcile.SystemOpenApp, "U1", win, "K1"),
			want: []string{"1 claim s1 K1 inhouse"},
		}},
		{planCase: planCase{
			name:     "claimed key, recorded invite of a stay that moved and stays on: moved and re-dated in place",
			prop:     func(p *reconcile.Property) { p.Rooms["r303"] = reconcile.MethodQR },
			stays:    []reconcile.Stay{qr(stay("s1", "r303", "2026-06-10", "2026-06-15"))},
			creds:    []reconcile.Credential{invite},
			backfill: true, carries: map[int64]string{5: "K1"},
			want: []string{"1 claim s1 K1 inhouse", "1 update s1 U1 inhouse"},
		}, upstream: "claim"},
		{planCase: planCase{
			name:     "cancelled stay: a found access recorded for another stay is not taken",
			stays:    []reconcile.Stay{cancelled, stay("s9", "r302", "2026-06-10", "2026-06-14")},
			creds:    []reconcile.Credential{theirs},
			backfill: true, held: map[reconcile.StayRef][]reconcile.Held{ref("s2"): {{System: reconcile.SystemKeyBox, RemoteID: "U9", Secret: "secret-9", Valid: win, RoomID: "r302"}}},
			want: []string{"1 create s9 - inhouse", "2 assign s9 - inhouse"},
		}},
		{planCase: planCase{
			name:     "claimed key, recorded invite switched off: switched on again, not deleted",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{disabledInvite},
			backfill: true, carries: map[int64]string{5: "K1"},
			want: []string{"1 claim s1 K1 inhouse", "1 update s1 U1 inhouse"},
		}, upstream: "claim"},
		{planCase: planCase{
			name:     "an access replaced on new dates: nothing sought",
			stays:    []reconcile.Stay{stay("s1", "r302", "2026-06-10", "2026-06-14")},
			creds:    []reconcile.Credential{oldAccess},
			backfill: true,
			want:     []string{"1 create s1 - inhouse", "2 create s1 - inhouse", "2 delete s1 A1 revoke", "3 assign s1 - inhouse"},
		}},
		{planCase: planCase{
			name:     "recorded key and invite, linked: nothing to do",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{invite, linked},
			backfill: true, carries: map[int64]string{5: "K1"},
		}},
		{planCase: planCase{
			name:     "recorded key made from the held invite: kept, link recorded",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{recorded},
			backfill: true, held: held(reconcile.SystemOpenApp, "U1", win, "K1"),
			want: []string{"1 adopt s1 U1 inhouse", "1 keep s1 K1 inhouse"},
		}, upstream: "keep"},
		{planCase: planCase{
			name:     "recorded key not made from the held invite: replaced",
			stays:    []reconcile.Stay{qr(stay("s1", "r301", "2026-06-10", "2026-06-14"))},
			creds:    []reconcile.Credential{recorded},
			backfill: true, held: held(reconcile.SystemOpenApp, "U1", win, ""),
			want: []string{"1 adopt s1 U1 inhouse", "1 create s1 - inhouse", "2 assign s1 - inhouse", "2 delete s1 K1 revoke", "2 revoke s1 K1 revoke"},
		}, upstream: "create"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := tc.compute(t)
			checkSortedActionsAndSeek(t, plan, tc.want, win, tc.seek, func(sk reconcile.Sought) string {
				c := sk.Cred
				return fmt.Sprintf("%s %s %s", c.System, c.Stay.ID, c.RoomID)
			})
			if tc.live != 0 && plan.Live != tc.live {
				t.Errorf("%d live credentials, want %d (the adopted ones count)", plan.Live, tc.live)
			}
			for _, a := range plan.Actions {
				adopted := a.Upstream != nil && a.Upstream.RemoteID == "U1"
				if want := string(a.Op) == tc.upstream; adopted != want {
					t.Errorf("%s %s: written from the adopted credential = %v, want %v", a.Op, a.Stay.ID, adopted, want)
				}
				if a.Op == reconcile.OpAdopt && (a.Cred.Status != active || a.Cred.Secret != "secret-1" || !a.Cred.Adopted) {
					t.Errorf("adopted credential %+v: want active, adopted, with the held secret", a.Cred)
				}
			}
		})
	}
}

// TestComputeAdoptsHeldOfAStayThatLeft: a backfill of a split hotel's
// property reads the stays now in its siblings' rooms (MovedTo) too. With
// the state lost, it seeks what it issued to such a stay for its own
// doors, without a room (only an invite tagged for the stay, or an access
// whose code the stay's key carries, is surely the stay's), and adopts
// what is found to end it: the stay's new property keys it. What it ends
// counts as withdrawn for the fail-safe, as a run's hand-over does. Nothing
// is taken that is recorded for another stay, and a recorded credential is
// withdrawn as in any run, not sought.
func TestComputeAdoptsHeldOfAStayThatLeft(t *testing.T) {
	t.Parallel()
	win := testProperty().Window(date("2026-06-10"), date("2026-06-14"))
	// moved is stay s1, in the annex's room r901 now, holding a key of
	// the given type (a QR key, or a key-storage key carrying code 4821).
	moved := func(id string, kind reconcile.Kind) reconcile.Stay {
		s := stay(id, "r901", "2026-06-10", "2026-06-14")
		s.MovedTo = "annex"
		s.Key = &reconcile.RemoteKey{ID: "K1", Type: string(kind), QRData: "link"}
		if kind == reconcile.KindKeyStorageKey {
			s.Key.QRData, s.Key.PIN = "", "4821"
		}
		return s
	}
	held := func(hs ...reconcile.Held) map[reconcile.StayRef][]reconcile.Held {
		return map[reconcile.StayRef][]reconcile.Held{ref("s1"): hs}
	}
	invite := reconcile.Held{System: reconcile.SystemOpenApp, RemoteID: "U1", Secret: "link", Valid: win, CarriedBy: "K1",
		Spares: []reconcile.Held{{System: reconcile.SystemOpenApp, RemoteID: "U2", Secret: "other", Valid: win}}}
	access := reconcile.Held{System: reconcile.SystemKeyBox, RemoteID: "A1", Secret: "4821", Valid: win, CarriedBy: "K1"}
	recordedInvite := reconcile.Credential{
		ID: 5, Stay: ref("s1"), System: reconcile.SystemOpenApp, Kind: reconcile.KindInvite, RoomID: "r301", RemoteID: "U5",
		Status: active, Secret: "link", Valid: win, Arrival: date("2026-06-10"), Departure: date("2026-06-14"),
	}
	theirs := recordedInvite
	theirs.ID, theirs.Stay, theirs.RemoteID = 9, ref("s9"), "U1"
	pinOnly := func(p *reconcile.Property) { p.Rooms = map[string]reconcile.Method{"r101": reconcile.MethodPIN} }
	for _, tc := range []struct {
		planCase
		seek      []string // system stay room carries of Plan.Seek
		live      int      // Plan.Live
		withdrawn int      // Plan.Withdrawn
	}{
		{planCase: planCase{
			name:     "QR stay: its invite is sought without a room; no access, its key carries no code",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindQRKey)},
			backfill: true,
		}, seek: []string{"openapp s1 - -"}},
		{planCase: planCase{
			name:     "key-box stay: the access its key's code names is sought too",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindKeyStorageKey)},
			backfill: true,
		}, seek: []string{"keybox s1 - 4821", "openapp s1 - -"}},
		{planCase: planCase{
			name:  "a run does not seek",
			stays: []reconcile.Stay{moved("s1", reconcile.KindKeyStorageKey)},
		}},
		{planCase: planCase{
			name:     "a property whose rooms get no invite or access seeks nothing",
			prop:     pinOnly,
			stays:    []reconcile.Stay{moved("s1", reconcile.KindKeyStorageKey)},
			backfill: true,
		}},
		{planCase: planCase{
			name:     "the moved stay's look goes after the live stays'",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindQRKey), stay("s3", "r301", "2026-06-10", "2026-06-14")},
			backfill: true,
			want:     []string{"1 create s3 - inhouse", "2 create s3 - inhouse", "3 assign s3 - inhouse"},
		}, seek: []string{"openapp s3 r301 -", "openapp s1 - -"}},
		{planCase: planCase{
			name:     "found invite and its spare adopted and deleted, the key carrying it left to the annex",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindQRKey)},
			backfill: true, held: held(invite),
			want: []string{"1 adopt s1 U1 inhouse", "1 adopt s1 U2 inhouse", "1 delete s1 U1 revoke", "1 delete s1 U2 revoke"},
		}, live: 2, withdrawn: 2},
		{planCase: planCase{
			name:     "found access adopted and cancelled",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindKeyStorageKey)},
			backfill: true, held: held(access),
			want: []string{"1 adopt s1 A1 inhouse", "1 delete s1 A1 revoke"},
		}, live: 1, withdrawn: 1},
		{planCase: planCase{
			name:     "a found invite recorded for another stay is not taken",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindQRKey), stay("s9", "r301", "2026-06-10", "2026-06-14")},
			creds:    []reconcile.Credential{theirs},
			backfill: true, held: held(reconcile.Held{System: reconcile.SystemOpenApp, RemoteID: "U1", Secret: "link", Valid: win}),
			want: []string{"1 create s9 - inhouse", "2 assign s9 - inhouse"}, // its key, from the recorded invite
		}, live: 1},
		{planCase: planCase{
			name:     "a recorded invite is withdrawn as in a run; nothing sought or adopted beside it",
			stays:    []reconcile.Stay{moved("s1", reconcile.KindQRKey)},
			creds:    []reconcile.Credential{recordedInvite},
			backfill: true, held: held(invite),
			want: []string{"1 disable s1 U5 revoke"},
		}, live: 1, withdrawn: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := tc.compute(t)
			checkSortedActionsAndSeek(t, plan, tc.want, win, tc.seek, func(sk reconcile.Sought) string {
				c := sk.Cred
				return fmt.Sprintf("%s %s %s %s", c.System, c.Stay.ID, cmp.Or(c.RoomID, "-"), cmp.Or(sk.Carries.Reveal(), "-"))
			})
			if plan.Live != tc.live || plan.Withdrawn != tc.withdrawn {
				t.Errorf("%d live, %d withdrawn; want %d and %d (adopted ones are live, and ending them for a move withdraws them, as a run's hand-over does)",
					plan.Live, plan.Withdrawn, tc.live, tc.withdrawn)
			}
			for _, a := range plan.Actions {
				if a.System == reconcile.System3RPMS && a.Stay.ID == "s1" {
					t.Errorf("%s of the key %s: the property the stay left has no record of it, and leaves it to the annex", a.Op, a.Cred.RemoteID)
				}
				if a.Op == reconcile.OpAdopt && (a.Cred.Status != active || !a.Cred.Adopted || a.Cred.RoomID != "") {
					t.Errorf("adopted credential %+v: want active, adopted, in no room of the property", a.Cred)
				}
			}
		})
	}
}

// TestBackfilled: a backfill is complete, and the runs after it stop
// claiming and looking, only when every claim was answered and every
// adoption recorded; an adoption deferred with the work it goes with (the
// budget ran short) leaves it to be done again.
func TestBackfilled(t *testing.T) {
	t.Parallel()
	report := func(results ...reconcile.Result) *reconcile.PlanReport {
		ops := []reconcile.Op{reconcile.OpClaim, reconcile.OpAdopt, reconcile.OpCreate}
		pr := &reconcile.PlanReport{}
		for i, r := range results {
			pr.Actions = append(pr.Actions, reconcile.ActionReport{Action: &reconcile.Action{Op: ops[i]}, Result: r})
		}
		return pr
	}
	for _, tc := range []struct {
		name string
		pr   *reconcile.PlanReport
		want bool
	}{
		{"all done", report(reconcile.ResultDone, reconcile.ResultDone, reconcile.ResultDone), true},
		{"a create failed", report(reconcile.ResultDone, reconcile.ResultDone, reconcile.ResultFailed), true},
		{"a claim unanswered", report(reconcile.ResultUnknown, reconcile.ResultDone, reconcile.ResultDone), false},
		{"an adoption deferred", report(reconcile.ResultDone, reconcile.ResultDeferred, reconcile.ResultDeferred), false},
		{"nothing to do", report(), true},
	} {
		if got := reconcile.Backfilled(tc.pr); got != tc.want {
			t.Errorf("%s: backfilled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestComputeReplacesWhatCannotChangeInPlace: an invite OpenApp refused to
// change in place (Credential.ReplaceOnly, set by settle) is replaced when
// its window or room changes, the new one made before the old one is
// deleted, and deleted rather than switched off when its booking is
// cancelled; the same invite without the mark is updated and switched
// off as before.
func TestComputeReplacesWhatCannotChangeInPlace(t *testing.T) {
	t.Parallel()
	win := testProperty().Window(date("2026-06-10"), date("2026-06-14"))
	invite := reconcile.Credential{
		ID: 5, Stay: ref("s1"), System: reconcile.SystemOpenApp, Kind: reconcile.KindInvite, RoomID: "r301", RemoteID: "U1",
		Status: active, Secret: "secret-1", Valid: win, Arrival: date("2026-06-10"), Departure: date("2026-06-14"),
	}
	key := reconcile.Credential{
		ID: 6, Stay: ref("s1"), System: reconcile.System3RPMS, Kind: reconcile.KindQRKey, RoomID: "r301", RemoteID: "K1",
		Status: active, Assigned: true, DerivedFrom: 5, Arrival: date("2026-06-10"), Departure: date("2026-06-14"),
	}
	stuck := invite
	stuck.ReplaceOnly = true
	extended := stay("s1", "r301", "2026-06-10", "2026-06-16")
	extended.Key = &reconcile.RemoteKey{ID: "K1", Type: string(reconcile.KindQRKey), QRData: "link"}
	cancelled := extended
	cancelled.Cancelled = true
	replacement := invite
	replacement.ID, replacement.RemoteID, replacement.Secret = 8, "U2", "secret-2"
	replacement.Valid, replacement.Departure = testProperty().Window(date("2026-06-10"), date("2026-06-16")), date("2026-06-16")
	key2 := key
	key2.ID, key2.RemoteID, key2.DerivedFrom, key2.Departure = 9, "K2", 8, date("2026-06-16")
	onKey2 := extended
	onKey2.Key = &reconcile.RemoteKey{ID: "K2", Type: string(reconcile.KindQRKey), QRData: "link"}
	runSummaries(t, []planCase{
		{name: "extended", stays: []reconcile.Stay{extended}, creds: []reconcile.Credential{invite, key},
			want: []string{"1 update s1 U1 inhouse"}},
		{name: "extended, replace only", stays: []reconcile.Stay{extended}, creds: []reconcile.Credential{stuck, key},
			want: []string{"1 create s1 - inhouse", "2 delete s1 U1 revoke", "2 create s1 - inhouse",
				"3 revoke s1 K1 revoke", "3 delete s1 K1 revoke", "3 assign s1 - inhouse"}},
		{name: "cancelled", stays: []reconcile.Stay{cancelled}, creds: []reconcile.Credential{invite, key},
			want: []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke", "1 disable s1 U1 revoke"}},
		{name: "cancelled, replace only", stays: []reconcile.Stay{cancelled}, creds: []reconcile.Credential{stuck, key},
			want: []string{"1 revoke s1 K1 revoke", "1 delete s1 K1 revoke", "1 delete s1 U1 revoke"}},
		// A run replaced it and could not delete the old one: the new one
		// (U2, its key K2) is kept, the old one deleted again.
		{name: "replaced, old one left", stays: []reconcile.Stay{onKey2}, creds: []reconcile.Credential{stuck, replacement, key2},
			want: []string{"1 delete s1 U1 revoke"}},
	})
}

// runSummaries runs each case as a parallel subtest and checks its plan's
// summary lines against the case's want.
func runSummaries(t *testing.T, cases []planCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := summary(tc.compute(t)); !slices.Equal(got, tc.want) {
				t.Errorf("plan %q\nwant %q", got, tc.want)
			}
		})
	}
}

// withKey returns s holding key.
func withKey(s reconcile.Stay, key reconcile.RemoteKey) reconcile.Stay {
	s.Key = &key
	return s
}

// TestComputeIgnoresAStartAlreadyPassed: an in-house guest's arrival the
// source moves within the past (yesterday to today, tonight) changes no
// door: the key-box access (which the key box cannot change in place) is
// kept, not replaced by one with a new code, and the invite is not
// updated. A start moved into the future, or an end moved, still is.
func TestComputeIgnoresAStartAlreadyPassed(t *testing.T) {
	t.Parallel()
	recorded := func(arrival string) []reconcile.Credential {
		win := testProperty().Window(date(arrival), date("2026-06-14"))
		return []reconcile.Credential{
			{ID: 1, Stay: ref("s1"), System: reconcile.SystemKeyBox, Kind: reconcile.KindKeyBoxAccess, RoomID: "r302", RemoteID: "A1",
				Status: active, Secret: "4821", Arrival: date(arrival), Departure: date("2026-06-14"), Valid: win},
			{ID: 2, Stay: ref("s1"), System: reconcile.System3RPMS, Kind: reconcile.KindKeyStorageKey, RoomID: "r302", RemoteID: "K1",
				Status: active, Assigned: true, DerivedFrom: 1, Arrival: date(arrival), Departure: date("2026-06-14")},
		}
	}
	onKey := func(s reconcile.Stay) reconcile.Stay {
		return withKey(s, reconcile.RemoteKey{ID: "K1", Type: string(reconcile.KindKeyStorageKey), PIN: "4821"})
	}
	runSummaries(t, []planCase{
		{name: "arrival moved within the past", stays: []reconcile.Stay{onKey(stay("s1", "r302", "2026-06-10", "2026-06-14"))}, creds: recorded("2026-06-09")},
		{name: "arrival moved into the future", stays: []reconcile.Stay{onKey(stay("s1", "r302", "2026-06-11", "2026-06-14"))}, creds: recorded("2026-06-09"),
			want: []string{"1 create s1 - soon", "2 delete s1 A1 revoke", "2 create s1 - soon", "3 revoke s1 K1 revoke", "3 delete s1 K1 revoke", "3 assign s1 - soon"}},
	})
}
