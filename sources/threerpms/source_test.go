package threerpms_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	rpmsapi "github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/threerpms"
)

// t0 is the sandbox's business clock in every test.
var t0 = time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)

const (
	ourToken = "our-token"
	ourID    = "keysync"
	property = "hotel"
)

// newSandbox starts a sandbox that knows our token and sandbox.OtherToken,
// with rooms r1, r2 and r3, and returns it with its GraphQL endpoint.
func newSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{
		Integrations: map[string]string{ourToken: ourID, sandbox.OtherToken: sandbox.OtherIntegration},
		Now:          t0,
	})
	for _, r := range []string{"r1", "r2", "r3"} {
		sb.AddRoom(r, "Room "+r)
	}
	return sb, sandboxtest.Serve(t, sb).URL + "/graphql"
}

// newClient returns a Client for endpoint that sends our token.
func newClient(endpoint string) *rpmsapi.Client {
	return mustClient(rpmsapi.ClientOptions{Endpoint: endpoint, Token: ourToken, Transport: httpapi.Transport{Retry: httpapi.Retry{Attempts: 1}}})
}

// addStays adds stays to sb, failing the test on any error.
func addStays(t *testing.T, sb *sandbox.Server, stays ...sandbox.Stay) {
	t.Helper()
	sandboxtest.AddAll(t, sb.AddStay, stays...)
}

// day parses a YYYY-MM-DD date, failing the test if it does not parse.
var day = adaptertest.Day

