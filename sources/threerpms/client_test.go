package threerpms_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	rpmsapi "github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// Canaries: secrets that must never reach an error string.
const (
	canaryToken = "tok-CANARY-7f3e"
	canaryPIN   = "CANARY42"
)

const (
	testQuery    = `query RoomStays { room_stays { edges { node { id } } } }`
	testMutation = `mutation CreateRoomAccessKey($input: CreateRoomAccessKeyInput!) { createRoomAccessKey(input: $input) { roomAccessKey { id } } }`
)

// testRequest returns a GraphQL request; a mutation carries canaryPIN in
// its variables, as a real create does.
func testRequest(mutation bool) *graphql.Request {
	if mutation {
		return &graphql.Request{
			OpName:    "CreateRoomAccessKey",
			Query:     testMutation,
			Variables: map[string]any{"input": map[string]any{"roomAccessPin": map[string]any{"pin": canaryPIN}}},
		}
	}
	return &graphql.Request{OpName: "RoomStays", Query: testQuery}
}

// canaryClient returns a Client for endpoint sending canaryToken, with a
// 2048-byte response cap and one attempt per request: these tests check how
// one exchange's answer is mapped (TestMakeRequestRetries checks retries).
func canaryClient(endpoint string) *rpmsapi.Client {
	return mustClient(rpmsapi.ClientOptions{
		Endpoint:  endpoint,
		Token:     canaryToken,
		Transport: httpapi.Transport{MaxResponseBytes: 2048, Retry: httpapi.Retry{Attempts: 1}},
	})
}

// newClient is rpmsapi.NewClient for options that must work.
func mustClient(opts rpmsapi.ClientOptions) *rpmsapi.Client {
	c, err := rpmsapi.NewClient(opts)
	if err != nil {
		panic(err)
	}
	return c
}

// reply is a canned answer.
var reply = adaptertest.Reply

// echo is a GraphQL error body quoting both canaries, as a careless server
// might.
const echo = `{"errors":[{"message":"bad request from ` + canaryToken + ` with pin ` + canaryPIN + `"}]}`

