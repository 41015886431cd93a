package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
)

// End-to-end proofs that keysync decides from what 3RPMS shows, not from
// what its errors say: each scenario runs against the 3RPMS sandbox with
// its error codes and again with errors that carry only a message, the way
// a 3RPMS written from the same API document may answer.

// KEYSYNC_TEST_3RPMS_ERRORS makes every 3RPMS sandbox in this package's
// tests answer as a 3RPMS written from the same API document might:
// "message" sets messageOnly3RPMS (errors with their message alone),
// "rollback" sets rollback3RPMS (a mutation document with a failed field
// is undone whole), "message,rollback" both. .ci/run runs the package
// once more that way.
var messageOnly3RPMS, rollback3RPMS = test3RPMSErrors("message"), test3RPMSErrors("rollback")

func test3RPMSErrors(mode string) bool {
	return slices.Contains(strings.Split(os.Getenv("KEYSYNC_TEST_3RPMS_ERRORS"), ","), mode)
}

// testSandboxes are the four fakes as every test here starts them: empty,
// at t0, without rate limits, and answering 3RPMS errors as
// KEYSYNC_TEST_3RPMS_ERRORS says.
func testSandboxes() *sandboxes {
	sb := newSandboxes(t0, false, nil)
	sb.rpms.SetMessageOnlyErrors(messageOnly3RPMS)
	sb.rpms.SetRollbackDocuments(rollback3RPMS)
	return sb
}

// errorModes runs f against the 3RPMS sandbox's codes and against
// message-only errors.
func errorModes(t *testing.T, f func(t *testing.T, fw *faultWorld)) {
	for _, mode := range []struct {
		name        string
		messageOnly bool
	}{{"codes", false}, {"message-only", true}} {
		t.Run(mode.name, func(t *testing.T) {
			fw := newFaultWorld(t, pinRooms(6), nil)
			fw.sb.rpms.SetMessageOnlyErrors(mode.messageOnly)
			f(t, fw)
		})
	}
}

// pinRooms maps rooms r101.. to the pin method.
func pinRooms(n int) map[string]string {
	out := map[string]string{}
	for i := range n {
		out[roomID(i)] = "pin"
	}
	return out
}

func roomID(i int) string { return "r" + strconv.Itoa(101+i) }

// injectForeign puts another integration's PIN key on a stay.
func (fw *faultWorld) injectForeign(stay string) string {
	fw.t.Helper()
	id, err := fw.sb.rpms.InjectKey("other-integration", rpmsandbox.Key{Type: rpmsandbox.KeyTypePin, PIN: "604719"}, stay)
	if err != nil {
		fw.t.Fatal(err)
	}
	return id
}

// ourKeys returns keysync's 3RPMS keys that exist, by id.
func (fw *faultWorld) ourKeys() map[string]rpmsandbox.KeyView {
	out := map[string]rpmsandbox.KeyView{}
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner == sandboxIntegration && !k.Deleted {
			out[k.ID] = k
		}
	}
	return out
}

// TestObserveBackfillBesideOtherIntegrations: the first backfill of a hotel
// where another integration keys some rooms (an arrival, a stay in house and
// a stay that left yesterday) changes nothing of theirs: a refused claim
// means "not ours". It exits 6, as a run would: the guest in house in a
// room the config has keysync key holds their key, which needs a person.
func TestObserveBackfillBesideOtherIntegrations(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("s1", "r101", 0, 2)
		fw.hotelStay("s2", "r102", -1, 2)
		fw.hotelStay("s3", "r103", 1, 3)
		fw.hotelStay("s4", "r104", -2, -1)
		for _, s := range []string{"s2", "s3", "s4"} {
			fw.injectForeign(s)
		}
		foreign := fw.foreign()
		rep := fw.mustExec(ExitAttention, "backfill").rep
		var conflicts, attention []string
		for _, n := range rep.Notes() {
			if n.Kind == reconcile.NoteConflict {
				conflicts = append(conflicts, n.Stay.ID)
			}
			if n.Attention {
				attention = append(attention, n.Stay.ID)
			}
		}
		slices.Sort(conflicts)
		if !slices.Equal(conflicts, []string{"s2", "s3", "s4"}) {
			t.Errorf("conflict notes for %q, want s2, s3, s4", conflicts)
		}
		// s3 arrives tomorrow afternoon, s4 has left.
		if !slices.Equal(attention, []string{"s2"}) {
			t.Errorf("notes needing a person for %q, want s2 (in house)", attention)
		}
		fw.checkInvariants(foreign)
	})
}

// assigns503 answers 503 to every 3RPMS mutation that assigns a key,
// without passing it on.
var assigns503 = when(func(r *http.Request) bool { return mutationNaming(r, "addRoomAccessKey") }, sinktest.Unavailable)

