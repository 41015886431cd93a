package sandbox

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// DateLayout is the layout of every date the sandbox accepts and returns.
const DateLayout = "2006-01-02"

// Reservation statuses the sandbox uses. Any other lower-case status
// may be set too (SetStatus), to see how a client copes with one it does not
// know.
const (
	// StatusConfirmed is a booked stay, the default.
	StatusConfirmed = "confirmed"
	// StatusPending is a stay awaiting confirmation.
	StatusPending = "pending"
	// StatusCancelled is a cancelled stay; the API still lists it.
	StatusCancelled = "cancelled"
)

// Errors of the Go API, wrapped with the details; the admin API answers
// them 404, 400 and 409. Messages never contain a PIN.
var (
	// ErrNotFound: no reservation or listing with that id.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a field breaks a rule (date format, departure not after
	// arrival, empty lock id or PIN, ...).
	ErrInvalid = errors.New("invalid")
	// ErrConflict: a reservation or access with that id already exists.
	ErrConflict = errors.New("conflict")
)

// Listing is a rental listing. Reservations name it by ID; the API's
// payloads carry no listing names.
type Listing struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Guests is a reservation's head count.
type Guests struct {
	Adults   int `json:"adults"`
	Children int `json:"children"`
}

// Access is a smart-lock access of a reservation: its PIN for one lock.
// ValidFrom and ValidTo are RFC 3339; AddAccess defaults them to the
// reservation's arrival at 15:00 and departure at 11:00 (business clock's
// zone). An empty ID becomes "A<n>".
type Access struct {
	ID        string `json:"id"`
	LockID    string `json:"lock_id"`
	LockName  string `json:"lock_name"`
	PIN       string `json:"pin"`
	ValidFrom string `json:"valid_from"`
	ValidTo   string `json:"valid_to"`
}

// Reservation is a reservation as the sandbox holds it. On the API it is
// sent without Accesses, with unit_id null when UnitID is empty. An empty
// ID becomes "R<n>" and an empty Status "confirmed". ArrivalDate and
// DepartureDate are DateLayout dates, departure after arrival; ListingID
// must name a listing added with AddListing; UnitID is free-form.
type Reservation struct {
	ID            string   `json:"id"`
	Status        string   `json:"status"`
	ArrivalDate   string   `json:"arrival_date"`
	DepartureDate string   `json:"departure_date"`
	ListingID     string   `json:"listing_id"`
	UnitID        string   `json:"unit_id,omitempty"`
	GuestName     string   `json:"guest_name"`
	Guests        Guests   `json:"guests"`
	Accesses      []Access `json:"accesses,omitempty"`
	// UnreadableDates serves the reservation's arrival_date as "TBD", a
	// value that is no date, as a server whose record holds a data-entry
	// error may (the document names no such case): keysync must leave
	// what it issued for the stay as it is, and key the other guests.
	UnreadableDates bool `json:"unreadable_dates,omitempty"`
}

func (r Reservation) clone() Reservation {
	r.Accesses = slices.Clone(r.Accesses)
	return r
}

// today is the business clock's date at midnight in its zone.
func (s *Server) today() time.Time {
	now := s.Now()
	y, m, d := now.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, now.Location())
}

// AddListing adds a listing, or renames it if id exists.
func (s *Server) AddListing(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addListing(id, name)
}

func (s *Server) addListing(id, name string) {
	if _, ok := s.listings[id]; !ok {
		s.listingOrder = append(s.listingOrder, id)
	}
	s.listings[id] = cmp.Or(name, id)
}

// Listings returns every listing in the order added.
func (s *Server) Listings() []Listing {
	return sandboxkit.Views(&s.mu, &s.listingOrder, func(id string) Listing { return Listing{ID: id, Name: s.listings[id]} })
}

// AddReservation adds a reservation, with its Accesses if it has any.
func (s *Server) AddReservation(r Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.addReservation(r)
	return err
}