// padded returns a valid JSON answer exactly n bytes long.
func padded(n int) string {
	const head, tail = `{"data":{"pad":"`, `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestMakeRequest(t *testing.T) {
	t.Parallel()
	const jsonCT = "application/json"
	for _, tc := range []struct {
		name     string
		mutation bool
		handler  http.HandlerFunc
		is       []error  // errors.Is must hold for each
		isNot    []error  // and for none of these
		contains []string // err.Error() must contain each
		check    func(t *testing.T, err error, data map[string]any)
		bug      string // non-empty: known bug, skipped
	}{
		{
			name:     "401",
			handler:  reply(http.StatusUnauthorized, jsonCT, echo),
			is:       []error{reconcile.ErrUnauthorized},
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{"401", "Authorization: Bearer"},
		},
		{
			name:     "401 on a mutation",
			mutation: true,
			handler:  reply(http.StatusUnauthorized, jsonCT, echo),
			is:       []error{reconcile.ErrUnauthorized},
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{"Authorization: Bearer"},
		},
		{
			name:     "403",
			handler:  reply(http.StatusForbidden, jsonCT, echo),
			is:       []error{reconcile.ErrUnauthorized},
			contains: []string{"403", "permission"},
		},
		{
			name:     "429 with Retry-After",
			mutation: true,
			handler:  reply(http.StatusTooManyRequests, jsonCT, echo, "Retry-After", "7"),
			isNot:    []error{reconcile.ErrUnknownOutcome},
			check: func(t *testing.T, err error, _ map[string]any) {
				adaptertest.RateLimited(t, err, reconcile.System3RPMS, 7*time.Second)
			},
		},
		{
			name:    "429 without Retry-After",
			handler: reply(http.StatusTooManyRequests, jsonCT, echo),
			check: func(t *testing.T, err error, _ map[string]any) {
				var rl *httpapi.RateLimitedError
				if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
					t.Errorf("err = %v, want a RateLimitedError with the 1s floor", err)
				}
			},
		},
		{
			name:     "500 on a mutation",
			mutation: true,
			handler:  reply(http.StatusInternalServerError, jsonCT, echo),
			is:       []error{reconcile.ErrUnknownOutcome},
			contains: []string{"500"},
		},
		{
			name:     "503 on a mutation",
			mutation: true,
			handler:  reply(http.StatusServiceUnavailable, "text/html", "<html>"+canaryPIN+"</html>"),
			is:       []error{reconcile.ErrUnknownOutcome},
			contains: []string{"503"},
		},
		{
			name:     "500 on a query",
			handler:  reply(http.StatusInternalServerError, jsonCT, echo),
			isNot:    []error{reconcile.ErrUnknownOutcome, reconcile.ErrRejected},
			contains: []string{"500"},
		},
		{
			name:     "400 with GraphQL errors",
			handler:  reply(http.StatusBadRequest, jsonCT, `{"errors":[{"message":"Cannot query field \"nope\" on type \"Query\"."},{"message":"second problem"}]}`),
			is:       []error{reconcile.ErrRejected},
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{"400", `Cannot query field "nope" on type "Query".`, "second problem"},
		},
		{
			name:     "400 on a mutation",
			mutation: true,
			handler:  reply(http.StatusBadRequest, jsonCT, `{"errors":[{"message":"Variable \"$input\" is invalid."}]}`),
			is:       []error{reconcile.ErrRejected},
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{`Variable "$input" is invalid.`},
		},
		{
			name:     "400 without GraphQL errors",
			handler:  reply(http.StatusBadRequest, "text/plain", "bad request "+canaryPIN),
			is:       []error{reconcile.ErrRejected},
			contains: []string{"no GraphQL error"},
		},
		{
			name:     "400 quoting the request's PIN",
			mutation: true,
			handler:  reply(http.StatusBadRequest, jsonCT, `{"errors":[{"message":"Variable \"$input\" got invalid value {\"roomAccessPin\":{\"pin\":\"`+canaryPIN+`\"}}."}]}`),
			is:       []error{reconcile.ErrRejected},
			bug: "client.go:130/158-168 errorMessages copies a 400 answer's GraphQL messages into the error verbatim; " +
				"a server that quotes the variables (graphql-js style) leaks the PIN, and sinks/threerpms/sink.go send " +
				"passes transport errors through unscrubbed",
		},
		{
			name:     "HTML with 200 on a mutation",
			mutation: true,
			handler:  reply(http.StatusOK, "text/html; charset=utf-8", "<html><body>Maintenance "+canaryPIN+"</body></html>"),
			is:       []error{reconcile.ErrUnknownOutcome},
			contains: []string{"not JSON", "text/html"},
		},
		{
			name:     "HTML with 200 on a query",
			handler:  reply(http.StatusOK, "text/html", "<html>login</html>"),
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{"not JSON"},
		},
		{
			name:     "empty 200",
			mutation: true,
			handler:  reply(http.StatusOK, jsonCT, ""),
			is:       []error{reconcile.ErrUnknownOutcome},
			contains: []string{"empty response"},
		},
		{
			name:     "blank 200 on a query",
			handler:  reply(http.StatusOK, jsonCT, " \n\t"),
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{"empty response"},
		},
		{
			name:     "truncated JSON",
			mutation: true,
			handler:  reply(http.StatusOK, jsonCT, `{"data":{"createRoomAccessKey":{"roomAccessKey":{"id":"`+canaryPIN),
			is:       []error{reconcile.ErrUnknownOutcome},
			contains: []string{"malformed JSON"},
		},
		{
			name:     "invalid JSON",
			handler:  reply(http.StatusOK, jsonCT, `{"data": `+canaryPIN+`}`),
			isNot:    []error{reconcile.ErrUnknownOutcome},
			contains: []string{"malformed JSON", "byte"},
		},
		{
			name:     "JSON of the wrong type",
			handler:  reply(http.StatusOK, jsonCT, `{"data":{"pad":"`+canaryPIN+`"},"errors":"`+canaryPIN+`"}`),
			contains: []string{"malformed JSON"},
		},
		{
			name:     "body over the cap",
			mutation: true,
			handler:  reply(http.StatusOK, jsonCT, padded(2049)),
			is:       []error{reconcile.ErrUnknownOutcome},
			contains: []string{"2048"},
		},
		{
			name:    "body at the cap",
			handler: reply(http.StatusOK, jsonCT, padded(2048)),
			check: func(t *testing.T, err error, data map[string]any) {
				if err != nil {
					t.Fatalf("err = %v, want none at exactly the cap", err)
				}
				if s, _ := data["pad"].(string); len(s) == 0 {
					t.Errorf("data = %v, want it decoded", data)
				}
			},
		},
		{
			name:    "200 with GraphQL errors",
			handler: reply(http.StatusOK, "application/graphql-response+json", `{"data":{"pad":"ok"},"errors":[{"message":"partial","path":["a1"]}]}`),
			check: func(t *testing.T, err error, data map[string]any) {
				var list gqlerror.List
				if !errors.As(err, &list) || len(list) != 1 || list[0].Message != "partial" {
					t.Fatalf("err = %v, want the gqlerror.List", err)
				}
				if data["pad"] != "ok" {
					t.Errorf("data = %v, want it decoded alongside the errors", data)
				}
			},
		},
		{
			name:     "200",
			mutation: true,
			handler:  reply(http.StatusOK, "application/json; charset=utf-8", `{"data":{"pad":"ok"}}`),
			check: func(t *testing.T, err error, data map[string]any) {
				if err != nil || data["pad"] != "ok" {
					t.Errorf("got %v, %v; want the data and no error", data, err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bug != "" {
			}
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			var data map[string]any
			err := canaryClient(srv.URL).MakeRequest(t.Context(), testRequest(tc.mutation), &graphql.Response{Data: &data})
			if tc.check != nil {
				tc.check(t, err, data)
			} else if err == nil {
				t.Fatal("no error")
			}
			if err == nil {
				return
			}
			adaptertest.Wraps(t, err, tc.is, tc.isNot)
			adaptertest.Mentions(t, err, tc.contains...)
			assertNoCanary(t, err)
		})
	}
}

// assertNoCanary fails the test if err's text holds a canary.
func assertNoCanary(t *testing.T, err error) {
	t.Helper()
	adaptertest.NoSecrets(t, err, canaryToken, canaryPIN)
}

func TestMakeRequestSends(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body graphqlBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{}}`)
	}))
	defer srv.Close()

	meter := &reconcile.Meter{}
	c := mustClient(rpmsapi.ClientOptions{Endpoint: srv.URL + "/graphql", Token: canaryToken, Transport: httpapi.Transport{Meter: meter}})
	if err := c.MakeRequest(t.Context(), testRequest(true), &graphql.Response{}); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/graphql" {
		t.Errorf("sent %s %s, want POST /graphql", got.Method, got.URL.Path)
	}
	for h, want := range map[string]string{
		"Authorization": "Bearer " + canaryToken,
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	if body.Query != testMutation || body.OperationName != "CreateRoomAccessKey" {
		t.Errorf("body = %+v, want the mutation and its name", body)
	}
	if pin := body.Variables["input"].(map[string]any)["roomAccessPin"].(map[string]any)["pin"]; pin != canaryPIN {
		t.Errorf("pin variable = %v, want %s", pin, canaryPIN)
	}

	if err := c.MakeRequest(t.Context(), testRequest(false), &graphql.Response{}); err != nil {
		t.Fatal(err)
	}
	if n := meter.Snapshot()[reconcile.System3RPMS]; n.Reads != 1 || n.Writes != 1 {
		t.Errorf("meter = %+v, want one read and one write", n)
	}
}

// TestMakeRequestLimiterRefuses checks that a request the pacer refuses is
// never sent, so a mutation's outcome is known.
func TestMakeRequestLimiterRefuses(t *testing.T) {
	t.Parallel()
	c, endpoint := newCanned(t, `{"data":{}}`)
	cl := mustClient(rpmsapi.ClientOptions{
		Endpoint: endpoint, Token: canaryToken, Transport: httpapi.Transport{Pacer: httpapi.NewPacer(1, 0, nil)}, // burst 0: never admits
	})
	err := cl.MakeRequest(t.Context(), testRequest(true), &graphql.Response{})
	if err == nil || errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("err = %v, want an error without ErrUnknownOutcome", err)
	}
	if n := len(c.requests()); n != 0 {
		t.Errorf("%d requests reached the server, want 0", n)
	}
}

func TestMakeRequestNeverSent(t *testing.T) {
	t.Parallel()
	c := canaryClient(adaptertest.ClosedURL(t) + "/graphql?token=" + canaryToken)
	err := c.MakeRequest(t.Context(), testRequest(true), &graphql.Response{})
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("err = %q: a refused connection never sent the mutation, want no ErrUnknownOutcome", err)
	}
	assertNoCanary(t, err)
}

func TestMakeRequestConnectionLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		raw  string
	}{
		{"closed without an answer", ""},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"data\":{\"x\":\"" + canaryPIN},
		{"headers cut short", "HTTP/1.1 200 OK\r\nContent-Ty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fault.RawServer(t, tc.raw)
			c := canaryClient(srv.URL)

			err := c.MakeRequest(t.Context(), testRequest(true), &graphql.Response{Data: &map[string]any{}})
			if !errors.Is(err, reconcile.ErrUnknownOutcome) {
				t.Errorf("mutation: err = %v, want ErrUnknownOutcome", err)
			}
			if err != nil {
				assertNoCanary(t, err)
			}

			err = c.MakeRequest(t.Context(), testRequest(false), &graphql.Response{Data: &map[string]any{}})
			if err == nil || errors.Is(err, reconcile.ErrUnknownOutcome) {
				t.Errorf("query: err = %v, want an error without ErrUnknownOutcome", err)
			}
		})
	}
}

// TestMakeRequestCancelledInFlight cancels a mutation the server has
// received: the outcome is unknown.
func TestMakeRequestCancelledInFlight(t *testing.T) {
	t.Parallel()
	received := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(received)
		<-r.Context().Done()
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-received
		cancel()
	}()
	err := canaryClient(srv.URL).MakeRequest(ctx, testRequest(true), &graphql.Response{})
	if !errors.Is(err, reconcile.ErrUnknownOutcome) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrUnknownOutcome and context.Canceled", err)
	}
}

// TestMakeRequestMalformedStatusLine checks a garbage answer, which net/http
// quotes in its error, does not leak a secret the server echoed.
func TestMakeRequestMalformedStatusLine(t *testing.T) {
	t.Parallel()
	srv := fault.RawServer(t, canaryPIN+" "+canaryToken+"\r\n\r\n")
	err := canaryClient(srv.URL).MakeRequest(t.Context(), testRequest(true), &graphql.Response{})
	if !errors.Is(err, reconcile.ErrUnknownOutcome) {
		t.Errorf("err = %v, want ErrUnknownOutcome", err)
	}
	if err != nil {
		assertNoCanary(t, err)
	}
}

// TestMakeRequestRetries checks the retry policy on a fake clock: queries
// are retried through an outage with backoff, mutations never are after an
// unknown outcome, a 429 holds every request for its Retry-After, and one
// longer than the run waits is not waited out.
func TestMakeRequestRetries(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		write    bool
		answers  []int // status per attempt; the last repeats
		retryHdr string
		wantReqs int
		wantErr  error // nil: success
		minGap   time.Duration
	}{
		{name: "query through two 503s", answers: []int{503, 503, 200}, wantReqs: 3},
		{name: "query, 503 forever", answers: []int{503}, wantReqs: 4, wantErr: reconcile.ErrUnavailable},
		{name: "mutation 503 is not re-sent", write: true, answers: []int{503}, wantReqs: 1, wantErr: reconcile.ErrUnknownOutcome},
		{name: "429 Retry-After 2 then 200", write: true, answers: []int{429, 200}, retryHdr: "2", wantReqs: 2, minGap: 2 * time.Second},
		{name: "429 for a day defers", answers: []int{429}, retryHdr: "86400", wantReqs: 1, wantErr: httpapi.ErrWaitTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := clocktest.New(start)
			var times []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				times = append(times, clock.Now())
				code := tc.answers[min(len(times)-1, len(tc.answers)-1)]
				if code == 429 {
					w.Header().Set("Retry-After", tc.retryHdr)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				w.Write([]byte(`{"data":{}}`))
			}))
			defer srv.Close()
			c := mustClient(rpmsapi.ClientOptions{
				Endpoint: srv.URL, Token: canaryToken, Transport: httpapi.Transport{
					Now:   clock.Now,
					Pacer: httpapi.NewPacer(5, 10, clock),
					Retry: httpapi.Retry{Clock: clock, Rand: func() float64 { return 0.5 }, MaxWait: time.Minute},
				},
			})
			err := c.MakeRequest(t.Context(), testRequest(tc.write), &graphql.Response{})
			if len(times) != tc.wantReqs {
				t.Errorf("%d requests, want %d", len(times), tc.wantReqs)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("err = %v, want success", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.minGap > 0 && len(times) > 1 && times[1].Sub(times[0]) < tc.minGap {
				t.Errorf("second request %s after the first, want at least %s", times[1].Sub(times[0]), tc.minGap)
			}
		})
	}
}
