package sandbox

import (
	"encoding/json"
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

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/webhook"

	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
)

var t0 = time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)

const (
	ourToken = "our-token"
	ourID    = "keysync"
)

// env is a sandbox served for one test, with the requests the tests send.
type env struct{ *sandboxtest.Env[*Server] }

// newEnv starts a sandbox with our integration and OtherIntegration, three
// rooms and five stays:
//
//	rs_1 r1 01-28..01-30  res_1
//	rs_2 r2 01-30..02-02  res_2
//	rs_3 r3 01-31..02-03  res_3 (code MULTI) } one reservation
//	rs_4 r1 01-31..02-03  res_3             }
//	rs_5 r2 02-05..02-07  res_4
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Integrations == nil {
		opts.Integrations = map[string]string{ourToken: ourID, OtherToken: OtherIntegration}
	}
	if opts.Now.IsZero() {
		opts.Now = t0
	}
	sb := New(opts)
	for _, r := range []string{"r1", "r2", "r3"} {
		sb.AddRoom(r, "Room "+r)
	}
	sandboxtest.AddAll(t, sb.AddStay,
		Stay{RoomID: "r1", Arrival: "2026-01-28", Departure: "2026-01-30"},
		Stay{RoomID: "r2", Arrival: "2026-01-30", Departure: "2026-02-02"},
		Stay{RoomID: "r3", Arrival: "2026-01-31", Departure: "2026-02-03", ReservationID: "res_3", ReservationCode: "MULTI"},
		Stay{RoomID: "r1", Arrival: "2026-01-31", Departure: "2026-02-03", ReservationID: "res_3"},
		Stay{RoomID: "r2", Arrival: "2026-02-05", Departure: "2026-02-07"},
	)
	return &env{sandboxtest.Start(t, sb)}
}

// gqlResp is a GraphQL answer, with its errors' codes.
type gqlResp struct{ sandboxtest.Answer }

// post sends a GraphQL request body with token (none when empty); the
// answer must be JSON.
func (e *env) post(token, body string) gqlResp {
	e.T.Helper()
	var bearer string
	if token != "" {
		bearer = "Bearer " + token
	}
	out := sandboxtest.Call(e.T, e.Srv, http.MethodPost, "/graphql", body, sandboxtest.Header("Authorization", bearer))
	if out.Body == nil {
		e.T.Fatalf("response is not a JSON object: %s", out.Raw)
	}
	return gqlResp{out}
}

func (e *env) gql(token, query string, vars map[string]any) gqlResp {
	e.T.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		e.T.Fatal(err)
	}
	return e.post(token, string(b))
}

var dig = sandboxtest.Dig

func (r gqlResp) code(i int) string {
	c, _ := dig(r.Body, "errors", i, "extensions", "code").(string)
	return c
}

const createPin = `mutation($pin:String!){ createRoomAccessKey(input:{roomAccessPin:{pin:$pin}}){ roomAccessKey { id } } }`

func (e *env) createPin(token, pin string) string {
	e.T.Helper()
	r := e.gql(token, createPin, map[string]any{"pin": pin})
	id, _ := dig(r.Body, "data", "createRoomAccessKey", "roomAccessKey", "id").(string)
	if id == "" {
		e.T.Fatalf("create pin: %s", r.Raw)
	}
	return id
}

