package sandbox

import (
	"fmt"
	"net/http"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
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
GET    /_sandbox/assumptions  the switches that break keysync's assumptions {no_list, list_without_tokens, put_only_narrows, put_conflicts, put_not_found, changes_forbidden, max_per_page, name_limit, disabled_as_status, list_without_has_more, refuse_past_start}
POST   /_sandbox/assumptions  set any of them {"no_list": true, "list_without_tokens": true, "put_only_narrows": true, "max_per_page": 10}
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

	sandboxkit.Mount(mux, sandboxkit.Admin{Routes: adminRoutes, Clock: s, ClockView: utcNow}, &s.requestLog)
	sandboxkit.List(mux, "invites", s.Invites)
	sandboxkit.List(mux, "portals", s.Portals)
	mux.HandleFunc("POST /_sandbox/portals", s.adminAddPortal)
	sandboxkit.Switches(mux,
		sandboxkit.FlagVar("no_list", &s.mu, &s.noList),
		sandboxkit.FlagVar("list_without_tokens", &s.mu, &s.noTokens),
		sandboxkit.FlagVar("put_only_narrows", &s.mu, &s.narrowOnly),
		sandboxkit.FlagVar("put_conflicts", &s.mu, &s.putConflicts),
		sandboxkit.FlagVar("put_not_found", &s.mu, &s.putNotFound),
		sandboxkit.FlagVar("disabled_as_status", &s.mu, &s.offAsStatus),
		sandboxkit.FlagVar("list_without_has_more", &s.mu, &s.noHasMore),
		sandboxkit.FlagVar("refuse_past_start", &s.mu, &s.refusePast),
		sandboxkit.FlagVar("changes_forbidden", &s.mu, &s.frozen),
		sandboxkit.SizeVar("max_per_page", &s.mu, &s.maxPerPage),
		sandboxkit.SizeVar("name_limit", &s.mu, &s.nameLimit),
	)
	return mux
}

// utcNow is the clock routes' answer: the business clock in UTC.
func utcNow(now time.Time) any { return sandboxkit.NowView(now.UTC()) }

func (s *Server) adminAddPortal(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID          string `json:"id"`
		Integration string `json:"integration_id"`
	}
	if !sandboxkit.Decode(w, r, &in) {
		return
	}
	if in.ID == "" || in.Integration == "" {
		sandboxkit.AdminError(w, http.StatusBadRequest, "id and integration_id: both required")
		return
	}
	s.mu.Lock()
	org, ok := s.integrations[in.Integration]
	s.mu.Unlock()
	if !ok {
		sandboxkit.AdminError(w, http.StatusNotFound, fmt.Sprintf("integration_id: integration %q not found", in.Integration))
		return
	}
	s.AddPortal(in.ID, in.Integration)
	sandboxkit.WriteJSON(w, http.StatusCreated, Portal{ID: in.ID, Integration: in.Integration, Org: org})
}
