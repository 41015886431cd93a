package threerpms_test

// Fuzz targets for the chained-mutation answer decoder (document.send's
// per-alias decoding) (row 8 of the README's fault matrix): Sink.Apply of a
// three-alias batch (create, assign, delete) through a real HTTP server
// that answers with the fuzzed bytes. The seed corpus runs in plain
// `go test`; fuzz with
//
//	go test -run='^$' -fuzz='^FuzzKeyBatchResponse$' -fuzztime=30s ./sinks/threerpms
//	go test -run='^$' -fuzz='^FuzzKeyBatchHTTP$' -fuzztime=30s ./sinks/threerpms

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/reconcile"
	sink "github.com/keysync/keysync/sinks/threerpms"
)

const (
	// Canaries: the API token and the new key's PIN; neither may reach an
	// error.
	fzToken = "tok-FZCANARY-51c0a2"
	fzPIN   = "FZPIN7734"
	fzCap   = 4096
	// fzAttempts: retries are allowed (with a fake clock, so free) to show
	// a retry loop as repeated requests; mutations must never repeat.
	fzAttempts = 2
)

// fzBatch is the batch every input answers: a PIN create carrying fzPIN,
// an assign and a delete.
func fzBatch() []*reconcile.Action {
	ref := func(id string) reconcile.StayRef {
		return reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: id}
	}
	return []*reconcile.Action{
		{
			System: reconcile.System3RPMS, Op: reconcile.OpCreate, Kind: reconcile.KindPINKey, Stay: ref("s1"),
			Cred: &reconcile.Credential{System: reconcile.System3RPMS, Kind: reconcile.KindPINKey, PIN: fzPIN},
		},
		{
			System: reconcile.System3RPMS, Op: reconcile.OpAssign, Kind: reconcile.KindPINKey, Stay: ref("s2"),
			Cred: &reconcile.Credential{System: reconcile.System3RPMS, Kind: reconcile.KindPINKey, RemoteID: "rak_2", Status: reconcile.StatusActive},
		},
		{
			System: reconcile.System3RPMS, Op: reconcile.OpDelete, Kind: reconcile.KindPINKey, Stay: ref("s3"),
			Cred: &reconcile.Credential{System: reconcile.System3RPMS, Kind: reconcile.KindPINKey, RemoteID: "rak_3", Status: reconcile.StatusActive},
		},
	}
}

const fzValid = `{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_1"}},"a1":{"roomStay":{"id":"s2"}},"a2":{"deleted":true}}}`

func fzSeeds() [][]byte {
	huge := `{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_1"}},"a1":{"roomStay":{"id":"s2"}},"a2":{"deleted":true}},"extensions":{"pad":[` +
		strings.Repeat(`"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",`, 80) + `"x"]}}`
	seeds := []string{
		fzValid,
		`<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>`,
		``,
		"\r\n",
		fzValid[:len(fzValid)/2],
		`null`,
		`{}`,
		huge,
		// unknown fields
		`{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_1","pin":"1"},"clientMutationId":"x"},"a1":{"roomStay":{"id":"s2","x":1}},"a2":{"deleted":true},"a9":{"zzz":1}},"extensions":{"cost":{"requested":12}}}`,
		// wrong types
		`{"data":{"a0":{"roomAccessKey":{"id":12345}},"a1":[],"a2":"yes"}}`,
		`{"data":{"a0":{"roomAccessKey":"rak_1"},"a1":{"roomStay":null},"a2":{"deleted":"false"}}}`,
		`{"data":[1,2,3]}`,
		`{"data":"a0"}`,
		`{"errors":"boom"}`,
		`{"errors":[{"message":42}]}`,
		// a __typename keysync does not know
		`{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessHologram","id":"rak_h"}},"a1":{"roomStay":{"id":"s2"}},"a2":{"deleted":true}}}`,
		// per-alias errors quoting the canaries
		`{"data":{"a0":null,"a1":null,"a2":null},"errors":[` +
			`{"message":"pin ` + fzPIN + ` is taken (token ` + fzToken + `)","path":["a0"],"extensions":{"code":"BAD_USER_INPUT"}},` +
			`{"message":"stay s2 holds another key","path":["a1"],"extensions":{"code":"CONFLICT"}},` +
			`{"message":"no such key","path":["a2","` + fzPIN + `"],"extensions":{"code":"NOT_FOUND","file":"` + fzToken + `"}}]}`,
		`{"data":null,"errors":[{"message":"Variable \"$v0\" got invalid value {\"roomAccessPin\":{\"pin\":\"` + fzPIN + `\"}}","locations":[{"line":1,"column":24}]}]}`,
		`{"data":{"a0":null},"errors":[{"message":"x","path":[0,"a0"]},{"message":"y","path":[]},{"message":"z","path":null}]}`,
		`{"data":{"a0":null},"errors":[{"message":"x","path":[{"a":1}]}]}`,
		`{"data":{"a0":{"roomAccessKey":{"id":""}},"a1":null,"a2":null}}`,
		// a document undone whole, its refusal named or not, or refused
		// before it ran
		`{"data":{"a0":null,"a1":null,"a2":null},"errors":[{"message":"refused","path":["a2"]}]}`,
		`{"data":{"a0":null,"a1":null,"a2":null},"errors":[{"message":"refused"}]}`,
		`{"errors":[{"message":"too many fields"}]}`,
		strings.Repeat(`[`, 300) + strings.Repeat(`]`, 300),
		"{\"data\":{\"a0\":{\"roomAccessKey\":{\"id\":\"rak\\u0000\\n\"}}}}",
	}
	return fault.Bytes(seeds...)
}

