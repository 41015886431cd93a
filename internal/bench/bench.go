// Package bench measures keysync against the 3RPMS sandbox with the rate
// limits the 3RPMS Room Access Key API documents: a PIN-door hotel
// simulated night after night (a backfill, then churn: new bookings, date
// changes, room moves and cancellations), keysync's requests against the
// floor, the one-mutation-per-request flow and the rate limit, and the time
// and memory planning 100,000 stays takes. `keysync bench` runs it; how
// keysync itself runs each night is the caller's (Options.Night).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/benchplan"
)

// The targets the bench judges.
const (
	targetFloorRatio = 1.05                   // requests / floor
	targetFewer      = 20.0                   // per-mutation flow / requests
	targetPeakAfter  = 5                      // requests in any 1 s window after the first burst
	firstBurst       = 10                     // the burst the 3RPMS API allows
	targetPlanTime   = 350 * time.Millisecond // planning 100,000 stays
	targetPlanHeap   = 100 << 20              // peak heap while planning them
	targetPlanStays  = 100_000                // the size the planning targets are for
	windowDays       = 7                      // the config's window_days (default)
	sampleTicker     = time.Millisecond       // heap sampling period
)

// churnMix is the share of each kind of change among a night's churn
// events, in percent; date changes take what rounding leaves.
var churnMix = struct{ newBookings, moves, cancellations int }{30, 20, 20}

// stayLengths weighs stays of 1..7 nights, in percent (mean 2.65 nights).
var stayLengths = []int{30, 27, 18, 10, 7, 4, 4}

// The sandbox's credentials for the bench's integration, and the variable
// the bench's config reads the token from.
const (
	sandboxToken       = "sandbox-token"
	sandboxIntegration = "keysync"
	tokenVar           = "KEYSYNC_3RPMS_TOKEN"
)

// Options says what to measure, and how keysync runs a night.
type Options struct {
	// Rooms is the number of rooms in the hotel, all opening by PIN.
	Rooms int
	// Nights is the number of nights simulated after night 0's backfill.
	Nights int
	// Seed seeds the occupancy, the churn and the planning input.
	Seed uint64
	// MaxOps and PageSize are the config's threerpms.max_ops_per_request
	// and threerpms.page_size.
	MaxOps, PageSize int
	// Churn is the share of the in-window stays changed each night.
	Churn float64
	// PlanStays is the number of stays planned in the planning
	// measurement; 0 skips it.
	PlanStays int
	// Properties and PropertyRooms size the portfolio scenario's
	// properties on their own tokens; SharedProperties and SharedRooms the
	// properties on one token, compared with one property of all their
	// rooms. Properties 0 skips the portfolio scenario.
	Properties, PropertyRooms     int
	SharedProperties, SharedRooms int
	// Quick marks a smoke run; the output says so.
	Quick bool
	// Night runs keysync once, as a fresh process would.
	Night func(ctx context.Context, n Night) (*reconcile.Report, error)
	// Stderr receives progress lines; nil discards them.
	Stderr io.Writer
	// Log receives a warning for every action a night left undone; nil
	// discards them.
	Log *slog.Logger
}

// Night is one night's keysync run: the config file the bench wrote, the
// environment its ${VAR}s read (the sandbox's token), and the run's mode
// and instant.
type Night struct {
	Config  string
	Env     map[string]string
	Options reconcile.Options
}

// ErrPartial is what Run's error matches (errors.Is) when a night's run
// left work undone: the numbers are then not a clean measurement.
var ErrPartial = errors.New("bench: a run left work undone")

type partialError struct{ night int }

func (e partialError) Error() string {
	return fmt.Sprintf("bench: the run of night %d left work undone (see stderr); the numbers above are not a clean measurement", e.night)
}

func (e partialError) Is(target error) bool { return target == ErrPartial }

