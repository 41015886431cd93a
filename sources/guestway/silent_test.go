package guestway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/guestway"
	"github.com/keysync/keysync/sources/guestway/sandbox"
)

// These tests run the Source against a sandbox switched to answer as a
// server written independently from the Guestway document might, where
// the document is silent (it names no paths, payloads, statuses or
// paging).

// readPortfolio reads the portfolio's window 2026-01-30..2026-02-05.
func readPortfolio(t *testing.T, src *guestway.Source) ([]reconcile.Stay, error) {
	t.Helper()
	return src.Stays(context.Background(), day(t, "2026-01-30"), day(t, "2026-02-05"))
}

// TestAccessesNotFoundWhenEmpty: a server that answers 404 for the
// accesses of a reservation without any (the sandbox's
// SetAccessesNotFoundWhenEmpty) is read as that reservation holding no
// PIN, once another reservation's accesses answered at the same path: one
// reservation without a PIN must not fail every guest's read. Where no
// reservation's accesses answer, the path is wrong: the read fails naming
// the config's accesses_path, as before.
func TestAccessesNotFoundWhenEmpty(t *testing.T) {
	t.Parallel()
	sb, base, want := portfolioAsRead(t)
	sb.SetAccessesNotFoundWhenEmpty(true)
	for _, conc := range []int{1, 4} {
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.Concurrency = conc }))
		if err != nil {
			t.Fatalf("concurrency %d: %v; want G4 and G7 read without a PIN", conc, err)
		}
		if !slices.EqualFunc(got, want, func(a, b reconcile.Stay) bool {
			return a.Ref == b.Ref && slices.Equal(pins(a), pins(b)) && a.Cancelled == b.Cancelled
		}) {
			t.Errorf("concurrency %d: %v, want %v", conc, got, want)
		}
	}
	// Targeted: G7 has no accesses; G6 does, so the path answers.
	got, err := newSource(t, base, nil).StaysByID(context.Background(), []string{"G6", "G7"})
	if err != nil || len(got) != 2 || len(got[1].Locks) != 0 || len(got[0].Locks) != 1 {
		t.Errorf("StaysByID G6, G7: %v, %v; want both, G7 without a PIN", got, err)
	}
	// Nothing answers at the path: it is wrong, for everyone.
	_, err = readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.AccessesPath = "/open/v1/reservations/{id}/locks" }))
	if !errors.Is(err, reconcile.ErrNotFound) || !strings.Contains(err.Error(), "check accesses_path") {
		t.Errorf("wrong accesses path: %v, want a failure naming accesses_path", err)
	}
	// Only reservations without accesses, so no 200 to go by: the read
	// fails naming accesses_path rather than guess.
	for _, id := range []string{"G1", "G2", "G5", "G6"} {
		if _, err := sb.RemoveAccesses(id); err != nil {
			t.Fatal(err)
		}
	}
	_, err = readPortfolio(t, newSource(t, base, nil))
	if !errors.Is(err, reconcile.ErrNotFound) || !strings.Contains(err.Error(), "check accesses_path") {
		t.Errorf("every accesses call 404: %v, want a failure naming accesses_path", err)
	}
}

// TestListNotFoundWhenEmpty: a server that answers 404 for a list page
// that holds no reservation (the sandbox's SetListNotFoundWhenEmpty) is
// read as an empty list when the list itself answers (an unfiltered first
// page), and as the end of the list on a later page it was read on to
// without has_more; a reservations path where nothing answers still fails
// naming the path (ErrEndpoint).
func TestListNotFoundWhenEmpty(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	sb.SetListNotFoundWhenEmpty(true)
	src := newSource(t, base, nil)
	stays, err := src.Stays(context.Background(), day(t, "2027-06-01"), day(t, "2027-06-07"))
	if err != nil || len(stays) != 0 {
		t.Errorf("an empty window: %v, %v; want no stays", stays, err)
	}
	// Read on by total, seven a page: the second page is empty.
	sb.SetNoHasMore(true)
	sb.SetCursorMeta(true)
	stays, err = readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = 7 }))
	if err != nil || len(stays) != 7 {
		t.Errorf("a full last page, then 404: %v, %v; want the seven", ids(stays), err)
	}
	sb.SetCursorMeta(false)
	sb.SetNoHasMore(false)
	_, err = newSource(t, base, func(o *guestway.Options) { o.ReservationsPath = "/open/v1/bookings" }).
		Stays(context.Background(), day(t, "2027-06-01"), day(t, "2027-06-07"))
	if !errors.Is(err, reconcile.ErrEndpoint) {
		t.Errorf("a wrong reservations path: %v, want ErrEndpoint", err)
	}
}

