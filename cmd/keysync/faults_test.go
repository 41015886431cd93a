package main

// Helpers for the fault-injection scenarios in faults_e2e_test.go: a world
// whose sandboxes sit behind a switchable fault middleware, keysync runs on
// a fake clock (so Retry-After waits and backoff cost no real time), and
// request-level helpers for the middleware.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// faultWorld is a world whose sandboxes are served behind a middleware the
// test can switch at any time (the sandboxes' own middleware field is read
// once, by serve).
type faultWorld struct {
	*world
	// faults is that middleware: it hands every request to the fault set
	// last, if any.
	faults *sinktest.Writes
	// next is the fake clock the next exec uses, when the test needs it
	// before the run starts (clockForNextRun).
	next *clocktest.Clock
}

// clockForNextRun returns the fake clock the next exec will run on.
func (fw *faultWorld) clockForNextRun() *clocktest.Clock {
	fw.next = clocktest.New(fw.now)
	return fw.next
}

// newFaultWorld is newWorld with the switchable middleware in front of the
// four faithful fakes.
func newFaultWorld(t *testing.T, hotel, apartments map[string]string) *faultWorld {
	t.Helper()
	fw := &faultWorld{faults: sinktest.NewWrites(func(*http.Request) bool { return true }, nil)}
	fw.world = newWorld(t, hotel, apartments, withMiddleware(fw.faults.Wrap))
	return fw
}

// hotelWorld is newFaultWorld with the hotel's rooms and no apartments,
// the stays booked, and the foreign snapshot taken before any run.
func hotelWorld(t *testing.T, rooms map[string]string, stays ...booking) (fw *faultWorld, foreign string) {
	t.Helper()
	fw = newFaultWorld(t, rooms, nil)
	for _, s := range stays {
		fw.hotelStay(s.id, s.room, s.arrive, s.depart)
	}
	return fw, fw.foreign()
}

// setFault installs (or, with nil, removes) the fault middleware.
func (fw *faultWorld) setFault(f faultFunc) { fw.faults.Set(f) }

// faultFunc is fault middleware: it answers r itself or passes it to next.
type faultFunc = func(rw http.ResponseWriter, r *http.Request, next http.Handler)

// when is a fault that lets answer handle the requests match picks and
// passes every other request on untouched.
func when(match func(r *http.Request) bool, answer faultFunc) faultFunc {
	return func(rw http.ResponseWriter, r *http.Request, next http.Handler) {
		if match(r) {
			answer(rw, r, next)
			return
		}
		next.ServeHTTP(rw, r)
	}
}

// answerJSON answers 200 with the JSON body without passing the request on.
func answerJSON(body string) faultFunc {
	return func(rw http.ResponseWriter, _ *http.Request, _ http.Handler) {
		rw.Header().Set("Content-Type", "application/json")
		rw.Write([]byte(body))
	}
}

// mutationNaming reports a 3RPMS GraphQL mutation request whose body names
// field (any mutation, with "").
func mutationNaming(r *http.Request, field string) bool {
	b := fault.Body(r)
	return isGQLMutation(r, b) && strings.Contains(string(b), field)
}

// requestTo reports a request for the sandbox of sys with the given method
// (any method, with "").
func requestTo(r *http.Request, sys reconcile.System, method string) bool {
	return sysOf(r) == sys && (method == "" || r.Method == method)
}

// faultRun is one keysync run's outcome.
type faultRun struct {
	rep    *reconcile.Report
	code   int
	err    error
	stdout string
	stderr string
	clock  *clocktest.Clock
}

// output is everything the run printed, and its error.
func (r faultRun) output() string { return r.stdout + r.stderr + errString(r.err) }

// exec runs keysync in-process on a fake clock (starting at the run's
// instant), with getenv (nil: the sandbox environment). It does not check
// the exit code.
func (fw *faultWorld) exec(cmd string, getenv func(string) string, extra ...string) faultRun {
	fw.t.Helper()
	fake := fw.next
	if fake == nil {
		fake = clocktest.New(fw.now)
	}
	fw.next = nil
	r := fw.runOn(fake, getenv, cmd, append([]string{"--json"}, extra...)...)
	r.rep = parseReport(fw.t, cmd, r.stdout)
	return r
}

// runOn runs keysync's cmd in-process on the fake clock with getenv (nil:
// the sandbox environment) and the extra arguments, at the world's instant.
func (fw *faultWorld) runOn(fake *clocktest.Clock, getenv func(string) string, cmd string, extra ...string) faultRun {
	if getenv == nil {
		getenv = fw.getenv
	}
	var out, errb bytes.Buffer
	now := fw.now
	env := &environment{
		stdout: &out, stderr: &errb, getenv: getenv,
		now:   func() time.Time { return now },
		clock: fake,
		retry: httpapi.Retry{Clock: fake, Rand: func() float64 { return 0.5 }},
	}
	args := append([]string{cmd, "--config", fw.cfg, "--now", fw.now.Format(time.RFC3339)}, extra...)
	err := env.run(context.Background(), args)
	return faultRun{code: exitCode(err), err: err, stdout: out.String(), stderr: errb.String(), clock: fake}
}

