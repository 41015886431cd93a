package reconcile

import (
	"fmt"
	"time"
)

// Date is a calendar date with no time of day or zone, as 3RPMS and Guestway
// report arrivals and departures. The zero Date is invalid.
//
// Every stay, credential and action carries two, so a Date is kept in 4
// bytes rather than 24: Year holds the years ParseDate reads (0 to 9999)
// and more, Month 1 to 12, Day 1 to 31.
type Date struct {
	Year  int16
	Month Month
	Day   int8
}

// Month is a Date's month, 1 to 12, in one byte (time.Month takes eight).
type Month uint8

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf returns the calendar date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: int16(y), Month: Month(m), Day: int8(d)}
}

// String formats the date as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// AddDays returns the date n days after d (before, for negative n).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(int(d.Year), time.Month(d.Month), int(d.Day)+n, 12, 0, 0, 0, time.UTC))
}

// Before reports whether d comes before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmpInt(int(d.Year), int(e.Year))
	case d.Month != e.Month:
		return cmpInt(int(d.Month), int(e.Month))
	default:
		return cmpInt(int(d.Day), int(e.Day))
	}
}

// At returns the first instant the clock in loc shows c on date d: of a
// time a daylight-saving switch repeats, its first occurrence; of one a
// switch skips, the switch itself (the first instant the clock shows c or
// later). A window opens At its check-in and closes LastAt its check-out,
// so a switch never lets a guest in late or puts one out early. (Go's
// time.Date leaves the choice to the zone's data: it may pick either.)
func (d Date) At(c TimeOfDay, loc *time.Location) time.Time {
	return d.at(c, loc, false)
}

// LastAt returns the last instant the clock in loc shows c on date d: of
// a repeated time, its second occurrence; of a skipped one, the switch.
func (d Date) LastAt(c TimeOfDay, loc *time.Location) time.Time {
	return d.at(c, loc, true)
}

func (d Date) at(c TimeOfDay, loc *time.Location, last bool) time.Time {
	t := time.Date(int(d.Year), time.Month(d.Month), int(d.Day), c.Hour, c.Minute, 0, 0, loc)
	start, end := t.ZoneBounds()
	if t.Hour() != c.Hour || t.Minute() != c.Minute {
		// Skipped: time.Date moved it by the switch, one way or the other.
		wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
		want := time.Date(int(d.Year), time.Month(d.Month), int(d.Day), c.Hour, c.Minute, 0, 0, time.UTC)
		if wall.After(want) && !start.IsZero() {
			return start
		}
		if wall.Before(want) && !end.IsZero() {
			return end
		}
		return t
	}
	_, off := t.Zone()
	if !last && !start.IsZero() {
		// The period before t's ended with the clock set back: t may
		// repeat a time it showed then.
		_, before := start.Add(-time.Second).Zone()
		if back := time.Duration(before-off) * time.Second; back > 0 && t.Sub(start) < back {
			return t.Add(-back)
		}
	}
	if last && !end.IsZero() {
		_, after := end.Zone()
		if back := time.Duration(off-after) * time.Second; back > 0 && end.Sub(t) <= back {
			return t.Add(back)
		}
	}
	return t
}

// MarshalText implements encoding.TextMarshaler: YYYY-MM-DD, or empty for
// the zero Date.
func (d Date) MarshalText() ([]byte, error) {
	if d.IsZero() {
		return []byte{}, nil
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, accepting what
// MarshalText writes.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// TimeOfDay is a time of day, such as a property's check-in time.
type TimeOfDay struct {
	Hour, Minute int
}

// ParseTimeOfDay parses HH:MM (24-hour).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return TimeOfDay{}, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	return TimeOfDay{t.Hour(), t.Minute()}, nil
}

// String formats the clock as HH:MM.
func (c TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DaysUntil is the number of days from d to e (negative when e is before d).
func (d Date) DaysUntil(e Date) int {
	a := time.Date(int(d.Year), time.Month(d.Month), int(d.Day), 0, 0, 0, 0, time.UTC)
	b := time.Date(int(e.Year), time.Month(e.Month), int(e.Day), 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Hours() / 24)
}
