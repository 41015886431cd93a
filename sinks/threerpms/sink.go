// Package threerpms writes Room Access Keys to 3RPMS (the 3RPMS Room Access Key API): create,
// assign (addRoomAccessKey), revoke (removeRoomAccessKey) and delete,
// chained as aliased root fields of one mutation document so a whole run
// takes as few requests as the server allows.
//
// Assumptions where the 3RPMS Room Access Key API is silent, made here and in the sandbox alike:
//   - The delete's input is written inline, as the API document writes it
//     (deleteRoomAccessKey(input:{roomAccessKeyId: $id})): the document
//     names the input types of the other three mutations but not this one's.
//   - "Chained operations" are aliased root mutation fields in one document;
//     GraphQL runs root mutation fields one after another in document order,
//     so a revoke placed before an assign frees the stay first.
//   - Errors may carry extensions.code NOT_FOUND, FORBIDDEN (another
//     integration's key), CONFLICT (the stay holds another key, or the key is
//     still assigned) or BAD_USER_INPUT, and path = [alias]. These are hints
//     only: an error without a code is a refusal of its field all the same,
//     and reconcile settles it by what the next read shows (reconcile's
//     settle.go). An error without a path belongs to the null field no other
//     error names; when several such fields and errors cannot be told apart,
//     each null field is refused with all their messages.
//   - Nor is it assumed that the payloads may be null: a server whose
//     payloads are non-null answers "data": null when one field fails,
//     the error's path naming it. That field is refused; a create beside
//     it has an unknown outcome, the other fields go again (document.send;
//     the sandbox's NonNullPayloads).
//   - The delete's payload field deleted is read as true or as the deleted
//     key's id: the document selects it without saying what it holds (the
//     sandbox's DeletedAsID).
//   - Re-adding the key a stay already holds succeeds without change when the
//     key is ours and is refused when it is not, so backfill's claim
//     (reconcile.OpClaim) uses it as an ownership check that changes nothing.
//   - Nothing is assumed of whether a document's fields stand alone or fall
//     together. A server that runs each request in one transaction undoes
//     a document with a failed field whole and answers its other fields
//     null: keysync sends those again, without the refused fields, in the
//     same Apply (sendUndoable; the sandbox's RollbackDocuments).
//   - Nor is a limit on a document's fields assumed beyond
//     max_ops_per_request: a document refused whole before it ran goes
//     again in halves, and the run keeps to the size that went (the
//     sandbox's MaxRootFields). The extra requests of both are not in the
//     plan's price: each is a re-send, paid from the same day's budget
//     (reconcile.WithResends) and not sent when it has nothing left
//     (sendDocument); only one carrying a revocation or cleanup may spend
//     the revocation reserve, whatever else its batch carries.
package threerpms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// DefaultMaxOps is how many mutations keysync chains into one request by
// default; the API document gives no limit, so it is configurable.
const DefaultMaxOps = 100

// Sink applies key actions to 3RPMS. It implements reconcile.Sink.
type Sink struct {
	gql    graphql.Client
	maxOps int
	// chain, when set, sends the actions in documents shared with the
	// other properties on the same endpoint and token.
	chain *Chain
	// limit is the document size the server was seen to take (sizes).
	limit *sizes
}

var _ reconcile.Sink = (*Sink)(nil)

// New returns a Sink sending through gql (normally a *threerpms.Client),
// chaining up to maxOps mutations per request (0 means DefaultMaxOps).
func New(gql graphql.Client, maxOps int) *Sink {
	if maxOps <= 0 {
		maxOps = DefaultMaxOps
	}
	return &Sink{gql: gql, maxOps: maxOps, limit: &sizes{}}
}

// SetLogger makes the sink warn on log when 3RPMS takes smaller documents
// than it sends (see sendUndoable).
func (s *Sink) SetLogger(log *slog.Logger) {
	s.limit.mu.Lock()
	defer s.limit.mu.Unlock()
	s.limit.log = log
}

// MaxBatch implements reconcile.Sink: max_ops_per_request, or the smaller
// document size the run has learnt the server takes (see sendUndoable).
func (s *Sink) MaxBatch() int {
	if n := s.limit.get(); n > 0 {
		return min(s.maxOps, n)
	}
	return s.maxOps
}

