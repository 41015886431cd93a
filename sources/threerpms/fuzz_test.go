package threerpms_test

// Fuzz targets for the RoomStays response decoder (row 8 of the README's
// fault matrix): Client.MakeRequest and Source.Stays driven through a real HTTP
// server that answers with the fuzzed bytes. The seed corpus runs in plain
// `go test`; fuzz with
//
//	go test -run='^$' -fuzz='^FuzzRoomStaysResponse$' -fuzztime=30s ./sources/threerpms
//	go test -run='^$' -fuzz='^FuzzRoomStaysHTTP$' -fuzztime=30s ./sources/threerpms

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	rpmsapi "github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/threerpms"
)

const (
	// fzToken is the API token: it must never reach an error.
	fzToken = "tok-FZCANARY-9d41e7"
	// fzCap is the response cap the fuzzed client runs with.
	fzCap = 4096
	// fzAttempts is the retry policy's attempts; a fake clock makes its
	// waits free, so a retry loop shows as repeated requests.
	fzAttempts = 2
	fzProperty = "hotel"
)

// fzValid is a valid RoomStays page: two stays, one holding a PIN key.
const fzValid = `{"data":{"room_stays":{"edges":[` +
	`{"node":{"id":"rs_1","room_setup":{"id":"r1","name":"101"},"arrival":"2026-01-30","departure":"2026-02-01","roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_1","pin":"4711"}}},` +
	`{"node":{"id":"rs_2","room_setup":{"id":"r2","name":"102"},"arrival":"2026-01-31","departure":"2026-02-03","roomAccessKey":null}}` +
	`],"pageInfo":{"hasNextPage":false,"endCursor":"c1"}}}}`

// fzSeeds are the seed corpus shared by both targets.
func fzSeeds() [][]byte {
	huge := `{"data":{"room_stays":{"edges":[` + strings.Repeat(`{"node":{"id":"rs_x","room_setup":{"id":"r1","name":"101"},"arrival":"2026-01-30","departure":"2026-02-01","roomAccessKey":null}},`, 200)
	huge = strings.TrimSuffix(huge, ",") + `],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`
	seeds := []string{
		fzValid,
		`<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>`,
		``,
		" \n\t ",
		fzValid[:len(fzValid)/2],
		`null`,
		huge,
		// unknown fields everywhere
		`{"data":{"room_stays":{"edges":[{"cursor":"x","node":{"id":"rs_1","extra":{"a":[1,2]},"room_setup":{"id":"r1","name":"101","floor":3},"arrival":"2026-01-30","departure":"2026-02-01","roomAccessKey":null}}],"pageInfo":{"hasNextPage":false,"endCursor":null,"startCursor":"s"},"totalCount":1}},"extensions":{"cost":3}}`,
		// wrong types
		`{"data":{"room_stays":{"edges":{"node":1},"pageInfo":{"hasNextPage":"yes"}}}}`,
		`{"data":{"room_stays":{"edges":[{"node":{"id":42,"arrival":20260130,"departure":true}}],"pageInfo":{"hasNextPage":false}}}}`,
		`{"data":[],"errors":{}}`,
		`[1,2,3]`,
		`"just a string"`,
		// a key type keysync does not know
		`{"data":{"room_stays":{"edges":[{"node":{"id":"rs_1","room_setup":{"id":"r1","name":"101"},"arrival":"2026-01-30","departure":"2026-02-01","roomAccessKey":{"__typename":"RoomAccessHologram","id":"rak_h","beam":"x"}}}],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`,
		// a key without an id, a stay without dates
		`{"data":{"room_stays":{"edges":[{"node":{"id":"rs_1","arrival":"2026-01-30","departure":"2026-02-01","roomAccessKey":{"__typename":"RoomAccessPin"}}}],"pageInfo":{"hasNextPage":false}}}}`,
		`{"data":{"room_stays":{"edges":[{"node":{"id":"rs_1"}}],"pageInfo":{"hasNextPage":false}}}}`,
		`{"data":{"room_stays":{"edges":[{"node":null}],"pageInfo":{"hasNextPage":false}}}}`,
		// a stay listed twice
		`{"data":{"room_stays":{"edges":[{"node":{"id":"rs_1","arrival":"2026-01-30","departure":"2026-02-01"}},{"node":{"id":"rs_1","arrival":"2026-01-30","departure":"2026-02-02"}}],"pageInfo":{"hasNextPage":false}}}}`,
		// pagination that never ends
		`{"data":{"room_stays":{"edges":[],"pageInfo":{"hasNextPage":true,"endCursor":"same"}}}}`,
		`{"data":{"room_stays":{"edges":[],"pageInfo":{"hasNextPage":true,"endCursor":""}}}}`,
		// GraphQL errors, one quoting the token in its message (redacted)
		`{"data":null,"errors":[{"message":"token ` + fzToken + ` is not allowed here","extensions":{"code":"FORBIDDEN"}}]}`,
		`{"errors":[{"message":"x","locations":[{"line":-1,"column":99999999999}],"path":[1.5,"a",null]}]}`,
		`{"errors":[{"message":"x","path":{"a":1}}]}`,
		// deep nesting
		strings.Repeat(`{"data":`, 200) + `null` + strings.Repeat(`}`, 200),
		"\xff\xfe{\"data\":null}",
	}
	return fault.Bytes(seeds...)
}

