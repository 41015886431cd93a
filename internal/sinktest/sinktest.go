// Package sinktest is the contract test suite every reconcile.Sink runs
// against its sandbox over real HTTP: one Outcome per action, in order;
// a request that fails as a whole says whether it may have acted; a lost
// create is read back by a Finder, and a create that did nothing is not;
// idempotent calls are retried through a 5xx and a create is never re-sent
// blindly. Each sink's tests call Run with a Harness for their sandbox.
package sinktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/reconcile"
)

// Harness is one sink under the suite and its sandbox, of type S.
type Harness[S any] struct {
	// Start starts a fresh sandbox served through wrap (a fault middleware)
	// and returns it and a sink talking to it over HTTP, retrying on a fake
	// clock.
	Start func(t *testing.T, wrap func(http.Handler) http.Handler) (S, reconcile.Sink)
	// Create returns an action creating a credential for a stay of the
	// sandbox; n (1, 2, 3) names one of three distinct stays.
	Create func(n int) *reconcile.Action
	// Withdraw returns the action withdrawing the credential of stay n that
	// a create answered with remoteID (a cancel, a delete or a revoke).
	Withdraw func(n int, remoteID string) *reconcile.Action
	// MissingID is a remote id the sandbox holds no credential under: the
	// sink must answer its withdrawal with an Outcome wrapping
	// reconcile.ErrNotFound, not a request error.
	MissingID string
	// Live counts the credentials of ours the sandbox holds live.
	Live func(S) int
	// Write tells a request that changes the sandbox from a read (a
	// GraphQL mutation, any method but GET); it may read the body with
	// fault.Body. Nil means any request but a GET.
	Write func(r *http.Request) bool
	// WithdrawRetried is whether a withdrawal answered 5xx is sent again:
	// true where the call is idempotent on the wire (an HTTP DELETE),
	// false where the API can only send it as a non-idempotent request (a
	// GraphQL mutation document), which is then sent once.
	WithdrawRetried bool
}

// Stay names stay n of a Harness: "s1", "s2", "s3".
func Stay(n int) string { return fmt.Sprintf("s%d", n) }

// Live counts the items that are ours and live, for a Harness's Live.
func Live[T any](items []T, oursAndLive func(T) bool) int {
	n := 0
	for _, it := range items {
		if oursAndLive(it) {
			n++
		}
	}
	return n
}

// Run runs the contract suite against h; every subtest starts its own
// sandbox.
func Run[S any](t *testing.T, h Harness[S]) {
	if h.Write == nil {
		h.Write = func(r *http.Request) bool { return r.Method != http.MethodGet }
	}
	t.Run("OutcomesInOrder", func(t *testing.T) { testOutcomesInOrder(t, h) })
	t.Run("LostAnswer", func(t *testing.T) { testLostAnswer(t, h) })
	t.Run("CreateRefused503", func(t *testing.T) { testCreate503(t, h) })
	t.Run("Withdraw503", func(t *testing.T) { testWithdraw503(t, h) })
}

// Pending is the credential a create action leaves pending: what a Finder
// is asked about after the create's answer was lost.
func Pending(a *reconcile.Action) *reconcile.Credential {
	c := *a.Cred
	c.Status = reconcile.StatusPending
	if a.Window != nil {
		c.Valid = *a.Window
	}
	return &c
}

// Find calls s.Find for c and fails the test on an error, or when what it
// returns says nothing was found yet names an id or a secret.
func Find(t testing.TB, s reconcile.Finder, c *reconcile.Credential) (string, reconcile.Secret, bool) {
	t.Helper()
	id, secret, found, err := s.Find(t.Context(), c)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if !found && (id != "" || secret != "") {
		t.Errorf("not found, yet id %q and a secret", id)
	}
	return id, secret, found
}

// ReadsBack checks that s's Find reads back, for the create a whose
// answer was lost, the credential it made: remote id wantID holding
// wantSecret; and that meter counts, of system, the create as a write and
// Find as one read.
func ReadsBack(t testing.TB, s reconcile.Finder, a *reconcile.Action, wantID, wantSecret string, meter *reconcile.Meter, system reconcile.System) {
	t.Helper()
	id, secret, found := Find(t, s, Pending(a))
	if !found || id != wantID || secret.Reveal() != wantSecret {
		t.Errorf("Find = %q, secret match %v, %v; want %q", id, secret.Reveal() == wantSecret, found, wantID)
	}
	if got := meter.Snapshot()[system]; got.Reads != 1 || got.Writes != 1 {
		t.Errorf("meter %+v, want the create as a write and the list as a read", got)
	}
}

