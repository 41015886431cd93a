package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// TestTokensMeteredTogether breaks an assumption the 3RPMS Room Access Key
// API leaves open: keysync paces each token on its own, and here two
// hotels on their own tokens sit behind one API host that meters every
// token as one caller (their sandboxes share one limiter with the API's
// limits). The first run of both, together, still keys every stay and
// exits 0; once 429s came back on both tokens, keysync paces the host's
// tokens as one, says so, and is refused only a few times in all. The
// limiters and keysync's pacers share one fake clock.
func TestTokensMeteredTogether(t *testing.T) {
	t.Parallel()
	fake := clocktest.New(t0)
	limits := sandboxkit.Limits{}
	sandboxkit.FillSeedLimits(&limits.PerSecond, &limits.Burst, &limits.DailyCap)
	shared := sandboxkit.NewLimiter(limits, fake.Now)
	dir := t.TempDir()
	yaml := fmt.Sprintf("state: %s\nproperties:\n", filepath.Join(dir, "keysync.db"))
	// One host serves both hotels, each under a path of its own.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var sbs []*sandbox.Server
	for _, name := range []string{"hotel", "annex"} {
		token := name + "-token"
		sb := sandbox.New(sandbox.Options{Integrations: map[string]string{token: ourID}, Now: t0, SharedLimiter: shared})
		for r := range 40 {
			room := fmt.Sprintf("r%d", 101+r)
			sb.AddRoom(room, fmt.Sprint(101+r))
			if err := sb.AddStay(sandbox.Stay{ID: fmt.Sprintf("%s-%d", name, r), RoomID: room, Arrival: day(r % 3), Departure: day(r%3 + 2)}); err != nil {
				t.Fatal(err)
			}
		}
		mux.Handle("/"+name+"/", http.StripPrefix("/"+name, sb))
		sbs = append(sbs, sb)
		// Two stays a page: 20 reads each, the two together far more
		// than the host's burst.
		yaml += fmt.Sprintf("  - name: %s\n    timezone: Europe/Ljubljana\n    threerpms:\n      endpoint: %s/%s/graphql\n      token: %s\n      page_size: 2\n    default_method: pin\n",
			name, srv.URL, name, token)
	}
	cfg := filepath.Join(dir, "keysync.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &environment{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: fake.Now, clock: fake,
		retry: httpapi.Retry{Clock: fake, Rand: func() float64 { return 0.5 }}}
	err := env.run(context.Background(), []string{"backfill", "--config", cfg, "--now", fake.Now().Format(time.RFC3339Nano)})
	if code := exitCode(err); code != ExitOK {
		t.Fatalf("backfill exited %d: %v\n%s", code, err, errb.String())
	}
	refused, sent, tokensRefused := 0, 0, 0
	for _, sb := range sbs {
		n := 0
		for _, q := range sb.Requests() {
			sent++
			if q.Status == http.StatusTooManyRequests {
				n++
			}
		}
		refused += n
		if n > 0 {
			tokensRefused++
		}
		for _, s := range sb.Stays() {
			if s.KeyID == "" {
				t.Errorf("stay %s not keyed", s.ID)
			}
		}
	}
	t.Logf("%d requests, %d refused (to %d token(s)); the clock moved %s", sent, refused, tokensRefused, fake.Now().Sub(t0))
	if refused > 6 {
		t.Errorf("%d requests refused, want at most 6: after 429s to both tokens the host's tokens are paced as one", refused)
	}
	// The fake clock's order of events decides whether both tokens met a
	// 429 before their bursts were spent; keysync's verdict must follow.
	if said := strings.Contains(errb.String(), "pacing them as one"); said != (tokensRefused == 2) {
		t.Errorf("429s to %d token(s); keysync said it paces the host's tokens as one: %v\n%s", tokensRefused, said, errb.String())
	}
}