// fzApply sends the batch through a fresh client and sink to srv.
func fzApply(t *testing.T, srv *fault.Canned) ([]reconcile.Outcome, error) {
	c, err := threerpms.NewClient(threerpms.ClientOptions{
		Endpoint:  srv.URL + "/graphql",
		Token:     fzToken,
		Transport: adaptertest.FuzzTransport(fzCap, fzAttempts, time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		return nil, err
	}
	return sink.New(c, 0).Apply(t.Context(), fzBatch())
}

// fzRun sends the batch to srv, which answers status, ct and body, and
// checks the outcomes.
func fzRun(t *testing.T, srv *fault.Canned, status int, ct string, body []byte) {
	out, err := fzApply(t, srv)
	fzCheckBatch(t, srv, status, ct, body, out, err)
}

func FuzzKeyBatchResponse(f *testing.F) {
	fault.FuzzBody(f, fzSeeds(), http.StatusOK, "application/json", fzRun)
}

func FuzzKeyBatchHTTP(f *testing.F) {
	cts := []string{"application/json", "text/html; charset=utf-8", "application/graphql-response+json", "", "application/json;;", "text/plain"}
	statuses := []int{200, 200, 400, 401, 403, 409, 429, 500, 502, 504, 302, 204}
	f.Add(uint16(0), "\x7f"+fzToken, []byte(fzValid)) // a malformed header line: a transport error
	fault.FuzzAnswer(f, fzSeeds(), statuses, cts, fzRun)
}

func fzCheckBatch(t *testing.T, srv *fault.Canned, status int, ct string, body []byte, out []reconcile.Outcome, err error) {
	t.Helper()
	reqs := srv.Requests()
	// A mutation is never sent twice unless the server said it was not
	// run: refused with a 429, and then at most as often as the policy
	// allows; refused before running (HTTP 400 or 413, or errors and no
	// "data" member), and then again in halves; or undone whole (errors
	// beside data whose every field is null), and then again without its
	// refused fields. Each later document is smaller than the first, and
	// there are at most 2n-1 for n mutations. "data": null may follow
	// fields that ran: never sent again.
	fields := func(r fault.Received) int { return strings.Count(r.Body, "(input: ") }
	again := len(reqs) > 1 && len(reqs) <= 2*fields(reqs[0])-1
	for _, r := range reqs[1:] {
		again = again && fields(r) < fields(reqs[0])
	}
	if want := 1; len(reqs) != want && !(status == http.StatusTooManyRequests && len(reqs) <= fzAttempts) && !again {
		t.Errorf("%d requests for one batch (HTTP %d), want exactly %d, or smaller ones after an answer that says nothing ran", len(reqs), status, want)
	}
	if again && status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge && status != http.StatusOK {
		t.Errorf("a batch answered HTTP %d went again; only an answer that says nothing ran may", status)
	}
	if again && status == http.StatusOK {
		var b struct {
			Data   *map[string]json.RawMessage
			Errors []json.RawMessage
		}
		undone := json.Unmarshal(body, &b) == nil && len(b.Errors) > 0
		if undone && b.Data != nil {
			for _, v := range *b.Data {
				undone = undone && string(v) == "null"
			}
		}
		var raw map[string]json.RawMessage
		if !undone || json.Unmarshal(body, &raw) != nil || string(raw["data"]) == "null" {
			t.Errorf("a batch answered 200 %.80q went again; only errors without data, or beside null fields, say nothing ran", body)
		}
	}
	errs := sinktest.Errs(t, "", 3, out, err)
	if leaks := adaptertest.Leaks(t, "", errs, "3rpms: ", fzToken, fzPIN); len(leaks) > 0 {
		t.Errorf("errors hold a secret: %q", leaks)
	}
	// A malformed or unreadable answer is a request error that leaves
	// every outcome unknown, never a per-action verdict.
	malformed := len(body) > fzCap || !json.Valid(body) || status != http.StatusOK || !fault.IsJSON(ct)
	if malformed && err == nil {
		t.Errorf("malformed answer (HTTP %d, %q, %d bytes) decoded into outcomes: %+v", status, ct, len(body), out)
	}
	if len(body) > fzCap && status == http.StatusOK && fault.IsJSON(ct) && err != nil && !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a %d-byte answer (cap %d) gave %q, want a size error", len(body), fzCap, err)
	}
	if err != nil && status == http.StatusOK && fault.IsJSON(ct) && !errors.Is(err, reconcile.ErrUnknownOutcome) {
		// A 200 that cannot be read may have been acted on.
		t.Errorf("unreadable 200 does not wrap ErrUnknownOutcome: %v", err)
	}
	if len(out) == 3 {
		if o := out[0]; o.Err == nil && o.RemoteID == "" {
			t.Errorf("create succeeded without a key id")
		}
		for i, o := range out[1:] {
			if o.RemoteID != "" {
				t.Errorf("outcome %d: remote id %q on an action that creates nothing", i+1, o.RemoteID)
			}
		}
	}
	if t.Failed() || len(out) != 3 {
		return
	}
	// Known bug, checked last: an alias whose data is not an object (a
	// number, a string, a list, an empty object for a non-null payload)
	// counts as done.
	var data struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &data)
	for i, alias := range []string{"a1", "a2"} {
		if out[i+1].Err == nil && !fzPayloadOK(alias, data.Data[alias]) {
			t.Fatal("BUG: an assign/delete alias answered with data that is not its payload counts as done; see TestKeyBatchNonPayloadIsDone")
		}
	}
}

