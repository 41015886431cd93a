package sandbox

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/threerpms/schema"
)

// Defaults and limits. The per-second rate, burst and daily cap are the
// API document's (5 req/s, burst 10, 10,000 a day); they apply only when set in
// Options (see Options.WithSeedLimits).
const (
	// DefaultRatePerSecond is the API document's sustained request rate per token.
	DefaultRatePerSecond = sandboxkit.SeedPerSecond
	// DefaultBurst is the API document's burst per token, used when Options.Burst is zero.
	DefaultBurst = sandboxkit.SeedBurst
	// DefaultDailyCap is the API document's number of requests per token per UTC day.
	DefaultDailyCap = sandboxkit.SeedDailyCap
	// DefaultPageSize is the page size when a connection's first is omitted.
	DefaultPageSize = 20
	// DefaultMaxPageSize is the largest first accepted when Options.MaxPageSize is zero.
	DefaultMaxPageSize = 100
	// DefaultMaxRootFields is the most root fields in one mutation document
	// when Options.MaxRootFields is zero.
	DefaultMaxRootFields = 100
	// MaxBodyBytes is the largest request body accepted (HTTP 413 beyond).
	MaxBodyBytes = sandboxkit.MaxBodyBytes
)

// Options configures a Server. The zero value is usable: no tokens, business
// clock at time.Now(), no rate limits, page size and root field limits of 100.
type Options struct {
	// Integrations maps bearer tokens to integration ids.
	Integrations map[string]string
	// Now starts the business clock; zero means time.Now().
	Now time.Time
	// Rates limit each token (RatePerSecond, Burst and DailyCap) on the
	// clock RateNow; the zero value sets no limits.
	sandboxkit.Rates
	// MaxPageSize is the largest first a connection accepts; zero means DefaultMaxPageSize.
	MaxPageSize int
	// MaxRootFields is the most root fields one mutation document may hold;
	// zero means DefaultMaxRootFields.
	MaxRootFields int
	// MessageOnlyErrors answers every GraphQL error with its message alone:
	// no extensions (so no code), no path and no locations. The 3RPMS Room
	// Access Key API defines no error shape, so a real server may send
	// exactly this; keysync must decide from what it reads next, not from
	// codes. SetMessageOnlyErrors switches it at run time.
	MessageOnlyErrors bool
	// SharedLimiter, when set, meters every token of this server, and of
	// every server given the same Limiter, as one caller: an API host that
	// limits by client address, or for the whole API, not per token. The
	// 3RPMS Room Access Key API does not say what its limits are counted
	// against; keysync assumes each token, and this breaks that
	// assumption. RatePerSecond, Burst, DailyCap and RateNow are then the
	// Limiter's.
	SharedLimiter *sandboxkit.Limiter
	// RollbackDocuments undoes a whole mutation document when any of its
	// fields fails, as a server that runs each request in one transaction
	// would, and answers every field of it null beside the errors (the
	// fields that had run carry no error of their own). Without it each
	// field stands alone. SetRollbackDocuments switches it at run time.
	RollbackDocuments bool
	// HideQRData reads every RoomAccessQR's qrData as "" (it is still
	// stored, and shown by Keys and the admin API), as a server that
	// treats what a QR encodes as write-only would. The 3RPMS Room Access
	// Key API lists the field on the type without saying who may read it;
	// keysync reads it only to tell, in a backfill, whether a QR key was
	// made from an invite. SetHideQRData switches it at run time.
	HideQRData bool
	// CancelledByID answers a room_stays query filtered by id for the
	// stays of a cancelled reservation too, as they were before the
	// cancellation, while queries by date leave them out, as a server
	// written from the same document may: the 3RPMS Room Access Key API
	// selects no status and does not say whether a cancelled
	// reservation's stays are still found. SetCancelledByID switches it
	// at run time.
	CancelledByID bool
	// FieldErrorsAs400 answers a document whose fields ran with errors
	// beside their data (a field refused, others done) with HTTP 400
	// instead of 200, the data kept, as a server written from the same
	// document may: the 3RPMS Room Access Key API gives no status codes.
	// SetFieldErrorsAs400 switches it at run time.
	FieldErrorsAs400 bool
	// RenameDeleteInput names deleteRoomAccessKey's input type
	// RoomAccessKeyDeleteInput instead of DeleteRoomAccessKeyInput, as a
	// server written from the same document may: the 3RPMS Room Access
	// Key API names the input types of the other three mutations in its
	// examples, but writes the delete's input inline
	// (deleteRoomAccessKey(input:{roomAccessKeyId: $roomAccessKeyId}))
	// and never names its type. SetRenameDeleteInput switches it at run
	// time.
	RenameDeleteInput bool
	// NonNullPayloads declares the four mutations' payloads non-null
	// (createRoomAccessKey(...): CreateRoomAccessKeyPayload! and so on), as
	// a server written from the same document may: the 3RPMS Room Access
	// Key API shows the mutations' selections, never their return types.
	// A field of such a document that fails nulls "data" itself, as the
	// GraphQL spec requires, beside the errors (which keep their path):
	// the fields before it ran, and, here, those after it do not run (as
	// in graphql-js; other servers run them).
	// SetNonNullPayloads switches it at run time.
	NonNullPayloads bool
	// DeletedAsID declares DeleteRoomAccessKeyPayload.deleted an ID! and
	// answers it with the deleted key's id, as a server written from the
	// same document may: the 3RPMS Room Access Key API selects
	// deleteRoomAccessKey(...) { deleted } without saying what deleted
	// holds. SetDeletedAsID switches it at run time.
	DeletedAsID bool
}

