package guestway_test

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