// fzStays reads stays through a fresh Source on srv's endpoint: a fresh
// client per input, the server reused.
func fzStays(t *testing.T, srv *fault.Canned) ([]reconcile.Stay, error) {
	c := mustClient(rpmsapi.ClientOptions{
		Endpoint:  srv.URL + "/graphql",
		Token:     fzToken,
		Transport: adaptertest.FuzzTransport(fzCap, fzAttempts, time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)),
	})
	from, _ := reconcile.ParseDate("2026-01-30")
	to, _ := reconcile.ParseDate("2026-02-05")
	return threerpms.NewSource(c, fzProperty, 0).Stays(t.Context(), from, to)
}

// fzRun reads stays from srv, which answers status, ct and body, and
// checks them.
func fzRun(t *testing.T, srv *fault.Canned, status int, ct string, body []byte) {
	stays, err := fzStays(t, srv)
	fzCheckStays(t, srv, status, ct, body, stays, err)
}

// FuzzRoomStaysResponse answers RoomStays with the fuzzed body as a 200
// application/json.
func FuzzRoomStaysResponse(f *testing.F) {
	fault.FuzzBody(f, fzSeeds(), http.StatusOK, "application/json", fzRun)
}

// FuzzRoomStaysHTTP also fuzzes the status and the content type.
func FuzzRoomStaysHTTP(f *testing.F) {
	cts := []string{"application/json", "application/json; charset=utf-8", "application/graphql-response+json", "text/html", "", "application/json; charset", "text/plain; charset=utf-8"}
	statuses := []int{200, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503}
	f.Add(uint16(http.StatusBadRequest-200), "application/json", []byte(`{"errors":[{"message":"bad request: `+fzToken+`"}]}`))
	f.Add(uint16(0), `text/html; charset="`+fzToken+`"`, []byte(fzValid))
	f.Add(uint16(0), "\x7f"+fzToken, []byte(fzValid)) // a malformed header line: a transport error
	fault.FuzzAnswer(f, fzSeeds(), statuses, cts, fzRun)
}