// WithSeedLimits returns o with the API document's rate limits (5 req/s, burst 10,
// 10,000 a day) filled into the fields that are zero.
func (o Options) WithSeedLimits() Options {
	o.Rates = o.Rates.WithSeedLimits()
	return o
}

// Request is one entry of the request log: every POST to /graphql, whatever
// its outcome. Operation, Name and Fields are filled in as far as the
// document could be parsed.
type Request struct {
	// Time is by Options.RateNow.
	Time time.Time `json:"time"`
	// Integration is the caller's integration id, or "" when unauthenticated.
	Integration string `json:"integration"`
	Status      int    `json:"status"`
	// Operation is "query", "mutation" or "".
	Operation string `json:"operation"`
	// Name is the operation name, or "".
	Name string `json:"name"`
	// Fields are the root field names (not aliases) in document order,
	// fragments expanded.
	Fields     []string `json:"fields"`
	FieldCount int      `json:"field_count"`
}

// Server is the in-memory 3RPMS fake. It serves POST /graphql and the admin
// API under /_sandbox/; the methods give tests the same control directly.
// A Server is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux
	*clock
	requestLog
	limiter *sandboxkit.Limiter

	mu sync.Mutex
	// cleanupAt is when the cleanup rule next has work (see cleanup);
	// zero runs it at the next lock.
	cleanupAt time.Time
	tokens    map[string]string
	rooms     map[string]*Room
	roomOrder []string
	stays     map[string]*stay
	// sorted is every stay in arrival, then id order (sortedStays), nil
	// once a stay is added or its dates change.
	sorted []*stay
	// holders counts, by key id, the live stays holding the key.
	holders                    map[string]int
	reservations               map[string]*reservation
	keys                       map[string]*key
	nextStay, nextKey, nextRes int
	messageOnly                bool
	hooks                      webhooks
	// rollback is Options.RollbackDocuments; undo records the document
	// being run while it is on (rollback.go).
	rollback bool
	undo     *undo
	hideQR   bool // Options.HideQRData
	// cancelledByID is Options.CancelledByID, as switched.
	cancelledByID bool
	// fieldErrors400 is Options.FieldErrorsAs400, as switched.
	fieldErrors400 bool
	// renameDelete is Options.RenameDeleteInput, as switched.
	renameDelete bool
	maxRoot      int // Options.MaxRootFields, as switched
	// refuseReadd refuses re-adding the key a stay holds (SetRefuseReadd).
	refuseReadd bool
	// nonNull is Options.NonNullPayloads, as switched.
	nonNull bool
	// deletedAsID is Options.DeletedAsID, as switched.
	deletedAsID bool
}

// clock and requestLog give Server the kit's Now, Requests and
// ResetRequests; SetNow and Advance wrap the clock's to apply the cleanup
// rule. The business clock is the sandbox's "today" for cleanup and
// seeding.
type (
	clock      = sandboxkit.Clock
	requestLog = sandboxkit.RequestLog[Request]
)

var loadSchema = sync.OnceValues(func() (*ast.Schema, error) {
	return gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: schema.SDL})
})

// RenamedDeleteInput is the name Options.RenameDeleteInput gives
// deleteRoomAccessKey's input type.
const RenamedDeleteInput = "RoomAccessKeyDeleteInput"

// schemaVariant is the schema as the switches that change it have it.
type schemaVariant struct {
	renameDelete bool // Options.RenameDeleteInput
	nonNull      bool // Options.NonNullPayloads
	deletedAsID  bool // Options.DeletedAsID
}

