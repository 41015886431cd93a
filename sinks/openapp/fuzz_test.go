package openapp_test

// Fuzz targets for the OpenApp answer decoders (row 8 of the README's
// fault matrix): Sink.Apply of a create and of an update through a real HTTP
// server that answers with the fuzzed bytes. The seed corpus runs in plain
// `go test`; fuzz with
//
//	go test -run='^$' -fuzz='^FuzzOpenAppResponse$' -fuzztime=30s ./sinks/openapp
//	go test -run='^$' -fuzz='^FuzzOpenAppHTTP$' -fuzztime=30s ./sinks/openapp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
)

const (
	// Canaries: the API key (config), the token of the invite an update
	// concerns (request), and the token a create returns (answer); none
	// may reach an error.
	fzKey         = "key-FZCANARY-0b7d"
	fzInvite      = "oat_FzCanaryInviteQ7x9ZmLk2W"
	fzAnswerToken = "oat_FzCanaryAnswerT0kenAbCdEf"
	fzCap         = 4096
	fzAttempts    = 2
)

func fzSink(t testing.TB, srv *fault.Canned) *openapp.Sink {
	o := options(srv.URL)
	o.APIKey = fzKey
	o.Transport = adaptertest.FuzzLimits(o.Transport, fzCap, fzAttempts, t0)
	return newSink(t, o)
}

// fzActions are a create and an update of an invite whose token is
// fzInvite.
func fzActions() (create, update *reconcile.Action) {
	create = action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-03", "")
	update = action(reconcile.OpUpdate, "s2", "r102", "2026-06-01", "2026-06-04", "01J0FZLINK")
	update.Cred.Secret = fzInvite
	update.Cred.QRData = reconcile.Secret("https://guest.example/i/" + fzInvite)
	return create, update
}

const fzValid = `{"invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK"}`

func fzSeeds() [][]byte {
	huge := `{"invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK","portals":[` +
		strings.Repeat(`{"id":"door-101","name":"Room 101 door, second floor, east wing"},`, 80) + `{}]}`
	seeds := []string{
		fzValid,
		`<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>nginx</p></body></html>`,
		``,
		" ",
		fzValid[:len(fzValid)/2],
		`null`,
		`{}`,
		huge,
		`{"invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK","guest_url":"https://x","portal_ids":["a"],"created_at":"2026-05-30T10:00:00Z"}`,
		`{"invite_token":12345,"invite_link_id":true}`,
		`{"invite_token":"` + fzAnswerToken + `","invite_link_id":["01J0FZNEWLINK"]}`,
		`{"invite_token":"` + fzAnswerToken + `"}`,
		`{"invite_link_id":"01J0FZNEWLINK"}`,
		`{"invite_token":"","invite_link_id":""}`,
		`[{"invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK"}]`,
		`{"data":{"invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK"}}`,
		`{"__typename":"AccessInviteV2","invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK"}`,
		`{"error":"invite ` + fzInvite + ` for key ` + fzKey + ` is invalid"}`,
		`{"error":{"message":"token ` + fzAnswerToken + ` rejected"}}`,
		`"` + fzAnswerToken + `"`,
		`{"invite_token":"` + fzAnswerToken + `","invite_link_id":"01J0FZNEWLINK"`,
		strings.Repeat(`[`, 400) + strings.Repeat(`]`, 400),
		"{\"invite_token\":\"a\\ud800b\",\"invite_link_id\":\"\\u0000\"}",
	}
	return fault.Bytes(seeds...)
}

// fzRun applies a create, then an update, each answered with status, ct
// and body, and checks both.
func fzRun(t *testing.T, srv *fault.Canned, status int, ct string, body []byte) {
	s := fzSink(t, srv)
	create, update := fzActions()
	if status == http.StatusNoContent {
		body = nil // net/http sends no body with a 204
	}
	for _, a := range []*reconcile.Action{create, update} {
		srv.Reset()
		out, err := s.Apply(t.Context(), []*reconcile.Action{a})
		fzCheck(t, srv, a, status, ct, body, out, err)
	}
}

func FuzzOpenAppResponse(f *testing.F) {
	fault.FuzzBody(f, fzSeeds(), http.StatusCreated, "application/json", fzRun)
}

func FuzzOpenAppHTTP(f *testing.F) {
	cts := []string{"application/json", "text/html", "application/problem+json", "", "application/json; charset=utf-8", "text/plain", "application/json; x=\"" + fzKey + "\""}
	statuses := []int{201, 200, 204, 202, 400, 401, 403, 404, 409, 422, 429, 500, 503, 302}
	f.Add(uint16(http.StatusCreated-200), `text/html; charset="`+fzKey+`"`, []byte(fzValid))
	f.Add(uint16(0), "\x7f"+fzKey, []byte(fzValid))
	f.Add(uint16(http.StatusNoContent-200), "0", []byte("0"))
	fault.FuzzAnswer(f, fzSeeds(), statuses, cts, fzRun)
}

