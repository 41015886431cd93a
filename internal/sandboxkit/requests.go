package sandboxkit

import (
	"slices"
	"sync"
)

// RequestLog is a sandbox's request log: one entry of the sandbox's own type
// per API request, oldest first. The zero value is an empty log; a
// RequestLog is safe for concurrent use.
type RequestLog[T any] struct {
	mu      sync.Mutex
	entries []T
}

// Append adds e to the log.
func (l *RequestLog[T]) Append(e T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
}

// Requests returns a copy of the request log, oldest first.
func (l *RequestLog[T]) Requests() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// ResetRequests empties the request log.
func (l *RequestLog[T]) ResetRequests() { l.reset() }

// reset empties the log and says how many entries it held.
func (l *RequestLog[T]) reset() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.entries)
	l.entries = nil
	return n
}