var (
	variantsMu sync.Mutex
	variants   = map[schemaVariant]*ast.Schema{}
)

// loadVariant is the schema with deleteRoomAccessKey's input type renamed
// (Options.RenameDeleteInput), the mutations' payloads non-null
// (Options.NonNullPayloads) and the delete's deleted an ID
// (Options.DeletedAsID), as v says.
func loadVariant(v schemaVariant) (*ast.Schema, error) {
	if v == (schemaVariant{}) {
		return loadSchema()
	}
	variantsMu.Lock()
	defer variantsMu.Unlock()
	if sch, ok := variants[v]; ok {
		return sch, nil
	}
	sdl := schema.SDL
	if v.renameDelete {
		sdl = strings.ReplaceAll(sdl, "DeleteRoomAccessKeyInput", RenamedDeleteInput)
	}
	if v.nonNull {
		for _, payload := range []string{"CreateRoomAccessKeyPayload", "AddRoomAccessKeyPayload", "RemoveRoomAccessKeyPayload", "DeleteRoomAccessKeyPayload"} {
			sdl = strings.Replace(sdl, "): "+payload+"\n", "): "+payload+"!\n", 1)
		}
	}
	if v.deletedAsID {
		sdl = strings.Replace(sdl, "deleted: Boolean!", "deleted: ID!", 1)
	}
	sch, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: sdl})
	if err == nil {
		variants[v] = sch
	}
	return sch, err
}

// New returns a Server with no rooms or stays. It panics if the embedded
// schema does not load, which the schema package's tests rule out.
func New(opts Options) *Server {
	if _, err := loadSchema(); err != nil {
		panic(fmt.Sprintf("sandbox: load 3rpms schema: %v", err))
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = DefaultMaxPageSize
	}
	if opts.MaxRootFields <= 0 {
		opts.MaxRootFields = DefaultMaxRootFields
	}
	s := &Server{
		opts:           opts,
		clock:          sandboxkit.NewClock(opts.Now),
		limiter:        opts.SharedLimiter,
		tokens:         map[string]string{},
		rooms:          map[string]*Room{},
		stays:          map[string]*stay{},
		holders:        map[string]int{},
		reservations:   map[string]*reservation{},
		keys:           map[string]*key{},
		messageOnly:    opts.MessageOnlyErrors,
		rollback:       opts.RollbackDocuments,
		hideQR:         opts.HideQRData,
		cancelledByID:  opts.CancelledByID,
		fieldErrors400: opts.FieldErrorsAs400,
		renameDelete:   opts.RenameDeleteInput,
		nonNull:        opts.NonNullPayloads,
		deletedAsID:    opts.DeletedAsID,
		maxRoot:        opts.MaxRootFields,
	}
	if s.limiter == nil {
		s.limiter = opts.Limiter()
	}
	for tok, id := range opts.Integrations {
		s.tokens[tok] = id
	}
	s.mux = s.routes()
	return s
}

// AddIntegration lets token authenticate as integration.
func (s *Server) AddIntegration(token, integration string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = integration
}

// ServeHTTP serves POST /graphql and the admin API under /_sandbox/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetMessageOnlyErrors switches Options.MessageOnlyErrors.
func (s *Server) SetMessageOnlyErrors(on bool) { sandboxkit.Store(&s.mu, &s.messageOnly, on) }

// SetMaxPageSize sets Options.MaxPageSize (zero: DefaultMaxPageSize).
func (s *Server) SetMaxPageSize(n int) {
	sandboxkit.Store(&s.mu, &s.opts.MaxPageSize, cmp.Or(max(n, 0), DefaultMaxPageSize))
}

// SetMaxRootFields sets Options.MaxRootFields (zero: DefaultMaxRootFields).
func (s *Server) SetMaxRootFields(n int) {
	sandboxkit.Store(&s.mu, &s.maxRoot, cmp.Or(max(n, 0), DefaultMaxRootFields))
}

// SetRefuseReadd makes re-adding the key a stay already holds a CONFLICT,
// even for the integration that created it: the 3RPMS Room Access Key API
// does not say what a re-add does, and keysync's backfill uses it to tell
// its own keys from others'.
func (s *Server) SetRefuseReadd(on bool) { sandboxkit.Store(&s.mu, &s.refuseReadd, on) }

// SetRenameDeleteInput switches Options.RenameDeleteInput.
func (s *Server) SetRenameDeleteInput(on bool) { sandboxkit.Store(&s.mu, &s.renameDelete, on) }

// SetNonNullPayloads switches Options.NonNullPayloads.
func (s *Server) SetNonNullPayloads(on bool) { sandboxkit.Store(&s.mu, &s.nonNull, on) }

