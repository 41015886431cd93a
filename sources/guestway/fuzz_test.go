package guestway_test

// Fuzz targets for the Guestway answer decoders (row 8 of the README's
// fault matrix): Source.Stays through a real HTTP server that answers the
// reservation list and every reservation's accesses with fuzzed bytes.
// The seed corpus runs in plain `go test`; fuzz with
//
//	go test -run='^$' -fuzz='^FuzzGuestwayReservations$' -fuzztime=30s ./sources/guestway
//	go test -run='^$' -fuzz='^FuzzGuestwayHTTP$' -fuzztime=30s ./sources/guestway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/guestway"
)

const (
	// Canaries: the token and partner key (config) and a lock PIN (answer);
	// none may reach an error.
	fzToken    = "gw_FZCANARY_tok_6e2f"
	fzKey      = "pk-FZCANARY-77aa"
	fzPIN      = "FZPIN4412"
	fzCap      = 4096
	fzAttempts = 2
	fzMaxPages = 3
)

const (
	fzValidList = `{"data":[` +
		`{"id":1042,"status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-02","listing_id":"L1","unit_id":"U7","guest_name":"Ada","guests":{"adults":2,"children":1}},` +
		`{"id":"1043","status":"cancelled","arrival_date":"2026-01-31","departure_date":"2026-02-01","listing_id":3,"unit_id":null,"guest_name":"Bo","guests":null}` +
		`],"meta":{"page":1,"per_page":50,"total":2,"has_more":false}}`
	fzValidAccesses = `{"data":[{"id":"a1","lock_id":"lk_1","lock_name":"Front door","pin":"` + fzPIN + `","valid_from":"2026-01-30T15:00:00Z","valid_to":"2026-02-02T11:00:00Z"}]}`
)

func fzSeeds() [][2][]byte {
	hugeList := `{"data":[` + strings.Repeat(`{"id":1,"status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-02","listing_id":"L1"},`, 60) +
		`{"id":2,"status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-02","listing_id":"L1"}],"meta":{"page":1,"has_more":false}}`
	hugeAcc := `{"data":[` + strings.Repeat(`{"id":"a1","lock_id":"lk_1","lock_name":"Front door","pin":"`+fzPIN+`"},`, 80) + `{}]}`
	html := `<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>`
	pairs := [][2]string{
		{fzValidList, fzValidAccesses},
		{html, fzValidAccesses},
		{fzValidList, html},
		{``, fzValidAccesses},
		{fzValidList, ``},
		{fzValidList[:len(fzValidList)/2], fzValidAccesses},
		{fzValidList, fzValidAccesses[:len(fzValidAccesses)-5]},
		{`null`, `null`},
		{fzValidList, `null`},
		{`{}`, `{}`},
		{fzValidList, `{}`},
		{hugeList, fzValidAccesses},
		{fzValidList, hugeAcc},
		// unknown fields
		{`{"data":[{"id":"r1","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1","channel":"airbnb","price":{"total":1}}],"meta":{"page":1,"has_more":false,"next":"x"},"links":{}}`,
			`{"data":[{"id":"a1","lock_id":9,"lock_name":"Door","pin":"` + fzPIN + `","battery":12}],"meta":{}}`},
		// wrong types
		{`{"data":{"id":1},"meta":[]}`, fzValidAccesses},
		{`{"data":[{"id":1.5,"arrival_date":20260130}],"meta":{"page":"1","has_more":"no"}}`, fzValidAccesses},
		{`{"data":[{"id":"r1","status":"confirmed","arrival_date":"2026-01-30","departure_date":"2026-02-01","guests":{"adults":"two"}}],"meta":{"page":1}}`, fzValidAccesses},
		{fzValidList, `{"data":[{"id":"a1","lock_id":{"x":1},"pin":1234}]}`},
		{fzValidList, `{"data":[{"pin":["` + fzPIN + `"]}]}`},
		{fzValidList, `{"data":"` + fzPIN + `"}`},
		// an unknown status, a type keysync does not know
		{`{"data":[{"__typename":"ReservationV9","id":"r1","status":"on_hold","arrival_date":"2026-01-30","departure_date":"2026-02-01","listing_id":"L1"}],"meta":{"page":1,"has_more":false}}`, fzValidAccesses},
		// bad reservations
		{`{"data":[{"id":"","arrival_date":"2026-01-30","departure_date":"2026-02-01"}],"meta":{"page":1}}`, fzValidAccesses},
		{`{"data":[{"id":"r1","arrival_date":"2026-02-03","departure_date":"2026-02-01"}],"meta":{"page":1}}`, fzValidAccesses},
		{`{"data":[{"id":"r1","arrival_date":"` + fzPIN + `","departure_date":"2026-02-01"}],"meta":{"page":1}}`, fzValidAccesses},
		{`{"data":[{"id":"r1","arrival_date":"2026-01-30","departure_date":"2026-02-01"},{"id":"r1","arrival_date":"2026-01-31","departure_date":"2026-02-02"}],"meta":{"page":1}}`, fzValidAccesses},
		// pagination
		{`{"data":[{"id":"r1","arrival_date":"2026-01-30","departure_date":"2026-02-01"}],"meta":{"has_more":true}}`, fzValidAccesses},
		{`{"data":[],"meta":{"page":1,"has_more":true}}`, fzValidAccesses},
		{`{"data":[{"id":"r1","arrival_date":"2026-01-30","departure_date":"2026-02-01"}],"meta":{"page":7,"has_more":true}}`, fzValidAccesses},
		// error bodies quoting the canaries
		{`{"error":"invalid_api_key","message":"key ` + fzKey + ` token ` + fzToken + `"}`, fzValidAccesses},
		{strings.Repeat(`[`, 300) + strings.Repeat(`]`, 300), fzValidAccesses},
		{"{\"data\":[{\"id\":\"\\ud800\",\"arrival_date\":\"2026-01-30\\u0000\"}],\"meta\":{}}", fzValidAccesses},
		{`{"data":[{"id":99999999999999999999,"arrival_date":"2026-01-30","departure_date":"2026-02-01"}],"meta":{}}`, fzValidAccesses},
	}
	out := make([][2][]byte, len(pairs))
	for i, p := range pairs {
		out[i] = [2][]byte{[]byte(p[0]), []byte(p[1])}
	}
	return out
}

