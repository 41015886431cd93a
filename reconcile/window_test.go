package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// vancouver is America/Vancouver, the second zone of the DST tests.
var vancouver = mustLoad("America/Vancouver")

// hoursProperty is a property in loc with check-in 15:00, check-out 11:00
// and the given grace on both sides.
func hoursProperty(loc *time.Location, grace time.Duration) *reconcile.Property {
	return &reconcile.Property{
		Name: "p", Location: loc, WindowDays: 7,
		CheckIn: reconcile.TimeOfDay{Hour: 15}, CheckOut: reconcile.TimeOfDay{Hour: 11},
		GraceBefore: grace, GraceAfter: grace,
	}
}

// utc parses an RFC 3339 instant or panics.
func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPropertyWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		loc                  *time.Location
		grace                time.Duration
		arrival, departure   string
		start, end           string
		wantDuration         time.Duration
		wantLocalIn, wantOut string // local wall clock of start and end
	}{
		// Europe/Ljubljana: CET (+1) → CEST (+2) on 2026-03-29, back on 2026-10-25.
		{name: "lj spring: night of the change", loc: lj, arrival: "2026-03-28", departure: "2026-03-30",
			start: "2026-03-28T14:00:00Z", end: "2026-03-30T09:00:00Z", wantDuration: 43 * time.Hour},
		{name: "lj spring: arrive on the change day", loc: lj, arrival: "2026-03-29", departure: "2026-03-31",
			start: "2026-03-29T13:00:00Z", end: "2026-03-31T09:00:00Z", wantDuration: 44 * time.Hour},
		{name: "lj spring: depart on the change day", loc: lj, arrival: "2026-03-27", departure: "2026-03-29",
			start: "2026-03-27T14:00:00Z", end: "2026-03-29T09:00:00Z", wantDuration: 43 * time.Hour},
		{name: "lj spring with 2 h grace", loc: lj, grace: 2 * time.Hour, arrival: "2026-03-28", departure: "2026-03-30",
			start: "2026-03-28T12:00:00Z", end: "2026-03-30T11:00:00Z", wantDuration: 47 * time.Hour},
		{name: "lj autumn: night of the change", loc: lj, arrival: "2026-10-24", departure: "2026-10-26",
			start: "2026-10-24T13:00:00Z", end: "2026-10-26T10:00:00Z", wantDuration: 45 * time.Hour},
		{name: "lj autumn: arrive on the change day", loc: lj, arrival: "2026-10-25", departure: "2026-10-27",
			start: "2026-10-25T14:00:00Z", end: "2026-10-27T10:00:00Z", wantDuration: 44 * time.Hour},
		{name: "lj autumn: depart on the change day", loc: lj, arrival: "2026-10-23", departure: "2026-10-25",
			start: "2026-10-23T13:00:00Z", end: "2026-10-25T10:00:00Z", wantDuration: 45 * time.Hour},
		{name: "lj autumn with 2 h grace", loc: lj, grace: 2 * time.Hour, arrival: "2026-10-24", departure: "2026-10-26",
			start: "2026-10-24T11:00:00Z", end: "2026-10-26T12:00:00Z", wantDuration: 49 * time.Hour},
		{name: "lj summer, one night", loc: lj, arrival: "2026-06-10", departure: "2026-06-11",
			start: "2026-06-10T13:00:00Z", end: "2026-06-11T09:00:00Z", wantDuration: 20 * time.Hour},

		// America/Vancouver: PST (−8) → PDT (−7) on 2026-03-08, back on 2026-11-01.
		{name: "van spring: night of the change", loc: vancouver, arrival: "2026-03-07", departure: "2026-03-09",
			start: "2026-03-07T23:00:00Z", end: "2026-03-09T18:00:00Z", wantDuration: 43 * time.Hour},
		{name: "van spring: arrive on the change day", loc: vancouver, arrival: "2026-03-08", departure: "2026-03-10",
			start: "2026-03-08T22:00:00Z", end: "2026-03-10T18:00:00Z", wantDuration: 44 * time.Hour},
		{name: "van spring: depart on the change day", loc: vancouver, arrival: "2026-03-06", departure: "2026-03-08",
			start: "2026-03-06T23:00:00Z", end: "2026-03-08T18:00:00Z", wantDuration: 43 * time.Hour},
		{name: "van spring with 2 h grace", loc: vancouver, grace: 2 * time.Hour, arrival: "2026-03-07", departure: "2026-03-09",
			start: "2026-03-07T21:00:00Z", end: "2026-03-09T20:00:00Z", wantDuration: 47 * time.Hour},
		{name: "van autumn: night of the change", loc: vancouver, arrival: "2026-10-31", departure: "2026-11-02",
			start: "2026-10-31T22:00:00Z", end: "2026-11-02T19:00:00Z", wantDuration: 45 * time.Hour},
		{name: "van autumn: arrive on the change day", loc: vancouver, arrival: "2026-11-01", departure: "2026-11-03",
			start: "2026-11-01T23:00:00Z", end: "2026-11-03T19:00:00Z", wantDuration: 44 * time.Hour},
		{name: "van autumn: depart on the change day", loc: vancouver, arrival: "2026-10-30", departure: "2026-11-01",
			start: "2026-10-30T22:00:00Z", end: "2026-11-01T19:00:00Z", wantDuration: 45 * time.Hour},

		{name: "no location means UTC", loc: nil, arrival: "2026-06-10", departure: "2026-06-12",
			start: "2026-06-10T15:00:00Z", end: "2026-06-12T11:00:00Z", wantDuration: 44 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := hoursProperty(tc.loc, tc.grace)
			w := p.Window(date(tc.arrival), date(tc.departure))
			if !w.Start.Equal(utc(tc.start)) || !w.End.Equal(utc(tc.end)) {
				t.Errorf("Window(%s, %s) = [%s, %s), want [%s, %s)", tc.arrival, tc.departure,
					w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339), tc.start, tc.end)
			}
			if d := w.End.Sub(w.Start); d != tc.wantDuration {
				t.Errorf("window lasts %s, want %s", d, tc.wantDuration)
			}
			loc := tc.loc
			if loc == nil {
				loc = time.UTC
			}
			in, out := w.Start.Add(tc.grace).In(loc), w.End.Add(-tc.grace).In(loc)
			if got := in.Format("2006-01-02 15:04"); got != tc.arrival+" 15:00" {
				t.Errorf("start without grace is %s local, want %s 15:00", got, tc.arrival)
			}
			if got := out.Format("2006-01-02 15:04"); got != tc.departure+" 11:00" {
				t.Errorf("end without grace is %s local, want %s 11:00", got, tc.departure)
			}
		})
	}
}

func TestPropertyReadRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		loc      *time.Location
		days     int
		now      string
		from, to string
	}{
		{"lj nightly run", lj, 7, "2026-06-10T20:00:00Z", "2026-06-08", "2026-06-16"},
		{"lj past local midnight, grace still on yesterday", lj, 7, "2026-06-10T22:30:00Z", "2026-06-08", "2026-06-17"},
		{"lj past local midnight + grace", lj, 7, "2026-06-11T00:30:00Z", "2026-06-09", "2026-06-17"},
		{"lj, the 3RPMS API document's example, January 30th + 6 days", lj, 7, "2026-01-30T08:00:00Z", "2026-01-28", "2026-02-05"},
		{"lj just after spring change", lj, 7, "2026-03-29T01:30:00Z", "2026-03-27", "2026-04-04"},
		{"lj just before spring change", lj, 7, "2026-03-29T00:30:00Z", "2026-03-26", "2026-04-04"},
		{"lj autumn, second 02:30", lj, 7, "2026-10-25T01:30:00Z", "2026-10-23", "2026-10-31"},
		{"lj one-day window", lj, 1, "2026-06-10T20:00:00Z", "2026-06-08", "2026-06-10"},
		{"van first 01:30 of autumn change", vancouver, 7, "2026-11-01T08:30:00Z", "2026-10-29", "2026-11-07"},
		{"van second 01:30 of autumn change", vancouver, 7, "2026-11-01T09:30:00Z", "2026-10-30", "2026-11-07"},
		{"van local date differs from UTC", vancouver, 7, "2026-06-11T03:00:00Z", "2026-06-08", "2026-06-16"},
		{"no location means UTC", nil, 7, "2026-06-10T01:00:00Z", "2026-06-07", "2026-06-16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := hoursProperty(tc.loc, 2*time.Hour)
			p.WindowDays = tc.days
			from, to := p.ReadRange(utc(tc.now))
			if from.String() != tc.from || to.String() != tc.to {
				t.Errorf("ReadRange(%s) = %s..%s, want %s..%s", tc.now, from, to, tc.from, tc.to)
			}
		})
	}
}