// fzCheckStays checks the properties every answer must keep; known bugs
// are checked last and skip the input, naming the bug.
func fzCheckStays(t *testing.T, srv *fault.Canned, status int, ct string, body []byte, stays []reconcile.Stay, err error) {
	t.Helper()
	reqs := srv.Requests()
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "3rpms: ") {
			t.Errorf("error does not name the system: %q", msg)
		}
		if stays != nil {
			t.Errorf("%d stays returned alongside an error", len(stays))
		}
	}
	served200JSON := status == http.StatusOK && fault.IsJSON(ct)
	if len(body) > fzCap && err == nil {
		t.Errorf("a %d-byte answer (cap %d) was decoded", len(body), fzCap)
	}
	if len(body) > fzCap && served200JSON && err != nil && !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a %d-byte answer (cap %d) gave %q, want a size error", len(body), fzCap, err)
	}
	if !json.Valid(body) && err == nil {
		t.Errorf("an answer that is not JSON was accepted")
	}
	if status != http.StatusOK && err == nil {
		t.Errorf("HTTP %d accepted", status)
	}
	if !fault.IsJSON(ct) && err == nil {
		t.Errorf("content type %q accepted", ct)
	}
	// No retry loop: a 200 is never asked again; anything else at most
	// fzAttempts times; and a page is at most asked twice (the same answer
	// for page 2 repeats the cursor).
	seen := map[string]int{}
	for _, r := range reqs {
		seen[r.String()]++
	}
	for r, n := range seen {
		if (status == http.StatusOK && n > 1) || n > fzAttempts {
			t.Errorf("request sent %d times (HTTP %d): %.200s", n, status, r)
		}
	}
	if len(seen) > 2 {
		t.Errorf("%d distinct requests for one fixed answer, want at most 2 pages", len(seen))
	}
	for i, st := range stays {
		switch {
		case st.Ref.ID == "":
			t.Errorf("stay %d has no id", i)
		case st.Ref.Source != reconcile.System3RPMS || st.Ref.Property != fzProperty:
			t.Errorf("stay %d: ref %+v", i, st.Ref)
		case st.Arrival.IsZero() || st.Departure.IsZero():
			t.Errorf("stay %s: zero date (%s, %s)", st.Ref.ID, st.Arrival, st.Departure)
		case st.Key != nil && st.Key.ID == "":
			t.Errorf("stay %s: key without an id", st.Ref.ID)
		}
		if d, perr := reconcile.ParseDate(st.Arrival.String()); perr != nil || d != st.Arrival {
			t.Errorf("stay %s: arrival %s does not round-trip", st.Ref.ID, st.Arrival)
		}
	}
	if t.Failed() {
		return
	}

	// Known bugs, checked last so that the properties above still hold for
	// these inputs.
	if err != nil && strings.Contains(err.Error(), fzToken) {
		if fzTokenInErrorFields(body) {
			t.Fatal("BUG: 3rpms GraphQL error path/extensions.file reach the error string unredacted (gqlerror.Error.Error); see TestRoomStaysKeepsTheTokenOut/RedactsErrorPath")
		}
		if strings.Contains(ct, fzToken) {
			t.Fatal("BUG (low): 3rpms quotes the raw Content-Type header in its error; see TestRoomStaysKeepsTheTokenOut/QuotesContentType")
		}
		if fzTokenInDates(body) {
			t.Fatal("BUG: 3rpms quotes a stay's arrival/departure value in its error; see TestRoomStaysKeepsTheTokenOut/QuotesDate")
		}
		t.Errorf("error holds the API token: %q", err)
	}
	ids := map[string]bool{}
	for _, st := range stays {
		if ids[st.Ref.ID] {
			t.Fatal("BUG: a stay listed twice is returned twice, and a run then issues two keys for it; see TestRoomStaysDuplicateStay")
		}
		ids[st.Ref.ID] = true
	}
	if err == nil && !fzHasRoomStays(body) {
		t.Fatal("BUG: a 200 without data.room_stays (e.g. {} or null) reads as 'no stays'; see TestRoomStaysWithoutDataIsNotNoStays")
	}
}

