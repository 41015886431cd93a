package sandbox

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/webhook"
)

// DateLayout is the layout of every date the sandbox accepts and returns
// (the GraphQL Date scalar, Stay.Arrival/Departure, the admin API).
const DateLayout = "2006-01-02"

// Error codes, sent in a GraphQL error's extensions.code and carried by Error.
const (
	// CodeNotFound means the room stay or room access key does not exist, is
	// deleted, or (for addRoomAccessKey) belongs to a cancelled reservation;
	// also removeRoomAccessKey on a stay that does not hold that key.
	CodeNotFound = "NOT_FOUND"
	// CodeForbidden means the room access key was not created by the calling integration.
	CodeForbidden = "FORBIDDEN"
	// CodeConflict means the room stay already holds a different key, or a key
	// still assigned to a room stay is being deleted.
	CodeConflict = "CONFLICT"
	// CodeBadUserInput means an argument breaks a rule of the API document (PIN format,
	// exactly one key type, page size, cursor, date format).
	CodeBadUserInput = "BAD_USER_INPUT"
	// CodeRateLimited means the token exceeded its per-second rate or daily cap (HTTP 429).
	CodeRateLimited = "RATE_LIMITED"
)

// Cleanup delays from the API document: "3RPMS will revoke and delete Room Access Keys
// 2 days after room stay departure, or 2 days of not being assigned to any room."
const (
	// CleanupAfterDeparture is how long after a stay's departure date (at
	// 00:00 of the business clock's location) its key is revoked, and deleted
	// if it is then assigned to no other stay.
	CleanupAfterDeparture = 48 * time.Hour
	// CleanupUnassigned is how long a key may stay assigned to no room stay
	// (counted from its creation or from losing its last assignment) before
	// it is deleted.
	CleanupUnassigned = 48 * time.Hour
)

// Error is a rule violation with one of the Code… constants. GraphQL
// resolvers turn it into an error entry; the admin API maps it to an HTTP
// status. Its message never contains a PIN, compartment or qrData value.
type Error struct {
	Code    string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// KeyType is the GraphQL type name of a room access key.
type KeyType string

// The room access key types of the 3RPMS Room Access Key API.
const (
	// KeyTypePin opens the room door directly ("RoomAccessPin").
	KeyTypePin KeyType = "RoomAccessPin"
	// KeyTypeKeyStorage opens a key storage holding the physical key ("RoomAccessKeyStorage").
	KeyTypeKeyStorage KeyType = "RoomAccessKeyStorage"
	// KeyTypeQR is data for a QR code that opens the door ("RoomAccessQR").
	KeyTypeQR KeyType = "RoomAccessQR"
)

// Key is the content of a room access key, as InjectKey plants it. PIN is
// used by KeyTypePin and KeyTypeKeyStorage, Compartment by KeyTypeKeyStorage,
// QRData by KeyTypeQR; the same rules as createRoomAccessKey apply.
type Key struct {
	Type        KeyType `json:"type"`
	PIN         string  `json:"pin,omitempty"`
	Compartment string  `json:"compartment,omitempty"`
	QRData      string  `json:"qr_data,omitempty"`
}

// Stay describes a room stay to add. Arrival and Departure are dates in
// DateLayout ("2006-01-02"); Departure must not be before Arrival. An empty ID
// becomes "rs_<n>"; an empty ReservationID starts a new reservation
// "res_<n>"; an empty ReservationCode takes the reservation's existing code or
// a generated one. RoomID must name a room added with AddRoom.
type Stay struct {
	ID              string `json:"id,omitempty"`
	RoomID          string `json:"room_id"`
	Arrival         string `json:"arrival"`
	Departure       string `json:"departure"`
	ReservationID   string `json:"reservation_id,omitempty"`
	ReservationCode string `json:"reservation_code,omitempty"`
}

// StayView is a snapshot of one room stay, hidden ones included.
type StayView struct {
	ID              string `json:"id"`
	RoomID          string `json:"room_id"`
	RoomName        string `json:"room_name"`
	Arrival         string `json:"arrival"`
	Departure       string `json:"departure"`
	ReservationID   string `json:"reservation_id"`
	ReservationCode string `json:"reservation_code"`
	// Cancelled reports that the stay's reservation is cancelled.
	Cancelled bool `json:"cancelled"`
	// Deleted reports that the stay was deleted (DeleteStay).
	Deleted bool `json:"deleted"`
	// KeyID is the room access key the stay holds, or "".
	KeyID string `json:"key_id,omitempty"`
}

// KeyView is a snapshot of one room access key, deleted ones included. It
// holds the secrets: it is for tests and the sandbox's operator only.
type KeyView struct {
	ID          string  `json:"id"`
	Type        KeyType `json:"type"`
	Owner       string  `json:"owner"`
	PIN         string  `json:"pin,omitempty"`
	Compartment string  `json:"compartment,omitempty"`
	QRData      string  `json:"qr_data,omitempty"`
	// StayIDs are the room stays the key is assigned to, in stay order.
	StayIDs []string `json:"stay_ids"`
	// CreatedAt is the business-clock time of creation.
	CreatedAt time.Time `json:"created_at"`
	Deleted   bool      `json:"deleted"`
	// DeletedBy is "integration" (deleteRoomAccessKey) or "cleanup" (the
	// API document's 2-day rule) once Deleted.
	DeletedBy string `json:"deleted_by,omitempty"`
}

// Room is a physical room (3RPMS room_setup).
type Room struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type stay struct {
	id                 string
	roomID             string
	arrival, departure time.Time // UTC midnight
	reservationID      string
	keyID              string
	deleted            bool
}

type reservation struct {
	id, code  string
	cancelled bool
}

type key struct {
	Key
	id              string
	seq             int
	owner           string
	createdAt       time.Time
	unassignedSince time.Time
	deleted         bool
	deletedBy       string
}

// parseDate parses a DateLayout date into UTC midnight.
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be a date %s", "YYYY-MM-DD")
	}
	return t, nil
}

