package sandbox

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/webhook"
)

// adminRoutes is served at GET /_sandbox/; doc.go lists the same lines
// (a test keeps the two in step).
const adminRoutes = `3RPMS sandbox admin API (JSON, no auth)
GET    /_sandbox/                               this list
GET    /_sandbox/stays                          every stay, cancelled and deleted included
POST   /_sandbox/stays                          add a stay {id?, room_id, arrival, departure, reservation_id?, reservation_code?}
PATCH  /_sandbox/stays/{id}                     change {arrival?, departure?, room_id?}
POST   /_sandbox/stays/{id}/move                move to another room {room_id}
DELETE /_sandbox/stays/{id}                     delete a stay; its key assignment is dropped
POST   /_sandbox/reservations/{id}/cancel       cancel a reservation (its stays disappear from queries)
POST   /_sandbox/reservations/{id}/reactivate   re-activate a cancelled reservation
GET    /_sandbox/rooms                          every room
POST   /_sandbox/rooms                          add or rename a room {id, name}
GET    /_sandbox/clock                          the business clock {now, today}
POST   /_sandbox/clock                          set {"now": RFC 3339} or move {"advance": "36h"} the business clock
GET    /_sandbox/keys                           every room access key, its owner, content and assignments
GET    /_sandbox/requests                       the GraphQL request log {count, requests}
DELETE /_sandbox/requests                       empty the request log
POST   /_sandbox/cleanup                        run 3RPMS's cleanup of unassigned keys now {deleted: [ids]}
GET    /_sandbox/errors                         how GraphQL errors are answered {message_only, rollback_documents}
POST   /_sandbox/errors                         {"message_only": true}: errors carry only a message (no code, path or locations);
                                                {"rollback_documents": true}: a mutation document with a failed field is undone whole
GET    /_sandbox/assumptions                    the switches that break keysync's assumptions {message_only, rollback_documents, hide_qr_data, max_page_size, max_root_fields, refuse_readd, rename_delete_input, non_null_payloads, deleted_as_id, cancelled_by_id, field_errors_as_400}
POST   /_sandbox/assumptions                    set any of them {"hide_qr_data": true, "max_page_size": 20, "max_root_fields": 10, …}
DELETE /_sandbox/keys/{id}                      delete a key as hotel staff would (taken off its stays)
GET    /_sandbox/webhook                        where events go and what was sent {url, deliveries}
POST   /_sandbox/webhook                        send signed events {"url", "secret"} ("url": "" stops them)
`

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/graphql", s.serveGraphQL)
	sandboxkit.Mount(mux, sandboxkit.Admin{
		Routes: adminRoutes, Clock: s, ClockView: sandboxkit.TodayView,
		NotFoundHint: "; GraphQL is POST /graphql",
	}, &s.requestLog)
	sandboxkit.List(mux, "stays", s.Stays)
	mux.HandleFunc("POST /_sandbox/stays", s.adminAddStay)
	mux.HandleFunc("PATCH /_sandbox/stays/{id}", s.adminPatchStay)
	mux.HandleFunc("POST /_sandbox/stays/{id}/move", s.adminMoveStay)
	mux.HandleFunc("DELETE /_sandbox/stays/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.adminStayResult(w, id, s.DeleteStay(id))
	})
	mux.HandleFunc("POST /_sandbox/reservations/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		s.adminReservation(w, r.PathValue("id"), true)
	})
	mux.HandleFunc("POST /_sandbox/reservations/{id}/reactivate", func(w http.ResponseWriter, r *http.Request) {
		s.adminReservation(w, r.PathValue("id"), false)
	})
	sandboxkit.List(mux, "rooms", s.Rooms)
	mux.HandleFunc("POST /_sandbox/rooms", s.adminAddRoom)
	sandboxkit.List(mux, "keys", s.Keys)
	mux.HandleFunc("DELETE /_sandbox/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := s.DeleteKey(id); err != nil {
			sandboxkit.AdminError(w, http.StatusNotFound, err.Error())
			return
		}
		sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"deleted": id})
	})
	mux.HandleFunc("GET /_sandbox/webhook", func(w http.ResponseWriter, _ *http.Request) {
		s.hooks.mu.Lock()
		url := s.hooks.url
		s.hooks.mu.Unlock()
		sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"url": url, "deliveries": sandboxkit.NonNil(s.Deliveries())})
	})
	mux.HandleFunc("POST /_sandbox/webhook", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			URL    *string `json:"url"`
			Secret string  `json:"secret"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.URL == nil || (*in.URL != "" && in.Secret == "") {
			sandboxkit.AdminError(w, http.StatusBadRequest, `body must be {"url": "http://…", "secret": "…"} (or {"url": ""} to stop)`)
			return
		}
		s.SetWebhook(*in.URL, in.Secret)
		sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"url": *in.URL})
	})
	mux.HandleFunc("POST /_sandbox/cleanup", func(w http.ResponseWriter, _ *http.Request) {
		sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"deleted": sandboxkit.NonNil(s.CleanupUnassignedNow())})
	})
	sandboxkit.Switches(mux,
		sandboxkit.Flag("message_only", s.MessageOnlyErrors, s.SetMessageOnlyErrors),
		sandboxkit.Flag("rollback_documents", s.RollbackDocuments, s.SetRollbackDocuments),
		sandboxkit.FlagVar("hide_qr_data", &s.mu, &s.hideQR),
		sandboxkit.Size("max_page_size", func() int { return sandboxkit.Load(&s.mu, &s.opts.MaxPageSize) }, s.SetMaxPageSize),
		sandboxkit.Size("max_root_fields", func() int { return sandboxkit.Load(&s.mu, &s.maxRoot) }, s.SetMaxRootFields),
		sandboxkit.FlagVar("refuse_readd", &s.mu, &s.refuseReadd),
		sandboxkit.FlagVar("rename_delete_input", &s.mu, &s.renameDelete),
		sandboxkit.FlagVar("non_null_payloads", &s.mu, &s.nonNull),
		sandboxkit.FlagVar("deleted_as_id", &s.mu, &s.deletedAsID),
		sandboxkit.FlagVar("cancelled_by_id", &s.mu, &s.cancelledByID),
		sandboxkit.FlagVar("field_errors_as_400", &s.mu, &s.fieldErrors400),
	)
	mux.HandleFunc("GET /_sandbox/errors", func(w http.ResponseWriter, _ *http.Request) {
		sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"message_only": s.MessageOnlyErrors(), "rollback_documents": s.RollbackDocuments()})
	})
	mux.HandleFunc("POST /_sandbox/errors", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			MessageOnly *bool `json:"message_only"`
			Rollback    *bool `json:"rollback_documents"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.MessageOnly == nil && in.Rollback == nil {
			sandboxkit.AdminError(w, http.StatusBadRequest, `body must set "message_only" or "rollback_documents" (true|false)`)
			return
		}
		set := map[string]any{}
		if in.MessageOnly != nil {
			s.SetMessageOnlyErrors(*in.MessageOnly)
			set["message_only"] = *in.MessageOnly
		}
		if in.Rollback != nil {
			s.SetRollbackDocuments(*in.Rollback)
			set["rollback_documents"] = *in.Rollback
		}
		sandboxkit.WriteJSON(w, http.StatusOK, set)
	})
	return mux
}