// fzHasRoomStays reports whether body holds what the schema makes
// non-null: data.room_stays with edges (a list) and pageInfo.hasNextPage.
func fzHasRoomStays(body []byte) bool {
	var r struct {
		Data *struct {
			RoomStays *struct {
				Edges    *[]json.RawMessage `json:"edges"`
				PageInfo *struct {
					HasNextPage *bool `json:"hasNextPage"`
				} `json:"pageInfo"`
			} `json:"room_stays"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	return r.Data != nil && r.Data.RoomStays != nil && r.Data.RoomStays.Edges != nil &&
		r.Data.RoomStays.PageInfo != nil && r.Data.RoomStays.PageInfo.HasNextPage != nil
}

// fzTokenInErrorFields reports whether the token is in a GraphQL error's
// path or extensions.file, which gqlerror.Error.Error prints.
func fzTokenInErrorFields(body []byte) bool {
	var r struct {
		Errors []struct {
			Path       []any          `json:"path"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	for _, e := range r.Errors {
		if strings.Contains(fmt.Sprint(e.Path...), fzToken) {
			return true
		}
		if f, ok := e.Extensions["file"].(string); ok && strings.Contains(f, fzToken) {
			return true
		}
	}
	return false
}

// fzTokenInDates reports whether the token is in a stay's arrival or
// departure.
func fzTokenInDates(body []byte) bool {
	var r struct {
		Data struct {
			RoomStays struct {
				Edges []struct {
					Node struct {
						Arrival   string `json:"arrival"`
						Departure string `json:"departure"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"room_stays"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	for _, e := range r.Data.RoomStays.Edges {
		if strings.Contains(e.Node.Arrival+e.Node.Departure, fzToken) {
			return true
		}
	}
	return false
}

// TestRoomStaysKeepsTheTokenOut: answers that put the API token where an
// error would show it still get an error without it.
func TestRoomStaysKeepsTheTokenOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ct, body string
		want           string // what the error must not quote
	}{
		// A server that echoes the token in a GraphQL error's path or
		// extensions.file gets it into keysync's error, and so into logs
		// and the run report. The client redacts the token from error
		// messages only; gqlerror.Error.Error also prints the path and the
		// "file" extension.
		{name: "RedactsErrorPath/path", ct: "application/json", want: "the token",
			body: `{"data":null,"errors":[{"message":"denied","path":["room_stays","` + fzToken + `"]}]}`},
		{name: "RedactsErrorPath/file extension", ct: "application/json", want: "the token",
			body: `{"data":null,"errors":[{"message":"denied","extensions":{"file":"` + fzToken + `"}}]}`},
		// A stay's unparsable date is quoted in the error
		// (reconcile.ParseDate's %q), against the client's rule that
		// errors never quote a response body.
		{name: "QuotesDate", ct: "application/json", want: "the field",
			body: `{"data":{"room_stays":{"edges":[{"node":{"id":"rs_1","arrival":"` + fzToken + `","departure":"2026-02-01"}}],"pageInfo":{"hasNextPage":false}}}}`},
		// A 200 whose Content-Type is not JSON is reported with the raw
		// header quoted, parameters included. (Guestway and the key box
		// quote only the parsed media type.)
		{name: "QuotesContentType", ct: `text/html; charset="` + fzToken + `"`, want: "the header's parameters",
			body: fzValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fault.NewCanned(t)
			srv.Answer(http.StatusOK, tc.ct, []byte(tc.body))
			_, err := fzStays(t, srv)
			if err == nil || strings.Contains(err.Error(), fzToken) {
				t.Errorf("err = %v; want an error that does not quote %s", err, tc.want)
			}
		})
	}
}

// TestRoomStaysDuplicateStay: a room_stays answer that lists a stay
// twice (a server paging bug, a stay moved between pages) is returned with
// the stay twice; the planner then plans for each copy, and a backfill
// creates two keys for the stay (the second assign fails with a conflict,
// leaving an extra live key of ours). The Guestway source keeps one stay
// per id; this one should too, or fail the read.
func TestRoomStaysDuplicateStay(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	node := `{"node":{"id":"rs_1","room_setup":{"id":"r1","name":"101"},"arrival":"2026-01-30","departure":"2026-02-01","roomAccessKey":null}}`
	srv.Answer(http.StatusOK, "application/json", []byte(`{"data":{"room_stays":{"edges":[`+node+`,`+node+`],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`))
	stays, err := fzStays(t, srv)
	if err == nil && len(stays) != 1 {
		t.Errorf("%d stays for one stay listed twice; want it once, or an error", len(stays))
	}
}

// TestRoomStaysWithoutDataIsNotNoStays: a 200 answer without
// data.room_stays (an empty object, null, data null without errors) is not
// an answer to RoomStays: room_stays, edges and pageInfo are non-null in
// the schema. keysync reads it as "the property has no stays", and a run
// then plans to withdraw every live key (StaysByID reads the same way, so
// each stay looks gone): the hostile-response case of row 8
// of the README's fault matrix (an empty 200 gives a typed error and no
// state change).
func TestRoomStaysWithoutDataIsNotNoStays(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	for _, body := range []string{`{}`, `null`, `{"data":null}`, `{"data":{}}`, `{"data":{"room_stays":null}}`, `{"data":{"room_stays":{}}}`} {
		srv.Answer(http.StatusOK, "application/json", []byte(body))
		stays, err := fzStays(t, srv)
		if err == nil {
			t.Errorf("body %s: %d stays and no error; want an error naming 3rpms", body, len(stays))
		}
	}
}

// TestFuzzHarnessDecodesValid makes sure the fuzz harness reaches the
// decoder: the valid seed decodes.
func TestFuzzHarnessDecodesValid(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	srv.Answer(http.StatusOK, "application/json", []byte(fzValid))
	stays, err := fzStays(t, srv)
	if err != nil || len(stays) != 2 || stays[0].Key == nil || stays[0].Key.ID != "rak_1" || stays[0].Key.PIN.Reveal() != "4711" || stays[1].Key != nil {
		t.Fatalf("valid seed: %+v, %v", stays, err)
	}
}