// TestObserveUnassignedKeysCleanedUp: keys keysync created but could not
// assign (the assign requests failed), then deleted by 3RPMS's cleanup of
// unassigned keys. The next run's assigns are refused and retire them; the
// run after that keys both stays.
func TestObserveUnassignedKeysCleanedUp(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("s1", "r101", 1, 3)
		fw.hotelStay("s2", "r102", 4, 6)
		fw.setFault(assigns503)
		fw.mustExec(ExitPartial, "backfill")
		fw.setFault(nil)
		if gone := fw.sb.rpms.CleanupUnassignedNow(); len(gone) != 2 {
			t.Fatalf("3RPMS's cleanup deleted %v, want the two unassigned keys", gone)
		}
		// The keys are fresh: keysync tries them, 3RPMS refuses, they are
		// retired; the run after that keys both stays.
		r := fw.exec("run", nil)
		if r.code != ExitPartial {
			t.Fatalf("run exited %d, want %d: %s", r.code, ExitPartial, r.output())
		}
		fw.mustExec(ExitOK, "run")
		fw.checkInvariants("")
	})
}

// TestObserveLostRevokeAnswer: a request that revoked and deleted a
// departed stay's key acted, but its answer was lost. The next run reads
// the stay without the key and settles; the run after plans nothing.
func TestObserveLostRevokeAnswer(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("s1", "r101", -2, 0)
		fw.hotelStay("s2", "r102", 0, 2)
		fw.mustExec(ExitOK, "backfill")
		key := fw.key("s1").ID
		fw.setNow(fw.now.Add(14 * time.Hour)) // s1 left at 11:00 (+2 h grace)
		fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "removeRoomAccessKey") }, fault.Drop))
		if r := fw.exec("run", nil); r.code != ExitPartial {
			t.Fatalf("run with the answer lost exited %d, want %d: %s", r.code, ExitPartial, r.output())
		}
		fw.setFault(nil)
		if _, live := fw.ourKeys()[key]; live {
			t.Fatalf("the lost request did not act: key %s still exists", key)
		}
		fw.mustExec(ExitOK, "run")
		fw.checkInvariants("")
	})
}

// TestObserveBackfillAfterStateLoss: the state file is lost after a stay
// left but before 3RPMS's own cleanup. The next backfill withdraws the key
// of ours it finds on the departed stay, adopts the others, creates none,
// and leaves another integration's key on a departed stay alone.
func TestObserveBackfillAfterStateLoss(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("s1", "r101", -1, 0)
		fw.hotelStay("s2", "r102", 0, 3)
		fw.hotelStay("s3", "r103", -1, 0)
		fw.injectForeign("s3")
		fw.mustExec(ExitAttention, "backfill") // s3, in house, holds another integration's key
		departed := fw.key("s1").ID
		foreign := fw.foreign()
		fw.loseState()
		fw.setNow(fw.now.Add(24 * time.Hour)) // s1 and s3 left yesterday
		rep := fw.mustExec(ExitOK, "backfill").rep
		if n := countOps(rep, reconcile.OpCreate, reconcile.ResultDone); n != 0 {
			t.Errorf("backfill after state loss created %d keys", n)
		}
		if _, live := fw.ourKeys()[departed]; live {
			t.Errorf("key %s of departed stay s1 was not withdrawn", departed)
		}
		if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != "" {
			t.Errorf("departed stay s1 still holds %s", s.KeyID)
		}
		fw.checkInvariants(foreign)
	})
}