// SetDeletedAsID switches Options.DeletedAsID.
func (s *Server) SetDeletedAsID(on bool) { sandboxkit.Store(&s.mu, &s.deletedAsID, on) }

// SetCancelledByID switches Options.CancelledByID.
func (s *Server) SetCancelledByID(on bool) { sandboxkit.Store(&s.mu, &s.cancelledByID, on) }

// SetFieldErrorsAs400 switches Options.FieldErrorsAs400.
func (s *Server) SetFieldErrorsAs400(on bool) { sandboxkit.Store(&s.mu, &s.fieldErrors400, on) }

// SetHideQRData switches Options.HideQRData.
func (s *Server) SetHideQRData(on bool) { sandboxkit.Store(&s.mu, &s.hideQR, on) }

// MessageOnlyErrors reports whether errors are answered with their message alone.
func (s *Server) MessageOnlyErrors() bool { return sandboxkit.Load(&s.mu, &s.messageOnly) }

// ---- GraphQL over HTTP -----------------------------------------------------

type result struct {
	status     int
	body       any
	retryAfter int // seconds; 0: no Retry-After header
}

type response struct {
	Data   any        `json:"data"`
	Errors []gqlError `json:"errors,omitempty"`
}

func fail(status int, msg string) result {
	return result{status: status, body: response{Errors: []gqlError{{Message: msg}}}}
}

// failBody drops "data" for request-level failures, which never executed.
type failBody struct {
	Errors []gqlError `json:"errors"`
}

func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: s.limiter.Now(), Fields: []string{}}
	res := s.graphQL(w, r, &rec)
	s.mu.Lock()
	messageOnly, as400 := s.messageOnly, s.fieldErrors400
	s.mu.Unlock()
	if rb, ok := res.body.(response); ok {
		if messageOnly {
			rb.Errors = messagesOnly(rb.Errors)
			res.body = rb
		}
		switch {
		case res.status == http.StatusOK && as400 && len(rb.Errors) > 0 && rb.Data != nil:
			res.status = http.StatusBadRequest // FieldErrorsAs400: data kept
		case res.status != http.StatusOK:
			res.body = failBody{Errors: rb.Errors}
		}
	}
	rec.Status = res.status
	s.Append(rec)
	sandboxkit.Answer(w, res.status, res.body, res.retryAfter) // body never nil: always JSON
}

func (s *Server) graphQL(w http.ResponseWriter, r *http.Request, rec *Request) result {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(http.StatusMethodNotAllowed, "method not allowed: use POST with a JSON body")
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var req struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	var decodeErr error
	if readErr == nil {
		decodeErr = json.Unmarshal(body, &req)
	}
	s.mu.Lock()
	variant := schemaVariant{renameDelete: s.renameDelete, nonNull: s.nonNull, deletedAsID: s.deletedAsID}
	s.mu.Unlock()
	sch, err := loadVariant(variant)
	if err != nil {
		panic(fmt.Sprintf("sandbox: load 3rpms schema %+v: %v", variant, err))
	}
	var q parsed
	var doc *ast.QueryDocument
	var op *ast.OperationDefinition
	if readErr == nil && decodeErr == nil && req.Query != "" {
		q = *parseQuery(variant, sch, req.Query)
		if doc = q.doc; doc != nil {
			op = pickOperation(doc, req.OperationName)
		}
	}
	if op != nil {
		rec.Operation, rec.Name = string(op.Operation), op.Name
		rec.Fields = rootFieldNames(doc, op.SelectionSet, map[string]bool{}, []string{})
		rec.FieldCount = len(rec.Fields)
	}

	integration, token, ok := s.authenticate(r)
	if !ok {
		return fail(http.StatusUnauthorized, "unauthorized: missing or invalid bearer token")
	}
	rec.Integration = integration
	metered := token
	if s.opts.SharedLimiter != nil {
		metered = "" // every token as one caller
	}
	if secs, msg := s.limiter.Admit(metered); secs > 0 {
		res := fail(http.StatusTooManyRequests, msg)
		res.body.(response).Errors[0].Extensions = map[string]any{"code": CodeRateLimited}
		res.retryAfter = secs
		return res
	}

	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(readErr, &tooLarge):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the limit is %d bytes", MaxBodyBytes))
	case readErr != nil:
		return fail(http.StatusBadRequest, "read request body: "+readErr.Error())
	case decodeErr != nil:
		return fail(http.StatusBadRequest, "request body must be JSON {query, variables, operationName}: "+decodeErr.Error())
	case req.Query == "":
		return fail(http.StatusBadRequest, "query: must not be empty")
	case q.parseErr != nil:
		return badRequest(gqlErrors(q.parseErr))
	case len(q.invalid) > 0:
		return badRequest(q.invalid)
	}
	if op == nil {
		if req.OperationName != "" {
			return fail(http.StatusBadRequest, fmt.Sprintf("operationName: no operation named %q in the document", req.OperationName))
		}
		return fail(http.StatusBadRequest, "operationName: required when the document holds several operations")
	}
	s.mu.Lock()
	maxRoot := s.maxRoot
	s.mu.Unlock()
	if op.Operation == ast.Mutation && rec.FieldCount > maxRoot {
		return fail(http.StatusBadRequest, fmt.Sprintf(
			"too many root fields: the mutation has %d, the limit is %d per document (MaxRootFields)", rec.FieldCount, maxRoot))
	}
	vars, err := validator.VariableValues(sch, op, req.Variables)
	if err != nil {
		return badRequest(gqlErrors(err))
	}

	s.lock()
	e := &executor{s: s, schema: sch, doc: doc, vars: vars, caller: integration}
	if op.Operation == ast.Mutation {
		s.begin()
	}
	data := e.run(op)
	if s.end(len(e.errs) > 0) {
		data = nullFields(data)
	}
	s.mu.Unlock()
	return result{status: http.StatusOK, body: response{Data: data, Errors: e.errs}}
}

