package sandboxkit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit"
)

func TestRoute(t *testing.T) {
	t.Parallel()
	admin := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	api := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }
	for path, want := range map[string]int{
		"/_sandbox": http.StatusTeapot, "/_sandbox/": http.StatusTeapot, "/_sandbox/clock": http.StatusTeapot,
		"/": http.StatusAccepted, "/_sandboxes": http.StatusAccepted, "/v2/_sandbox/": http.StatusAccepted,
	} {
		rec := httptest.NewRecorder()
		sandboxkit.Route(rec, httptest.NewRequest(http.MethodGet, path, nil), admin, api)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}

func TestAnswer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                    string
		status, retryAfter      int
		body                    any
		wantRetry, wantCT, want string
	}{
		{"JSON", http.StatusCreated, 0, map[string]string{"a": "<b>"}, "", "application/json", "{\"a\":\"<b>\"}\n"},
		{"429", http.StatusTooManyRequests, 3, map[string]string{"error": "slow down"}, "3", "application/json", "{\"error\":\"slow down\"}\n"},
		{"no body", http.StatusNoContent, 0, nil, "", "", ""},
	} {
		rec := httptest.NewRecorder()
		sandboxkit.Answer(rec, c.status, c.body, c.retryAfter)
		if rec.Code != c.status || rec.Header().Get("Retry-After") != c.wantRetry || rec.Header().Get("Content-Type") != c.wantCT || rec.Body.String() != c.want {
			t.Errorf("%s: %d, Retry-After %q, %q, %q; want %d, %q, %q, %q", c.name, rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"), rec.Body.String(), c.status, c.wantRetry, c.wantCT, c.want)
		}
	}
}
