package fault

import (
	"net/http"
	"slices"
	"sync"
	"time"
)

// Script is a handler that answers the n-th request with Steps[n] (the
// last step again once they run out) and records when, by Now (a fake
// clock in retry tests), and with which method each request came.
type Script struct {
	Now   func() time.Time
	Steps []http.HandlerFunc

	mu      sync.Mutex
	times   []time.Time
	methods []string
}

// ServeHTTP records the request and answers it with its step.
func (sc *Script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc.mu.Lock()
	n := len(sc.times)
	sc.times = append(sc.times, sc.Now())
	sc.methods = append(sc.methods, r.Method)
	sc.mu.Unlock()
	sc.Steps[min(n, len(sc.Steps)-1)](w, r)
}

// Times returns the time of every request so far.
func (sc *Script) Times() []time.Time {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.times)
}

// Methods returns the method of every request so far.
func (sc *Script) Methods() []string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.methods)
}
