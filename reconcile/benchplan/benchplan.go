// Package benchplan builds the planning workload (100,000 stays planned in
// under 1 s and 200 MB): a large
// property's stays and keysync's records of them, for measuring
// reconcile.Compute. reconcile's BenchmarkCompute100k and `keysync bench`
// plan the same input, so their numbers are comparable.
package benchplan

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
	// The property's zone must resolve without system zoneinfo.
	_ "time/tzdata"

	"github.com/keysync/keysync/reconcile"
)

// Now is the instant the workload is planned at: 02:00 in Berlin, the
// nightly run's time.
var Now = time.Date(2026, 11, 16, 2, 0, 0, 0, mustLoad("Europe/Berlin"))

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// Property is the planned property: every room opens by PIN (default_method
// pin), check-in 15:00, check-out 11:00, 2 h grace each side, a 7-day
// window, six-digit PINs.
func Property() *reconcile.Property { return property(6) }

// pinLength is the PIN length for a workload of n stays: six digits, or
// more when n grows past 100,000, so that the PIN space stays at least ten
// times the stays (six digits cannot hold the PINs of a million stays) and
// finding an unused PIN costs what it does at 100,000.
func pinLength(n int) int {
	length, space := 6, 1_000_000
	for space < 10*n {
		length, space = length+1, space*10
	}
	return length
}

func property(pinLength int) *reconcile.Property {
	return &reconcile.Property{
		Name:          "bench",
		Location:      Now.Location(),
		CheckIn:       reconcile.TimeOfDay{Hour: 15},
		CheckOut:      reconcile.TimeOfDay{Hour: 11},
		GraceBefore:   2 * time.Hour,
		GraceAfter:    2 * time.Hour,
		WindowDays:    7,
		DefaultMethod: reconcile.MethodPIN,
		PIN:           reconcile.PINPolicy{Length: pinLength, Alphabet: reconcile.DefaultPINPolicy.Alphabet},
	}
}

// Rand is the planner's PIN randomness for seed: a ChaCha8 stream, so a
// plan is the same every time. Compute consumes it; pass a fresh one per
// plan.
func Rand(seed uint64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(key)
}

// Input returns n stays of the property and keysync's records, drawn from
// seed (math/rand/v2 PCG):
//
//   - rooms "r00001".. each hold back-to-back stays of 1 to 3 nights from
//     up to two days before Now to the end of the 7-day window, about 4.3
//     a room (23,321 rooms for 100,000 stays with seed 1); every stay
//     departs today or later (what a read returns);
//   - half the stays (each with probability 1/2) hold a RoomAccessPin key
//     of ours, assigned and recorded as an active credential with a unique
//     PIN: nothing to do for most of them; 5% of those were recorded for
//     another room (the stay moved), which revokes, deletes and reissues;
//   - the other half hold no key: create and assign;
//   - n/100 more recorded credentials belong to stays the source no longer
//     returns (cancelled or deleted): revoke and delete;
//   - PINs are six digits up to 100,000 stays, longer beyond (pinLength).
//
// Compute's result is a plan of about n/2 creates and assigns and n/30
// revocations and deletes.
func Input(n int, seed uint64) reconcile.Input {
	rng := rand.New(rand.NewPCG(seed, 0x6b657973796e63))
	length := pinLength(n)
	prop := property(length)
	space := 1
	for range length {
		space *= 10
	}
	today := reconcile.DateOf(Now)
	in := reconcile.Input{Now: Now, Property: prop, Stays: make([]reconcile.Stay, 0, n), Rand: Rand(seed)}
	used := map[string]bool{}
	pin := func() reconcile.Secret {
		for {
			p := fmt.Sprintf("%0*d", length, rng.IntN(space))
			if !used[p] {
				used[p] = true
				return reconcile.Secret(p)
			}
		}
	}
	ref := func(id string) reconcile.StayRef {
		return reconcile.StayRef{Property: prop.Name, Source: reconcile.System3RPMS, ID: id}
	}
	var keys int
	credential := func(s reconcile.Stay, room string) reconcile.Credential {
		keys++
		return reconcile.Credential{
			ID: int64(keys), Stay: s.Ref, System: reconcile.System3RPMS, Kind: reconcile.KindPINKey,
			RoomID: room, RemoteID: "rak_" + strconv.Itoa(keys), Status: reconcile.StatusActive, Assigned: true,
			Arrival: s.Arrival, Departure: s.Departure, UpdatedAt: Now.Add(-24 * time.Hour),
		}
	}
	rooms := 0
	for len(in.Stays) < n {
		rooms++
		room, name := fmt.Sprintf("r%05d", rooms), strconv.Itoa(rooms)
		d := -rng.IntN(3)
		for first := true; d < prop.WindowDays && len(in.Stays) < n; first = false {
			nights := 1 + rng.IntN(3)
			if first && d+nights < 0 {
				nights = -d // departs today
			}
			s := reconcile.Stay{
				Ref: ref(fmt.Sprintf("rs_%d", len(in.Stays)+1)), RoomID: room, RoomName: name,
				Arrival: today.AddDays(d), Departure: today.AddDays(d + nights),
			}
			if rng.IntN(2) == 0 {
				c := credential(s, room)
				if rng.IntN(20) == 0 {
					c.RoomID = fmt.Sprintf("r%05d", rooms+1) // recorded before a room move
				}
				s.Key = &reconcile.RemoteKey{ID: c.RemoteID, Type: string(reconcile.KindPINKey), PIN: pin()}
				in.Credentials = append(in.Credentials, c)
			}
			in.Stays = append(in.Stays, s)
			d += nights
		}
	}
	for i := range n / 100 {
		gone := reconcile.Stay{
			Ref: ref(fmt.Sprintf("rs_gone_%d", i+1)), RoomID: fmt.Sprintf("r%05d", 1+rng.IntN(rooms)),
			Arrival: today.AddDays(rng.IntN(prop.WindowDays)),
		}
		gone.Departure = gone.Arrival.AddDays(1 + rng.IntN(3))
		in.Credentials = append(in.Credentials, credential(gone, gone.RoomID))
	}
	return in
}
