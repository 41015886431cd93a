package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/benchplan"
)

// Same-day bookings: bookings made during the day for check-in that day,
// which a nightly run cannot key in time.
const (
	sameDayPerDay = 8
	// sameDayFrom and sameDayTo bound when they are made (local time);
	// check-in is at 15:00.
	sameDayFrom = 7 * time.Hour
	sameDayTo   = 14*time.Hour + 30*time.Minute
	checkIn     = 15 * time.Hour
)

// sameDayStats is one way of running through the same-day scenario.
type sameDayStats struct {
	mode     string
	bookings int
	// keyed counts the same-day bookings holding a key at 15:00.
	keyed int
	// eventRequests is what each event's targeted run cost.
	eventRequests []int
	// nightly counts the requests of the nightly runs.
	nightly int
}

// sameDay runs o.Nights days of a hotel where sameDayPerDay guests a day
// book between 07:00 and 14:30 for that night, with the nightly runs alone
// or with a targeted run for each booking's room_stay.created event, and
// counts the guests keyed at check-in. Both ways see the same bookings.
func sameDay(ctx context.Context, o Options, events bool) (*sameDayStats, error) {
	start := benchplan.Now
	w, err := newWorld("keysync-bench-sameday-", start, o)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	sb, h, offset := w.sb, w.hotel, &w.offset
	st := &sameDayStats{mode: "nightly runs only"}
	if events {
		st.mode = "nightly runs + webhooks"
	}
	run := func(opts reconcile.Options) (int, error) {
		offset.Store(int64(opts.Now.Sub(start)))
		sb.SetNow(opts.Now)
		before := len(sb.Requests())
		rep, err := w.run(ctx, o, opts)
		if err != nil {
			return 0, err
		}
		if rep.Partial() {
			return 0, fmt.Errorf("bench: same-day %s run at %s left work undone", opts.Mode, opts.Now.Format(time.RFC3339))
		}
		return len(sb.Requests()) - before, nil
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x73616d65646179))
	for day := 0; day < max(1, o.Nights); day++ {
		night := start.AddDate(0, 0, day) // 02:00 local
		mode := reconcile.ModeRun
		if day == 0 {
			mode = reconcile.ModeBackfill
		}
		n, err := run(reconcile.Options{Mode: mode, Now: night})
		if err != nil {
			return nil, err
		}
		st.nightly += n
		midnight := night.Add(-2 * time.Hour)
		var times []time.Duration
		for range sameDayPerDay {
			times = append(times, sameDayFrom+time.Duration(rng.Int64N(int64(sameDayTo-sameDayFrom))))
		}
		slices.Sort(times)
		var booked []*stay
		for _, at := range times {
			nights := 1 + rng.IntN(3)
			room := ""
			for _, i := range rng.Perm(len(h.rooms)) {
				if h.free(h.rooms[i], day, day+nights, nil) {
					room = h.rooms[i]
					break
				}
			}
			if room == "" {
				continue // the hotel is full tonight
			}
			s, err := h.add(room, day, day+nights)
			if err != nil {
				return nil, err
			}
			booked = append(booked, s)
			if events {
				n, err := run(reconcile.Options{Mode: reconcile.ModeTargeted, Now: midnight.Add(at),
					Targets: map[string][]string{"bench-hotel": {s.id}}})
				if err != nil {
					return nil, err
				}
				st.eventRequests = append(st.eventRequests, n)
			}
		}
		// Check-in: no run happens between the last booking and 15:00,
		// so what the stays hold now is what the guests find.
		sb.SetNow(midnight.Add(checkIn))
		for _, s := range booked {
			st.bookings++
			if v, _ := sb.Stay(s.id); v.KeyID != "" {
				st.keyed++
			}
		}
	}
	return st, nil
}

// world is the bench's hotel on a 3RPMS sandbox with the API's documented
// limits, served over HTTP, and keysync's config for it.
type world struct {
	sb    *rpmsandbox.Server
	hotel *hotel
	cfg   string
	// offset moves the sandbox's rate limiter and request log forward: runs
	// go back to back here but hours apart in production, so each starts
	// with a full bucket (as keysync's, a fresh process each time).
	offset atomic.Int64
	stop   func()
}

