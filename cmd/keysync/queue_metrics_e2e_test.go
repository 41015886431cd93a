package main

import (
	"testing"
	"time"
)

// TestWebhookQueueShownInMetrics: while another process's run holds the
// state file, serve's /metrics shows the webhook event waiting and how
// long it has waited; once it has run, none waits.
func TestWebhookQueueShownInMetrics(t *testing.T) {
	t.Parallel()
	_, ss, unlock := keyDeletedWhileLocked(t)
	time.Sleep(2 * time.Second)
	m := ss.metrics()
	if m["keysync_webhook_events_pending"] != 1 || m["keysync_webhook_events_oldest_seconds"] < 1.5 {
		t.Errorf("with the state file locked: pending %v, oldest %v s; want the deletion's event, waiting since it came (2 s)",
			m["keysync_webhook_events_pending"], m["keysync_webhook_events_oldest_seconds"])
	}
	unlock()
	ss.settle("the event after the lock")
	if m := ss.metrics(); m["keysync_webhook_events_pending"] != 0 || m["keysync_webhook_events_oldest_seconds"] != 0 {
		t.Errorf("after its run: pending %v, oldest %v s; want 0 and 0", m["keysync_webhook_events_pending"], m["keysync_webhook_events_oldest_seconds"])
	}
}