func (o Options) stderr() io.Writer {
	if o.Stderr == nil {
		return io.Discard
	}
	return o.Stderr
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// Run drives the 3RPMS sandbox (with the rate limits the API documents)
// through a PIN-door hotel for o.Nights simulated nights and prints to
// stdout keysync's requests against the floor, the one-mutation-per-request
// flow and the rate limit, after timing the planning of o.PlanStays stays.
// It prints PASS or FAIL per target; missing a target is not an error, a
// night that leaves work undone is (ErrPartial).
func Run(ctx context.Context, o Options, stdout io.Writer) error {
	w := stdout
	fmt.Fprintf(w, "keysync bench: %d PIN rooms on the 3RPMS sandbox with the seed's limits (%g req/s, burst %d, %s a day),\n",
		o.Rooms, rpmsandbox.DefaultRatePerSecond, rpmsandbox.DefaultBurst, commas(rpmsandbox.DefaultDailyCap))
	fmt.Fprintf(w, "backfill on night 0, then %d night(s) of churn; seed %d, page_size %d, max_ops_per_request %d.\n",
		o.Nights, o.Seed, o.PageSize, o.MaxOps)
	fmt.Fprintf(w, "Churn a night: %s of the in-window stays, as %d%% new bookings, %d%% room moves, %d%% cancellations and the rest\n",
		percent(o.Churn), churnMix.newBookings, churnMix.moves, churnMix.cancellations)
	fmt.Fprintf(w, "date changes; plus the natural departures and the arrivals that enter the 7-day window.\n")
	fmt.Fprintf(w, "%s %s/%s, %d CPU(s), GOMAXPROCS %d.\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if o.Quick {
		fmt.Fprintln(w, "--quick: a smoke run; the targets are meant for the full run.")
	}

	// Planning first, while the heap holds nothing else.
	var plan *planResult
	if o.PlanStays > 0 {
		fmt.Fprintf(o.stderr(), "bench: planning %s stays\n", commas(o.PlanStays))
		var err error
		plan, err = measurePlanning(o.PlanStays, o.Seed)
		if err != nil {
			return err
		}
		plan.print(w)
	}

	nights, err := nights(ctx, o)
	if nights != nil {
		printNights(w, o, nights)
	}
	if err != nil {
		return err
	}
	var sameDays []*sameDayStats
	for _, events := range []bool{false, true} {
		fmt.Fprintf(o.stderr(), "bench: same-day bookings, webhooks %v\n", events)
		sd, err := sameDay(ctx, o, events)
		if err != nil {
			return err
		}
		sameDays = append(sameDays, sd)
	}
	printSameDay(w, o, sameDays)
	var folio []*portfolioRow
	if o.Properties > 0 {
		folio, err = portfolio(ctx, o)
		if err != nil {
			return err
		}
		printPortfolio(w, o, folio)
	}
	printTargets(w, o, nights, plan)
	printSameDayTargets(w, sameDays)
	if folio != nil {
		printPortfolioTargets(w, o, folio)
	}
	for _, n := range nights {
		if n.partial {
			return partialError{night: n.night}
		}
	}
	return nil
}

// nightStats is what one night's run cost and what it had to do.
type nightStats struct {
	night int
	now   time.Time
	// The workload: stays keysync reads the window of (before the churn),
	// the churn applied, departures since the last run, arrivals that
	// entered the window, and the 3RPMS actions the run planned.
	inWindow, departed, entering int
	churn                        churnCounts
	ops                          map[reconcile.Op]int
	deferred                     int
	// From the run report: the requests keysync made.
	reads, writes int
	// From the sandbox's request log.
	pages, lookups, mutations, limited int
	times                              []time.Time
	peak, peakAfter                    int
	elapsed                            time.Duration
	partial                            bool
}

func (n *nightStats) requests() int { return n.reads + n.writes }

// floor is the fewest requests the night's changes could take: every read
// page, and the mutations actually sent, max_ops to a request.
func (n *nightStats) floor(maxOps int) int {
	return n.pages + ceilDiv(n.mutations, maxOps)
}

// perMutation is what the 3RPMS API's one-mutation-per-request flow would have
// sent for the same changes: the same read pages, one request a mutation.
func (n *nightStats) perMutation() int { return n.pages + n.mutations }

type churnCounts struct{ newBookings, changed, moved, cancelled int }

func (c churnCounts) total() int { return c.newBookings + c.changed + c.moved + c.cancelled }

// nights runs the backfill and the nights.
func nights(ctx context.Context, o Options) ([]*nightStats, error) {
	start := benchplan.Now // night 0, 02:00 in Europe/Berlin
	w, err := newWorld("keysync-bench-", start, o)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	sb, h, offset := w.sb, w.hotel, &w.offset

	var out []*nightStats
	for night := 0; night <= o.Nights; night++ {
		now := start.AddDate(0, 0, night)
		offset.Store(int64(time.Duration(night) * 24 * time.Hour))
		sb.SetNow(now)
		n := &nightStats{night: night, now: now, inWindow: len(h.inWindow(night))}
		mode := reconcile.ModeBackfill
		if night > 0 {
			mode = reconcile.ModeRun
			n.departed, n.entering = h.departures(night), h.entering(night)
			if n.churn, err = h.applyChurn(night, o.Churn); err != nil {
				return out, err
			}
		}
		sb.ResetRequests()
		began := time.Now()
		rep, err := w.run(ctx, o, reconcile.Options{Mode: mode, Now: now})
		n.elapsed = time.Since(began)
		if err != nil {
			return out, fmt.Errorf("bench: night %d (%s): %w", night, mode, err)
		}
		n.measure(rep, sb.Requests())
		if rep.Partial() {
			n.partial = true
			for _, a := range rep.Actions() {
				if a.Result != "" && a.Result != reconcile.ResultDone {
					o.log().Warn("bench: action not done", "night", night, "stay", a.Stay.ID, "action", a.Op, "result", a.Result, "error", a.Error)
				}
			}
		}
		fmt.Fprintf(o.stderr(), "bench: night %d/%d (%s %s): %d stays in window, %d churn events, %d requests in %.1fs\n",
			night, o.Nights, mode, now.Format("2006-01-02"), n.inWindow, n.churn.total(), n.requests(), n.elapsed.Seconds())
		out = append(out, n)
	}
	return out, nil
}

// measure fills the night's numbers from the run report and the sandbox's
// request log (every POST /graphql of the night, in arrival order).
func (n *nightStats) measure(rep *reconcile.Report, log []rpmsandbox.Request) {
	c := rep.Requests[reconcile.System3RPMS]
	n.reads, n.writes = c.Reads, c.Writes
	n.ops = map[reconcile.Op]int{}
	for _, a := range rep.Actions() {
		if a.System != reconcile.System3RPMS {
			continue
		}
		n.ops[a.Op]++
		if a.Result == reconcile.ResultDeferred {
			n.deferred++
		}
	}
	for _, r := range log {
		n.times = append(n.times, r.Time)
		switch {
		case r.Status == http.StatusTooManyRequests:
			n.limited++
		case r.Status != http.StatusOK:
		case r.Operation == "query":
			n.pages++
			if r.Name == "RoomStaysByID" {
				n.lookups++
			}
		case r.Operation == "mutation":
			n.mutations += r.FieldCount
		}
	}
	slices.SortFunc(n.times, func(a, b time.Time) int { return a.Compare(b) })
	n.peak = reconcile.PeakPerSecond(n.times)
	if len(n.times) > firstBurst {
		n.peakAfter = reconcile.PeakPerSecond(n.times[firstBurst:])
	}
}

// ---- the hotel ----------------------------------------------------------

// hotel is the bench's model of the sandbox hotel: every stay it
// added, by room, so the churn never double-books a room. Days count from
// night 0's date.
type hotel struct {
	sb     *rpmsandbox.Server
	rng    *rand.Rand
	day0   time.Time // night 0's date at 00:00 UTC, the sandbox's dates
	rooms  []string
	byRoom map[string][]*stay
	stays  []*stay // in the order added
}

type stay struct {
	id, res, room string
	arr, dep      int // days after night 0
	cancelled     bool
}

// newHotel adds the rooms: ten floors ("101".."150", "201".., with
// 500 rooms), ids "r101"...
func newHotel(sb *rpmsandbox.Server, rooms int, seed uint64, start time.Time) *hotel {
	h := &hotel{
		sb: sb, rng: rand.New(rand.NewPCG(seed, 0x626f6f6b696e6773)),
		day0:   time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC),
		byRoom: map[string][]*stay{},
	}
	perFloor := max(1, (rooms+9)/10)
	for i := range rooms {
		name := fmt.Sprintf("%d%02d", 1+i/perFloor, 1+i%perFloor)
		h.rooms = append(h.rooms, "r"+name)
		sb.AddRoom("r"+name, name)
	}
	return h
}

