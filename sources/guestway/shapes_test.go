package guestway_test

// These tests read answers in the shapes the Guestway document leaves
// open (it shows none): date fields under other names, fields of other
// JSON types, bare lists and their Link headers, a bare reservation.

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/sources/guestway"
)

// listOf serves reservations (JSON objects) as one page of the list, in
// the envelope, with no accesses.
func listOf(t *testing.T, reservations ...string) string {
	t.Helper()
	return sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/accesses") {
			io.WriteString(w, `{"data":[]}`)
			return
		}
		io.WriteString(w, `{"data":[`+strings.Join(reservations, ",")+`],"meta":{"has_more":false}}`)
	})).URL
}

// TestDatesUnderOtherNames: a reservation that sends its dates under the
// names other booking APIs use (and not arrival_date/departure_date, or
// those null or blank) is read by them; one that sends two such pairs
// that differ, or none, is unreadable;
// a read in which no reservation sends them under a name keysync reads
// fails, loudly, naming the names it reads (a server that names them
// otherwise keys no one). start_date/end_date is not read: an end date is
// often the last night.
func TestDatesUnderOtherNames(t *testing.T) {
	t.Parallel()
	res := func(id, dates string) string {
		return `{"id":"` + id + `","status":"confirmed",` + dates + `,"listing_id":"L1"}`
	}
	base := listOf(t,
		res("R1", `"check_in":"2026-01-30","check_out":"2026-02-01"`),
		res("R2", `"checkin":"2026-01-30","checkout":"2026-02-01"`),
		res("R3", `"check_in_date":"2026-01-30","check_out_date":"2026-02-01"`),
		res("R4", `"arrival":"2026-01-30","departure":"2026-02-01"`),
		res("R5", `"arrival_date":"2026-01-30","departure_date":"2026-02-01","check_in":"2026-01-29","check_out":"2026-02-03"`),
		res("R6", `"check_in":"2026-01-30","check_out":"2026-02-01","arrival":"2026-01-29","departure":"2026-02-01"`),
		// Two pairs that agree are aliases.
		res("R13", `"check_in":"2026-01-30","check_out":"2026-02-01","checkin":"2026-01-30","checkout":"2026-02-01"`),
		// A blank string is as good as not sent.
		res("R14", `"arrival_date":"","departure_date":" ","check_in":"2026-01-30","check_out":"2026-02-01"`),
		res("R7", `"start_date":"2026-01-30","end_date":"2026-01-31"`),
		res("R8", `"check_in":"2026-01-30"`),
		// A server that sends every field: null is as good as not sent.
		res("R10", `"arrival_date":null,"departure_date":null,"check_in":"2026-01-30","check_out":"2026-02-01"`),
		// Flight details under arrival/departure are no dates.
		res("R11", `"check_in":"2026-01-30","check_out":"2026-02-01","arrival":{"flight":"JU100"},"departure":{"flight":"JU101"}`),
		res("R12", `"arrival_date":"2026-01-30","departure_date":"2026-02-01","arrival":{"flight":"JU100"}`),
	)
	got, err := readPortfolio(t, newSource(t, base, nil))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	want := map[string]string{
		"R1": "", "R2": "", "R3": "", "R4": "", "R5": "", "R10": "", "R11": "", "R12": "", "R13": "", "R14": "",
		"R6": "sends two different dates, as check_in/check_out and arrival/departure",
		"R7": "sends no arrival and departure dates under a name keysync reads",
		"R8": "sends no arrival and departure dates under a name keysync reads",
	}
	for _, st := range got {
		w, ok := want[st.Ref.ID]
		switch {
		case !ok:
			t.Errorf("%s: not listed", st.Ref.ID)
		case st.Unreadable != w:
			t.Errorf("%s: unreadable %q, want %q", st.Ref.ID, st.Unreadable, w)
		case w == "" && st.Arrival.String()+".."+st.Departure.String() != "2026-01-30..2026-02-01":
			t.Errorf("%s: read %s..%s, want 2026-01-30..2026-02-01 (arrival_date and departure_date first)", st.Ref.ID, st.Arrival, st.Departure)
		}
	}
	if len(got) != len(want) {
		t.Errorf("read %q, want %d stays", ids(got), len(want))
	}

	none := listOf(t, res("R7", `"start_date":"2026-01-30","end_date":"2026-01-31"`), res("R9", `"begins":"2026-01-30"`))
	if got, err := readPortfolio(t, newSource(t, none, nil)); err == nil || !strings.Contains(err.Error(), "no reservation sends its dates under a name keysync reads (arrival_date/departure_date, check_in/check_out") {
		t.Errorf("no reservation with dates keysync reads: %q, %v; want the read to fail naming the names it reads", ids(got), err)
	}
	// One live reservation alone, or cancelled ones, without dates are
	// no sign of names read otherwise: read, unreadable or cancelled.
	for name, base := range map[string]string{
		"one live reservation": listOf(t, `{"id":"R9","status":"confirmed","listing_id":"L1"}`),
		"cancelled ones":       listOf(t, `{"id":"R8","status":"cancelled","listing_id":"L1"}`, `{"id":"R9","status":"cancelled","listing_id":"L2"}`),
	} {
		if got, err := readPortfolio(t, newSource(t, base, nil)); err != nil || len(got) == 0 || got[0].Unreadable != "sends no arrival and departure dates under a name keysync reads" {
			t.Errorf("%s without dates: %+v, %v; want read, unreadable", name, got, err)
		}
	}
}