// readStays reads the stays from from to to (YYYY-MM-DD) through a new
// Source on endpoint, failing the test on an error.
func readStays(t *testing.T, endpoint, from, to string) []reconcile.Stay {
	t.Helper()
	got, err := threerpms.NewSource(newClient(endpoint), property, 0).Stays(t.Context(), day(t, from), day(t, to))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// readFails reads the stays of 2026-01-30..2026-02-05 through a new Source
// on endpoint, a read that must fail: it stops the test when the read
// succeeds, checks no stays come with the error, and returns the error.
func readFails(t *testing.T, endpoint string) error {
	t.Helper()
	got, err := threerpms.NewSource(newClient(endpoint), property, 0).Stays(t.Context(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err == nil {
		t.Fatalf("no error; stays %v", stayIDs(got))
	}
	if got != nil {
		t.Errorf("stays = %v alongside an error, want none", stayIDs(got))
	}
	return err
}

// stayIDs returns the source ids of stays, in order.
var stayIDs = adaptertest.StayIDs

// graphqlBody is a GraphQL request body as a canned server decodes it.
type graphqlBody struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// canned serves bodies as JSON, the i-th request getting bodies[i] (the
// last one once they run out), and records every request body.
type canned struct {
	mu   sync.Mutex
	reqs []graphqlBody
}

// newCanned starts a canned server and returns it with its endpoint.
func newCanned(t *testing.T, bodies ...string) (*canned, string) {
	t.Helper()
	c := &canned{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b graphqlBody
		_ = json.Unmarshal(raw, &b)
		c.mu.Lock()
		n := len(c.reqs)
		c.reqs = append(c.reqs, b)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, bodies[min(n, len(bodies)-1)])
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// requests returns the request bodies received so far.
func (c *canned) requests() []graphqlBody {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

// page renders a room_stays answer with the given nodes (JSON objects) and
// page info.
func page(hasNext bool, endCursor string, nodes ...string) string {
	edges := make([]string, len(nodes))
	for i, n := range nodes {
		edges[i] = `{"node":` + n + `}`
	}
	cursor := "null"
	if endCursor != "" || hasNext {
		cursor = fmt.Sprintf("%q", endCursor)
	}
	return fmt.Sprintf(`{"data":{"room_stays":{"edges":[%s],"pageInfo":{"hasNextPage":%t,"endCursor":%s}}}}`,
		strings.Join(edges, ","), hasNext, cursor)
}

// node renders a RoomStaySubset; key is the roomAccessKey JSON or "null".
func node(id, arrival, departure, key string) string {
	return fmt.Sprintf(`{"id":%q,"room_setup":{"id":"r1","name":"Room r1"},"arrival":%q,"departure":%q,"roomAccessKey":%s}`,
		id, arrival, departure, key)
}

func TestStaysFollowsPages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stays, requests int
	}{
		{0, 1},
		{1, 1},
		{20, 1},
		{21, 2},
		{40, 2},
		{55, 3},
	} {
		t.Run(fmt.Sprint(tc.stays), func(t *testing.T) {
			sb, endpoint := newSandbox(t)
			var want []string
			for i := range tc.stays {
				id := fmt.Sprintf("rs_%02d", i)
				want = append(want, id)
				// Arrivals spread over three days; the sandbox orders by
				// arrival, then id, so the ids come back in order.
				arr := t0.AddDate(0, 0, i*3/max(tc.stays, 1))
				addStays(t, sb, sandbox.Stay{
					ID: id, RoomID: "r1",
					Arrival: arr.Format(time.DateOnly), Departure: arr.AddDate(0, 0, 2).Format(time.DateOnly),
				})
			}
			src := threerpms.NewSource(newClient(endpoint), property, 20)
			got, err := src.Stays(t.Context(), day(t, "2026-01-30"), day(t, "2026-02-05"))
			if err != nil {
				t.Fatal(err)
			}
			if ids := stayIDs(got); !slices.Equal(ids, want) {
				t.Errorf("stays = %v\nwant %v", ids, want)
			}
			reqs := sb.Requests()
			if len(reqs) != tc.requests {
				t.Fatalf("%d requests, want %d: %+v", len(reqs), tc.requests, reqs)
			}
			for _, r := range reqs {
				if r.Status != http.StatusOK || r.Operation != "query" || r.Name != "RoomStays" || r.Integration != ourID {
					t.Errorf("request %+v, want an authenticated RoomStays query answered 200", r)
				}
			}
		})
	}
}

func TestStaysConvertsStay(t *testing.T) {
	t.Parallel()
	sb, endpoint := newSandbox(t)
	sb.AddRoom("r9", "Garden Suite")
	addStays(t, sb, sandbox.Stay{ID: "rs_1", RoomID: "r9", Arrival: "2026-01-31", Departure: "2026-02-03"})

	got := readStays(t, endpoint, "2026-01-30", "2026-02-05")
	want := []reconcile.Stay{{
		Ref:       reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: "rs_1"},
		RoomID:    "r9",
		RoomName:  "Garden Suite",
		Arrival:   day(t, "2026-01-31"),
		Departure: day(t, "2026-02-03"),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stays = %+v\nwant %+v", got, want)
	}
}

// TestStaysFilter checks the 3RPMS Room Access Key API's filter: reservation_from le to and
// reservation_to gt from.
func TestStaysFilter(t *testing.T) {
	t.Parallel()
	sb, endpoint := newSandbox(t)
	addStays(t, sb,
		sandbox.Stay{ID: "departed-before", RoomID: "r1", Arrival: "2026-01-20", Departure: "2026-01-25"},
		sandbox.Stay{ID: "departs-on-from", RoomID: "r1", Arrival: "2026-01-28", Departure: "2026-02-01"},
		sandbox.Stay{ID: "departs-after-from", RoomID: "r2", Arrival: "2026-01-28", Departure: "2026-02-02"},
		sandbox.Stay{ID: "spans-range", RoomID: "r3", Arrival: "2026-01-20", Departure: "2026-02-20"},
		sandbox.Stay{ID: "arrives-on-to", RoomID: "r1", Arrival: "2026-02-05", Departure: "2026-02-08"},
		sandbox.Stay{ID: "arrives-after-to", RoomID: "r2", Arrival: "2026-02-06", Departure: "2026-02-08"},
	)

	got := readStays(t, endpoint, "2026-02-01", "2026-02-05")
	ids := stayIDs(got)
	slices.Sort(ids)
	want := []string{"arrives-on-to", "departs-after-from", "spans-range"}
	if !slices.Equal(ids, want) {
		t.Errorf("stays = %v, want %v", ids, want)
	}
}

func TestStaysDecodesKeys(t *testing.T) {
	t.Parallel()
	sb, endpoint := newSandbox(t)
	addStays(t, sb,
		sandbox.Stay{ID: "pin", RoomID: "r1", Arrival: "2026-01-30", Departure: "2026-02-01"},
		sandbox.Stay{ID: "storage", RoomID: "r2", Arrival: "2026-01-30", Departure: "2026-02-01"},
		sandbox.Stay{ID: "qr", RoomID: "r3", Arrival: "2026-01-30", Departure: "2026-02-01"},
		sandbox.Stay{ID: "ours", RoomID: "r1", Arrival: "2026-02-02", Departure: "2026-02-04"},
		sandbox.Stay{ID: "none", RoomID: "r2", Arrival: "2026-02-02", Departure: "2026-02-04"},
	)
	inject := func(owner string, k sandbox.Key, stay string) string {
		t.Helper()
		id, err := sb.InjectKey(owner, k, stay)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pinID := inject(sandbox.OtherIntegration, sandbox.Key{Type: sandbox.KeyTypePin, PIN: "4711"}, "pin")
	storageID := inject(sandbox.OtherIntegration, sandbox.Key{Type: sandbox.KeyTypeKeyStorage, PIN: "AB12", Compartment: "C7"}, "storage")
	qrID := inject(sandbox.OtherIntegration, sandbox.Key{Type: sandbox.KeyTypeQR, QRData: "qr-payload"}, "qr")
	oursID := inject(ourID, sandbox.Key{Type: sandbox.KeyTypePin, PIN: "9090"}, "ours")

	got := readStays(t, endpoint, "2026-01-30", "2026-02-05")
	keys := map[string]*reconcile.RemoteKey{}
	for _, st := range got {
		keys[st.Ref.ID] = st.Key
	}
	want := map[string]*reconcile.RemoteKey{
		"pin":     {ID: pinID, Type: "RoomAccessPin", PIN: "4711"},
		"storage": {ID: storageID, Type: "RoomAccessKeyStorage", PIN: "AB12"},
		"qr":      {ID: qrID, Type: "RoomAccessQR", QRData: "qr-payload"},
		"ours":    {ID: oursID, Type: "RoomAccessPin", PIN: "9090"},
		"none":    nil,
	}
	for id, w := range want {
		g, ok := keys[id]
		if !ok {
			t.Errorf("stay %s missing", id)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("stay %s: key = %#v, want %#v", id, deref(g), deref(w))
		}
	}
}

// deref shows a key's fields (PIN and QR data revealed) for a failure
// message.
func deref(k *reconcile.RemoteKey) string {
	if k == nil {
		return "nil"
	}
	return fmt.Sprintf("{ID:%q Type:%q PIN:%q QRData:%q}", k.ID, k.Type, k.PIN.Reveal(), k.QRData.Reveal())
}

func TestStaysByID(t *testing.T) {
	t.Parallel()
	sb, endpoint := newSandbox(t)
	addStays(t, sb,
		sandbox.Stay{ID: "a", RoomID: "r1", Arrival: "2026-01-30", Departure: "2026-02-01"},
		sandbox.Stay{ID: "deleted", RoomID: "r2", Arrival: "2026-01-30", Departure: "2026-02-01"},
		sandbox.Stay{ID: "cancelled", RoomID: "r3", Arrival: "2026-01-31", Departure: "2026-02-02", ReservationID: "res_c"},
		// Far outside any read range: StaysByID ignores dates.
		sandbox.Stay{ID: "d", RoomID: "r1", Arrival: "2026-06-01", Departure: "2026-06-05"},
		sandbox.Stay{ID: "e", RoomID: "r2", Arrival: "2026-07-01", Departure: "2026-07-05"},
	)
	if err := sb.DeleteStay("deleted"); err != nil {
		t.Fatal(err)
	}
	if err := sb.CancelReservation("res_c"); err != nil {
		t.Fatal(err)
	}

	src := threerpms.NewSource(newClient(endpoint), property, 2)
	got, err := src.StaysByID(t.Context(), []string{"a", "deleted", "cancelled", "d", "e", "never-existed"})
	if err != nil {
		t.Fatal(err)
	}
	if ids, want := stayIDs(got), []string{"a", "d", "e"}; !slices.Equal(ids, want) {
		t.Errorf("stays = %v, want %v", ids, want)
	}
	// Six ids at two per page: three requests, one per chunk.
	reqs := sb.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3: %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.Name != "RoomStaysByID" || r.Status != http.StatusOK {
			t.Errorf("request %+v, want RoomStaysByID answered 200", r)
		}
	}
}

func TestStaysByIDSendsChunks(t *testing.T) {
	t.Parallel()
	c, endpoint := newCanned(t, page(false, ""))
	ids := []string{"s1", "s2", "s3", "s4", "s5"}
	if _, err := threerpms.NewSource(newClient(endpoint), property, 2).StaysByID(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	var chunks [][]string
	for _, r := range c.requests() {
		var chunk []string
		for _, id := range r.Variables["ids"].([]any) {
			chunk = append(chunk, id.(string))
		}
		chunks = append(chunks, chunk)
		if first := r.Variables["first"]; first != 2.0 {
			t.Errorf("first = %v, want 2", first)
		}
	}
	want := [][]string{{"s1", "s2"}, {"s3", "s4"}, {"s5"}}
	if !reflect.DeepEqual(chunks, want) {
		t.Errorf("chunks = %v, want %v", chunks, want)
	}
}

func TestStaysByIDNoIDs(t *testing.T) {
	t.Parallel()
	sb, endpoint := newSandbox(t)
	got, err := threerpms.NewSource(newClient(endpoint), property, 0).StaysByID(t.Context(), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("StaysByID(nil) = %v, %v; want nothing", got, err)
	}
	if n := len(sb.Requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

// TestStaysUnknownKeyType checks the 3RPMS Room Access Key API's forwards compatibility: a key
// type added after keysync was built decodes as someone's key.
func TestStaysUnknownKeyType(t *testing.T) {
	t.Parallel()
	_, endpoint := newCanned(t, page(false, "",
		node("rs_1", "2026-01-30", "2026-02-01", `{"__typename":"RoomAccessNFC","id":"nfc_1","nfcData":"00ff"}`),
		node("rs_2", "2026-01-30", "2026-02-01", `{"__typename":"RoomAccessPin","id":"rak_2","pin":"1234"}`),
	))
	got, err := threerpms.NewSource(newClient(endpoint), property, 0).
		Stays(t.Context(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if err != nil {
		t.Fatalf("a new key type failed the page: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d stays, want 2", len(got))
	}
	if k := got[0].Key; !reflect.DeepEqual(k, &reconcile.RemoteKey{ID: "nfc_1", Type: "RoomAccessNFC"}) {
		t.Errorf("key = %s, want {ID:nfc_1 Type:RoomAccessNFC}", deref(k))
	}
	if k := got[1].Key; !reflect.DeepEqual(k, &reconcile.RemoteKey{ID: "rak_2", Type: "RoomAccessPin", PIN: "1234"}) {
		t.Errorf("key = %s, want {ID:rak_2 Type:RoomAccessPin PIN:1234}", deref(k))
	}
}

func TestStaysSendsCursor(t *testing.T) {
	t.Parallel()
	c, endpoint := newCanned(t,
		page(true, "c1", node("rs_1", "2026-01-30", "2026-02-01", "null")),
		page(true, "c2", node("rs_2", "2026-01-30", "2026-02-01", "null")),
		page(false, "", node("rs_3", "2026-01-30", "2026-02-01", "null")),
	)
	got := readStays(t, endpoint, "2026-01-30", "2026-02-05")
	if ids, want := stayIDs(got), []string{"rs_1", "rs_2", "rs_3"}; !slices.Equal(ids, want) {
		t.Errorf("stays = %v, want %v", ids, want)
	}
	var cursors []any
	for _, r := range c.requests() {
		cursors = append(cursors, r.Variables["cursor"])
		if r.Variables["start"] != "2026-01-30" || r.Variables["end"] != "2026-02-05" {
			t.Errorf("variables = %v, want start 2026-01-30 and end 2026-02-05", r.Variables)
		}
	}
	if want := []any{nil, "c1", "c2"}; !reflect.DeepEqual(cursors, want) {
		t.Errorf("cursors = %v, want %v", cursors, want)
	}
}

func TestStaysBadPagination(t *testing.T) {
	t.Parallel()
	stay := node("rs_1", "2026-01-30", "2026-02-01", "null")
	for _, tc := range []struct {
		name     string
		pages    []string
		want     string
		requests int
	}{
		{
			name:     "hasNextPage with empty endCursor",
			pages:    []string{page(true, "", stay)},
			want:     "hasNextPage without an endCursor",
			requests: 1,
		},
		{
			name:     "hasNextPage with null endCursor",
			pages:    []string{strings.Replace(page(true, "x", stay), `"endCursor":"x"`, `"endCursor":null`, 1)},
			want:     "hasNextPage without an endCursor",
			requests: 1,
		},
		{
			name:     "cursor repeats",
			pages:    []string{page(true, "c1", stay), page(true, "c2", stay), page(true, "c1", stay)},
			want:     "cursor repeats",
			requests: 3,
		},
		{
			name:     "server never moves on",
			pages:    []string{page(true, "same", stay)},
			want:     "cursor repeats",
			requests: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, endpoint := newCanned(t, tc.pages...)
			if err := readFails(t, endpoint); !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if n := len(c.requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestStaysBadStay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		node string
		want []string
	}{
		{"arrival not a date", node("rs_bad", "30.01.2026", "2026-02-01", "null"), []string{"rs_bad", "arrival"}},
		{"arrival impossible", node("rs_bad", "2026-02-30", "2026-03-01", "null"), []string{"rs_bad", "arrival"}},
		{"departure with time", node("rs_bad", "2026-01-30", "2026-02-01T10:00:00Z", "null"), []string{"rs_bad", "departure"}},
		{"departure empty", node("rs_bad", "2026-01-30", "", "null"), []string{"rs_bad", "departure"}},
		{"no id", node("", "2026-01-30", "2026-02-01", "null"), []string{"without an id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, endpoint := newCanned(t, page(false, "",
				node("rs_ok", "2026-01-30", "2026-02-01", "null"), tc.node))
			err := readFails(t, endpoint)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestStaysKeepsErrorChain checks that the transport's sentinels survive
// the source's wrapping.
func TestStaysKeepsErrorChain(t *testing.T) {
	t.Parallel()
	_, endpoint := newSandbox(t)
	c := mustClient(rpmsapi.ClientOptions{Endpoint: endpoint, Token: "wrong-token"})
	src := threerpms.NewSource(c, property, 0)
	_, err := src.Stays(t.Context(), day(t, "2026-01-30"), day(t, "2026-02-05"))
	if !errors.Is(err, reconcile.ErrUnauthorized) {
		t.Errorf("Stays: err = %v, want ErrUnauthorized", err)
	}
	_, err = src.StaysByID(t.Context(), []string{"rs_1"})
	if !errors.Is(err, reconcile.ErrUnauthorized) {
		t.Errorf("StaysByID: err = %v, want ErrUnauthorized", err)
	}
}