func (h *hotel) date(day int) string { return h.day0.AddDate(0, 0, day).Format(time.DateOnly) }

func (h *hotel) nights() int {
	r := h.rng.IntN(100)
	for i, w := range stayLengths {
		if r < w {
			return i + 1
		}
		r -= w
	}
	return 1
}

// seed books every room from up to a week before night 0 to horizon:
// stays of 1-7 nights (stayLengths), each followed by an empty gap of 1-3
// nights with probability 35% (about 70% occupancy).
func (h *hotel) seed(horizon int) error {
	for _, room := range h.rooms {
		for d := -1 - h.rng.IntN(6); d < horizon; {
			if h.rng.IntN(100) < 35 {
				d += 1 + h.rng.IntN(3)
				continue
			}
			n := h.nights()
			if _, err := h.add(room, d, d+n); err != nil {
				return err
			}
			d += n
		}
	}
	return nil
}

// add books a stay, its own reservation.
func (h *hotel) add(room string, arr, dep int) (*stay, error) {
	id := len(h.stays) + 1
	s := &stay{id: "rs_" + strconv.Itoa(id), res: "res_" + strconv.Itoa(id), room: room, arr: arr, dep: dep}
	err := h.sb.AddStay(rpmsandbox.Stay{ID: s.id, RoomID: room, Arrival: h.date(arr), Departure: h.date(dep), ReservationID: s.res})
	if err != nil {
		return nil, err
	}
	h.stays = append(h.stays, s)
	h.byRoom[room] = append(h.byRoom[room], s)
	return s, nil
}