// TestOneReservationOfAnotherType: one reservation with a field of a JSON
// type keysync does not read fails that reservation alone (unreadable,
// naming the field and the type, never the value), not the property's
// read; a field keysync only shows (the guest's name, their count) of
// another type is no failure at all.
func TestOneReservationOfAnotherType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, odd, unreadable string
		guests                int
	}{
		{"arrival_date as a number", `{"id":"R9","status":"confirmed","arrival_date":1769731200,"departure_date":"2026-02-01","listing_id":"L1"}`, "arrival_date is a JSON number, not a date", 0},
		{"status as an object", `{"id":"R9","status":{"code":"ok"},"arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1"}`, "status is a JSON object, not what keysync reads", 0},
		{"guests as a count", `{"id":"R9","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1","guests":2}`, "", 2},
		{"guest_name as an object", `{"id":"R9","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1","guest_name":{"first":"A","last":"B"}}`, "", 0},
		{"listing_id as an array", `{"id":"R9","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":[]}`, "listing_id is a JSON array, not an id", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readPortfolio(t, newSource(t, listOf(t, cannedRes(1), tc.odd), nil))
			if err != nil || !slices.Equal(ids(got), []string{"R1", "R9"}) {
				t.Fatalf("read %q, %v; want R1 and R9", ids(got), err)
			}
			if r9 := got[1]; r9.Unreadable != tc.unreadable || r9.Guests != tc.guests || got[0].Unreadable != "" {
				t.Errorf("R9 unreadable %q with %d guests (R1 %q); want %q with %d", r9.Unreadable, r9.Guests, got[0].Unreadable, tc.unreadable, tc.guests)
			}
		})
	}
}

// TestServerPagesOfABareList: a server that refuses keysync's page size
// (422) and a page past its list's end (422), answering bare arrays that
// say nothing of their size, is read whole: its page size is taken as its
// first page's count, so its last page is short and the refusal after it
// the end, as for the same server answering the envelope with its
// per_page.
func TestServerPagesOfABareList(t *testing.T) {
	t.Parallel()
	for _, bare := range []bool{true, false} {
		t.Run("bare "+strconv.FormatBool(bare), func(t *testing.T) {
			t.Parallel()
			base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if strings.HasSuffix(r.URL.Path, "/accesses") {
					io.WriteString(w, `[]`)
					return
				}
				q := r.URL.Query()
				n, _ := strconv.Atoi(q.Get("page"))
				if q.Has("per_page") || n > 3 {
					w.WriteHeader(http.StatusUnprocessableEntity)
					io.WriteString(w, `{"error":"out of range"}`)
					return
				}
				var items []string
				for i := 2*n - 1; i <= min(2*n, 5); i++ {
					items = append(items, cannedRes(i))
				}
				page := "[" + strings.Join(items, ",") + "]"
				if !bare {
					page = `{"data":` + page + `,"meta":{"page":` + strconv.Itoa(n) + `,"per_page":2}}`
				}
				io.WriteString(w, page)
			})).URL
			got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = 50 }))
			if want := []string{"R1", "R2", "R3", "R4", "R5"}; err != nil || !slices.Equal(ids(got), want) {
				t.Errorf("read %q, %v; want %q", ids(got), err, want)
			}
		})
	}
}

