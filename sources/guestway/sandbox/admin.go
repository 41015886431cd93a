package sandbox

import (
	"errors"
	"net/http"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// adminRouteList is served at GET /_sandbox/; doc.go lists the same lines
// (a test keeps the two in step).
const adminRouteList = `Guestway sandbox admin API (JSON, no auth)
GET    /_sandbox/                               this list
GET    /_sandbox/listings                       every listing
POST   /_sandbox/listings                       add or rename a listing {id, name}
GET    /_sandbox/reservations                   every reservation with its accesses (PINs included)
POST   /_sandbox/reservations                   add a reservation {id?, status?, arrival_date, departure_date, listing_id, unit_id?, guest_name?, guests?, accesses?}
PATCH  /_sandbox/reservations/{id}              change {status?, arrival_date?, departure_date?, listing_id?, unit_id?, guest_name?, guests?, unreadable_dates?}
POST   /_sandbox/reservations/{id}/cancel       set the status to "cancelled" (accesses are kept)
DELETE /_sandbox/reservations/{id}              delete a reservation and its accesses (the API then answers 404)
POST   /_sandbox/reservations/{id}/accesses     add a lock access {id?, lock_id, lock_name?, pin, valid_from?, valid_to?}
DELETE /_sandbox/reservations/{id}/accesses     remove every access of a reservation
GET    /_sandbox/clock                          the business clock {now, today}
POST   /_sandbox/clock                          set {"now": RFC 3339} or move {"advance": "36h"} the business clock
GET    /_sandbox/requests                       the API request log {count, requests}
DELETE /_sandbox/requests                       empty the request log
GET    /_sandbox/assumptions                    the switches that break keysync's assumptions {max_per_page, no_has_more, ignore_page, no_reservation_get, accesses_not_found_when_empty, list_not_found_when_empty, cursor_meta, short_pages, cancelled_as, pin_as_number, gone_as_null, bare_lists}
POST   /_sandbox/assumptions                    set them {"max_per_page": 20, "no_has_more": true}
`

func (s *Server) adminRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	sandboxkit.Mount(mux, sandboxkit.Admin{Routes: adminRouteList, Clock: s, ClockView: sandboxkit.TodayView}, &s.requestLog)
	sandboxkit.List(mux, "listings", s.Listings)
	sandboxkit.Switches(mux,
		sandboxkit.SizeVar("max_per_page", &s.mu, &s.maxPerPage),
		sandboxkit.FlagVar("no_has_more", &s.mu, &s.noHasMore),
		sandboxkit.FlagVar("ignore_page", &s.mu, &s.ignorePage),
		sandboxkit.FlagVar("no_reservation_get", &s.mu, &s.noOneGet),
		sandboxkit.FlagVar("accesses_not_found_when_empty", &s.mu, &s.accessesNotFoundEmpty),
		sandboxkit.FlagVar("list_not_found_when_empty", &s.mu, &s.listNotFoundEmpty),
		sandboxkit.FlagVar("cursor_meta", &s.mu, &s.cursorMeta),
		sandboxkit.FlagVar("short_pages", &s.mu, &s.shortPages),
		sandboxkit.FlagVar("cancelled_as", &s.mu, &s.cancelledAs),
		sandboxkit.FlagVar("pin_as_number", &s.mu, &s.pinAsNumber),
		sandboxkit.FlagVar("gone_as_null", &s.mu, &s.goneAsNull),
		sandboxkit.FlagVar("bare_lists", &s.mu, &s.bareLists))
	mux.HandleFunc("POST /_sandbox/listings", func(w http.ResponseWriter, r *http.Request) {
		var in Listing
		if !sandboxkit.Decode(w, r, &in) {
			return
		}
		if in.ID == "" {
			sandboxkit.AdminError(w, http.StatusBadRequest, "id: must not be empty")
			return
		}
		s.AddListing(in.ID, in.Name)
		sandboxkit.WriteJSON(w, http.StatusCreated, Listing{ID: in.ID, Name: s.listingName(in.ID)})
	})
	sandboxkit.List(mux, "reservations", s.Reservations)
	mux.HandleFunc("POST /_sandbox/reservations", func(w http.ResponseWriter, r *http.Request) {
		var in Reservation
		if !sandboxkit.Decode(w, r, &in) {
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
		if !sandboxkit.Decode(w, r, &in) {
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
	return mux
}

func (s *Server) listingName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listings[id]
}

// adminResult answers out with status, or err with the status its kind maps to.
func (s *Server) adminResult(w http.ResponseWriter, status int, out any, err error) {
	switch {
	case err == nil:
		sandboxkit.WriteJSON(w, status, out)
	case errors.Is(err, ErrNotFound):
		sandboxkit.AdminError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		sandboxkit.AdminError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		sandboxkit.AdminError(w, http.StatusBadRequest, err.Error())
	default:
		sandboxkit.AdminError(w, http.StatusInternalServerError, err.Error())
	}
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
		// UnreadableDates: see Reservation.UnreadableDates.
		UnreadableDates *bool `json:"unreadable_dates"`
	}
	if !sandboxkit.Decode(w, r, &in) {
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
		if in.UnreadableDates != nil {
			r.UnreadableDates = *in.UnreadableDates
		}
	})
	s.mu.Unlock()
	s.adminResult(w, http.StatusOK, out, err)
}
