package schedule

import (
	"testing"
	"time"
	_ "time/tzdata" // zones without system zoneinfo
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestOncePerDayAcrossSwitches: a daily spec runs exactly once on every
// local day of the two switch months, at the scheduled time, or when the
// gap that swallowed it ends, or at its first occurrence.
func TestOncePerDayAcrossSwitches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone, spec string
		from       string // local date; 40 days are checked
		// special is the local date of a switch and what the run's local
		// time is that day ("" for none).
		special, at string
	}{
		{"Europe/Ljubljana", "0 2 * * *", "2026-03-10", "2026-03-29", "03:00"},   // spring: 02:00 does not exist
		{"Europe/Ljubljana", "30 2 * * *", "2026-03-10", "2026-03-29", "03:00"},  // spring, inside the gap: when it ends
		{"Europe/Ljubljana", "30 2 * * *", "2026-10-10", "2026-10-25", "02:30"},  // autumn: 02:30 happens twice
		{"Europe/Ljubljana", "15 4 * * *", "2026-03-10", "", ""},                 // 04:15 is never touched
		{"America/Vancouver", "0 2 * * *", "2026-02-25", "2026-03-08", "03:00"},  // spring: 02:00 does not exist
		{"America/Vancouver", "30 1 * * *", "2026-10-20", "2026-11-01", "01:30"}, // autumn: 01:30 happens twice
		{"America/Vancouver", "30 1 * * *", "2026-02-25", "", ""},
	} {
		t.Run(tc.zone+" "+tc.spec+" "+tc.from, func(t *testing.T) {
			loc := mustLoad(t, tc.zone)
			s, err := Parse(tc.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			start, _ := time.ParseInLocation(time.DateOnly, tc.from, loc)
			runs := map[string][]time.Time{}
			for at := s.Next(start); at.Before(start.AddDate(0, 0, 40)); at = s.Next(at) {
				day := at.In(loc).Format(time.DateOnly)
				runs[day] = append(runs[day], at)
			}
			for d := start; d.Before(start.AddDate(0, 0, 39)); d = d.AddDate(0, 0, 1) {
				day := d.Format(time.DateOnly)
				if len(runs[day]) != 1 {
					t.Errorf("%s: %d runs %v, want exactly 1", day, len(runs[day]), runs[day])
					continue
				}
				want := s.spec.(interface{ Next(time.Time) time.Time }).Next(time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)).Format("15:04")
				if day == tc.special {
					want = tc.at
				}
				if got := runs[day][0].In(loc).Format("15:04"); got != want {
					t.Errorf("%s: runs at %s, want %s", day, got, want)
				}
			}
		})
	}
}

// TestFirstOccurrence: on a fall-back night the scheduled time runs at its
// first occurrence (summer time), not the second.
func TestFirstOccurrence(t *testing.T) {
	t.Parallel()
	loc := mustLoad(t, "Europe/Ljubljana")
	s, err := Parse("30 2 * * *", loc)
	if err != nil {
		t.Fatal(err)
	}
	at := s.Next(time.Date(2026, 10, 24, 12, 0, 0, 0, loc))
	if _, off := at.In(loc).Zone(); off != 2*3600 {
		t.Errorf("ran at %s (offset %d), want the first 02:30, in summer time", at.In(loc), off)
	}
	if next := s.Next(at); next.Sub(at) < 20*time.Hour {
		t.Errorf("ran again at %s, %s after", next.In(loc), next.Sub(at))
	}
}

