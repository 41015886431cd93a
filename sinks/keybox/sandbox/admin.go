package sandbox

import (
	"net/http"
	"strings"

	"github.com/keysync/keysync/internal/sandboxkit"
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
GET    /_sandbox/assumptions   the switches that break keysync's assumptions {no_list, list_without_codes, visitor_name_limit, create_without_code, cancelled_as_status, cancel_not_found, list_in_utc, code_as_booking_code}
POST   /_sandbox/assumptions   set any of them {"no_list": true, "list_without_codes": true, "visitor_name_limit": 5}
`

func (s *Server) adminRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	sandboxkit.Mount(mux, sandboxkit.Admin{Routes: adminRoutes, Clock: s}, &s.requestLog)
	sandboxkit.List(mux, "accesses", s.Accesses)
	sandboxkit.List(mux, "keys", s.Keys)
	mux.HandleFunc("POST /_sandbox/keys", s.adminAddKey)
	sandboxkit.Switches(mux,
		sandboxkit.FlagVar("no_list", &s.mu, &s.noList),
		sandboxkit.FlagVar("list_without_codes", &s.mu, &s.noCodes),
		sandboxkit.SizeVar("visitor_name_limit", &s.mu, &s.opts.VisitorNameLimit),
		sandboxkit.FlagVar("create_without_code", &s.mu, &s.opts.CreateWithoutCode),
		sandboxkit.FlagVar("cancelled_as_status", &s.mu, &s.opts.CancelledAsStatus),
		sandboxkit.FlagVar("cancel_not_found", &s.mu, &s.opts.CancelNotFound),
		sandboxkit.FlagVar("list_in_utc", &s.mu, &s.opts.ListInUTC),
		sandboxkit.FlagVar("code_as_booking_code", &s.mu, &s.opts.CodeAsBookingCode),
	)
	return mux
}

func (s *Server) adminAddKey(w http.ResponseWriter, r *http.Request) {
	var in KeyView
	if !sandboxkit.Decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.ID) == "" {
		sandboxkit.AdminError(w, http.StatusBadRequest, "id: must not be empty")
		return
	}
	s.mu.Lock()
	err := s.addKey(in.ID, in.SerialNumber)
	s.mu.Unlock()
	if err != nil {
		sandboxkit.AdminError(w, http.StatusConflict, err.Error())
		return
	}
	sandboxkit.WriteJSON(w, http.StatusCreated, in)
}
