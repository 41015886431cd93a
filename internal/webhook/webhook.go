// Package webhook is the 3RPMS webhook contract keysync assumes, in one
// place for the receiver (keysync serve) and the sender (the 3RPMS
// sandbox).
//
// The 3RPMS Room Access Key API names the events (room_stay.created,
// room_stay.updated, room_stay.deleted, reservation.updated,
// room_access_key.deleted) but neither their payload nor how deliveries are
// signed. keysync assumes:
//   - the body is JSON {"event": "<name>", "data": {"id": "<id>"}}: a room
//     stay id for room_stay.*, a reservation id for reservation.updated, a
//     room access key id for room_access_key.deleted; unknown fields are
//     ignored;
//   - the header X-Webhook-Signature is "sha256=" and the hex HMAC-SHA256 of
//     the raw body under the property's webhook secret.
//
// When a real 3RPMS differs, deliveries are refused (401) or ignored and
// nothing is lost: the nightly full run reads every stay anyway.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SignatureHeader carries a delivery's signature.
const SignatureHeader = "X-Webhook-Signature"

// MaxBody is the largest delivery accepted; larger ones get 413.
const MaxBody = 1 << 20

// The events keysync acts on.
const (
	StayCreated        = "room_stay.created"
	StayUpdated        = "room_stay.updated"
	StayDeleted        = "room_stay.deleted"
	ReservationUpdated = "reservation.updated"
	KeyDeleted         = "room_access_key.deleted"
)

// Event is one delivery's body.
type Event struct {
	Event string `json:"event"`
	Data  struct {
		ID string `json:"id"`
	} `json:"data"`
}

// New returns the event name about the object id.
func New(name, id string) Event {
	e := Event{Event: name}
	e.Data.ID = id
	return e
}

// Known reports whether keysync acts on the event.
func (e Event) Known() bool {
	switch e.Event {
	case StayCreated, StayUpdated, StayDeleted, ReservationUpdated, KeyDeleted:
		return true
	}
	return false
}

// Sign returns the X-Webhook-Signature value for body under secret.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrSignature means a delivery's signature is missing or wrong.
var ErrSignature = errors.New("webhook signature missing or wrong")

// Verify checks a delivery's signature header against body, in constant
// time.
func Verify(body []byte, header, secret string) error {
	got, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return ErrSignature
	}
	want := Sign(body, secret)[len("sha256="):]
	if !hmac.Equal([]byte(strings.ToLower(got)), []byte(want)) {
		return ErrSignature
	}
	return nil
}

// Parse decodes a delivery's body. An event keysync does not know is not an
// error (Known says so); a body that is not the assumed shape is.
func Parse(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("webhook body is not JSON {event, data: {id}}: %w", err)
	}
	if e.Event == "" {
		return e, errors.New(`webhook body has no "event"`)
	}
	if e.Known() && e.Data.ID == "" {
		return e, fmt.Errorf("webhook %s has no data.id", e.Event)
	}
	return e, nil
}