func fmtDate(t time.Time) string { return t.Format(DateLayout) }

// today is the business clock's calendar date as UTC midnight.
func (s *Server) today() time.Time {
	y, m, d := s.Now().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ---- validation -----------------------------------------------------------

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

const (
	msgPin         = "pin: must be 1 to 10 alphanumeric characters, not mixed upper and lower case"
	msgCompartment = "compartment: must be 1 to 10 alphanumeric characters"
	msgQRData      = "qrData: must be 1 to 512 characters"
	msgOneOf       = "input: exactly one of roomAccessPin, roomAccessKeyStorage, roomAccessQR must be set"
)

func validPin(pin string) bool {
	if len(pin) < 1 || len(pin) > 10 {
		return false
	}
	var upper, lower bool
	for _, r := range pin {
		if !isAlnum(r) {
			return false
		}
		upper = upper || r >= 'A' && r <= 'Z'
		lower = lower || r >= 'a' && r <= 'z'
	}
	return !(upper && lower)
}

func validCompartment(c string) bool {
	if len(c) < 1 || len(c) > 10 {
		return false
	}
	return strings.IndexFunc(c, func(r rune) bool { return !isAlnum(r) }) < 0
}

func validQRData(q string) bool {
	n := utf8.RuneCountInString(q)
	return n >= 1 && n <= 512
}

// validateKey checks k against the API document's rules; the error names the field
// and the rule, never the value.
func validateKey(k Key) *Error {
	switch k.Type {
	case KeyTypePin:
		if !validPin(k.PIN) {
			return errorf(CodeBadUserInput, msgPin)
		}
	case KeyTypeKeyStorage:
		if !validPin(k.PIN) {
			return errorf(CodeBadUserInput, msgPin)
		}
		if !validCompartment(k.Compartment) {
			return errorf(CodeBadUserInput, msgCompartment)
		}
	case KeyTypeQR:
		if !validQRData(k.QRData) {
			return errorf(CodeBadUserInput, msgQRData)
		}
	default:
		return errorf(CodeBadUserInput, "type: must be %s, %s or %s", KeyTypePin, KeyTypeKeyStorage, KeyTypeQR)
	}
	return nil
}

// ---- lookups (caller holds s.mu) -----------------------------------------

// liveStay returns a stay that exists and is not deleted.
func (s *Server) liveStay(id string) (*stay, *Error) {
	st, ok := s.stays[id]
	if !ok || st.deleted {
		return nil, errorf(CodeNotFound, "roomStayId: room stay %s not found", id)
	}
	return st, nil
}

// visible reports whether queries return the stay.
func (s *Server) visible(st *stay) bool {
	return !st.deleted && !s.reservations[st.reservationID].cancelled
}

// ownKey returns a live key created by caller.
func (s *Server) ownKey(caller, id string) (*key, *Error) {
	k, ok := s.keys[id]
	if !ok || k.deleted {
		return nil, errorf(CodeNotFound, "roomAccessKeyId: room access key %s not found", id)
	}
	if k.owner != caller {
		return nil, errorf(CodeForbidden, "roomAccessKeyId: room access key %s was not created by this integration", id)
	}
	return k, nil
}

// assignedStays returns the live stays holding key id, ordered by arrival, then id.
func (s *Server) assignedStays(id string) []*stay {
	var out []*stay
	for _, st := range s.stays {
		if !st.deleted && st.keyID == id {
			out = append(out, st)
		}
	}
	sortStays(out)
	return out
}

// sortedStays returns every stay ordered by arrival, then id: kept
// between calls until a stay is added or its dates change (the caller
// must not change the slice).
func (s *Server) sortedStays() []*stay {
	if s.sorted == nil {
		s.sorted = make([]*stay, 0, len(s.stays))
		for _, st := range s.stays {
			s.sorted = append(s.sorted, st)
		}
		sortStays(s.sorted)
	}
	return s.sorted
}

func sortStays(sts []*stay) {
	slices.SortFunc(sts, func(a, b *stay) int {
		if c := a.arrival.Compare(b.arrival); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
}

// ---- rules behind the mutations (caller holds s.mu) -----------------------

func (s *Server) createKey(caller string, k Key) (*key, *Error) {
	if err := validateKey(k); err != nil {
		return nil, err
	}
	s.nextKey++
	now := s.Now()
	nk := &key{
		Key:             k,
		id:              "rak_" + strconv.Itoa(s.nextKey),
		seq:             s.nextKey,
		owner:           caller,
		createdAt:       now,
		unassignedSince: now,
	}
	s.keys[nk.id] = nk
	s.recheck()
	return nk, nil
}

func (s *Server) addKey(caller, stayID, keyID string) (*stay, *Error) {
	k, err := s.ownKey(caller, keyID)
	if err != nil {
		return nil, err
	}
	st, err := s.liveStay(stayID)
	if err != nil {
		return nil, err
	}
	if s.reservations[st.reservationID].cancelled {
		return nil, errorf(CodeNotFound, "roomStayId: room stay %s not found (reservation cancelled)", stayID)
	}
	switch st.keyID {
	case k.id:
		if s.refuseReadd {
			return nil, errorf(CodeConflict, "roomStayId: room stay %s already holds room access key %s", stayID, k.id)
		}
		return st, nil // idempotent re-add
	case "":
		s.assign(st, k.id)
		return st, nil
	default:
		return nil, errorf(CodeConflict, "roomStayId: room stay %s already holds another room access key; remove it first", stayID)
	}
}

func (s *Server) removeKey(caller, stayID, keyID string) (*stay, *Error) {
	k, err := s.ownKey(caller, keyID)
	if err != nil {
		return nil, err
	}
	st, err := s.liveStay(stayID)
	if err != nil {
		return nil, err
	}
	if st.keyID != k.id {
		return nil, errorf(CodeNotFound, "room stay %s does not hold room access key %s", stayID, keyID)
	}
	s.unassign(st)
	return st, nil
}

func (s *Server) deleteKey(caller, keyID string) *Error {
	k, err := s.ownKey(caller, keyID)
	if err != nil {
		return err
	}
	if n := s.holders[k.id]; n > 0 {
		return errorf(CodeConflict, "roomAccessKeyId: room access key %s is still assigned to %d room stay(s); remove it first", keyID, n)
	}
	k.deleted, k.deletedBy = true, "integration"
	s.emitKeyDeleted(k.id)
	return nil
}

// assign gives st key id.
func (s *Server) assign(st *stay, id string) {
	st.keyID = id
	s.holders[id]++
	s.recheck()
}

// unassign drops st's key and starts the key's unassigned period if st was
// its last stay.
func (s *Server) unassign(st *stay) {
	id := st.keyID
	if id == "" {
		return
	}
	st.keyID = ""
	if s.holders[id]--; s.holders[id] <= 0 {
		delete(s.holders, id)
		s.keys[id].unassignedSince = s.Now()
	}
	s.recheck()
}

// recheck makes the next lock run the cleanup rule: a key was created,
// assigned or released, or a stay's dates moved, so work may fall due
// before the time the last cleanup found. Caller holds s.mu.
func (s *Server) recheck() { s.cleanupAt = time.Time{} }

// cleanup applies the API document's rule against the business clock: keys are
// revoked from stays whose departure is CleanupAfterDeparture ago (and then
// deleted unless still assigned elsewhere), and keys assigned to no stay for
// CleanupUnassigned are deleted. It then notes when the next of what it
// saw falls due (cleanupAt), so the locks before then skip the scan of
// every stay and key. Caller holds s.mu.
func (s *Server) cleanup() {
	today := s.today()
	var due []*stay
	for _, st := range s.stays {
		if !st.deleted && st.keyID != "" && !today.Before(st.departure.Add(CleanupAfterDeparture)) {
			due = append(due, st)
		}
	}
	sortStays(due)
	for _, st := range due {
		k := s.keys[st.keyID]
		s.unassign(st)
		if s.holders[k.id] == 0 {
			k.deleted, k.deletedBy = true, "cleanup"
			s.hooks.emit(webhook.KeyDeleted, k.id)
		}
	}
	now := s.Now()
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, st := range s.stays {
		if !st.deleted && st.keyID != "" {
			// Due when the business clock's date reaches the day: at
			// midnight of it in the clock's zone.
			d := st.departure.Add(CleanupAfterDeparture)
			soonest(time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, now.Location()))
		}
	}
	for _, k := range s.keys {
		switch {
		case k.deleted || s.holders[k.id] > 0:
		case now.Sub(k.unassignedSince) >= CleanupUnassigned:
			k.deleted, k.deletedBy = true, "cleanup"
			s.hooks.emit(webhook.KeyDeleted, k.id)
		default:
			soonest(k.unassignedSince.Add(CleanupUnassigned))
		}
	}
	if next.IsZero() {
		next = farFuture
	}
	s.cleanupAt = next
}

// farFuture is cleanupAt when nothing can fall due until something changes.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// CleanupUnassignedNow runs 3RPMS's cleanup of unassigned keys at once, as
// if each had been assigned to no room stay for CleanupUnassigned: every key
// no live stay holds is deleted. It returns the ids it deleted.
func (s *Server) CleanupUnassignedNow() []string {
	s.lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.keys {
		if !k.deleted && s.holders[k.id] == 0 {
			k.deleted, k.deletedBy = true, "cleanup"
			s.hooks.emit(webhook.KeyDeleted, k.id)
			out = append(out, k.id)
		}
	}
	slices.Sort(out)
	return out
}

// ---- Go API ----------------------------------------------------------------

// lock takes the state lock and applies the cleanup rule; callers defer s.mu.Unlock.
func (s *Server) lock() {
	s.mu.Lock()
	if s.cleanupAt.IsZero() || !s.Now().Before(s.cleanupAt) {
		s.cleanup()
	}
}

// cleaning is s's state lock as a sync.Locker whose Lock is s.lock, for
// the kit's helpers that take the lock themselves (sandboxkit.Lookup).
type cleaning struct{ s *Server }

func (c cleaning) Lock()   { c.s.lock() }
func (c cleaning) Unlock() { c.s.mu.Unlock() }

// SetNow sets the business clock and applies the cleanup rule. The rate
// limiter's clock (Options.RateNow) is not affected.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.SetNow(t)
	s.cleanup()
}

// Advance moves the business clock by d and applies the cleanup rule.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.Advance(d)
	s.cleanup()
}