func (s *Server) addReservation(r Reservation) (_ Reservation, err error) {
	nextRes, nextAccess := s.nextRes, s.nextAccess
	defer func() {
		if err != nil { // a failed add leaves no trace, generated ids included
			s.nextRes, s.nextAccess = nextRes, nextAccess
		}
	}()
	if _, ok := s.res[r.ID]; ok {
		return Reservation{}, fmt.Errorf("sandbox: add reservation %s: %w: the id is taken", r.ID, ErrConflict)
	}
	r.Status = cmp.Or(r.Status, StatusConfirmed)
	accesses := r.Accesses
	r.Accesses = nil
	if err := s.check(r); err != nil {
		return Reservation{}, fmt.Errorf("sandbox: add reservation %s: %w", cmp.Or(r.ID, "(new)"), err)
	}
	for r.ID == "" {
		s.nextRes++
		if id := "R" + strconv.Itoa(1000+s.nextRes); s.res[id] == nil {
			r.ID = id
		}
	}
	for i, a := range accesses {
		if err := s.prepareAccess(&r, &a); err != nil {
			return Reservation{}, fmt.Errorf("sandbox: add reservation %s: accesses[%d]: %w", r.ID, i, err)
		}
		r.Accesses = append(r.Accesses, a)
	}
	s.res[r.ID] = &r
	return r.clone(), nil
}

// check validates a reservation's fields. Caller holds s.mu.
func (s *Server) check(r Reservation) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if strings.ContainsAny(r.ID, "/?#") || strings.TrimSpace(r.ID) != r.ID {
		return invalid("id: must not contain /, ?, # or surrounding spaces")
	}
	if !validStatus(r.Status) {
		return invalid("status: must be lower-case letters and underscores, such as %q", StatusConfirmed)
	}
	arr, err := time.Parse(DateLayout, r.ArrivalDate)
	if err != nil {
		return invalid("arrival_date: want YYYY-MM-DD")
	}
	dep, err := time.Parse(DateLayout, r.DepartureDate)
	if err != nil {
		return invalid("departure_date: want YYYY-MM-DD")
	}
	if !dep.After(arr) {
		return invalid("departure_date: must be after arrival_date")
	}
	if _, ok := s.listings[r.ListingID]; !ok {
		return fmt.Errorf("%w: listing_id: no listing %q (add it first)", ErrNotFound, r.ListingID)
	}
	if r.Guests.Adults < 0 || r.Guests.Children < 0 {
		return invalid("guests: must not be negative")
	}
	return nil
}

