package reconcile_test

import (
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"time"
	_ "time/tzdata" // the zone tests run without system zoneinfo

	"github.com/keysync/keysync/reconcile"
)

// lj is Europe/Ljubljana, the test property's zone.
var lj = mustLoad("Europe/Ljubljana")

// mustLoad loads an IANA zone or panics; the embedded tzdata makes it safe.
func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// testProperty is the property the planner tests use: Ljubljana, check-in
// 15:00, check-out 11:00, 2 h grace on each side, a 7-day window, six-digit
// PINs. r101–r205 open by PIN, r301 by QR, r302 by key box; r999 is unmapped.
func testProperty() *reconcile.Property {
	return &reconcile.Property{
		Name:        "bled",
		Location:    lj,
		CheckIn:     reconcile.TimeOfDay{Hour: 15},
		CheckOut:    reconcile.TimeOfDay{Hour: 11},
		GraceBefore: 2 * time.Hour,
		GraceAfter:  2 * time.Hour,
		WindowDays:  7,
		Rooms: map[string]reconcile.Method{
			"r101": reconcile.MethodPIN,
			"r102": reconcile.MethodPIN,
			"r204": reconcile.MethodPIN,
			"r205": reconcile.MethodPIN,
			"r301": reconcile.MethodQR,
			"r302": reconcile.MethodKeyStorage,
		},
		PIN: reconcile.DefaultPINPolicy,
	}
}

// date parses YYYY-MM-DD or panics.
func date(s string) reconcile.Date {
	d, err := reconcile.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// ljAt is the instant of a Ljubljana wall-clock time.
func ljAt(day string, hour, min int) time.Time {
	return date(day).At(reconcile.TimeOfDay{Hour: hour, Minute: min}, lj)
}

// ref is the reference of a 3RPMS stay of the test property.
func ref(id string) reconcile.StayRef {
	return reconcile.StayRef{Property: "bled", Source: reconcile.System3RPMS, ID: id}
}

// stay is a stay in room ("r204" is named "204") with no key on it.
func stay(id, room, arrival, departure string) reconcile.Stay {
	return reconcile.Stay{
		Ref: ref(id), RoomID: room, RoomName: strings.TrimPrefix(room, "r"),
		Arrival: date(arrival), Departure: date(departure),
	}
}

// holding returns s with a RoomAccessPin key on it.
func holding(s reconcile.Stay, keyID, pin string) reconcile.Stay {
	s.Key = &reconcile.RemoteKey{ID: keyID, Type: string(reconcile.KindPINKey), PIN: reconcile.Secret(pin)}
	return s
}

// cred is a recorded 3RPMS PIN credential of stay id.
func cred(id, room, remoteID string, status reconcile.Status, assigned bool, arrival, departure string) reconcile.Credential {
	return reconcile.Credential{
		Stay: ref(id), System: reconcile.System3RPMS, Kind: reconcile.KindPINKey,
		RoomID: room, RemoteID: remoteID, Status: status, Assigned: assigned,
		Arrival: date(arrival), Departure: date(departure),
	}
}

// seeded is a deterministic PIN randomness stream.
func seeded(seed byte) io.Reader {
	var s [32]byte
	for i := range s {
		s[i] = seed + byte(i)
	}
	return mrand.NewChaCha8(s)
}

// digitStream yields the given decimal PINs, one after the other, from
// crypto/rand.Int over a ten-digit alphabet: Int draws one byte per digit,
// keeps its low four bits and rejects values ≥ 10, so byte d gives digit d.
// TestDigitStream checks that assumption.
func digitStream(pins ...string) io.Reader {
	var b []byte
	for _, p := range pins {
		for _, r := range p {
			b = append(b, byte(r-'0'))
		}
	}
	return strings.NewReader(string(b))
}

// summary renders a plan's actions as "step op stay cred priority" lines,
// cred being the remote key id, or "-" for one not created yet.
func summary(p *reconcile.Plan) []string { return actionSummary(p.Actions) }

// planned returns the actions of a plan's report.
func planned(pr *reconcile.PlanReport) []*reconcile.Action {
	var out []*reconcile.Action
	for _, a := range pr.Actions {
		out = append(out, a.Action)
	}
	return out
}

// actionSummary renders actions as summary does.
func actionSummary(actions []*reconcile.Action) []string {
	var out []string
	for _, a := range actions {
		c := "-"
		if a.Cred != nil && a.Cred.RemoteID != "" {
			c = a.Cred.RemoteID
		}
		out = append(out, fmt.Sprintf("%d %s %s %s %s", a.Step, a.Op, a.Stay.ID, c, prio(a.Priority)))
	}
	return out
}

// noteSummary renders notes as "kind stay" lines.
func noteSummary(notes []reconcile.Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, fmt.Sprintf("%s %s", n.Kind, n.Stay.ID))
	}
	return out
}

// prio names a priority for test output.
func prio(p reconcile.Priority) string {
	switch p {
	case reconcile.PriorityRevoke:
		return "revoke"
	case reconcile.PriorityArrivalSoon:
		return "soon"
	case reconcile.PriorityInHouse:
		return "inhouse"
	case reconcile.PriorityLaterArrival:
		return "later"
	}
	return fmt.Sprintf("p%d", p)
}