// AddRoom adds a room, or renames it if id exists.
func (s *Server) AddRoom(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addRoom(id, name)
}

func (s *Server) addRoom(id, name string) {
	if r, ok := s.rooms[id]; ok {
		r.Name = name
		return
	}
	s.rooms[id] = &Room{ID: id, Name: name}
	s.roomOrder = append(s.roomOrder, id)
}

// Rooms returns every room in the order they were added.
func (s *Server) Rooms() []Room {
	return sandboxkit.Views(&s.mu, &s.roomOrder, func(id string) Room { return *s.rooms[id] })
}

// AddStay adds a room stay (see Stay for defaults). It fails with an *Error
// (CodeBadUserInput, CodeNotFound or CodeConflict) wrapped with context.
func (s *Server) AddStay(st Stay) error {
	s.lock()
	defer s.mu.Unlock()
	added, err := s.addStay(st)
	if err == nil {
		s.hooks.emit(webhook.StayCreated, added.id)
	}
	return err
}

func (s *Server) addStay(in Stay) (*stay, error) {
	wrap := func(err *Error) error { return fmt.Errorf("sandbox: add stay %q: %w", in.ID, err) }
	if in.ID != "" {
		if _, ok := s.stays[in.ID]; ok {
			return nil, wrap(errorf(CodeConflict, "id: room stay %s already exists", in.ID))
		}
	}
	if _, ok := s.rooms[in.RoomID]; !ok {
		return nil, wrap(errorf(CodeNotFound, "room_id: room %q not found", in.RoomID))
	}
	arr, dep, derr := checkDates(in.Arrival, in.Departure)
	if derr != nil {
		return nil, wrap(derr)
	}
	res := s.reservations[in.ReservationID]
	switch {
	case res == nil:
		s.nextRes++
		if in.ReservationID == "" {
			for s.reservations["res_"+strconv.Itoa(s.nextRes)] != nil {
				s.nextRes++
			}
			in.ReservationID = "res_" + strconv.Itoa(s.nextRes)
		}
		if in.ReservationCode == "" {
			in.ReservationCode = fmt.Sprintf("3R%06d", 100000+s.nextRes)
		}
		res = &reservation{id: in.ReservationID, code: in.ReservationCode}
		s.reservations[res.id] = res
	case in.ReservationCode != "" && in.ReservationCode != res.code:
		return nil, wrap(errorf(CodeConflict, "reservation_code: reservation %s has code %s, not %s", res.id, res.code, in.ReservationCode))
	}
	if in.ID == "" {
		for {
			s.nextStay++
			in.ID = "rs_" + strconv.Itoa(s.nextStay)
			if _, ok := s.stays[in.ID]; !ok {
				break
			}
		}
	}
	st := &stay{id: in.ID, roomID: in.RoomID, arrival: arr, departure: dep, reservationID: res.id}
	s.stays[st.id] = st
	s.sorted = nil
	return st, nil
}

