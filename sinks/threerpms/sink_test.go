package threerpms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/internal/threerpms/schema"
	"github.com/keysync/keysync/reconcile"
	sink "github.com/keysync/keysync/sinks/threerpms"
)

// t0 is the sandbox's business clock in every test.
var t0 = time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)

const (
	ourToken = "our-token"
	ourID    = "keysync"
	property = "hotel"
)

// newSandbox starts a sandbox that knows our token and sandbox.OtherToken,
// with stays s1…s6 in rooms r1…r6, and returns it with a Sink talking to
// it over HTTP, served through wraps.
func newSandbox(t *testing.T, wraps ...func(http.Handler) http.Handler) (*sandbox.Server, *sink.Sink) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{
		Integrations: map[string]string{ourToken: ourID, sandbox.OtherToken: sandbox.OtherIntegration},
		Now:          t0,
	})
	for i := 1; i <= 6; i++ {
		room := fmt.Sprintf("r%d", i)
		sb.AddRoom(room, "Room "+room)
		if err := sb.AddStay(sandbox.Stay{
			ID: fmt.Sprintf("s%d", i), RoomID: room, Arrival: "2026-01-30", Departure: "2026-02-02",
		}); err != nil {
			t.Fatal(err)
		}
	}
	return sb, sink.New(client(sandboxtest.Serve(t, sb, wraps...).URL+"/graphql"), 0)
}

// client returns a 3RPMS Client for endpoint that sends our token.
func client(endpoint string) *threerpms.Client {
	c, err := threerpms.NewClient(threerpms.ClientOptions{Endpoint: endpoint, Token: ourToken})
	if err != nil {
		panic(err)
	}
	return c
}

