package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// sharedRemovedSetup returns a world of two shards in the shared directory, both properties
// listed, backfilled and run; then the apartments are removed and a night
// runs at N=2 (shard 0 names them). The hotel is shard 0 at N=2 and N=3,
// so at N=3 shards 1 and 2 are empty.
func sharedRemovedSetup(t *testing.T) *faultWorld {
	t.Helper()
	fw := newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "qr"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.addReservation("G1", "L1", 0, 3)
	if shardOf("sandbox-hotel", 3) != 0 || shardOf("sandbox-hotel", 2) != 0 {
		t.Fatal("shards moved")
	}
	for i := range 2 {
		for _, cmd := range []string{"backfill", "run"} {
			if r := fw.exec(cmd, nil, "--shard", fmt.Sprintf("%d/2", i)); r.code != ExitOK {
				t.Fatalf("%s %d/2: %d\n%s", cmd, i, r.code, r.output())
			}
		}
	}
	removeApartments(t, fw)
	for i := range 2 {
		if r := fw.exec("run", nil, "--shard", fmt.Sprintf("%d/2", i)); r.code != ExitOK && r.code != ExitAttention {
			t.Fatalf("run %d/2 after removal: %d\n%s", i, r.code, r.output())
		}
	}
	fw.setNow(fw.now.Add(time.Hour))
	return fw
}

// TestShardEmptyBackfillBeforeTheOwner: the Indexed backfill Job after N
// goes 2 -> 3 runs its indexes concurrently, so an empty shard's index may
// start before shard 0/3 (which names removed properties) has made its
// file. In the directory the shards share, the empty shards exit 0 and make
// no file, and the removed apartments are named once.
func TestShardEmptyBackfillBeforeTheOwner(t *testing.T) {
	t.Parallel()
	fw := sharedRemovedSetup(t)
	named := 0
	for _, i := range []int{2, 1, 0} {
		r := fw.exec("backfill", nil, "--shard", fmt.Sprintf("%d/3", i))
		if i != 0 && r.code != ExitOK {
			t.Errorf("backfill of empty shard %d/3 exited %d, want 0:\n%s", i, r.code, r.output())
		}
		if r.rep != nil {
			for _, p := range r.rep.Problems {
				if p.Kind == reconcile.ProblemPropertyRemoved {
					named++
				}
			}
		}
		if i != 0 {
			if f := shardState(fw.statePath(), shardSpec{i, 3}); fileExists(f) {
				t.Errorf("empty shard %d/3 made a state file %s", i, f)
			}
		}
	}
	if named != 1 {
		t.Errorf("the removed apartments were named %d times during the backfills, want 1", named)
	}
}

// TestShardEmptyRunBeforeTheOwnersBackfill: the nightly run of an empty
// shard of the new N, fired before the backfill Job's index 0 ran, has
// nothing to do and exits 0: it does not fail its index.
func TestShardEmptyRunBeforeTheOwnersBackfill(t *testing.T) {
	t.Parallel()
	fw := sharedRemovedSetup(t)
	r := fw.exec("run", nil, "--shard", "2/3")
	if r.code != ExitOK {
		t.Errorf("run of empty shard 2/3 exited %d, want 0:\n%s", r.code, r.output())
	}
}

// TestShardEmptyCheckJSON: check --json on an empty shard prints JSON.
func TestShardEmptyCheckJSON(t *testing.T) {
	t.Parallel()
	fw := sharedRemovedSetup(t)
	for i := range 3 {
		fw.exec("backfill", nil, "--shard", fmt.Sprintf("%d/3", 2-i))
	}
	r := fw.exec("check", nil, "--shard", "1/3")
	if r.code != ExitOK || !strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
		t.Errorf("check --json of empty shard 1/3 exited %d, stdout not JSON:\n%s", r.code, r.stdout)
	}
}

// TestShardNonOwnerBackfillBeforeTheOwner: a shard that runs a property
// but does not name removed ones, in the shared directory, backfilling at a
// new N before shard 0/3 made its file, leaves the removed apartments to
// that shard: they are named by one shard.
func TestShardNonOwnerBackfillBeforeTheOwner(t *testing.T) {
	t.Parallel()
	fw, orig, second := apartmentsCWorld(t)
	c3 := shardOf("sandbox-apartments-c", 3)
	if c3 == shardOf("sandbox-hotel", 3) {
		t.Fatal("apartments-c and the hotel share a shard of 3 by their names: the test needs them apart")
	}
	for i := range 2 {
		for _, cmd := range []string{"backfill", "run"} {
			if r := fw.exec(cmd, nil, "--shard", fmt.Sprintf("%d/2", i)); r.code != ExitOK {
				t.Fatalf("%s %d/2: %d\n%s", cmd, i, r.code, r.output())
			}
		}
	}
	cut := strings.Index(orig, "  - name: sandbox-apartments\n")
	if err := os.WriteFile(fw.cfg, []byte(orig[:cut]+second), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		fw.exec("run", nil, "--shard", fmt.Sprintf("%d/2", i))
	}
	fw.setNow(fw.now.Add(time.Hour))
	byShard := map[int]int{}
	for _, i := range []int{2, 1, 0} {
		r := fw.exec("backfill", nil, "--shard", fmt.Sprintf("%d/3", i))
		if r.rep != nil {
			for _, p := range r.rep.Problems {
				if p.Kind == reconcile.ProblemPropertyRemoved && p.Property == "sandbox-apartments" {
					byShard[i]++
				}
			}
		}
	}
	if len(byShard) != 1 {
		t.Errorf("the removed apartments named by shards %v during the N=3 backfills, want by one", byShard)
	}
}
