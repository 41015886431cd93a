package dst

import (
	"testing"
	"time"
)

var from, to = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)

// The checker itself: it must catch what the deployment comments warn of.
func TestCheckFindsSkippedAndDoubledTimes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		zone         string
		hour, minute int
	}{
		{"Europe/Ljubljana", 2, 0},  // spring forward 02:00 -> 03:00: skipped
		{"Europe/Ljubljana", 2, 30}, // autumn 03:00 -> 02:00: doubled
		{"Europe/Helsinki", 3, 30},  // autumn 04:00 -> 03:00: doubled
		{"Europe/London", 1, 30},
		{"America/New_York", 2, 30}, // skipped in March
		{"America/New_York", 1, 30}, // doubled in November
	} {
		loc, err := time.LoadLocation(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(loc, tt.hour, tt.minute, from, to); err == nil {
			t.Errorf("%02d:%02d in %s passed; want a skipped or doubled day", tt.hour, tt.minute, tt.zone)
		}
	}
}

func TestCheckPassesOutsideTheSwitchBand(t *testing.T) {
	t.Parallel()
	for _, zone := range Zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, hm := range [][2]int{{4, 15}, {4, 30}, {0, 30}} {
			if err := Check(loc, hm[0], hm[1], from, to); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestParseCron(t *testing.T) {
	t.Parallel()
	if h, m, err := ParseCron("15 4 * * *"); err != nil || h != 4 || m != 15 {
		t.Errorf("ParseCron = %d, %d, %v", h, m, err)
	}
	for _, bad := range []string{"@daily", "*/5 4 * * *", "15 4 * * 1", "60 4 * * *", "15 24 * * *"} {
		if _, _, err := ParseCron(bad); err == nil {
			t.Errorf("ParseCron(%q): no error", bad)
		}
	}
}