// adminFail maps err's code to an HTTP status.
func adminFail(w http.ResponseWriter, err error) {
	status := map[string]int{
		CodeNotFound: http.StatusNotFound, CodeConflict: http.StatusConflict,
		CodeForbidden: http.StatusForbidden, CodeBadUserInput: http.StatusBadRequest,
	}[errCode(err)]
	sandboxkit.AdminError(w, cmp.Or(status, http.StatusInternalServerError), err.Error())
}

func (s *Server) adminStayResult(w http.ResponseWriter, id string, err error) {
	if err != nil {
		adminFail(w, err)
		return
	}
	v, _ := s.Stay(id)
	sandboxkit.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) adminAddStay(w http.ResponseWriter, r *http.Request) {
	var in Stay
	if !sandboxkit.Decode(w, r, &in) {
		return
	}
	s.lock()
	st, err := s.addStay(in)
	var v StayView
	if err == nil {
		v = s.stayView(st)
		s.hooks.emit(webhook.StayCreated, st.id)
	}
	s.mu.Unlock()
	if err != nil {
		adminFail(w, err)
		return
	}
	sandboxkit.WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) adminPatchStay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in struct {
		Arrival   *string `json:"arrival"`
		Departure *string `json:"departure"`
		RoomID    *string `json:"room_id"`
	}
	if !sandboxkit.Decode(w, r, &in) {
		return
	}
	s.lock()
	err := s.patchStay(id, in.Arrival, in.Departure, in.RoomID)
	s.mu.Unlock()
	s.adminStayResult(w, id, err)
}

// patchStay changes the given parts of a stay, all or nothing. Caller holds s.mu.
func (s *Server) patchStay(id string, arrival, departure, roomID *string) error {
	st, err := s.liveStay(id)
	if err != nil {
		return fmt.Errorf("sandbox: patch stay %s: %w", id, err)
	}
	if roomID != nil {
		if _, ok := s.rooms[*roomID]; !ok {
			return fmt.Errorf("sandbox: patch stay %s: %w", id, errorf(CodeNotFound, "room_id: room %q not found", *roomID))
		}
	}
	if arrival != nil || departure != nil {
		arr, dep := fmtDate(st.arrival), fmtDate(st.departure)
		if arrival != nil {
			arr = *arrival
		}
		if departure != nil {
			dep = *departure
		}
		if err := s.changeDates(id, arr, dep); err != nil {
			return err
		}
	}
	if roomID != nil {
		return s.moveStay(id, *roomID)
	}
	return nil
}

func (s *Server) adminMoveStay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in struct {
		RoomID string `json:"room_id"`
	}
	if !sandboxkit.Decode(w, r, &in) {
		return
	}
	s.adminStayResult(w, id, s.MoveStay(id, in.RoomID))
}

func (s *Server) adminReservation(w http.ResponseWriter, id string, cancel bool) {
	var err error
	if cancel {
		err = s.CancelReservation(id)
	} else {
		err = s.ReactivateReservation(id)
	}
	if err != nil {
		adminFail(w, err)
		return
	}
	sandboxkit.WriteJSON(w, http.StatusOK, map[string]any{"reservation_id": id, "cancelled": cancel})
}

func (s *Server) adminAddRoom(w http.ResponseWriter, r *http.Request) {
	var in Room
	if !sandboxkit.Decode(w, r, &in) {
		return
	}
	if in.ID == "" {
		sandboxkit.AdminError(w, http.StatusBadRequest, "id: must not be empty")
		return
	}
	if in.Name == "" {
		in.Name = in.ID
	}
	s.AddRoom(in.ID, in.Name)
	sandboxkit.WriteJSON(w, http.StatusCreated, in)
}