// inject plants a PIN key owned by owner in sb, assigned to stays, and
// returns its id.
func inject(t *testing.T, sb *sandbox.Server, owner, pin string, stays ...string) string {
	t.Helper()
	id, err := sb.InjectKey(owner, sandbox.Key{Type: sandbox.KeyTypePin, PIN: pin}, stays...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// create returns an action creating a PIN key for stay.
func create(stay, pin string) *reconcile.Action {
	return &reconcile.Action{
		System: reconcile.System3RPMS, Op: reconcile.OpCreate, Kind: reconcile.KindPINKey,
		Stay: reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: stay},
		Cred: &reconcile.Credential{System: reconcile.System3RPMS, Kind: reconcile.KindPINKey, PIN: reconcile.Secret(pin)},
	}
}

// onKey returns an action of op on the existing key remoteID for stay.
func onKey(op reconcile.Op, stay, remoteID string) *reconcile.Action {
	return &reconcile.Action{
		System: reconcile.System3RPMS, Op: op, Kind: reconcile.KindPINKey,
		Stay: reconcile.StayRef{Property: property, Source: reconcile.System3RPMS, ID: stay},
		Cred: &reconcile.Credential{
			System: reconcile.System3RPMS, Kind: reconcile.KindPINKey, RemoteID: remoteID, Status: reconcile.StatusActive,
		},
	}
}

// apply runs Apply, failing the test on a request-level error or a wrong
// number of outcomes.
var apply = sinktest.Apply

// allDone fails the test for each of out that has an error; what names
// the outcomes in the message.
func allDone(t *testing.T, what string, out []reconcile.Outcome) {
	t.Helper()
	for i, o := range out {
		if o.Err != nil {
			t.Errorf("%s %d: %v", what, i, o.Err)
		}
	}
}

// keyByID returns the sandbox's view of key id.
func keyByID(t *testing.T, sb *sandbox.Server, id string) sandbox.KeyView {
	t.Helper()
	k, ok := sb.Key(id)
	if !ok {
		t.Fatalf("key %q not in the sandbox", id)
	}
	return k
}

// stayKey returns the id of the key stay holds in sb, or "".
func stayKey(t *testing.T, sb *sandbox.Server, stay string) string {
	t.Helper()
	v, ok := sb.Stay(stay)
	if !ok {
		t.Fatalf("stay %s not in the sandbox", stay)
	}
	return v.KeyID
}

// oneRequest checks that sb received exactly one request since its log was
// last reset, a mutation with the given root fields, answered 200.
func oneRequest(t *testing.T, sb *sandbox.Server, fields ...string) {
	t.Helper()
	reqs := sb.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Status != http.StatusOK || r.Operation != "mutation" || r.Integration != ourID || !slices.Equal(r.Fields, fields) {
		t.Errorf("request %+v, want a mutation of %v by %s answered 200", r, fields, ourID)
	}
}

func TestApplyCreates(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	out := apply(t, s, create("s1", "4711"), create("s2", "ABC123"))

	oneRequest(t, sb, "createRoomAccessKey", "createRoomAccessKey")
	for i, pin := range []string{"4711", "ABC123"} {
		if out[i].Err != nil {
			t.Fatalf("outcome %d: %v", i, out[i].Err)
		}
		k := keyByID(t, sb, out[i].RemoteID)
		if k.PIN != pin || k.Type != sandbox.KeyTypePin || k.Owner != ourID || k.Deleted || len(k.StayIDs) != 0 {
			t.Errorf("key %d = %+v, want our unassigned RoomAccessPin with PIN %s", i, k, pin)
		}
	}
	if out[0].RemoteID == out[1].RemoteID {
		t.Errorf("both creates returned %s", out[0].RemoteID)
	}
}

func TestApplyChained(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	fresh := inject(t, sb, ourID, "1111")     // created earlier, assigned nowhere
	old := inject(t, sb, ourID, "2222", "s2") // held by s2

	out := apply(t, s,
		onKey(reconcile.OpAssign, "s1", fresh),
		onKey(reconcile.OpRevoke, "s2", old),
		onKey(reconcile.OpDelete, "s2", old),
	)
	oneRequest(t, sb, "addRoomAccessKey", "removeRoomAccessKey", "deleteRoomAccessKey")
	allDone(t, "outcome", out)
	if got := stayKey(t, sb, "s1"); got != fresh {
		t.Errorf("s1 holds %q, want %s", got, fresh)
	}
	if got := stayKey(t, sb, "s2"); got != "" {
		t.Errorf("s2 holds %q, want nothing", got)
	}
	if k := keyByID(t, sb, old); !k.Deleted || k.DeletedBy != "integration" {
		t.Errorf("old key = %+v, want deleted by us", k)
	}
}

// TestApplyDeleteWithoutNamingItsInputType: the 3RPMS Room Access Key API
// names the input types of create, add and remove in its examples but
// writes the delete's input inline, never naming its type; a server
// written from it may call that type anything (the sandbox's
// RenameDeleteInput). A delete, alone or chained with the other three
// mutations, must go through there as against the sandbox's own names,
// each in the one request.
func TestApplyDeleteWithoutNamingItsInputType(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	sb.SetRenameDeleteInput(true)
	unassigned := inject(t, sb, ourID, "1111")
	old := inject(t, sb, ourID, "2222", "s2")
	fresh := inject(t, sb, ourID, "3333")

	out := apply(t, s, onKey(reconcile.OpDelete, "s1", unassigned))
	oneRequest(t, sb, "deleteRoomAccessKey")
	if out[0].Err != nil {
		t.Errorf("delete alone: %v", out[0].Err)
	}
	if k := keyByID(t, sb, unassigned); !k.Deleted {
		t.Errorf("key %s = %+v, want deleted", unassigned, k)
	}

	sb.ResetRequests()
	out = apply(t, s,
		create("s3", "4711"),
		onKey(reconcile.OpRevoke, "s2", old),
		onKey(reconcile.OpAssign, "s2", fresh),
		onKey(reconcile.OpDelete, "s2", old),
	)
	oneRequest(t, sb, "createRoomAccessKey", "removeRoomAccessKey", "addRoomAccessKey", "deleteRoomAccessKey")
	allDone(t, "chained outcome", out)
	if k := keyByID(t, sb, old); !k.Deleted || stayKey(t, sb, "s2") != fresh {
		t.Errorf("old key %+v, s2 holds %q; want the old key deleted and s2 holding %s", k, stayKey(t, sb, "s2"), fresh)
	}
}

// TestApplyDocumentOrder checks that aliases run in action order: a delete
// before its revoke finds the key still assigned, and a revoke before an
// assign frees the stay.
func TestApplyDocumentOrder(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	old := inject(t, sb, ourID, "2222", "s2")
	fresh := inject(t, sb, ourID, "3333")

	out := apply(t, s,
		onKey(reconcile.OpDelete, "s2", old),
		onKey(reconcile.OpRevoke, "s2", old),
		onKey(reconcile.OpAssign, "s2", fresh),
	)
	if !errors.Is(out[0].Err, reconcile.ErrConflict) {
		t.Errorf("delete before revoke: err = %v, want ErrConflict", out[0].Err)
	}
	if out[1].Err != nil || out[2].Err != nil {
		t.Errorf("revoke, assign: errs = %v, %v; want none", out[1].Err, out[2].Err)
	}
	if got := stayKey(t, sb, "s2"); got != fresh {
		t.Errorf("s2 holds %q, want %s", got, fresh)
	}
}

func TestApplyPerAliasOutcomes(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	foreign1 := inject(t, sb, sandbox.OtherIntegration, "9001", "s1")
	foreign3 := inject(t, sb, sandbox.OtherIntegration, "9003", "s3")
	ours := inject(t, sb, ourID, "1234")
	held := inject(t, sb, ourID, "5555", "s4")
	gone := inject(t, sb, ourID, "6666")
	apply(t, s, onKey(reconcile.OpDelete, "s5", gone))
	sb.ResetRequests()

	actions := []*reconcile.Action{
		onKey(reconcile.OpAssign, "s1", ours),     // s1 holds another integration's key
		onKey(reconcile.OpAssign, "s2", ours),     // fine
		onKey(reconcile.OpRevoke, "s3", foreign3), // not ours
		onKey(reconcile.OpDelete, "s5", gone),     // already deleted
		onKey(reconcile.OpDelete, "s4", held),     // still assigned to s4
		create("s6", "7777"),                      // fine
	}
	want := []error{reconcile.ErrConflict, nil, reconcile.ErrNotOurs, reconcile.ErrNotFound, reconcile.ErrConflict, nil}
	out := apply(t, s, actions...)

	oneRequest(t, sb, "addRoomAccessKey", "addRoomAccessKey", "removeRoomAccessKey",
		"deleteRoomAccessKey", "deleteRoomAccessKey", "createRoomAccessKey")
	sentinels := []error{reconcile.ErrConflict, reconcile.ErrNotOurs, reconcile.ErrNotFound,
		reconcile.ErrRejected, reconcile.ErrUnknownOutcome}
	for i, w := range want {
		err := out[i].Err
		if w == nil {
			if err != nil {
				t.Errorf("action %d (%s %s): err = %v, want success", i, actions[i].Op, actions[i].Stay.ID, err)
			}
			continue
		}
		for _, sen := range sentinels {
			if errors.Is(err, sen) != (sen == w) {
				t.Errorf("action %d (%s %s): err = %v, want it to wrap %q and no other sentinel", i, actions[i].Op, actions[i].Stay.ID, err, w)
				break
			}
		}
		if err != nil && (!strings.Contains(err.Error(), string(actions[i].Op)) || !strings.Contains(err.Error(), actions[i].Stay.ID)) {
			t.Errorf("action %d: err = %q, want it to name the op and stay", i, err)
		}
	}
	if got := stayKey(t, sb, "s1"); got != foreign1 {
		t.Errorf("s1 holds %q, want the foreign key %s untouched", got, foreign1)
	}
	if got := stayKey(t, sb, "s2"); got != ours {
		t.Errorf("s2 holds %q, want %s", got, ours)
	}
	if got := stayKey(t, sb, "s3"); got != foreign3 {
		t.Errorf("s3 holds %q, want the foreign key %s untouched", got, foreign3)
	}
	if k := keyByID(t, sb, held); k.Deleted {
		t.Errorf("still-assigned key was deleted: %+v", k)
	}
	if out[5].RemoteID == "" || keyByID(t, sb, out[5].RemoteID).PIN != "7777" {
		t.Errorf("create: remote id %q, want a key with PIN 7777", out[5].RemoteID)
	}
}

func TestApplyClaim(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	ours := inject(t, sb, ourID, "1234", "s1")
	foreign := inject(t, sb, sandbox.OtherIntegration, "5678", "s2")
	keysBefore, staysBefore := sb.Keys(), sb.Stays()

	out := apply(t, s, onKey(reconcile.OpClaim, "s1", ours), onKey(reconcile.OpClaim, "s2", foreign))

	oneRequest(t, sb, "addRoomAccessKey", "addRoomAccessKey")
	if out[0].Err != nil {
		t.Errorf("claim of our key: %v", out[0].Err)
	}
	if !errors.Is(out[1].Err, reconcile.ErrNotOurs) {
		t.Errorf("claim of a foreign key: err = %v, want ErrNotOurs", out[1].Err)
	}
	if !reflect.DeepEqual(sb.Keys(), keysBefore) || !reflect.DeepEqual(sb.Stays(), staysBefore) {
		t.Errorf("claims changed the sandbox:\nkeys %+v\nwere %+v\nstays %+v\nwere %+v", sb.Keys(), keysBefore, sb.Stays(), staysBefore)
	}
}

func TestApplyRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	qr := create("s2", "")
	qr.Kind, qr.Cred.Kind = reconcile.KindQRKey, reconcile.KindQRKey
	adopt := onKey(reconcile.OpAdopt, "s2", "rak_1")
	for _, tc := range []struct {
		name   string
		action *reconcile.Action
		secret string
	}{
		{"empty PIN", create("s2", ""), ""},
		{"PIN too long", create("s2", "12345678901"), "12345678901"},
		{"mixed case PIN", create("s2", "Ab12"), "Ab12"},
		{"PIN with a space", create("s2", "12 34"), "12 34"},
		{"PIN with a symbol", create("s2", "12-34"), "12-34"},
		{"non-ASCII PIN", create("s2", "ÄÖ12"), "ÄÖ12"},
		{"QR key", qr, ""},
		{"local-only op", adopt, ""},
	} {
		// The bad action fails alone, before sending, without quoting its
		// secret; the good one in the same batch still goes.
		t.Run(tc.name, func(t *testing.T) {
			sb, s := newSandbox(t)
			out, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", "4711"), tc.action})
			if err != nil {
				t.Fatalf("the whole batch failed: %v", err)
			}
			bad := out[1].Err
			if bad == nil || !errors.Is(bad, reconcile.ErrRejected) || !strings.Contains(bad.Error(), "s2") {
				t.Errorf("bad action's outcome = %v, want ErrRejected naming the stay", bad)
			}
			if bad != nil && tc.secret != "" && strings.Contains(bad.Error(), tc.secret) {
				t.Errorf("err = %q quotes the PIN", bad)
			}
			if out[0].Err != nil || out[0].RemoteID == "" {
				t.Errorf("good action's outcome = %+v, want created", out[0])
			}
			oneRequest(t, sb, "createRoomAccessKey")
		})
	}
}

func TestMaxBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ configured, want int }{
		{0, sink.DefaultMaxOps},
		{-1, sink.DefaultMaxOps},
		{1, 1},
		{7, 7},
	} {
		if got := sink.New(&recorder{}, tc.configured).MaxBatch(); got != tc.want {
			t.Errorf("New(_, %d).MaxBatch() = %d, want %d", tc.configured, got, tc.want)
		}
	}
	if sink.DefaultMaxOps != 100 {
		t.Errorf("DefaultMaxOps = %d, want 100", sink.DefaultMaxOps)
	}
}

// recorder is a graphql.Client that records each request and answers with
// no data.
type recorder struct {
	reqs []*graphql.Request
}

// MakeRequest implements graphql.Client.
func (r *recorder) MakeRequest(_ context.Context, req *graphql.Request, _ *graphql.Response) error {
	r.reqs = append(r.reqs, req)
	return nil
}

// TestDocumentsValidate checks every document the sink builds against the
// 3RPMS schema, variables included, and that no PIN is written into the
// document text.
func TestDocumentsValidate(t *testing.T) {
	t.Parallel()
	sch, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: schema.SDL})
	if err != nil {
		t.Fatal(err)
	}
	batches := map[string][]*reconcile.Action{
		"create": {create("s1", "4711")},
		"assign": {onKey(reconcile.OpAssign, "s1", "rak_1")},
		"revoke": {onKey(reconcile.OpRevoke, "s1", "rak_1")},
		"delete": {onKey(reconcile.OpDelete, "s1", "rak_1")},
		"claim":  {onKey(reconcile.OpClaim, "s1", "rak_1")},
		"all": {
			create("s1", "4711"), onKey(reconcile.OpAssign, "s2", "rak_1"), onKey(reconcile.OpRevoke, "s3", "rak_2"),
			onKey(reconcile.OpDelete, "s3", "rak_2"), onKey(reconcile.OpClaim, "s4", "rak_3"), create("s5", "ABC9"),
		},
	}
	for name, actions := range batches {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			if _, err := sink.New(rec, 0).Apply(t.Context(), actions); err != nil {
				t.Fatal(err)
			}
			if len(rec.reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(rec.reqs))
			}
			req := rec.reqs[0]
			doc, perr := parser.ParseQuery(&ast.Source{Name: name, Input: req.Query})
			if perr != nil {
				t.Fatalf("parse: %v\n%s", perr, req.Query)
			}
			if errs := validator.ValidateWithRules(sch, doc, nil); len(errs) > 0 {
				t.Fatalf("validate: %v\n%s", errs, req.Query)
			}
			op := doc.Operations.ForName(req.OpName)
			if op == nil || op.Operation != ast.Mutation || len(doc.Operations) != 1 {
				t.Fatalf("OpName %q does not name the document's one mutation:\n%s", req.OpName, req.Query)
			}
			if len(op.SelectionSet) != len(actions) {
				t.Errorf("%d root fields for %d actions", len(op.SelectionSet), len(actions))
			}
			// Variables as they go over the wire.
			raw, err := json.Marshal(req.Variables)
			if err != nil {
				t.Fatal(err)
			}
			var vars map[string]any
			if err := json.Unmarshal(raw, &vars); err != nil {
				t.Fatal(err)
			}
			if _, err := validator.VariableValues(sch, op, vars); err != nil {
				t.Errorf("variables %s: %v", raw, err)
			}
			for _, a := range actions {
				if pin := a.Cred.PIN.Reveal(); pin != "" && strings.Contains(req.Query, pin) {
					t.Errorf("PIN %s written into the document:\n%s", pin, req.Query)
				}
			}
		})
	}
}

// cannedSink returns a Sink whose server answers every request with body
// (HTTP 200, JSON).
func cannedSink(t *testing.T, body string) *sink.Sink {
	t.Helper()
	return cannedSinkStatus(t, http.StatusOK, body)
}

// cannedSinkStatus returns a Sink whose server answers every request with
// status and body (JSON).
func cannedSinkStatus(t *testing.T, status int, body string) *sink.Sink {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return sink.New(client(srv.URL), 0)
}