func checkDates(arrival, departure string) (arr, dep time.Time, err *Error) {
	arr, perr := parseDate(arrival)
	if perr != nil {
		return arr, dep, errorf(CodeBadUserInput, "arrival: %v", perr)
	}
	dep, perr = parseDate(departure)
	if perr != nil {
		return arr, dep, errorf(CodeBadUserInput, "departure: %v", perr)
	}
	if dep.Before(arr) {
		return arr, dep, errorf(CodeBadUserInput, "departure: must not be before arrival")
	}
	return arr, dep, nil
}

// ChangeDates sets a stay's arrival and departure (DateLayout dates).
func (s *Server) ChangeDates(stayID, arrival, departure string) error {
	s.lock()
	defer s.mu.Unlock()
	return s.changeDates(stayID, arrival, departure)
}

func (s *Server) changeDates(stayID, arrival, departure string) error {
	st, err := s.liveStay(stayID)
	if err != nil {
		return fmt.Errorf("sandbox: change dates of stay %s: %w", stayID, err)
	}
	arr, dep, derr := checkDates(arrival, departure)
	if derr != nil {
		return fmt.Errorf("sandbox: change dates of stay %s: %w", stayID, derr)
	}
	st.arrival, st.departure = arr, dep
	s.sorted = nil
	s.recheck()
	s.hooks.emit(webhook.StayUpdated, st.id)
	return nil
}