const addKey = `mutation($s:ID!,$k:ID!){ addRoomAccessKey(input:{roomStayId:$s, roomAccessKeyId:$k}){ roomStay { id roomAccessKey { id } } } }`
const removeKey = `mutation($s:ID!,$k:ID!){ removeRoomAccessKey(input:{roomStayId:$s, roomAccessKeyId:$k}){ roomStay { id roomAccessKey { id } } } }`
const deleteKey = `mutation($k:ID!){ deleteRoomAccessKey(input:{roomAccessKeyId:$k}){ deleted } }`

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, tc := range []struct{ name, header string }{
		{"missing", ""},
		{"unknown token", "Bearer nope"},
		{"wrong scheme", "Basic " + ourToken},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.Srv.URL+"/graphql", strings.NewReader(`{"query":"{ room_stays { edges { cursor } } }"}`))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if got, want := strings.TrimSpace(string(body)), `{"errors":[{"message":"unauthorized: missing or invalid bearer token"}]}`; got != want {
				t.Fatalf("body %s, want %s", got, want)
			}
		})
	}
	reqs := e.SB.Requests()
	if len(reqs) != 4 || reqs[0].Status != 401 || reqs[0].Integration != "" || reqs[0].Operation != "query" {
		t.Fatalf("request log: %+v", reqs)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxRootFields: 2})
	for _, tc := range []struct {
		name, body string
		status     int
		contains   string
		secret     string // must not appear in the response
	}{
		{"syntax", `{"query":"{ room_stays { edges "}`, 400, "Expected", ""},
		{"unknown field", `{"query":"{ room_stays { edges { node { guestName } } } }"}`, 400, `Cannot query field "guestName"`, ""},
		{"unknown root field", `{"query":"{ rooms { id } }"}`, 400, `Cannot query field "rooms"`, ""},
		{"missing variable", `{"query":"mutation($k:ID!){ deleteRoomAccessKey(input:{roomAccessKeyId:$k}){ deleted } }"}`, 400, "must be defined", ""},
		{"variable of wrong type", `{"query":"mutation($i:CreateRoomAccessKeyInput!){ createRoomAccessKey(input:$i){ roomAccessKey { id } } }","variables":{"i":{"roomAccessPin":{"pin":918273}}}}`, 400, "cannot use", "918273"},
		{"int literal pin", `{"query":"mutation { createRoomAccessKey(input:{roomAccessPin:{pin:918273}}){ roomAccessKey { id } } }"}`, 400, "String cannot represent", "918273"},
		{"string token in syntax error", `{"query":"mutation { createRoomAccessKey(input:{roomAccessPin:{pin \"S3CRET9\"}}){ roomAccessKey { id } } }"}`, 400, "Expected", "S3CRET9"},
		{"bad escape", `{"query":"mutation { createRoomAccessKey(input:{roomAccessPin:{pin:\"\\q77SECRET\"}}){ roomAccessKey { id } } }"}`, 400, "Unexpected", "77SECRET"},
		{"not JSON", `query { room_stays }`, 400, "must be JSON", ""},
		{"empty query", `{"query":""}`, 400, "must not be empty", ""},
		{"two operations, no name", `{"query":"query A { room_stays { edges { cursor } } } query B { room_stays { edges { cursor } } }"}`, 400, "operationName", ""},
		{"unknown operation name", `{"query":"query A { room_stays { edges { cursor } } }","operationName":"B"}`, 400, `no operation named "B"`, ""},
		{"too many root fields", `{"query":"mutation { a: deleteRoomAccessKey(input:{roomAccessKeyId:\"x\"}){ deleted } b: deleteRoomAccessKey(input:{roomAccessKeyId:\"y\"}){ deleted } c: deleteRoomAccessKey(input:{roomAccessKeyId:\"z\"}){ deleted } }"}`, 400, "limit is 2", ""},
		{"body too large", `{"query":"` + strings.Repeat(" ", MaxBodyBytes) + `"}`, 413, "too large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(ourToken, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if _, ok := r.Body["data"]; ok {
				t.Errorf("request-level failure has data: %s", r.Raw)
			}
			if msg, _ := dig(r.Body, "errors", 0, "message").(string); !strings.Contains(msg, tc.contains) {
				t.Errorf("message %q does not contain %q", msg, tc.contains)
			}
			if tc.secret != "" && strings.Contains(r.Raw, tc.secret) {
				t.Errorf("response echoes the secret: %s", r.Raw)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	r := e.post(ourToken, `{"query":"{ room_stays { edges { node { guestName } } } }"}`)
	if dig(r.Body, "errors", 0, "locations", 0, "line") != 1.0 {
		t.Errorf("validation error without locations: %s", r.Raw)
	}
	if keys := e.SB.Keys(); len(keys) != 0 {
		t.Errorf("a rejected request created keys: %+v", keys)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	// 45 more stays arriving 02-10..02-14, nine a day; plus ones outside the window.
	for i := range 45 {
		arr := time.Date(2026, 2, 10+i%5, 0, 0, 0, 0, time.UTC)
		if err := e.SB.AddStay(Stay{RoomID: "r3", Arrival: fmtDate(arr), Departure: fmtDate(arr.AddDate(0, 0, 2))}); err != nil {
			t.Fatal(err)
		}
	}
	const q = `query($start:Date! $end:Date! $cursor:String=null $first:Int) {
		room_stays(filter:{reservation_from:{le:$end} reservation_to:{gt:$start}} first:$first after:$cursor) {
			edges { cursor node { id arrival: reservation_from } }
			pageInfo { endCursor hasNextPage }
		}
	}`
	vars := map[string]any{"start": "2026-02-09", "end": "2026-02-14"}
	var ids []string
	var sizes []int
	lastKey := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		r := e.gql(ourToken, q, vars)
		edges, _ := dig(r.Body, "data", "room_stays", "edges").([]any)
		if edges == nil {
			t.Fatalf("no edges: %s", r.Raw)
		}
		sizes = append(sizes, len(edges))
		for i, ed := range edges {
			id := dig(ed, "node", "id").(string)
			key := dig(ed, "node", "arrival").(string) + "|" + id
			if key <= lastKey {
				t.Fatalf("order broken at %s after %s", key, lastKey)
			}
			lastKey = key
			ids = append(ids, id)
			if i == len(edges)-1 && dig(ed, "cursor") != dig(r.Body, "data", "room_stays", "pageInfo", "endCursor") {
				t.Fatalf("endCursor is not the last edge's cursor: %s", r.Raw)
			}
		}
		if dig(r.Body, "data", "room_stays", "pageInfo", "hasNextPage") != true {
			break
		}
		vars["cursor"] = dig(r.Body, "data", "room_stays", "pageInfo", "endCursor")
	}
	if want := []int{20, 20, 5}; !reflect.DeepEqual(sizes, want) {
		t.Fatalf("page sizes %v, want %v", sizes, want)
	}
	if len(ids) != 45 {
		t.Fatalf("%d stays, want 45", len(ids))
	}

	for _, tc := range []struct {
		name  string
		query string
		code  string
		count int
	}{
		{"first too large", `{ room_stays(first: 101) { edges { cursor } } }`, CodeBadUserInput, -1},
		{"negative first", `{ room_stays(first: -1) { edges { cursor } } }`, CodeBadUserInput, -1},
		{"bad cursor", `{ room_stays(after: "bm9wZQ") { edges { cursor } } }`, CodeBadUserInput, -1},
		{"bad date", `{ room_stays(filter:{reservation_from:{ge:"30.01.2026"}}) { edges { cursor } } }`, CodeBadUserInput, -1},
		{"default first", `{ room_stays { edges { cursor } } }`, "", 20},
		{"id eq", `{ room_stays(filter:{id:{eq:"rs_2"}}) { edges { cursor } } }`, "", 1},
		{"id in and date", `{ room_stays(filter:{id:{in:["rs_1","rs_2","rs_5"]} reservation_from:{ge:"2026-01-30"}}) { edges { cursor } } }`, "", 2},
		{"eq date", `{ room_stays(filter:{reservation_to:{eq:"2026-02-03"}} first: 100) { edges { cursor } } }`, "", 2},
		{"lt date", `{ room_stays(filter:{reservation_from:{lt:"2026-01-31"}}) { edges { cursor } } }`, "", 2},
		{"first 0", `{ room_stays(first: 0) { edges { cursor } pageInfo { hasNextPage endCursor } } }`, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.gql(ourToken, tc.query, nil)
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Raw)
			}
			if tc.code != "" {
				if r.code(0) != tc.code || r.Body["data"] != nil || dig(r.Body, "errors", 0, "path", 0) != "room_stays" {
					t.Fatalf("want %s and data null: %s", tc.code, r.Raw)
				}
				return
			}
			if n := len(dig(r.Body, "data", "room_stays", "edges").([]any)); n != tc.count {
				t.Fatalf("%d edges, want %d: %s", n, tc.count, r.Raw)
			}
		})
	}

	// Reservations by code, rooms paginated.
	r := e.gql(ourToken, `query($code:String!,$c:String){ reservations(filter:{code:{eq:$code}}) { edges { node { id code rooms(first:1 after:$c) { edges { node { id room_setup { name } } } pageInfo { hasNextPage endCursor } } } } } }`,
		map[string]any{"code": "MULTI"})
	if dig(r.Body, "data", "reservations", "edges", 0, "node", "id") != "res_3" ||
		dig(r.Body, "data", "reservations", "edges", 0, "node", "rooms", "edges", 0, "node", "id") != "rs_3" ||
		dig(r.Body, "data", "reservations", "edges", 0, "node", "rooms", "pageInfo", "hasNextPage") != true {
		t.Fatalf("reservation page 1: %s", r.Raw)
	}
	cursor := dig(r.Body, "data", "reservations", "edges", 0, "node", "rooms", "pageInfo", "endCursor")
	r = e.gql(ourToken, `query($code:String!,$c:String){ reservations(filter:{code:{eq:$code}}) { edges { node { rooms(first:1 after:$c) { edges { node { id room_setup { name } } } pageInfo { hasNextPage } } } } } }`,
		map[string]any{"code": "MULTI", "c": cursor})
	if dig(r.Body, "data", "reservations", "edges", 0, "node", "rooms", "edges", 0, "node", "id") != "rs_4" ||
		dig(r.Body, "data", "reservations", "edges", 0, "node", "rooms", "edges", 0, "node", "room_setup", "name") != "Room r1" ||
		dig(r.Body, "data", "reservations", "edges", 0, "node", "rooms", "pageInfo", "hasNextPage") != false {
		t.Fatalf("reservation page 2: %s", r.Raw)
	}
}

func TestKeyRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	foreign, err := e.SB.InjectKey(OtherIntegration, Key{Type: KeyTypePin, PIN: "4711"}, "rs_5")
	if err != nil {
		t.Fatal(err)
	}
	unassignedForeign, err := e.SB.InjectKey(OtherIntegration, Key{Type: KeyTypeQR, QRData: "q"})
	if err != nil {
		t.Fatal(err)
	}
	k1 := e.createPin(ourToken, "1234")
	k2 := e.createPin(ourToken, "ABCD")

	type step struct {
		name  string
		query string
		vars  map[string]any
		code  string // "" means success
	}
	create := func(input string) string {
		return `mutation { createRoomAccessKey(input:` + input + `){ roomAccessKey { id } } }`
	}
	sk := func(s, k string) map[string]any { return map[string]any{"s": s, "k": k} }
	steps := []step{
		{"pin mixed case", create(`{roomAccessPin:{pin:"abcDEF"}}`), nil, CodeBadUserInput},
		{"pin 11 chars", create(`{roomAccessPin:{pin:"12345678901"}}`), nil, CodeBadUserInput},
		{"pin with dash", create(`{roomAccessPin:{pin:"12-34"}}`), nil, CodeBadUserInput},
		{"pin empty", create(`{roomAccessPin:{pin:""}}`), nil, CodeBadUserInput},
		{"pin 10 lower", create(`{roomAccessPin:{pin:"abcdef1234"}}`), nil, ""},
		{"storage pin mixed", create(`{roomAccessKeyStorage:{pin:"aB1",compartment:"3R"}}`), nil, CodeBadUserInput},
		{"compartment 11", create(`{roomAccessKeyStorage:{pin:"1",compartment:"ABCDEFGHIJK"}}`), nil, CodeBadUserInput},
		{"compartment dash", create(`{roomAccessKeyStorage:{pin:"1",compartment:"3-R"}}`), nil, CodeBadUserInput},
		{"storage ok", create(`{roomAccessKeyStorage:{pin:"1234567890",compartment:"3R"}}`), nil, ""},
		{"qr 513", create(`{roomAccessQR:{qrData:"` + strings.Repeat("q", 513) + `"}}`), nil, CodeBadUserInput},
		{"qr empty", create(`{roomAccessQR:{qrData:""}}`), nil, CodeBadUserInput},
		{"qr 512", create(`{roomAccessQR:{qrData:"` + strings.Repeat("q", 512) + `"}}`), nil, ""},
		{"no type", create(`{}`), nil, CodeBadUserInput},
		{"two types", create(`{roomAccessPin:{pin:"1"} roomAccessQR:{qrData:"x"}}`), nil, CodeBadUserInput},

		{"add unknown stay", addKey, sk("rs_99", k1), CodeNotFound},
		{"add unknown key", addKey, sk("rs_2", "rak_999"), CodeNotFound},
		{"add foreign key", addKey, sk("rs_2", unassignedForeign), CodeForbidden},
		{"probe foreign key on its stay", addKey, sk("rs_5", foreign), CodeForbidden},
		{"add ours to stay with foreign key", addKey, sk("rs_5", k1), CodeConflict},
		{"add", addKey, sk("rs_2", k1), ""},
		{"re-add same key (probe)", addKey, sk("rs_2", k1), ""},
		{"second key", addKey, sk("rs_2", k2), CodeConflict},
		{"same key on another stay", addKey, sk("rs_3", k1), ""},
		{"other integration adds our key", addKey, sk("rs_4", k1), CodeForbidden},
		{"delete assigned", deleteKey, map[string]any{"k": k1}, CodeConflict},
		{"remove not held", removeKey, sk("rs_4", k1), CodeNotFound},
		{"remove foreign", removeKey, sk("rs_5", foreign), CodeForbidden},
		{"remove", removeKey, sk("rs_2", k1), ""},
		{"remove again", removeKey, sk("rs_2", k1), CodeNotFound},
		{"delete still on rs_3", deleteKey, map[string]any{"k": k1}, CodeConflict},
		{"remove from rs_3", removeKey, sk("rs_3", k1), ""},
		{"delete foreign", deleteKey, map[string]any{"k": unassignedForeign}, CodeForbidden},
		{"delete", deleteKey, map[string]any{"k": k1}, ""},
		{"delete again", deleteKey, map[string]any{"k": k1}, CodeNotFound},
		{"add deleted", addKey, sk("rs_2", k1), CodeNotFound},
		{"second key now fits", addKey, sk("rs_2", k2), ""},
	}
	for _, st := range steps {
		token := ourToken
		if st.name == "other integration adds our key" {
			token = OtherToken
		}
		r := e.gql(token, st.query, st.vars)
		if r.Status != 200 {
			t.Fatalf("%s: status %d: %s", st.name, r.Status, r.Raw)
		}
		if r.code(0) != st.code {
			t.Fatalf("%s: code %q, want %q: %s", st.name, r.code(0), st.code, r.Raw)
		}
		if st.code != "" {
			msg, _ := dig(r.Body, "errors", 0, "message").(string)
			for _, secret := range []string{"abcDEF", "12345678901", "12-34", "ABCDEFGHIJK", "3-R", "qqqq", "4711"} {
				if strings.Contains(msg, secret) {
					t.Fatalf("%s: message echoes a secret: %s", st.name, msg)
				}
			}
		}
	}
	// The foreign key stays visible to us (reading is allowed).
	r := e.gql(ourToken, `{ room_stays(filter:{id:{eq:"rs_5"}}) { edges { node { roomAccessKey { __typename id ... on RoomAccessPin { pin } } } } } }`, nil)
	if dig(r.Body, "data", "room_stays", "edges", 0, "node", "roomAccessKey", "pin") != "4711" {
		t.Fatalf("foreign key not readable: %s", r.Raw)
	}
	// The messages name the rule.
	r = e.gql(ourToken, create(`{roomAccessPin:{pin:"abcDEF"}}`), nil)
	if got := dig(r.Body, "errors", 0, "message"); got != msgPin {
		t.Fatalf("message %q, want %q", got, msgPin)
	}
}