// free reports whether room has no live stay overlapping [arr, dep) but
// except (a departure day may be the next arrival day).
func (h *hotel) free(room string, arr, dep int, except *stay) bool {
	for _, o := range h.byRoom[room] {
		if o != except && !o.cancelled && o.arr < dep && arr < o.dep {
			return false
		}
	}
	return true
}

// inWindow is what keysync reads on a night: live stays departing that
// day or later and arriving within the window.
func (h *hotel) inWindow(night int) []*stay {
	var out []*stay
	for _, s := range h.stays {
		if !s.cancelled && s.dep >= night && s.arr <= night+windowDays-1 {
			out = append(out, s)
		}
	}
	return out
}

// departures counts the stays whose access ended since the last run
// (departed yesterday).
func (h *hotel) departures(night int) int {
	n := 0
	for _, s := range h.stays {
		if !s.cancelled && s.dep == night-1 {
			n++
		}
	}
	return n
}

// entering counts the stays the window reaches for the first time.
func (h *hotel) entering(night int) int {
	n := 0
	for _, s := range h.stays {
		if !s.cancelled && s.arr == night+windowDays-1 {
			n++
		}
	}
	return n
}

// applyChurn changes share of the in-window stays (rounded), each stay at
// most once: churnMix's cancellations (of stays not yet arrived, arrivals
// today included), date changes (not yet arrived: shift a day either way,
// a night more or less, arrive a day early; in house: stay one or two
// nights more, or leave a day early), room moves (a stay with a night
// left, to a room free for its whole stay) and new bookings (1-7 nights
// arriving within the window, in a free room), in that order. A change
// that finds no stay or room it fits is dropped; the counts say what was
// applied.
func (h *hotel) applyChurn(night int, share float64) (churnCounts, error) {
	cands := h.inWindow(night)
	events := int(math.Round(share * float64(len(cands))))
	pct := func(p int) int { return int(math.Round(float64(events*p) / 100)) }
	nNew, nMove, nCancel := pct(churnMix.newBookings), pct(churnMix.moves), pct(churnMix.cancellations)
	nChange := max(0, events-nNew-nMove-nCancel)
	h.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	touched := map[*stay]bool{}
	var c churnCounts

	for _, s := range cands {
		if c.cancelled == nCancel {
			break
		}
		if touched[s] || s.arr < night {
			continue
		}
		if err := h.sb.CancelReservation(s.res); err != nil {
			return c, err
		}
		s.cancelled, touched[s] = true, true
		c.cancelled++
	}

	for _, s := range cands {
		if c.changed == nChange {
			break
		}
		if touched[s] {
			continue
		}
		type span struct{ arr, dep int }
		var opts []span
		if s.arr >= night { // not arrived yet
			opts = append(opts, span{s.arr + 1, s.dep + 1}, span{s.arr, s.dep + 1})
			if s.arr-1 >= night {
				opts = append(opts, span{s.arr - 1, s.dep - 1}, span{s.arr - 1, s.dep})
			}
			if s.dep-1 > s.arr {
				opts = append(opts, span{s.arr, s.dep - 1})
			}
		} else { // in house
			opts = append(opts, span{s.arr, s.dep + 1}, span{s.arr, s.dep + 2})
			if s.dep-1 > s.arr && s.dep-1 >= night {
				opts = append(opts, span{s.arr, s.dep - 1})
			}
		}
		h.rng.Shuffle(len(opts), func(i, j int) { opts[i], opts[j] = opts[j], opts[i] })
		for _, o := range opts {
			if !h.free(s.room, o.arr, o.dep, s) {
				continue
			}
			if err := h.sb.ChangeDates(s.id, h.date(o.arr), h.date(o.dep)); err != nil {
				return c, err
			}
			s.arr, s.dep, touched[s] = o.arr, o.dep, true
			c.changed++
			break
		}
	}

	for _, s := range cands {
		if c.moved == nMove {
			break
		}
		if touched[s] || s.dep <= night {
			continue
		}
		for range 50 {
			room := h.rooms[h.rng.IntN(len(h.rooms))]
			if room == s.room || !h.free(room, s.arr, s.dep, s) {
				continue
			}
			if err := h.sb.MoveStay(s.id, room); err != nil {
				return c, err
			}
			h.byRoom[s.room] = slices.DeleteFunc(h.byRoom[s.room], func(o *stay) bool { return o == s })
			h.byRoom[room] = append(h.byRoom[room], s)
			s.room, touched[s] = room, true
			c.moved++
			break
		}
	}

	for range 200 * max(nNew, 1) {
		if c.newBookings == nNew {
			break
		}
		room := h.rooms[h.rng.IntN(len(h.rooms))]
		arr := night + h.rng.IntN(windowDays)
		dep := arr + h.nights()
		if !h.free(room, arr, dep, nil) {
			continue
		}
		if _, err := h.add(room, arr, dep); err != nil {
			return c, err
		}
		c.newBookings++
	}
	return c, nil
}

