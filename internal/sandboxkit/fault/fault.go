// Package fault holds the HTTP faults and fake servers that the tests of
// several packages share: middleware pieces that answer 503, lose an answer
// after the server acted, or rewrite it; a server that answers every
// request with one canned answer (for the fuzz targets of the adapters'
// answer decoders); and a server that answers with bytes that are not HTTP.
// Only tests import it.
package fault

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Body reads a request's body and puts it back for the next handler.
func Body(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// Answer503 answers 503 {"error":"service unavailable"} without passing the
// request on.
func Answer503(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"error":"service unavailable"}`)
}

// Rewrite lets next answer r, then passes a non-empty JSON answer through
// edit before the client sees it.
func Rewrite(w http.ResponseWriter, r *http.Request, next http.Handler, edit func([]byte) []byte) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	if strings.Contains(rec.Header().Get("Content-Type"), "json") && len(bytes.TrimSpace(out)) > 0 {
		out = edit(out)
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// Drop lets next handle r fully, then closes the connection before a byte
// of its answer is sent: the client cannot know the outcome.
func Drop(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(httptest.NewRecorder(), r)
	HangUp(w)
}

// HangUp closes the connection without answering. It panics when w cannot
// be hijacked (an HTTP/2 server), which is a mistake in the test.
func HangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// RawServer is a test server that answers every request with raw on the
// bare connection: not HTTP, so net/http's client error quotes it.
func RawServer(tb testing.TB, raw string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString(raw)
		_ = buf.Flush()
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// Received is one request a Canned server was sent.
type Received struct {
	Method string
	// URL is the request's URL as the server sees it: path and query.
	URL  string
	Path string
	// Body is the request body, at most 1 MiB of it.
	Body string
}

// String is the request on one line: method, URL and body.
func (r Received) String() string { return r.Method + " " + r.URL + " " + r.Body }

// Canned is a test server that answers every request with the current
// canned answer and logs what it was sent and what it answered, so a fuzz
// target can count repeats. Set the answer with Answer or AnswerFunc.
type Canned struct {
	*httptest.Server

	mu       sync.Mutex
	status   int
	ct       string
	body     func(*http.Request) []byte
	requests []Received
	served   [][]byte
}

// NewCanned starts a Canned server, closed when tb ends; it answers 200
// with no body until told otherwise.
func NewCanned(tb testing.TB) *Canned {
	s := &Canned{status: http.StatusOK, body: func(*http.Request) []byte { return nil }}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.requests = append(s.requests, Received{Method: r.Method, URL: r.URL.String(), Path: r.URL.Path, Body: string(req)})
		status, ct, body := s.status, s.ct, s.body(r)
		s.served = append(s.served, body)
		s.mu.Unlock()
		if ct == "" {
			w.Header()["Content-Type"] = nil // no sniffing: no content type at all
		} else {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

// Answer sets the canned answer (an empty ct sends no Content-Type) and
// clears the logs.
func (s *Canned) Answer(status int, ct string, body []byte) {
	s.AnswerFunc(status, ct, func(*http.Request) []byte { return body })
}

// AnswerFunc is Answer with a body chosen per request, and clears the logs.
func (s *Canned) AnswerFunc(status int, ct string, body func(*http.Request) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.ct, s.body, s.requests, s.served = status, ct, body, nil, nil
}

// Reset clears the logs, keeping the answer: a fuzz target that makes
// several calls per input counts each call's requests alone.
func (s *Canned) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.served = nil, nil
}

// Requests returns the requests received since the answer was last set.
func (s *Canned) Requests() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.requests...)
}

// Served returns the bodies answered since the answer was last set.
func (s *Canned) Served() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.served...)
}

// Status maps a fuzzed number onto a status a server can send with a body:
// 200 to 599.
func Status(n uint16) int { return 200 + int(n)%400 }

// Answered reports whether a Content-Type value reaches the client as a
// header: net/http servers write control characters (other than CR and LF,
// which become spaces) as they are, and the client then refuses the whole
// answer as malformed. Such an input is no HTTP answer at all (status 0 in
// the fuzz checks): a transport error, retried where the call is
// idempotent.
func Answered(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if b := ct[i]; (b < 0x20 && b != '\t' && b != '\r' && b != '\n') || b == 0x7f {
			return false
		}
	}
	return true
}

// IsJSON reports whether a Content-Type value names JSON: application/json
// or any +json type, parameters ignored.
func IsJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// Bytes returns seeds as byte slices: a fuzz target's seed corpus.
func Bytes(seeds ...string) [][]byte {
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// FuzzBody runs a fuzz target over the body of an answer of status and
// content type ct, seeded with seeds: a Canned server answers each body,
// then run makes the calls under test on it and checks them.
func FuzzBody(f *testing.F, seeds [][]byte, status int, ct string, run func(t *testing.T, srv *Canned, status int, ct string, body []byte)) {
	for _, s := range seeds {
		f.Add(s)
	}
	srv := NewCanned(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		srv.Answer(status, ct, body)
		run(t, srv, status, ct, body)
	})
}

// FuzzAnswer runs a fuzz target over a whole answer: its status (mapped by
// Status), its content type and its body. Each of seeds is added with a
// status and a content type taken in turn from statuses and cts; a target
// adds any other seeds with f.Add(uint16 status-200, ct, body) before. A
// Canned server answers each input, then run makes the calls under test
// on it and checks them; run is told status 0 where the content type
// keeps the answer from reaching the client (see Answered).
func FuzzAnswer(f *testing.F, seeds [][]byte, statuses []int, cts []string, run func(t *testing.T, srv *Canned, status int, ct string, body []byte)) {
	for i, s := range seeds {
		f.Add(uint16(statuses[i%len(statuses)]-200), cts[i%len(cts)], s)
	}
	srv := NewCanned(f)
	f.Fuzz(func(t *testing.T, status uint16, ct string, body []byte) {
		code := Status(status)
		srv.Answer(code, ct, body)
		if !Answered(ct) {
			code = 0
		}
		run(t, srv, code, ct, body)
	})
}

// NotQuoted serves each of raws (bytes that are not a well-formed HTTP
// answer) with a RawServer and checks every error call returns for that
// server's URL: each must be an error, and none may quote any of secrets.
// net/http's error quotes the line it could not parse, so whatever the
// server sent, a secret it echoed included, would otherwise reach it.
func NotQuoted(t *testing.T, raws, secrets []string, call func(url string) []error) {
	t.Helper()
	for _, raw := range raws {
		srv := RawServer(t, raw)
		for i, err := range call(srv.URL) {
			if err == nil || containsAny(err.Error(), secrets) {
				t.Errorf("call %d: err = %v; want an error without what the server sent", i+1, err)
			}
		}
	}
}

// NotHTTP returns two answers that are not well-formed HTTP, for
// NotQuoted: another protocol's banner carrying banner, and statusLine
// followed by a header line named header whose value, value, starts with
// a DEL (a malformed header line).
func NotHTTP(banner, statusLine, header, value string) []string {
	return []string{
		"SSH-2.0-OpenSSH " + banner + "\r\n\r\n",
		statusLine + "\r\n" + header + ": \x7f" + value + "\r\n\r\n",
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
