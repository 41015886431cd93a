package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// adminRoutes is served at GET /_sandbox/; doc.go lists the same lines
// (a test keeps the two in step).
const adminRoutes = `Key box sandbox admin API (JSON, no auth)
GET    /_sandbox/              this list
GET    /_sandbox/accesses      every access, cancelled ones included, with its code and creator
GET    /_sandbox/keys          every key in the box
POST   /_sandbox/keys          add a key {id, serial_number?}
GET    /_sandbox/clock         the business clock {now}
POST   /_sandbox/clock         set {"now": RFC 3339} or move {"advance": "36h"} the business clock
GET    /_sandbox/requests      the API request log {count, requests}
DELETE /_sandbox/requests      empty the request log
`

func (s *Server) adminRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sandbox/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, adminRoutes)
	})
	mux.HandleFunc("GET /_sandbox/accesses", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"accesses": s.Accesses()})
	})
	mux.HandleFunc("GET /_sandbox/keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"keys": s.Keys()})
	})
	mux.HandleFunc("POST /_sandbox/keys", s.adminAddKey)
	mux.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.clockView())
	})
	mux.HandleFunc("POST /_sandbox/clock", s.adminClock)
	mux.HandleFunc("GET /_sandbox/requests", func(w http.ResponseWriter, _ *http.Request) {
		reqs := s.Requests()
		if reqs == nil {
			reqs = []Request{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(reqs), "requests": reqs})
	})
	mux.HandleFunc("DELETE /_sandbox/requests", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		n := len(s.requests)
		s.requests = nil
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"cleared": n})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s (GET /_sandbox/ lists the admin routes)", r.Method, r.URL.Path))
	})
	return mux
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads a JSON body into v, rejecting unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) adminAddKey(w http.ResponseWriter, r *http.Request) {
	var in KeyView
	if !decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.ID) == "" {
		adminError(w, http.StatusBadRequest, "id: must not be empty")
		return
	}
	s.mu.Lock()
	err := s.addKey(in.ID, in.SerialNumber)
	s.mu.Unlock()
	if err != nil {
		adminError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, in)
}

func (s *Server) clockView() map[string]string {
	return map[string]string{"now": s.Now().Format(time.RFC3339)}
}

func (s *Server) adminClock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Now     string `json:"now"`
		Advance string `json:"advance"`
	}
	if !decode(w, r, &in) {
		return
	}
	switch {
	case (in.Now == "") == (in.Advance == ""):
		adminError(w, http.StatusBadRequest, `give exactly one of "now" (RFC 3339) or "advance" (Go duration, e.g. "36h")`)
		return
	case in.Now != "":
		t, err := time.Parse(time.RFC3339, in.Now)
		if err != nil {
			adminError(w, http.StatusBadRequest, "now: want RFC 3339, e.g. 2026-03-28T12:00:00Z")
			return
		}
		s.SetNow(t)
	default:
		d, err := time.ParseDuration(in.Advance)
		if err != nil {
			adminError(w, http.StatusBadRequest, "advance: want a Go duration, e.g. 36h")
			return
		}
		s.Advance(d)
	}
	writeJSON(w, http.StatusOK, s.clockView())
}