// TestObserveRoomsKeyedByName: rooms keyed by the names the report shows
// ("101") instead of room_setup ids is a config error naming the id meant,
// and nothing is revoked; rooms keyed by ids the source never shows leave
// every stay unmapped, which the fail-safe refuses.
func TestObserveRoomsKeyedByName(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, pinRooms(6), nil)
	for i := range 6 {
		fw.hotelStay("s"+strconv.Itoa(i+1), roomID(i), 0, 2)
	}
	fw.mustExec(ExitOK, "backfill")
	before := fw.ourKeys()
	orig, err := os.ReadFile(fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(from, to string) {
		if err := os.WriteFile(fw.cfg, []byte(strings.ReplaceAll(string(orig), from, to)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	rewrite("      r1", "      1")
	r := fw.exec("run", nil)
	if r.code != ExitConfig || !strings.Contains(r.output(), `rooms["101"]`) || !strings.Contains(r.output(), `rooms["r101"]`) {
		t.Errorf("rooms keyed by name: exit %d, want %d naming rooms[\"101\"] and rooms[\"r101\"]:\n%s", r.code, ExitConfig, r.output())
	}
	rewrite("      r1", "      x1")
	if r := fw.exec("run", nil); r.code != ExitUnsafe {
		t.Errorf("rooms keyed by unknown ids: exit %d, want %d (fail-safe):\n%s", r.code, ExitUnsafe, r.output())
	}
	if after := fw.ourKeys(); len(after) != len(before) {
		t.Errorf("keys of ours went from %d to %d", len(before), len(after))
	}
	rewrite("", "")
	fw.mustExec(ExitOK, "run")
	fw.checkInvariants("")
}

// TestObserveRemovedPropertyNeedsAPerson: a property taken out of the
// config still holds live credentials that nothing withdraws; every run
// names it as a problem (exit 6) and touches none of them.
func TestObserveRemovedPropertyNeedsAPerson(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "qr"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.addReservation("G1", "L1", 0, 2)
	fw.mustExec(ExitOK, "backfill")
	invites := len(fw.invites())
	removeApartments(t, fw)
	r := fw.exec("run", nil)
	if r.code != ExitAttention || r.rep == nil || len(r.rep.Problems) != 1 {
		t.Fatalf("run exited %d with problems %+v, want %d and one problem:\n%s", r.code, r.rep, ExitAttention, r.output())
	}
	if p := r.rep.Problems[0]; p.Kind != reconcile.ProblemPropertyRemoved || p.Property != "sandbox-apartments" || !strings.Contains(p.Detail, "no longer lists") {
		t.Errorf("problem %+v", p)
	}
	if want := "a person is needed (see the report's Needs a person): sandbox-apartments: live credentials of a property the config no longer lists"; r.err == nil || r.err.Error() != want {
		t.Errorf("exit error %v, want %q", r.err, want)
	}
	// A plan names it too, where its headline says.
	plan := fw.execText("plan", nil).stdout
	wantAll(t, "the plan", plan, "Nothing keysync can do, but 1 item(s) need a person (see Needs a person below).",
		"Needs a person (1):\n  sandbox-apartments: the state holds 1 live credential(s) of property sandbox-apartments, which the config no longer lists")
	if n := len(fw.invites()); n != invites {
		t.Errorf("invites went from %d to %d", invites, n)
	}
}

// TestObserveBackfillCutShort: after the state file was lost, the backfill's
// claims get an answer with errors and no data (a server failing as a
// whole). Nothing is taken as "not ours": the backfill is partial, and the
// nightly run that follows claims again, adopts our keys and withdraws the
// departed stay's.
func TestObserveBackfillCutShort(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("s1", "r101", -1, 0)
		fw.hotelStay("s2", "r102", 0, 3)
		fw.mustExec(ExitOK, "backfill")
		kept, departed := fw.key("s2").ID, fw.key("s1").ID
		fw.loseState()
		fw.setNow(fw.now.Add(24 * time.Hour))
		fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "") },
			answerJSON(`{"data":null,"errors":[{"message":"Internal server error"}]}`)))
		if r := fw.exec("backfill", nil); r.code != ExitPartial {
			t.Fatalf("backfill exited %d, want %d: %s", r.code, ExitPartial, r.output())
		}
		fw.setFault(nil)
		rep := fw.mustExec(ExitOK, "run").rep
		if n := countOps(rep, reconcile.OpClaim, reconcile.ResultDone); n != 2 {
			t.Errorf("the run after the cut-short backfill answered %d claims, want 2", n)
		}
		if s, _ := fw.sb.rpms.Stay("s2"); s.KeyID != kept {
			t.Errorf("s2 holds %q, want its key %s kept", s.KeyID, kept)
		}
		if _, live := fw.ourKeys()[departed]; live {
			t.Errorf("key %s of departed stay s1 was not withdrawn", departed)
		}
		fw.checkInvariants("")
	})
}

// TestObserveCancelledStayRevokeRefused: a cancelled reservation's stay is
// hidden from reads, and 3RPMS refuses to take the key off it. keysync
// cannot see the stay, so it settles and retires the key rather than fail
// every night; when the reservation comes back holding the key, the key is
// ours again, not another integration's.
func TestObserveCancelledStayRevokeRefused(t *testing.T) {
	t.Parallel()
	errorModes(t, func(t *testing.T, fw *faultWorld) {
		fw.hotelStay("s1", "r101", 1, 3)
		fw.hotelStay("s2", "r102", 1, 3)
		fw.mustExec(ExitOK, "backfill")
		key := fw.key("s1").ID
		if err := fw.sb.rpms.CancelReservation("res-s1"); err != nil {
			t.Fatal(err)
		}
		fw.setFault(when(func(r *http.Request) bool { return mutationNaming(r, "removeRoomAccessKey") },
			answerJSON(`{"data":{"a0":null,"a1":null},"errors":[{"message":"try again later"}]}`)))
		rep := fw.mustExec(ExitOK, "run").rep
		if n := countOps(rep, reconcile.OpRevoke, reconcile.ResultSettled); n != 1 {
			t.Errorf("settled revokes: %d, want 1 (%v)", n, rep.Counts())
		}
		fw.setFault(nil)
		fw.mustExec(ExitOK, "run") // nothing to do while the stay is unseen
		if err := fw.sb.rpms.ReactivateReservation("res-s1"); err != nil {
			t.Fatal(err)
		}
		rep = fw.mustExec(ExitOK, "run").rep
		for _, n := range rep.Notes() {
			if n.Kind == reconcile.NoteConflict {
				t.Errorf("our key %s taken for another integration's: %+v", key, n)
			}
		}
		if s, _ := fw.sb.rpms.Stay("s1"); s.KeyID != key {
			t.Errorf("s1 holds %q, want its key %s back", s.KeyID, key)
		}
		fw.checkInvariants("")
	})
}