func TestMutationsRunInOrderAndFailIndependently(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := e.gql(ourToken, `mutation {
		first: createRoomAccessKey(input:{roomAccessPin:{pin:"1111"}}) { roomAccessKey { id } }
		broken: addRoomAccessKey(input:{roomStayId:"rs_2", roomAccessKeyId:"rak_404"}) { roomStay { id } }
		third: createRoomAccessKey(input:{roomAccessQR:{qrData:"https://x"}}) { roomAccessKey { id ... on RoomAccessQR { qrData } } }
		assign: addRoomAccessKey(input:{roomStayId:"rs_2", roomAccessKeyId:"rak_1"}) { roomStay { id arrival: reservation_from roomAccessKey { id } } }
	}`, nil)
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Raw)
	}
	want := `{"data":{"first":{"roomAccessKey":{"id":"rak_1"}},"broken":null,"third":{"roomAccessKey":{"id":"rak_2","qrData":"https://x"}},` +
		`"assign":{"roomStay":{"id":"rs_2","arrival":"2026-01-30","roomAccessKey":{"id":"rak_1"}}}},` +
		`"errors":[{"message":"roomAccessKeyId: room access key rak_404 not found","locations":[{"line":3,"column":3}],"path":["broken"],"extensions":{"code":"NOT_FOUND"}}]}`
	if strings.TrimSpace(r.Raw) != want {
		t.Fatalf("response\n%s\nwant\n%s", r.Raw, want)
	}
	reqs := e.SB.Requests()
	last := reqs[len(reqs)-1]
	if last.Operation != "mutation" || last.FieldCount != 4 || !reflect.DeepEqual(last.Fields,
		[]string{"createRoomAccessKey", "addRoomAccessKey", "createRoomAccessKey", "addRoomAccessKey"}) || last.Integration != ourID {
		t.Fatalf("log entry %+v", last)
	}
}

func TestCancelledStays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	k := e.createPin(ourToken, "2222")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": k}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	if err := e.SB.CancelReservation("res_2"); err != nil {
		t.Fatal(err)
	}
	r := e.gql(ourToken, `{ room_stays(filter:{id:{in:["rs_1","rs_2"]}}) { edges { node { id } } } }`, nil)
	if n := len(dig(r.Body, "data", "room_stays", "edges").([]any)); n != 1 {
		t.Fatalf("cancelled stay visible: %s", r.Raw)
	}
	k2 := e.createPin(ourToken, "3333")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_1", "k": k2}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	// cancel MULTI: reservation query hides it
	if err := e.SB.CancelReservation("res_3"); err != nil {
		t.Fatal(err)
	}
	r = e.gql(ourToken, `{ reservations(filter:{code:{eq:"MULTI"}}) { edges { node { id } } } }`, nil)
	if n := len(dig(r.Body, "data", "reservations", "edges").([]any)); n != 0 {
		t.Fatalf("cancelled reservation visible: %s", r.Raw)
	}
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_3", "k": k}); r.code(0) != CodeNotFound {
		t.Fatalf("add on cancelled stay: %s", r.Raw)
	}
	if r := e.gql(ourToken, removeKey, map[string]any{"s": "rs_2", "k": k}); r.code(0) != "" {
		t.Fatalf("remove on cancelled stay: %s", r.Raw)
	}
	if err := e.SB.ReactivateReservation("res_2"); err != nil {
		t.Fatal(err)
	}
	r = e.gql(ourToken, `{ room_stays(filter:{id:{eq:"rs_2"}}) { edges { node { id roomAccessKey { id } } } } }`, nil)
	if dig(r.Body, "data", "room_stays", "edges", 0, "node", "id") != "rs_2" || dig(r.Body, "data", "room_stays", "edges", 0, "node", "roomAccessKey") != nil {
		t.Fatalf("reactivated stay: %s", r.Raw)
	}
	// Deleting a stay drops its assignment.
	if err := e.SB.DeleteStay("rs_1"); err != nil {
		t.Fatal(err)
	}
	for _, kv := range e.SB.Keys() {
		if kv.ID == k2 && len(kv.StayIDs) != 0 {
			t.Fatalf("deleted stay still holds the key: %+v", kv)
		}
	}
	if r := e.gql(ourToken, removeKey, map[string]any{"s": "rs_1", "k": k2}); r.code(0) != CodeNotFound {
		t.Fatalf("remove on deleted stay: %s", r.Raw)
	}
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})                 // business clock 2026-01-30 12:00
	departed := e.createPin(ourToken, "5555") // rs_2 departs 02-02
	shared := e.createPin(ourToken, "6666")   // rs_1 departs 01-30, rs_4 departs 02-03
	loose := e.createPin(ourToken, "7777")    // never assigned
	for _, a := range [][2]string{{"rs_2", departed}, {"rs_1", shared}, {"rs_4", shared}} {
		if r := e.gql(ourToken, addKey, map[string]any{"s": a[0], "k": a[1]}); r.code(0) != "" {
			t.Fatal(r.Raw)
		}
	}
	state := func() map[string]KeyView {
		out := map[string]KeyView{}
		for _, k := range e.SB.Keys() {
			out[k.ID] = k
		}
		return out
	}
	e.SB.Advance(35 * time.Hour) // 01-31 23:00
	ks := state()
	if ks[loose].Deleted || len(ks[shared].StayIDs) != 2 {
		t.Fatalf("cleanup too early: %+v", ks)
	}
	e.SB.Advance(12 * time.Hour) // 02-01 11:00: rs_1 departed 01-30, 2 days ago
	ks = state()
	if ks[shared].Deleted || !reflect.DeepEqual(ks[shared].StayIDs, []string{"rs_4"}) {
		t.Fatalf("shared key: %+v", ks[shared])
	}
	if ks[loose].Deleted {
		t.Fatalf("unassigned key deleted after 47h: %+v", ks[loose])
	}
	e.SB.Advance(time.Hour) // 02-01 12:00: loose is 48h unassigned
	ks = state()
	if !ks[loose].Deleted || ks[loose].DeletedBy != "cleanup" {
		t.Fatalf("unassigned key not deleted after 2 days: %+v", ks[loose])
	}
	e.SB.SetNow(time.Date(2026, 2, 3, 23, 0, 0, 0, time.UTC)) // rs_2 departed 02-02: not yet 2 days
	if ks = state(); ks[departed].Deleted {
		t.Fatalf("deleted a day after departure: %+v", ks[departed])
	}
	// Cleanup also runs lazily before a request.
	e.SB.mu.Lock()
	e.SB.clock.SetNow(time.Date(2026, 2, 4, 0, 0, 0, 0, time.UTC))
	e.SB.mu.Unlock()
	r := e.gql(ourToken, `{ room_stays(filter:{id:{eq:"rs_2"}}) { edges { node { roomAccessKey { id } } } } }`, nil)
	if dig(r.Body, "data", "room_stays", "edges", 0, "node", "roomAccessKey") != nil {
		t.Fatalf("key still on stay 2 days after departure: %s", r.Raw)
	}
	if r := e.gql(ourToken, deleteKey, map[string]any{"k": departed}); r.code(0) != CodeNotFound {
		t.Fatalf("cleaned-up key can still be deleted: %s", r.Raw)
	}
}