// TestCursorMeta: a server whose list meta says neither has_more nor
// total (the sandbox's SetCursorMeta: per_page and a next_cursor) is read
// on while its pages come full, never taken whole from its first page.
func TestCursorMeta(t *testing.T) {
	t.Parallel()
	sb, base, want := portfolioAsRead(t)
	sb.SetCursorMeta(true)
	for _, per := range []int{2, 3, 7, 50} {
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = per }))
		if err != nil || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("per_page %d: %q, %v; want %q", per, ids(got), err, ids(want))
		}
	}
	// Paging by cursor alone (the page parameter ignored): the cursor
	// each page names is sent back as cursor, to the list's end. (A first
	// page that holds the whole list to the last place, with no cursor,
	// then the same page again, is no list keysync can tell from one that
	// goes on: it fails, as TestStaysOnAServerIgnoringPage's.)
	sb.SetIgnorePage(true)
	for _, per := range []int{2, 3, 50} {
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = per }))
		if err != nil || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("page ignored, per_page %d: %q, %v; want %q by the cursor", per, ids(got), err, ids(want))
		}
	}
}

// TestCancelledSpelledOtherwise: a cancelled reservation listed as
// CANCELLED_BY_GUEST (the sandbox's SetCancelledAs) is cancelled: its
// guest's access is withdrawn and no PIN read for it. A status that only
// asks for a cancellation is not.
func TestCancelledSpelledOtherwise(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	sb.SetCancelledAs(true)
	src := newSource(t, base, nil)
	stays, err := readPortfolio(t, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stays {
		if st.Cancelled != (st.Ref.ID == "G3") {
			t.Errorf("%s: cancelled %v", st.Ref.ID, st.Cancelled)
		}
	}
	if got, err := src.StaysByID(context.Background(), []string{"G3", "G1"}); err != nil || len(got) != 1 || got[0].Ref.ID != "G1" {
		t.Errorf("StaysByID G3, G1: %v, %v; want G1 only (G3 cancelled)", got, err)
	}
	for status, want := range map[string]bool{
		"canceled_by_host": true, "cancelled_by_owner": true, "canceled": true,
		"cancellation_requested": false, "confirmed": false, "inquiry": false, "uncancelled": false,
	} {
		if err := sb.SetStatus("G6", status); err != nil {
			t.Fatal(err)
		}
		got, err := src.StaysByID(context.Background(), []string{"G6"})
		if err != nil || (len(got) == 0) != want {
			t.Errorf("status %q: %v, %v; want cancelled %v", status, got, err, want)
		}
	}
}

// TestShortPages: a server that serves fewer reservations a page than it
// was asked for while its meta says per_page as asked, with neither total
// nor has_more (the sandbox's SetShortPages), is read on past its short
// pages to an empty one: taking the first short page for the list's end
// left the guests on the pages after it unkeyed, silently. A server that
// does not page at all (every page the whole, short, list) is read from
// its first page.
func TestShortPages(t *testing.T) {
	t.Parallel()
	sb, base, want := portfolioAsRead(t)
	sb.SetShortPages(true)
	for _, per := range []int{2, 3, 7, 50} {
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = per }))
		if err != nil || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("per_page %d: %q, %v; want %q", per, ids(got), err, ids(want))
		}
	}
	// A page past the end refused 400 or 422 (a server validating the
	// page number) ends a list read on by a guess.
	for _, code := range []int{http.StatusBadRequest, http.StatusUnprocessableEntity} {
		base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("page") == "4" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				io.WriteString(w, `{"error":"page out of range"}`)
				return
			}
			sb.ServeHTTP(w, r)
		})).URL
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = 6 }))
		if err != nil || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("page 4 refused %d: %q, %v; want %q", code, ids(got), err, ids(want))
		}
	}
	sb.SetShortPages(false)
	sb.SetIgnorePage(true)
	sb.SetNoHasMore(true)
	sb.SetCursorMeta(true) // per_page alone: no total, has_more or cursor left at the end
	if got, err := readPortfolio(t, newSource(t, base, nil)); err != nil || !slices.Equal(ids(got), ids(want)) {
		t.Errorf("a server that does not page: %q, %v; want %q", ids(got), err, ids(want))
	}
}

