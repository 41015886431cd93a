package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// adminRouteList is served at GET /_sandbox/; doc.go lists the same lines
// (a test keeps the two in step).
const adminRouteList = `Guestway sandbox admin API (JSON, no auth)
GET    /_sandbox/                               this list
GET    /_sandbox/listings                       every listing
POST   /_sandbox/listings                       add or rename a listing {id, name}
GET    /_sandbox/reservations                   every reservation with its accesses (PINs included)
POST   /_sandbox/reservations                   add a reservation {id?, status?, arrival_date, departure_date, listing_id, unit_id?, guest_name?, guests?, accesses?}
PATCH  /_sandbox/reservations/{id}              change {status?, arrival_date?, departure_date?, listing_id?, unit_id?, guest_name?, guests?}
POST   /_sandbox/reservations/{id}/cancel       set the status to "cancelled" (accesses are kept)
DELETE /_sandbox/reservations/{id}              delete a reservation and its accesses (the API then answers 404)
POST   /_sandbox/reservations/{id}/accesses     add a lock access {id?, lock_id, lock_name?, pin, valid_from?, valid_to?}
DELETE /_sandbox/reservations/{id}/accesses     remove every access of a reservation
GET    /_sandbox/clock                          the business clock {now, today}
POST   /_sandbox/clock                          set {"now": RFC 3339} or move {"advance": "36h"} the business clock
GET    /_sandbox/requests                       the API request log {count, requests}
DELETE /_sandbox/requests                       empty the request log
`

func (s *Server) adminRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sandbox/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, adminRouteList)
	})
	mux.HandleFunc("GET /_sandbox/listings", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"listings": s.Listings()})
	})
	mux.HandleFunc("POST /_sandbox/listings", func(w http.ResponseWriter, r *http.Request) {
		var in Listing
		if !decode(w, r, &in) {
			return
		}
		if in.ID == "" {
			adminError(w, http.StatusBadRequest, "id: must not be empty")
			return
		}
		s.AddListing(in.ID, in.Name)
		writeJSON(w, http.StatusCreated, Listing{ID: in.ID, Name: s.listingName(in.ID)})
	})
	mux.HandleFunc("GET /_sandbox/reservations", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"reservations": nonNil(s.Reservations())})
	})
	mux.HandleFunc("POST /_sandbox/reservations", func(w http.ResponseWriter, r *http.Request) {
		var in Reservation
		if !decode(w, r, &in) {
			return
		}
		s.mu.Lock()
		out, err := s.addReservation(in)
		s.mu.Unlock()
		s.adminResult(w, http.StatusCreated, out, err)
	})
	mux.HandleFunc("PATCH /_sandbox/reservations/{id}", s.adminPatch)
	mux.HandleFunc("POST /_sandbox/reservations/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out, err := s.update(r.PathValue("id"), "cancel", func(r *Reservation) { r.Status = StatusCancelled })
		s.mu.Unlock()
		s.adminResult(w, http.StatusOK, out, err)
	})
	mux.HandleFunc("DELETE /_sandbox/reservations/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		err := s.DeleteReservation(id)
		s.adminResult(w, http.StatusOK, map[string]string{"deleted": id}, err)
	})
	mux.HandleFunc("POST /_sandbox/reservations/{id}/accesses", func(w http.ResponseWriter, r *http.Request) {
		var in Access
		if !decode(w, r, &in) {
			return
		}
		s.mu.Lock()
		out, err := s.addAccess(r.PathValue("id"), in)
		s.mu.Unlock()
		s.adminResult(w, http.StatusCreated, out, err)
	})
	mux.HandleFunc("DELETE /_sandbox/reservations/{id}/accesses", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.RemoveAccesses(r.PathValue("id"))
		s.adminResult(w, http.StatusOK, map[string]int{"removed": n}, err)
	})
	mux.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.clockView())
	})
	mux.HandleFunc("POST /_sandbox/clock", s.adminClock)
	mux.HandleFunc("GET /_sandbox/requests", func(w http.ResponseWriter, _ *http.Request) {
		reqs := nonNil(s.Requests())
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

func (s *Server) listingName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listings[id]
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// adminResult answers out with status, or err with the status its kind maps to.
func (s *Server) adminResult(w http.ResponseWriter, status int, out any, err error) {
	switch {
	case err == nil:
		writeJSON(w, status, out)
	case errors.Is(err, ErrNotFound):
		adminError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		adminError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		adminError(w, http.StatusBadRequest, err.Error())
	default:
		adminError(w, http.StatusInternalServerError, err.Error())
	}
}

// decode reads a JSON body into v, rejecting unknown fields. Its message
// quotes no values (a body may hold a PIN).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
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
	adminError(w, http.StatusBadRequest, msg)
	return false
}

func (s *Server) adminPatch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Status        *string `json:"status"`
		ArrivalDate   *string `json:"arrival_date"`
		DepartureDate *string `json:"departure_date"`
		ListingID     *string `json:"listing_id"`
		UnitID        *string `json:"unit_id"`
		GuestName     *string `json:"guest_name"`
		Guests        *Guests `json:"guests"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	out, err := s.update(r.PathValue("id"), "patch", func(r *Reservation) {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&r.Status, in.Status)
		set(&r.ArrivalDate, in.ArrivalDate)
		set(&r.DepartureDate, in.DepartureDate)
		set(&r.ListingID, in.ListingID)
		set(&r.UnitID, in.UnitID)
		set(&r.GuestName, in.GuestName)
		if in.Guests != nil {
			r.Guests = *in.Guests
		}
	})
	s.mu.Unlock()
	s.adminResult(w, http.StatusOK, out, err)
}

func (s *Server) clockView() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]string{"now": s.now.Format(time.RFC3339), "today": s.today().Format(DateLayout)}
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
			adminError(w, http.StatusBadRequest, "now: want RFC 3339")
			return
		}
		s.SetNow(t)
	default:
		d, err := time.ParseDuration(in.Advance)
		if err != nil {
			adminError(w, http.StatusBadRequest, `advance: want a Go duration such as "36h"`)
			return
		}
		s.Advance(d)
	}
	writeJSON(w, http.StatusOK, s.clockView())
}
