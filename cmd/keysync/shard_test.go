package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
)

// TestShardAssignmentStableAndComplete: every property is in exactly one
// shard of N, the shard depends on nothing but its name and N (not the
// config's order or the other properties), and growing N moves properties
// only to the new shard.
func TestShardAssignmentStableAndComplete(t *testing.T) {
	t.Parallel()
	names := make([]string, 300)
	for i := range names {
		names[i] = fmt.Sprintf("hotel-%03d", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var orders []*Config
	for range 2 {
		shuffled := slices.Clone(names)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		orders = append(orders, shardTestConfig(t, shuffled, ""))
	}
	for n := 1; n <= 12; n++ {
		count := make([]int, n)
		for _, name := range names {
			s := shardOf(name, n)
			if s < 0 || s >= n {
				t.Fatalf("shardOf(%q, %d) = %d", name, n, s)
			}
			count[s]++
			if n > 1 {
				if old := shardOf(name, n-1); s != old && s != n-1 {
					t.Errorf("N %d→%d moved %s from shard %d to old shard %d", n-1, n, name, old, s)
				}
			}
		}
		for s, c := range count {
			if c < len(names)/n/2 {
				t.Errorf("N=%d: shard %d has %d of %d properties: badly unbalanced", n, s, c, len(names))
			}
		}

		// Through the config: the shards' properties, in any config order,
		// partition the config.
		for _, order := range orders {
			seen := map[string]int{}
			for i, cfg := range shards(t, order, n) {
				for _, p := range cfg.Properties {
					if shardOf(p.Name, n) != i {
						t.Errorf("N=%d: shard %d holds %s, whose shard is %d", n, i, p.Name, shardOf(p.Name, n))
					}
					seen[p.Name]++
				}
			}
			for _, name := range names {
				if seen[name] != 1 {
					t.Errorf("N=%d: %s is in %d shards", n, name, seen[name])
				}
			}
		}
	}
	// Pinned: a change to the hash would move every deployed property to
	// another shard's state file.
	for name, want := range map[string][2]int{"hotel": {0, 0}, "annex": {0, 3}, "lake-apartments": {0, 2}, "hotel-ljubljana": {1, 2}} {
		if got := [2]int{shardOf(name, 2), shardOf(name, 4)}; got != want {
			t.Errorf("shards of %q among 2 and 4 = %v, want %v", name, got, want)
		}
	}
}

// shardTestConfig is a config of Guestway properties on one partner key
// (extra is added to each guestway section).
func shardTestConfig(t *testing.T, names []string, extra string) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("state: /data/keysync.db\nproperties:\n")
	for _, n := range names {
		fmt.Fprintf(&b, `  - name: %s
    timezone: Europe/Ljubljana
    guestway:
      base_url: https://api.guestway.io
      partner_key: pk
      token: gw_%s
%s    default_method: pin
`, n, n, extra)
	}
	cfg, err := ParseConfig(strings.NewReader(b.String()), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestShardFlags(t *testing.T) {
	t.Parallel()
	env := func(idx string) func(string) string {
		return func(k string) string {
			if k == "JOB_COMPLETION_INDEX" {
				return idx
			}
			return ""
		}
	}
	for _, c := range []struct {
		shard, shards, index string
		want                 shardSpec
		err                  string
	}{
		{want: shardSpec{}},
		{shard: "0/1", want: shardSpec{0, 1}},
		{shard: "3/4", want: shardSpec{3, 4}},
		{shards: "4", index: "2", want: shardSpec{2, 4}},
		{shard: "4/4", err: "want a shard from 0 to 3"},
		{shard: "-1/4", err: "want a shard from 0 to 3"},
		{shard: "1", err: "want I/N"},
		{shard: "0/0", err: "want a number of shards"},
		{shard: "0/x", err: "want a number of shards"},
		{shards: "4", err: "JOB_COMPLETION_INDEX is not set"},
		{shards: "4", index: "4", err: "want a shard from 0 to 3 (in the Indexed Job, completions and parallelism must equal --shards)"},
		{shard: "0/4", shards: "4", index: "0", err: "give one"},
		{index: "0", want: shardSpec{}}, // an Indexed Job of one completion
		{index: "2", err: "JOB_COMPLETION_INDEX is 2 (a pod of an Indexed Job of several completions) but neither --shards nor --shard is given"},
		{shard: "1/4", index: "1", want: shardSpec{1, 4}},
		{shard: "1/4", index: "0", want: shardSpec{1, 4}}, // an Indexed Job of one completion
		{shard: "0/4", index: "2", err: "every pod of the Indexed Job would run shard 0; give --shards 4 instead"},
	} {
		f := shardFlags{shard: c.shard, shards: c.shards}
		got, err := f.resolve(env(c.index))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("--shard %q --shards %q (index %q): err %v, want %q", c.shard, c.shards, c.index, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("--shard %q --shards %q (index %q) = %v, %v; want %v", c.shard, c.shards, c.index, got, err, c.want)
		}
	}
}

func TestShardStatePath(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/data/keysync.db": "/data/keysync.shard-1-of-4.db",
		"/data/state":      "/data/state.shard-1-of-4",
		"rel/k.sqlite3":    "rel/k.shard-1-of-4.sqlite3",
	} {
		if got := shardState(path, shardSpec{1, 4}); got != want {
			t.Errorf("shardState(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestShardLimitsOfTheWholeConfig: a partner key's limits, set on one of
// its properties only, are the same in the shard that runs that property
// and in the one that runs the other (each its share of them), the
// smallest cap with the reserve set beside it; a field's path names the
// property's place in the config file, not in the shard.
func TestShardLimitsOfTheWholeConfig(t *testing.T) {
	t.Parallel()
	// hotel is in shard 0 of 2, hotel-ljubljana in shard 1 (pinned above).
	text := `state: /data/keysync.db
properties:
  - name: hotel
    timezone: Europe/Ljubljana
    guestway:
      base_url: https://api.guestway.io
      partner_key: pk
      token: gw_hotel
      daily_cap: 1000
      reserve_for_revocations: 50
      rate_per_second: 2
      burst: 4
    default_method: pin
  - name: hotel-ljubljana
    timezone: Europe/Ljubljana
    guestway:
      base_url: https://api.guestway.io
      partner_key: pk
      token: gw_hotel-ljubljana
      reserve_for_revocations: 1500
    default_method: pin
`
	for _, s := range []shardSpec{{}, {0, 2}, {1, 2}} {
		cfg, err := ParseConfig(strings.NewReader(text), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if err := applyShard(cfg, s); err != nil {
			t.Fatal(err)
		}
		// The reserve set beside the smallest cap: hotel-ljubljana's 1,500
		// is of its own cap of 10,000, and would take all of hotel's 1,000.
		want, share := reconcile.DailyBudget{Cap: 1000, Reserve: 50}, 1.0
		if s.on() {
			want, share = reconcile.DailyBudget{Cap: 500, Reserve: 25}, 0.5
		}
		b := budgets(cfg)
		if len(b) != 1 {
			t.Fatalf("shard %v: budgets %v, want the one partner key", s, b)
		}
		for acct, got := range b {
			if got != want {
				t.Errorf("shard %v: budget %+v, want %+v", s, got, want)
			}
			if l := cfg.limits()[acct]; l.rate != 2*share || l.burst != int(4*share) {
				t.Errorf("shard %v: pace %v a second, burst %d; want %v and %d", s, l.rate, l.burst, 2*share, int(4*share))
			}
		}
		if got := cfg.field("hotel-ljubljana", "guestway.token"); got != "properties[1].guestway.token" {
			t.Errorf("shard %v: hotel-ljubljana's token is %s, want properties[1].guestway.token", s, got)
		}
	}
}

// TestShardOwner: of N shards, each property's record is kept by the shard
// that runs it, and a property the config no longer lists by the one that
// runs the config's first property, which alone names removed properties;
// unsharded there is no other owner.
func TestShardOwner(t *testing.T) {
	t.Parallel()
	names := []string{"org-7", "hotel", "hotel-ljubljana", "org-3", "org-12"}
	all := shardTestConfig(t, names, "")
	if _, sharded := all.owner("org-7"); sharded || !all.namesRemoved() {
		t.Error("unsharded, a property has an owner, or removed ones are not named")
	}
	for n := 1; n <= 6; n++ {
		runs := map[string]shardSpec{}
		cfgs := shards(t, all, n)
		for _, cfg := range cfgs {
			for _, p := range cfg.Properties {
				runs[p.Name] = cfg.shard
			}
		}
		naming := 0
		for i, cfg := range cfgs {
			for _, name := range names {
				if got, _ := cfg.owner(name); got != runs[name] {
					t.Errorf("N=%d shard %d: %s is owned by %v, want %v, which runs it", n, i, name, got, runs[name])
				}
			}
			if got, _ := cfg.owner("gone"); got != runs["org-7"] {
				t.Errorf("N=%d shard %d: a removed property is owned by %v, want %v, which runs org-7, the config's first", n, i, got, runs["org-7"])
			}
			if cfg.namesRemoved() {
				naming++
				if cfg.shard != runs["org-7"] {
					t.Errorf("N=%d shard %d names removed properties but does not run org-7", n, i)
				}
			}
		}
		if naming != 1 {
			t.Errorf("N=%d: %d shards name removed properties, want 1", n, naming)
		}
	}
}

// TestShardBudgetShare: a partner key used in two shards gives each half
// its cap and reserve by default, or the configured share; a share the
// shards together would overrun is refused; a credential one shard uses
// alone keeps its whole budget.
func TestShardBudgetShare(t *testing.T) {
	t.Parallel()
	// hotel is in shard 0 of 2, hotel-ljubljana in shard 1 (pinned above).
	names := []string{"hotel", "hotel-ljubljana"}
	budget := func(extra string, s shardSpec) (reconcile.DailyBudget, error) {
		cfg := shardTestConfig(t, names, extra)
		if err := applyShard(cfg, s); err != nil {
			return reconcile.DailyBudget{}, err
		}
		b := budgets(cfg)
		if len(b) != 1 {
			t.Fatalf("budgets = %v, want the one partner key", b)
		}
		for _, v := range b {
			return v, nil
		}
		return reconcile.DailyBudget{}, nil
	}
	for _, c := range []struct {
		extra string
		shard shardSpec
		want  reconcile.DailyBudget
		err   string
	}{
		{"", shardSpec{}, reconcile.DailyBudget{Cap: 10000, Reserve: 200}, ""},
		{"", shardSpec{0, 1}, reconcile.DailyBudget{Cap: 10000, Reserve: 200}, ""},
		{"", shardSpec{0, 2}, reconcile.DailyBudget{Cap: 5000, Reserve: 100}, ""},
		{"", shardSpec{1, 2}, reconcile.DailyBudget{Cap: 5000, Reserve: 100}, ""},
		{"      daily_cap: 9999\n      reserve_for_revocations: 3\n", shardSpec{1, 2}, reconcile.DailyBudget{Cap: 4999, Reserve: 1}, ""},
		{"      shard_budget_share: 0.3\n", shardSpec{1, 2}, reconcile.DailyBudget{Cap: 3000, Reserve: 60}, ""},
		{"      shard_budget_share: 0.5\n", shardSpec{0, 2}, reconcile.DailyBudget{Cap: 5000, Reserve: 100}, ""},
		{"      shard_budget_share: 0.6\n", shardSpec{0, 2}, reconcile.DailyBudget{}, "shard_budget_share: 0.6 × 2 shards"},
		// A share that leaves less than one request is refused, never
		// taken as no budget at all.
		{"      daily_cap: 1\n      reserve_for_revocations: 0\n", shardSpec{0, 2}, reconcile.DailyBudget{}, "daily_cap 1 shared by 2 shard(s), at 0.5 each, leaves each less than one request a day"},
		{"      daily_cap: 2\n      reserve_for_revocations: 0\n", shardSpec{0, 2}, reconcile.DailyBudget{Cap: 1}, ""},
		// A reserve rounds to one request at the least, within the cap.
		{"      daily_cap: 10\n      reserve_for_revocations: 1\n", shardSpec{0, 2}, reconcile.DailyBudget{Cap: 5, Reserve: 1}, ""},
		{"      daily_cap: 3\n      reserve_for_revocations: 1\n", shardSpec{0, 2}, reconcile.DailyBudget{Cap: 1, Reserve: 0}, ""},
		{"      daily_cap: 100\n      reserve_for_revocations: 0\n      shard_budget_share: 0.001\n", shardSpec{1, 2}, reconcile.DailyBudget{}, "leaves each less than one request a day"},
	} {
		got, err := budget(c.extra, c.shard)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q shard %v: err %v, want %q", c.extra, c.shard, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q shard %v: budget %+v, %v; want %+v", c.extra, c.shard, got, err, c.want)
		}
	}

	// Every shard's cap together stays within the credential's, for any N.
	many := make([]string, 30)
	for i := range many {
		many[i] = fmt.Sprintf("org-%d", i)
	}
	for n := 1; n <= 9; n++ {
		total := 0
		all := shardTestConfig(t, many, "      daily_cap: 1000\n")
		for _, cfg := range shards(t, all, n) {
			for _, b := range budgets(&cfg) {
				total += b.Cap
			}
		}
		if total > 1000 || total < 1000-n {
			t.Errorf("N=%d: the shards' caps add up to %d of 1000", n, total)
		}
	}

	// The share is validated like any field.
	if _, err := ParseConfig(strings.NewReader("properties:\n  - name: a\n    timezone: UTC\n    guestway: {base_url: https://g.example, partner_key: pk, token: gw_a, shard_budget_share: 1.5}\n    default_method: pin\n"), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "properties[0].guestway.shard_budget_share") {
		t.Errorf("share 1.5: %v", err)
	}
}

// A shard may hold no property (more shards than properties): it has
// nothing to do.
func TestShardWithoutProperties(t *testing.T) {
	t.Parallel()
	cfg := shardTestConfig(t, []string{"hotel"}, "")
	if err := applyShard(cfg, shardSpec{1, 2}); err != nil || len(cfg.Properties) != 0 {
		t.Errorf("err = %v, properties %d", err, len(cfg.Properties))
	}
}

// TestShardKeepsASplitHotelTogether: the properties of one 3RPMS endpoint
// and token (a split hotel), or of one Guestway organisation token, land in
// one shard, though their names alone would put them in different ones, in
// either config order; a property on another token keeps the shard of its
// name.
func TestShardKeepsASplitHotelTogether(t *testing.T) {
	t.Parallel()
	const n = 4
	a, b := "building-a", ""
	for i := 0; b == ""; i++ {
		if name := fmt.Sprintf("building-%d", i); shardOf(name, n) != shardOf(a, n) {
			b = name
		}
	}
	for _, source := range []string{
		`threerpms: {endpoint: "https://api.3rpms.example/graphql", token: %s}`,
		`guestway: {base_url: "https://api.guestway.example", partner_key: pk, token: gw_%s}`,
	} {
		property := func(name, token, rooms string) string {
			return fmt.Sprintf(`  - name: %s
    timezone: Europe/Ljubljana
    %s
    rooms: {%s}
`, name, fmt.Sprintf(source, token), rooms)
		}
		splitTogether(t, n, a, b, property)
	}
}

// splitTogether is TestShardKeepsASplitHotelTogether for one source, whose
// property config property writes.
func splitTogether(t *testing.T, n int, a, b string, property func(name, token, rooms string) string) {
	t.Helper()
	for _, order := range [][]string{
		{property(a, "hotel-token", "r1: pin"), property(b, "hotel-token", "r2: pin"), property("elsewhere", "other-token", "r1: pin")},
		{property("elsewhere", "other-token", "r1: pin"), property(b, "hotel-token", "r2: pin"), property(a, "hotel-token", "r1: pin")},
	} {
		cfg, err := ParseConfig(strings.NewReader("state: /data/keysync.db\nproperties:\n"+strings.Join(order, "")), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		where := map[string]int{}
		for i, c := range shards(t, cfg, n) {
			for _, p := range c.Properties {
				where[p.Name] = i
			}
		}
		if want := shardOf(min(a, b), n); where[a] != want || where[b] != want {
			t.Errorf("split hotel in shards %d and %d, want both in %d (that of %s)", where[a], where[b], want, min(a, b))
		}
		if where["elsewhere"] != shardOf("elsewhere", n) {
			t.Errorf("elsewhere in shard %d, want %d", where["elsewhere"], shardOf("elsewhere", n))
		}
	}
}

// TestShardPaceShare: in a shard, a credential other shards use too is
// paced at its share of the rate and burst; one only this shard uses keeps
// its whole pace.
func TestShardPaceShare(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		extra     string
		rate      float64
		burst     int
		wantRate  float64
		wantBurst int
	}{
		{"", 5, 10, 2.5, 5},
		{"      shard_budget_share: 0.3\n", 5, 10, 1.5, 3},
		{"      rate_per_second: 2\n      burst: 1\n", 2, 1, 1, 1},
	} {
		cfg := shardTestConfig(t, []string{"hotel", "hotel-ljubljana"}, c.extra) // shards 0 and 1 of 2
		if err := applyShard(cfg, shardSpec{0, 2}); err != nil {
			t.Fatal(err)
		}
		env := &environment{clock: reconcile.WallClock{}, getenv: func(string) string { return "" }}
		if _, err := env.buildRunner(cfg, nil, nil, &reconcile.Meter{}); err != nil {
			t.Fatal(err)
		}
		if len(env.limiters.m) != 1 {
			t.Fatalf("%d pacers, want the partner key's", len(env.limiters.m))
		}
		for _, p := range env.limiters.m {
			rate, burst := p.Rate()
			if want := c.wantRate * paceMargin; math.Abs(rate-want) > 1e-9 || burst != c.wantBurst {
				t.Errorf("%q: pace %v/s burst %d, want %v/s burst %d", c.extra, rate, burst, want, c.wantBurst)
			}
		}
	}
	// Unsharded, the whole pace.
	cfg := shardTestConfig(t, []string{"hotel", "hotel-ljubljana"}, "")
	env := &environment{clock: reconcile.WallClock{}, getenv: func(string) string { return "" }}
	if _, err := env.buildRunner(cfg, nil, nil, &reconcile.Meter{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range env.limiters.m {
		if rate, burst := p.Rate(); math.Abs(rate-5*paceMargin) > 1e-9 || burst != 10 {
			t.Errorf("unsharded: pace %v/s burst %d, want the whole 5/s burst 10", rate, burst)
		}
	}
}

// shards applies each of n shards to a copy of cfg: shard i's config is at
// index i.
func shards(t *testing.T, cfg *Config, n int) []Config {
	t.Helper()
	out := make([]Config, n)
	for i := range out {
		out[i] = *cfg
		if err := applyShard(&out[i], shardSpec{Index: i, Count: n}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