// TestFirstOccurrenceOfOtherOverlaps: where a switch repeats half an
// hour (Australia/Lord_Howe, 02:00 +11:00 back to 01:30 +10:30) or two
// hours (Antarctica/Troll, 03:00 +02:00 back to 01:00 +00:00), a time
// that happens twice also runs once, at its first occurrence, and Shifts
// names it, as it does for the one-hour overlaps.
func TestFirstOccurrenceOfOtherOverlaps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone, spec string
		from       time.Time // noon UTC the day before the switch night
		first      string    // the first occurrence, UTC
		wall       string    // the Shift's wall time
	}{
		{"Australia/Lord_Howe", "45 1 * * *", time.Date(2026, 4, 4, 0, 0, 0, 0, time.UTC), "2026-04-04T14:45:00Z", "2026-04-05 01:45"},
		{"Antarctica/Troll", "30 2 * * *", time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC), "2026-10-25T00:30:00Z", "2026-10-25 02:30"},
	} {
		loc := mustLoad(t, tc.zone)
		s, err := Parse(tc.spec, loc)
		if err != nil {
			t.Fatal(err)
		}
		at := s.Next(tc.from)
		if got := at.UTC().Format(time.RFC3339); got != tc.first {
			t.Errorf("%s %q: runs at %s (%s), want the first occurrence %s", tc.zone, tc.spec, got, at.In(loc).Format(time.RFC3339), tc.first)
		}
		if next := s.Next(at); next.Sub(at) < 20*time.Hour {
			t.Errorf("%s %q: ran again at %s, %s after", tc.zone, tc.spec, next.In(loc), next.Sub(at))
		}
		shifts := s.Shifts(tc.from, tc.from.AddDate(0, 0, 3))
		if len(shifts) != 1 || shifts[0].Wall != tc.wall || shifts[0].Gap || shifts[0].At.UTC().Format(time.RFC3339) != tc.first {
			t.Errorf("%s %q: shifts %+v, want one at %s (happens twice, runs at %s)", tc.zone, tc.spec, shifts, tc.wall, tc.first)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	loc := mustLoad(t, "Europe/Ljubljana")
	for _, tc := range []struct {
		spec, zone string
		ok         bool
	}{
		{"0 2 * * *", "Europe/Ljubljana", true},
		{"@daily", "Europe/Ljubljana", true},
		{"CRON_TZ=America/Vancouver 15 4 * * *", "America/Vancouver", true},
		{"CRON_TZ=Nowhere/Else 15 4 * * *", "", false},
		{"CRON_TZ=UTC", "", false},
		{"61 2 * * *", "", false},
	} {
		s, err := Parse(tc.spec, loc)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q): err = %v, want ok %v", tc.spec, err, tc.ok)
			continue
		}
		if tc.ok && s.Location().String() != tc.zone {
			t.Errorf("Parse(%q): zone %s, want %s", tc.spec, s.Location(), tc.zone)
		}
	}
	every, err := Parse("@every 90m", loc)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	if got := every.Next(from); got.Sub(from) != 90*time.Minute {
		t.Errorf("@every 90m: next %s after %s", got, from)
	}
}

// TestShifts: the checks a config warns with: the scheduled times a switch
// moves in the coming year, and none for a safe time.
func TestShifts(t *testing.T) {
	t.Parallel()
	loc := mustLoad(t, "Europe/Ljubljana")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	for _, tc := range []struct {
		spec string
		want []Shift
	}{
		{"0 2 * * *", []Shift{{Wall: "2026-03-29 02:00", Gap: true}, {Wall: "2026-10-25 02:00"}}},
		{"30 2 * * *", []Shift{{Wall: "2026-03-29 02:30", Gap: true}, {Wall: "2026-10-25 02:30"}}},
		{"15 4 * * *", nil},
	} {
		s, err := Parse(tc.spec, loc)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Shifts(from, from.AddDate(1, 0, 0))
		if len(got) != len(tc.want) {
			t.Fatalf("%s: shifts %+v, want %+v", tc.spec, got, tc.want)
		}
		for i := range got {
			if got[i].Wall != tc.want[i].Wall || got[i].Gap != tc.want[i].Gap {
				t.Errorf("%s: shift %d = %+v, want %+v", tc.spec, i, got[i], tc.want[i])
			}
		}
	}
}

// TestShiftsWalksOnlyTheSwitches: Shifts, which walks the spec only on the
// days around a switch, finds what walking every scheduled time finds, in
// zones that switch by an hour, by half an hour, at midnight, and not at
// all.
func TestShiftsWalksOnlyTheSwitches(t *testing.T) {
	t.Parallel()
	zones := []string{"Europe/Ljubljana", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "America/Havana", "Asia/Tokyo", "UTC"}
	specs := []string{"0 2 * * *", "30 2 * * *", "*/7 * * * *", "0 0 * * *", "59 23 * * *", "15 1 * * 0", "0 1,2,3 1 * *", "15 4 * * *"}
	for _, zone := range zones {
		loc := mustLoad(t, zone)
		// A year from July holds every switch of each zone (the southern
		// ones in September, October and April) and the walk past them.
		from := time.Date(2025, 7, 3, 17, 0, 0, 0, loc)
		to := from.AddDate(1, 0, 0)
		for _, spec := range specs {
			s, err := Parse(spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			got, want := s.Shifts(from, to), s.shiftsIn(from, to)
			if len(got) != len(want) {
				t.Fatalf("%s in %s: %d shifts, walking every time finds %d:\n%+v\n%+v", spec, zone, len(got), len(want), got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s in %s: shift %d = %+v, walking every time finds %+v", spec, zone, i, got[i], want[i])
				}
			}
		}
	}
}
