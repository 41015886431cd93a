package sandbox

import (
	"errors"
	"strings"
	"time"
)

// maxDuration bounds expires_in and starts_in; longer values are refused
// rather than overflowing.
const maxDuration = 100 * 365 * 24 * time.Hour

// ParseDuration parses an expires_in or starts_in value as the API document
// describes them: an ISO 8601 duration in the form RFC 5545 §3.3.6 allows
// (P1W, P1D, PT2H, P1DT2H30M, PT90S; an optional leading "+"), or a compact
// token of numbers and units w, d, h, m, s in that order (1h, 1w, 365d,
// 2h30m). A day is 24 hours and a week 7 days. Years and months, which
// have no fixed length, are refused, as are zero, negative and fractional
// values.
func ParseDuration(s string) (time.Duration, error) {
	var (
		d   time.Duration
		err error
	)
	switch {
	case s == "":
		return 0, errors.New("must not be empty")
	case strings.HasPrefix(s, "P"), strings.HasPrefix(s, "+P"), strings.HasPrefix(s, "-P"):
		d, err = parseISO(s)
	default:
		d, err = parseCompact(s)
	}
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("must be longer than zero")
	}
	return d, nil
}

// parseISO parses the RFC 5545 dur-value grammar, also accepting weeks
// combined with days (ISO 8601-2).
func parseISO(s string) (time.Duration, error) {
	const form = "want an ISO 8601 duration such as P1D, PT2H or P1DT2H30M"
	switch s[0] {
	case '-':
		return 0, errors.New("must not be negative")
	case '+':
		s = s[1:]
	}
	s = s[1:] // P
	date, timePart, hasT := strings.Cut(s, "T")
	if date == "" && !hasT || hasT && timePart == "" {
		return 0, errors.New(form)
	}
	if strings.ContainsAny(date, "YM") {
		return 0, errors.New("years and months have no fixed length; use weeks (W) or days (D)")
	}
	total, err := sumUnits(date, "WD", map[byte]time.Duration{'W': 7 * 24 * time.Hour, 'D': 24 * time.Hour}, form)
	if err != nil {
		return 0, err
	}
	t, err := sumUnits(timePart, "HMS", map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}, form)
	if err != nil {
		return 0, err
	}
	if total > maxDuration-t {
		return 0, errors.New("too long")
	}
	return total + t, nil
}

// parseCompact parses tokens such as 1h, 1w, 365d, 2h30m.
func parseCompact(s string) (time.Duration, error) {
	return sumUnits(s, "wdhms", map[byte]time.Duration{
		'w': 7 * 24 * time.Hour, 'd': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second,
	}, "want an ISO 8601 duration (P1D, PT2H) or a compact one such as 1h, 1w, 365d or 2h30m")
}

// sumUnits adds up number-unit pairs whose units appear in the order of
// units, each at most once. An empty s is zero.
func sumUnits(s, units string, size map[byte]time.Duration, form string) (time.Duration, error) {
	var total time.Duration
	next := 0 // index in units of the first unit still allowed
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return 0, errors.New(form)
		}
		u := strings.IndexByte(units[next:], s[i])
		if u < 0 {
			return 0, errors.New(form)
		}
		n := time.Duration(0)
		for _, c := range s[:i] {
			n = n*10 + time.Duration(c-'0')
		}
		unit := size[s[i]]
		if n > (maxDuration-total)/unit {
			return 0, errors.New("too long")
		}
		total += n * unit
		next += u + 1
		s = s[i+1:]
	}
	return total, nil
}
