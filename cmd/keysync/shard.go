package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/keysync/keysync/reconcile"
)

// maxShards bounds N: far more shards than properties only makes empty
// shards.
const maxShards = 1000

// shardSpec is one shard of N: --shard I/N, or --shards N with I from the
// JOB_COMPLETION_INDEX of a Kubernetes Indexed Job. The zero value is no
// sharding.
type shardSpec struct {
	Index, Count int
}

func (s shardSpec) on() bool { return s.Count > 0 }

func (s shardSpec) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// shardFlags registers --shard and --shards on a command's flags; call
// resolve after parsing.
type shardFlags struct{ shard, shards string }

func (f *shardFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.shard, "shard", "", "take shard I of N of the properties (I/N, I from 0), with its own state file and lock")
	fs.StringVar(&f.shards, "shards", "", "like --shard, with I from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job): the number of shards N")
}

// resolve turns the flags into a shardSpec.
func (f *shardFlags) resolve(getenv func(string) string) (shardSpec, error) {
	switch {
	case f.shard != "" && f.shards != "":
		return shardSpec{}, errors.New("--shard and --shards: give one (--shard I/N, or --shards N in an Indexed Job)")
	case f.shard != "":
		i, n, ok := strings.Cut(f.shard, "/")
		if !ok {
			return shardSpec{}, fmt.Errorf("--shard %q: want I/N, like 0/4 (shards are numbered from 0)", f.shard)
		}
		s, err := parseShard("--shard", i, n)
		if err != nil {
			return s, err
		}
		// In a pod of an Indexed Job of several completions, a --shard
		// that names another index than the pod's (a template carrying
		// --shard 0/N) would run one shard in every pod, each on its own
		// volume: its credentials issued once per pod.
		if x := getenv("JOB_COMPLETION_INDEX"); x != "" && x != "0" && x != strconv.Itoa(s.Index) {
			return shardSpec{}, fmt.Errorf("--shard %s in a pod whose JOB_COMPLETION_INDEX is %s: every pod of the Indexed Job would run shard %d; give --shards %d instead, which takes each pod's own index", f.shard, x, s.Index, s.Count)
		}
		return s, nil
	case f.shards != "":
		i := getenv("JOB_COMPLETION_INDEX")
		if i == "" {
			return shardSpec{}, errors.New("--shards: JOB_COMPLETION_INDEX is not set (it is in an Indexed Job's pods); elsewhere use --shard I/N")
		}
		s, err := parseShard("--shards (with JOB_COMPLETION_INDEX="+i+")", i, f.shards)
		if err != nil {
			return s, fmt.Errorf("%w (in the Indexed Job, completions and parallelism must equal --shards)", err)
		}
		return s, nil
	}
	if i := getenv("JOB_COMPLETION_INDEX"); i != "" && i != "0" {
		// An index past 0 means more than one completion: each pod
		// would run every property, on its own state where the volumes
		// differ (every credential issued once per pod).
		return shardSpec{}, fmt.Errorf("JOB_COMPLETION_INDEX is %s (a pod of an Indexed Job of several completions) but neither --shards nor --shard is given, so every pod would run every property: give --shards N, with the Job's completions and parallelism N", i)
	}
	return shardSpec{}, nil
}