// MoveStay moves a stay to another room; its key assignment is kept.
func (s *Server) MoveStay(stayID, roomID string) error {
	s.lock()
	defer s.mu.Unlock()
	return s.moveStay(stayID, roomID)
}

func (s *Server) moveStay(stayID, roomID string) error {
	st, err := s.liveStay(stayID)
	if err != nil {
		return fmt.Errorf("sandbox: move stay %s: %w", stayID, err)
	}
	if _, ok := s.rooms[roomID]; !ok {
		return fmt.Errorf("sandbox: move stay %s: %w", stayID, errorf(CodeNotFound, "room_id: room %q not found", roomID))
	}
	st.roomID = roomID
	s.hooks.emit(webhook.StayUpdated, st.id)
	return nil
}

// CancelReservation cancels a reservation: its stays disappear from queries
// and addRoomAccessKey on them fails with NOT_FOUND, but assignments are kept
// and removeRoomAccessKey still works.
func (s *Server) CancelReservation(reservationID string) error {
	return s.setCancelled(reservationID, true)
}

// ReactivateReservation undoes CancelReservation.
func (s *Server) ReactivateReservation(reservationID string) error {
	return s.setCancelled(reservationID, false)
}

func (s *Server) setCancelled(id string, cancelled bool) error {
	s.lock()
	defer s.mu.Unlock()
	res, ok := s.reservations[id]
	if !ok {
		verb := map[bool]string{true: "cancel", false: "reactivate"}[cancelled]
		return fmt.Errorf("sandbox: %s reservation %s: %w", verb, id, errorf(CodeNotFound, "reservation %s not found", id))
	}
	res.cancelled = cancelled
	s.hooks.emit(webhook.ReservationUpdated, res.id)
	return nil
}