func TestApplyAliasMissing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body string }{
		{"absent", `{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_9"}},"a2":{"deleted":true}}}`},
		{"null without an error", `{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_9"}},"a1":null,"a2":{"deleted":true}}}`},
		{"error for another path", `{"data":{"a0":{"roomAccessKey":{"__typename":"RoomAccessPin","id":"rak_9"}},"a1":null,"a2":{"deleted":true}},"errors":[{"message":"x","path":["a7"]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := apply(t, cannedSink(t, tc.body),
				create("s1", "4711"), onKey(reconcile.OpAssign, "s1", "rak_1"), onKey(reconcile.OpDelete, "s2", "rak_2"))
			if out[0].Err != nil || out[0].RemoteID != "rak_9" {
				t.Errorf("create: %+v, want rak_9", out[0])
			}
			if !errors.Is(out[1].Err, reconcile.ErrUnknownOutcome) {
				t.Errorf("assign: err = %v, want ErrUnknownOutcome", out[1].Err)
			}
			if out[2].Err != nil {
				t.Errorf("delete: %v", out[2].Err)
			}
		})
	}
}

func TestApplyCreateWithoutID(t *testing.T) {
	t.Parallel()
	out := apply(t, cannedSink(t, `{"data":{"a0":{"roomAccessKey":null}}}`), create("s1", "4711"))
	if !errors.Is(out[0].Err, reconcile.ErrUnknownOutcome) || out[0].RemoteID != "" {
		t.Errorf("outcome %+v, want ErrUnknownOutcome and no id", out[0])
	}
}

// TestApplyRequestRefused: an answer with errors and no data at all fails
// as a whole with an unknown outcome: the server may have refused the
// document or failed while running it, and nothing says which, so no field
// may be taken as refused.
func TestApplyRequestRefused(t *testing.T) {
	t.Parallel()
	s := cannedSink(t, `{"data":null,"errors":[{"message":"query complexity too high"},{"message":"try again with fewer fields"}]}`)
	_, err := s.Apply(context.Background(), []*reconcile.Action{create("s1", "4711"), onKey(reconcile.OpRevoke, "s2", "rak_2"), onKey(reconcile.OpClaim, "s2", "rak_2")})
	if !errors.Is(err, reconcile.ErrUnknownOutcome) || errors.Is(err, reconcile.ErrRejected) {
		t.Errorf("err = %v, want the whole request to have an unknown outcome", err)
	}
	if err != nil && !strings.Contains(err.Error(), "query complexity too high") {
		t.Errorf("err = %q, want the server's message", err)
	}
}

func TestApplyErrorCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code string
		want error
	}{
		{"NOT_FOUND", reconcile.ErrNotFound},
		{"FORBIDDEN", reconcile.ErrNotOurs},
		{"CONFLICT", reconcile.ErrConflict},
		{"BAD_USER_INPUT", reconcile.ErrRejected},
		{"INTERNAL_SERVER_ERROR", nil},
	} {
		t.Run(tc.code, func(t *testing.T) {
			body := `{"data":{"a0":null},"errors":[{"message":"it failed","path":["a0"],"extensions":{"code":"` + tc.code + `"}}]}`
			out := apply(t, cannedSink(t, body), onKey(reconcile.OpAssign, "s1", "rak_1"))
			err := out[0].Err
			if err == nil || !strings.Contains(err.Error(), "it failed") {
				t.Fatalf("err = %v, want the server's message", err)
			}
			for _, sen := range []error{reconcile.ErrNotFound, reconcile.ErrNotOurs, reconcile.ErrConflict, reconcile.ErrRejected, reconcile.ErrUnknownOutcome} {
				if errors.Is(err, sen) != (sen == tc.want) {
					t.Errorf("err = %v, want it to wrap %v and no other sentinel", err, tc.want)
				}
			}
		})
	}
}

func TestApplyRedactsPIN(t *testing.T) {
	t.Parallel()
	const pin = "PIN4711"
	for _, tc := range []struct{ name, body string }{
		{"field error", `{"data":{"a0":null,"a1":null},"errors":[{"message":"pin PIN4711 is taken","path":["a0"],"extensions":{"code":"BAD_USER_INPUT"}},{"message":"pin PIN4711 again","path":["a1"]}]}`},
		{"request error", `{"data":null,"errors":[{"message":"cannot accept PIN4711"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := cannedSink(t, tc.body).Apply(context.Background(), []*reconcile.Action{create("s1", pin), create("s2", "8642")})
			errs := []error{err} // the request's, or each outcome's
			if err == nil {
				errs = errs[:0]
				for _, o := range out {
					errs = append(errs, o.Err)
				}
			}
			for i, e := range errs {
				if e == nil {
					t.Fatalf("error %d: none", i)
				}
				if strings.Contains(e.Error(), pin) {
					t.Errorf("error %d: %q quotes the PIN", i, e)
				}
				if !strings.Contains(e.Error(), "[redacted]") {
					t.Errorf("error %d: %q, want the PIN replaced by [redacted]", i, e)
				}
			}
		})
	}
}

// TestApplyRequestErrorRedactsPIN sends a create whose whole request is
// refused with a message quoting the variables, as graphql-js does.
func TestApplyRequestErrorRedactsPIN(t *testing.T) {
	t.Parallel()
	const pin = "PIN4711"
	s := cannedSinkStatus(t, http.StatusBadRequest,
		`{"errors":[{"message":"Variable \"$v0\" got invalid value {\"roomAccessPin\":{\"pin\":\"PIN4711\"}}."}]}`)
	out, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", pin)})
	if !errors.Is(err, reconcile.ErrRejected) || out != nil {
		t.Fatalf("Apply = %v, %v; want a request-level ErrRejected", out, err)
	}
	if strings.Contains(err.Error(), pin) {
		t.Errorf("err = %q quotes the PIN", err)
	}
}

// TestApplyRequestErrorRedactsAShortCompartment: the API document's own
// compartment example is two characters ("3R"), and a refusal quoting the
// variables (graphql-js style) must not carry it into the error, however
// short it is.
func TestApplyRequestErrorRedactsAShortCompartment(t *testing.T) {
	t.Parallel()
	s := cannedSinkStatus(t, http.StatusBadRequest,
		`{"errors":[{"message":"Variable \"$v0\" got invalid value {\"roomAccessKeyStorage\":{\"pin\":\"4821\",\"compartment\":\"3R\"}}; compartment 3R is not in use."}]}`)
	a := create("s1", "4821")
	a.Kind, a.Cred.Kind, a.Cred.Compartment = reconcile.KindKeyStorageKey, reconcile.KindKeyStorageKey, "3R"
	out, err := s.Apply(t.Context(), []*reconcile.Action{a})
	if !errors.Is(err, reconcile.ErrRejected) || out != nil {
		t.Fatalf("Apply = %v, %v; want a request-level ErrRejected", out, err)
	}
	if msg := err.Error(); strings.Contains(msg, `"3R"`) || strings.Contains(msg, "compartment 3R") || strings.Contains(msg, "4821") {
		t.Errorf("err = %q quotes the compartment or the PIN", msg)
	}
}

func TestApplyTransportFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		want   error
	}{
		{"server error", http.StatusInternalServerError, reconcile.ErrUnknownOutcome},
		{"bad request", http.StatusBadRequest, reconcile.ErrRejected},
		{"unauthorized", http.StatusUnauthorized, reconcile.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := cannedSinkStatus(t, tc.status, `{"errors":[{"message":"no"}]}`)
			out, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", "4711")})
			if !errors.Is(err, tc.want) || out != nil {
				t.Errorf("Apply = %v, %v; want no outcomes and %v", out, err, tc.want)
			}
		})
	}
}