// TestOddFieldBesideACancellation: a reservation with a field of a type
// keysync does not read is still read for its id, room and cancellation:
// cancelled, it is withdrawn as any cancelled reservation, not held.
func TestOddFieldBesideACancellation(t *testing.T) {
	t.Parallel()
	odd := `{"id":"R9","status":{"code":"x"},"is_cancelled":true,"arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L2"}`
	got, err := readPortfolio(t, newSource(t, listOf(t, cannedRes(1), odd), nil))
	if err != nil || len(got) != 2 {
		t.Fatalf("read %q, %v; want R1 and R9", ids(got), err)
	}
	if r9 := got[1]; !r9.Cancelled || r9.RoomID != "L2" || r9.Unreadable == "" {
		t.Errorf("R9: cancelled %v, room %q, unreadable %q; want cancelled, in L2, unreadable naming status", r9.Cancelled, r9.RoomID, r9.Unreadable)
	}
}

// TestOddIDFieldKeepsTheRest: a listing_id or unit_id of a JSON type
// keysync does not read (an object) does not cost the reservation its
// other fields, wherever it stands (a field whose own decoding failed
// would stop encoding/json reading those after it): a cancelled one is
// read cancelled, and its room is unknown, not the listing's (which would
// read as a move out of its unit).
func TestOddIDFieldKeepsTheRest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, odd string
		cancelled bool
		room      string
	}{
		{"listing_id object before a cancelled status",
			`{"id":"R9","listing_id":{"id":2},"status":"cancelled","arrival_date":"2026-01-30","departure_date":"2026-02-01"}`, true, ""},
		{"listing_id object before is_cancelled",
			`{"id":"R9","status":"confirmed","listing_id":{"id":2},"is_cancelled":true,"arrival_date":"2026-01-30","departure_date":"2026-02-01"}`, true, ""},
		{"unit_id object after listing_id",
			`{"id":"R9","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1","unit_id":{"id":"U5"}}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readPortfolio(t, newSource(t, listOf(t, cannedRes(1), tc.odd), nil))
			if err != nil || len(got) != 2 {
				t.Fatalf("read %q, %v; want R1 and R9", ids(got), err)
			}
			r9 := got[1]
			if r9.Unreadable == "" || r9.Cancelled != tc.cancelled || r9.RoomID != tc.room {
				t.Errorf("R9: unreadable %q, cancelled %v, room %q; want unreadable, cancelled %v, room %q (unknown: not the listing)",
					r9.Unreadable, r9.Cancelled, r9.RoomID, tc.cancelled, tc.room)
			}
		})
	}
}

// cannedRes is reservation Rn of a canned list, in the portfolio window.
func cannedRes(n int) string {
	return `{"id":"R` + strconv.Itoa(n) + `","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1"}`
}

// TestLinkHeaderNotAboutPaging: a Link header that says nothing of the
// list's pages (RFC 9745 deprecation, describedby, a CDN's preload) ends
// no list, bare or enveloped: each is read on to an empty page. Only a
// bare page's Link header speaks for it.
func TestLinkHeaderNotAboutPaging(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, link string
		bare       bool
	}{
		{"envelope, no Link", "", false},
		{"envelope, rel=deprecation", `<https://docs.guestway.io/changelog>; rel="deprecation"`, false},
		{"envelope, rel=describedby", `<https://api.guestway.io/swagger/open>; rel="describedby"`, false},
		{"bare, rel=preload", `</static/app.css>; rel=preload; as=style`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tc.link != "" {
					w.Header().Set("Link", tc.link)
				}
				if strings.HasSuffix(r.URL.Path, "/accesses") {
					io.WriteString(w, `{"data":[]}`)
					return
				}
				n, _ := strconv.Atoi(r.URL.Query().Get("page"))
				items := "[]"
				if n <= 3 {
					items = "[" + cannedRes(n) + "]"
				}
				if tc.bare {
					io.WriteString(w, items)
					return
				}
				io.WriteString(w, `{"data":`+items+`,"meta":{"page":`+strconv.Itoa(n)+`,"per_page":1}}`)
			})).URL
			got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = 1 }))
			if want := []string{"R1", "R2", "R3"}; err != nil || !slices.Equal(ids(got), want) {
				t.Errorf("read %q, %v; want %q: the list cut short", ids(got), err, want)
			}
		})
	}
}

