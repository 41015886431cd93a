package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/keysync/keysync/internal/webhook"
)

// Webhooks: once given a URL and a secret (SetWebhook, or POST
// /_sandbox/webhook), the sandbox posts a signed event, in the shape of
// package webhook, for every change the admin and Go APIs make: a stay
// added (room_stay.created), its dates or room changed (room_stay.updated),
// deleted (room_stay.deleted), a reservation cancelled or re-activated
// (reservation.updated), and a key deleted by anyone, 3RPMS's cleanup
// included (room_access_key.deleted). Deliveries go one at a time, in
// order, from a goroutine that exists only while there is something to
// send; a failed delivery is retried with a growing pause, up to
// webhookAttempts times.

// webhookAttempts bounds the deliveries of one event.
const webhookAttempts = 6

// Delivery is one event the sandbox sent, or gave up on.
type Delivery struct {
	Event    string `json:"event"`
	ID       string `json:"id"`
	Attempts int    `json:"attempts"`
	// Status is the last answer's HTTP status; 0 when none came.
	Status    int  `json:"status"`
	Delivered bool `json:"delivered"`
}

type webhooks struct {
	mu      sync.Mutex
	url     string
	secret  string
	queue   []webhook.Event
	sending bool
	log     []Delivery
	client  *http.Client
	// backoff is the pause before the n-th retry.
	backoff func(n int) time.Duration
}

// SetWebhook makes the sandbox post its events to url, signed with secret;
// an empty url stops it.
func (s *Server) SetWebhook(url, secret string) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.url, s.hooks.secret = url, secret
	if s.hooks.client == nil {
		s.hooks.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.hooks.backoff == nil {
		s.hooks.backoff = func(n int) time.Duration { return min(50*time.Millisecond<<n, 2*time.Second) }
	}
}

// Deliveries returns the events sent so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return append([]Delivery(nil), s.hooks.log...)
}

// emit queues an event when a webhook is set.
func (w *webhooks) emit(name, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.url == "" {
		return
	}
	w.queue = append(w.queue, webhook.New(name, id))
	if !w.sending {
		w.sending = true
		go w.send()
	}
}

// send delivers the queue in order and returns when it is empty.
func (w *webhooks) send() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 || w.url == "" {
			w.queue, w.sending = nil, false
			w.mu.Unlock()
			return
		}
		e, url, secret, client, backoff := w.queue[0], w.url, w.secret, w.client, w.backoff
		w.queue = w.queue[1:]
		w.mu.Unlock()

		body, _ := json.Marshal(e)
		d := Delivery{Event: e.Event, ID: e.Data.ID}
		for d.Attempts < webhookAttempts && !d.Delivered {
			if d.Attempts > 0 {
				time.Sleep(backoff(d.Attempts - 1))
			}
			d.Attempts++
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				break
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, secret))
			resp, err := client.Do(req)
			if err != nil {
				d.Status = 0
				continue
			}
			resp.Body.Close()
			d.Status = resp.StatusCode
			d.Delivered = resp.StatusCode >= 200 && resp.StatusCode < 300
		}
		w.mu.Lock()
		w.log = append(w.log, d)
		w.mu.Unlock()
	}
}
