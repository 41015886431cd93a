package sandboxkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxBodyBytes is the largest request body a sandbox accepts, API or admin
// (HTTP 413 beyond).
const MaxBodyBytes = 1 << 20

// Clocked is a business clock as the admin route drives it: a *Clock, or a
// sandbox whose SetNow and Advance do more (apply a cleanup rule).
type Clocked interface {
	Now() time.Time
	SetNow(time.Time)
	Advance(time.Duration)
}

// Admin describes the admin routes Mount adds.
type Admin struct {
	// Routes is the text GET /_sandbox/ answers: the sandbox's whole admin
	// route list.
	Routes string
	// Clock is the business clock of GET and POST /_sandbox/clock.
	Clock Clocked
	// ClockView is what the clock routes answer for now; nil means NowView.
	ClockView func(now time.Time) any
	// NotFoundHint ends the 404 message of an unknown route, after the
	// pointer to GET /_sandbox/ (say, where the API itself is).
	NotFoundHint string
}

// NowView is the clock routes' usual answer: {"now": RFC 3339}.
func NowView(now time.Time) any {
	return map[string]string{"now": now.Format(time.RFC3339)}
}

// TodayView adds the business date to NowView: {"now": RFC 3339, "today":
// "2006-01-02"}, the date in now's zone.
func TodayView(now time.Time) any {
	return map[string]string{"now": now.Format(time.RFC3339), "today": now.Format(time.DateOnly)}
}

// Mount adds to mux the admin routes every sandbox shares (the package
// comment lists them), log being the request log of the requests routes,
// and the catch-all 404 for any path mux has no other route for. The
// sandbox adds its own routes to the same mux.
func Mount[T any](mux *http.ServeMux, a Admin, log *RequestLog[T]) {
	view := a.ClockView
	if view == nil {
		view = NowView
	}
	mux.HandleFunc("GET /_sandbox/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, a.Routes)
	})
	mux.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, view(a.Clock.Now()))
	})
	mux.HandleFunc("POST /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		if moveClock(w, r, a.Clock) {
			WriteJSON(w, http.StatusOK, view(a.Clock.Now()))
		}
	})
	mux.HandleFunc("GET /_sandbox/requests", func(w http.ResponseWriter, _ *http.Request) {
		reqs := NonNil(log.Requests())
		WriteJSON(w, http.StatusOK, map[string]any{"count": len(reqs), "requests": reqs})
	})
	mux.HandleFunc("DELETE /_sandbox/requests", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"cleared": log.reset()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		AdminError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s (GET /_sandbox/ lists the admin routes%s)", r.Method, r.URL.Path, a.NotFoundHint))
	})
}

// moveClock applies a POST /_sandbox/clock body to c, or answers 400.
func moveClock(w http.ResponseWriter, r *http.Request, c Clocked) bool {
	var in struct {
		Now     string `json:"now"`
		Advance string `json:"advance"`
	}
	if !Decode(w, r, &in) {
		return false
	}
	switch {
	case (in.Now == "") == (in.Advance == ""):
		AdminError(w, http.StatusBadRequest, `give exactly one of "now" (RFC 3339) or "advance" (Go duration, e.g. "36h")`)
		return false
	case in.Now != "":
		t, err := time.Parse(time.RFC3339, in.Now)
		if err != nil {
			AdminError(w, http.StatusBadRequest, "now: want RFC 3339, e.g. 2026-03-28T12:00:00Z")
			return false
		}
		c.SetNow(t)
	default:
		d, err := time.ParseDuration(in.Advance)
		if err != nil {
			AdminError(w, http.StatusBadRequest, `advance: want a Go duration, e.g. "36h"`)
			return false
		}
		c.Advance(d)
	}
	return true
}

// WriteJSON answers status with body as JSON, HTML characters unescaped.
func WriteJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body) // the client went away; nothing left to tell it
}

// AdminError answers status with {"error": msg}, the admin APIs' error body.
func AdminError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// Decode reads an admin request's JSON body (at most MaxBodyBytes) into v,
// rejecting unknown fields, or answers 400 and returns false. Its message
// quotes no values: a body may hold a PIN.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return true
	}
	msg := "invalid JSON body"
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var me *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		msg += fmt.Sprintf(": syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		msg += fmt.Sprintf(": field %q: expected %s", te.Field, te.Type)
	case errors.As(err, &me):
		msg += fmt.Sprintf(": larger than %d bytes", MaxBodyBytes)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		msg += ": " + strings.TrimPrefix(err.Error(), "json: ") // names the field, not a value
	}
	AdminError(w, http.StatusBadRequest, msg)
	return false
}

// NonNil returns s, or an empty slice for nil, so that JSON shows [] rather
// than null.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// List mounts GET /_sandbox/{name} on mux, answering {name: list()}, an
// empty list as [] rather than null.
func List[T any](mux *http.ServeMux, name string, list func() []T) {
	mux.HandleFunc("GET /_sandbox/"+name, func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{name: NonNil(list())})
	})
}

// Bearer returns the token of an Authorization header of the Bearer
// scheme (any case), trimmed; ok is false for another scheme or none.
func Bearer(h string) (token string, ok bool) {
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}