// DeleteStay deletes a stay; the key it held loses that assignment.
func (s *Server) DeleteStay(stayID string) error {
	s.lock()
	defer s.mu.Unlock()
	st, err := s.liveStay(stayID)
	if err != nil {
		return fmt.Errorf("sandbox: delete stay %s: %w", stayID, err)
	}
	s.unassign(st)
	st.deleted = true
	s.hooks.emit(webhook.StayDeleted, st.id)
	return nil
}

// DeleteKey deletes a key as the hotel's staff would in 3RPMS: it is taken
// off every stay that holds it, whoever created it.
func (s *Server) DeleteKey(keyID string) error {
	s.lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	if !ok || k.deleted {
		return fmt.Errorf("sandbox: delete key %s: %w", keyID, errorf(CodeNotFound, "room access key %s not found", keyID))
	}
	for _, st := range s.assignedStays(k.id) {
		s.unassign(st)
	}
	k.deleted, k.deletedBy = true, "staff"
	s.hooks.emit(webhook.KeyDeleted, k.id)
	return nil
}

// StaffAssignKey assigns a key to a stay as the hotel's staff would in
// 3RPMS, whoever created the key: the stay must be live and hold no other
// key (re-assigning the key it holds changes nothing); the key may stay on
// other stays too. It sends no webhook event (the API document names none
// for a key's assignment).
func (s *Server) StaffAssignKey(stayID, keyID string) error {
	s.lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	if !ok || k.deleted {
		return fmt.Errorf("sandbox: staff assign key %s: %w", keyID, errorf(CodeNotFound, "room access key %s not found", keyID))
	}
	st, err := s.liveStay(stayID)
	if err != nil {
		return fmt.Errorf("sandbox: staff assign key %s: %w", keyID, err)
	}
	switch st.keyID {
	case keyID:
		return nil
	case "":
		s.assign(st, keyID)
		return nil
	}
	return fmt.Errorf("sandbox: staff assign key %s: %w", keyID, errorf(CodeConflict, "room stay %s already holds another room access key", stayID))
}

