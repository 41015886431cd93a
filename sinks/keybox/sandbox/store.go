package sandbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// Access statuses, as of the business clock.
const (
	StatusUpcoming  = "upcoming"
	StatusActive    = "active"
	StatusEnded     = "ended"
	StatusCancelled = "cancelled"
)

// ErrNotFound is returned by CancelAccess for an access that does not exist
// or is already cancelled.
var ErrNotFound = errors.New("access not found")

// KeyView is one key in the box.
type KeyView struct {
	ID           string `json:"id"`
	SerialNumber string `json:"serial_number,omitempty"`
}

// AccessView is a snapshot of one access, cancelled ones included. It holds
// the code: it is for tests and the sandbox's operator only.
type AccessView struct {
	ID              string `json:"id"`
	KeyID           string `json:"key_id"`
	KeySerialNumber string `json:"key_serial_number,omitempty"`
	// StartDate, StartTime, EndDate and EndTime are the local wall-clock
	// date ("2006-01-02") and time ("15:04") in TimeZone, as the creator
	// gave them or as derived from a deprecated ISO 8601 date; the end ones
	// are empty for an ongoing access.
	StartDate string `json:"start_date"`
	StartTime string `json:"start_time"`
	EndDate   string `json:"end_date,omitempty"`
	EndTime   string `json:"end_time,omitempty"`
	// TimeZone is the IANA zone of the local view; "UTC" when none was given.
	TimeZone string `json:"time_zone"`
	// Start and End are the instants; End is zero for an ongoing access.
	Start          time.Time `json:"start"`
	End            time.Time `json:"end,omitzero"`
	Visitor        string    `json:"visitor_name,omitempty"`
	User           string    `json:"user,omitempty"`
	Code           string    `json:"code"`
	Creator        string    `json:"creator"`
	Locale         string    `json:"locale,omitempty"`
	Silent         bool      `json:"silent"`
	ReturnReminder bool      `json:"return_reminder"`
	CreatedAt      time.Time `json:"created_at"`
	Cancelled      bool      `json:"cancelled"`
	CancelledAt    time.Time `json:"cancelled_at,omitzero"`
	CancelledBy    string    `json:"cancelled_by,omitempty"`
	// Status is StatusUpcoming, StatusActive, StatusEnded or
	// StatusCancelled as of the business clock.
	Status string `json:"status"`
}

// AccessInput describes an access to plant with AddAccess, bypassing the API:
// one another user or the front desk made.
type AccessInput struct {
	// Creator is the username recorded as the access's creator.
	Creator string
	// KeyID names a key added with AddKey.
	KeyID string
	// Start and End are instants; End zero means ongoing.
	Start, End time.Time
	// TimeZone is the IANA zone of the local view; "" means UTC.
	TimeZone string
	Visitor  string
	// Code is the access code; "" means a fresh one.
	Code string
}

type key struct {
	id, serial string
	seq        int
}

type access struct {
	id                   string
	keyID                string
	startDate, startTime string
	endDate, endTime     string
	zone                 string
	start, end           time.Time
	visitor, user        string
	code                 string
	creator              string
	locale               string
	silent, reminder     bool
	createdAt            time.Time
	cancelled            bool
	cancelledAt          time.Time
	cancelledBy          string
}

// ---- Go API ----------------------------------------------------------------

// AddKey puts a key in the box, or changes the serial number of key id. It
// panics on an empty id or on a serial number another key holds: those are
// mistakes in the test or demo setup.
func (s *Server) AddKey(id, serial string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.addKey(id, serial); err != nil {
		panic(err.Error())
	}
}

func (s *Server) addKey(id, serial string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("sandbox: add key: id must not be empty")
	}
	if serial != "" {
		if other := s.keyBySerial(serial); other != nil && other.id != id {
			return fmt.Errorf("sandbox: add key %s: serial number already held by key %s", id, other.id)
		}
	}
	if k, ok := s.keys[id]; ok {
		k.serial = serial
		return nil
	}
	s.nextKey++
	s.keys[id] = &key{id: id, serial: serial, seq: s.nextKey}
	return nil
}

func (s *Server) keyBySerial(serial string) *key {
	for _, k := range s.keys {
		if k.serial == serial {
			return k
		}
	}
	return nil
}

// Keys returns every key, in the order they were added.
func (s *Server) Keys() []KeyView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KeyView, len(s.keys))
	for _, k := range s.keys {
		out[k.seq-1] = KeyView{ID: k.id, SerialNumber: k.serial}
	}
	return out
}

// Accesses returns every access, cancelled ones included, in creation order.
func (s *Server) Accesses() []AccessView {
	return sandboxkit.Views(&s.mu, &s.accesses, s.view)
}

// Access returns one access by id.
func (s *Server) Access(id string) (AccessView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.access(id); a != nil {
		return s.view(a), true
	}
	return AccessView{}, false
}