// TestShardRemovedPropertyNamedOnce: the apartments are removed from a
// config run in shards. Every night exactly one shard names their live
// credentials (the one that runs the config's first property), the others
// keep quiet; after N changes, that shard of the new N takes over their
// record from the old files and goes on naming them. Nothing is withdrawn.
func TestShardRemovedPropertyNamedOnce(t *testing.T) {
	t.Parallel()
	fw := newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "qr"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.addReservation("G1", "L1", 0, 3)
	nights := func(n int, cmds ...string) []reconcile.Problem { t.Helper(); return shardNight(t, fw, n, nil, cmds...) }
	if p := nights(2, "backfill", "run"); len(p) != 0 {
		t.Fatalf("with both properties listed: problems %+v", p)
	}
	invites := len(fw.invites())
	removeApartments(t, fw)
	once := func(what string, named []reconcile.Problem) {
		t.Helper()
		if len(named) != 1 || named[0].Kind != reconcile.ProblemPropertyRemoved || named[0].Property != "sandbox-apartments" {
			t.Errorf("%s: problems %+v, want sandbox-apartments named once, as removed", what, named)
		}
	}
	// A plan takes no record over, and a removed property's changes nothing
	// a plan does: the plan of the shard that names it goes through, and is
	// saved.
	out := filepath.Join(t.TempDir(), "p.plan")
	if r := fw.exec("plan", nil, "--shard", fmt.Sprintf("%d/2", shardOf("sandbox-hotel", 2)), "--out", out); (r.code != ExitOK && r.code != ExitAttention) || !fileExists(out) {
		t.Errorf("plan --out of the hotel's shard after the apartments were removed exited %d, saved %v:\n%s", r.code, fileExists(out), r.output())
	}
	once("N=2", nights(2, "run"))
	fw.setNow(fw.now.Add(time.Hour))
	once("going to N=3, the backfills", nights(3, "backfill"))
	once("N=3, the first runs", nights(3, "run"))
	hotelShard := shardState(fw.statePath(), shardSpec{shardOf("sandbox-hotel", 3), 3})
	if len(recordedHolds(t, []string{hotelShard}, "G1")) == 0 {
		t.Errorf("%s, which names the removed apartments, did not take over G1's record", hotelShard)
	}
	once("N=3, the night after", nights(3, "run"))
	if n := len(fw.invites()); n != invites {
		t.Errorf("invites went from %d to %d", invites, n)
	}
}

// removeApartments removes sandbox-apartments, the config's last property,
// from fw's config.
func removeApartments(t *testing.T, fw *faultWorld) {
	t.Helper()
	orig, err := os.ReadFile(fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(string(orig), "  - name: sandbox-apartments")
	if cut < 0 {
		t.Fatalf("no apartments property in\n%s", orig)
	}
	if err := os.WriteFile(fw.cfg, orig[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
}

// shardNight runs cmds in each shard of n, in order, on the config cfgOf
// gives the shard (nil: fw's), each of which must exit 0 or 6, and returns
// the problems their reports name.
func shardNight(t *testing.T, fw *faultWorld, n int, cfgOf func(shard int) string, cmds ...string) []reconcile.Problem {
	t.Helper()
	var named []reconcile.Problem
	for i := range n {
		if cfgOf != nil {
			fw.cfg = cfgOf(i)
		}
		for _, cmd := range cmds {
			r := fw.exec(cmd, nil, "--shard", fmt.Sprintf("%d/%d", i, n))
			if r.code != ExitOK && r.code != ExitAttention {
				t.Fatalf("%s --shard %d/%d exited %d:\n%s", cmd, i, n, r.code, r.output())
			}
			if r.rep != nil {
				named = append(named, r.rep.Problems...)
			}
		}
	}
	return named
}
