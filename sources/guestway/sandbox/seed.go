package sandbox

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Demo credentials SeedDemo registers.
const (
	// DemoPartnerKey is the Partnership API Key SeedDemo accepts.
	DemoPartnerKey = "demo-partner-key"
	// DemoToken is the Organization Access Token SeedDemo accepts, with
	// the two scopes keysync needs.
	DemoToken = "gw_sandbox_demo_token_0123456789"
)

var demoNames = []string{
	"Harbour View Loft", "Old Town Studio", "Garden Cottage", "Riverside Apartments",
	"Alpine Chalet", "Dune House", "Vineyard Barn", "Lighthouse Suite",
	"Maple Cabin", "Castle Hill Flat", "Lakeside Bungalow", "Market Square Penthouse",
}

var demoGuests = []string{
	"Ana Novak", "James Whitfield", "Sofia Rossi", "Lukas Meier", "Emma Dubois",
	"Mateo García", "Hana Kobayashi", "Oliver Hughes", "Ingrid Larsen", "Noah Cohen",
	"Chloé Martin", "Piotr Kowalski", "Aisha Rahman", "Tomás Silva", "Greta Bauer",
}

// SeedDemo fills the sandbox with a short-term-rental portfolio around the
// business clock's today (T), deterministically (math/rand/v2 PCG with a
// fixed seed), and registers DemoPartnerKey and DemoToken. Listings are
// "lst_1".. with lock "lock_<listing>" ("Front door"). The first eight are
// scripted so that every case a reconcile must handle is present whenever
// listings >= 8:
//
//	lst_1  in-house T-2..T+2 with a PIN; next T+4..T+7 with a PIN
//	lst_2  departing today T-3..T with a PIN; arriving today T..T+3 with a PIN
//	lst_3  arriving today T..T+2 with NO lock PIN (due within 24 h)
//	lst_4  multi-unit: unit lst_4-a arriving tomorrow T+1..T+4 with building and unit PINs;
//	       unit lst_4-b in-house T-1..T+1 with a PIN
//	lst_5  departed T-6..T-2; arriving T+3..T+6, status "pending", with a PIN
//	lst_6  cancelled T+1..T+3 (its access removed); arriving T+5..T+9 with a PIN
//	lst_7  in-house T-4..T+1 with a PIN; arriving T+1..T+3 with a PIN (back to back)
//	lst_8  departed T-3..T-1; arriving T+6..T+8, no PIN yet
//
// The remaining listings get random back-to-back stays of 1-6 nights with
// gaps (about 65% occupancy) from a week before T to two weeks after;
// those arriving within a week hold a PIN nine times in ten. listings <= 0
// means 12.
func (s *Server) SeedDemo(listings int) {
	if listings <= 0 {
		listings = 12
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[DemoPartnerKey] = true
	s.tokens[DemoToken] = []string{ScopeReservationsRead, ScopeAccessesRead}
	rng := rand.New(rand.NewPCG(2, 2026))
	t := s.today()
	day := func(n int) string { return t.AddDate(0, 0, n).Format(DateLayout) }
	guest := 0
	add := func(listing, unit string, from, to int, status string) string {
		guest++
		r, err := s.addReservation(Reservation{
			Status: status, ArrivalDate: day(from), DepartureDate: day(to),
			ListingID: listing, UnitID: unit, GuestName: demoGuests[guest%len(demoGuests)],
			Guests: Guests{Adults: 1 + rng.IntN(3), Children: rng.IntN(3)},
		})
		if err != nil {
			panic(fmt.Sprintf("sandbox: seed demo: %v", err))
		}
		return r.ID
	}
	pin := func(resID, lockID, lockName string) {
		a := Access{LockID: lockID, LockName: lockName, PIN: fmt.Sprintf("%06d", 100000+rng.IntN(900000))}
		if _, err := s.addAccess(resID, a); err != nil {
			panic(fmt.Sprintf("sandbox: seed demo: %v", err))
		}
	}
	front := func(resID, listing string) { pin(resID, "lock_"+listing, "Front door") }

	for i := range listings {
		id := "lst_" + strconv.Itoa(i+1)
		name := "Apartment " + strconv.Itoa(i+1)
		if i < len(demoNames) {
			name = demoNames[i]
		}
		s.addListing(id, name)
		switch i {
		case 0:
			front(add(id, "", -2, 2, StatusConfirmed), id)
			front(add(id, "", 4, 7, StatusConfirmed), id)
		case 1:
			front(add(id, "", -3, 0, StatusConfirmed), id)
			front(add(id, "", 0, 3, StatusConfirmed), id)
		case 2:
			add(id, "", 0, 2, StatusConfirmed)
		case 3:
			r := add(id, id+"-a", 1, 4, StatusConfirmed)
			pin(r, "lock_"+id+"-building", "Building entrance")
			pin(r, "lock_"+id+"-a", "Unit A door")
			pin(add(id, id+"-b", -1, 1, StatusConfirmed), "lock_"+id+"-b", "Unit B door")
		case 4:
			add(id, "", -6, -2, StatusConfirmed)
			front(add(id, "", 3, 6, StatusPending), id)
		case 5:
			add(id, "", 1, 3, StatusCancelled)
			front(add(id, "", 5, 9, StatusConfirmed), id)
		case 6:
			front(add(id, "", -4, 1, StatusConfirmed), id)
			front(add(id, "", 1, 3, StatusConfirmed), id)
		case 7:
			add(id, "", -3, -1, StatusConfirmed)
			add(id, "", 6, 8, StatusConfirmed)
		default:
			for d := -rng.IntN(7); d < 14; {
				if rng.Float64() < 0.35 {
					d += 1 + rng.IntN(3)
					continue
				}
				n := 1 + rng.IntN(6)
				r := add(id, "", d, d+n, StatusConfirmed)
				if d <= 7 && rng.IntN(10) < 9 {
					front(r, id)
				}
				d += n
			}
		}
	}
}
