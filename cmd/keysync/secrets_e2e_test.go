package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// canaries are secrets planted everywhere keysync handles one: config
// (via the environment), request headers, request bodies (PINs, codes,
// compartments, QR links) and GraphQL variables.
var canaries = map[string]string{
	"KEYSYNC_3RPMS_TOKEN":          "tok3rpmsCANARY7731",
	"KEYSYNC_OPENAPP_API_KEY":      "oakeyCANARY7732",
	"KEYSYNC_KEYBOX_PASSWORD":      "kbpassCANARY7733",
	"KEYSYNC_GUESTWAY_PARTNER_KEY": "gwpartnerCANARY7734",
	"KEYSYNC_GUESTWAY_TOKEN":       "gw_tokenCANARY7735",
	"KEYSYNC_3RPMS_WEBHOOK_SECRET": "whsecretCANARY7736",
}

// TestSecretsNeverLeak runs backfill, a faulty run and the next nights
// with debug logging, text and JSON output, and checks that no token, key,
// password, compartment, PIN, key-box code or invite token appears in any
// of it — even when servers echo them back in error bodies. Only
// `plan --show-secrets` shows PINs.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]string{"r101": "pin", "r201": "qr", "r301": "key_storage"},
		map[string]string{"L1": "qr", "L2": "key_storage"})
	w.sb.rpms.AddIntegration(canaries["KEYSYNC_3RPMS_TOKEN"], sandboxIntegration)
	w.sb.openapp.AddAPIKey(canaries["KEYSYNC_OPENAPP_API_KEY"], sandboxOrg)
	w.sb.keybox.AddUser(sandboxBoxUser, canaries["KEYSYNC_KEYBOX_PASSWORD"])
	w.sb.guestway.AddPartnerKey(canaries["KEYSYNC_GUESTWAY_PARTNER_KEY"])
	w.sb.guestway.AddToken(canaries["KEYSYNC_GUESTWAY_TOKEN"], gwsandbox.ScopeReservationsRead, gwsandbox.ScopeAccessesRead)
	// The compartment is config: give r301 a canary one.
	cfg, _ := os.ReadFile(w.cfg)
	if err := os.WriteFile(w.cfg, bytes.Replace(cfg, []byte("compartment: C301"), []byte("compartment: CMPCANARY9"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	w.hotelStay("s1", "r101", 0, 2)
	w.hotelStay("s2", "r201", 0, 2)
	w.hotelStay("s3", "r301", 1, 3)
	for _, r := range []gwsandbox.Reservation{
		{ID: "G1", Status: "confirmed", ArrivalDate: day(0), DepartureDate: day(2), ListingID: "L1", GuestName: "Ann"},
		{ID: "G2", Status: "confirmed", ArrivalDate: day(1), DepartureDate: day(3), ListingID: "L2", GuestName: "Bob"},
	} {
		if err := w.sb.guestway.AddReservation(r); err != nil {
			t.Fatal(err)
		}
	}
	w.addAccess("G1", gwsandbox.Access{ID: "A1", LockID: "l1", LockName: "Door", PIN: "LOCKPIN739"})

	var out bytes.Buffer
	getenv := func(k string) string {
		if v, ok := canaries[k]; ok {
			return v
		}
		if k == "KEYSYNC_LOG_LEVEL" {
			return "debug"
		}
		return ""
	}
	run := func(args ...string) {
		t.Helper()
		argv := append(append([]string{}, args...), "--config", w.cfg, "--now", w.now.Format(time.RFC3339))
		err := Run(context.Background(), argv, &out, &out, getenv)
		if err != nil {
			out.WriteString(err.Error())
		}
	}
	run("plan", "--json")
	run("backfill")
	run("run", "--json")

	// Servers that echo what they were sent: every error body quotes the
	// request's secrets and headers.
	w.sb.middleware = nil
	var sent []string // secret values keysync put in request bodies
	secretField := regexp.MustCompile(`"(pin|qrData|compartment)":"([^"]+)"`)
	echo := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			for _, m := range secretField.FindAllSubmatch(body, -1) {
				sent = append(sent, string(m[2]))
			}
			query := r.URL.Path == "/graphql" && !bytes.Contains(body, []byte("mutation"))
			if (r.Method == http.MethodPost || r.Method == http.MethodPut) && !query {
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(http.StatusBadRequest)
				rw.Write([]byte(`{"error":"bad request ` + strings.ReplaceAll(string(body), `"`, `'`) + ` auth ` + r.Header.Get("Authorization") + `","errors":[{"message":"echo ` + strings.ReplaceAll(string(body), `"`, `'`) + `"}]}`))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(rw, r)
		})
	}
	w.sb.stop()
	w.sb.middleware = echo
	base := w.sb.base
	if err := w.sb.serve(strings.TrimPrefix(base, "http://")); err != nil {
		t.Fatal(err)
	}
	w.hotelStay("s4", "r101", 3, 5)
	if err := w.sb.rpms.ChangeDates("s3", day(1), day(4)); err != nil {
		t.Fatal(err)
	}
	run("run")
	run("run", "--json")
	w.sb.stop()
	w.sb.middleware = nil
	if err := w.sb.serve(strings.TrimPrefix(base, "http://")); err != nil {
		t.Fatal(err)
	}
	w.setNow(w.now.Add(72 * time.Hour))
	run("run")
	// The commands that open the sealed secrets print none of them.
	// (run appends --now, which they do not take.)
	for _, args := range [][]string{{"rekey"}, {"show", "--stay", "s1"}, {"show", "--stay", "G2"}, {"status"}} {
		if err := Run(context.Background(), append(args, "--config", w.cfg), &out, &out, getenv); err != nil {
			out.WriteString(err.Error())
		}
	}
	run("run")

	if len(sent) == 0 {
		t.Error("no PIN reached the echoing servers; the scenario did not exercise them")
	}
	secrets := append([]string{"CMPCANARY9", "LOCKPIN739"}, sent...)
	for _, v := range canaries {
		secrets = append(secrets, v)
	}
	for _, k := range w.sb.rpms.Keys() {
		secrets = append(secrets, k.PIN, k.QRData)
	}
	for _, a := range w.sb.keybox.Accesses() {
		secrets = append(secrets, a.Code)
	}
	for _, i := range w.sb.openapp.Invites() {
		secrets = append(secrets, i.Token)
	}
	text := out.String()
	for _, want := range []string{"mutation KeysyncBatch: HTTP 400", "openapp", "keybox", "rejected as invalid"} {
		if !strings.Contains(text, want) {
			t.Errorf("the echoing servers' errors were not exercised: no %q in the output", want)
		}
	}
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(text, s) {
			i := strings.Index(text, s)
			t.Errorf("secret %q leaked: …%s…", s[:2]+"…", text[max(0, i-80):min(len(text), i+len(s)+20)])
		}
	}

	// --show-secrets is the one place PINs appear.
	out.Reset()
	w.hotelStay("s5", "r101", 4, 6)
	run("plan", "--show-secrets")
	if !strings.Contains(out.String(), "PIN") || !strings.Contains(out.String(), pinWhenApplied) {
		t.Errorf("plan --show-secrets shows no PIN column, or no %q for the new key:\n%s", pinWhenApplied, out.String())
	}
	// The PIN the run issues is not one the plan printed: the plan's were
	// drawn for show and thrown away.
	planned := out.String()
	out.Reset()
	run("run")
	for _, k := range w.sb.rpms.Keys() {
		if k.PIN != "" && strings.Contains(planned, k.PIN) {
			t.Errorf("plan --show-secrets printed PIN of key %s, which the run issued", k.ID)
		}
	}
}

// TestFilesHoldingSecretsArePrivate checks the state file is created 0600
// and that a config readable by others draws a warning.
func TestFilesHoldingSecretsArePrivate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, "")
	h.stay("s1", "r101", 0, 2)
	if err := os.Chmod(h.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, stderr := h.run("backfill")
	if !strings.Contains(stderr, "readable by other users") {
		t.Errorf("no warning for a world-readable config:\n%s", stderr)
	}
	fi, err := os.Stat(h.cfg.State)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
}
