package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// TestShardSpreadRemovedPropertyNamed: the shards-spread layout (one claim
// per shard, mounted at /data: the same state path, but no shard sees
// another's file). sandbox-hotel (the config's first property) is in shard
// 0 of 2, sandbox-apartments in shard 1 beside sandbox-apartments-c, which
// keeps shard 1 running. The apartments are removed from the config: shard
// 0, which names removed properties, cannot see shard 1's file to take
// their record over, so shard 1, which holds their live credentials, names
// them: exactly one shard does. Once the hotel is removed too, shard 0
// runs no property, yet names the hotel's, which its claim holds.
func TestShardSpreadRemovedPropertyNamed(t *testing.T) {
	t.Parallel()
	fw, text, second := apartmentsCWorld(t)
	orig := []byte(text)
	if shardOf("sandbox-apartments-c", 2) != 1 || shardOf("sandbox-apartments", 2) != 1 || shardOf("sandbox-hotel", 2) != 0 {
		t.Fatal("shards moved")
	}
	base := fw.statePath()
	dir := filepath.Dir(fw.cfg)
	cfgs := make([]string, 3) // a volume and a config for each shard of up to 3
	write := func(text string) {
		for i := range cfgs {
			vol := filepath.Join(dir, fmt.Sprintf("vol-%d", i))
			os.MkdirAll(vol, 0o700)
			cfgs[i] = filepath.Join(dir, fmt.Sprintf("k-%d.yaml", i))
			// The key file stays where it was (beside the config).
			txt := strings.Replace(text, "state: "+base, "state: "+filepath.Join(vol, "k.db"), 1)
			if txt == text {
				t.Fatalf("no state line %q in\n%s", base, text)
			}
			if err := os.WriteFile(cfgs[i], []byte(txt), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(string(orig))
	nightOf := func(n int, cmds ...string) []reconcile.Problem {
		t.Helper()
		return shardNight(t, fw, n, func(i int) string { return cfgs[i] }, cmds...)
	}
	night := func(cmds ...string) []reconcile.Problem { t.Helper(); return nightOf(2, cmds...) }
	if p := night("backfill", "run"); len(p) != 0 {
		t.Fatalf("with both listed: %+v", p)
	}
	cut := strings.Index(string(orig), "  - name: sandbox-apartments")
	if cut < 0 {
		t.Fatal("no apartments")
	}
	write(string(orig[:cut]) + second)
	vol1 := shardState(filepath.Join(dir, "vol-1", "k.db"), shardSpec{1, 2})
	held := recordedHolds(t, []string{vol1}, "G1")
	if len(held) == 0 {
		t.Fatalf("%s holds nothing of G1", vol1)
	}
	named := night("run")
	if len(named) != 1 || named[0].Kind != reconcile.ProblemPropertyRemoved || named[0].Property != "sandbox-apartments" {
		t.Errorf("after removing the apartments (live credentials in shard 1's claim): %d shards name them, want 1: %+v", len(named), named)
	}
	// The hotel goes too: shard 0 runs no property now, but its claim holds
	// the hotel's live credentials, which shard 1 cannot see. Shard 0 names
	// them, and shard 1 the apartments'.
	hotel := strings.Index(string(orig), "  - name: sandbox-hotel")
	if hotel < 0 {
		t.Fatal("no hotel")
	}
	write(string(orig[:hotel]) + second)
	byProperty := map[string]int{}
	for _, p := range night("run") {
		if p.Kind == reconcile.ProblemPropertyRemoved {
			byProperty[p.Property]++
		}
	}
	if byProperty["sandbox-hotel"] != 1 || byProperty["sandbox-apartments"] != 1 || len(byProperty) != 2 {
		t.Errorf("after removing the hotel too, the removed properties named: %v, want the hotel and the apartments once each", byProperty)
	}
	// status of shard 0, which runs no property, reads the file it holds.
	if r := mustRunText(t, ExitOK, fw.getenv, "status", "--config", cfgs[0], "--shard", "0/2", "--now", fw.now.Format(time.RFC3339)); !strings.Contains(r.stdout, "needs a person: sandbox-hotel:") {
		t.Errorf("status of shard 0/2, which holds the hotel's credentials, said:\n%s%s", r.stdout, r.stderr)
	}
	// Three shards now, each on the volume of its index: the old files stay
	// on theirs, where the shard of that index (running a property or none)
	// finds them and goes on naming what they hold.
	for _, cmds := range [][]string{{"backfill"}, {"run"}, {"run"}} {
		byProperty := map[string]int{}
		for _, p := range nightOf(3, cmds...) {
			if p.Kind == reconcile.ProblemPropertyRemoved {
				byProperty[p.Property]++
			}
		}
		if byProperty["sandbox-hotel"] != 1 || byProperty["sandbox-apartments"] != 1 || len(byProperty) != 2 {
			t.Errorf("three shards, %s: the removed properties named: %v, want the hotel and the apartments once each", cmds[0], byProperty)
		}
	}
}

// apartmentsCWorld is a world of the hotel (s1 in r101) and the apartments
// (G1 in L1) with a third property, sandbox-apartments-c: room L2 of the
// apartments' Guestway organisation (a split organisation, so in the
// apartments' shard). It returns the config's text with all three, and
// apartments-c's part of it.
func apartmentsCWorld(t *testing.T) (fw *faultWorld, text, apartmentsC string) {
	t.Helper()
	fw = newFaultWorld(t, map[string]string{"r101": "pin"}, map[string]string{"L1": "qr", "L2": "qr"})
	fw.hotelStay("s1", "r101", 0, 2)
	fw.addReservation("G1", "L1", 0, 3)
	orig, err := os.ReadFile(fw.cfg)
	if err != nil {
		t.Fatal(err)
	}
	apt := string(orig[strings.Index(string(orig), "  - name: sandbox-apartments"):])
	l2 := "      L2: {method: qr, portals: [portal-L2]}\n"
	if !strings.Contains(apt, l2) {
		t.Fatalf("no L2 line in\n%s", apt)
	}
	one := strings.Replace(string(orig), l2, "", 1)
	apartmentsC = strings.Replace(strings.Replace(apt, "name: sandbox-apartments", "name: sandbox-apartments-c", 1), "      L1: {method: qr, portals: [portal-L1]}\n", "", 1)
	text = one + apartmentsC
	if err := os.WriteFile(fw.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return fw, text, apartmentsC
}