// Apply implements reconcile.Sink: one document, one alias per action
// (with a Chain, a document shared with other properties' actions).
//
// An action whose input cannot be built (a PIN or compartment that breaks
// the API document's rules) fails alone, before sending; the others still go.
func (s *Sink) Apply(ctx context.Context, actions []*reconcile.Action) ([]reconcile.Outcome, error) {
	spend, _ := reconcile.Resends(ctx) // each document says its own priority
	sub := &submission{actions: actions, out: make([]reconcile.Outcome, len(actions)), resends: spend}
	for i, a := range actions {
		m, err := mutationOf(a)
		if err != nil {
			sub.out[i].Err = fmt.Errorf("3rpms: %s for stay %s: %w (%w)", a.Op, a.Stay.ID, err, reconcile.ErrRejected)
			continue
		}
		m.revoke = a.Priority == reconcile.PriorityRevoke
		sub.sent, sub.muts = append(sub.sent, i), append(sub.muts, m)
	}
	if len(sub.sent) == 0 {
		return sub.out, nil
	}
	if s.chain != nil {
		return s.chain.apply(ctx, sub)
	}
	sendDocument(ctx, s.gql, s.limit, []part{{sub: sub, to: len(sub.sent)}})
	return sub.out, sub.err
}

// submission is one Apply's actions: those in sent go in documents, as
// muts (one each), and out and err are what became of them.
type submission struct {
	actions []*reconcile.Action
	sent    []int
	muts    []mutation
	out     []reconcile.Outcome
	err     error
	// resends is the re-send budget the actions came with
	// (reconcile.WithResends), nil when none.
	resends func(revoke bool) bool
	// taken counts the actions of sent put in documents so far, answered
	// those answered, failed those in documents that failed as a whole
	// (failure is the first such error).
	taken, answered, failed int
	failure                 error
}

// done reports whether every action of sent was answered.
func (sub *submission) done() bool { return sub.answered == len(sub.sent) }

// part is the actions sent[from:to] of a submission, in one document.
type part struct {
	sub      *submission
	from, to int
}

// sendDocument sends the parts' actions as one document and settles them:
// each action gets its alias's outcome. A submission whose every action
// went in requests that failed as a whole fails as a whole (err), as one
// request of its own would have. One split across two documents of which
// only one failed gets, for the actions in that one, an unknown outcome:
// what the failed request did (nothing, or some of it) is for the next
// read to show, never taken as a refusal of each action.
//
// The plan's price paid for the document once; every request sent for it
// after the first (sendUndoable's, and the transport's retries) comes out
// of the day's budget, paid by the first of the parts' re-send budgets
// with a request left, at that document's own priority (sendUndoable: a
// document carrying a revocation or cleanup may spend the reserve, one
// of creates and assigns alone may not, whatever else its batch or the
// document it came from carried). One the budget has no request for is
// not sent: its fields that did not run are deferred
// (reconcile.ErrOverBudget), those that may have run have an unknown
// outcome.
func sendDocument(ctx context.Context, gql graphql.Client, limit *sizes, parts []part) {
	var muts []mutation
	for _, p := range parts {
		muts = append(muts, p.sub.muts[p.from:p.to]...)
	}
	ctx = reconcile.WithResends(ctx, anyOf(parts), revokes(muts))
	results, _, err := sendUndoable(ctx, &sender{gql: gql}, limit, muts, resendDepth(len(muts)))
	cause := reconcile.ErrUnknownOutcome
	if notSent(err) {
		cause = reconcile.ErrOverBudget // nothing of it ran
	}
	j := 0
	for _, p := range parts {
		sub := p.sub
		for _, i := range sub.sent[p.from:p.to] {
			if err != nil {
				sub.out[i].Err = fmt.Errorf("3rpms: %s for stay %s: the shared request carrying it failed as a whole (%v): %w",
					sub.actions[i].Op, sub.actions[i].Stay.ID, err, cause)
				sub.failed++
				sub.failure = worse(sub.failure, err)
			} else {
				sub.out[i] = fieldOutcome(sub.actions[i], results[j])
				j++
			}
			sub.answered++
		}
		if sub.done() && sub.failed == len(sub.sent) {
			sub.out, sub.err = nil, sub.failure
		}
	}
}

