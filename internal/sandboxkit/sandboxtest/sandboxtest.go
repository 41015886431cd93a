// Package sandboxtest is what the four sandboxes' own tests share: a
// request to a sandbox served over HTTP, its answer read and decoded, and a
// walk into decoded JSON. Only tests import it.
package sandboxtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