// serve serves the 3RPMS sandbox on a loopback port.
func serve(sb *rpmsandbox.Server) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: listen: %w", err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// ---- planning ------------------------------------------------------------

// planResult is one in-process reconcile.Compute of benchplan's input.
type planResult struct {
	stays, creds int
	ops          map[reconcile.Op]int
	actions      int
	wall         time.Duration
	// inputHeap is the heap after building the input (after a GC); peak is
	// the highest heap seen while planning, input included.
	inputHeap, peak   uint64
	allocated, allocs uint64
	gcs               uint32
}

// measurePlanning plans benchplan.Input(stays, seed) once. Memory: the
// heap ("/memory/classes/heap/objects:bytes", the same figure as
// MemStats.HeapAlloc) is sampled through runtime/metrics every millisecond
// by a goroutine during the plan, and read once more at the end; the
// allocation totals are runtime.ReadMemStats before and after.
func measurePlanning(stays int, seed uint64) (*planResult, error) {
	in := benchplan.Input(stays, seed)
	res := &planResult{stays: len(in.Stays), creds: len(in.Credentials), ops: map[reconcile.Op]int{}}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res.inputHeap = before.HeapAlloc

	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		high := uint64(0)
		tick := time.NewTicker(sampleTicker)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				high = max(high, sample[0].Value.Uint64())
			}
			select {
			case <-done:
				peak <- high
				return
			case <-tick.C:
			}
		}
	}()
	began := time.Now()
	plan, err := reconcile.Compute(in)
	res.wall = time.Since(began)
	close(done)
	res.peak = <-peak
	runtime.ReadMemStats(&after)
	if err != nil {
		return nil, fmt.Errorf("bench: plan %d stays: %w", stays, err)
	}
	res.peak = max(res.peak, after.HeapAlloc, res.inputHeap)
	res.allocated, res.allocs = after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
	res.gcs = after.NumGC - before.NumGC
	res.actions = len(plan.Actions)
	for _, a := range plan.Actions {
		res.ops[a.Op]++
	}
	runtime.KeepAlive(in)
	return res, nil
}

