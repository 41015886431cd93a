package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
)

// t0 is the business clock in every test: before the stays of the tests.
var t0 = time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)

const (
	ourUser   = "keysync"
	ourPass   = "canary-pass-Q7"
	otherUser = "frontdesk"
	otherPass = "fd-pass"
)

var lj, vancouver = mustLoad("Europe/Ljubljana"), mustLoad("America/Vancouver")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// env is a sandbox served for one test, with the requests the tests send.
type env struct{ *sandboxtest.Env[*Server] }

// newEnv starts a sandbox with our user and otherUser and keys K1 (SN-1),
// K2 (SN-2) and K3 (no serial number).
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Users == nil {
		opts.Users = map[string]string{ourUser: ourPass, otherUser: otherPass}
	}
	if opts.Now.IsZero() {
		opts.Now = t0
	}
	sb := New(opts)
	sb.AddKey("K1", "SN-1")
	sb.AddKey("K2", "SN-2")
	sb.AddKey("K3", "")
	return &env{sandboxtest.Start(t, sb)}
}

type resp = sandboxtest.Answer

// call sends a request with HTTP Basic auth when user is not empty.
func (e *env) call(method, path, user, pass, body string) resp {
	e.T.Helper()
	return sandboxtest.Call(e.T, e.Srv, method, path, body, sandboxtest.BasicAuth(user, pass))
}

func (e *env) create(body string) resp {
	e.T.Helper()
	return e.call(http.MethodPost, DefaultCreatePath, ourUser, ourPass, body)
}

// created sends a create with body and stops the test unless it is
// answered 201.
func (e *env) created(body string) resp {
	e.T.Helper()
	return sandboxtest.Want(e.T, e.Srv, http.MethodPost, DefaultCreatePath, body, http.StatusCreated, sandboxtest.BasicAuth(ourUser, ourPass))
}

func (e *env) cancel(id string) resp {
	e.T.Helper()
	return e.call(http.MethodDelete, "/v2/accesses/"+id, ourUser, ourPass, "")
}

// validBody is a create body every rule accepts: a stay in Ljubljana across
// the spring switch.
func validBody() map[string]any {
	return map[string]any{
		"key":            map[string]any{"id": "K1"},
		"startDate":      "2026-03-28",
		"startTime":      "15:00",
		"endDate":        "2026-03-30",
		"endTime":        "11:00",
		"timeZone":       "Europe/Ljubljana",
		"visitorName":    "Ana Novak",
		"returnReminder": false,
		"silent":         false,
		"locale":         "en",
	}
}