// StaffRemoveKey takes whatever key a stay holds off it, as the hotel's
// staff would in 3RPMS; the key itself is kept (3RPMS deletes it once it
// has been assigned nowhere for CleanupUnassigned).
func (s *Server) StaffRemoveKey(stayID string) error {
	s.lock()
	defer s.mu.Unlock()
	st, err := s.liveStay(stayID)
	if err != nil {
		return fmt.Errorf("sandbox: staff remove key: %w", err)
	}
	s.unassign(st)
	return nil
}

// InjectKey plants a key created by integration (another one, or ours) and
// assigns it to the given stays, bypassing the GraphQL API. Stays must exist
// and hold no other key; cancelled stays are allowed.
func (s *Server) InjectKey(integration string, k Key, stayIDs ...string) (string, error) {
	s.lock()
	defer s.mu.Unlock()
	return s.injectKey(integration, k, stayIDs...)
}

func (s *Server) injectKey(integration string, k Key, stayIDs ...string) (string, error) {
	var targets []*stay
	for _, id := range slices.Compact(slices.Sorted(slices.Values(stayIDs))) {
		st, err := s.liveStay(id)
		if err != nil {
			return "", fmt.Errorf("sandbox: inject key: %w", err)
		}
		if st.keyID != "" {
			return "", fmt.Errorf("sandbox: inject key: %w", errorf(CodeConflict, "room stay %s already holds a room access key", id))
		}
		targets = append(targets, st)
	}
	nk, err := s.createKey(integration, k)
	if err != nil {
		return "", fmt.Errorf("sandbox: inject key for %s: %w", integration, err)
	}
	for _, st := range targets {
		s.assign(st, nk.id)
	}
	return nk.id, nil
}

// Keys returns every key ever created, deleted ones included, in creation order.
func (s *Server) Keys() []KeyView {
	s.lock()
	defer s.mu.Unlock()
	ks := make([]*key, 0, len(s.keys))
	for _, k := range s.keys {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b *key) int { return a.seq - b.seq })
	held := s.stayIDsByKey()
	out := make([]KeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyView(k, held[k.id]))
	}
	return out
}

// Key returns one key by id, deleted or not.
func (s *Server) Key(id string) (KeyView, bool) {
	return sandboxkit.Lookup(cleaning{s}, &s.keys, id, func(k *key) KeyView { return keyView(k, s.stayIDsByKey()[id]) })
}

// stayIDsByKey maps each key id to the ids of the stays not deleted that
// hold it, in stay order. Caller holds s.mu.
func (s *Server) stayIDsByKey() map[string][]string {
	held := map[string][]string{}
	for _, st := range s.sortedStays() {
		if !st.deleted && st.keyID != "" {
			held[st.keyID] = append(held[st.keyID], st.id)
		}
	}
	return held
}

// keyView is k as Keys and Key show it, with the stays that hold it.
func keyView(k *key, stays []string) KeyView {
	return KeyView{
		ID: k.id, Type: k.Type, Owner: k.owner, PIN: k.PIN, Compartment: k.Compartment, QRData: k.QRData,
		StayIDs: append([]string{}, stays...), CreatedAt: k.createdAt, Deleted: k.deleted, DeletedBy: k.deletedBy,
	}
}

// Stays returns every stay, cancelled and deleted ones included, ordered by
// arrival, then id.
func (s *Server) Stays() []StayView {
	s.lock()
	defer s.mu.Unlock()
	var out []StayView
	for _, st := range s.sortedStays() {
		out = append(out, s.stayView(st))
	}
	return out
}

// Stay returns one stay by id.
func (s *Server) Stay(id string) (StayView, bool) {
	return sandboxkit.Lookup(cleaning{s}, &s.stays, id, s.stayView)
}

func (s *Server) stayView(st *stay) StayView {
	res := s.reservations[st.reservationID]
	return StayView{
		ID: st.id, RoomID: st.roomID, RoomName: s.rooms[st.roomID].Name,
		Arrival: fmtDate(st.arrival), Departure: fmtDate(st.departure),
		ReservationID: res.id, ReservationCode: res.code,
		Cancelled: res.cancelled, Deleted: st.deleted, KeyID: st.keyID,
	}
}

// errCode extracts the code of an *Error in err's chain, or "".
func errCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