// TestLinkHeaderForms: Link headers as servers write them (several, any
// case and spacing, a comma in a URL, a next link from every page, the
// last one empty, or one mid-list) are read; a server that pages by the next link's
// cursor and ignores page fails loudly (the link's target is not
// followed).
func TestLinkHeaderForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		links func(n int) []string // Link header values of page n
		want  []string
		fails bool
	}{
		{"two Link headers, next in the second", func(n int) []string {
			if n < 3 {
				return []string{`</r?page=1>; rel="first"`, `</r?page=` + strconv.Itoa(n+1) + `>; rel="next"`}
			}
			return []string{`</r?page=1>; rel="first"`}
		}, []string{"R1", "R2", "R3"}, false},
		{"upper case, spaces", func(n int) []string {
			if n < 3 {
				return []string{` <HTTPS://X/R?PAGE=` + strconv.Itoa(n+1) + `> ;  REL = "NEXT" `}
			}
			return []string{`<x>; rel="prev"`}
		}, []string{"R1", "R2", "R3"}, false},
		{"comma inside the URL", func(n int) []string {
			if n < 3 {
				return []string{`</r?ids=1,2&page=` + strconv.Itoa(n+1) + `>; rel="next"`}
			}
			return []string{`</r?ids=1,2&page=1>; rel="first"`}
		}, []string{"R1", "R2", "R3"}, false},
		{"next on every page, the last one empty", func(n int) []string {
			return []string{`</r?page=` + strconv.Itoa(n+1) + `>; rel="next"`}
		}, []string{"R1", "R2", "R3"}, false},
		{"a Link header of pages without next ends it", func(n int) []string {
			return []string{`</open/v1/reservations?page=1>; rel="first"`}
		}, []string{"R1"}, false},
		{"next among other rels, unquoted", func(n int) []string {
			if n < 2 {
				return []string{`<https://guestway.example/open/v1/reservations?page=2>; rel=next, <x>; rel="prev last"`}
			}
			return []string{`<x>; rel="prev"`}
		}, []string{"R1", "R2"}, false},
		{"no Link header: to an empty page", func(int) []string { return nil }, []string{"R1", "R2", "R3"}, false},
		// A server that filters a page after paging it may leave one
		// empty mid-list, linking a next one: read on.
		{"an empty page (2) that links a next one", func(n int) []string {
			if n < 3 {
				return []string{`</r?page=` + strconv.Itoa(n+1) + `>; rel="next"`}
			}
			return nil
		}, []string{"R1", "R3"}, false},
		{"cursor URL, page ignored: fails (loud)", func(n int) []string {
			return []string{`</r?cursor=abc>; rel="next"`}
		}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignoresPage := tc.fails
			base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if strings.HasSuffix(r.URL.Path, "/accesses") {
					io.WriteString(w, `[]`)
					return
				}
				n, _ := strconv.Atoi(r.URL.Query().Get("page"))
				if ignoresPage {
					n = 1
				}
				for _, l := range tc.links(n) {
					w.Header().Add("Link", l)
				}
				if n > 3 || n == 2 && strings.HasPrefix(tc.name, "an empty page (2)") {
					io.WriteString(w, "[]")
					return
				}
				io.WriteString(w, "["+cannedRes(n)+"]")
			})).URL
			got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = 1 }))
			switch {
			case tc.fails && err == nil:
				t.Errorf("read %q, no error; want a failure", ids(got))
			case !tc.fails && (err != nil || !slices.Equal(ids(got), tc.want)):
				t.Errorf("read %q, %v; want %q", ids(got), err, tc.want)
			}
		})
	}
}

// TestBareReservation: a GET of one reservation answered with an
// error-shaped object carrying an id fails loudly; a bare reservation
// with a "data": null field of its own is that reservation, not gone.
func TestBareReservation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		wantErr    bool
	}{
		{"error-shaped with a request id", `{"id":"req-123","error":"internal"}`, true},
		{"bare reservation with a data:null field", `{"id":"R1","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-03","listing_id":"L1","data":null}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case strings.HasSuffix(r.URL.Path, "/accesses"):
					io.WriteString(w, `[]`)
				case strings.HasSuffix(r.URL.Path, "/reservations"):
					io.WriteString(w, "["+cannedRes(1)+"]")
				default:
					io.WriteString(w, tc.body)
				}
			})).URL
			got, err := newSource(t, base, nil).StaysByID(context.Background(), []string{"R1"})
			switch {
			case tc.wantErr && err == nil:
				t.Errorf("got %q, no error; want a failure", ids(got))
			case !tc.wantErr && (err != nil || len(got) != 1):
				t.Errorf("got %q, %v; want R1 read (not gone)", ids(got), err)
			}
		})
	}
}