// TestCleanupAfterAChange: the cleanup rule skips its scan until the next
// thing falls due, but a change that brings work forward (a stay's dates
// moved into the past, with the clock still) is cleaned at the next request.
func TestCleanupAfterAChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}) // business clock 2026-01-30 12:00
	k := e.createPin(ourToken, "5555")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": k}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	if err := e.SB.ChangeDates("rs_2", "2026-01-20", "2026-01-25"); err != nil {
		t.Fatal(err)
	}
	r := e.gql(ourToken, `{ room_stays(filter:{id:{eq:"rs_2"}}) { edges { node { roomAccessKey { id } } } } }`, nil)
	if dig(r.Body, "data", "room_stays", "edges", 0, "node", "roomAccessKey") != nil {
		t.Fatalf("key still on a stay that departed 5 days ago: %s", r.Raw)
	}
}

// TestCleanupInTheClocksZone: a stay's key is cleaned once the business
// clock's own date is two days past departure, also when the clock is in
// a zone east of UTC (its date turns before UTC's) and the scans it skips
// were timed before the clock moved.
func TestCleanupInTheClocksZone(t *testing.T) {
	t.Parallel()
	cest := time.FixedZone("CEST", 2*3600)
	e := newEnv(t, Options{Now: t0.In(cest)})
	k := e.createPin(ourToken, "5555")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": k}); r.code(0) != "" { // rs_2 departs 02-02
		t.Fatal(r.Raw)
	}
	q := `{ room_stays(filter:{id:{eq:"rs_2"}}) { edges { node { roomAccessKey { id } } } } }`
	e.gql(ourToken, q, nil) // the scan notes when the key falls due
	e.SB.mu.Lock()
	e.SB.clock.SetNow(time.Date(2026, 2, 4, 0, 30, 0, 0, cest)) // 02-03 22:30 UTC
	e.SB.mu.Unlock()
	r := e.gql(ourToken, q, nil)
	if dig(r.Body, "data", "room_stays", "edges", 0, "node", "roomAccessKey") != nil {
		t.Fatalf("key still on the stay on the clock's 02-04, two days after departure: %s", r.Raw)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 30, 23, 59, 50, 0, time.UTC)
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RatePerSecond: 5, Burst: 10, DailyCap: 13, RateNow: func() time.Time { return now }}})
	const q = `{ room_stays(first:1) { edges { cursor } } }`
	ours := func() sandboxtest.Answer { return e.gql(ourToken, q, nil).Answer }
	sandboxtest.Admits(t, "the burst", 10, 200, ours)
	r := e.gql(ourToken, q, nil)
	sandboxtest.RateLimited(t, "burst", r.Answer, "1")
	if r.code(0) != CodeRateLimited {
		t.Fatalf("burst: %s", r.Raw)
	}
	if r := e.gql(OtherToken, q, nil); r.Status != 200 {
		t.Fatalf("limits are per token: %d", r.Status)
	}
	now = now.Add(200 * time.Millisecond)
	if r := e.gql(ourToken, q, nil); r.Status != 200 {
		t.Fatalf("after 200ms: %d", r.Status)
	}
	now = now.Add(time.Second)
	sandboxtest.Admits(t, "under cap", 2, 200, ours)
	now = now.Add(time.Second)
	// The 14th request: over the daily cap of 13.
	sandboxtest.RateLimited(t, "daily cap", ours(), "8")
	now = now.Add(8 * time.Second) // next UTC day
	if r := e.gql(ourToken, q, nil); r.Status != 200 {
		t.Fatalf("next day: %d", r.Status)
	}
	var statuses []int
	for _, rq := range e.SB.Requests() {
		statuses = append(statuses, rq.Status)
	}
	if statuses[10] != 429 || statuses[15] != 429 || len(statuses) != 17 {
		t.Fatalf("log statuses %v", statuses)
	}
}