// TestApplyCreatesDerivedKeys creates the two key types whose content comes
// from another system: a key-box code with its compartment, and an invite
// link as QR data.
func TestApplyCreatesDerivedKeys(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	ks := create("s1", "")
	ks.Cred.Kind, ks.Kind = reconcile.KindKeyStorageKey, reconcile.KindKeyStorageKey
	ks.Cred.PIN, ks.Cred.Compartment = "482913", "3R"
	qr := create("s2", "")
	qr.Cred.Kind, qr.Kind = reconcile.KindQRKey, reconcile.KindQRKey
	qr.Cred.QRData = "https://open.example/i/tok-123"
	out := apply(t, s, ks, qr)
	oneRequest(t, sb, "createRoomAccessKey", "createRoomAccessKey")
	k := keyByID(t, sb, out[0].RemoteID)
	if k.Type != sandbox.KeyTypeKeyStorage || k.PIN != "482913" || k.Compartment != "3R" {
		t.Errorf("key-storage key = %+v", k)
	}
	k = keyByID(t, sb, out[1].RemoteID)
	if k.Type != sandbox.KeyTypeQR || k.QRData != "https://open.example/i/tok-123" {
		t.Errorf("QR key = %+v", k)
	}

	// Content that breaks the API document's limits is refused before sending.
	bad := create("s3", "")
	bad.Cred.Kind, bad.Cred.QRData = reconcile.KindQRKey, reconcile.Secret(strings.Repeat("x", 513))
	if out, err := s.Apply(context.Background(), []*reconcile.Action{bad}); err != nil || out[0].Err == nil {
		t.Error("513 characters of QR data were not refused")
	}
	bad.Cred.Kind, bad.Cred.PIN, bad.Cred.Compartment = reconcile.KindKeyStorageKey, "482913", "shelf-12"
	if out, err := s.Apply(context.Background(), []*reconcile.Action{bad}); err != nil || out[0].Err == nil || strings.Contains(out[0].Err.Error(), "shelf-12") {
		t.Errorf("bad compartment: outcome = %v (must be refused, without quoting it)", out)
	}
}

// TestApplyMessageOnlyErrors: a server whose errors carry only a message
// (no code, no path) still has every field decided: a null field is refused
// with the message (no sentinel, and never "unknown"), the others succeed.
func TestApplyMessageOnlyErrors(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	sb.SetMessageOnlyErrors(true)
	foreign1 := inject(t, sb, sandbox.OtherIntegration, "9001", "s1")
	foreign3 := inject(t, sb, sandbox.OtherIntegration, "9003", "s3")
	ours := inject(t, sb, ourID, "1234")

	t.Run("one error", func(t *testing.T) {
		out := apply(t, s, onKey(reconcile.OpClaim, "s1", foreign1), create("s5", "4242"))
		if err := out[0].Err; err == nil || !strings.Contains(err.Error(), "not created by this integration") {
			t.Errorf("claim of a foreign key: err = %v, want the server's message", err)
		}
		for _, sen := range []error{reconcile.ErrNotFound, reconcile.ErrNotOurs, reconcile.ErrConflict, reconcile.ErrRejected, reconcile.ErrUnknownOutcome} {
			if errors.Is(out[0].Err, sen) {
				t.Errorf("claim: err = %v wraps %v; the server sent no code", out[0].Err, sen)
			}
		}
		if out[1].Err != nil || out[1].RemoteID == "" {
			t.Errorf("create beside it: %+v", out[1])
		}
	})
	t.Run("errors that cannot be told apart", func(t *testing.T) {
		out := apply(t, s, onKey(reconcile.OpAssign, "s1", ours), onKey(reconcile.OpAssign, "s2", ours), onKey(reconcile.OpClaim, "s3", foreign3))
		for _, i := range []int{0, 2} {
			err := out[i].Err
			if err == nil || errors.Is(err, reconcile.ErrUnknownOutcome) || !strings.Contains(err.Error(), "name no field") {
				t.Errorf("action %d: err = %v, want a refusal naming the server's messages", i, err)
			}
		}
		if out[1].Err != nil || stayKey(t, sb, "s2") != ours {
			t.Errorf("assign to s2: %v, s2 holds %q", out[1].Err, stayKey(t, sb, "s2"))
		}
	})
}

// TestApplyDocumentsUndoneWhole: against a server that undoes a whole
// document when one field fails, every action but the refused ones is
// done in the same Apply: sent again without the refused fields when the
// errors name them, in halves until each refusal stands alone when they
// do not. The refusals keep their own errors, nothing is done twice.
func TestApplyDocumentsUndoneWhole(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name        string
		messageOnly bool
		requests    int
	}{
		{"codes", false, 2},       // the document, then the three others
		{"message-only", true, 5}, // [0 1 2 3], [0 1], [2 3], [2], [3]
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			sb, s := newSandbox(t)
			sb.SetRollbackDocuments(true)
			sb.SetMessageOnlyErrors(mode.messageOnly)
			foreign := inject(t, sb, sandbox.OtherIntegration, "9004", "s4")
			ours := inject(t, sb, ourID, "1234")
			sb.ResetRequests()
			out := apply(t, s, create("s5", "4242"), onKey(reconcile.OpAssign, "s1", ours),
				create("s6", "4343"), onKey(reconcile.OpClaim, "s4", foreign))
			if err := out[3].Err; err == nil || !strings.Contains(err.Error(), "not created by this integration") || errors.Is(err, reconcile.ErrUnknownOutcome) {
				t.Errorf("claim of a foreign key: err = %v, want the server's refusal", err)
			}
			for _, i := range []int{0, 1, 2} {
				if out[i].Err != nil {
					t.Errorf("action %d: %v, want done", i, out[i].Err)
				}
			}
			if stayKey(t, sb, "s1") != ours || stayKey(t, sb, "s4") != foreign {
				t.Errorf("s1 holds %q, s4 %q", stayKey(t, sb, "s1"), stayKey(t, sb, "s4"))
			}
			var made []string
			for _, k := range sb.Keys() {
				if k.Owner == ourID && k.ID != ours {
					made = append(made, k.PIN)
				}
			}
			slices.Sort(made)
			if !slices.Equal(made, []string{"4242", "4343"}) || out[0].RemoteID == "" || out[2].RemoteID == "" {
				t.Errorf("keys made %v (outcomes %+v, %+v), want one each of 4242 and 4343", made, out[0], out[2])
			}
			if n := len(sb.Requests()); n != mode.requests {
				t.Errorf("%d requests, want %d", n, mode.requests)
			}
		})
	}
}

// TestApplyDocumentsTooLarge: a server that takes fewer fields a document
// than the sink sends (the sandbox's MaxRootFields, HTTP 400 before
// running anything) gets each refused document again in halves until they
// go through, and the rest of the run's documents no larger than the
// halves that went: every action done, nothing sent twice that ran.
func TestApplyDocumentsTooLarge(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	sb.SetMaxRootFields(3)
	batch := func(from int) []*reconcile.Action {
		var out []*reconcile.Action
		for i := range 8 {
			out = append(out, create(fmt.Sprintf("s%d", 1+i%6), fmt.Sprintf("%d", 5000+from+i)))
		}
		return out
	}
	statuses := func() []int {
		var out []int
		for _, r := range sb.Requests() {
			out = append(out, r.Status)
		}
		sb.ResetRequests()
		return out
	}
	for i, o := range apply(t, s, batch(0)...) {
		if o.Err != nil || o.RemoteID == "" {
			t.Errorf("create %d: %+v", i, o)
		}
	}
	// 8 refused; 4 refused, 2 and 2 went (documents of 2 from now on); 2 and 2.
	if got, want := statuses(), []int{400, 400, 200, 200, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("first batch: statuses %v, want %v", got, want)
	}
	for i, o := range apply(t, s, batch(100)...) {
		if o.Err != nil || o.RemoteID == "" {
			t.Errorf("second batch, create %d: %+v", i, o)
		}
	}
	if got, want := statuses(), []int{200, 200, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("second batch: statuses %v, want %v (documents of the size that went)", got, want)
	}
	if n := len(sb.Keys()); n != 16 {
		t.Errorf("%d keys made, want 16: one per create", n)
	}
}

