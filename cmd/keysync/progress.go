package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// progressAfter is how long a run goes quietly before it shows progress.
const progressAfter = 3 * time.Second

// progress shows, on a terminal, how far a long run's writes are: requests
// sent of those planned, and the time left at the APIs' pace. It shows
// nothing when stderr is not a terminal (a timer's journal, a pod's log).
type progress struct {
	w       io.Writer
	meter   *reconcile.Meter
	planned atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

// startProgress starts the display, or returns nil when w is not a
// terminal.
func startProgress(w io.Writer, meter *reconcile.Meter) *progress {
	if !isTerminal(w) {
		return nil
	}
	p := &progress{w: w, meter: meter, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	select {
	case <-p.stop:
		return
	case <-time.After(progressAfter):
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		fmt.Fprintf(p.w, "\r\033[K%s", progressLine(p.meter.Snapshot(), int(p.planned.Load())))
		select {
		case <-p.stop:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case <-tick.C:
		}
	}
}

// finish clears the line and stops the display.
func (p *progress) finish() {
	close(p.stop)
	<-p.done
}

// progressLine is one line of progress: the writes sent of those planned,
// and the time left at 5 requests a second (the APIs' documented pace).
func progressLine(sent map[reconcile.System]reconcile.RequestCount, planned int) string {
	writes, reads := 0, 0
	for _, c := range sent {
		writes, reads = writes+c.Writes, reads+c.Reads
	}
	if planned == 0 {
		return fmt.Sprintf("keysync: reading (%d request(s) so far)", reads)
	}
	left := max(planned-writes, 0)
	return fmt.Sprintf("keysync: %d of %d write request(s) sent, about %s left", writes, planned,
		(time.Duration(left) * time.Second / 5).Round(time.Second))
}