func TestFragmentsAndTypename(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if _, err := e.SB.InjectKey(ourID, Key{Type: KeyTypePin, PIN: "1234"}, "rs_2"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SB.InjectKey(ourID, Key{Type: KeyTypeKeyStorage, PIN: "999", Compartment: "3R"}, "rs_3", "rs_4"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SB.InjectKey(ourID, Key{Type: KeyTypeQR, QRData: "qr!"}, "rs_5"); err != nil {
		t.Fatal(err)
	}
	r := e.gql(ourToken, `query Keys($skip: Boolean = true) {
		__typename
		stays: room_stays(filter:{reservation_from:{ge:"2026-01-30"}}) {
			edges { node { ...S } }
		}
	}
	fragment S on RoomStay {
		id
		room: room_setup { id @skip(if: $skip) name }
		roomAccessKey {
			__typename
			...K
			... on RoomAccessPin { pin }
			... on RoomAccessKeyStorage { pin compartment }
			... on RoomAccessQR { qrData }
		}
	}
	fragment K on RoomAccessKey { id }`, nil)
	want := `{"data":{"__typename":"Query","stays":{"edges":[` +
		`{"node":{"id":"rs_2","room":{"name":"Room r2"},"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_1","pin":"1234"}}},` +
		`{"node":{"id":"rs_3","room":{"name":"Room r3"},"roomAccessKey":{"__typename":"RoomAccessKeyStorage","id":"rak_2","pin":"999","compartment":"3R"}}},` +
		`{"node":{"id":"rs_4","room":{"name":"Room r1"},"roomAccessKey":{"__typename":"RoomAccessKeyStorage","id":"rak_2","pin":"999","compartment":"3R"}}},` +
		`{"node":{"id":"rs_5","room":{"name":"Room r2"},"roomAccessKey":{"__typename":"RoomAccessQR","id":"rak_3","qrData":"qr!"}}}]}}}`
	if strings.TrimSpace(r.Raw) != want {
		t.Fatalf("response\n%s\nwant\n%s", r.Raw, want)
	}
	rq := e.SB.Requests()[0]
	if rq.Name != "Keys" || rq.Operation != "query" || !reflect.DeepEqual(rq.Fields, []string{"__typename", "room_stays"}) {
		t.Fatalf("log entry %+v", rq)
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	call := func(method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		return sandboxtest.Want(t, e.Srv, method, path, body, wantStatus).Body
	}
	call("POST", "/_sandbox/rooms", `{"id":"r9","name":"9"}`, 201)
	st := call("POST", "/_sandbox/stays", `{"room_id":"r9","arrival":"2026-02-01","departure":"2026-02-03","reservation_code":"ADM1"}`, 201)
	id := st["id"].(string)
	call("POST", "/_sandbox/stays", `{"room_id":"nope","arrival":"2026-02-01","departure":"2026-02-03"}`, 404)
	call("POST", "/_sandbox/stays", `{"room_id":"r9","arrival":"2026-02-04","departure":"2026-02-03"}`, 400)
	call("POST", "/_sandbox/stays", `{"room_id":"r9","arival":"2026-02-04"}`, 400)
	if got := call("PATCH", "/_sandbox/stays/"+id, `{"departure":"2026-02-05","room_id":"r1"}`, 200); got["departure"] != "2026-02-05" || got["room_id"] != "r1" || got["arrival"] != "2026-02-01" {
		t.Fatalf("patch: %v", got)
	}
	call("PATCH", "/_sandbox/stays/"+id, `{"room_id":"zz","arrival":"2026-01-01"}`, 404)
	if got := call("POST", "/_sandbox/stays/"+id+"/move", `{"room_id":"r9"}`, 200); got["room_id"] != "r9" || got["arrival"] != "2026-02-01" {
		t.Fatalf("move: %v", got)
	}
	resID := st["reservation_id"].(string)
	call("POST", "/_sandbox/reservations/"+resID+"/cancel", ``, 200)
	if v, _ := e.SB.Stay(id); !v.Cancelled {
		t.Fatalf("not cancelled: %+v", v)
	}
	call("POST", "/_sandbox/reservations/"+resID+"/reactivate", ``, 200)
	call("POST", "/_sandbox/reservations/nope/cancel", ``, 404)
	if got := call("DELETE", "/_sandbox/stays/"+id, ``, 200); got["deleted"] != true {
		t.Fatalf("delete: %v", got)
	}
	call("DELETE", "/_sandbox/stays/"+id, ``, 404)
	if got := call("GET", "/_sandbox/stays", ``, 200); len(got["stays"].([]any)) != 6 {
		t.Fatalf("stays: %v", got)
	}
	if got := call("GET", "/_sandbox/rooms", ``, 200); len(got["rooms"].([]any)) != 4 {
		t.Fatalf("rooms: %v", got)
	}
	if got := call("GET", "/_sandbox/clock", ``, 200); got["now"] != "2026-01-30T12:00:00Z" || got["today"] != "2026-01-30" {
		t.Fatalf("clock: %v", got)
	}
	if got := call("POST", "/_sandbox/clock", `{"advance":"36h"}`, 200); got["today"] != "2026-02-01" {
		t.Fatalf("advance: %v", got)
	}
	if got := call("POST", "/_sandbox/clock", `{"now":"2026-03-01T08:00:00Z"}`, 200); got["now"] != "2026-03-01T08:00:00Z" {
		t.Fatalf("set: %v", got)
	}
	call("POST", "/_sandbox/clock", `{"now":"2026-03-01T08:00:00Z","advance":"1h"}`, 400)
	call("POST", "/_sandbox/clock", `{"advance":"soon"}`, 400)
	e.SB.SetNow(t0)
	k := e.createPin(ourToken, "8888")
	if got := call("GET", "/_sandbox/keys", ``, 200); dig(got, "keys", 0, "id") != k || dig(got, "keys", 0, "pin") != "8888" || dig(got, "keys", 0, "owner") != ourID {
		t.Fatalf("keys: %v", got)
	}
	if got := call("GET", "/_sandbox/requests", ``, 200); got["count"] != 1.0 || dig(got, "requests", 0, "integration") != ourID || dig(got, "requests", 0, "fields", 0) != "createRoomAccessKey" {
		t.Fatalf("requests: %v", got)
	}
	sandboxtest.ClearRequests(t, e.Srv)
	call("GET", "/_sandbox/nope", ``, 404)
	call("GET", "/graphql", ``, 405)

	// The route list served at GET /_sandbox/ is the one in the package comment.
	sandboxtest.RoutesDocumented(t, e.Srv)
}

func TestSeedDemo(t *testing.T) {
	t.Parallel()
	build := func() *Server {
		sb := New(Options{Now: t0, Integrations: map[string]string{ourToken: ourID}})
		sb.SeedDemo(20)
		return sb
	}
	a, b := build(), build()
	if !reflect.DeepEqual(a.Stays(), b.Stays()) || !reflect.DeepEqual(a.Keys(), b.Keys()) {
		t.Fatal("SeedDemo is not deterministic")
	}
	stays := a.Stays()
	var arrToday, arrTomorrow, inHouse, depToday, departed3, cancelled, foreign int
	today, occupied := "2026-01-30", 0
	perRes := map[string]int{}
	for _, st := range stays {
		perRes[st.ReservationID]++
		switch {
		case st.Cancelled:
			cancelled++
			continue
		case st.Arrival == today:
			arrToday++
		case st.Arrival == "2026-01-31":
			arrTomorrow++
		case st.Departure == today:
			depToday++
		case st.Arrival < today && st.Departure > today:
			inHouse++
		case st.Departure <= "2026-01-27":
			departed3++
		}
		if st.Arrival <= today && st.Departure > today {
			occupied++
		}
		if st.KeyID != "" {
			foreign++
		}
	}
	multi := 0
	for _, n := range perRes {
		if n > 1 {
			multi++
		}
	}
	if arrToday == 0 || arrTomorrow == 0 || inHouse == 0 || depToday == 0 || departed3 < 2 || cancelled < 1 || cancelled > 2 || foreign != 3 || multi < 1 {
		t.Fatalf("seed lacks a case: arrToday=%d arrTomorrow=%d inHouse=%d depToday=%d departed3=%d cancelled=%d foreign=%d multi=%d",
			arrToday, arrTomorrow, inHouse, depToday, departed3, cancelled, foreign, multi)
	}
	if occ := float64(occupied) / 20; occ < 0.5 || occ > 0.8 {
		t.Errorf("occupancy tonight %.0f%%", occ*100)
	}
	for _, k := range a.Keys() {
		if k.Owner != OtherIntegration || len(k.StayIDs) != 1 {
			t.Fatalf("seeded key %+v", k)
		}
	}
	// The ownership probe: re-adding another integration's key is FORBIDDEN for
	// us and succeeds for its owner.
	e := &env{sandboxtest.Start(t, a)}
	k := a.Keys()[0]
	vars := map[string]any{"s": k.StayIDs[0], "k": k.ID}
	if r := e.gql(ourToken, addKey, vars); r.code(0) != CodeForbidden {
		t.Fatalf("probe as us: %s", r.Raw)
	}
	if r := e.gql(OtherToken, addKey, vars); r.code(0) != "" {
		t.Fatalf("probe as owner: %s", r.Raw)
	}
}

func TestGoAPIErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"duplicate stay id", e.SB.AddStay(Stay{ID: "rs_1", RoomID: "r1", Arrival: "2026-02-01", Departure: "2026-02-02"}), CodeConflict},
		{"bad date", e.SB.AddStay(Stay{RoomID: "r1", Arrival: "01/02/2026", Departure: "2026-02-02"}), CodeBadUserInput},
		{"reservation code mismatch", e.SB.AddStay(Stay{RoomID: "r1", Arrival: "2026-02-01", Departure: "2026-02-02", ReservationID: "res_3", ReservationCode: "X"}), CodeConflict},
		{"change dates unknown", e.SB.ChangeDates("rs_99", "2026-02-01", "2026-02-02"), CodeNotFound},
		{"move unknown room", e.SB.MoveStay("rs_1", "r99"), CodeNotFound},
		{"cancel unknown", e.SB.CancelReservation("res_99"), CodeNotFound},
		{"delete unknown", e.SB.DeleteStay("rs_99"), CodeNotFound},
		{"inject bad pin", func() error {
			_, err := e.SB.InjectKey(OtherIntegration, Key{Type: KeyTypePin, PIN: "aB"}, "rs_1")
			return err
		}(), CodeBadUserInput},
	} {
		if got := errCode(tc.err); got != tc.code {
			t.Errorf("%s: %v (code %q), want %s", tc.name, tc.err, got, tc.code)
		}
		if tc.err != nil && !strings.HasPrefix(tc.err.Error(), "sandbox: ") {
			t.Errorf("%s: error lacks context: %v", tc.name, tc.err)
		}
	}
	if err := e.SB.ChangeDates("rs_1", "2026-02-10", "2026-02-12"); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.SB.Stay("rs_1"); v.Arrival != "2026-02-10" || v.Departure != "2026-02-12" {
		t.Fatalf("change dates: %+v", v)
	}
}

