package keybox_test

// Fuzz targets for the key-box create answer decoder (row 8 of the
// README's fault matrix): Sink.Apply of a create through a real HTTP
// server that answers with the fuzzed bytes. The seed corpus runs in plain
// `go test`; fuzz with
//
//	go test -run='^$' -fuzz='^FuzzKeyBoxResponse$' -fuzztime=30s ./sinks/keybox
//	go test -run='^$' -fuzz='^FuzzKeyBoxHTTP$' -fuzztime=30s ./sinks/keybox

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/adaptertest"
	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit/fault"
	"github.com/keysync/keysync/internal/sinktest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/keybox"
)

const (
	// Canaries: the password and the compartment (config) and the booking
	// code an answer carries; none may reach an error.
	fzPass        = "fz-CANARY-pass-31"
	fzCompartment = "FZCMP9"
	fzCode        = "90817263"
	fzCap         = 4096
	fzAttempts    = 2
)

func fzSink(t testing.TB, srv *fault.Canned) *keybox.Sink {
	o := options(srv.URL, lj)
	o.Password = fzPass
	o.Rooms = map[string]keybox.KeyRef{"204": {ID: "K1", Compartment: fzCompartment}}
	o.Transport = adaptertest.FuzzLimits(o.Transport, fzCap, fzAttempts, t0)
	return newSink(t, o)
}

func fzCreate() *reconcile.Action {
	return create("s1", "204", time.Date(2026, 3, 21, 13, 0, 0, 0, time.UTC), time.Date(2026, 3, 23, 11, 0, 0, 0, time.UTC), "Ada Guest")
}

const fzValid = `{"id":"acc_7731","code":"` + fzCode + `"}`

func fzSeeds() [][]byte {
	huge := `{"id":"acc_7731","code":"` + fzCode + `","history":[` +
		strings.Repeat(`{"at":"2026-03-21T13:00:00Z","event":"created","by":"keysync"},`, 80) + `{}]}`
	seeds := []string{
		fzValid,
		`<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>Maintenance</body></html>`,
		``,
		"\n",
		fzValid[:len(fzValid)/2],
		`null`,
		`{}`,
		huge,
		`{"id":7731,"code":` + fzCode + `}`,
		`{"id":"acc_7731","code":"` + fzCode + `","key":{"id":"K1","compartment":"` + fzCompartment + `"},"visitorName":"Ada","extra":[1]}`,
		`{"id":true,"code":"` + fzCode + `"}`,
		`{"id":-1,"code":1.5e3}`,
		`{"id":"acc_7731","code":{"value":"` + fzCode + `"}}`,
		`{"id":"acc_7731"}`,
		`{"code":"` + fzCode + `"}`,
		`{"id":null,"code":null}`,
		`{"id":"","code":"` + fzCode + `"}`,
		`[{"id":"acc_7731","code":"` + fzCode + `"}]`,
		`{"__typename":"AccessV3","id":"acc_7731","code":"` + fzCode + `"}`,
		`{"data":{"id":"acc_7731","code":"` + fzCode + `"}}`,
		`{"message":"code ` + fzCode + ` for compartment ` + fzCompartment + ` (auth keysync:` + fzPass + `) rejected"}`,
		`{"errors":[{"message":"pass ` + fzPass + `"}],"error":{"message":"code ` + fzCode + `"}}`,
		`{"id":"acc_7731","code":"` + fzCode + `"`,
		strings.Repeat(`{"a":`, 300) + `1` + strings.Repeat(`}`, 300),
		"{\"id\":\"\\ud800\",\"code\":\"\\u0000\"}",
		`{"id":1e400}`,
		`{"id":00012}`,
	}
	return fault.Bytes(seeds...)
}

// fzRun applies a create to srv, which answers status, ct and body, and
// checks the outcome.
func fzRun(t *testing.T, srv *fault.Canned, status int, ct string, body []byte) {
	out, err := fzSink(t, srv).Apply(t.Context(), []*reconcile.Action{fzCreate()})
	if status == http.StatusNoContent {
		body = nil // net/http sends no body with a 204
	}
	fzCheck(t, srv, status, ct, body, out, err)
}

func FuzzKeyBoxResponse(f *testing.F) {
	fault.FuzzBody(f, fzSeeds(), http.StatusCreated, "application/json", fzRun)
}

func FuzzKeyBoxHTTP(f *testing.F) {
	cts := []string{"application/json", "text/html", "application/vnd.api+json", "", "application/json; charset=utf-8", "text/plain; charset=\"" + fzPass + "\""}
	statuses := []int{201, 200, 204, 202, 400, 401, 403, 404, 409, 410, 422, 429, 500, 503, 302, 418}
	f.Add(uint16(1), "\x7f"+fzPass, []byte(fzValid))
	fault.FuzzAnswer(f, fzSeeds(), statuses, cts, fzRun)
}

func fzCheck(t *testing.T, srv *fault.Canned, status int, ct string, body []byte, out []reconcile.Outcome, err error) {
	t.Helper()
	reqs := srv.Requests()
	errs := sinktest.Errs(t, "", 1, out, err)
	leak := adaptertest.Leaks(t, "", errs, "keybox", fzPass, fzCompartment, fzCode)
	// No retry loop: a create is sent once, again only after a 429.
	if len(reqs) != 1 && !(status == http.StatusTooManyRequests && len(reqs) <= fzAttempts) {
		t.Errorf("%d requests for one create (HTTP %d)", len(reqs), status)
	}
	sinktest.Read2xx(t, "", status, ct, body, fzCap, false, err)
	is2xx := status >= 200 && status <= 299
	if err == nil && len(out) == 1 {
		o := out[0]
		if o.Err == nil && (!is2xx || o.RemoteID == "") {
			t.Errorf("create done (HTTP %d) without an access id: %+v", status, o)
		}
	}
	adaptertest.Leaked(t, status, leak, "BUG: keybox puts net/http's transport error, which quotes a malformed answer line, in its error; see TestKeyBoxTransportErrorQuotesAnswer")
}

// TestFuzzHarnessDecodesValid makes sure the fuzz harness reaches the
// decoder: the valid seed decodes.
func TestFuzzHarnessDecodesValid(t *testing.T) {
	t.Parallel()
	srv := fault.NewCanned(t)
	srv.Answer(http.StatusCreated, "application/json", []byte(fzValid))
	out, err := fzSink(t, srv).Apply(t.Context(), []*reconcile.Action{fzCreate()})
	if err != nil || len(out) != 1 || out[0].Err != nil || out[0].RemoteID != "acc_7731" || out[0].Secret.Reveal() != fzCode {
		t.Fatalf("valid seed: %+v, %v", out, err)
	}
}

// TestKeyBoxTransportErrorQuotesAnswer: an answer that is not HTTP (or
// has a malformed header line) makes net/http fail with an error that
// quotes the line; keybox's scrubURL removes only the URL, so whatever the
// server sent, a secret it echoed included, reaches the error. (The 3RPMS
// client strips quoted text from transport errors for this reason.)
func TestKeyBoxTransportErrorQuotesAnswer(t *testing.T) {
	t.Parallel()
	raws := fault.NotHTTP(fzPass, "HTTP/1.1 201 Created", "X-Code", fzCode)
	fault.NotQuoted(t, raws, []string{fzPass, fzCode}, func(url string) []error {
		o := options(url, lj)
		o.Password = fzPass
		o.Retry = httpapi.Retry{Attempts: 1}
		_, err := newSink(t, o).Apply(t.Context(), []*reconcile.Action{fzCreate()})
		return []error{err}
	})
}