// anyOf is the re-send budget of a document carrying parts: the first of
// their budgets that has a request left, at the priority of the request
// sent again, pays; nil (not budgeted) when one of them is nil.
func anyOf(parts []part) func(revoke bool) bool {
	var spends []func(revoke bool) bool
	for _, p := range parts {
		if p.sub.resends == nil {
			return nil
		}
		spends = append(spends, p.sub.resends)
	}
	return func(revoke bool) bool {
		for _, spend := range spends {
			if spend(revoke) {
				return true
			}
		}
		return false
	}
}

// sender sends the documents of one sendDocument: the first is paid for
// by the plan's price, each after it by the re-send budget.
type sender struct {
	gql  graphql.Client
	sent bool
}

// send sends d, the first time, or again when ctx's re-send budget
// (reconcile.Resend) has a request for it at ctx's priority (d's own,
// see sendUndoable).
func (s *sender) send(ctx context.Context, d *document) ([]fieldResult, error) {
	if s.sent {
		if err := reconcile.Resend(ctx); err != nil {
			return nil, fmt.Errorf("3rpms: %w", err)
		}
	}
	s.sent = true
	return d.send(ctx, s.gql)
}

// notSent reports whether err says a request was not sent for want of
// budget (and no send before it may have run).
func notSent(err error) bool {
	return errors.Is(err, reconcile.ErrOverBudget) && !errors.Is(err, reconcile.ErrUnknownOutcome)
}

// fieldOutcome is what an alias's answer says of its action.
func fieldOutcome(a *reconcile.Action, r fieldResult) reconcile.Outcome {
	if r.err == nil {
		r.err = checkPayload(a, r.data)
	}
	if r.err != nil {
		return reconcile.Outcome{Err: fmt.Errorf("3rpms: %s %s for stay %s: %w", a.Op, kindLabel(a), a.Stay.ID, r.err)}
	}
	if a.Op != reconcile.OpCreate {
		return reconcile.Outcome{}
	}
	var p struct {
		RoomAccessKey struct {
			ID string `json:"id"`
		} `json:"roomAccessKey"`
	}
	if json.Unmarshal(r.data, &p) != nil || p.RoomAccessKey.ID == "" {
		return reconcile.Outcome{Err: fmt.Errorf("3rpms: create key for stay %s: answer has no key id: %w", a.Stay.ID, reconcile.ErrUnknownOutcome)}
	}
	return reconcile.Outcome{RemoteID: p.RoomAccessKey.ID}
}

// checkPayload checks an alias's data is the payload its field returns:
// for an assign, revoke or claim the room stay, for a delete deleted:true
// or deleted: the key's id (the API document selects deleted without
// saying what it holds). deleted:false is the server's refusal (the key
// is still assigned, or already gone), settled as any refused delete.
// Anything else (a number, an empty object, another id) is not a
// success; since the server did answer, the outcome is unknown.
func checkPayload(a *reconcile.Action, data json.RawMessage) error {
	var p struct {
		RoomStay *struct {
			ID string `json:"id"`
		} `json:"roomStay"`
		Deleted json.RawMessage `json:"deleted"`
	}
	if a.Op == reconcile.OpCreate {
		return nil // checked with the key id below
	}
	if json.Unmarshal(data, &p) != nil {
		return fmt.Errorf("answer is not the mutation's payload: %w", reconcile.ErrUnknownOutcome)
	}
	switch a.Op {
	case reconcile.OpDelete:
		var yes bool
		var id string
		switch {
		case json.Unmarshal(p.Deleted, &yes) == nil && yes:
		case json.Unmarshal(p.Deleted, &id) == nil && id != "" && id == a.Cred.RemoteID:
		case string(p.Deleted) == "false":
			return fmt.Errorf("answer says the key was not deleted: %w", reconcile.ErrConflict)
		default:
			return fmt.Errorf("answer does not say the key was deleted: %w", reconcile.ErrUnknownOutcome)
		}
	default:
		if p.RoomStay == nil || p.RoomStay.ID == "" {
			return fmt.Errorf("answer has no room stay: %w", reconcile.ErrUnknownOutcome)
		}
	}
	return nil
}