// fzPayloadOK reports whether raw is the schema's payload for alias: a1
// (addRoomAccessKey) {roomStay: {id}}, a2 (deleteRoomAccessKey)
// {deleted: true}.
func fzPayloadOK(alias string, raw json.RawMessage) bool {
	switch alias {
	case "a1":
		var p struct {
			RoomStay *struct {
				ID string `json:"id"`
			} `json:"roomStay"`
		}
		return json.Unmarshal(raw, &p) == nil && p.RoomStay != nil && p.RoomStay.ID != ""
	case "a2":
		var p struct {
			Deleted *bool `json:"deleted"`
		}
		return json.Unmarshal(raw, &p) == nil && p.Deleted != nil && *p.Deleted
	}
	return true
}

// TestKeyBatchNonPayloadIsDone: document.send takes any non-null alias
// data as success. An assign answered 42, "yes", [] or {} and a delete
// answered {"deleted": false} are recorded as done although the answer is
// not the mutation's payload (AddRoomAccessKeyPayload.roomStay and
// DeleteRoomAccessKeyPayload.deleted are non-null in the schema).
func TestKeyBatchNonPayloadIsDone(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	for _, body := range []string{
		`{"data":{"a0":{"roomAccessKey":{"id":"rak_1"}},"a1":42,"a2":"yes"}}`,
		`{"data":{"a0":{"roomAccessKey":{"id":"rak_1"}},"a1":{},"a2":{"deleted":false}}}`,
	} {
		srv.Answer(http.StatusOK, "application/json", []byte(body))
		out, err := fzApply(t, srv)
		if err != nil {
			continue
		}
		for i, o := range out[1:] {
			if o.Err == nil {
				t.Errorf("body %s: action %d counted as done", body, i+1)
			}
		}
	}
}

// TestFuzzHarnessDecodesValid makes sure the fuzz harness reaches the
// decoder: the valid seed decodes.
func TestFuzzHarnessDecodesValid(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	srv.Answer(http.StatusOK, "application/json", []byte(fzValid))
	out, err := fzApply(t, srv)
	if err != nil || len(out) != 3 || out[0].RemoteID != "rak_1" || out[0].Err != nil || out[1].Err != nil || out[2].Err != nil {
		t.Fatalf("valid seed: %+v, %v", out, err)
	}
}