// FindReads checks what a Finder's Find sent to the scripted server srv:
// requests requests, all GETs, which meter counts as that many reads of
// system and no writes; and, when sleeps is not nil, exactly those waits
// on srv's fake clock.
func FindReads(t testing.TB, srv *adaptertest.Scripted, meter *reconcile.Meter, system reconcile.System, requests int, sleeps []time.Duration) {
	t.Helper()
	if n := len(srv.Script.Times()); n != requests {
		t.Errorf("%d requests, want %d", n, requests)
	}
	for _, m := range srv.Script.Methods() {
		if m != http.MethodGet {
			t.Errorf("Find sent a %s", m)
		}
	}
	if got := meter.Snapshot()[system]; got.Reads != requests || got.Writes != 0 {
		t.Errorf("meter %+v, want %d reads", got, requests)
	}
	if sleeps != nil && !slices.Equal(srv.Clock.Sleeps(), sleeps) {
		t.Errorf("slept %v, want %v", srv.Clock.Sleeps(), sleeps)
	}
}

// FindAll calls s.FindAll for sought, with nothing recorded, and stops the
// test on an error or when the answer is not one per credential sought.
func FindAll(t testing.TB, s reconcile.BatchFinder, sought []reconcile.Sought) []*reconcile.Held {
	t.Helper()
	held, err := s.FindAll(t.Context(), sought, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != len(sought) {
		t.Fatalf("%d answers for %d credentials", len(held), len(sought))
	}
	return held
}

// Writes wraps a handler so that every request write(r) reports is handled
// by fault, and the others by the handler. It counts what it diverted.
type Writes struct {
	write func(*http.Request) bool
	fault func(w http.ResponseWriter, r *http.Request, next http.Handler)
	mu    sync.Mutex
	n     int
}

// NewWrites diverts the requests write reports to fault.
func NewWrites(write func(*http.Request) bool, fault func(w http.ResponseWriter, r *http.Request, next http.Handler)) *Writes {
	return &Writes{write: write, fault: fault}
}

// Wrap is the middleware, for a Harness's Start or a sandbox's server.
func (f *Writes) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.write(r) {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.n++
		fn := f.fault
		f.mu.Unlock()
		if fn == nil {
			next.ServeHTTP(w, r)
			return
		}
		fn(w, r, next)
	})
}

// Set replaces the fault (nil: pass writes on) and resets the count.
func (f *Writes) Set(fault func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault, f.n = fault, 0
}

// Count is how many writes arrived since the last Set.
func (f *Writes) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// IsPost tells a create from the rest, for a sink whose only POST is its
// create.
func IsPost(r *http.Request) bool { return r.Method == http.MethodPost }

// LoseCreates lets h make every create (a POST) but loses its answer: the
// connection is closed before a byte of it is sent.
func LoseCreates(h http.Handler) http.Handler { return NewWrites(IsPost, LoseAnswer).Wrap(h) }

// FailCreates answers every create (a POST) 503, an HTML page, without
// letting h see it.
func FailCreates(h http.Handler) http.Handler {
	down := adaptertest.Reply(http.StatusServiceUnavailable, "text/html", "<html>down</html>")
	return NewWrites(IsPost, func(w http.ResponseWriter, r *http.Request, _ http.Handler) { down(w, r) }).Wrap(h)
}

// LoseAnswer lets the sandbox act, then loses its answer.
func LoseAnswer(w http.ResponseWriter, r *http.Request, next http.Handler) { fault.Drop(w, r, next) }

// Unavailable answers 503 without letting the sandbox see the request.
func Unavailable(w http.ResponseWriter, _ *http.Request, _ http.Handler) { fault.Answer503(w) }

