package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// fieldError is a create body that breaks a rule: 400, or 422 for a key that
// does not exist. Its message names the field and never quotes a value that
// could be a secret.
type fieldError struct {
	status int
	field  string
	msg    string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func bad(field, format string, args ...any) *fieldError {
	return &fieldError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

// createInput is a create body that passed every rule that needs no state.
type createInput struct {
	keyField, keyValue string // "key.id" or "key.serialNumber", and its value
	user               string // the user reference as given, "" when none
	visitor            string
	zone               string // IANA name as given; "" means UTC for the local view
	loc                *time.Location
	start, end         endpoint
	locale             string
	silent, reminder   bool
}

// endpoint is the start or end of an access as the body gave it.
type endpoint struct {
	set         bool
	at          time.Time
	date, clock string // local wall-clock date and time
}

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// parseCreate checks a create body against the API document's rules, in a fixed
// order so the first broken rule is reported. now is the business clock,
// the start of an access that gives none.
func parseCreate(f map[string]json.RawMessage, now time.Time) (createInput, *fieldError) {
	var in createInput

	// key: exactly one of id or serialNumber.
	kf, present, err := object(f, "key")
	if err != nil {
		return in, err
	}
	if !present {
		return in, bad("key", "required: an object with id or serialNumber")
	}
	id, _, err := str(kf, "id", "key.id")
	if err != nil {
		return in, err
	}
	serial, _, err := str(kf, "serialNumber", "key.serialNumber")
	if err != nil {
		return in, err
	}
	switch {
	case id != "" && serial != "":
		return in, bad("key", "give only one of id or serialNumber")
	case id != "":
		in.keyField, in.keyValue = "key.id", id
	case serial != "":
		in.keyField, in.keyValue = "key.serialNumber", serial
	default:
		return in, bad("key", "give one of id or serialNumber")
	}

	// user, or visitorName.
	uf, hasUser, err := object(f, "user")
	if err != nil {
		return in, err
	}
	if hasUser {
		for _, name := range []string{"id", "email", "mobileNumber"} {
			v, _, err := str(uf, name, "user."+name)
			if err != nil {
				return in, err
			}
			if v != "" && in.user == "" {
				in.user = name + ":" + v
			}
		}
		if in.user == "" {
			return in, bad("user", "give id (an existing user), email or mobileNumber")
		}
	}
	if in.visitor, _, err = str(f, "visitorName", "visitorName"); err != nil {
		return in, err
	}
	in.visitor = strings.TrimSpace(in.visitor)
	if in.visitor == "" && !hasUser {
		return in, bad("visitorName", "required when no user is given")
	}

	// timeZone, then the two ends.
	zone, hasZone, err := str(f, "timeZone", "timeZone")
	if err != nil {
		return in, err
	}
	in.loc = time.UTC
	if hasZone {
		loc, ok := loadZone(zone)
		if !ok {
			return in, bad("timeZone", "%q is not an IANA time zone (e.g. America/Vancouver)", zone)
		}
		in.zone, in.loc = zone, loc
	}
	if in.start, err = parseEnd(f, "startDate", "startTime", in.loc, hasZone); err != nil {
		return in, err
	}
	if in.end, err = parseEnd(f, "endDate", "endTime", in.loc, hasZone); err != nil {
		return in, err
	}
	if !in.start.set {
		in.start = endpoint{set: true, at: now}
	}
	in.start.fill(in.loc)
	in.end.fill(in.loc)
	if in.end.set && !in.end.at.After(in.start.at) {
		return in, bad("endDate", "the access must end after it starts (%s %s to %s %s in %s)",
			in.start.date, in.start.clock, in.end.date, in.end.clock, in.loc)
	}

	// locale and the booleans.
	locale, hasLocale, err := str(f, "locale", "locale")
	if err != nil {
		return in, err
	}
	if hasLocale && !slices.Contains(Locales, locale) {
		return in, bad("locale", "must be one of %s", strings.Join(Locales, ", "))
	}
	in.locale = locale
	if in.reminder, err = boolean(f, "returnReminder"); err != nil {
		return in, err
	}
	if in.silent, err = boolean(f, "silent"); err != nil {
		return in, err
	}
	return in, nil
}

// parseEnd reads one end of the access: a local date and time in the body's
// zone, or (deprecated) an ISO 8601 date-time alone, or nothing.
func parseEnd(f map[string]json.RawMessage, dateField, timeField string, loc *time.Location, hasZone bool) (endpoint, *fieldError) {
	d, hasDate, err := str(f, dateField, dateField)
	if err != nil {
		return endpoint{}, err
	}
	c, hasClock, err := str(f, timeField, timeField)
	if err != nil {
		return endpoint{}, err
	}
	switch {
	case !hasDate && !hasClock:
		return endpoint{}, nil
	case !hasDate:
		return endpoint{}, bad(dateField, "required with %s", timeField)
	}
	if day, err := time.Parse(time.DateOnly, d); err == nil {
		if !hasClock {
			return endpoint{}, bad(timeField, "required with %s (HH:MM, 24-hour)", dateField)
		}
		if !clockRE.MatchString(c) {
			return endpoint{}, bad(timeField, "want HH:MM (24-hour), e.g. 12:45")
		}
		if !hasZone {
			return endpoint{}, bad("timeZone", "required with %s and %s", dateField, timeField)
		}
		hh, mm := int(c[0]-'0')*10+int(c[1]-'0'), int(c[3]-'0')*10+int(c[4]-'0')
		at := time.Date(day.Year(), day.Month(), day.Day(), hh, mm, 0, 0, loc)
		return endpoint{set: true, at: at, date: d, clock: c}, nil
	}
	if at, err := time.Parse(time.RFC3339, d); err == nil && !strings.Contains(d, ".") {
		if hasClock {
			return endpoint{}, bad(timeField, "not allowed with an ISO 8601 %s (the deprecated form carries its own time)", dateField)
		}
		return endpoint{set: true, at: at}, nil
	}
	return endpoint{}, bad(dateField, "want YYYY-MM-DD, e.g. 2025-07-21 (or, deprecated, ISO 8601 without milliseconds, e.g. 2025-07-21T12:45:00Z)")
}

// fill derives the local date and time of an end given as an instant.
func (e *endpoint) fill(loc *time.Location) {
	if e.set && e.date == "" {
		t := e.at.In(loc)
		e.date, e.clock = t.Format(time.DateOnly), t.Format("15:04")
	}
}

// loadZone loads an IANA zone, refusing the names that LoadLocation accepts
// but that are not zones of the database ("" and "Local").
func loadZone(name string) (*time.Location, bool) {
	if name == "" || name == "Local" {
		return nil, false
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}

// str reads an optional string field; null counts as absent.
func str(f map[string]json.RawMessage, name, path string) (string, bool, *fieldError) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false, bad(path, "must be a string")
	}
	return v, true, nil
}

// boolean reads an optional boolean field; absent and null are false.
func boolean(f map[string]json.RawMessage, name string) (bool, *fieldError) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	var v bool
	if json.Unmarshal(raw, &v) != nil {
		return false, bad(name, "must be true or false")
	}
	return v, nil
}

// object reads an optional object field; null counts as absent.
func object(f map[string]json.RawMessage, name string) (map[string]json.RawMessage, bool, *fieldError) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	var v map[string]json.RawMessage
	if json.Unmarshal(raw, &v) != nil || v == nil {
		return nil, false, bad(name, "must be an object")
	}
	return v, true, nil
}