func (p *planResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nPlanning %s stays (reconcile.Compute once, in-process; input: reconcile/benchplan, %s recorded credentials)\n",
		commas(p.stays), commas(p.creds))
	fmt.Fprintf(w, "  plan       %s actions: %s create, %s assign, %s revoke, %s delete\n", commas(p.actions),
		commas(p.ops[reconcile.OpCreate]), commas(p.ops[reconcile.OpAssign]), commas(p.ops[reconcile.OpRevoke]), commas(p.ops[reconcile.OpDelete]))
	fmt.Fprintf(w, "  wall time  %.3f s\n", p.wall.Seconds())
	fmt.Fprintf(w, "  peak heap  %s (sampled every %d ms via runtime/metrics; the input alone is %s)\n", mb(p.peak), sampleTicker.Milliseconds(), mb(p.inputHeap))
	fmt.Fprintf(w, "  allocated  %s in %s objects, %d GC cycle(s) (runtime.ReadMemStats before/after)\n", mb(p.allocated), commas(int(p.allocs)), p.gcs)
}

// ---- output --------------------------------------------------------------

func printNights(w io.Writer, o Options, nights []*nightStats) {
	fmt.Fprintf(w, "\nWorkload (3RPMS actions keysync planned; churn as applied)\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NIGHT\tDATE\tIN WINDOW\tNEW\tCHANGED\tMOVED\tCANCELLED\tDEPARTED\tENTERING\tCREATE\tASSIGN\tREVOKE\tDELETE\tDEFERRED\t")
	var tot nightStats
	tot.ops = map[reconcile.Op]int{}
	for _, n := range nights {
		dash := func(v int) string {
			if n.night == 0 {
				return "-"
			}
			return strconv.Itoa(v)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", n.night, n.now.Format(time.DateOnly), n.inWindow,
			dash(n.churn.newBookings), dash(n.churn.changed), dash(n.churn.moved), dash(n.churn.cancelled), dash(n.departed), dash(n.entering),
			n.ops[reconcile.OpCreate], n.ops[reconcile.OpAssign], n.ops[reconcile.OpRevoke], n.ops[reconcile.OpDelete], n.deferred)
		tot.churn.newBookings += n.churn.newBookings
		tot.churn.changed += n.churn.changed
		tot.churn.moved += n.churn.moved
		tot.churn.cancelled += n.churn.cancelled
		tot.departed += n.departed
		tot.entering += n.entering
		tot.deferred += n.deferred
		for op, v := range n.ops {
			tot.ops[op] += v
		}
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n",
		tot.churn.newBookings, tot.churn.changed, tot.churn.moved, tot.churn.cancelled, tot.departed, tot.entering,
		tot.ops[reconcile.OpCreate], tot.ops[reconcile.OpAssign], tot.ops[reconcile.OpRevoke], tot.ops[reconcile.OpDelete], tot.deferred)
	tw.Flush()

	fmt.Fprintf(w, "\nRequests (keysync's from the run report; the rest from the sandbox's request log)\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NIGHT\tREADS\t(LOOKUPS)\tWRITES\tREQUESTS\tMUTATIONS\tFLOOR\tRATIO\tPER-MUTATION\tFEWER\tPEAK/1s\tAFTER BURST\t429s\tRUN TIME\t")
	var reads, lookups, writes, reqs, muts, floor, perMut, peak, after, limited int
	var elapsed time.Duration
	for _, n := range nights {
		fmt.Fprintf(tw, "%d\t%d\t(%d)\t%d\t%d\t%d\t%d\t%.3f\t%d\t%.1f×\t%d\t%d\t%d\t%.1fs\t\n", n.night, n.reads, n.lookups, n.writes, n.requests(),
			n.mutations, n.floor(o.MaxOps), ratio(n.requests(), n.floor(o.MaxOps)), n.perMutation(), ratio(n.perMutation(), n.requests()),
			n.peak, n.peakAfter, n.limited, n.elapsed.Seconds())
		reads += n.reads
		lookups += n.lookups
		writes += n.writes
		reqs += n.requests()
		muts += n.mutations
		floor += n.floor(o.MaxOps)
		perMut += n.perMutation()
		peak = max(peak, n.peak)
		after = max(after, n.peakAfter)
		limited += n.limited
		elapsed += n.elapsed
	}
	fmt.Fprintf(tw, "TOTAL\t%d\t(%d)\t%d\t%d\t%d\t%d\t%.3f\t%d\t%.1f×\t%d\t%d\t%d\t%.1fs\t\n", reads, lookups, writes, reqs, muts, floor,
		ratio(reqs, floor), perMut, ratio(perMut, reqs), peak, after, limited, elapsed.Seconds())
	tw.Flush()
	fmt.Fprintf(w, "\nREADS are read requests (LOOKUPS: of them, stays looked up by id because the window read no longer returned them);\n")
	fmt.Fprintf(w, "FLOOR = read pages + ⌈MUTATIONS / %d⌉; RATIO = REQUESTS / FLOOR; PER-MUTATION = read pages + MUTATIONS;\n", o.MaxOps)
	fmt.Fprintf(w, "FEWER = PER-MUTATION / REQUESTS; PEAK/1s = most requests the sandbox saw in any 1-second window;\n")
	fmt.Fprintf(w, "AFTER BURST = the same without the night's first %d requests. Writes alone: %s mutations in %d requests (%.1f× fewer).\n",
		firstBurst, commas(muts), writes, ratio(muts, writes))
}