// TestMessageOnlyErrors: with the switch on, the same failing alias comes
// back as an error with its message alone (no code, path or locations),
// the other fields still run, and the admin API turns it on and off.
func TestMessageOnlyErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MessageOnlyErrors: true})
	r := e.gql(ourToken, `mutation {
		first: createRoomAccessKey(input:{roomAccessPin:{pin:"1111"}}) { roomAccessKey { id } }
		broken: addRoomAccessKey(input:{roomStayId:"rs_2", roomAccessKeyId:"rak_404"}) { roomStay { id } }
	}`, nil)
	want := `{"data":{"first":{"roomAccessKey":{"id":"rak_1"}},"broken":null},` +
		`"errors":[{"message":"roomAccessKeyId: room access key rak_404 not found"}]}`
	if strings.TrimSpace(r.Raw) != want {
		t.Fatalf("response\n%s\nwant\n%s", r.Raw, want)
	}
	// Request-level failures lose their code too.
	if r := e.post("", `{"query":"{ __typename }"}`); r.Status != http.StatusUnauthorized || strings.Contains(r.Raw, "extensions") {
		t.Fatalf("401 answer: %d %s", r.Status, r.Raw)
	}

	post := func(body string) string {
		resp, err := http.Post(e.Srv.URL+"/_sandbox/errors", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if got := post(`{"message_only": false}`); got != `200 {"message_only":false}` {
		t.Fatalf("switch off: %s", got)
	}
	if r := e.gql(ourToken, deleteKey, map[string]any{"k": "rak_404"}); r.code(0) != CodeNotFound {
		t.Fatalf("codes not back after switching off: %s", r.Raw)
	}
	if got := post(`{}`); !strings.HasPrefix(got, "400 ") {
		t.Fatalf("empty switch body: %s", got)
	}
	if got := post(`{"message_only": true}`); got != `200 {"message_only":true}` || !e.SB.MessageOnlyErrors() {
		t.Fatalf("switch on: %s", got)
	}
}

// TestCleanupUnassignedNow: the on-demand cleanup deletes exactly the keys
// no live stay holds, whatever their age, over the Go and admin APIs.
func TestCleanupUnassignedNow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	held := e.createPin(ourToken, "5555")
	loose := e.createPin(ourToken, "7777")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": held}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	if got := e.SB.CleanupUnassignedNow(); !reflect.DeepEqual(got, []string{loose}) {
		t.Fatalf("deleted %v, want [%s]", got, loose)
	}
	for _, k := range e.SB.Keys() {
		if (k.ID == loose) != k.Deleted || (k.ID == loose && k.DeletedBy != "cleanup") {
			t.Fatalf("key %+v", k)
		}
	}
	other := e.createPin(ourToken, "8888")
	resp, err := http.Post(e.Srv.URL+"/_sandbox/cleanup", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := fmt.Sprintf(`{"deleted":["%s"]}`, other); resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
		t.Fatalf("admin cleanup: %d %s, want %s", resp.StatusCode, b, want)
	}
}