// TestApplyOneInputRefusedBeforeRunning: a server that refuses a whole
// document before running it for one field's input (here any document
// carrying the PIN 4999, HTTP 400) gets it again in halves until that
// field stands alone and is refused as its own; the others are done. The
// document size the run keeps to is not driven down by it: the next batch
// goes in one document.
func TestApplyOneInputRefusedBeforeRunning(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), `"4999"`) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"errors":[{"message":"pin 4999 is not allowed"}]}`)
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			next.ServeHTTP(w, r)
		})
	})
	var batch []*reconcile.Action
	for i := range 8 {
		batch = append(batch, create(fmt.Sprintf("s%d", 1+i%6), fmt.Sprintf("%d", 4993+i)))
	}
	out := apply(t, s, batch...) // 4999 is the seventh
	for i, o := range out {
		switch {
		case i == 6 && (o.Err == nil || errors.Is(o.Err, reconcile.ErrUnknownOutcome)):
			t.Errorf("create with the refused PIN: %v, want its refusal", o.Err)
		case i != 6 && (o.Err != nil || o.RemoteID == ""):
			t.Errorf("create %d: %+v, want done", i, o)
		}
	}
	if s.MaxBatch() != sink.DefaultMaxOps {
		t.Errorf("MaxBatch %d after one input was refused, want %d", s.MaxBatch(), sink.DefaultMaxOps)
	}
	sb.ResetRequests()
	var next []*reconcile.Action
	for i := range 8 {
		next = append(next, create(fmt.Sprintf("s%d", 1+i%6), fmt.Sprintf("%d", 6000+i)))
	}
	apply(t, s, next...)
	if n := len(sb.Requests()); n != 1 {
		t.Errorf("the next batch took %d requests, want 1", n)
	}
}

// TestApplyResendFailsAsAWhole: a document undone whole goes again, and
// that request fails as a whole (HTTP 409, which for a request of one
// field would be its refusal): the fields in it have an unknown outcome,
// never a refusal of their own, so nothing is settled on their account
// before the next read.
func TestApplyResendFailsAsAWhole(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	sb, s := newSandbox(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/graphql" && calls.Add(1) == 2 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusConflict)
				io.WriteString(w, `{"errors":[{"message":"busy"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	sb.SetRollbackDocuments(true)
	foreign := inject(t, sb, sandbox.OtherIntegration, "9004", "s4")
	ours := inject(t, sb, ourID, "1234")
	out := apply(t, s, onKey(reconcile.OpClaim, "s1", ours), create("s5", "4242"), onKey(reconcile.OpClaim, "s4", foreign))
	if err := out[2].Err; err == nil || errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("claim of the foreign key: %v, want its refusal", err)
	}
	for _, i := range []int{0, 1} {
		if err := out[i].Err; !errors.Is(err, reconcile.ErrUnknownOutcome) {
			t.Errorf("action %d, sent again in a request that failed: %v, want an unknown outcome", i, err)
		}
	}
}

// TestApplyDataNullIsNeverSentAgain: an answer with errors and "data":
// null may follow fields that ran (a non-null field failing late), so
// nothing is sent again, and no field is taken as refused unless an error
// names it: errors that name no field leave the whole request an unknown
// outcome; one that names a field (a server whose payloads are non-null,
// the sandbox's NonNullPayloads) is that field's refusal, and the others'
// outcome is unknown. The same errors without a "data" member say nothing
// ran, and the document goes again in halves.
func TestApplyDataNullIsNeverSentAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer string
		requests     int
		refused      int // the field refused by name, or -1: the request fails as a whole
	}{
		{"data null", `{"data":null,"errors":[{"message":"failed"}]}`, 1, -1},
		{"data null, the failed field named", `{"data":null,"errors":[{"message":"failed","path":["a2"]}]}`, 1, 2},
		{"no data", `{"errors":[{"message":"document too complex"}]}`, 7, -1}, // [4], [2] [2], [1]×4
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			_, s := newSandbox(t, func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, tc.answer)
				})
			})
			out, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", "4201"), create("s2", "4202"), create("s3", "4203"), create("s4", "4204")})
			if tc.refused < 0 {
				if !errors.Is(err, reconcile.ErrUnknownOutcome) || out != nil {
					t.Errorf("Apply: %v, %+v; want the request's failure, an unknown outcome", err, out)
				}
			} else {
				if err != nil || len(out) != 4 {
					t.Fatalf("Apply: %v, %+v; want an outcome per field", err, out)
				}
				for i, o := range out {
					if unknown := errors.Is(o.Err, reconcile.ErrUnknownOutcome); o.Err == nil || unknown != (i != tc.refused) {
						t.Errorf("field %d: %v; want %s", i, o.Err, map[bool]string{true: "its refusal", false: "an unknown outcome"}[i == tc.refused])
					}
				}
			}
			if n := int(calls.Load()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

// TestApplyWholeFailuresThatMayHaveRun: when every request carrying a
// batch failed, the batch's failure is one that leaves the outcome
// unknown whenever any of them may have run: a halved document whose
// second half met a 502 after its first was refused, or a 400 whose body
// has "data" but no errors that name the fields refused (fields may have
// run before it; never sent again).
func TestApplyWholeFailuresThatMayHaveRun(t *testing.T) {
	t.Parallel()
	refused := `{"errors":[{"message":"too many fields"}]}`
	for _, tc := range []struct {
		name     string
		answers  []int
		body     string
		requests int
	}{
		{"halves refused, then 502", []int{400, 400, 502}, refused, 3},
		{"400 with data null", []int{400}, `{"data":null,"errors":[{"message":"failed","path":["a1"]}]}`, 1},
		// Data without errors names no field refused (with errors it is
		// read as a 200's: TestFieldErrorsAs400).
		{"400 with data and no errors", []int{400}, `{"data":{"a1":null,"a2":null}}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			_, s := newSandbox(t, func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n := int(calls.Add(1))
					status := tc.answers[min(n, len(tc.answers))-1]
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					io.WriteString(w, tc.body)
				})
			})
			out, err := s.Apply(t.Context(), []*reconcile.Action{create("s1", "4201"), create("s2", "4202")})
			if !errors.Is(err, reconcile.ErrUnknownOutcome) {
				t.Errorf("Apply: %v, %+v; want a failure that leaves the outcome unknown", err, out)
			}
			if n := int(calls.Load()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

// TestApplyNonNullPayloads: a 3RPMS whose mutation payloads are non-null
// (the sandbox's NonNullPayloads; the API document never shows a return
// type) answers a document one of whose fields fails with "data": null
// and an error naming the field. That field is refused by its error; a
// create beside it may have run, so its outcome is unknown and it is not
// sent again; an assign beside it goes again and is done. On main the
// whole request had an unknown outcome, so the refused claim was never
// answered (and each run claimed again, losing the creates beside it).
// With errors that name no field nothing is taken as refused.
func TestApplyNonNullPayloads(t *testing.T) {
	t.Parallel()
	for _, messageOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("message only ", messageOnly), func(t *testing.T) {
			t.Parallel()
			sb, s := newSandbox(t)
			sb.SetNonNullPayloads(true)
			sb.SetMessageOnlyErrors(messageOnly)
			foreign := inject(t, sb, sandbox.OtherIntegration, "9004", "s4")
			ours := inject(t, sb, ourID, "1234")
			out, err := s.Apply(t.Context(), []*reconcile.Action{
				create("s5", "4242"), onKey(reconcile.OpClaim, "s4", foreign), onKey(reconcile.OpAssign, "s1", ours),
			})
			if messageOnly {
				if !errors.Is(err, reconcile.ErrUnknownOutcome) || out != nil {
					t.Errorf("Apply: %v, %+v; want the request's failure, an unknown outcome", err, out)
				}
				return
			}
			if err != nil || len(out) != 3 {
				t.Fatalf("Apply: %v, %+v", err, out)
			}
			if !errors.Is(out[0].Err, reconcile.ErrUnknownOutcome) {
				t.Errorf("create: %v, want an unknown outcome", out[0].Err)
			}
			if err := out[1].Err; !errors.Is(err, reconcile.ErrNotOurs) || errors.Is(err, reconcile.ErrUnknownOutcome) {
				t.Errorf("claim of the foreign key: %v, want its refusal", err)
			}
			if out[2].Err != nil || stayKey(t, sb, "s1") != ours {
				t.Errorf("assign: %v, s1 holds %q; want it done", out[2].Err, stayKey(t, sb, "s1"))
			}
			if n := len(sb.Requests()); n != 2 {
				t.Errorf("%d requests, want 2: the document, then the assign again", n)
			}
		})
	}
}

// TestApplyDeletedAsID: the 3RPMS Room Access Key API selects
// deleteRoomAccessKey(...) { deleted } without saying what deleted holds.
// A server that answers it with the deleted key's id (the sandbox's
// DeletedAsID) has deleted the key: the delete is done, not an unknown
// outcome (on main every such delete was unknown, a partial run, and was
// sent again the next night only to be refused). An id other than the
// key's, an empty one or false says nothing was deleted.
func TestApplyDeletedAsID(t *testing.T) {
	t.Parallel()
	sb, s := newSandbox(t)
	sb.SetDeletedAsID(true)
	unassigned := inject(t, sb, ourID, "1111")
	old := inject(t, sb, ourID, "2222", "s2")
	out := apply(t, s, onKey(reconcile.OpDelete, "s1", unassigned), onKey(reconcile.OpRevoke, "s2", old), onKey(reconcile.OpDelete, "s2", old))
	allDone(t, "outcome", out)
	for _, id := range []string{unassigned, old} {
		if k := keyByID(t, sb, id); !k.Deleted {
			t.Errorf("key %s = %+v, want deleted", id, k)
		}
	}
	for _, body := range []string{
		`{"data":{"a0":{"deleted":"rak_other"}}}`,
		`{"data":{"a0":{"deleted":""}}}`,
		`{"data":{"a0":{"deleted":null}}}`,
		`{"data":{"a0":{"deleted":1}}}`,
	} {
		out := apply(t, cannedSink(t, body), onKey(reconcile.OpDelete, "s1", "rak_1"))
		if !errors.Is(out[0].Err, reconcile.ErrUnknownOutcome) {
			t.Errorf("%s: %v, want an unknown outcome", body, out[0].Err)
		}
	}
	// deleted:false is the server's answer that it did not delete the key
	// (a key already gone, say): a refusal, settled as any refused delete,
	// not an outcome to wait on run after run.
	out = apply(t, cannedSink(t, `{"data":{"a0":{"deleted":false}}}`), onKey(reconcile.OpDelete, "s1", "rak_1"))
	if err := out[0].Err; !errors.Is(err, reconcile.ErrConflict) || errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("deleted:false: %v, want a refusal (conflict), not an unknown outcome", err)
	}
}

// TestApplyResendsPaidFromBudget: the plan's price pays for a batch's
// document once; every document sent again for it (the fields of one
// undone whole, the halves of one refused before it ran) takes a request
// from the re-send budget (reconcile.WithResends), and one it has none for
// is not sent. Fields that did not run are then not sent (ErrOverBudget:
// deferred), fields that may have run are unknown, and refusals keep their
// own errors.
func TestApplyResendsPaidFromBudget(t *testing.T) {
	t.Parallel()
	const (
		done    = "done"
		over    = "over budget"
		unknown = "unknown"
		refusal = "refused"
	)
	for _, tc := range []struct {
		name     string
		setup    func(*sandbox.Server)
		left     int
		want     []string // create s5, claim of the foreign key on s4, assign on s1
		requests int
		whole    error // Apply's error, when the batch fails as a whole
	}{
		{name: "undone whole, a request left", setup: func(sb *sandbox.Server) { sb.SetRollbackDocuments(true) }, left: 1,
			want: []string{done, refusal, done}, requests: 2},
		{name: "undone whole, none left", setup: func(sb *sandbox.Server) { sb.SetRollbackDocuments(true) }, left: 0,
			want: []string{over, refusal, over}, requests: 1},
		{name: "data null, none left", setup: func(sb *sandbox.Server) { sb.SetNonNullPayloads(true) }, left: 0,
			want: []string{unknown, refusal, unknown}, requests: 1},
		{name: "data null, a request left", setup: func(sb *sandbox.Server) { sb.SetNonNullPayloads(true) }, left: 1,
			want: []string{unknown, refusal, done}, requests: 2},
		{name: "refused before running, none left", setup: func(sb *sandbox.Server) { sb.SetMaxRootFields(2) }, left: 0,
			requests: 1, whole: reconcile.ErrOverBudget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, s := newSandbox(t)
			tc.setup(sb)
			foreign := inject(t, sb, sandbox.OtherIntegration, "9004", "s4")
			ours := inject(t, sb, ourID, "1234")
			sb.ResetRequests()
			left := tc.left
			ctx := reconcile.WithResends(t.Context(), func(bool) bool {
				if left == 0 {
					return false
				}
				left--
				return true
			}, false)
			out, err := s.Apply(ctx, []*reconcile.Action{
				create("s5", "4242"), onKey(reconcile.OpClaim, "s4", foreign), onKey(reconcile.OpAssign, "s1", ours),
			})
			if n := len(sb.Requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if tc.whole != nil {
				if !errors.Is(err, tc.whole) || errors.Is(err, reconcile.ErrUnknownOutcome) || out != nil {
					t.Errorf("Apply: %v, %+v; want a whole failure wrapping %v alone", err, out, tc.whole)
				}
				return
			}
			if err != nil || len(out) != len(tc.want) {
				t.Fatalf("Apply: %v, %+v", err, out)
			}
			for i, o := range out {
				got := done
				switch {
				case errors.Is(o.Err, reconcile.ErrUnknownOutcome):
					got = unknown
				case errors.Is(o.Err, reconcile.ErrOverBudget):
					got = over
				case o.Err != nil:
					got = refusal
				}
				if got != tc.want[i] {
					t.Errorf("action %d: %s (%v), want %s", i, got, o.Err, tc.want[i])
				}
			}
			if tc.want[2] == over && stayKey(t, sb, "s1") != "" {
				t.Errorf("s1 holds %q, though its assign was not sent again", stayKey(t, sb, "s1"))
			}
		})
	}
}

// TestApplyResendsAtTheirOwnPriority: a batch mixing a night's revocations
// with arrivals' creates comes with its re-send budget at the batch's
// priority (it carries a revocation), but each document the sink sends
// again asks at its own: a half or the undone fields carrying a revoke may
// spend the revocation reserve, those carrying creates and assigns alone
// may not, and are not sent (ErrOverBudget: deferred).
func TestApplyResendsAtTheirOwnPriority(t *testing.T) {
	t.Parallel()
	const (
		done    = "done"
		over    = "over budget"
		refusal = "refused"
	)
	arrival := func(a *reconcile.Action) *reconcile.Action {
		a.Priority = reconcile.PriorityArrivalSoon
		return a
	}
	revoke := func(a *reconcile.Action) *reconcile.Action {
		a.Priority = reconcile.PriorityRevoke
		return a
	}
	for _, tc := range []struct {
		name    string
		setup   func(*sandbox.Server)
		actions func(ours, foreign string) []*reconcile.Action
		// left and reserve are the day's budget after the plan's price:
		// only a request carrying a revocation may go below reserve.
		left, reserve int
		want          []string
		// asked is the priority of each re-send asked for (true: it
		// carries a revocation).
		asked    []bool
		requests int
	}{
		{
			name:  "halves: the revoke's half gets the reserve, the creates-only half does not",
			setup: func(sb *sandbox.Server) { sb.SetMaxRootFields(2) },
			actions: func(ours, _ string) []*reconcile.Action {
				return []*reconcile.Action{
					revoke(onKey(reconcile.OpRevoke, "s1", ours)), arrival(create("s2", "4242")),
					arrival(create("s5", "5353")), arrival(create("s6", "6464")),
				}
			},
			left: 2, reserve: 2, want: []string{done, done, over, over}, asked: []bool{true, false}, requests: 2,
		},
		{
			name:  "halves: the creates-only half first is refused the reserve, the revoke's half after it gets it",
			setup: func(sb *sandbox.Server) { sb.SetMaxRootFields(2) },
			actions: func(ours, _ string) []*reconcile.Action {
				return []*reconcile.Action{
					arrival(create("s2", "4242")), arrival(create("s5", "5353")),
					arrival(create("s6", "6464")), revoke(onKey(reconcile.OpRevoke, "s1", ours)),
				}
			},
			left: 1, reserve: 1, want: []string{over, over, done, done}, asked: []bool{false, true}, requests: 2,
		},
		{
			name:  "halves: with a request above the reserve, the creates-only half goes too",
			setup: func(sb *sandbox.Server) { sb.SetMaxRootFields(2) },
			actions: func(ours, _ string) []*reconcile.Action {
				return []*reconcile.Action{
					revoke(onKey(reconcile.OpRevoke, "s1", ours)), arrival(create("s2", "4242")),
					arrival(create("s5", "5353")), arrival(create("s6", "6464")),
				}
			},
			left: 4, reserve: 2, want: []string{done, done, done, done}, asked: []bool{true, false}, requests: 3,
		},
		{
			name:  "undone whole: the fields sent again carry a revoke",
			setup: func(sb *sandbox.Server) { sb.SetRollbackDocuments(true) },
			actions: func(ours, foreign string) []*reconcile.Action {
				return []*reconcile.Action{
					revoke(onKey(reconcile.OpRevoke, "s1", ours)), arrival(onKey(reconcile.OpClaim, "s4", foreign)),
					arrival(create("s5", "5353")),
				}
			},
			left: 1, reserve: 1, want: []string{done, refusal, done}, asked: []bool{true}, requests: 2,
		},
		{
			name:  "undone whole: the revoke refused, the fields sent again are creates and assigns alone",
			setup: func(sb *sandbox.Server) { sb.SetRollbackDocuments(true) },
			actions: func(ours, foreign string) []*reconcile.Action {
				return []*reconcile.Action{
					arrival(create("s5", "5353")), revoke(onKey(reconcile.OpRevoke, "s4", foreign)),
					arrival(onKey(reconcile.OpAssign, "s2", ours)),
				}
			},
			left: 1, reserve: 1, want: []string{over, refusal, over}, asked: []bool{false}, requests: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, s := newSandbox(t)
			tc.setup(sb)
			foreign := inject(t, sb, sandbox.OtherIntegration, "9004", "s4")
			ours := inject(t, sb, ourID, "1234", "s1")
			sb.ResetRequests()
			left := tc.left
			var asked []bool
			spend := func(revoke bool) bool {
				asked = append(asked, revoke)
				floor := tc.reserve
				if revoke {
					floor = 0
				}
				if left <= floor {
					return false
				}
				left--
				return true
			}
			// The batch carries a revocation: apply's default for it.
			ctx := reconcile.WithResends(t.Context(), spend, true)
			out, err := s.Apply(ctx, tc.actions(ours, foreign))
			if err != nil || len(out) != len(tc.want) {
				t.Fatalf("Apply: %v, %+v", err, out)
			}
			for i, o := range out {
				got := done
				switch {
				case errors.Is(o.Err, reconcile.ErrOverBudget) && !errors.Is(o.Err, reconcile.ErrUnknownOutcome):
					got = over
				case o.Err != nil:
					got = refusal
				}
				if got != tc.want[i] {
					t.Errorf("action %d: %s (%v), want %s", i, got, o.Err, tc.want[i])
				}
			}
			if !slices.Equal(asked, tc.asked) {
				t.Errorf("re-sends asked at priorities %v, want %v (true: carrying a revocation)", asked, tc.asked)
			}
			if n := len(sb.Requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if tc.want[0] == done && tc.actions(ours, foreign)[0].Op == reconcile.OpRevoke && stayKey(t, sb, "s1") != "" {
				t.Errorf("s1 still holds %q after its revoke went", stayKey(t, sb, "s1"))
			}
		})
	}
}
