package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestWebhookCountersStartAtZero: serve's /metrics shows every result of
// keysync_webhooks_total at 0 before any delivery. A series born at its
// first delivery has no earlier sample, so increase() over it (the
// README's KeysyncWebhooksRefused) does not see that delivery: a single
// refusal, or a queue that failed once, never raised the alert.
func TestWebhookCountersStartAtZero(t *testing.T) {
	t.Parallel()
	l := newListener(nil, &Config{}, slog.New(slog.DiscardHandler), nil, &sync.Mutex{})
	rec := httptest.NewRecorder()
	l.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, result := range []string{"queued", "ignored", "bad_signature", "unknown_property", "too_large", "bad_request", "queue_failed"} {
		if line := `keysync_webhooks_total{result="` + result + `"} 0`; !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("/metrics before any delivery lacks %q", line)
		}
	}
}