func fzCheck(t *testing.T, srv *fault.Canned, a *reconcile.Action, status int, ct string, body []byte, out []reconcile.Outcome, err error) {
	t.Helper()
	reqs := srv.Requests()
	errs := sinktest.Errs(t, string(a.Op)+": ", 1, out, err)
	leak := adaptertest.Leaks(t, string(a.Op), errs, "openapp: ", fzKey, fzInvite, fzAnswerToken)
	// No retry loop: a create is sent once; an update again only after a
	// 5xx or a 429, at most fzAttempts times.
	retriable := status >= 500 || status == http.StatusTooManyRequests || status == 0
	if len(reqs) != 1 && !(retriable && len(reqs) <= fzAttempts && (a.Op != reconcile.OpCreate || status == http.StatusTooManyRequests)) {
		t.Errorf("%s: %d requests (HTTP %d)", a.Op, len(reqs), status)
	}
	sinktest.Read2xx(t, string(a.Op)+": ", status, ct, body, fzCap, true, err)
	is2xx := status >= 200 && status <= 299
	if err == nil && len(out) == 1 {
		o := out[0]
		switch {
		case !is2xx && o.Err == nil:
			t.Errorf("%s: HTTP %d counted as done", a.Op, status)
		case a.Op == reconcile.OpCreate && o.Err == nil && (o.RemoteID == "" || o.Secret == ""):
			t.Errorf("create done without a link id or token: %+v", o)
		case a.Op != reconcile.OpCreate && (o.RemoteID != "" || o.Secret != ""):
			t.Errorf("%s returned an id or token", a.Op)
		}
	}
	if !t.Failed() && len(leak) > 0 && status != 0 && strings.Contains(ct, fzKey) {
		t.Fatal("BUG: openapp quotes the raw Content-Type header of an answer in its error; see TestOpenAppQuotesContentType")
	}
	adaptertest.Leaked(t, status, leak, "BUG: openapp puts net/http's transport error, which quotes a malformed answer line, in its error; see TestOpenAppTransportErrorQuotesAnswer")
}

// TestOpenAppQuotesContentType: a 2xx answer whose Content-Type is not
// JSON is reported with the header quoted whole (%q of the raw header),
// parameters included, so whatever a server or proxy puts there reaches
// logs and the report. (Guestway and the key box quote only the parsed
// media type.)
func TestOpenAppQuotesContentType(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	create, _ := fzActions()
	srv.Answer(http.StatusCreated, `text/html; charset="`+fzKey+`"`, []byte(fzValid))
	_, err := fzSink(t, srv).Apply(t.Context(), []*reconcile.Action{create})
	if err == nil || strings.Contains(err.Error(), fzKey) {
		t.Errorf("err = %v, want an error without the header's parameters", err)
	}
}

// TestFuzzHarnessDecodesValid makes sure the fuzz harness reaches the
// decoder: the valid seed decodes.
func TestFuzzHarnessDecodesValid(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	s := fzSink(t, srv)
	create, update := fzActions()
	srv.Answer(http.StatusCreated, "application/json", []byte(fzValid))
	out, err := s.Apply(t.Context(), []*reconcile.Action{create})
	if err != nil || len(out) != 1 || out[0].Err != nil || out[0].RemoteID != "01J0FZNEWLINK" || out[0].Secret.Reveal() != fzAnswerToken {
		t.Fatalf("create: %+v, %v", out, err)
	}
	srv.Answer(http.StatusOK, "application/json", []byte(`{}`))
	out, err = s.Apply(t.Context(), []*reconcile.Action{update})
	if err != nil || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("update: %+v, %v", out, err)
	}
}

// TestOpenAppTransportErrorQuotesAnswer: an answer that is not HTTP (or
// has a malformed header line) makes net/http fail with an error that
// quotes the line; openapp's scrubURL removes only the URL, so whatever
// the server sent, a secret it echoed included, reaches the error. (The
// 3RPMS client strips quoted text from transport errors for this reason.)
func TestOpenAppTransportErrorQuotesAnswer(t *testing.T) {
	t.Parallel()
	raws := fault.NotHTTP(fzKey, "HTTP/1.1 201 Created", "Content-Type", fzInvite)
	fault.NotQuoted(t, raws, []string{fzKey, fzInvite}, func(url string) []error {
		o := options(url)
		o.APIKey = fzKey
		o.Retry = httpapi.Retry{Attempts: 1}
		create, update := fzActions()
		var errs []error
		for _, a := range []*reconcile.Action{create, update} {
			_, err := newSink(t, o).Apply(t.Context(), []*reconcile.Action{a})
			errs = append(errs, err)
		}
		return errs
	})
}
