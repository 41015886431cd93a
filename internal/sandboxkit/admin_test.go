package sandboxkit_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

func TestMount(t *testing.T) {
	t.Parallel()
	clock := sandboxkit.NewClock(time.Date(2026, 3, 28, 23, 30, 0, 0, time.FixedZone("CET", 3600)))
	var log sandboxkit.RequestLog[string]
	log.Append("first")
	log.Append("second")
	mux := http.NewServeMux()
	sandboxkit.Mount(mux, sandboxkit.Admin{Routes: "the list\n", Clock: clock, ClockView: sandboxkit.TodayView, NotFoundHint: "; API at /api"}, &log)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, strings.TrimSpace(string(b))
	}
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/_sandbox/", "", 200, "the list"},
		{"GET", "/_sandbox/clock", "", 200, `{"now":"2026-03-28T23:30:00+01:00","today":"2026-03-28"}`},
		{"POST", "/_sandbox/clock", `{"advance":"1h"}`, 200, `{"now":"2026-03-29T00:30:00+01:00","today":"2026-03-29"}`},
		{"POST", "/_sandbox/clock", `{"now":"2026-04-01T10:00:00Z"}`, 200, `{"now":"2026-04-01T10:00:00Z","today":"2026-04-01"}`},
		{"POST", "/_sandbox/clock", `{}`, 400, `{"error":"give exactly one of \"now\" (RFC 3339) or \"advance\" (Go duration, e.g. \"36h\")"}`},
		{"POST", "/_sandbox/clock", `{"now":"tomorrow"}`, 400, `{"error":"now: want RFC 3339, e.g. 2026-03-28T12:00:00Z"}`},
		{"POST", "/_sandbox/clock", `{"advance":"1 day"}`, 400, `{"error":"advance: want a Go duration, e.g. \"36h\""}`},
		{"POST", "/_sandbox/clock", `{"now":"x","pin":"1234"}`, 400, `{"error":"invalid JSON body: unknown field \"pin\""}`},
		{"GET", "/_sandbox/requests", "", 200, `{"count":2,"requests":["first","second"]}`},
		{"DELETE", "/_sandbox/requests", "", 200, `{"cleared":2}`},
		{"GET", "/_sandbox/requests", "", 200, `{"count":0,"requests":[]}`},
		{"GET", "/_sandbox/nothing", "", 404, `{"error":"no route GET /_sandbox/nothing (GET /_sandbox/ lists the admin routes; API at /api)"}`},
	} {
		if code, got := call(c.method, c.path, c.body); code != c.code || got != c.want {
			t.Errorf("%s %s %s: %d %s, want %d %s", c.method, c.path, c.body, code, got, c.code, c.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l := sandboxkit.NewLimiter(sandboxkit.Limits{PerSecond: 5, DailyCap: 11}, func() time.Time { return now })
	for i := range sandboxkit.SeedBurst {
		if secs, msg := l.Admit("a"); secs != 0 {
			t.Fatalf("request %d of the default burst refused: %s", i+1, msg)
		}
	}
	if secs, msg := l.Admit("a"); secs != 1 || msg != "rate limited: 5 requests per second, burst 10; retry after 1 s" {
		t.Errorf("over the burst: %d %q", secs, msg)
	}
	now = now.Add(time.Second)
	l.Admit("a")
	if secs, msg := l.Admit("a"); secs != 43199 || msg != "rate limited: daily cap of 11 requests reached; retry after 43199 s" {
		t.Errorf("over the cap: %d %q", secs, msg)
	}
	l.WithMessage(func(r sandboxkit.Refusal, lim sandboxkit.Limits) string { return "no" })
	if _, msg := l.Admit("a"); msg != "no" {
		t.Errorf("WithMessage: %q", msg)
	}
}

func TestFillSeedLimits(t *testing.T) {
	t.Parallel()
	rate, burst, daily := 0.0, 3, 0
	sandboxkit.FillSeedLimits(&rate, &burst, &daily)
	if rate != 5 || burst != 3 || daily != 10000 {
		t.Errorf("got %g %d %d, want 5 3 10000", rate, burst, daily)
	}
}

func TestRates(t *testing.T) {
	t.Parallel()
	if r := (sandboxkit.Rates{Burst: 3}).WithSeedLimits(); r.RatePerSecond != 5 || r.Burst != 3 || r.DailyCap != 10000 {
		t.Errorf("WithSeedLimits: got %g %d %d, want 5 3 10000", r.RatePerSecond, r.Burst, r.DailyCap)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l := sandboxkit.Rates{RateNow: func() time.Time { return now }, RatePerSecond: 1, Burst: 1, DailyCap: 3}.Limiter()
	var limits sandboxkit.Limits
	l.WithMessage(func(_ sandboxkit.Refusal, lim sandboxkit.Limits) string { limits = lim; return "" })
	l.Admit("a")
	if secs, _ := l.Admit("a"); secs != 1 || limits != (sandboxkit.Limits{PerSecond: 1, Burst: 1, DailyCap: 3}) {
		t.Errorf("Limiter: over the burst waits %d s under %+v, want 1 s under 1/s, burst 1, cap 3", secs, limits)
	}
	if !l.Now().Equal(now) {
		t.Errorf("Limiter: clock reads %v, want RateNow's %v", l.Now(), now)
	}
}