// mustExec runs and requires the exit code and a report.
func (fw *faultWorld) mustExec(want int, cmd string, extra ...string) faultRun {
	fw.t.Helper()
	r := fw.exec(cmd, nil, extra...)
	if r.code != want {
		fw.t.Fatalf("%s exited %d, want %d: %v\n%s", cmd, r.code, want, r.err, r.stderr)
	}
	if r.rep == nil {
		fw.t.Fatalf("%s printed no report\n%s", cmd, r.stderr)
	}
	return r
}

// checkSafe asserts, after a run that ended partial, the invariants that
// must hold at every moment (checkInvariants' 1, 2, 3 and 6); nothing missing and
// convergence are for after the next run (checkInvariants).
func (fw *faultWorld) checkSafe(foreignBefore string) {
	fw.t.Helper()
	t := fw.t
	recorded := map[string]reconcile.Credential{}
	perStay := map[string]int{}
	for _, c := range fw.credentials() {
		if c.RemoteID != "" {
			recorded[string(c.System)+" "+c.RemoteID] = c
		}
		if c.Status.Live() {
			perStay[string(c.System)+" "+c.Stay.ID]++
		}
	}
	for k, n := range perStay {
		if n > 1 {
			t.Errorf("invariant 2 after the faulty run: %s has %d live credentials", k, n)
		}
	}
	stays := fw.stays()
	for _, k := range fw.sb.rpms.Keys() {
		if k.Owner != fw.ourIntegration() || k.Deleted || len(k.StayIDs) == 0 {
			continue
		}
		if c, ok := recorded["3rpms "+k.ID]; !ok || !c.Status.Live() {
			t.Errorf("invariant 1 after the faulty run: assigned 3RPMS key %s on %v is not recorded live", k.ID, k.StayIDs)
		}
		for _, sid := range k.StayIDs {
			if s := stays[sid]; s.gone {
				t.Errorf("invariant 3 after the faulty run: key %s on cancelled/deleted stay %s", k.ID, sid)
			}
		}
	}
	for _, i := range fw.invites() {
		if c, ok := recorded["openapp "+i.ID]; !ok || !c.Status.Live() {
			t.Errorf("invariant 1 after the faulty run: invite %s (%s) is not recorded live", i.ID, i.Name)
		}
	}
	for _, a := range fw.accesses() {
		if c, ok := recorded["keybox "+a.ID]; !ok || !c.Status.Live() {
			t.Errorf("invariant 1 after the faulty run: key-box access %s is not recorded live", a.ID)
		}
	}
	if foreignBefore != "" && fw.foreign() != foreignBefore {
		t.Errorf("invariant 6 after the faulty run: foreign credentials changed\nbefore %s\nafter  %s", foreignBefore, fw.foreign())
	}
}

// isGQLMutation reports a 3RPMS GraphQL mutation request.
func isGQLMutation(r *http.Request, b []byte) bool {
	if r.URL.Path != "/graphql" || r.Method != http.MethodPost {
		return false
	}
	var req struct {
		Query string `json:"query"`
	}
	return json.Unmarshal(b, &req) == nil && strings.HasPrefix(strings.TrimSpace(req.Query), "mutation")
}

// sysOf names the sandbox a request is for.
func sysOf(r *http.Request) reconcile.System {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/openapp/"):
		return reconcile.SystemOpenApp
	case strings.HasPrefix(p, "/keybox/"):
		return reconcile.SystemKeyBox
	case strings.HasPrefix(p, "/guestway/"):
		return reconcile.SystemGuestway
	}
	return reconcile.System3RPMS
}

// addUnknownField adds an unknown member to every JSON object in doc.
func addUnknownField(doc []byte) []byte {
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return doc
	}
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				v[k] = walk(x)
			}
			v["x_added_in_v2"] = map[string]any{"flag": true, "items": []any{1, "two"}}
			return v
		case []any:
			for i, x := range v {
				v[i] = walk(x)
			}
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return doc
	}
	return out
}

// reqCounter counts requests by a label, safely across goroutines.
type reqCounter struct {
	mu sync.Mutex
	n  map[string]int
	// order keeps the labels in the order seen.
	order []string
}

func (c *reqCounter) add(label string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[label]++
	c.order = append(c.order, label)
	return c.n[label]
}

func (c *reqCounter) get(label string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[label]
}

func (c *reqCounter) all() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}