// TestReadRangeKeepsOpenWindows walks the DST weekends in 15-minute steps
// and checks that ReadRange never leaves out a stay whose window is still
// open: a stay departing on from (which the read excludes) has ended, and a
// stay arriving after to has not begun.
func TestReadRangeKeepsOpenWindows(t *testing.T) {
	t.Parallel()
	for _, loc := range []*time.Location{lj, vancouver} {
		for _, grace := range []time.Duration{0, 2 * time.Hour, 26 * time.Hour} {
			p := hoursProperty(loc, grace)
			for _, day := range []string{"2026-03-07", "2026-03-28", "2026-10-24", "2026-10-31"} {
				start := date(day).At(reconcile.TimeOfDay{}, loc)
				for now := start; now.Before(start.Add(72 * time.Hour)); now = now.Add(15 * time.Minute) {
					from, to := p.ReadRange(now)
					if end := p.Window(from.AddDays(-1), from).End; end.After(now) {
						t.Fatalf("%s grace %s now %s: a stay departing %s (excluded) is open until %s",
							loc, grace, now.In(loc), from, end.In(loc))
					}
					begin := p.Window(to.AddDays(1), to.AddDays(2)).Start
					if begin.Sub(now) < 6*24*time.Hour-grace {
						t.Fatalf("%s grace %s now %s: a stay arriving %s (excluded) starts at %s",
							loc, grace, now.In(loc), to.AddDays(1), begin.In(loc))
					}
				}
			}
		}
	}
}

func ExampleProperty_Window() {
	p := &reconcile.Property{
		Location: mustLoad("Europe/Ljubljana"),
		CheckIn:  reconcile.TimeOfDay{Hour: 15}, CheckOut: reconcile.TimeOfDay{Hour: 11},
	}
	arrival, _ := reconcile.ParseDate("2026-03-28")
	departure, _ := reconcile.ParseDate("2026-03-30")
	w := p.Window(arrival, departure)
	fmt.Println(w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339))
	// Output: 2026-03-28T14:00:00Z 2026-03-30T09:00:00Z
}