// fzAnswer answers the reservation list with list and every reservation's
// accesses with accesses.
func fzAnswer(srv *fault.Canned, status int, ct string, list, accesses []byte) {
	srv.AnswerFunc(status, ct, func(r *http.Request) []byte {
		if strings.HasSuffix(r.URL.Path, "/accesses") {
			return accesses
		}
		return list
	})
}

func fzStays(t *testing.T, srv *fault.Canned) ([]reconcile.Stay, error) {
	src := newGuestway(t, guestway.Options{
		BaseURL: srv.URL, PartnerKey: fzKey, Token: fzToken, Property: property,
		MaxPages:  fzMaxPages,
		Transport: adaptertest.FuzzLimits(httpapi.Transport{}, fzCap, fzAttempts, t0),
	})
	from, _ := reconcile.ParseDate("2026-01-30")
	to, _ := reconcile.ParseDate("2026-02-05")
	return src.Stays(t.Context(), from, to)
}

func FuzzGuestwayReservations(f *testing.F) {
	for _, p := range fzSeeds() {
		f.Add(p[0], p[1])
	}
	srv := fault.NewCanned(f)
	f.Fuzz(func(t *testing.T, list, accesses []byte) {
		fzAnswer(srv, http.StatusOK, "application/json", list, accesses)
		stays, err := fzStays(t, srv)
		fzCheck(t, srv, http.StatusOK, "application/json", stays, err)
	})
}

func FuzzGuestwayHTTP(f *testing.F) {
	cts := []string{"application/json", "text/html; charset=utf-8", "application/vnd.api+json", "", "application/json; charset=utf-8", "application/JSON", "text/plain; x=\"" + fzToken + "\""}
	statuses := []int{200, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503}
	for i, p := range fzSeeds() {
		f.Add(uint16(statuses[i%len(statuses)]-200), cts[i%len(cts)], p[0], p[1])
	}
	f.Add(uint16(0), "\x7f"+fzToken, []byte(fzValidList), []byte(fzValidAccesses))
	srv := fault.NewCanned(f)
	f.Fuzz(func(t *testing.T, status uint16, ct string, list, accesses []byte) {
		code := fault.Status(status)
		fzAnswer(srv, code, ct, list, accesses)
		stays, err := fzStays(t, srv)
		if !fault.Answered(ct) {
			code = 0
		}
		fzCheck(t, srv, code, ct, stays, err)
	})
}

