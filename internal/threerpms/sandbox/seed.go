package sandbox

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// The second integration SeedDemo plants keys for.
const (
	// OtherIntegration is the integration id that owns SeedDemo's foreign keys.
	OtherIntegration = "other-integration"
	// OtherToken is the bearer token of OtherIntegration.
	OtherToken = "other-token"
)

// SeedDemo fills the sandbox with a realistic property around the business
// clock's today (T), deterministically (math/rand/v2 PCG with a fixed seed):
// rooms "r101".. named "101".., and per room a run of stays around T. The
// first eight rooms are scripted so every case a reconcile must handle is
// present whenever rooms >= 8:
//
//	r101  in-house T-2..T+2 holding OtherIntegration's RoomAccessPin; next stay T+4..T+6
//	r102  departing today T-3..T; arriving today T..T+3 holding OtherIntegration's RoomAccessKeyStorage
//	r103  departed 4 days ago T-7..T-4; arriving tomorrow T+1..T+4 holding OtherIntegration's RoomAccessQR
//	r104  departed 3 days ago T-6..T-3; arriving T+5..T+8
//	r105  T-1..T+1, then with r106 one two-room reservation T+2..T+5
//	r106  (second room of that reservation)
//	r107  arriving today T..T+2; a cancelled reservation T+3..T+6
//	r108  a cancelled reservation T+6..T+9; in-house T-1..T+3
//
// The remaining rooms get random back-to-back stays of 1-5 nights with gaps
// of 1-4 nights (about 65% occupancy) from a few days before T to two weeks
// after. SeedDemo also registers OtherToken for OtherIntegration. rooms <= 0
// means 12.
func (s *Server) SeedDemo(rooms int) {
	if rooms <= 0 {
		rooms = 12
	}
	s.lock()
	defer s.mu.Unlock()
	s.tokens[OtherToken] = OtherIntegration
	rng := rand.New(rand.NewPCG(3, 2026))
	t := s.today()
	day := func(n int) string { return fmtDate(t.AddDate(0, 0, n)) }
	must := func(st *stay, err error) *stay {
		if err != nil {
			panic(fmt.Sprintf("sandbox: seed demo: %v", err))
		}
		return st
	}
	add := func(room string, from, to int) *stay {
		return must(s.addStay(Stay{RoomID: room, Arrival: day(from), Departure: day(to)}))
	}
	pin := func() string { return fmt.Sprintf("%06d", rng.IntN(1000000)) }
	foreign := func(k Key, st *stay) {
		if _, err := s.injectKey(OtherIntegration, k, st.id); err != nil {
			panic(fmt.Sprintf("sandbox: seed demo: %v", err))
		}
	}

	ids := make([]string, rooms)
	for i := range rooms {
		ids[i] = "r" + strconv.Itoa(101+i)
		s.addRoom(ids[i], strconv.Itoa(101+i))
	}
	for i, room := range ids {
		switch i {
		case 0:
			foreign(Key{Type: KeyTypePin, PIN: pin()}, add(room, -2, 2))
			add(room, 4, 6)
		case 1:
			add(room, -3, 0)
			foreign(Key{Type: KeyTypeKeyStorage, PIN: pin(), Compartment: "B" + strconv.Itoa(1+rng.IntN(40))}, add(room, 0, 3))
		case 2:
			add(room, -7, -4)
			foreign(Key{Type: KeyTypeQR, QRData: fmt.Sprintf("https://lock.example/qr/%08x", rng.Uint32())}, add(room, 1, 4))
		case 3:
			add(room, -6, -3)
			add(room, 5, 8)
		case 4:
			add(room, -1, 1)
			first := add(room, 2, 5)
			if rooms > 5 {
				must(s.addStay(Stay{RoomID: ids[5], Arrival: day(2), Departure: day(5), ReservationID: first.reservationID}))
			}
		case 5:
			// second room of r105's reservation, added above
		case 6:
			add(room, 0, 2)
			s.reservations[add(room, 3, 6).reservationID].cancelled = true
		case 7:
			s.reservations[add(room, 6, 9).reservationID].cancelled = true
			add(room, -1, 3)
		default:
			for d := -rng.IntN(7); d < 14; {
				if rng.Float64() < 0.4 {
					d += 1 + rng.IntN(4)
					continue
				}
				n := 1 + rng.IntN(5)
				add(room, d, d+n)
				d += n
			}
		}
	}
}
