// Package sandboxtest is what the four sandboxes' own tests share: a
// sandbox served over HTTP for one test, a request to it, its answer read
// and decoded, a walk into decoded JSON, and the checks of the admin routes
// and rate limits every sandbox has. The adapters' tests use it to serve
// their sandboxes too. Only tests import it.
package sandboxtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

// Serve serves h over HTTP until t ends and returns the server. Each of
// wraps, in order, wraps what came before (a fault, a check of the
// requests).
func Serve(t testing.TB, h http.Handler, wraps ...func(http.Handler) http.Handler) *httptest.Server {
	for _, wrap := range wraps {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// Env is a sandbox served over HTTP for one test: the test, the sandbox
// and its server. A sandbox's tests embed it in their own env type, which
// holds their request helpers.
type Env[S http.Handler] struct {
	T   *testing.T
	SB  S
	Srv *httptest.Server
}

// Start serves sb over HTTP until t ends.
func Start[S http.Handler](t *testing.T, sb S) *Env[S] {
	return &Env[S]{T: t, SB: sb, Srv: Serve(t, sb)}
}

// AddAll adds items with add (a sandbox's AddStay or AddReservation), in
// order, failing the test on an error.
func AddAll[T any](t testing.TB, add func(T) error, items ...T) {
	t.Helper()
	for _, it := range items {
		if err := add(it); err != nil {
			t.Fatal(err)
		}
	}
}

// Answer is a sandbox's answer: its status, headers and body, raw and, when
// it is a JSON object, decoded.
type Answer struct {
	Status int
	Header http.Header
	Raw    string
	Body   map[string]any
}

// Call sends method path to srv with body (as application/json when not
// empty), after edits have set what else the request needs, and returns
// the answer (see Send).
func Call(t testing.TB, srv *httptest.Server, method, path, body string, edits ...func(*http.Request)) Answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, edit := range edits {
		edit(req)
	}
	return Send(t, srv.Client(), req)
}

// Want is Call for a request whose answer must have status: the test
// stops when it has another.
func Want(t testing.TB, srv *httptest.Server, method, path, body string, status int, edits ...func(*http.Request)) Answer {
	t.Helper()
	a := Call(t, srv, method, path, body, edits...)
	if a.Status != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, a.Status, status, a.Raw)
	}
	return a
}

// Send sends req with c and reads the answer. A non-empty body is decoded
// into Answer.Body; the test fails when the answer says it is JSON and it
// is not.
func Send(t testing.TB, c *http.Client, req *http.Request) Answer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &a.Body); err != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: the answer is not JSON: %v: %s", req.Method, req.URL.Path, err, raw)
		}
	}
	return a
}

// Admits sends n requests with send and fails the test unless every one
// is answered status: requests within a burst or a daily cap.
func Admits(t testing.TB, what string, n, status int, send func() Answer) {
	t.Helper()
	for i := range n {
		if a := send(); a.Status != status {
			t.Fatalf("%s: request %d of %d: %d, want %d: %s", what, i+1, n, a.Status, status, a.Raw)
		}
	}
}

// RateLimited fails the test unless a is a 429 whose Retry-After is
// retryAfter.
func RateLimited(t testing.TB, what string, a Answer, retryAfter string) {
	t.Helper()
	if a.Status != http.StatusTooManyRequests || a.Header.Get("Retry-After") != retryAfter {
		t.Fatalf("%s: %d, Retry-After %q; want 429, Retry-After %q: %s", what, a.Status, a.Header.Get("Retry-After"), retryAfter, a.Raw)
	}
}

// Header sets a request header, unless value is empty.
func Header(name, value string) func(*http.Request) {
	return func(r *http.Request) {
		if value != "" {
			r.Header.Set(name, value)
		}
	}
}

// BasicAuth sets HTTP Basic credentials, unless user is empty.
func BasicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) {
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
	}
}

// Dig walks decoded JSON: maps by string key, slices by int index. A step
// that does not fit gives nil.
func Dig(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[p]
		case int:
			s, _ := v.([]any)
			if p >= len(s) {
				return nil
			}
			v = s[p]
		}
	}
	return v
}

// RoutesDocumented checks the admin route list a sandbox serves at GET
// /_sandbox/ (200, text/plain) against its package comment in doc.go, read
// from the test's working directory: one block of tab-indented comment
// lines there must be the list exactly, and no other block may name a
// /_sandbox/ route. It returns the list as served.
func RoutesDocumented(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	a := Call(t, srv, http.MethodGet, "/_sandbox/", "")
	if a.Status != http.StatusOK || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /_sandbox/: %d %s", a.Status, a.Header.Get("Content-Type"))
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	served := strings.Split(strings.TrimSuffix(a.Raw, "\n"), "\n")
	found := false
	for _, block := range tabBlocks(string(doc)) {
		switch {
		case slices.Equal(block, served):
			found = true
		case slices.ContainsFunc(block, func(l string) bool { return strings.Contains(l, "/_sandbox/") }):
			t.Errorf("doc.go lists admin routes outside the route list:\n%s", strings.Join(block, "\n"))
		}
	}
	if !found {
		t.Errorf("doc.go does not list the admin routes as GET /_sandbox/ serves them:\n%s", a.Raw)
	}
	return a.Raw
}

// tabBlocks returns the runs of consecutive comment lines of src that
// start with "//\t", that prefix cut.
func tabBlocks(src string) [][]string {
	var blocks [][]string
	var cur []string
	for line := range strings.SplitSeq(src, "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			cur = append(cur, rest)
			continue
		}
		if cur != nil {
			blocks, cur = append(blocks, cur), nil
		}
	}
	if cur != nil {
		blocks = append(blocks, cur)
	}
	return blocks
}

// ClearRequests empties a sandbox's request log with DELETE
// /_sandbox/requests and checks that GET /_sandbox/requests then answers
// {"count": 0, "requests": []}. It returns how many entries the DELETE
// said it cleared.
func ClearRequests(t testing.TB, srv *httptest.Server) int {
	t.Helper()
	cleared, _ := Want(t, srv, http.MethodDelete, "/_sandbox/requests", "", http.StatusOK).Body["cleared"].(float64)
	if a := Want(t, srv, http.MethodGet, "/_sandbox/requests", "", http.StatusOK); a.Body["count"] != 0.0 || !strings.Contains(a.Raw, `"requests":[]`) {
		t.Errorf("requests after clearing: %s", a.Raw)
	}
	return int(cleared)
}