// TestOneReservationsAccessesFail: one reservation whose accesses call
// fails (a 500 after the retries, or an answer keysync cannot read) while
// the others answer is read with its PINs unknown (LocksUnread), and the
// read goes on: failing it left every guest of the property unkeyed, run
// after run, for a PIN keysync only shows. When no accesses call answers
// at all, the read fails as before; a rate limit fails it at once.
func TestOneReservationsAccessesFail(t *testing.T) {
	t.Parallel()
	sb, _, want := portfolioAsRead(t)
	for name, answer := range map[string]func(http.ResponseWriter){
		"500": func(w http.ResponseWriter) { http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError) },
		"unreadable": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"data":{}}`)
		},
	} {
		failing := "/open/v1/reservations/G2/accesses"
		base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == failing {
				answer(w)
				return
			}
			sb.ServeHTTP(w, r)
		})).URL
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.Concurrency = 1 }))
		if err != nil || !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("%s: %q, %v; want %q", name, ids(got), err, ids(want))
		}
		for _, st := range got {
			if (st.LocksUnread != "") != (st.Ref.ID == "G2") {
				t.Errorf("%s: %s LocksUnread %q", name, st.Ref.ID, st.LocksUnread)
			}
			if st.Ref.ID == "G5" && len(st.Locks) != 1 {
				t.Errorf("%s: G5's locks not read: %v", name, pins(st))
			}
		}
		// Every accesses call failing: nothing shows the path answers.
		failing = "/open/v1/reservations/"
		base2 := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/accesses") {
				answer(w)
				return
			}
			sb.ServeHTTP(w, r)
		})).URL
		if _, err := readPortfolio(t, newSource(t, base2, nil)); err == nil {
			t.Errorf("%s: every accesses call failing, and the read did not fail", name)
		}
	}
}

// TestEndedStatuses: a status that ends a booking without naming a
// cancellation (declined, expired, a no-show, a guest checked out early;
// by whoever) is read as cancelled: keyed, its door would open for
// someone who will not stay, or no longer does. One that names a
// cancellation is decided by cancelled (cancellation_declined is live);
// one that denies the end, names none, or has an end word about something
// else (payment_declined) stays live: its guest keeps the way in.
func TestEndedStatuses(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	src := newSource(t, base, nil)
	for status, want := range map[string]bool{
		"declined": true, "auto_declined": true, "declined_by_host": true, "rejected": true, "expired": true, "void": true, "deleted": true,
		"no_show": true, "noshow": true, "checked_out": true, "guest_no_show": true,
		"request_declined": true, "inquiry_expired": true, "booking_rejected": true, "reservation_declined": true,
		"cancellation_declined": false, "cancellation_rejected": false, "not_declined": false,
		"checked_in": false, "confirmed": false, "tentative": false, "showing": false, "no_show_cleared": false,
		// An end word about something else than the booking: live.
		"expired_payment_retry": false, "payment_declined": false, "card_declined": false, "extension_rejected": false,
		"change_request_declined": false, "id_document_expired": false, "upgrade_refused": false, "pet_fee_removed": false,
	} {
		if err := sb.SetStatus("G6", status); err != nil {
			t.Fatal(err)
		}
		got, err := src.StaysByID(context.Background(), []string{"G6"})
		if err != nil || (len(got) == 0) != want {
			t.Errorf("status %q: %v, %v; want cancelled %v", status, got, err, want)
		}
	}
}

// portfolioAsRead is a sandbox seeded with the portfolio, its base URL,
// and what a source reads of it before any switch is set.
func portfolioAsRead(t *testing.T) (*sandbox.Server, string, []reconcile.Stay) {
	t.Helper()
	sb, base := portfolioSandbox(t)
	want, err := readPortfolio(t, newSource(t, base, nil))
	if err != nil {
		t.Fatal(err)
	}
	return sb, base, want
}

// TestPINAsNumber: a server that sends PINs as JSON numbers (the sandbox's
// SetPINAsNumber; 004821 arrives as 4821) fails no read: each such PIN is
// read as unreadable, never shown with its leading zeros lost, and the
// reservations are read as before.
func TestPINAsNumber(t *testing.T) {
	t.Parallel()
	sb, base, want := portfolioAsRead(t)
	sb.SetPINAsNumber(true)
	got, err := readPortfolio(t, newSource(t, base, nil))
	if err != nil {
		t.Fatalf("PINs as numbers: %v; want every reservation read", err)
	}
	if !slices.EqualFunc(got, want, func(a, b reconcile.Stay) bool { return a.Ref == b.Ref && a.Cancelled == b.Cancelled }) {
		t.Fatalf("read %v, want %v", got, want)
	}
	for i, st := range got {
		for j, l := range st.Locks {
			wl := want[i].Locks[j]
			digits := strings.Trim(wl.PIN.Reveal(), "0123456789") == ""
			switch {
			case digits && (l.PIN.Reveal() != "" || !l.Unreadable):
				t.Errorf("%s lock %s: PIN %q unreadable %v; want none, unreadable (sent as a number)", st.Ref.ID, l.LockID, l.PIN.Reveal(), l.Unreadable)
			case !digits && (l.PIN != wl.PIN || l.Unreadable):
				t.Errorf("%s lock %s: PIN %q unreadable %v; want %q as sent", st.Ref.ID, l.LockID, l.PIN.Reveal(), l.Unreadable, wl.PIN.Reveal())
			}
		}
	}
}

// TestRefusedDeepPageIsNoEnd: a server that caps how deep a list may be
// paged (page*per_page beyond 100 answers 400) after two full pages is not
// at the list's end: the read fails rather than return the first 100 of
// 120 reservations as the whole list, the rest never keyed. (A refusal
// after a short page is the end: TestShortPages.)
func TestRefusedDeepPageIsNoEnd(t *testing.T) {
	t.Parallel()
	var all []string
	for i := 1; i <= 120; i++ {
		all = append(all, res(fmt.Sprintf("R%03d", i), "2026-01-30", "2026-02-01"))
	}
	list := func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if n*50 > 100 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"result window too large: page*per_page must be <= 100"}`)
			return
		}
		jsonReply(fmt.Sprintf(`{"data":[%s],"meta":{"page":%d,"per_page":50}}`, strings.Join(all[(n-1)*50:n*50], ","), n))(w, r)
	}
	srv := httptest.NewServer(byPath(list, noAccesses))
	defer srv.Close()
	stays, err := newSource(t, srv.URL, nil).Stays(context.Background(), day(t, "2026-01-28"), day(t, "2026-02-05"))
	if err == nil && len(stays) != len(all) {
		t.Errorf("%d of %d reservations read, and no error: the list was cut short silently", len(stays), len(all))
	}
}

// TestBareLists: a server that answers lists as bare JSON arrays, its
// paging told by a Link header, and one reservation as the bare object
// (the sandbox's SetBareLists) is read whole, PINs included, whatever the
// page size, and its reservations are looked up by id.
func TestBareLists(t *testing.T) {
	t.Parallel()
	sb, base, want := portfolioAsRead(t)
	sb.SetBareLists(true)
	same := func(a, b reconcile.Stay) bool {
		return a.Ref == b.Ref && a.Arrival == b.Arrival && a.Departure == b.Departure && a.Cancelled == b.Cancelled && slices.Equal(pins(a), pins(b))
	}
	for _, per := range []int{2, 3, 7, 50} {
		got, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = per }))
		if err != nil || !slices.EqualFunc(got, want, same) {
			t.Errorf("per_page %d: %q, %v; want %q with their PINs", per, ids(got), err, ids(want))
		}
	}
	var live []string
	for _, st := range want {
		if !st.Cancelled {
			live = append(live, st.Ref.ID)
		}
	}
	got, err := newSource(t, base, nil).StaysByID(context.Background(), live)
	if err != nil || !slices.Equal(ids(got), live) {
		t.Errorf("by id: %q, %v; want %q", ids(got), err, live)
	}
}
