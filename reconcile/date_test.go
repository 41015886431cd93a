package reconcile_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	checkParse(t, "ParseDate", reconcile.ParseDate, []parseCase[reconcile.Date]{
		{in: "2026-01-30", want: reconcile.Date{Year: 2026, Month: reconcile.Month(time.January), Day: 30}},
		{in: "2026-12-31", want: reconcile.Date{Year: 2026, Month: reconcile.Month(time.December), Day: 31}},
		{in: "2028-02-29", want: reconcile.Date{Year: 2028, Month: reconcile.Month(time.February), Day: 29}},
		{in: "0001-01-01", want: reconcile.Date{Year: 1, Month: reconcile.Month(time.January), Day: 1}},
		{in: "2026-02-29", wantErr: true}, // not a leap year
		{in: "2026-04-31", wantErr: true},
		{in: "2026-13-01", wantErr: true},
		{in: "2026-00-10", wantErr: true},
		{in: "2026-1-5", wantErr: true},
		{in: "26-01-05", wantErr: true},
		{in: "2026-01-05T00:00:00Z", wantErr: true},
		{in: " 2026-01-05", wantErr: true},
		{in: "2026/01/05", wantErr: true},
		{in: "", wantErr: true},
	})
}

func TestDateString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    reconcile.Date
		want string
	}{
		{reconcile.Date{Year: 2026, Month: reconcile.Month(time.March), Day: 8}, "2026-03-08"},
		{reconcile.Date{Year: 2026, Month: reconcile.Month(time.November), Day: 1}, "2026-11-01"},
		{reconcile.Date{Year: 999, Month: reconcile.Month(time.July), Day: 4}, "0999-07-04"},
		{reconcile.Date{}, "0000-00-00"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.d, got, tc.want)
		}
	}
	if !(reconcile.Date{}).IsZero() || date("2026-01-01").IsZero() {
		t.Error("IsZero: only the zero Date is zero")
	}
}

func TestDateAddDays(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from string
		n    int
		want string
	}{
		{"2026-06-10", 0, "2026-06-10"},
		{"2026-06-10", 6, "2026-06-16"},
		{"2026-06-10", -1, "2026-06-09"},
		{"2026-01-31", 1, "2026-02-01"},
		{"2026-03-01", -1, "2026-02-28"},
		{"2028-02-28", 1, "2028-02-29"},
		{"2028-03-01", -1, "2028-02-29"},
		{"2026-12-31", 1, "2027-01-01"},
		{"2027-01-01", -1, "2026-12-31"},
		{"2026-03-28", 2, "2026-03-30"}, // across Europe's spring change
		{"2026-10-24", 2, "2026-10-26"}, // across Europe's autumn change
		{"2026-01-01", 365, "2027-01-01"},
		{"2028-01-01", 366, "2029-01-01"},
	}
	for _, tc := range tests {
		if got := date(tc.from).AddDays(tc.n).String(); got != tc.want {
			t.Errorf("%s.AddDays(%d) = %s, want %s", tc.from, tc.n, got, tc.want)
		}
	}
}

func TestDateCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"2026-06-10", "2026-06-10", 0},
		{"2026-06-10", "2026-06-11", -1},
		{"2026-06-11", "2026-06-10", 1},
		{"2026-05-31", "2026-06-01", -1},
		{"2026-12-01", "2026-02-28", 1}, // month before day
		{"2025-12-31", "2026-01-01", -1},
		{"2027-01-01", "2026-12-31", 1}, // year before month
	}
	for _, tc := range tests {
		a, b := date(tc.a), date(tc.b)
		if got := a.Compare(b); got != tc.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := a.Before(b); got != (tc.want < 0) {
			t.Errorf("%s.Before(%s) = %v", tc.a, tc.b, got)
		}
		if got := b.Compare(a); got != -tc.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestDateOf(t *testing.T) {
	t.Parallel()
	instant := time.Date(2026, 6, 10, 22, 30, 0, 0, time.UTC)
	tests := []struct {
		loc  *time.Location
		want string
	}{
		{time.UTC, "2026-06-10"},
		{lj, "2026-06-11"}, // 00:30 CEST
		{mustLoad("America/Vancouver"), "2026-06-10"},
		{mustLoad("Pacific/Kiritimati"), "2026-06-11"},
	}
	for _, tc := range tests {
		if got := reconcile.DateOf(instant.In(tc.loc)).String(); got != tc.want {
			t.Errorf("DateOf(%s in %s) = %s, want %s", instant, tc.loc, got, tc.want)
		}
	}
}

func TestDateJSON(t *testing.T) {
	t.Parallel()
	type doc struct {
		Arrival reconcile.Date `json:"arrival"`
	}
	b, err := json.Marshal(doc{date("2026-03-29")})
	if err != nil || string(b) != `{"arrival":"2026-03-29"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d.Arrival != date("2026-03-29") {
		t.Fatalf("Unmarshal = %v, %v", d.Arrival, err)
	}
	if err := json.Unmarshal([]byte(`{"arrival":"2026-3-29"}`), &d); err == nil {
		t.Error("Unmarshal accepted 2026-3-29")
	}
	// The zero Date round-trips as "".
	b, err = json.Marshal(doc{})
	if err != nil || string(b) != `{"arrival":""}` {
		t.Fatalf("Marshal(zero) = %s, %v", b, err)
	}
	d = doc{date("2026-01-01")}
	if err := json.Unmarshal(b, &d); err != nil || !d.Arrival.IsZero() {
		t.Fatalf("Unmarshal(zero) = %v, %v", d.Arrival, err)
	}
}

func TestParseTimeOfDay(t *testing.T) {
	t.Parallel()
	checkParse(t, "ParseTimeOfDay", reconcile.ParseTimeOfDay, []parseCase[reconcile.TimeOfDay]{
		{in: "15:00", want: reconcile.TimeOfDay{Hour: 15}},
		{in: "11:00", want: reconcile.TimeOfDay{Hour: 11}},
		{in: "00:00", want: reconcile.TimeOfDay{}},
		{in: "23:59", want: reconcile.TimeOfDay{Hour: 23, Minute: 59}},
		{in: "09:30", want: reconcile.TimeOfDay{Hour: 9, Minute: 30}},
		{in: "24:00", wantErr: true},
		{in: "12:60", wantErr: true},
		{in: "3pm", wantErr: true},
		{in: "15", wantErr: true},
		{in: "", wantErr: true},
	})
}

// parseCase is one input of a parser whose result prints back as the
// input: what it must give, or that it must refuse it.
type parseCase[T any] struct {
	in      string
	want    T
	wantErr bool
}

// checkParse runs parse, named name, on each case as a subtest: an error
// where one is wanted, else the value wanted, whose String is the input.
func checkParse[T interface {
	comparable
	String() string
}](t *testing.T, name string, parse func(string) (T, error), cases []parseCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Errorf("%s(%q) = %v, want an error", name, tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s(%q) = %v, %v; want %v", name, tc.in, got, err, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Errorf("String() = %q, want %q", s, tc.in)
			}
		})
	}
}

// TestDateAtAcrossDaylightSaving: At is the first instant a zone's clock
// shows a time on a date, LastAt the last: the two occurrences of a time a
// switch repeats, and the switch itself for a time it skips.
func TestDateAtAcrossDaylightSaving(t *testing.T) {
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	lj, ny, lh := zone("Europe/Ljubljana"), zone("America/New_York"), zone("Australia/Lord_Howe")
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name        string
		loc         *time.Location
		date        string
		hour, min   int
		first, last string // UTC
	}{
		{"summer", lj, "2026-06-10", 15, 0, "2026-06-10 13:00", "2026-06-10 13:00"},
		{"repeated (clocks back 03:00 → 02:00)", lj, "2026-10-25", 2, 30, "2026-10-25 00:30", "2026-10-25 01:30"},
		{"repeated, its first minute", lj, "2026-10-25", 2, 0, "2026-10-25 00:00", "2026-10-25 01:00"},
		{"after the repeat", lj, "2026-10-25", 3, 0, "2026-10-25 02:00", "2026-10-25 02:00"},
		{"before the repeat", lj, "2026-10-25", 1, 59, "2026-10-24 23:59", "2026-10-24 23:59"},
		{"skipped (clocks on 02:00 → 03:00)", lj, "2026-03-29", 2, 30, "2026-03-29 01:00", "2026-03-29 01:00"},
		{"after the skip", lj, "2026-03-29", 3, 0, "2026-03-29 01:00", "2026-03-29 01:00"},
		{"repeated, New York", ny, "2026-11-01", 1, 30, "2026-11-01 05:30", "2026-11-01 06:30"},
		{"skipped, New York", ny, "2026-03-08", 2, 30, "2026-03-08 07:00", "2026-03-08 07:00"},
		{"repeated by a 30-minute switch", lh, "2026-04-05", 1, 45, "2026-04-04 14:45", "2026-04-04 15:15"},
		{"skipped by a 30-minute switch", lh, "2026-10-04", 2, 15, "2026-10-03 15:30", "2026-10-03 15:30"},
		{"no switches", time.UTC, "2026-10-25", 2, 30, "2026-10-25 02:30", "2026-10-25 02:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := reconcile.ParseDate(tt.date)
			if err != nil {
				t.Fatal(err)
			}
			c := reconcile.TimeOfDay{Hour: tt.hour, Minute: tt.min}
			if got := d.At(c, tt.loc); !got.Equal(utc(tt.first)) {
				t.Errorf("At = %s, want %s UTC", got.UTC().Format("2006-01-02 15:04"), tt.first)
			}
			if got := d.LastAt(c, tt.loc); !got.Equal(utc(tt.last)) {
				t.Errorf("LastAt = %s, want %s UTC", got.UTC().Format("2006-01-02 15:04"), tt.last)
			}
		})
	}
}
