// Package dst checks that a nightly local time of day happens exactly once
// on every day in a time zone: not skipped by a spring-forward switch, not
// lived twice in an autumn fall-back. The deployment tests use it to hold
// the timer's and the CronJob's schedule to what their comments claim.
package dst

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Zones are zones whose DST switches fall between 01:00 and 04:00 local:
// Europe's at 01:00 UTC (01:00 local in London, 02:00 in Ljubljana, 03:00 in
// Helsinki) and North America's at 02:00 local.
var Zones = []string{
	"Europe/London", "Europe/Lisbon", "Europe/Ljubljana", "Europe/Berlin",
	"Europe/Paris", "Europe/Helsinki", "Europe/Athens",
	"America/New_York", "America/Chicago", "America/Denver",
	"America/Los_Angeles", "America/Halifax", "America/St_Johns",
}

// Check reports the first day in [from, to) on which the local time
// hour:minute in loc does not happen exactly once.
func Check(loc *time.Location, hour, minute int, from, to time.Time) error {
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		y, m, day := d.Date()
		if n := occurrences(loc, y, m, day, hour, minute); n != 1 {
			return fmt.Errorf("%02d:%02d on %04d-%02d-%02d in %s happens %d times", hour, minute, y, m, day, loc, n)
		}
	}
	return nil
}

// occurrences counts the instants whose wall clock in loc reads that date
// and time. Each candidate is the wall time less one of the UTC offsets loc
// uses around that day; it counts if it reads back as that wall time.
func occurrences(loc *time.Location, y int, m time.Month, d, hour, minute int) int {
	wall := time.Date(y, m, d, hour, minute, 0, 0, time.UTC)
	seen := map[int64]bool{}
	for _, probe := range []time.Duration{-36 * time.Hour, -12 * time.Hour, 12 * time.Hour, 36 * time.Hour} {
		_, off := wall.Add(probe).In(loc).Zone()
		t := wall.Add(-time.Duration(off) * time.Second).In(loc)
		ty, tm, td := t.Date()
		if ty == y && tm == m && td == d && t.Hour() == hour && t.Minute() == minute {
			seen[t.Unix()] = true
		}
	}
	return len(seen)
}

// ParseCron returns the hour and minute of a daily 5-field cron spec
// ("15 4 * * *"); anything but fixed minute and hour fields and "* * *"
// is an error.
func ParseCron(spec string) (hour, minute int, err error) {
	f := strings.Fields(spec)
	if len(f) != 5 || f[2] != "*" || f[3] != "*" || f[4] != "*" {
		return 0, 0, fmt.Errorf("%q is not a daily \"M H * * *\" spec", spec)
	}
	if minute, err = strconv.Atoi(f[0]); err != nil || minute < 0 || minute > 59 {
		return 0, 0, fmt.Errorf("%q: bad minute", spec)
	}
	if hour, err = strconv.Atoi(f[1]); err != nil || hour < 0 || hour > 23 {
		return 0, 0, fmt.Errorf("%q: bad hour", spec)
	}
	return hour, minute, nil
}