// document is a chained mutation being built: one variable and one aliased
// root field per operation.
type document struct {
	vars   []string
	fields []string
	// names are the fields' root field names, by index.
	names   []string
	values  map[string]any
	secrets []string
}

// mutation is one action's root field: the field, the type and value of
// its input, what it selects, and the secrets its input carries (scrubbed
// from messages).
type mutation struct {
	name, varType, selection string
	input                    any
	secrets                  []string
	// revoke says the field is a revocation or cleanup action's
	// (reconcile.PriorityRevoke): a document carrying one may spend the
	// revocation reserve to be sent again.
	revoke bool
	// member, when set, writes the input as an object literal whose one
	// member, of that name, is the variable (of type varType, holding
	// input): the delete's, whose input type the API document never names
	// (it writes deleteRoomAccessKey(input:{roomAccessKeyId: $roomAccessKeyId})),
	// so that no type name is assumed.
	member string
}

// mutationOf builds the root field of an action, or says why its input
// breaks the API document's rules.
func mutationOf(a *reconcile.Action) (mutation, error) {
	c := a.Cred
	var m mutation
	switch a.Op {
	case reconcile.OpCreate:
		in, err := createInput(c)
		if err != nil {
			return m, err
		}
		m = mutation{name: "createRoomAccessKey", varType: "CreateRoomAccessKeyInput!", selection: "roomAccessKey { __typename id }", input: in}
	case reconcile.OpAssign, reconcile.OpClaim:
		m = mutation{name: "addRoomAccessKey", varType: "AddRoomAccessKeyInput!", selection: "roomStay { id }",
			input: AddRoomAccessKeyInput{RoomStayId: a.Stay.ID, RoomAccessKeyId: c.RemoteID}}
	case reconcile.OpRevoke:
		m = mutation{name: "removeRoomAccessKey", varType: "RemoveRoomAccessKeyInput!", selection: "roomStay { id }",
			input: RemoveRoomAccessKeyInput{RoomStayId: a.Stay.ID, RoomAccessKeyId: c.RemoteID}}
	case reconcile.OpDelete:
		m = mutation{name: "deleteRoomAccessKey", varType: "ID!", selection: "deleted",
			input: c.RemoteID, member: "roomAccessKeyId"}
	default:
		return m, fmt.Errorf("operation %q is not a 3RPMS key mutation", a.Op)
	}
	for _, secret := range []reconcile.Secret{c.PIN, c.Compartment, c.QRData} {
		if secret != "" {
			m.secrets = append(m.secrets, secret.Reveal())
		}
	}
	return m, nil
}

// add appends a mutation to the document.
func (d *document) add(m mutation) {
	d.field(m)
	d.secrets = append(d.secrets, m.secrets...)
}

// createInput builds the create input for a credential's kind.
func createInput(c *reconcile.Credential) (CreateRoomAccessKeyInput, error) {
	switch c.Kind {
	case reconcile.KindPINKey:
		if !reconcile.ValidPIN(c.PIN.Reveal()) {
			return CreateRoomAccessKeyInput{}, errors.New("PIN breaks 3RPMS's rule (1-10 letters or digits, one case)")
		}
		return CreateRoomAccessKeyInput{RoomAccessPin: &RoomAccessPinInput{Pin: c.PIN.Reveal()}}, nil
	case reconcile.KindKeyStorageKey:
		pin, comp := c.PIN.Reveal(), c.Compartment.Reveal()
		if !reconcile.ValidPIN(pin) {
			return CreateRoomAccessKeyInput{}, errors.New("key-box code breaks 3RPMS's PIN rule (1-10 letters or digits, one case)")
		}
		if !ValidCompartment(comp) {
			return CreateRoomAccessKeyInput{}, errors.New("compartment must be 1 to 10 letters or digits")
		}
		return CreateRoomAccessKeyInput{RoomAccessKeyStorage: &RoomAccessKeyStorageInput{Pin: pin, Compartment: comp}}, nil
	case reconcile.KindQRKey:
		qr := c.QRData.Reveal()
		if qr == "" || len(qr) > MaxQRData {
			return CreateRoomAccessKeyInput{}, fmt.Errorf("QR data must be 1 to %d characters, not %d", MaxQRData, len(qr))
		}
		return CreateRoomAccessKeyInput{RoomAccessQR: &RoomAccessQRInput{QrData: qr}}, nil
	}
	return CreateRoomAccessKeyInput{}, fmt.Errorf("key type %q cannot be created by this keysync build", c.Kind)
}

