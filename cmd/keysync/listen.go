package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keysync/keysync/internal/metrics"
	"github.com/keysync/keysync/internal/webhook"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// listener is serve's HTTP side: 3RPMS webhooks (queued durably in the
// state file before they are answered), /livez, /readyz and /metrics; and
// the dispatcher that turns queued events into targeted runs.
type listener struct {
	env     *environment
	cfg     *Config
	log     *slog.Logger
	queue   *state.DB
	metrics *metrics.Metrics
	// runMu serialises serve's runs: scheduled, targeted and polls.
	runMu *sync.Mutex
	// wake tells the dispatcher an event was queued.
	wake chan struct{}

	mu        sync.Mutex
	lastErr   error // the last run's failure, for /readyz
	lockedOut bool  // the last targeted run found the state locked
}

// locked reports whether the last targeted run found another process
// holding the state file's lock.
func (l *listener) locked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lockedOut
}

func newListener(env *environment, cfg *Config, log *slog.Logger, queue *state.DB, runMu *sync.Mutex) *listener {
	m := metrics.New(cfg.shardID())
	m.ServesWebhooks()
	l := &listener{env: env, cfg: cfg, log: log.With("component", "listener"), queue: queue, metrics: m,
		runMu: runMu, wake: make(chan struct{}, 1)}
	m.ServesEvents(l.waiting)
	return l
}

// waiting reports how many events are queued and how long the oldest has
// waited, for /metrics; none without a queue.
func (l *listener) waiting() (int, time.Duration, error) {
	if l.queue == nil {
		return 0, 0, nil
	}
	events, err := l.queue.PendingEvents(context.Background())
	if err != nil || len(events) == 0 {
		return 0, 0, err
	}
	return len(events), max(l.env.now().Sub(events[0].ReceivedAt), 0), nil
}

func (l *listener) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/3rpms/{property}", l.webhook)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", l.readyz)
	mux.Handle("GET /metrics", l.metrics.Handler())
	return mux
}