// printTargets judges the targets. The request targets are judged
// over the whole run and on every night.
func printTargets(w io.Writer, o Options, nights []*nightStats, plan *planResult) {
	fmt.Fprintf(w, "\nTargets\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	var reqs, floor, perMut int
	worstRatio, worstRatioNight := 0.0, 0
	worstFewer, worstFewerNight := math.Inf(1), 0
	worstAfter, worstAfterNight := 0, 0
	for _, n := range nights {
		reqs += n.requests()
		floor += n.floor(o.MaxOps)
		perMut += n.perMutation()
		if r := ratio(n.requests(), n.floor(o.MaxOps)); r > worstRatio {
			worstRatio, worstRatioNight = r, n.night
		}
		if f := ratio(n.perMutation(), n.requests()); f < worstFewer {
			worstFewer, worstFewerNight = f, n.night
		}
		if n.peakAfter > worstAfter {
			worstAfter, worstAfterNight = n.peakAfter, n.night
		}
	}
	if len(nights) > 0 {
		total := ratio(reqs, floor)
		fmt.Fprintf(tw, "requests / floor ≤ %.2f\t%s\ttotal %.3f %s; worst night %d: %.3f %s\n", targetFloorRatio,
			verdict(total <= targetFloorRatio && worstRatio <= targetFloorRatio),
			total, verdict(total <= targetFloorRatio), worstRatioNight, worstRatio, verdict(worstRatio <= targetFloorRatio))
		fewer := ratio(perMut, reqs)
		fmt.Fprintf(tw, "≥ %.0f× fewer requests than one mutation a request\t%s\ttotal %.1f× %s; worst night %d: %.1f× %s\n", targetFewer,
			verdict(fewer >= targetFewer && worstFewer >= targetFewer),
			fewer, verdict(fewer >= targetFewer), worstFewerNight, worstFewer, verdict(worstFewer >= targetFewer))
		fmt.Fprintf(tw, "≤ %d requests in any 1 s after the first burst of %d\t%s\tworst night %d: %d\n", targetPeakAfter, firstBurst,
			verdict(worstAfter <= targetPeakAfter), worstAfterNight, worstAfter)
	}
	if plan != nil {
		scale := ""
		if plan.stays != targetPlanStays {
			scale = fmt.Sprintf(" (measured on %s stays, not %s)", commas(plan.stays), commas(targetPlanStays))
		}
		fmt.Fprintf(tw, "planning %s stays in < %.2f s\t%s\t%.3f s%s\n", commas(targetPlanStays), targetPlanTime.Seconds(),
			verdict(plan.wall < targetPlanTime), plan.wall.Seconds(), scale)
		fmt.Fprintf(tw, "planning %s stays in < %d MB peak heap\t%s\t%s%s\n", commas(targetPlanStays), targetPlanHeap>>20,
			verdict(plan.peak < targetPlanHeap), mb(plan.peak), scale)
	}
	tw.Flush()
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func ratio(a, b int) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return float64(a) / float64(b)
}

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func percent(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) + "%" }

// commas formats n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