// TestWebhooks: with a webhook set, every change of the admin and Go APIs
// is posted as a signed event, in order; a failed delivery is retried.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	var mu sync.Mutex
	var got []string
	fails := 1
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), "hook-secret") != nil {
			t.Errorf("bad signature on %s", body)
		}
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ev, err := webhook.Parse(body)
		if err != nil {
			t.Error(err)
		}
		got = append(got, ev.Event+" "+ev.Data.ID)
	}))
	defer recv.Close()
	resp, err := http.Post(e.Srv.URL+"/_sandbox/webhook", "application/json", strings.NewReader(`{"url":"`+recv.URL+`","secret":"hook-secret"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	key := e.createPin(ourToken, "5555")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": key}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.SB.AddStay(Stay{ID: "rs_9", RoomID: "r3", Arrival: "2026-02-10", Departure: "2026-02-12"}))
	must(e.SB.ChangeDates("rs_9", "2026-02-10", "2026-02-13"))
	must(e.SB.MoveStay("rs_9", "r2"))
	must(e.SB.CancelReservation("res_3"))
	must(e.SB.DeleteStay("rs_9"))
	must(e.SB.DeleteKey(key))
	// The same changes through the admin API.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/_sandbox/stays", `{"id":"rs_10","room_id":"r3","arrival":"2026-02-10","departure":"2026-02-12"}`},
		{http.MethodPatch, "/_sandbox/stays/rs_10", `{"departure":"2026-02-13"}`},
		{http.MethodDelete, "/_sandbox/stays/rs_10", ``},
	} {
		req, err := http.NewRequest(c.method, e.Srv.URL+c.path, strings.NewReader(c.body))
		must(err)
		resp, err := http.DefaultClient.Do(req)
		must(err)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d", c.method, c.path, resp.StatusCode)
		}
	}
	want := []string{"room_stay.created rs_9", "room_stay.updated rs_9", "room_stay.updated rs_9", "reservation.updated res_3",
		"room_stay.deleted rs_9", "room_access_key.deleted " + key,
		"room_stay.created rs_10", "room_stay.updated rs_10", "room_stay.deleted rs_10"}
	// The sandbox records a delivery once the receiver has answered it:
	// wait for both the events and the last record.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) && len(e.SB.Deliveries()) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if d := e.SB.Deliveries(); len(d) != len(want) || d[0].Attempts != 2 || !d[0].Delivered {
		t.Errorf("deliveries %+v", d)
	}
	if s, _ := e.SB.Stay("rs_2"); s.KeyID != "" {
		t.Errorf("deleted key still on rs_2")
	}
}

// TestRollbackDocuments: with the switch on, a mutation document one of
// whose fields fails changes nothing (a create, an assign, a revoke and a
// delete before it are undone, its key.deleted webhook is never sent) and
// answers every field null, the failing one with its error; a document
// that succeeds stands, and off again each field stands alone.
func TestRollbackDocuments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{RollbackDocuments: true})
	var mu sync.Mutex
	var events []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if ev, err := webhook.Parse(body); err == nil {
			mu.Lock()
			events = append(events, ev.Event+" "+ev.Data.ID)
			mu.Unlock()
		}
	}))
	defer recv.Close()
	held := e.createPin(ourToken, "5555")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": held}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	loose, spare := e.createPin(ourToken, "6666"), e.createPin(ourToken, "8888")
	e.SB.SetWebhook(recv.URL, "hook-secret")
	before := e.SB.Keys()

	doc := `mutation($held:ID!, $loose:ID!, $spare:ID!) {
		made: createRoomAccessKey(input:{roomAccessPin:{pin:"7777"}}) { roomAccessKey { id } }
		freed: removeRoomAccessKey(input:{roomStayId:"rs_2", roomAccessKeyId:$held}) { roomStay { id } }
		moved: addRoomAccessKey(input:{roomStayId:"rs_1", roomAccessKeyId:$loose}) { roomStay { id } }
		gone: deleteRoomAccessKey(input:{roomAccessKeyId:$spare}) { deleted }
		broken: addRoomAccessKey(input:{roomStayId:"rs_5", roomAccessKeyId:"rak_404"}) { roomStay { id } }
	}`
	r := e.gql(ourToken, doc, map[string]any{"held": held, "loose": loose, "spare": spare})
	want := `{"data":{"made":null,"freed":null,"moved":null,"gone":null,"broken":null},"errors":[{"message":"roomAccessKeyId: room access key rak_404 not found","locations":[{"line":6,"column":3}],"path":["broken"],"extensions":{"code":"NOT_FOUND"}}]}`
	if strings.TrimSpace(r.Raw) != want {
		t.Fatalf("undone document answered\n%s\nwant\n%s", r.Raw, want)
	}
	if after := e.SB.Keys(); !reflect.DeepEqual(after, before) {
		t.Fatalf("keys after an undone document:\n%+v\nwant as before:\n%+v", after, before)
	}
	// The rules see the key on its stay again: it cannot be deleted.
	if r := e.gql(ourToken, deleteKey, map[string]any{"k": held}); r.code(0) != CodeConflict {
		t.Fatalf("deleting the key an undone revoke left on its stay: %s", r.Raw)
	}

	// A document without a failure stands, its webhook sent.
	r = e.gql(ourToken, deleteKey, map[string]any{"k": spare})
	if r.code(0) != "" || dig(r.Body, "data", "deleteRoomAccessKey", "deleted") != true {
		t.Fatal(r.Raw)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(events)
		mu.Unlock()
		if len(got) > 0 {
			if !reflect.DeepEqual(got, []string{"room_access_key.deleted " + spare}) {
				t.Fatalf("webhooks %v, want only the delete that stood", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no webhook for the delete that stood")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Switched off over the admin API, each field stands alone again.
	resp, err := http.Post(e.Srv.URL+"/_sandbox/errors", "application/json", strings.NewReader(`{"rollback_documents": false}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(b)); resp.StatusCode != http.StatusOK || got != `{"rollback_documents":false}` || e.SB.RollbackDocuments() {
		t.Fatalf("switch off: %d %s", resp.StatusCode, got)
	}
	r = e.gql(ourToken, `mutation {
		made: createRoomAccessKey(input:{roomAccessPin:{pin:"7777"}}) { roomAccessKey { id } }
		broken: addRoomAccessKey(input:{roomStayId:"rs_5", roomAccessKeyId:"rak_404"}) { roomStay { id } }
	}`, nil)
	if id, _ := dig(r.Body, "data", "made", "roomAccessKey", "id").(string); id == "" || r.code(0) != CodeNotFound {
		t.Fatalf("with the switch off: %s", r.Raw)
	}
}

// TestStaffMovesAKey: staff take a key off one stay and give it to
// another, whoever created it, as 3RPMS lets them; a stay holding another
// key refuses it, and a key on no stay is left for the cleanup.
func TestStaffMovesAKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	key := e.createPin(ourToken, "5555")
	if r := e.gql(ourToken, addKey, map[string]any{"s": "rs_2", "k": key}); r.code(0) != "" {
		t.Fatal(r.Raw)
	}
	if err := e.SB.StaffAssignKey("rs_5", key); err != nil {
		t.Fatal(err)
	}
	if k, _ := e.SB.Key(key); !slices.Equal(k.StayIDs, []string{"rs_2", "rs_5"}) {
		t.Fatalf("shared: on %v", k.StayIDs)
	}
	if err := e.SB.StaffRemoveKey("rs_2"); err != nil {
		t.Fatal(err)
	}
	if k, _ := e.SB.Key(key); !slices.Equal(k.StayIDs, []string{"rs_5"}) {
		t.Fatalf("moved: on %v", k.StayIDs)
	}
	other := e.createPin(ourToken, "6666")
	if err := e.SB.StaffAssignKey("rs_5", other); errCode(err) != CodeConflict {
		t.Fatalf("a stay holding a key took another: %v", err)
	}
	if err := e.SB.StaffRemoveKey("rs_5"); err != nil {
		t.Fatal(err)
	}
	if k, _ := e.SB.Key(key); len(k.StayIDs) != 0 || k.Deleted {
		t.Fatalf("taken off its last stay: on %v, deleted %v", k.StayIDs, k.Deleted)
	}
}