// webhook verifies a 3RPMS delivery and queues it; the answer goes before
// any work is done. 401: signature missing or wrong; 404: no such property,
// or it has no webhook secret; 413: body over 1 MiB; 400: not the assumed
// shape; 202: queued, or an event keysync does not act on; 503: the queue
// could not be written (3RPMS should deliver again).
func (l *listener) webhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("property")
	var secret reconcile.Secret
	for _, p := range l.cfg.Properties {
		if p.Name == name && p.ThreeRPMS != nil {
			secret = p.ThreeRPMS.webhookSecret
		}
	}
	if secret == "" {
		l.metrics.Webhook("unknown_property")
		l.log.Warn("webhook refused: no 3RPMS property of that name with a webhook_secret", "property", name)
		http.Error(w, fmt.Sprintf("no 3RPMS property %q with a webhook_secret", name), http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		l.metrics.Webhook("too_large")
		l.log.Warn("webhook refused: body over 1 MiB", "property", name)
		http.Error(w, "body over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		l.metrics.Webhook("bad_request")
		l.log.Warn("webhook refused: its body could not be read", "property", name, "err", err)
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), secret.Reveal()); err != nil {
		l.metrics.Webhook("bad_signature")
		l.log.Warn("webhook refused: signature missing or wrong", "property", name)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	ev, err := webhook.Parse(body)
	if err != nil {
		// Signed, so 3RPMS's: a payload of another shape than keysync
		// assumes (the API document shows none) is refused, and said.
		l.metrics.Webhook("bad_request")
		l.log.Warn("webhook refused: not the payload keysync assumes", "property", name, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !ev.Known() {
		l.metrics.Webhook("ignored")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "ignored: keysync does not act on "+ev.Event+"\n")
		return
	}
	if _, err := l.queue.Enqueue(r.Context(), state.Event{Property: name, Event: ev.Event, ObjectID: ev.Data.ID, ReceivedAt: l.env.now()}); err != nil {
		l.metrics.Webhook("queue_failed")
		l.log.Error("could not queue a webhook event", "property", name, "event", ev.Event, "id", ev.Data.ID, "err", err)
		http.Error(w, "could not queue the event; deliver it again", http.StatusServiceUnavailable)
		return
	}
	l.metrics.Webhook("queued")
	l.log.Info("webhook queued", "property", name, "event", ev.Event, "id", ev.Data.ID)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "queued\n")
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// readyz answers 200 when the state file answers, the last run did not
// fail and the schedule has a next run; 503 naming what is wrong otherwise.
func (l *listener) readyz(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if _, err := l.queue.PendingEvents(r.Context()); err != nil {
		problems = append(problems, "state: "+err.Error())
	}
	l.mu.Lock()
	if l.lastErr != nil {
		problems = append(problems, "last run: "+l.lastErr.Error())
	}
	l.mu.Unlock()
	if l.cfg.schedule.Next(l.env.now()).IsZero() {
		problems = append(problems, "schedule: no next run")
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			io.WriteString(w, p+"\n")
		}
		return
	}
	io.WriteString(w, "ready\n")
}

// finished records a run's outcome for /readyz and /metrics; partial is a
// run of a few stays (metrics.Run.Partial).
func (l *listener) finished(rep *reconcile.Report, start time.Time, err error, partial bool) {
	code := runExit(l.cfg, rep, err)
	l.mu.Lock()
	if code == ExitOK || code == ExitAttention || code == ExitPartial {
		l.lastErr = nil
	} else if err != nil {
		l.lastErr = err
	} else {
		l.lastErr = fmt.Errorf("exit %d", code)
	}
	l.mu.Unlock()
	l.metrics.Observe(metrics.Run{Report: rep, Start: start, End: l.env.clock.Now(), ExitCode: code, Partial: partial})
}

// runExit is the exit code of a run that returned rep and err, as
// `keysync run` would exit.
func runExit(cfg *Config, rep *reconcile.Report, err error) int {
	if err == nil && rep != nil {
		return exitCode(reportError(cfg, rep))
	}
	return exitCode(err)
}

// resume sets /metrics from the state's record of the runs before this
// process: the last whole run (not a plan, nor a webhook's) that recorded
// how it ended, and the last success.
func (l *listener) resume(ctx context.Context) {
	run := lastWholeRun(ctx, l.queue)
	run.LastSuccess, _ = l.queue.LastSuccessAt(ctx)
	l.metrics.Resume(run)
}

// dispatch turns queued events into targeted runs until ctx ends: it
// waits for an event, gathers more for the debounce (at most ten times
// as long while they keep coming), then runs once for all of them. Events
// of a run that failed stay queued and are tried again after a pause; the
// queue is read at start, so events answered before a stop are not lost.
func (l *listener) dispatch(ctx context.Context) {
	retry := time.Duration(0)
	for {
		var timer <-chan time.Time
		if retry > 0 {
			timer = time.After(retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-timer:
		}
		deadline := time.After(10 * l.cfg.debounce)
		for gather := true; gather; {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
			case <-time.After(l.cfg.debounce):
				gather = false
			case <-deadline:
				gather = false
			}
		}
		ok := l.runQueued(ctx)
		switch {
		case ok:
			retry = 0
		case l.locked():
			retry = time.Second // another process's run: wait for it
		case retry == 0:
			retry = 30 * time.Second
		default:
			retry = min(2*retry, 10*time.Minute)
		}
	}
}

// runQueued runs once for every queued event and reports whether they are
// all covered now.
func (l *listener) runQueued(ctx context.Context) bool {
	events, err := l.queue.PendingEvents(ctx)
	if err != nil {
		l.log.Error("could not read the event queue", "err", err)
		return false
	}
	if len(events) == 0 {
		return true
	}
	targets := map[string][]string{}
	var done []int64
	for _, e := range events {
		if e.Event == webhook.KeyDeleted {
			// Retired whatever the run reads: a whole read that finds the
			// key gone from its stay would otherwise assign it again (refused)
			// and leave the stay without a key until another run.
			stay, found, err := l.queue.RetireKey(ctx, e.Property, e.ObjectID, l.env.now())
			if err != nil {
				l.log.Error("could not look up a deleted key", "property", e.Property, "key", e.ObjectID, "err", err)
				return false
			}
			if !found {
				done = append(done, e.ID) // not ours
				continue
			}
			e.ObjectID = stay
		}
		ids, whole := targets[e.Property]
		if whole && ids == nil {
			done = append(done, e.ID) // the property is read whole anyway
			continue
		}
		switch e.Event {
		case webhook.ReservationUpdated:
			// The API document gives no way to list a reservation's stays by
			// its id, and a cancelled reservation's stays are hidden: read
			// the property whole.
			targets[e.Property] = nil
		default:
			targets[e.Property] = appendNew(ids, e.ObjectID)
		}
		done = append(done, e.ID)
	}
	if len(targets) > 0 {
		l.runMu.Lock()
		start := l.env.clock.Now()
		rep, err := l.env.once(ctx, l.cfg, reconcile.Options{Mode: reconcile.ModeTargeted, Now: l.env.now(), Targets: targets}, l.log)
		l.runMu.Unlock()
		l.finished(rep, start, err, true)
		if err != nil {
			l.log.Error("targeted run failed; its events stay queued", "err", err)
			l.mu.Lock()
			l.lockedOut = exitCode(err) == ExitLocked
			l.mu.Unlock()
			return false
		}
		if rep.Partial() {
			// A failure, or an action not done (failed, unknown, skipped:
			// a run cut short by a stop): the events are run again.
			l.log.Warn("targeted run partly done; its events stay queued", "failures", len(rep.Failures))
			return false
		}
		l.log.Info("targeted run done", "run", rep.RunID, "events", len(events), "actions", len(rep.Actions()))
	}
	if err := l.queue.EventsDone(context.WithoutCancel(ctx), done, l.env.now()); err != nil {
		l.log.Error("could not mark events done", "err", err)
		return false
	}
	return true
}

// coverAll marks every event queued before a full run started as done: the
// run read every stay.
func (l *listener) coverAll(ctx context.Context, before time.Time) {
	events, err := l.queue.PendingEvents(ctx)
	if err != nil {
		return
	}
	var ids []int64
	for _, e := range events {
		if e.ReceivedAt.Before(before) {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) > 0 {
		if err := l.queue.EventsDone(context.WithoutCancel(ctx), ids, l.env.now()); err != nil {
			l.log.Error("could not mark events done", "err", err)
		}
	}
}

// serveHTTP listens on addr until ctx ends.
func (l *listener) serveHTTP(ctx context.Context, addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, withCode(ExitConfig, fmt.Errorf("listen: %w", err))
	}
	srv := &http.Server{Handler: l.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}
	return ln.Addr().String(), stop, nil
}

func appendNew(ids []string, id string) []string {
	for _, x := range ids {
		if x == id {
			return ids
		}
	}
	return append(ids, id)
}