// AddAccess plants an access as if in.Creator had made it, bypassing the API
// (and its rate limits and request log).
func (s *Server) AddAccess(in AccessInput) (AccessView, error) {
	loc, zone := time.UTC, "UTC"
	if in.TimeZone != "" {
		var ok bool
		if loc, ok = loadZone(in.TimeZone); !ok {
			return AccessView{}, fmt.Errorf("sandbox: add access: time zone %q unknown", in.TimeZone)
		}
		zone = in.TimeZone
	}
	if in.Start.IsZero() {
		return AccessView{}, errors.New("sandbox: add access: start must be set")
	}
	if !in.End.IsZero() && !in.End.After(in.Start) {
		return AccessView{}, errors.New("sandbox: add access: end must be after start")
	}
	ci := createInput{
		keyField: "key.id", keyValue: in.KeyID, visitor: in.Visitor, zone: zone, loc: loc,
		start: endpoint{set: true, at: in.Start}, end: endpoint{set: !in.End.IsZero(), at: in.End},
	}
	ci.start.fill(loc)
	ci.end.fill(loc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.Code != "" && s.codeInUse(in.Code) {
		return AccessView{}, errors.New("sandbox: add access: code already in use by an access not cancelled")
	}
	a, ferr := s.createAccess(in.Creator, ci)
	if ferr != nil {
		return AccessView{}, fmt.Errorf("sandbox: add access: %w", ferr)
	}
	if in.Code != "" {
		a.code = in.Code
	}
	return s.view(a), nil
}

// CancelAccess cancels an access as user by would; it returns ErrNotFound
// for an unknown or already cancelled access.
func (s *Server) CancelAccess(id, by string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.access(id)
	if a == nil || a.cancelled {
		return fmt.Errorf("sandbox: cancel access %q: %w", id, ErrNotFound)
	}
	a.cancelled, a.cancelledAt, a.cancelledBy = true, s.Now(), by
	return nil
}

// ---- state, caller holds s.mu -------------------------------------------------

func (s *Server) access(id string) *access {
	for _, a := range s.accesses {
		if a.id == id {
			return a
		}
	}
	return nil
}

// createAccess stores a checked create for user (caller holds s.mu). It
// fails with 422 when the key does not exist.
func (s *Server) createAccess(user string, in createInput) (*access, *fieldError) {
	var k *key
	if in.keyField == "key.serialNumber" {
		k = s.keyBySerial(in.keyValue)
	} else {
		k = s.keys[in.keyValue]
	}
	if k == nil {
		what := map[string]string{"key.id": "id", "key.serialNumber": "serial number"}[in.keyField]
		return nil, &fieldError{status: http.StatusUnprocessableEntity, field: in.keyField, msg: "no key in the box has this " + what}
	}
	zone := in.zone
	if zone == "" {
		zone = "UTC"
	}
	in.visitor = sandboxkit.Cut(in.visitor, s.opts.VisitorNameLimit)
	s.nextAccess++
	a := &access{
		id: fmt.Sprintf("acc_%d", s.nextAccess), keyID: k.id,
		startDate: in.start.date, startTime: in.start.clock, endDate: in.end.date, endTime: in.end.clock,
		zone: zone, start: in.start.at, end: in.end.at,
		visitor: in.visitor, user: in.user, code: s.newCode(), creator: user,
		locale: in.locale, silent: in.silent, reminder: in.reminder, createdAt: s.Now(),
	}
	s.accesses = append(s.accesses, a)
	return a, nil
}

// newCode returns a fresh CodeDigits-digit PIN from crypto/rand that no
// access not cancelled holds.
func (s *Server) newCode() string {
	limit := big.NewInt(1)
	for range CodeDigits {
		limit.Mul(limit, big.NewInt(10))
	}
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			panic(fmt.Sprintf("sandbox: crypto/rand: %v", err))
		}
		code := fmt.Sprintf("%0*d", CodeDigits, n)
		if !s.codeInUse(code) {
			return code
		}
	}
}

func (s *Server) codeInUse(code string) bool {
	for _, a := range s.accesses {
		if !a.cancelled && a.code == code {
			return true
		}
	}
	return false
}

func (s *Server) status(a *access) string {
	now := s.Now()
	switch {
	case a.cancelled:
		return StatusCancelled
	case now.Before(a.start):
		return StatusUpcoming
	case !a.end.IsZero() && !now.Before(a.end):
		return StatusEnded
	}
	return StatusActive
}

func (s *Server) view(a *access) AccessView {
	return AccessView{
		ID: a.id, KeyID: a.keyID, KeySerialNumber: s.keys[a.keyID].serial,
		StartDate: a.startDate, StartTime: a.startTime, EndDate: a.endDate, EndTime: a.endTime,
		TimeZone: a.zone, Start: a.start.UTC(), End: utcOrZero(a.end),
		Visitor: a.visitor, User: a.user, Code: a.code, Creator: a.creator,
		Locale: a.locale, Silent: a.silent, ReturnReminder: a.reminder, CreatedAt: a.createdAt,
		Cancelled: a.cancelled, CancelledAt: a.cancelledAt, CancelledBy: a.cancelledBy, Status: s.status(a),
	}
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// accessKeyJSON is a key as the API shows it.
type accessKeyJSON struct {
	ID           string `json:"id"`
	SerialNumber string `json:"serialNumber,omitempty"`
}

// accessJSON is an access as the API returns it (201 to a create).
type accessJSON struct {
	ID             string        `json:"id"`
	Code           string        `json:"code"`
	Key            accessKeyJSON `json:"key"`
	StartDate      string        `json:"startDate"`
	StartTime      string        `json:"startTime"`
	EndDate        string        `json:"endDate,omitempty"`
	EndTime        string        `json:"endTime,omitempty"`
	TimeZone       string        `json:"timeZone"`
	VisitorName    string        `json:"visitorName,omitempty"`
	Locale         string        `json:"locale,omitempty"`
	Silent         bool          `json:"silent"`
	ReturnReminder bool          `json:"returnReminder"`
	Status         string        `json:"status"`
}

func (s *Server) accessJSON(a *access) accessJSON {
	return accessJSON{
		ID: a.id, Code: a.code, Key: accessKeyJSON{ID: a.keyID, SerialNumber: s.keys[a.keyID].serial},
		StartDate: a.startDate, StartTime: a.startTime, EndDate: a.endDate, EndTime: a.endTime,
		TimeZone: a.zone, VisitorName: a.visitor, Locale: a.locale,
		Silent: a.silent, ReturnReminder: a.reminder, Status: s.status(a),
	}
}