func body(edits ...func(map[string]any)) string {
	m := validBody()
	for _, edit := range edits {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func set(field string, v any) func(map[string]any) {
	return func(m map[string]any) { m[field] = v }
}

func del(fields ...string) func(map[string]any) {
	return func(m map[string]any) {
		for _, f := range fields {
			delete(m, f)
		}
	}
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func TestCreateRules(t *testing.T) {
	t.Parallel()
	iso := []func(map[string]any){
		del("startTime", "endTime", "timeZone"),
		set("startDate", "2026-03-28T14:00:00Z"), set("endDate", "2026-03-30T09:00:00Z"),
	}
	tests := []struct {
		name   string
		edits  []func(map[string]any)
		status int
		field  string
	}{
		{name: "valid", status: 201},
		{name: "key by serial number", edits: of(set("key", map[string]any{"serialNumber": "SN-2"})), status: 201},
		{name: "key missing", edits: of(del("key")), status: 400, field: "key"},
		{name: "key null", edits: of(set("key", nil)), status: 400, field: "key"},
		{name: "key a string", edits: of(set("key", "K1")), status: 400, field: "key"},
		{name: "key empty", edits: of(set("key", map[string]any{})), status: 400, field: "key"},
		{name: "key blank id", edits: of(set("key", map[string]any{"id": ""})), status: 400, field: "key"},
		{name: "key id and serial number", edits: of(set("key", map[string]any{"id": "K1", "serialNumber": "SN-1"})), status: 400, field: "key"},
		{name: "key id a number", edits: of(set("key", map[string]any{"id": 1})), status: 400, field: "key.id"},
		{name: "key serial number a bool", edits: of(set("key", map[string]any{"serialNumber": true})), status: 400, field: "key.serialNumber"},
		{name: "unknown key id", edits: of(set("key", map[string]any{"id": "K9"})), status: 422, field: "key.id"},
		{name: "unknown serial number", edits: of(set("key", map[string]any{"serialNumber": "SN-9"})), status: 422, field: "key.serialNumber"},
		{name: "startDate one-digit month", edits: of(set("startDate", "2026-3-28")), status: 400, field: "startDate"},
		{name: "startDate day first", edits: of(set("startDate", "28.03.2026")), status: 400, field: "startDate"},
		{name: "startDate no such day", edits: of(set("startDate", "2026-02-30")), status: 400, field: "startDate"},
		{name: "startDate a number", edits: of(set("startDate", 20260328)), status: 400, field: "startDate"},
		{name: "startDate missing with startTime", edits: of(del("startDate")), status: 400, field: "startDate"},
		{name: "endDate missing with endTime", edits: of(del("endDate")), status: 400, field: "endDate"},
		{name: "startTime missing", edits: of(del("startTime")), status: 400, field: "startTime"},
		{name: "startTime 3pm", edits: of(set("startTime", "3pm")), status: 400, field: "startTime"},
		{name: "startTime 24:00", edits: of(set("startTime", "24:00")), status: 400, field: "startTime"},
		{name: "startTime with seconds", edits: of(set("startTime", "15:00:00")), status: 400, field: "startTime"},
		{name: "startTime one-digit hour", edits: of(set("startTime", "9:00")), status: 400, field: "startTime"},
		{name: "endTime with a dot", edits: of(set("endTime", "11.00")), status: 400, field: "endTime"},
		{name: "endTime missing", edits: of(del("endTime")), status: 400, field: "endTime"},
		{name: "timeZone missing", edits: of(del("timeZone")), status: 400, field: "timeZone"},
		{name: "timeZone unknown", edits: of(set("timeZone", "Mars/Olympus_Mons")), status: 400, field: "timeZone"},
		{name: "timeZone Local", edits: of(set("timeZone", "Local")), status: 400, field: "timeZone"},
		{name: "timeZone empty", edits: of(set("timeZone", "")), status: 400, field: "timeZone"},
		{name: "timeZone an offset", edits: of(set("timeZone", "+01:00")), status: 400, field: "timeZone"},
		{name: "timeZone a number", edits: of(set("timeZone", 1)), status: 400, field: "timeZone"},
		{name: "timeZone Vancouver", edits: of(set("timeZone", "America/Vancouver")), status: 201},
		{name: "end before start", edits: of(set("endDate", "2026-03-27")), status: 400, field: "endDate"},
		{name: "end equals start", edits: of(set("endDate", "2026-03-28"), set("endTime", "15:00")), status: 400, field: "endDate"},
		{name: "end one minute after start", edits: of(set("endDate", "2026-03-28"), set("endTime", "15:01")), status: 201},
		{name: "visitorName missing", edits: of(del("visitorName")), status: 400, field: "visitorName"},
		{name: "visitorName blank", edits: of(set("visitorName", "  ")), status: 400, field: "visitorName"},
		{name: "visitorName a number", edits: of(set("visitorName", 7)), status: 400, field: "visitorName"},
		{name: "user instead of visitorName", edits: of(del("visitorName"), set("user", map[string]any{"email": "ana@example.com"})), status: 201},
		{name: "existing user by id", edits: of(del("visitorName"), set("user", map[string]any{"id": "u_1"})), status: 201},
		{name: "user a string", edits: of(set("user", "u_1")), status: 400, field: "user"},
		{name: "user empty", edits: of(del("visitorName"), set("user", map[string]any{})), status: 400, field: "user"},
		{name: "user email a number", edits: of(set("user", map[string]any{"email": 5})), status: 400, field: "user.email"},
		{name: "locale de", edits: of(set("locale", "de")), status: 400, field: "locale"},
		{name: "locale EN", edits: of(set("locale", "EN")), status: 400, field: "locale"},
		{name: "locale empty", edits: of(set("locale", "")), status: 400, field: "locale"},
		{name: "locale pt", edits: of(set("locale", "pt")), status: 201},
		{name: "locale omitted", edits: of(del("locale")), status: 201},
		{name: "silent a string", edits: of(set("silent", "true")), status: 400, field: "silent"},
		{name: "returnReminder a number", edits: of(set("returnReminder", 1)), status: 400, field: "returnReminder"},
		{name: "silent true", edits: of(set("silent", true)), status: 201},
		{name: "booleans omitted", edits: of(del("silent", "returnReminder")), status: 201},
		{name: "unknown fields ignored", edits: of(set("fob", true), set("extra", map[string]any{"a": 1})), status: 201},
		{name: "deprecated ISO 8601 dates", edits: iso, status: 201},
		{name: "deprecated ISO 8601 with offset", edits: of(append(iso, set("startDate", "2026-03-28T15:00:00+01:00"))...), status: 201},
		{name: "deprecated ISO 8601 with milliseconds", edits: of(append(iso, set("startDate", "2026-03-28T14:00:00.000Z"))...), status: 400, field: "startDate"},
		{name: "deprecated ISO 8601 with startTime", edits: of(set("startDate", "2026-03-28T14:00:00Z")), status: 400, field: "startTime"},
		{name: "no dates: ongoing", edits: of(del("startDate", "startTime", "endDate", "endTime")), status: 201},
		{name: "only an end: starts now", edits: of(del("startDate", "startTime")), status: 201},
		{name: "only an end, in the past", edits: of(del("startDate", "startTime"), set("endDate", "2026-03-01")), status: 400, field: "endDate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			r := e.create(body(tc.edits...))
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if tc.status == 201 {
				if id, _ := r.Body["id"].(string); id == "" {
					t.Errorf("no id: %s", r.Raw)
				}
				if code, _ := r.Body["code"].(string); !sixDigits.MatchString(code) {
					t.Errorf("code %q is not 6 digits", code)
				}
				if n := len(e.SB.Accesses()); n != 1 {
					t.Errorf("%d accesses, want 1", n)
				}
				return
			}
			if got := r.Body["field"]; got != tc.field {
				t.Errorf("field %v, want %q: %s", got, tc.field, r.Raw)
			}
			if msg, _ := r.Body["message"].(string); !strings.HasPrefix(msg, tc.field+": ") {
				t.Errorf("message %q does not start with the field", msg)
			}
			if n := len(e.SB.Accesses()); n != 0 {
				t.Errorf("a refused create stored %d accesses", n)
			}
		})
	}
}

func of(edits ...func(map[string]any)) []func(map[string]any) { return edits }

func TestCreateBodyNotAnObject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, b := range []string{``, `[]`, `"x"`, `{"key":`, `null`} {
		if r := e.create(b); r.Status != 400 || !strings.HasPrefix(r.Body["message"].(string), "body: ") {
			t.Errorf("body %q: %d %s", b, r.Status, r.Raw)
		}
	}
	big := `{"visitorName":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	if r := e.create(big); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", r.Status)
	}
}

func TestCreateResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := e.create(body(set("key", map[string]any{"serialNumber": "SN-2"}), set("silent", true), set("locale", "fr")))
	if r.Status != 201 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", r.Status, r.Header.Get("Content-Type"), r.Raw)
	}
	code := r.Body["code"].(string)
	want := map[string]any{
		"id": "acc_1", "code": code, "key": map[string]any{"id": "K2", "serialNumber": "SN-2"},
		"startDate": "2026-03-28", "startTime": "15:00", "endDate": "2026-03-30", "endTime": "11:00",
		"timeZone": "Europe/Ljubljana", "visitorName": "Ana Novak", "locale": "fr",
		"silent": true, "returnReminder": false, "status": "upcoming",
	}
	if !maps.EqualFunc(r.Body, want, func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("answer:\n got %v\nwant %v", r.Body, want)
	}
	v, ok := e.SB.Access("acc_1")
	if !ok {
		t.Fatal("access not stored")
	}
	if v.Creator != ourUser || v.KeyID != "K2" || v.Code != code || !v.Silent || v.Locale != "fr" || v.CreatedAt != t0 {
		t.Errorf("stored %+v", v)
	}
	// The spring switch: 15:00 CET is 14:00Z, 11:00 CEST is 09:00Z.
	if want := time.Date(2026, 3, 28, 14, 0, 0, 0, time.UTC); !v.Start.Equal(want) {
		t.Errorf("start %s, want %s", v.Start, want)
	}
	if want := time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC); !v.End.Equal(want) {
		t.Errorf("end %s, want %s", v.End, want)
	}
}

// TestCreateAcrossAutumnSwitch stores an access whose window spans the
// Europe/Ljubljana autumn switch: local dates and times as sent, instants
// an hour further apart than the wall clock suggests.
func TestCreateAcrossAutumnSwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.created(body(set("startDate", "2026-10-24"), set("endDate", "2026-10-26")))
	v := e.SB.Accesses()[0]
	if v.StartDate != "2026-10-24" || v.StartTime != "15:00" || v.EndDate != "2026-10-26" || v.EndTime != "11:00" || v.TimeZone != "Europe/Ljubljana" {
		t.Errorf("local view %s %s → %s %s %s", v.StartDate, v.StartTime, v.EndDate, v.EndTime, v.TimeZone)
	}
	start, end := time.Date(2026, 10, 24, 13, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 10, 0, 0, 0, time.UTC)
	if !v.Start.Equal(start) || !v.End.Equal(end) {
		t.Errorf("instants %s → %s, want %s → %s", v.Start, v.End, start, end)
	}
	if d := v.End.Sub(v.Start); d != 45*time.Hour {
		t.Errorf("lasts %s, want 45h (44h of wall clock plus the repeated hour)", d)
	}
}

// TestCreateDeprecatedDates accepts the API document's deprecated ISO 8601 form and
// shows it in the body's zone, or UTC.
func TestCreateDeprecatedDates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.created(body(del("startTime", "endTime"), set("timeZone", "America/Vancouver"),
		set("startDate", "2026-10-31T22:00:00Z"), set("endDate", "2026-11-02T19:00:00Z")))
	e.created(body(del("startTime", "endTime", "timeZone"),
		set("startDate", "2026-07-21T12:45:00Z"), set("endDate", "2026-07-23T17:45:00Z")))
	got := e.SB.Accesses()
	if v := got[0]; v.StartDate != "2026-10-31" || v.StartTime != "15:00" || v.EndDate != "2026-11-02" || v.EndTime != "11:00" || v.TimeZone != "America/Vancouver" {
		t.Errorf("Vancouver local view %+v", v)
	}
	if v := got[1]; v.StartDate != "2026-07-21" || v.StartTime != "12:45" || v.EndTime != "17:45" || v.TimeZone != "UTC" {
		t.Errorf("UTC local view %+v", v)
	}
}

func TestOngoingAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := e.create(body(del("startDate", "startTime", "endDate", "endTime")))
	if r.Status != 201 || r.Body["status"] != StatusActive {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if _, ok := r.Body["endDate"]; ok {
		t.Errorf("ongoing access has an endDate: %s", r.Raw)
	}
	v := e.SB.Accesses()[0]
	if !v.Start.Equal(t0) || !v.End.IsZero() || v.EndDate != "" || v.StartDate != "2026-03-20" || v.StartTime != "13:00" {
		t.Errorf("ongoing access %+v", v)
	}
	e.SB.Advance(365 * 24 * time.Hour)
	if v := e.SB.Accesses()[0]; v.Status != StatusActive {
		t.Errorf("a year on: %s", v.Status)
	}
}

func TestStatusFollowsClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.created(body())
	steps := []struct {
		at   time.Time
		want string
	}{
		{t0, StatusUpcoming},
		{time.Date(2026, 3, 28, 13, 59, 0, 0, time.UTC), StatusUpcoming},
		{time.Date(2026, 3, 28, 14, 0, 0, 0, time.UTC), StatusActive},
		{time.Date(2026, 3, 30, 8, 59, 0, 0, time.UTC), StatusActive},
		{time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC), StatusEnded},
	}
	for _, st := range steps {
		e.SB.SetNow(st.at)
		if got := e.SB.Accesses()[0].Status; got != st.want {
			t.Errorf("at %s: %s, want %s", st.at, got, st.want)
		}
	}
	e.SB.SetNow(t0)
	e.SB.Advance(8*24*time.Hour + 2*time.Hour)
	if got := e.SB.Accesses()[0].Status; got != StatusActive {
		t.Errorf("after Advance: %s", got)
	}
	if r := e.cancel("acc_1"); r.Status != 204 {
		t.Fatal(r.Raw)
	}
	if got := e.SB.Accesses()[0].Status; got != StatusCancelled {
		t.Errorf("after cancel: %s", got)
	}
}

func TestCodesUnique(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	seen := map[string]bool{}
	for i := range 60 {
		r := e.create(body())
		code, _ := r.Body["code"].(string)
		if r.Status != 201 || !sixDigits.MatchString(code) {
			t.Fatalf("create %d: %d %s", i, r.Status, r.Raw)
		}
		if seen[code] {
			t.Fatalf("code %s handed out twice", code)
		}
		seen[code] = true
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, pass string
		status           int
	}{
		{"no credentials", "", "", 401},
		{"wrong password", ourUser, "nope", 401},
		{"empty password", ourUser, "", 401},
		{"unknown user", "mallory", ourPass, 401},
		{"another user's password", otherUser, ourPass, 401},
		{"ours", ourUser, ourPass, 201},
		{"other user", otherUser, otherPass, 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			r := e.call(http.MethodPost, DefaultCreatePath, tc.user, tc.pass, body())
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if tc.status == 401 {
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
				}
				if len(e.SB.Accesses()) != 0 {
					t.Error("an unauthenticated create stored an access")
				}
				if strings.Contains(r.Raw, ourPass) {
					t.Error("the answer echoes a password")
				}
				return
			}
			if got := e.SB.Accesses()[0].Creator; got != tc.user {
				t.Errorf("creator %q, want %q", got, tc.user)
			}
		})
	}
	e := newEnv(t, Options{})
	req, _ := http.NewRequest(http.MethodPost, e.Srv.URL+DefaultCreatePath, strings.NewReader(body()))
	req.Header.Set("Authorization", "Bearer "+ourPass)
	hr, err := e.Srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != 401 {
		t.Errorf("bearer token: %d, want 401", hr.StatusCode)
	}
	e.SB.AddUser("late", "pw")
	if r := e.call(http.MethodPost, DefaultCreatePath, "late", "pw", body()); r.Status != 201 {
		t.Errorf("AddUser: %d", r.Status)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.created(body())
	foreign, err := e.SB.AddAccess(AccessInput{
		Creator: otherUser, KeyID: "K2", Start: t0, End: t0.Add(48 * time.Hour), TimeZone: "Europe/Ljubljana", Visitor: "Walk-in",
	})
	if err != nil {
		t.Fatal(err)
	}
	if foreign.ID != "acc_2" || foreign.Creator != otherUser || foreign.StartDate != "2026-03-20" || foreign.StartTime != "13:00" || !sixDigits.MatchString(foreign.Code) {
		t.Errorf("planted %+v", foreign)
	}

	e.SB.SetNow(t0.Add(time.Hour))
	r := e.cancel("acc_1")
	if r.Status != 204 || r.Raw != "" {
		t.Fatalf("cancel: %d %q", r.Status, r.Raw)
	}
	v, _ := e.SB.Access("acc_1")
	if !v.Cancelled || v.CancelledBy != ourUser || !v.CancelledAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after cancel %+v", v)
	}
	for _, id := range []string{"acc_1", "acc_99", "", "acc_1%2F..%2F"} {
		if r := e.cancel(id); r.Status != 404 {
			t.Errorf("cancel %q: %d, want 404", id, r.Status)
		}
	}
	if v, _ := e.SB.Access("acc_2"); v.Cancelled {
		t.Error("the planted access was cancelled")
	}
	if r := e.call(http.MethodDelete, "/v2/accesses/acc_2", otherUser, otherPass, ""); r.Status != 204 {
		t.Errorf("the creator's cancel: %d", r.Status)
	}
	if r := e.call(http.MethodDelete, "/v2/accesses/acc_2", "", "", ""); r.Status != 401 {
		t.Errorf("unauthenticated cancel: %d", r.Status)
	}
	if err := e.SB.CancelAccess("acc_2", "x"); err == nil {
		t.Error("CancelAccess of a cancelled access succeeded")
	}
}

func TestAddAccessRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	end := t0.Add(time.Hour)
	for _, in := range []AccessInput{
		{Creator: otherUser, KeyID: "K9", Start: t0, End: end},
		{Creator: otherUser, KeyID: "K1", Start: t0, End: end, TimeZone: "Nowhere/Land"},
		{Creator: otherUser, KeyID: "K1", Start: end, End: t0},
		{Creator: otherUser, KeyID: "K1"},
	} {
		if _, err := e.SB.AddAccess(in); err == nil {
			t.Errorf("AddAccess(%+v) succeeded", in)
		}
	}
	v, err := e.SB.AddAccess(AccessInput{Creator: otherUser, KeyID: "K1", Start: t0, Code: "123456"})
	if err != nil || v.Code != "123456" || v.TimeZone != "UTC" || !v.End.IsZero() {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := e.SB.AddAccess(AccessInput{Creator: otherUser, KeyID: "K2", Start: t0, Code: "123456"}); err == nil {
		t.Error("a code in use was planted twice")
	}
	if len(e.SB.Requests()) != 0 {
		t.Error("AddAccess went to the request log")
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 20, 23, 59, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: clock}}.WithSeedLimits())
	create := func() resp { return e.create(body()) }
	sandboxtest.Admits(t, "within the burst", DefaultBurst, 201, create)
	sandboxtest.RateLimited(t, "beyond the burst", create(), "1")
	if r := e.call(http.MethodPost, DefaultCreatePath, otherUser, otherPass, body()); r.Status != 201 {
		t.Errorf("another user has its own limit: %d", r.Status)
	}
	now = now.Add(200 * time.Millisecond) // one token at 5/s
	if r := e.create(body()); r.Status != 201 {
		t.Errorf("after 200ms: %d", r.Status)
	}
	if r := e.create(body()); r.Status != 429 {
		t.Errorf("second request after 200ms: %d", r.Status)
	}

	// The daily cap counts per UTC day and says when the day ends.
	now = time.Date(2026, 3, 20, 23, 0, 0, 0, time.UTC)
	e = newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: clock, DailyCap: 3}})
	sandboxtest.Admits(t, "within the cap", 3, 201, create)
	sandboxtest.RateLimited(t, "beyond the cap", create(), "3600")
	if r := e.call(http.MethodPost, DefaultCreatePath, ourUser, "wrong", body()); r.Status != 401 {
		t.Errorf("bad credentials are refused before the limit: %d", r.Status)
	}
	now = now.Add(time.Hour)
	if r := e.create(body()); r.Status != 201 {
		t.Errorf("next day: %d", r.Status)
	}
	if len(e.SB.Accesses()) != 4 {
		t.Errorf("%d accesses, want 4", len(e.SB.Accesses()))
	}
}

func TestCustomPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{CreatePath: "/api/v1/access", CancelPath: "/api/v1/access/{id}/end", CancelMethod: "post", ListPath: "/api/v1/access"})
	if r := e.create(body()); r.Status != 404 {
		t.Errorf("default create path: %d", r.Status)
	}
	r := e.call(http.MethodPost, "/api/v1/access", ourUser, ourPass, body())
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	if r := e.call(http.MethodDelete, "/api/v1/access/acc_1/end", ourUser, ourPass, ""); r.Status != 405 {
		t.Errorf("DELETE on a POST cancel: %d", r.Status)
	}
	if r := e.call(http.MethodPost, "/api/v1/access/acc_1/end", ourUser, ourPass, ""); r.Status != 204 {
		t.Errorf("cancel: %d %s", r.Status, r.Raw)
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted a cancel path without {id}")
		}
	}()
	New(Options{CancelPath: "/api/v1/access"})
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if r := e.call(http.MethodPut, DefaultCreatePath, ourUser, ourPass, ""); r.Status != 405 {
		t.Errorf("PUT accesses: %d", r.Status)
	}
	if r := e.call(http.MethodGet, DefaultListPath, ourUser, ourPass, ""); r.Status != 400 {
		t.Errorf("GET accesses without a key: %d", r.Status)
	}
	if r := e.call(http.MethodGet, "/v3/other", ourUser, ourPass, ""); r.Status != 404 {
		t.Errorf("unknown path: %d", r.Status)
	}
	if r := e.call(http.MethodGet, "/v3/other", "", "", ""); r.Status != 401 {
		t.Errorf("unknown path without auth: %d", r.Status)
	}
}

// TestList checks the list: the caller's accesses to one key, by id or
// serial number, cancelled ones marked, another user's left out.
func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	first := e.create(body())
	second := e.create(body(set("visitorName", "Bo")))
	e.create(body(set("key", map[string]any{"id": "K2"})))
	if _, err := e.SB.AddAccess(AccessInput{Creator: otherUser, KeyID: "K1", Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r := e.cancel(first.Body["id"].(string)); r.Status != 204 {
		t.Fatalf("cancel: %d", r.Status)
	}
	ids := func(r resp) (out []string) {
		for _, a := range r.Body["data"].([]any) {
			m := a.(map[string]any)
			out = append(out, fmt.Sprint(m["id"], "/", m["cancelled"]))
		}
		return out
	}
	want := []string{first.Body["id"].(string) + "/true", second.Body["id"].(string) + "/false"}
	for _, q := range []string{"keyId=K1", "keySerialNumber=SN-1"} {
		r := e.call(http.MethodGet, DefaultListPath+"?"+q, ourUser, ourPass, "")
		if r.Status != 200 || !slices.Equal(ids(r), want) {
			t.Errorf("%s: %d %v, want %v", q, r.Status, ids(r), want)
		}
	}
	r := e.call(http.MethodGet, DefaultListPath+"?keyId=K1", ourUser, ourPass, "")
	item := r.Body["data"].([]any)[1].(map[string]any)
	for field, v := range map[string]any{
		"code": second.Body["code"], "startDate": "2026-03-28", "startTime": "15:00", "endDate": "2026-03-30",
		"endTime": "11:00", "timeZone": "Europe/Ljubljana", "visitorName": "Bo",
	} {
		if item[field] != v {
			t.Errorf("%s = %v, want %v", field, item[field], v)
		}
	}
	if k, _ := item["key"].(map[string]any); k["id"] != "K1" {
		t.Errorf("key %v", item["key"])
	}
	if r := e.call(http.MethodGet, DefaultListPath+"?keyId=K1", otherUser, otherPass, ""); r.Status != 200 || len(ids(r)) != 1 {
		t.Errorf("other user: %d %s", r.Status, r.Raw)
	}
	if r := e.call(http.MethodGet, DefaultListPath+"?keyId=nope", ourUser, ourPass, ""); r.Status != 200 || r.Raw != "{\"data\":[]}\n" {
		t.Errorf("unknown key: %d %q", r.Status, r.Raw)
	}
	for _, q := range []string{"", "?keyId=K1&keySerialNumber=SN-1"} {
		if r := e.call(http.MethodGet, DefaultListPath+q, ourUser, ourPass, ""); r.Status != 400 || r.Body["field"] != "keyId" {
			t.Errorf("%q: %d %s", q, r.Status, r.Raw)
		}
	}
	if r := e.call(http.MethodGet, DefaultListPath+"?keyId=K1", ourUser, "wrong", ""); r.Status != 401 {
		t.Errorf("wrong password: %d", r.Status)
	}
	custom := newEnv(t, Options{ListPath: "/api/v1/accesses"})
	custom.create(body())
	if r := custom.call(http.MethodGet, "/api/v1/accesses?keyId=K1", ourUser, ourPass, ""); r.Status != 200 || len(ids(r)) != 1 {
		t.Errorf("custom list path: %d %s", r.Status, r.Raw)
	}
}

// TestListCancelledAsStatus checks the switch cancelled_as_status, set
// over POST /_sandbox/assumptions: the list marks a cancelled access with
// "status": "CANCELLED" and "cancelledAt" (RFC 3339, the business clock's
// time of the cancel), no access has "cancelled", and a live one's status
// is upper case; switched off, the list is as before.
func TestListCancelledAsStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	first := e.created(body())
	second := e.created(body(set("visitorName", "Bo")))
	e.SB.Advance(time.Hour)
	if r := e.cancel(first.Body["id"].(string)); r.Status != 204 {
		t.Fatalf("cancel: %d", r.Status)
	}
	if r := sandboxtest.Want(t, e.Srv, "POST", "/_sandbox/assumptions", `{"cancelled_as_status": true}`, 200); r.Body["cancelled_as_status"] != true {
		t.Fatalf("switch on: %s", r.Raw)
	}
	if r := sandboxtest.Want(t, e.Srv, "GET", "/_sandbox/assumptions", "", 200); r.Body["cancelled_as_status"] != true {
		t.Fatalf("switch not shown on: %s", r.Raw)
	}
	list := func() []map[string]any {
		t.Helper()
		r := e.call(http.MethodGet, DefaultListPath+"?keyId=K1", ourUser, ourPass, "")
		if r.Status != 200 {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		var out []map[string]any
		for _, a := range r.Body["data"].([]any) {
			out = append(out, a.(map[string]any))
		}
		if len(out) != 2 || out[0]["id"] != first.Body["id"] || out[1]["id"] != second.Body["id"] {
			t.Fatalf("list: %s", r.Raw)
		}
		return out
	}
	got := list()
	gone, live := got[0], got[1]
	if gone["status"] != "CANCELLED" || gone["cancelledAt"] != t0.Add(time.Hour).Format(time.RFC3339) {
		t.Errorf("cancelled access: %v", gone)
	}
	if live["status"] != "UPCOMING" || live["code"] != second.Body["code"] {
		t.Errorf("live access: %v", live)
	}
	if _, ok := live["cancelledAt"]; ok {
		t.Errorf("live access has cancelledAt: %v", live)
	}
	for _, a := range got {
		if _, ok := a["cancelled"]; ok {
			t.Errorf("access %v has the cancelled boolean", a["id"])
		}
	}

	e.SB.SetCancelledAsStatus(false)
	got = list()
	if got[0]["cancelled"] != true || got[0]["status"] != StatusCancelled || got[1]["cancelled"] != false || got[1]["status"] != StatusUpcoming {
		t.Errorf("switched off: %v", got)
	}
	for _, a := range got {
		if _, ok := a["cancelledAt"]; ok {
			t.Errorf("switched off, access %v has cancelledAt", a["id"])
		}
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 20, 8, 0, 0, 0, time.UTC)
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: func() time.Time { return now }}})
	b := body()
	e.create(b)
	e.call(http.MethodPost, DefaultCreatePath, ourUser, "wrong", b)
	e.cancel("acc_1")
	want := []Request{
		{Time: now, User: ourUser, Method: "POST", Path: "/v2/accesses", Status: 201, Body: b},
		{Time: now, User: "", Method: "POST", Path: "/v2/accesses", Status: 401, Body: b},
		{Time: now, User: ourUser, Method: "DELETE", Path: "/v2/accesses/acc_1", Status: 204, Body: ""},
	}
	got := e.SB.Requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	r := e.call(http.MethodGet, "/_sandbox/requests", "", "", "")
	if r.Status != 200 || r.Body["count"] != float64(3) || strings.Contains(r.Raw, ourPass) || strings.Contains(r.Raw, "Basic") {
		t.Errorf("admin request log: %d %s", r.Status, r.Raw)
	}
	if len(e.SB.Requests()) != 3 {
		t.Error("admin calls went to the request log")
	}
	e.SB.ResetRequests()
	if len(e.SB.Requests()) != 0 {
		t.Error("ResetRequests left entries")
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	call := func(method, path, body string, want int) resp {
		t.Helper()
		return sandboxtest.Want(t, e.Srv, method, path, body, want)
	}
	r := call("GET", "/_sandbox/keys", "", 200)
	if got := fmt.Sprint(r.Body["keys"]); got != "[map[id:K1 serial_number:SN-1] map[id:K2 serial_number:SN-2] map[id:K3]]" {
		t.Errorf("keys: %s", got)
	}
	call("POST", "/_sandbox/keys", `{"id": "K4", "serial_number": "SN-4"}`, 201)
	call("POST", "/_sandbox/keys", `{"id": "K5", "serial_number": "SN-4"}`, 409)
	call("POST", "/_sandbox/keys", `{"id": ""}`, 400)
	call("POST", "/_sandbox/keys", `{"id": "K6", "colour": "red"}`, 400)
	e.created(body(set("key", map[string]any{"serialNumber": "SN-4"})))

	r = call("GET", "/_sandbox/accesses", "", 200)
	accs, _ := r.Body["accesses"].([]any)
	if len(accs) != 1 {
		t.Fatalf("accesses: %s", r.Raw)
	}
	a := accs[0].(map[string]any)
	if a["key_id"] != "K4" || a["creator"] != ourUser || a["start"] != "2026-03-28T14:00:00Z" || a["end_time"] != "11:00" || a["status"] != "upcoming" {
		t.Errorf("access: %v", a)
	}
	if _, ok := a["cancelled_at"]; ok {
		t.Errorf("cancelled_at shown before a cancel: %v", a)
	}

	if r := call("GET", "/_sandbox/clock", "", 200); r.Body["now"] != "2026-03-20T12:00:00Z" {
		t.Errorf("clock: %s", r.Raw)
	}
	if r := call("POST", "/_sandbox/clock", `{"advance": "36h"}`, 200); r.Body["now"] != "2026-03-22T00:00:00Z" {
		t.Errorf("advance: %s", r.Raw)
	}
	if r := call("POST", "/_sandbox/clock", `{"now": "2026-03-29T12:00:00+02:00"}`, 200); r.Body["now"] != "2026-03-29T12:00:00+02:00" {
		t.Errorf("set: %s", r.Raw)
	}
	if got := e.SB.Accesses()[0].Status; got != StatusActive {
		t.Errorf("status after setting the clock: %s", got)
	}
	call("POST", "/_sandbox/clock", `{}`, 400)
	call("POST", "/_sandbox/clock", `{"now": "2026-03-29T12:00:00Z", "advance": "1h"}`, 400)
	call("POST", "/_sandbox/clock", `{"now": "yesterday"}`, 400)
	call("POST", "/_sandbox/clock", `{"advance": "a bit"}`, 400)

	if r := call("GET", "/_sandbox/requests", "", 200); r.Body["count"] != float64(1) {
		t.Errorf("requests: %s", r.Raw)
	}
	if n := sandboxtest.ClearRequests(t, e.Srv); n != 1 {
		t.Errorf("cleared %d requests, want 1", n)
	}
	call("GET", "/_sandbox/nope", "", 404)
	call("PUT", "/_sandbox/keys", "{}", 404)

	// The route list served at GET /_sandbox/ is the one in the package comment.
	if list := sandboxtest.RoutesDocumented(t, e.Srv); list != adminRoutes {
		t.Errorf("GET /_sandbox/ serves:\n%s", list)
	}
}

func TestAddKey(t *testing.T) {
	t.Parallel()
	sb := New(Options{})
	sb.AddKey("K1", "SN-1")
	sb.AddKey("K1", "SN-1b") // re-adding changes the serial number
	if got := sb.Keys(); len(got) != 1 || got[0] != (KeyView{ID: "K1", SerialNumber: "SN-1b"}) {
		t.Errorf("keys %+v", got)
	}
	for _, bad := range [][2]string{{"", "SN-2"}, {"K2", "SN-1b"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddKey(%q, %q) did not panic", bad[0], bad[1])
				}
			}()
			sb.AddKey(bad[0], bad[1])
		}()
	}
}

// TestConcurrent runs creates and cancels from several goroutines, for the
// race detector.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	b := body()
	done := make(chan string)
	for range 8 {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.Srv.URL+DefaultCreatePath, bytes.NewReader([]byte(b)))
			req.SetBasicAuth(ourUser, ourPass)
			hr, err := e.Srv.Client().Do(req)
			if err != nil {
				done <- ""
				return
			}
			var out struct{ ID string }
			_ = json.NewDecoder(hr.Body).Decode(&out)
			hr.Body.Close()
			done <- out.ID
		}()
	}
	for range 8 {
		if id := <-done; id == "" || e.cancel(id).Status != 204 {
			t.Errorf("create or cancel of %q failed", id)
		}
	}
	for _, v := range e.SB.Accesses() {
		if !v.Cancelled {
			t.Errorf("%s not cancelled", v.ID)
		}
	}
}