func (s *Server) authenticate(r *http.Request) (integration, token string, ok bool) {
	token, found := sandboxkit.Bearer(r.Header.Get("Authorization"))
	if !found {
		return "", "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	integration, ok = s.tokens[token]
	return integration, token, ok && token != ""
}

// pickOperation selects the operation to run, or nil if name matches none
// (or is empty while the document has several).
func pickOperation(doc *ast.QueryDocument, name string) *ast.OperationDefinition {
	if name == "" {
		if len(doc.Operations) == 1 {
			return doc.Operations[0]
		}
		return nil
	}
	return doc.Operations.ForName(name)
}

// rootFieldNames lists the root field names of a (possibly invalid) selection
// set, expanding fragments, for the request log and the root field limit.
func rootFieldNames(doc *ast.QueryDocument, set ast.SelectionSet, seen map[string]bool, out []string) []string {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			out = append(out, sel.Name)
		case *ast.InlineFragment:
			out = rootFieldNames(doc, sel.SelectionSet, seen, out)
		case *ast.FragmentSpread:
			if frag := doc.Fragments.ForName(sel.Name); frag != nil && !seen[sel.Name] {
				seen[sel.Name] = true
				out = rootFieldNames(doc, frag.SelectionSet, seen, out)
			}
		}
	}
	return out
}

// messagesOnly strips every error to its message (MessageOnlyErrors).
func messagesOnly(errs []gqlError) []gqlError {
	out := make([]gqlError, len(errs))
	for i, e := range errs {
		out[i] = gqlError{Message: e.Message}
	}
	return out
}

func badRequest(errs gqlerror.List) result {
	out := make([]gqlError, 0, len(errs))
	for _, e := range errs {
		ge := gqlError{Message: redact(e), Locations: e.Locations}
		if len(e.Path) > 0 {
			ge.Message = e.Path.String() + ": " + ge.Message
		}
		out = append(out, ge)
	}
	return result{status: http.StatusBadRequest, body: response{Errors: out}}
}

func gqlErrors(err error) gqlerror.List {
	var list gqlerror.List
	if errors.As(err, &list) {
		return list
	}
	var one *gqlerror.Error
	if errors.As(err, &one) {
		return gqlerror.List{one}
	}
	return gqlerror.List{gqlerror.Wrap(err)}
}

var quotedToken = regexp.MustCompile(`\b(String|BlockString|Int|Float) "(?:[^"\\]|\\.)*"`)

// redact keeps literal values out of parse and validation messages: a PIN,
// compartment or qrData written into the document must never be echoed.
func redact(e *gqlerror.Error) string {
	msg := e.Message
	switch {
	case strings.HasPrefix(e.Rule, "ValuesOfCorrectType"):
		if i := strings.Index(msg, " value: "); i >= 0 {
			msg = msg[:i] + " value (value not shown)"
		} else if i := strings.Index(msg, ", found "); i >= 0 {
			msg = msg[:i] + " (value not shown)"
		}
	case e.Rule == "": // syntax error
		msg = quotedToken.ReplaceAllString(msg, "$1")
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[:i] + " (input not shown)"
		}
	}
	return msg
}
