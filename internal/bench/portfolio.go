package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/benchplan"
)

// The portfolio targets.
const (
	// targetParallel: P properties on their own tokens take at most this
	// many times as long as the slowest of them run alone ("about as long
	// as the slowest property, not the sum").
	targetParallel = 1.25
	// targetShared: P small properties on one token cost at most this many
	// times the requests of one property of their rooms together.
	targetShared = 1.05
)

// fleet is a portfolio on the 3RPMS sandbox: one sandbox per property
// (3RPMS serves a property per endpoint), all behind one loopback listener
// at /pNN/graphql, so every endpoint has the same host, as a provider's
// properties do. Each property's token is its own, or one for all
// (shared): keysync names a metered credential by host and token
// (cmd/keysync's accounts), so a shared token is one pacer and one budget.
// Every sandbox has the API's documented limits per token; with a shared
// token each sandbox still limits alone (the real API would count them
// together; keysync's one pacer is what holds them to 5 a second, and the
// merged request log's peak shows it).
//
// A split fleet is one hotel (one sandbox, one endpoint and token) split
// into properties that each list their own rooms, as a hotel's buildings
// would be: keysync reads its stays once and chains the properties'
// mutations into shared documents.
type fleet struct {
	// Per property: its name, sandbox and hotel (one for all in a split
	// fleet), token, endpoint number and rooms (nil: default_method).
	names  []string
	sbs    []*rpmsandbox.Server
	hotels []*hotel
	tokens []string
	prefix []int
	rooms  [][]string
	base   string
	offset atomic.Int64
	stop   func()
}

// newFleet books n hotels of rooms rooms each (property i's occupancy from
// seed+i) from start for nights + the window, and serves them; split books
// one hotel of n×rooms rooms instead, split into n properties.
func newFleet(n, rooms int, shared, split bool, start time.Time, o Options, nights int) (*fleet, error) {
	f := &fleet{}
	mux := http.NewServeMux()
	if split {
		sb := rpmsandbox.New(rpmsandbox.Options{
			Integrations: map[string]string{sandboxToken: sandboxIntegration},
			Now:          start,
			Rates:        sandboxkit.Rates{RateNow: func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }},
		}.WithSeedLimits())
		h := newHotel(sb, n*rooms, o.Seed, start)
		if err := h.seed(nights + windowDays + 1); err != nil {
			return nil, err
		}
		mux.Handle("/p01/", http.StripPrefix("/p01", sb))
		for i := range n {
			f.names, f.sbs, f.hotels, f.tokens = append(f.names, fmt.Sprintf("building-%02d", i+1)), append(f.sbs, sb), append(f.hotels, h), append(f.tokens, sandboxToken)
			f.prefix, f.rooms = append(f.prefix, 1), append(f.rooms, h.rooms[i*rooms:(i+1)*rooms])
		}
	}
	for i := range n {
		if split {
			break
		}
		name := fmt.Sprintf("hotel-%02d", i+1)
		tok := sandboxToken
		if !shared {
			tok = fmt.Sprintf("%s-%02d", sandboxToken, i+1)
		}
		sb := rpmsandbox.New(rpmsandbox.Options{
			Integrations: map[string]string{tok: sandboxIntegration},
			Now:          start,
			Rates:        sandboxkit.Rates{RateNow: func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }},
		}.WithSeedLimits())
		h := newHotel(sb, rooms, o.Seed+uint64(i), start)
		if err := h.seed(nights + windowDays + 1); err != nil {
			return nil, err
		}
		prefix := fmt.Sprintf("/p%02d", i+1)
		mux.Handle(prefix+"/", http.StripPrefix(prefix, sb))
		f.names, f.sbs, f.hotels, f.tokens = append(f.names, name), append(f.sbs, sb), append(f.hotels, h), append(f.tokens, tok)
		f.prefix, f.rooms = append(f.prefix, i+1), append(f.rooms, nil)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	f.base = "http://" + ln.Addr().String()
	f.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return f, nil
}