// Errs checks what a sink's Apply of n actions returned, as a fuzz target
// must whatever the answer: a request error with no outcomes beside it, or
// one outcome per action (the test stops otherwise). It returns the errors
// to check further: the request error and the outcomes' own. Its messages
// start with prefix.
func Errs(t testing.TB, prefix string, n int, out []reconcile.Outcome, err error) []error {
	t.Helper()
	var errs []error
	if err != nil {
		errs = append(errs, err)
		if out != nil {
			t.Errorf("%soutcomes alongside a request error", prefix)
		}
	} else if len(out) != n {
		t.Fatalf("%s%d outcomes for a batch of %d actions", prefix, len(out), n)
	}
	for _, o := range out {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	return errs
}

// Read2xx checks what a sink's write made of a 2xx answer of status, ct
// and body (a fuzz target's input), err being what it returned: an answer
// larger than maxBytes gives a size error; one that is not JSON, or not
// said to be, is not accepted (unless emptyOK and body is only white
// space: a call whose answer may be empty); and an error wraps
// reconcile.ErrUnknownOutcome, for the write may have been done. It checks
// nothing for another status. Its messages start with prefix.
func Read2xx(t testing.TB, prefix string, status int, ct string, body []byte, maxBytes int, emptyOK bool, err error) {
	t.Helper()
	if status < 200 || status > 299 {
		return
	}
	if len(body) > maxBytes && (err == nil || !strings.Contains(err.Error(), "larger than")) {
		t.Errorf("%sa %d-byte answer (cap %d) gave %v, want a size error", prefix, len(body), maxBytes, err)
	}
	empty := emptyOK && len(bytes.TrimSpace(body)) == 0
	if err == nil && !empty && (!json.Valid(body) || !fault.IsJSON(ct)) {
		t.Errorf("%san answer that is not JSON (%q) was accepted", prefix, ct)
	}
	if err != nil && !errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("%sunreadable 2xx does not wrap ErrUnknownOutcome: %v", prefix, err)
	}
}

// Apply sends actions in one request and fails the test on a request
// error or when the answer is not one Outcome per action.
func Apply(t testing.TB, s reconcile.Sink, actions ...*reconcile.Action) []reconcile.Outcome {
	t.Helper()
	out, err := s.Apply(t.Context(), actions)
	if err != nil {
		t.Fatalf("Apply of %d actions: %v", len(actions), err)
	}
	if len(out) != len(actions) {
		t.Fatalf("%d outcomes for %d actions", len(out), len(actions))
	}
	return out
}

// applyAll sends actions in requests of at most MaxBatch actions, each
// checked as Apply checks it.
func applyAll(t *testing.T, s reconcile.Sink, actions ...*reconcile.Action) []reconcile.Outcome {
	t.Helper()
	var all []reconcile.Outcome
	for chunk := range slices.Chunk(actions, max(1, s.MaxBatch())) {
		all = append(all, Apply(t, s, chunk...)...)
	}
	return all
}

// testOutcomesInOrder: creates, a refused withdrawal between them, then
// the withdrawals of what was created; each outcome is the one of its
// action.
func testOutcomesInOrder[S any](t *testing.T, h Harness[S]) {
	sb, s := h.Start(t, func(next http.Handler) http.Handler { return next })
	out := applyAll(t, s, h.Create(1), h.Withdraw(2, h.MissingID), h.Create(3))
	for _, i := range []int{0, 2} {
		if out[i].Err != nil || out[i].RemoteID == "" {
			t.Fatalf("create %d: %+v, want done with a remote id", i+1, out[i])
		}
	}
	if out[0].RemoteID == out[2].RemoteID {
		t.Errorf("two creates answered with one id %q", out[0].RemoteID)
	}
	if !errors.Is(out[1].Err, reconcile.ErrNotFound) {
		t.Errorf("withdrawal of a missing credential: %v, want its own outcome wrapping ErrNotFound", out[1].Err)
	}
	if n := h.Live(sb); n != 2 {
		t.Errorf("%d live credentials after two creates, want 2", n)
	}
	done := applyAll(t, s, h.Withdraw(3, out[2].RemoteID), h.Withdraw(1, out[0].RemoteID))
	for i, o := range done {
		if o.Err != nil {
			t.Errorf("withdrawal %d: %v", i+1, o.Err)
		}
	}
	if n := h.Live(sb); n != 0 {
		t.Errorf("%d live credentials after withdrawing both, want 0", n)
	}
}