func parseShard(what, index, count string) (shardSpec, error) {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > maxShards {
		return shardSpec{}, fmt.Errorf("%s: N %q: want a number of shards from 1 to %d", what, count, maxShards)
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= n {
		return shardSpec{}, fmt.Errorf("%s: I %q: want a shard from 0 to %d", what, index, n-1)
	}
	return shardSpec{Index: i, Count: n}, nil
}

// shardOf is the shard a property belongs to among n: rendezvous (highest
// random weight) hashing of its name. Each shard scores the property with
// SHA-256 over the name and the shard's number, and the highest score wins.
// It depends on nothing but the name and n, so the order of the config's
// properties and the other properties in it never move one; every property
// is in exactly one shard. And when N grows to N+1, the only properties
// that move are those the new shard wins (about 1/(N+1) of them), none
// between the old shards, where a hash mod N would move most of them.
func shardOf(name string, n int) int {
	best, bestScore := 0, uint64(0)
	for i := range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		sum := sha256.Sum256(append([]byte(name+"\x00"), b[:]...))
		if score := binary.BigEndian.Uint64(sum[:8]); i == 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// shardState is the state file of a shard: the configured path with
// .shard-I-of-N before its extension (/data/keysync.db becomes
// /data/keysync.shard-0-of-4.db). N is in the name so that changing the
// number of shards starts fresh state files, which `keysync run` refuses
// until `keysync backfill` has adopted each shard's keys: a property that
// moved to another shard is never reconciled against a state file that
// does not know its keys.
func shardState(path string, s shardSpec) string {
	return shardPath(path, strconv.Itoa(s.Index), strconv.Itoa(s.Count))
}

// shardFiles returns the shards' state files beside state (shardState's
// names, for any N), which share its key file.
//
// The directory is listed rather than globbed: a state path whose
// directory or name holds a character a glob reads as a wildcard ("[",
// "*", "?") would otherwise find none of its own shard files, or another
// directory's.
func shardFiles(state string) []string {
	dir, base := filepath.Split(state)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + ".shard-"
	entries, err := os.ReadDir(cmp.Or(dir, "."))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if len(name) < len(prefix)+len(ext) || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) {
			continue
		}
		if strings.Contains(name[len(prefix):len(name)-len(ext)], "-of-") {
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out
}

// shardPath is the state file of shard index of count beside path.
func shardPath(path, index, count string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".shard-" + index + "-of-" + count + ext
}

// applyShard narrows a loaded config to one shard (which may be left with
// no properties: see emptyShard): its properties, its
// state file (and so its lock, which is on the state file) and its share
// of the daily budget of each credential that properties in other shards
// use too. It must see the whole config, as every shard does.
//
// A credential used by properties in k shards gets, in each of them,
// shard_budget_share of its daily cap and reserve, rounded down, or 1/k
// when that is not set; the shards' ledgers (one per state file) count only
// their own requests, so together they never send more than the cap. A
// share that would let the k shards exceed it (k × share > 1) is an error.
func applyShard(cfg *Config, s shardSpec) error {
	if !s.on() {
		return nil
	}
	// The properties of a split hotel go to one shard, that of the first
	// of their names (whatever the config's order): they share reads,
	// documents and the keys of stays moving between them. So do those of
	// a split Guestway organisation, siblings as well.
	names := make([]string, len(cfg.Properties))
	for i := range cfg.Properties {
		names[i] = cfg.Properties[i].Name
	}
	for _, idx := range cfg.splits() {
		first := names[idx[0]]
		for _, i := range idx {
			first = min(first, cfg.Properties[i].Name)
		}
		for _, i := range idx {
			names[i] = first
		}
	}
	shards := make([]int, len(cfg.Properties))
	cfg.shardOfProperty = map[string]int{}
	for i, name := range names {
		shards[i] = shardOf(name, s.Count)
		cfg.shardOfProperty[cfg.Properties[i].Name] = shards[i]
	}
	shardsOf := map[reconcile.Account]map[int]bool{}
	for i := range cfg.Properties {
		p := &cfg.Properties[i]
		for _, acct := range p.accounts() {
			if shardsOf[acct] == nil {
				shardsOf[acct] = map[int]bool{}
			}
			shardsOf[acct][shards[i]] = true
		}
	}
	share := map[reconcile.Account]float64{}
	var errs []error
	var mine []PropertyConfig
	for i := range cfg.Properties {
		p := &cfg.Properties[i]
		for sys, acct := range p.accounts() {
			k := len(shardsOf[acct])
			a := p.apiConfig(sys)
			sh := a.ShardBudgetShare
			if sh == 0 {
				sh = 1 / float64(k)
			} else if float64(k)*sh > 1+1e-9 {
				errs = append(errs, fmt.Errorf("properties[%d].%s.shard_budget_share: %v × %d shards using this credential is more than the whole daily cap; at most %v",
					i, sectionOf(sys), sh, k, math.Floor(1/float64(k)*1000)/1000))
			}
			if old, ok := share[acct]; !ok || sh < old {
				share[acct] = sh
			}
		}
		if shards[i] == s.Index {
			mine = append(mine, *p)
		}
	}
	// A share that rounds a cap down to nothing would leave the shard no
	// budget, which is no limit at all (Cap 0).
	for acct, l := range cfg.wholeLimits() {
		if sh := share[acct]; l.budget.Cap > 0 && shareOf(l.budget, sh).Cap < 1 {
			errs = append(errs, fmt.Errorf("%s: daily_cap %d shared by %d shard(s), at %.3g each, leaves each less than one request a day; raise daily_cap or shard_budget_share, or run fewer shards",
				cfg.capField(acct, l.budget.Cap), l.budget.Cap, len(shardsOf[acct]), sh))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cfg.whole = cfg.Properties
	cfg.Properties = mine
	cfg.unsharded = cfg.State
	cfg.State = shardState(cfg.State, s)
	cfg.budgetShare = share
	cfg.shard = s
	return nil
}

// owner is the shard that keeps the record of a property in this config's
// shard layout: the shard that runs it, or, for a property the config no
// longer lists (a removed property, whose live credentials a person must
// see every run), the one that runs the config's first property. Unsharded
// there is no other owner: ok is false.
func (c *Config) owner(property string) (s shardSpec, ok bool) {
	if !c.shard.on() || len(c.whole) == 0 {
		return shardSpec{}, false
	}
	i, listed := c.shardOfProperty[property]
	if !listed {
		i = c.shardOfProperty[c.whole[0].Name]
	}
	return shardSpec{Index: i, Count: c.shard.Count}, true
}

// runs reports whether this config (cut to a shard, or not) runs the
// property.
func (c *Config) runs(property string) bool {
	return slices.ContainsFunc(c.Properties, func(p PropertyConfig) bool { return p.Name == property })
}

// namesRemoved reports whether this process names, and keeps the record
// of, the properties the config no longer lists: unsharded it does; of the
// shards, their owner (the one that runs the config's first property).
func (c *Config) namesRemoved() bool {
	s, sharded := c.owner("")
	return !sharded || s == c.shard
}

// capField is the config path of the daily_cap that sets an account's cap:
// that of the first property using it with that cap.
func (c *Config) capField(acct reconcile.Account, limit int) string {
	for i := range c.Properties {
		p := &c.Properties[i]
		for sys, a := range p.accounts() {
			if a == acct && p.apiConfig(sys).DailyCap == limit {
				return fmt.Sprintf("properties[%d].%s.daily_cap", i, sectionOf(sys))
			}
		}
	}
	return string(acct) + " daily_cap"
}

// sectionOf is the config section of a system.
func sectionOf(sys reconcile.System) string {
	return map[reconcile.System]string{
		reconcile.System3RPMS: "threerpms", reconcile.SystemGuestway: "guestway",
		reconcile.SystemOpenApp: "openapp", reconcile.SystemKeyBox: "keybox",
	}[sys]
}

// shareOf scales a daily budget to a shard's share of it (see applyShard).
func shareOf(b reconcile.DailyBudget, share float64) reconcile.DailyBudget {
	if share <= 0 || share >= 1 {
		return b
	}
	c := int(math.Floor(float64(b.Cap)*share + 1e-9))
	r := int(math.Floor(float64(b.Reserve)*share + 1e-9))
	if b.Reserve > 0 {
		// A reserve kept whole is at least one request in each shard:
		// the caps alone bound what the shards send together.
		r = max(r, 1)
	}
	return reconcile.DailyBudget{Cap: c, Reserve: min(r, max(c-1, 0))}
}