// newWorld makes a temporary folder for keysync's config and state, named
// after pattern as os.MkdirTemp names it, books the hotel from start for
// o.Nights + the window and serves it. stop stops the sandbox and removes
// the folder.
func newWorld(pattern string, start time.Time, o Options) (*world, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	w := &world{}
	w.sb = rpmsandbox.New(rpmsandbox.Options{
		Integrations: map[string]string{sandboxToken: sandboxIntegration},
		Now:          start,
		Rates:        sandboxkit.Rates{RateNow: func() time.Time { return time.Now().Add(time.Duration(w.offset.Load())) }},
	}.WithSeedLimits())
	w.hotel = newHotel(w.sb, o.Rooms, o.Seed, start)
	if err := w.hotel.seed(o.Nights + windowDays + 1); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	base, stop, err := serve(w.sb)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	w.stop = func() {
		stop()
		os.RemoveAll(dir)
	}
	if w.cfg, err = writeConfig(dir, base, start, o); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// run runs keysync once with opts on the world's config, the sandbox's
// token in its environment.
func (w *world) run(ctx context.Context, o Options, opts reconcile.Options) (*reconcile.Report, error) {
	return o.Night(ctx, Night{Config: w.cfg, Env: map[string]string{tokenVar: sandboxToken}, Options: opts})
}

// writeConfig writes the bench hotel's keysync config into dir.
func writeConfig(dir, base string, start time.Time, o Options) (string, error) {
	cfgPath := filepath.Join(dir, "keysync.yaml")
	cfgText := fmt.Sprintf(`# keysync bench: a PIN-door hotel on the 3RPMS sandbox
state: %s
properties:
  - name: bench-hotel
    timezone: %s
    check_in: "15:00"
    check_out: "11:00"
    grace: {before_arrival: 2h, after_departure: 2h}
    window_days: %d
    threerpms:
      endpoint: %s/graphql
      token: ${%s}
      page_size: %d
      max_ops_per_request: %d
    default_method: pin
`, filepath.Join(dir, "keysync.db"), start.Location(), windowDays, base, tokenVar, o.PageSize, o.MaxOps)
	return cfgPath, os.WriteFile(cfgPath, []byte(cfgText), 0o600)
}

// printSameDay prints the same-day scenario beside the nightly figures.
func printSameDay(w io.Writer, o Options, runs []*sameDayStats) {
	fmt.Fprintf(w, "\nSame-day bookings (%d a day, made %s–%s for check-in at 15:00 that day, %d day(s))\n\n", sameDayPerDay,
		fmtClock(sameDayFrom), fmtClock(sameDayTo), max(1, o.Nights))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "MODE\tBOOKINGS\tKEYED AT CHECK-IN\tSHARE\tEVENTS\tREQUESTS/EVENT (MAX)\tREQUESTS/EVENT (MEAN)\tNIGHTLY REQUESTS\t")
	for _, r := range runs {
		maxReq, sum := 0, 0
		for _, n := range r.eventRequests {
			maxReq, sum = max(maxReq, n), sum+n
		}
		mean := "-"
		if len(r.eventRequests) > 0 {
			mean = fmt.Sprintf("%.2f", float64(sum)/float64(len(r.eventRequests)))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%%\t%d\t%d\t%s\t%d\t\n", r.mode, r.bookings, r.keyed, 100*ratio(r.keyed, r.bookings),
			len(r.eventRequests), maxReq, mean, r.nightly)
	}
	tw.Flush()
}

func fmtClock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

// printSameDayTargets prints the same-day targets: every same-day guest
// keyed at check-in with webhooks, in at most 3 requests an event.
func printSameDayTargets(w io.Writer, runs []*sameDayStats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range runs {
		if len(r.eventRequests) == 0 {
			continue
		}
		share := ratio(r.keyed, r.bookings)
		fmt.Fprintf(tw, "same-day guests keyed at check-in with webhooks = 100%%\t%s\t%.0f%% (%d of %d)\n", verdict(share == 1), 100*share, r.keyed, r.bookings)
		worst := slices.Max(r.eventRequests)
		fmt.Fprintf(tw, "≤ 3 requests per event\t%s\tworst %d\n", verdict(worst <= 3), worst)
	}
	tw.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