// config writes a keysync config for the fleet's properties idx (a state
// file of its own) and returns it with the environment its tokens are read
// from.
func (f *fleet) config(dir, name string, idx []int, o Options) (string, map[string]string, error) {
	env := map[string]string{}
	var b strings.Builder
	fmt.Fprintf(&b, "# keysync bench: a portfolio of PIN-door hotels on 3RPMS sandboxes\nstate: %s\nproperties:\n", filepath.Join(dir, name+".db"))
	for _, i := range idx {
		v := fmt.Sprintf("%s_P%02d", tokenVar, i+1)
		env[v] = f.tokens[i]
		fmt.Fprintf(&b, `  - name: %s
    timezone: %s
    check_in: "15:00"
    check_out: "11:00"
    grace: {before_arrival: 2h, after_departure: 2h}
    window_days: %d
    threerpms:
      endpoint: %s/p%02d/graphql
      token: ${%s}
      page_size: %d
      max_ops_per_request: %d
`, f.names[i], benchplan.Now.Location(), windowDays, f.base, f.prefix[i], v, o.PageSize, o.MaxOps)
		if f.rooms[i] == nil {
			b.WriteString("    default_method: pin\n")
			continue
		}
		b.WriteString("    rooms:\n")
		for _, r := range f.rooms[i] {
			fmt.Fprintf(&b, "      %s: pin\n", r)
		}
	}
	path := filepath.Join(dir, name+".yaml")
	return path, env, os.WriteFile(path, []byte(b.String()), 0o600)
}

// runStats is one keysync run over some of a fleet's properties.
type runStats struct {
	reads, writes int
	// From the sandboxes' request logs: requests, 429s, and the most in
	// any 1 s per token (the merged log of the sandboxes sharing it).
	logged, limited, peak int
	elapsed               time.Duration
	// cpu is the process's CPU time over the run, the sandboxes' included.
	cpu time.Duration
}

func (r runStats) requests() int { return r.reads + r.writes }

// run runs keysync once on the config at the fleet's night and measures it.
func (f *fleet) run(ctx context.Context, o Options, cfg string, env map[string]string, idx []int, night int) (runStats, error) {
	now := benchplan.Now.AddDate(0, 0, night)
	mode := reconcile.ModeBackfill
	if night > 0 {
		mode = reconcile.ModeRun
	}
	// A split fleet's properties share a sandbox: each is counted once.
	var sbs []int
	for _, i := range idx {
		if !slices.ContainsFunc(sbs, func(j int) bool { return f.sbs[j] == f.sbs[i] }) {
			sbs = append(sbs, i)
		}
	}
	before := make([]int, len(f.sbs))
	for _, i := range sbs {
		before[i] = len(f.sbs[i].Requests())
	}
	began, cpu := time.Now(), cpuTime()
	rep, err := o.Night(ctx, Night{Config: cfg, Env: env, Options: reconcile.Options{Mode: mode, Now: now}})
	var st runStats
	st.elapsed, st.cpu = time.Since(began), cpuTime()-cpu
	if err != nil {
		return st, err
	}
	if rep.Partial() {
		return st, partialError{night: night}
	}
	c := rep.Requests[reconcile.System3RPMS]
	st.reads, st.writes = c.Reads, c.Writes
	byToken := map[string][]time.Time{}
	for _, i := range sbs {
		for _, r := range f.sbs[i].Requests()[before[i]:] {
			st.logged++
			if r.Status == http.StatusTooManyRequests {
				st.limited++
			}
			byToken[f.tokens[i]] = append(byToken[f.tokens[i]], r.Time)
		}
	}
	for _, times := range byToken {
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		st.peak = max(st.peak, reconcile.PeakPerSecond(times))
	}
	return st, nil
}

// night moves the fleet to night: the sandboxes' business clocks, their
// rate limiters a day on (a full bucket, as a night in production), and,
// after night 0, the churn on every hotel.
func (f *fleet) night(o Options, night int) error {
	f.offset.Store(int64(time.Duration(night) * 24 * time.Hour))
	for i, sb := range f.sbs {
		if i > 0 && sb == f.sbs[i-1] {
			continue // a split fleet's one hotel
		}
		sb.SetNow(benchplan.Now.AddDate(0, 0, night))
		if night > 0 {
			if _, err := f.hotels[i].applyChurn(night, o.Churn); err != nil {
				return err
			}
		}
	}
	return nil
}

