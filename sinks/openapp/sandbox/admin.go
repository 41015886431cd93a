package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// adminRoutes is served at GET /_sandbox/; doc.go lists the same lines
// (a test keeps the two in step).
const adminRoutes = `OpenApp sandbox admin API (JSON, no auth)
GET    /_sandbox/             this list
GET    /_sandbox/invites      every invite, deleted included, with its token, org and creator
GET    /_sandbox/portals      every portal and its integration
POST   /_sandbox/portals      add or move a portal {id, integration_id}
GET    /_sandbox/clock        the business clock {now}
POST   /_sandbox/clock        set {"now": RFC 3339} or move {"advance": "36h"} the business clock
GET    /_sandbox/requests     the request log {count, requests}
DELETE /_sandbox/requests     empty the request log
`

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	const invites = "/integrations/{integration}/access-invites"
	mux.HandleFunc("GET "+invites, s.logged(rawPath, s.list))
	mux.HandleFunc("POST "+invites, s.logged(rawPath, s.create))
	mux.HandleFunc("PUT "+invites+"/{link}", s.logged(rawPath, s.update))
	mux.HandleFunc("DELETE "+invites+"/{link}", s.logged(rawPath, s.remove))
	const public = "/public/access/invites/{token}"
	mux.HandleFunc("GET "+public, s.logged(publicPath, s.publicGet))
	mux.HandleFunc("POST "+public+"/claim", s.logged(publicPath, s.publicClaim))
	mux.HandleFunc("POST "+public+"/execute", s.logged(publicPath, s.publicExecute))

	mux.HandleFunc("GET /_sandbox/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, adminRoutes)
	})
	mux.HandleFunc("GET /_sandbox/invites", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"invites": s.Invites()})
	})
	mux.HandleFunc("GET /_sandbox/portals", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"portals": s.Portals()})
	})
	mux.HandleFunc("POST /_sandbox/portals", s.adminAddPortal)
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
		n := len(s.Requests())
		s.ResetRequests()
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

// decodeAdmin reads a JSON admin body into v, rejecting unknown fields.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) adminAddPortal(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID          string `json:"id"`
		Integration string `json:"integration_id"`
	}
	if !decodeAdmin(w, r, &in) {
		return
	}
	if in.ID == "" || in.Integration == "" {
		adminError(w, http.StatusBadRequest, "id and integration_id: both required")
		return
	}
	s.mu.Lock()
	org, ok := s.integrations[in.Integration]
	s.mu.Unlock()
	if !ok {
		adminError(w, http.StatusNotFound, fmt.Sprintf("integration_id: integration %q not found", in.Integration))
		return
	}
	s.AddPortal(in.ID, in.Integration)
	writeJSON(w, http.StatusCreated, Portal{ID: in.ID, Integration: in.Integration, Org: org})
}

func (s *Server) clockView() map[string]string {
	return map[string]string{"now": s.Now().UTC().Format(time.RFC3339)}
}

func (s *Server) adminClock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Now     string `json:"now"`
		Advance string `json:"advance"`
	}
	if !decodeAdmin(w, r, &in) {
		return
	}
	switch {
	case (in.Now == "") == (in.Advance == ""):
		adminError(w, http.StatusBadRequest, `give exactly one of "now" (RFC 3339) or "advance" (Go duration, e.g. "36h")`)
		return
	case in.Now != "":
		t, err := time.Parse(time.RFC3339, in.Now)
		if err != nil {
			adminError(w, http.StatusBadRequest, "now: "+err.Error())
			return
		}
		s.SetNow(t)
	default:
		d, err := time.ParseDuration(in.Advance)
		if err != nil {
			adminError(w, http.StatusBadRequest, "advance: "+err.Error())
			return
		}
		s.Advance(d)
	}
	writeJSON(w, http.StatusOK, s.clockView())
}