// TestReadRangeCoversAccessOpeningInIt: a stay whose access opens (check-in
// less the grace before arrival) on a day the run keys, today through today
// + window_days - 1, is read and keyed by that run, however far the grace
// reaches back: with a one-day window and 26 h of grace, tonight's run must
// key tomorrow's arrival, whose access opens this afternoon, or the guest
// has nothing until the next night's run.
func TestReadRangeCoversAccessOpeningInIt(t *testing.T) {
	t.Parallel()
	for _, loc := range []*time.Location{lj, vancouver, mustLoad("Pacific/Kiritimati")} {
		for _, days := range []int{1, 2, 7} {
			for _, grace := range []time.Duration{0, 2 * time.Hour, 15 * time.Hour, 26 * time.Hour, 48 * time.Hour} {
				p := hoursProperty(loc, grace)
				p.WindowDays = days
				start := date("2026-03-27").At(reconcile.TimeOfDay{}, loc)
				for now := start; now.Before(start.Add(72 * time.Hour)); now = now.Add(45 * time.Minute) {
					_, to := p.ReadRange(now)
					last := reconcile.DateOf(now.In(loc)).AddDays(days - 1)
					if arrival := to.AddDays(1); !last.Before(reconcile.DateOf(p.Window(arrival, arrival.AddDays(1)).Start.In(loc))) {
						t.Fatalf("%s, %d day(s), grace %s, now %s: reads arrivals to %s, but access for one on %s opens %s",
							loc, days, grace, now.In(loc), to, arrival, p.Window(arrival, arrival.AddDays(1)).Start.In(loc))
					}
				}
			}
		}
	}
	// The planner keys such a stay in the run.
	p := testProperty()
	p.WindowDays, p.GraceBefore = 1, 26*time.Hour
	plan, err := reconcile.Compute(reconcile.Input{
		Now: ljAt("2026-06-10", 4, 15), Property: p, Rand: seeded(1),
		Stays: []reconcile.Stay{stay("a", "r301", "2026-06-11", "2026-06-12")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) == 0 {
		t.Errorf("access opens %s, and the run at %s issues nothing for it", p.Window(date("2026-06-11"), date("2026-06-12")).Start.In(lj), ljAt("2026-06-10", 4, 15))
	}
}

// checkDay runs check at now over the next 24 hours on property p, whose
// source holds the one stay s and which has no sinks, and stops the test
// on an error or a failure.
func checkDay(t *testing.T, p *reconcile.Property, s reconcile.Stay, now time.Time) (checked int, unready []reconcile.Unready) {
	t.Helper()
	runner := &reconcile.Runner{Store: newStore(), Rand: seeded(9), Sites: []*reconcile.Site{
		{Property: p, Source: &fakeSource{w: newWorld(s)}, Sinks: map[reconcile.System]reconcile.Sink{}}}}
	checked, unready, failures, err := runner.Check(context.Background(), now, 24*time.Hour)
	if err != nil || len(failures) > 0 {
		t.Fatal(err, failures)
	}
	return checked, unready
}

// TestCheckReadsAccessOpeningWithinTheHorizon: check covers every stay
// whose access opens within the horizon, the grace before arrival
// included, not only those arriving by the horizon's date.
func TestCheckReadsAccessOpeningWithinTheHorizon(t *testing.T) {
	t.Parallel()
	p := testProperty()
	p.GraceBefore = 20 * time.Hour
	s := stay("s1", "r101", "2026-06-12", "2026-06-14")
	now := ljAt("2026-06-10", 20, 0)
	checked, unready := checkDay(t, p, s, now)
	if opens := p.Window(s.Arrival, s.Departure).Start; checked != 1 || len(unready) != 1 {
		t.Errorf("access of %s opens %s, within 24h of %s; checked %d, unready %v, want it checked and not ready (no key)",
			s.Ref.ID, opens.In(lj), now.In(lj), checked, unready)
	}
}

// TestCheckUnreadableGuestwayPIN: a Guestway lock PIN sent in a form
// keysync cannot read (a JSON number, LockAccess.Unreadable) is a PIN
// Guestway holds: check must not say Guestway holds none, which sends a
// person to issue a second PIN for a lock that has one.
func TestCheckUnreadableGuestwayPIN(t *testing.T) {
	t.Parallel()
	p := testProperty()
	s := stay("g1", "r101", "2026-06-11", "2026-06-13")
	s.Ref.Source = reconcile.SystemGuestway
	s.Locks = []reconcile.LockAccess{{LockID: "l1", LockName: "Front door", Unreadable: true}}
	_, unready := checkDay(t, p, s, ljAt("2026-06-10", 20, 0))
	for _, u := range unready {
		if strings.Contains(fmt.Sprint(u), "holds no smart-lock PIN") {
			t.Errorf("check says %v, but Guestway holds a PIN for lock l1 (sent as a number)", u)
		}
	}
}