func fzCheck(t *testing.T, srv *fault.Canned, status int, ct string, stays []reconcile.Stay, err error) {
	t.Helper()
	reqs, served := srv.Requests(), srv.Served()
	var leak []string
	if err != nil {
		leak = adaptertest.Leaks(t, "", []error{err}, "guestway: ", fzToken, fzKey, fzPIN)
		if stays != nil {
			t.Errorf("%d stays alongside an error", len(stays))
		}
	}
	if err == nil {
		if status != http.StatusOK {
			t.Errorf("HTTP %d accepted", status)
		}
		if !fault.IsJSON(ct) {
			t.Errorf("content type %q accepted", ct)
		}
		for _, b := range served {
			switch {
			case len(b) > fzCap:
				t.Errorf("a %d-byte answer (cap %d) was decoded", len(b), fzCap)
			case !json.Valid(b):
				t.Errorf("an answer that is not JSON was decoded: %.100q", b)
			}
		}
	}
	// No retry loop: with a 200 no URL is asked twice, otherwise at most
	// fzAttempts times; the list at most fzMaxPages pages.
	seen := map[string]int{}
	pages := 0
	for _, r := range reqs {
		seen[r.URL]++
		if !strings.Contains(r.URL, "/accesses") {
			pages++
		}
	}
	for r, n := range seen {
		if (status == http.StatusOK && n > 1) || n > fzAttempts {
			t.Errorf("%s asked %d times (HTTP %d)", r, n, status)
		}
	}
	if pages > fzMaxPages*fzAttempts {
		t.Errorf("%d list requests, MaxPages %d", pages, fzMaxPages)
	}
	ids := map[string]bool{}
	for i, st := range stays {
		switch {
		case st.Ref.ID == "":
			t.Errorf("stay %d has no id", i)
		case ids[st.Ref.ID]:
			t.Errorf("stay %s returned twice", st.Ref.ID)
		case st.Ref.Source != reconcile.SystemGuestway || st.Ref.Property != property:
			t.Errorf("stay %d: ref %+v", i, st.Ref)
		case st.Unreadable != "" && (!st.Arrival.IsZero() || !st.Departure.IsZero() || len(st.Locks) > 0):
			t.Errorf("unreadable stay %s (%s): dates %s → %s, %d locks", st.Ref.ID, st.Unreadable, st.Arrival, st.Departure, len(st.Locks))
		case st.Unreadable != "" && (strings.Contains(st.Unreadable, fzToken) || strings.Contains(st.Unreadable, fzKey) || strings.Contains(st.Unreadable, fzPIN)):
			t.Errorf("unreadable stay %s: why quotes a secret: %q", st.Ref.ID, st.Unreadable)
		case st.Unreadable == "" && (st.Arrival.IsZero() || st.Departure.IsZero() || st.Departure.Before(st.Arrival)):
			t.Errorf("stay %s: dates %s → %s", st.Ref.ID, st.Arrival, st.Departure)
		case st.Cancelled && len(st.Locks) > 0:
			t.Errorf("cancelled stay %s has locks", st.Ref.ID)
		}
		ids[st.Ref.ID] = true
	}
	adaptertest.Leaked(t, status, leak, "BUG: guestway puts net/http's transport error, which quotes a malformed answer line, in its error; see TestGuestwayTransportErrorQuotesAnswer")
}

// TestFuzzHarnessDecodesValid makes sure the fuzz harness reaches the
// decoders: the valid seeds decode.
func TestFuzzHarnessDecodesValid(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	fzAnswer(srv, http.StatusOK, "application/json", []byte(fzValidList), []byte(fzValidAccesses))
	stays, err := fzStays(t, srv)
	if err != nil || len(stays) != 2 || stays[0].Ref.ID != "1042" || len(stays[0].Locks) != 1 || stays[0].Locks[0].PIN.Reveal() != fzPIN ||
		!stays[1].Cancelled || len(stays[1].Locks) != 0 {
		t.Fatalf("valid seeds: %+v, %v", stays, err)
	}
}

// TestGuestwayTransportErrorQuotesAnswer: an answer that is not HTTP
// (or has a malformed header line) makes net/http fail with an error that
// quotes the line; guestway's scrubURL removes only the URL, so whatever
// the server sent, a secret it echoed included, reaches the error. (The
// 3RPMS client strips quoted text from transport errors for this reason;
// see its TestMakeRequestMalformedStatusLine.)
func TestGuestwayTransportErrorQuotesAnswer(t *testing.T) {
	t.Parallel()
	raws := fault.NotHTTP(fzToken, "HTTP/1.1 200 OK", "Content-Type", fzToken)
	fault.NotQuoted(t, raws, []string{fzToken}, func(url string) []error {
		src := newGuestway(t, guestway.Options{
			BaseURL: url, PartnerKey: fzKey, Token: fzToken, Property: property,
			Transport: httpapi.Transport{Retry: httpapi.Retry{Attempts: 1}},
		})
		from, _ := reconcile.ParseDate("2026-01-30")
		to, _ := reconcile.ParseDate("2026-02-05")
		_, err := src.Stays(t.Context(), from, to)
		return []error{err}
	})
}
