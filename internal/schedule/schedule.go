// Package schedule runs a cron spec on the wall clock of a time zone
// exactly once per scheduled time, across daylight-saving switches.
//
// robfig/cron evaluates a spec on real instants, so a wall-clock time that
// does not exist (02:30 on a spring-forward night) is skipped and one that
// happens twice (02:30 on a fall-back night) can run twice: a nightly run at
// 02:00 in Europe/Ljubljana misses a night in March. Here the spec is
// evaluated on the zone's wall clock as if it had no switches, and each
// wall-clock time is then placed on the real timeline: a time in a gap runs
// when the gap ends, a time that happens twice runs at its first
// occurrence, and never twice.
package schedule

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a cron spec bound to a time zone. It implements
// cron.Schedule.
type Schedule struct {
	spec cron.Schedule
	// wall is true for specs of wall-clock times (fields), false for
	// @every intervals, which run on real time as they are.
	wall bool
	loc  *time.Location
}

var _ cron.Schedule = Schedule{}

// Parse parses a standard five-field cron spec or a descriptor (@daily,
// @every 1h, …) for the zone loc; a leading CRON_TZ=Zone overrides loc.
func Parse(spec string, loc *time.Location) (Schedule, error) {
	if rest, ok := strings.CutPrefix(spec, "CRON_TZ="); ok {
		name, body, found := strings.Cut(rest, " ")
		if !found {
			return Schedule{}, fmt.Errorf("schedule %q: CRON_TZ needs a spec after the zone", spec)
		}
		l, err := time.LoadLocation(name)
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: %w", spec, err)
		}
		loc, spec = l, strings.TrimSpace(body)
	}
	if loc == nil {
		loc = time.UTC
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	out := Schedule{spec: s, loc: loc}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = time.UTC // the wall clock, with no switches
		out.wall = true
	}
	return out, nil
}

// Location is the zone the schedule's wall-clock times are in.
func (s Schedule) Location() *time.Location { return s.loc }

// Next returns the first scheduled instant after t, or the zero time if
// there is none within cron's search horizon.
func (s Schedule) Next(t time.Time) time.Time {
	if !s.wall {
		return s.spec.Next(t)
	}
	naive := wall(t.In(s.loc))
	for range 100 {
		n := s.spec.Next(naive)
		if n.IsZero() {
			return n
		}
		if at := s.place(n); at.After(t) {
			return at
		}
		naive = n
	}
	return time.Time{}
}

// place puts a wall-clock time (held as UTC) on the zone's real timeline:
// the first instant at which the zone's clock reads it, or, in a gap, the
// instant the gap ends.
func (s Schedule) place(n time.Time) time.Time {
	at := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, s.loc)
	if wall(at).Equal(n) {
		// The first occurrence: the clock may have read the same time
		// before a switch set it back, by an hour or by another amount
		// (half an hour in Australia/Lord_Howe).
		return s.occurrences(n, at)[0]
	}
	// In a gap: the clock jumps over n. Run when the gap ends, the first
	// instant whose wall clock is after n.
	lo, hi := at.Add(-3*time.Hour), at.Add(3*time.Hour)
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if wall(mid).After(n) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi.Truncate(time.Second)
}

// occurrences returns, in time order, the instants at which the zone's
// clock reads the wall-clock time n (held as UTC), at being one of them:
// two where a switch sets the clock back over n, else at alone. Each
// candidate is n read with an offset the zone has within a day of at.
func (s Schedule) occurrences(n, at time.Time) []time.Time {
	out := []time.Time{at}
	for _, probe := range []time.Time{at.Add(-24 * time.Hour), at.Add(24 * time.Hour)} {
		_, off := probe.In(s.loc).Zone()
		c := n.Add(-time.Duration(off) * time.Second)
		if !c.Equal(out[0]) && (len(out) == 1 || !c.Equal(out[1])) && wall(c.In(s.loc)).Equal(n) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	for i := range out {
		out[i] = out[i].In(s.loc)
	}
	return out
}

// Shift is a scheduled wall-clock time that a daylight-saving switch moves.
type Shift struct {
	// Wall is the scheduled wall-clock time, in the schedule's zone.
	Wall string
	// At is when it runs.
	At time.Time
	// Gap is true when the clock jumps over Wall (it runs when the gap
	// ends); false when Wall happens twice (it runs once, the first time).
	Gap bool
}

// Shifts lists the scheduled times between from and to that fall in a
// daylight-saving gap or overlap, for a config check to warn about.
//
// Only the days around a switch can hold such a time, so the spec is
// walked there alone: a config check runs on every command, and a spec
// of every few minutes has a hundred thousand times a year.
func (s Schedule) Shifts(from, to time.Time) []Shift {
	if !s.wall {
		return nil
	}
	var out []Shift
	walked := from // the spec is walked up to here
	for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
		next := day.Add(24 * time.Hour)
		_, a := day.In(s.loc).Zone()
		_, b := next.In(s.loc).Zone()
		if a == b {
			continue
		}
		// A switch between day and next moves times an hour or two
		// around it at the most: a day on each side covers it.
		lo, hi := day.Add(-24*time.Hour), next.Add(24*time.Hour)
		if lo.Before(walked) {
			lo = walked
		}
		if hi.After(to) {
			hi = to
		}
		out = append(out, s.shiftsIn(lo, hi)...)
		walked = hi
	}
	return out
}

// shiftsIn is Shifts walking every scheduled time from from to to.
func (s Schedule) shiftsIn(from, to time.Time) []Shift {
	var out []Shift
	for naive := wall(from.In(s.loc)); ; {
		n := s.spec.Next(naive)
		at := s.place(n)
		if n.IsZero() || at.After(to) {
			return out
		}
		naive = n
		gap := !wall(at).Equal(n)
		twice := !gap && len(s.occurrences(n, at)) > 1
		if gap || twice {
			out = append(out, Shift{Wall: n.Format("2006-01-02 15:04"), At: at, Gap: gap})
		}
	}
}

// wall is t's wall clock in its own zone, as a UTC time.
func wall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}