// portfolioRow is one scenario's run on one night.
type portfolioRow struct {
	scenario string
	props    int
	rooms    int // per property
	tokens   int
	night    int
	runStats
	// For the parallel scenario: its properties run alone, one after the
	// other on a copy of the fleet: the slowest and the sum.
	alone        bool
	slowest, sum time.Duration
}

// portfolio runs the two portfolio scenarios for nights 0 (backfill) and 1
// (churn): o.Properties × o.PropertyRooms rooms on their own tokens, run
// together and then each alone on an identical fleet; and o.SharedProperties
// × o.SharedRooms on one token beside one property of all their rooms.
func portfolio(ctx context.Context, o Options) ([]*portfolioRow, error) {
	dir, err := os.MkdirTemp("", "keysync-bench-portfolio-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	const nights = 1
	start := benchplan.Now
	all := func(n int) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	var rows []*portfolioRow

	// Own tokens: together, then each alone.
	parallel := fmt.Sprintf("%d × %d rooms, own tokens", o.Properties, o.PropertyRooms)
	together, err := newFleet(o.Properties, o.PropertyRooms, false, false, start, o, nights)
	if err != nil {
		return nil, err
	}
	defer together.stop()
	alone, err := newFleet(o.Properties, o.PropertyRooms, false, false, start, o, nights)
	if err != nil {
		return nil, err
	}
	defer alone.stop()
	cfg, env, err := together.config(dir, "together", all(o.Properties), o)
	if err != nil {
		return nil, err
	}
	for night := 0; night <= nights; night++ {
		if err := together.night(o, night); err != nil {
			return rows, err
		}
		if err := alone.night(o, night); err != nil {
			return rows, err
		}
		fmt.Fprintf(o.stderr(), "bench: portfolio %s, night %d: together\n", parallel, night)
		st, err := together.run(ctx, o, cfg, env, all(o.Properties), night)
		if err != nil {
			return rows, fmt.Errorf("bench: portfolio %s, night %d: %w", parallel, night, err)
		}
		row := &portfolioRow{scenario: parallel, props: o.Properties, rooms: o.PropertyRooms, tokens: o.Properties, night: night, runStats: st}
		fmt.Fprintf(o.stderr(), "bench: portfolio %s, night %d: each alone\n", parallel, night)
		var sum runStats
		for i := range o.Properties {
			c, e, err := alone.config(dir, fmt.Sprintf("alone-%02d", i+1), []int{i}, o)
			if err != nil {
				return rows, err
			}
			st, err := alone.run(ctx, o, c, e, []int{i}, night)
			if err != nil {
				return rows, fmt.Errorf("bench: portfolio %s alone, night %d: %w", together.names[i], night, err)
			}
			row.slowest = max(row.slowest, st.elapsed)
			sum.reads, sum.writes, sum.logged, sum.limited = sum.reads+st.reads, sum.writes+st.writes, sum.logged+st.logged, sum.limited+st.limited
			sum.peak = max(sum.peak, st.peak)
			sum.elapsed += st.elapsed
			sum.cpu += st.cpu
		}
		row.sum = sum.elapsed
		rows = append(rows, row, &portfolioRow{scenario: parallel + ", each alone", props: o.Properties, rooms: o.PropertyRooms,
			tokens: o.Properties, night: night, runStats: sum, alone: true, slowest: row.slowest, sum: sum.elapsed})
	}

	// One hotel behind one endpoint and token split into many small
	// properties, beside the same hotel (same seed, same bookings) as one
	// property.
	shared := fmt.Sprintf("%d × %d rooms, one token", o.SharedProperties, o.SharedRooms)
	one := fmt.Sprintf("1 × %s rooms", commas(o.SharedProperties*o.SharedRooms))
	// Both on one token.
	for _, sc := range []struct {
		name         string
		props, rooms int
		cfg          string
	}{
		{shared, o.SharedProperties, o.SharedRooms, "shared"},
		{one, 1, o.SharedProperties * o.SharedRooms, "one"},
	} {
		fl, err := newFleet(sc.props, sc.rooms, true, sc.props > 1, start, o, nights)
		if err != nil {
			return rows, err
		}
		defer fl.stop()
		cfg, env, err := fl.config(dir, sc.cfg, all(sc.props), o)
		if err != nil {
			return rows, err
		}
		for night := 0; night <= nights; night++ {
			if err := fl.night(o, night); err != nil {
				return rows, err
			}
			fmt.Fprintf(o.stderr(), "bench: portfolio %s, night %d\n", sc.name, night)
			st, err := fl.run(ctx, o, cfg, env, all(sc.props), night)
			if err != nil {
				return rows, fmt.Errorf("bench: portfolio %s, night %d: %w", sc.name, night, err)
			}
			rows = append(rows, &portfolioRow{scenario: sc.name, props: sc.props, rooms: sc.rooms, tokens: 1, night: night, runStats: st})
		}
	}
	return rows, nil
}

func printPortfolio(w io.Writer, o Options, rows []*portfolioRow) {
	fmt.Fprintf(w, "\nPortfolio (one 3RPMS sandbox per property behind one host, each with the API's limits per token; \"one token\": one hotel's\n")
	fmt.Fprintf(w, "sandbox split into properties that list their own rooms, beside the same hotel as one property; backfill on night 0,\n")
	fmt.Fprintf(w, "%s churn on night 1; \"each alone\" runs every property by itself, one after the other, on an identical copy)\n\n", percent(o.Churn))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SCENARIO\tNIGHT\tTOKENS\tREADS\tWRITES\tREQUESTS\tPEAK/1s PER TOKEN\t429s\tRUN TIME\tCPU\tSLOWEST ALONE\t")
	for _, r := range rows {
		slowest := "-"
		if r.slowest > 0 {
			slowest = fmt.Sprintf("%.1fs", r.slowest.Seconds())
		}
		run := fmt.Sprintf("%.1fs", r.elapsed.Seconds())
		if r.alone {
			run += " (sum)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%.1fs\t%s\t\n", r.scenario, r.night, r.tokens, r.reads, r.writes, r.requests(),
			r.peak, r.limited, run, r.cpu.Seconds(), slowest)
	}
	tw.Flush()
}

// printPortfolioTargets judges the portfolio targets over both nights.
func printPortfolioTargets(w io.Writer, o Options, rows []*portfolioRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var together, slowest, sum, cpu time.Duration
	shared, one := 0, 0
	parallel := fmt.Sprintf("%d × %d rooms, own tokens", o.Properties, o.PropertyRooms)
	for _, r := range rows {
		switch {
		case r.scenario == parallel:
			together += r.elapsed
			slowest += r.slowest
			sum += r.sum
			cpu += r.cpu
		case r.scenario == fmt.Sprintf("%d × %d rooms, one token", o.SharedProperties, o.SharedRooms):
			shared += r.requests()
		case r.scenario == fmt.Sprintf("1 × %s rooms", commas(o.SharedProperties*o.SharedRooms)):
			one += r.requests()
		}
	}
	t := together.Seconds() / max(slowest.Seconds(), 1e-9)
	// Together, the properties and their in-process sandboxes need cpu:
	// on this machine's CPUs no run can take less than cpu / CPUs.
	procs := runtime.GOMAXPROCS(0)
	fmt.Fprintf(tw, "%d properties on own tokens take ≤ %.2f× the slowest alone\t%s\t%.1f s together, %.1f s the slowest alone (%.2f×), %.1f s the sum alone; together they used %.1f s of CPU (sandboxes included) on %d CPUs, at least %.1f s\n",
		o.Properties, targetParallel, verdict(t <= targetParallel), together.Seconds(), slowest.Seconds(), t, sum.Seconds(), cpu.Seconds(), procs, cpu.Seconds()/float64(procs))
	s := ratio(shared, one)
	fmt.Fprintf(tw, "%d × %d rooms on one token ≤ %.2f× the requests of 1 × %s\t%s\t%d requests vs %d (%.3f×)\n",
		o.SharedProperties, o.SharedRooms, targetShared, commas(o.SharedProperties*o.SharedRooms), verdict(s <= targetShared), shared, one, s)
	tw.Flush()
}