// testLostAnswer: the sandbox makes the create but its answer is lost; the
// request fails as a whole with an unknown outcome, the create is not sent
// again, and a Finder reads it back.
func testLostAnswer[S any](t *testing.T, h Harness[S]) {
	f := NewWrites(h.Write, LoseAnswer)
	sb, s := h.Start(t, f.Wrap)
	a := h.Create(1)
	out, err := s.Apply(t.Context(), []*reconcile.Action{a})
	if !errors.Is(err, reconcile.ErrUnknownOutcome) || out != nil {
		t.Fatalf("Apply: %v, %d outcomes; want a request error wrapping ErrUnknownOutcome and none", err, len(out))
	}
	if n := f.Count(); n != 1 {
		t.Errorf("the create was sent %d times, want once", n)
	}
	if n := h.Live(sb); n != 1 {
		t.Fatalf("%d live credentials, want the one the lost create made", n)
	}
	finder, ok := s.(reconcile.Finder)
	if !ok {
		return
	}
	id, _, found, err := finder.Find(t.Context(), Pending(a))
	if err != nil || !found || id == "" {
		t.Errorf("Find = %q, %v, %v; want the lost create's id", id, found, err)
	}
	f.Set(nil)
	if out := applyAll(t, s, h.Withdraw(1, id)); out[0].Err != nil {
		t.Errorf("withdrawing what Find read back: %v", out[0].Err)
	}
	if n := h.Live(sb); n != 0 {
		t.Errorf("%d live credentials after withdrawing what Find read back, want 0", n)
	}
}

// testCreate503: a create answered 503 fails, is sent once, and made
// nothing a Finder would read back.
func testCreate503[S any](t *testing.T, h Harness[S]) {
	f := NewWrites(h.Write, Unavailable)
	sb, s := h.Start(t, f.Wrap)
	a := h.Create(1)
	out, err := s.Apply(t.Context(), []*reconcile.Action{a})
	if err == nil && (len(out) != 1 || out[0].Err == nil) {
		t.Fatalf("a create answered 503 succeeded: %+v", out)
	}
	if err != nil && out != nil {
		t.Errorf("%d outcomes alongside a request error", len(out))
	}
	if n := f.Count(); n != 1 {
		t.Errorf("a create answered 503 was sent %d times, want once (never re-sent blindly)", n)
	}
	if n := h.Live(sb); n != 0 {
		t.Errorf("%d live credentials, want none", n)
	}
	finder, ok := s.(reconcile.Finder)
	if !ok {
		return
	}
	id, secret, found, err := finder.Find(t.Context(), Pending(a))
	if err != nil || found || id != "" || secret != "" {
		t.Errorf("Find = %q, %v, %v; want nothing found", id, found, err)
	}
}

// testWithdraw503: a withdrawal answered 503 once is retried to success
// where it is idempotent, and otherwise sent once with its outcome
// unknown.
func testWithdraw503[S any](t *testing.T, h Harness[S]) {
	f := NewWrites(h.Write, nil)
	sb, s := h.Start(t, f.Wrap)
	id := applyAll(t, s, h.Create(1))[0].RemoteID
	var once sync.Once
	f.Set(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		first := false
		once.Do(func() { first = true })
		if first {
			fault.Answer503(w)
			return
		}
		next.ServeHTTP(w, r)
	})
	out, err := s.Apply(t.Context(), []*reconcile.Action{h.Withdraw(1, id)})
	if h.WithdrawRetried {
		if err != nil || len(out) != 1 || out[0].Err != nil {
			t.Fatalf("withdrawal answered 503 once: %+v, %v; want it retried to success", out, err)
		}
		if n := f.Count(); n != 2 {
			t.Errorf("withdrawal sent %d times, want 2", n)
		}
		if n := h.Live(sb); n != 0 {
			t.Errorf("%d live credentials after the withdrawal, want 0", n)
		}
		return
	}
	if n := f.Count(); n != 1 {
		t.Errorf("a non-idempotent withdrawal answered 503 was sent %d times, want once", n)
	}
	if err == nil {
		t.Fatalf("a withdrawal answered 503 succeeded: %+v", out)
	}
	if !errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("withdrawal answered 503: %v, want ErrUnknownOutcome", err)
	}
	if n := h.Live(sb); n != 1 {
		t.Errorf("%d live credentials, want the one the refused withdrawal left", n)
	}
}