// MaxQRData is the 3RPMS Room Access Key API's limit on RoomAccessQR.qrData.
const MaxQRData = 512

// ValidCompartment reports whether s is a key-storage compartment the 3RPMS
// Room Access Key API accepts: 1 to 10 letters or digits.
func ValidCompartment(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (d *document) field(m mutation) {
	i := len(d.fields)
	if d.values == nil {
		d.values = map[string]any{}
	}
	v := fmt.Sprintf("v%d", i)
	arg := "$" + v
	if m.member != "" {
		// Named after the member, so that an id is not taken for a secret
		// (the transport's redactor keeps values under keys ending in Id).
		v += "_" + m.member
		arg = fmt.Sprintf("{%s: $%s}", m.member, v)
	}
	d.vars = append(d.vars, fmt.Sprintf("$%s: %s", v, m.varType))
	d.fields = append(d.fields, fmt.Sprintf("  a%d: %s(input: %s) { %s }", i, m.name, arg, m.selection))
	d.names = append(d.names, m.name)
	d.values[v] = m.input
}

// String renders the document.
func (d *document) String() string {
	return "mutation KeysyncBatch(" + strings.Join(d.vars, ", ") + ") {\n" + strings.Join(d.fields, "\n") + "\n}"
}

// errNotRun marks an answer with errors and no "data" member: the
// server refused the document before running it.
var errNotRun = errors.New("no field was run")

// fieldResult is one alias's answer.
type fieldResult struct {
	data json.RawMessage
	err  error
	// undone says the server undid the field's document whole and the
	// field had no error of its own: it did not happen, and may be sent
	// again; or, after "data": null whose errors name other fields, that
	// it is an assign, claim, revoke or delete that may have run and is
	// sent again all the same (see document.send): ran says so.
	undone, ran bool
}

// resendDepth bounds how deep sendUndoable goes for a document of n
// fields: enough to halve it down to single fields and, at each size, to
// send a document undone whole again once.
func resendDepth(n int) int { return 2*bits.Len(uint(n)) + 2 }

// sendUndoable sends muts as one document, or as several when limit says
// the server takes fewer fields a document.
//
// The 3RPMS Room Access Key API does not say whether chained operations
// stand alone or fall together: a server that runs each request in one
// transaction undoes the whole document when one field fails, and answers
// the others null without an error of their own (see document.send). Such
// fields did not happen, so they go again, without the fields refused: in
// one document when the errors name their fields, in two halves when they
// do not, until each refusal is in a document of its own.
//
// Nor does it say how many fields a document may carry. A document the
// server refuses before running any of it (HTTP 400 or 413, or errors and
// no "data" at all: too many fields, or one field's input it will not
// take) goes again in two halves. When both halves go through, each in one
// document, the server takes documents of the larger half's size, and
// limit keeps the run's later documents to that (threerpms.
// max_ops_per_request should say so). An answer whose "data" is null may
// come after some fields ran: it is never sent again.
//
// depth bounds the documents sent after the first along any one chain,
// but for those sent again without fields whose errors named them: each
// such document is smaller, so the fields bound that chain.
// What is left undone or refused whole then, or fails as a whole while
// sent again (an outage, the run cancelled), has an unknown outcome, for
// the next read; only a document of one field can be refused whole as
// that field's own refusal. A server whose fields stand alone and that
// takes max_ops_per_request fields never triggers any of this.
//
// oneDoc reports that muts went as one document that was answered.
func sendUndoable(ctx context.Context, gql *sender, limit *sizes, muts []mutation, depth int) (results []fieldResult, oneDoc bool, err error) {
	if n := limit.get(); n > 0 && len(muts) > n {
		var chunks [][]int
		for i := 0; i < len(muts); i += n {
			chunks = append(chunks, seq(i, min(i+n, len(muts))))
		}
		results, _, err := sendGroups(ctx, gql, limit, muts, chunks, depth)
		if err != nil {
			return nil, false, err
		}
		return results, false, nil
	}
	var doc document
	for _, m := range muts {
		doc.add(m)
	}
	// This document, and its re-sends by the transport, are paid at its
	// own priority: the halves and fields sent again below each ask at
	// theirs.
	results, err = gql.send(reconcile.WithRevocation(ctx, revokes(muts)), &doc)
	if err != nil {
		if len(muts) < 2 || depth == 0 || !notRun(err) {
			return nil, false, err
		}
		half := (len(muts) + 1) / 2
		results, halvesWent, err := sendGroups(ctx, gql, limit, muts, [][]int{seq(0, half), seq(half, len(muts))}, depth-1)
		if err != nil {
			return nil, false, err
		}
		if halvesWent {
			limit.took(len(muts), half)
		}
		return results, false, nil
	}
	var again []int
	for i, r := range results {
		if r.undone {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return results, true, nil
	}
	// When errors named fields, the fields sent again are fewer than
	// those sent: each answer settles at least one, and the chain ends
	// with the fields. A server with non-null payloads answers "data":
	// null with one refusal at a time, so a document of fields that had
	// all run (a night's revocations beside one refused) settles one a
	// document; spending depth on it left revocations that had run with
	// an unknown outcome and the run partial.
	named := len(again) < len(muts)
	if depth == 0 && !named {
		for _, i := range again {
			results[i] = fieldResult{err: fmt.Errorf("the server undid the document it was in, a field of which was refused, and it was not sent again: %w", reconcile.ErrUnknownOutcome)}
		}
		return results, true, nil
	}
	groups, next := [][]int{again}, depth
	if !named { // no error names its field
		groups, next = [][]int{again[:len(again)/2], again[len(again)/2:]}, depth-1
	}
	sent, _, _ := sendGroups(ctx, gql, limit, muts, groups, next)
	for _, i := range again {
		if results[i].ran && notSent(sent[i].err) {
			// It may have run before: the next read decides.
			sent[i].err = fmt.Errorf("the server answered data null for the document it was in, so it may have run, and it was not sent again (%v): %w", sent[i].err, reconcile.ErrUnknownOutcome)
		}
		results[i] = sent[i]
	}
	return results, true, nil
}

// sendGroups sends the groups of muts (indexes into it) each through
// sendUndoable and returns the results by index into muts (those of no
// group are zero), and whether every group went as one document. A group
// that fails as a whole gives its fields an unknown outcome (a group of
// one field its refusal, when the server refused it); when every group
// failed, err is the first failure too, as one request's would be.
func sendGroups(ctx context.Context, gql *sender, limit *sizes, muts []mutation, groups [][]int, depth int) (results []fieldResult, eachOneDoc bool, err error) {
	results = make([]fieldResult, len(muts))
	eachOneDoc = true
	failed := 0
	for _, g := range groups {
		part := make([]mutation, len(g))
		for j, i := range g {
			part[j] = muts[i]
		}
		res, oneDoc, gerr := sendUndoable(ctx, gql, limit, part, depth)
		eachOneDoc = eachOneDoc && oneDoc
		if gerr == nil {
			for j, i := range g {
				results[i] = res[j]
			}
			continue
		}
		err = worse(err, gerr)
		failed++
		ferr := gerr
		if !notSent(gerr) && (len(g) > 1 || httpapi.Refusal(gerr) == nil || errors.Is(gerr, reconcile.ErrUnknownOutcome)) {
			ferr = fmt.Errorf("the request carrying it, sent again, failed as a whole (%v): %w", gerr, reconcile.ErrUnknownOutcome)
		}
		for _, i := range g {
			results[i] = fieldResult{err: ferr}
		}
	}
	if failed < len(groups) {
		err = nil
	}
	return results, eachOneDoc && err == nil, err
}

// worse returns which of two failures of requests carrying the same
// actions stands for them all: the first, unless only the other leaves
// the outcome unknown (it may have run, which a refusal of another
// request does not undo).
func worse(first, next error) error {
	if first == nil || !errors.Is(first, reconcile.ErrUnknownOutcome) && errors.Is(next, reconcile.ErrUnknownOutcome) {
		return next
	}
	return first
}

// revokes reports whether one of muts is a revocation or cleanup action's.
func revokes(muts []mutation) bool {
	return slices.ContainsFunc(muts, func(m mutation) bool { return m.revoke })
}

// seq returns the integers from lo up to hi.
func seq(lo, hi int) []int {
	out := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// notRun reports whether err says the server refused the document before
// running any of it: HTTP 400 or 413 without a "data" member, or an answer
// with errors and no "data" member (the GraphQL rule for a request that
// never executed).
func notRun(err error) bool {
	if errors.Is(err, errNotRun) {
		return true
	}
	e := httpapi.Refusal(err)
	return e != nil && (e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge) &&
		!errors.Is(err, reconcile.ErrUnknownOutcome) // a refusal carrying data (Client.MakeRequest)
}

// sizes is the most fields a document may carry, as a run has learnt it
// from the server (see sendUndoable); zero until it refuses one.
type sizes struct {
	mu  sync.Mutex
	n   int
	log *slog.Logger
}

func (l *sizes) get() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// took records that a document of refused fields was refused whole before
// it ran and both its halves, of at most ok fields, went through.
func (l *sizes) took(refused, ok int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n != 0 && l.n <= ok {
		return
	}
	l.n = ok
	if l.log != nil {
		l.log.Warn("3RPMS refused a document of chained mutations whole and took its halves; sending smaller documents for the rest of the run: set threerpms.max_ops_per_request to at most this",
			"refused", refused, "max_ops_per_request", ok)
	}
}

// send runs the document and splits the answer by alias. Each alias is
// decided on its own: its data, its error (path = alias), or, when the
// answer has neither, an unknown outcome.
func (d *document) send(ctx context.Context, gql graphql.Client) ([]fieldResult, error) {
	var data map[string]json.RawMessage
	resp := &graphql.Response{Data: &data}
	err := gql.MakeRequest(ctx, &graphql.Request{OpName: "KeysyncBatch", Query: d.String(), Variables: d.values}, resp)
	var list gqlerror.List
	if err != nil && !errors.As(err, &list) {
		return nil, err // the transport redacts what the request carried
	}

	// A server whose mutation payloads are non-null (the API document
	// shows what each mutation selects, never whether it may be null)
	// carries a failed field's null up to "data" itself, as the GraphQL
	// spec requires, and its error names the field (path). Such an answer
	// says which field failed, and nothing of the others: they may have
	// run or not (those before it ran; those after it did or did not, by
	// the server). The named fields are refused by their errors. A create
	// among the others has an unknown outcome and is never sent again (a
	// key it made cannot be read back, and is recorded abandoned); an
	// assign, claim, revoke or delete goes again (sendUndoable), since
	// each is settled by what the next read shows if it had run: re-adding
	// the key a stay holds changes nothing, and a revoke or delete of what
	// is gone is refused, a refusal reconcile settles.
	propagated := data == nil && resp.Data == nil && d.namesAField(list)
	if data == nil && len(list) > 0 && !propagated {
		// No data at all. Without a "data" member (resp.Data untouched) the
		// server refused the document before running it; "data": null
		// (which sets resp.Data to nil) beside errors that name no field
		// may follow fields that ran, or be the document's refusal. Either
		// way no field can be taken as refused.
		var messages []string
		for _, e := range list {
			messages = append(messages, e.Message)
		}
		err := fmt.Errorf("3rpms: the answer has errors and no data: %s: %w", d.scrub(strings.Join(messages, "; ")), reconcile.ErrUnknownOutcome)
		if resp.Data != nil {
			err = fmt.Errorf("%w (%w)", err, errNotRun)
		}
		return nil, err
	}
	if propagated {
		out := make([]fieldResult, len(d.fields))
		for i := range out {
			switch e := aliasError(list, fmt.Sprintf("a%d", i)); {
			case e != nil:
				out[i].err = d.fieldError(e)
			case d.names[i] == "createRoomAccessKey":
				out[i].err = fmt.Errorf("the server answered data null: another field of the request failed, and whether this one ran is unknown: %w", reconcile.ErrUnknownOutcome)
			default:
				out[i].undone, out[i].ran = true, true
			}
		}
		return out, nil
	}
	byAlias := map[string]*gqlerror.Error{}
	var general []*gqlerror.Error
	var messages []string
	for _, e := range list {
		if len(e.Path) > 0 {
			if alias, ok := e.Path[0].(ast.PathName); ok {
				byAlias[string(alias)] = e
				continue
			}
		}
		general = append(general, e)
		messages = append(messages, e.Message)
	}
	// A field that failed is null in data. Errors that name no field (a
	// server that sends no path) belong to the null fields no error names.
	var unnamed []int
	for i := range d.fields {
		alias := fmt.Sprintf("a%d", i)
		if raw, ok := data[alias]; ok && string(raw) == "null" && byAlias[alias] == nil {
			unnamed = append(unnamed, i)
		}
	}
	// A document some of whose fields failed and none of whose fields has
	// data was undone whole, by a server that runs each request in one
	// transaction: the null fields no error names did not happen (and
	// with errors that name no field, each null field may be one of them).
	undone := len(list) > 0 && len(d.fields) > 1
	for i := range d.fields {
		if raw := data[fmt.Sprintf("a%d", i)]; raw != nil && string(raw) != "null" {
			undone = false
		}
	}
	if undone && len(byAlias) == 0 && len(unnamed) <= len(general) {
		undone = false // as many errors as null fields: each its own
	}
	out := make([]fieldResult, len(d.fields))
	for i := range out {
		alias := fmt.Sprintf("a%d", i)
		switch raw, ok := data[alias]; {
		case byAlias[alias] != nil:
			out[i].err = d.fieldError(byAlias[alias])
		case ok && string(raw) != "null":
			out[i].data = raw
		case undone:
			out[i].undone = true
		case ok && len(general) == 1 && len(unnamed) == 1:
			out[i].err = d.fieldError(general[0])
		case ok && len(general) > 0:
			// Null beside errors that cannot be told apart: refused, for a
			// reason among these.
			out[i].err = fmt.Errorf("refused; the server's errors name no field: %s", d.scrub(strings.Join(messages, "; ")))
		default:
			out[i].err = fmt.Errorf("answer has neither data nor an error for %s: %w", alias, reconcile.ErrUnknownOutcome)
		}
	}
	return out, nil
}

// namesAField reports whether an error of list names one of the
// document's fields (its path starts with the field's alias).
func (d *document) namesAField(list gqlerror.List) bool {
	for i := range d.fields {
		if aliasError(list, fmt.Sprintf("a%d", i)) != nil {
			return true
		}
	}
	return false
}

// aliasError is the error of list whose path starts with alias, or nil.
func aliasError(list gqlerror.List, alias string) *gqlerror.Error {
	for _, e := range list {
		if len(e.Path) > 0 && e.Path[0] == ast.PathName(alias) {
			return e
		}
	}
	return nil
}

// fieldError maps a GraphQL error to the domain's sentinels.
func (d *document) fieldError(e *gqlerror.Error) error {
	msg := d.scrub(e.Message)
	code, _ := e.Extensions["code"].(string)
	switch code {
	case "NOT_FOUND":
		return fmt.Errorf("%s: %w", msg, reconcile.ErrNotFound)
	case "FORBIDDEN":
		if strings.Contains(msg, reconcile.ErrNotOurs.Error()) {
			return quiet{msg: msg, err: reconcile.ErrNotOurs} // the message says it already
		}
		return fmt.Errorf("%s: %w", msg, reconcile.ErrNotOurs)
	case "CONFLICT":
		return fmt.Errorf("%s: %w", msg, reconcile.ErrConflict)
	case "BAD_USER_INPUT":
		return fmt.Errorf("%s: %w", msg, reconcile.ErrRejected)
	}
	return errors.New(msg)
}

// quiet is an error that reads as its message and matches err.
type quiet struct {
	msg string
	err error
}

func (q quiet) Error() string { return q.msg }
func (q quiet) Unwrap() error { return q.err }

// scrub removes the batch's PINs from a server message, in case the server
// quotes them back.
func (d *document) scrub(msg string) string {
	for _, s := range d.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}

func kindLabel(a *reconcile.Action) string {
	if a.Kind != "" {
		return string(a.Kind)
	}
	return "key"
}