func validStatus(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// prepareAccess validates a and fills its defaults for r. Caller holds s.mu.
func (s *Server) prepareAccess(r *Reservation, a *Access) error {
	switch {
	case a.LockID == "":
		return fmt.Errorf("%w: lock_id: must not be empty", ErrInvalid)
	case a.PIN == "" || len(a.PIN) > 16 || strings.ContainsFunc(a.PIN, func(c rune) bool { return !isAlnum(c) }):
		return fmt.Errorf("%w: pin: must be 1 to 16 letters or digits (value not shown)", ErrInvalid)
	}
	for _, f := range []struct{ name, v string }{{"valid_from", a.ValidFrom}, {"valid_to", a.ValidTo}} {
		if _, err := time.Parse(time.RFC3339, f.v); f.v != "" && err != nil {
			return fmt.Errorf("%w: %s: want RFC 3339", ErrInvalid, f.name)
		}
	}
	if a.ID == "" {
		s.nextAccess++
		a.ID = "A" + strconv.Itoa(s.nextAccess)
	}
	for _, other := range s.res {
		if slices.ContainsFunc(other.Accesses, func(o Access) bool { return o.ID == a.ID }) {
			return fmt.Errorf("%w: access id %s is taken", ErrConflict, a.ID)
		}
	}
	if slices.ContainsFunc(r.Accesses, func(o Access) bool { return o.ID == a.ID }) {
		return fmt.Errorf("%w: access id %s is taken", ErrConflict, a.ID)
	}
	loc := s.Now().Location()
	if a.ValidFrom == "" {
		arr, _ := time.ParseInLocation(DateLayout, r.ArrivalDate, loc)
		a.ValidFrom = arr.Add(15 * time.Hour).Format(time.RFC3339)
	}
	if a.ValidTo == "" {
		dep, _ := time.ParseInLocation(DateLayout, r.DepartureDate, loc)
		a.ValidTo = dep.Add(11 * time.Hour).Format(time.RFC3339)
	}
	a.LockName = cmp.Or(a.LockName, a.LockID)
	return nil
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// update changes a copy of reservation id with f and stores it if it is
// still valid: all or nothing. Caller holds s.mu.
func (s *Server) update(id, what string, f func(r *Reservation)) (Reservation, error) {
	cur, ok := s.res[id]
	if !ok {
		return Reservation{}, fmt.Errorf("sandbox: %s %s: %w: no such reservation", what, id, ErrNotFound)
	}
	r := cur.clone()
	f(&r)
	if err := s.check(r); err != nil {
		return Reservation{}, fmt.Errorf("sandbox: %s %s: %w", what, id, err)
	}
	*cur = r
	return r.clone(), nil
}

// SetStatus sets a reservation's status: "confirmed", "cancelled",
// "pending" or any other lower-case word. Its accesses are kept.
func (s *Server) SetStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.update(id, "set status of", func(r *Reservation) { r.Status = status })
	return err
}

// ChangeDates moves a reservation to new dates (DateLayout). Its accesses'
// windows are not changed, as a lock system's would not be.
func (s *Server) ChangeDates(id, arrival, departure string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.update(id, "change dates of", func(r *Reservation) { r.ArrivalDate, r.DepartureDate = arrival, departure })
	return err
}

// SetUnreadableDates sets the reservation's UnreadableDates.
func (s *Server) SetUnreadableDates(id string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.update(id, "set unreadable dates of", func(r *Reservation) { r.UnreadableDates = on })
	return err
}

// MoveUnit moves a reservation to another listing and unit. An empty
// listingID keeps the listing; an empty unitID means no unit.
func (s *Server) MoveUnit(id, listingID, unitID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.update(id, "move", func(r *Reservation) {
		r.ListingID = cmp.Or(listingID, r.ListingID)
		r.UnitID = unitID
	})
	return err
}

// DeleteReservation removes a reservation and its accesses; the API then
// answers 404 for it.
func (s *Server) DeleteReservation(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.res[id]; !ok {
		return fmt.Errorf("sandbox: delete reservation %s: %w: no such reservation", id, ErrNotFound)
	}
	delete(s.res, id)
	return nil
}

// AddAccess adds a lock access to a reservation.
func (s *Server) AddAccess(reservationID string, a Access) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.addAccess(reservationID, a)
	return err
}

func (s *Server) addAccess(reservationID string, a Access) (Access, error) {
	r, ok := s.res[reservationID]
	if !ok {
		return Access{}, fmt.Errorf("sandbox: add access to %s: %w: no such reservation", reservationID, ErrNotFound)
	}
	if err := s.prepareAccess(r, &a); err != nil {
		return Access{}, fmt.Errorf("sandbox: add access to %s: %w", reservationID, err)
	}
	r.Accesses = append(r.Accesses, a)
	return a, nil
}

// RemoveAccesses removes every access of a reservation and returns how many
// there were.
func (s *Server) RemoveAccesses(reservationID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.res[reservationID]
	if !ok {
		return 0, fmt.Errorf("sandbox: remove accesses of %s: %w: no such reservation", reservationID, ErrNotFound)
	}
	n := len(r.Accesses)
	r.Accesses = nil
	return n, nil
}

// Reservations returns every reservation with its accesses (PINs included:
// this is for tests and the sandbox's operator), ordered as the API lists
// them: by arrival date, then id.
func (s *Server) Reservations() []Reservation {
	s.mu.Lock()
	defer s.mu.Unlock()
	sorted := s.sorted()
	out := make([]Reservation, len(sorted))
	for i, r := range sorted {
		out[i] = r.clone()
	}
	return out
}

// Reservation returns one reservation with its accesses.
func (s *Server) Reservation(id string) (Reservation, bool) {
	return sandboxkit.Lookup(&s.mu, &s.res, id, (*Reservation).clone)
}

// sorted returns the reservations by arrival date, then id. Caller holds s.mu.
func (s *Server) sorted() []*Reservation {
	out := make([]*Reservation, 0, len(s.res))
	for _, r := range s.res {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Reservation) int {
		return cmp.Or(cmp.Compare(a.ArrivalDate, b.ArrivalDate), cmp.Compare(a.ID, b.ID))
	})
	return out
}
