package turn

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// TestItemsQueuedDuringATurnShareTheNext: one turn is held in flight; the
// items queued meanwhile are served together in the next turn, each
// caller returns only once its own item is served, and what a turn leaves
// is served first in the one after.
func TestItemsQueuedDuringATurnShareTheNext(t *testing.T) {
	t.Parallel()
	var q Queue[int]
	var mu sync.Mutex
	served := map[int]bool{}
	var turns [][]int
	hold, arrived := make(chan struct{}), make(chan struct{})
	serve := func(items []int) []int {
		if slices.Contains(items, 0) {
			close(arrived)
			<-hold
		}
		// Serve at most two a turn.
		n := min(len(items), 2)
		mu.Lock()
		turns = append(turns, slices.Clone(items[:n]))
		for _, i := range items[:n] {
			served[i] = true
		}
		mu.Unlock()
		return items[n:]
	}
	done := func(i int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return served[i]
		}
	}
	var wg sync.WaitGroup
	wait := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Wait(i, done(i), serve)
			if !done(i)() {
				t.Errorf("item %d: Wait returned before it was served", i)
			}
		}()
	}
	wait(0)
	<-arrived
	for i := 1; i <= 3; i++ {
		wait(i)
	}
	for q.Len() < 3 {
		time.Sleep(time.Millisecond)
	}
	q.mu.Lock()
	order := slices.Clone(q.items)
	q.mu.Unlock()
	close(hold)
	wg.Wait()
	if len(turns) != 3 || !slices.Equal(turns[0], []int{0}) || len(turns[1]) != 2 || len(turns[2]) != 1 {
		t.Fatalf("turns %v, want [0], then two of 1-3 in the order they came, then the third", turns)
	}
	if got := slices.Concat(turns[1], turns[2]); !slices.Equal(got, order) {
		t.Errorf("served %v, want the order they queued in, %v", got, order)
	}
}

// TestPanicReachesEveryWaiter: a serve that panics takes the items queued
// with it; their callers get the panic too instead of waiting for ever.
func TestPanicReachesEveryWaiter(t *testing.T) {
	t.Parallel()
	var q Queue[int]
	hold, arrived := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	panics := make([]any, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			if i > 0 {
				<-arrived
			}
			q.Wait(i, func() bool { return false }, func(items []int) []int {
				if i == 0 {
					close(arrived)
					<-hold
				}
				panic("serve failed")
			})
		}()
		if i == 0 {
			<-arrived
		}
	}
	for q.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	for i, v := range panics {
		if v != "serve failed" {
			t.Errorf("caller %d: recovered %v, want the serve's panic", i, v)
		}
	}
}

// TestDoWaitsForTheTurn: Do's work never overlaps a serve.
func TestDoWaitsForTheTurn(t *testing.T) {
	t.Parallel()
	var q Queue[int]
	var mu sync.Mutex
	var log []string
	hold, arrived := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		served := false
		q.Wait(1, func() bool { return served }, func(items []int) []int {
			close(arrived)
			<-hold
			mu.Lock()
			log = append(log, "serve")
			mu.Unlock()
			served = true
			return nil
		})
		close(done)
	}()
	<-arrived
	ran := make(chan struct{})
	go func() {
		q.Do(func() {
			mu.Lock()
			log = append(log, "do")
			mu.Unlock()
		})
		close(ran)
	}()
	time.Sleep(10 * time.Millisecond) // Do would have run by now, had it not waited
	close(hold)
	<-done
	<-ran
	if !slices.Equal(log, []string{"serve", "do"}) {
		t.Errorf("order %v, want serve then do", log)
	}
}
