// Package metrics turns a keysync run into Prometheus metrics, for a
// node-exporter textfile (a timer or CronJob) or serve's /metrics.
package metrics

import (
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keysync/keysync/reconcile"
)

// Metrics holds keysync's metrics in a registry of their own.
type Metrics struct {
	reg         *prometheus.Registry
	lastSuccess prometheus.Gauge
	lastRun     prometheus.Gauge
	lastExit    prometheus.Gauge
	duration    prometheus.Gauge
	actions     *prometheus.CounterVec
	requests    *prometheus.CounterVec
	budget      *prometheus.GaugeVec
	account     *prometheus.GaugeVec
	arrivals    prometheus.Gauge
	problems    prometheus.Gauge
	webhooks    *prometheus.CounterVec
	// shard is the process's --shard I/N label ("" for none).
	shard string
}

// New returns the metrics, registered and at zero. shard, when not "",
// is the --shard I/N of the process: every metric carries it as the label
// shard, so the files of a config's shards, in one collector's folder, are
// series of their own.
func New(shard string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(), shard: shard,
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keysync_last_success_timestamp_seconds",
			Help: "When the last run that did all it could finished (exit 0, or 6: done but a person is needed), as a Unix time."}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keysync_last_run_timestamp_seconds",
			Help: "When the last run finished, as a Unix time."}),
		lastExit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keysync_last_run_exit_code",
			Help: "The last run's exit code (README, Exit codes)."}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keysync_run_duration_seconds",
			Help: "How long the last run took."}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keysync_actions_total",
			Help: "Actions by system, action and result."}, []string{"system", "action", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keysync_requests_total",
			Help: "Requests sent, by system."}, []string{"system"}),
		budget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keysync_budget_remaining",
			Help: "Requests left of the daily budget over the last 24 hours, by system: the least any of its credentials has left."}, []string{"system"}),
		account: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keysync_credential_budget_remaining",
			Help: "Requests left of the daily budget over the last 24 hours, by metered credential (named by fingerprint)."}, []string{"system", "credential"}),
		arrivals: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keysync_arrivals_without_credential",
			Help: "Stays arriving within 24 hours, or in house, whose credential keysync could not issue in the last run."}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keysync_webhooks_total",
			Help: "Webhook deliveries serve answered, by result: queued, ignored (an event keysync does not act on), bad_signature, unknown_property, too_large, bad_request (a body that could not be read, or not the assumed shape), queue_failed."}, []string{"result"}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keysync_problems",
			Help: "What needs a person after the last run (exit 6): actions failing run after run, properties removed from the config, and stays arriving within 24 hours that keysync cannot give its credential."}),
	}
	withShard(shard, m.reg).MustRegister(m.lastSuccess, m.lastRun, m.lastExit, m.duration, m.actions, m.requests, m.budget, m.account, m.arrivals, m.problems, m.webhooks)
	return m
}

// withShard is reg, its metrics labelled with the shard when there is one.
func withShard(shard string, reg *prometheus.Registry) prometheus.Registerer {
	if shard == "" {
		return reg
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"shard": shard}, reg)
}

// Run is one finished run, as the metrics need it.
type Run struct {
	Report   *reconcile.Report // nil when the run failed before it had one
	Start    time.Time
	End      time.Time
	ExitCode int
	// LastSuccess is when the last successful run before this one ended,
	// kept when this one did not succeed or was a dry run (zero: unknown).
	LastSuccess time.Time
	// Partial marks a run of a few stays (a webhook's, a short
	// look-ahead): it adds to the counters and the budget gauges, and
	// leaves the last run's gauges (its end, exit code and duration, the
	// last success, arrivals without a credential and problems) to the
	// runs that read every stay, so one does not hide a whole run's
	// failure or exit 6.
	Partial bool
}

// Succeeded reports whether an exit code means the run did all it could.
func Succeeded(code int) bool { return code == 0 || code == 6 }

// Observe records a finished run.
func (m *Metrics) Observe(r Run) { m.observe(r, true) }

// Resume sets the gauges, and only the gauges, from the last whole run
// that a process which starts (serve) finds recorded (none: r.End is
// zero) and the last success (r.LastSuccess, which may be a later run that
// did not record how it ended): without it /metrics would read 0 until
// the next run, an alert on the age of the last success would fire after
// every restart, and one on arrivals without a credential would clear.
// Its counters are not added again.
func (m *Metrics) Resume(r Run) {
	if !r.End.IsZero() {
		m.observe(r, false)
	}
	if !r.LastSuccess.IsZero() && (r.End.IsZero() || r.LastSuccess.After(r.End)) {
		m.lastSuccess.Set(unix(r.LastSuccess))
	}
}

func (m *Metrics) observe(r Run, counters bool) {
	if !r.Partial {
		m.lastRun.Set(unix(r.End))
		m.lastExit.Set(float64(r.ExitCode))
		m.duration.Set(r.End.Sub(r.Start).Seconds())
		dry := r.Report != nil && r.Report.DryRun
		switch {
		case Succeeded(r.ExitCode) && !dry: // a plan is no success of the timer's
			m.lastSuccess.Set(unix(r.End))
		case !r.LastSuccess.IsZero():
			m.lastSuccess.Set(unix(r.LastSuccess))
		}
	}
	if r.Report == nil {
		return
	}
	if counters {
		for _, c := range r.Report.Counts() {
			result := string(c.Result)
			if result == "" {
				result = "planned"
			}
			m.actions.WithLabelValues(string(c.System), string(c.Op), result).Add(float64(c.N))
		}
		for sys, c := range r.Report.Requests {
			m.requests.WithLabelValues(string(sys)).Add(float64(c.Reads + c.Writes))
		}
	}
	least := map[reconcile.System]int{}
	for acct, b := range r.Report.Budget {
		m.account.WithLabelValues(string(acct.System()), string(acct)).Set(float64(b.Left))
		if l, ok := least[acct.System()]; !ok || b.Left < l {
			least[acct.System()] = b.Left
		}
	}
	for sys, left := range least {
		m.budget.WithLabelValues(string(sys)).Set(float64(left))
	}
	if !r.Partial {
		m.arrivals.Set(float64(len(ArrivalsWithoutCredential(r.Report))))
		m.problems.Set(float64(len(r.Report.Problems) + len(r.Report.Attention())))
	}
}

// Webhook counts one webhook delivery serve answered with result (see
// keysync_webhooks_total's help for the results).
func (m *Metrics) Webhook(result string) {
	m.webhooks.WithLabelValues(result).Inc()
}

// webhookResults are the results keysync_webhooks_total counts.
var webhookResults = []string{"queued", "ignored", "bad_signature", "unknown_property", "too_large", "bad_request", "queue_failed"}

// ServesWebhooks shows every result of keysync_webhooks_total at 0, for
// serve's listener: a series born at its first delivery has no earlier
// sample, so increase() over it would not see that delivery (a single
// refusal would never raise an alert). Timers, which answer no webhook,
// do not call it, so their metrics files carry none.
func (m *Metrics) ServesWebhooks() {
	for _, r := range webhookResults {
		m.webhooks.WithLabelValues(r)
	}
}

// ServesEvents shows serve's webhook event queue, read at each scrape by
// queue: how many events wait for a run (keysync_webhook_events_pending)
// and how long the oldest has waited (keysync_webhook_events_oldest_seconds,
// 0 when none wait). An event waits while another run holds the state
// file, or while its run leaves work undone and is tried again; one that
// waits long means same-day bookings are not being keyed. Both are NaN
// when queue fails (serve's /readyz says why).
func (m *Metrics) ServesEvents(queue func() (pending int, oldest time.Duration, err error)) {
	withShard(m.shard, m.reg).MustRegister(eventQueue{read: queue,
		pending: prometheus.NewDesc("keysync_webhook_events_pending",
			"Webhook events queued and not yet covered by a run.", nil, nil),
		oldest: prometheus.NewDesc("keysync_webhook_events_oldest_seconds",
			"How long the oldest queued webhook event has waited for a run (0 when none waits).", nil, nil)})
}

// eventQueue collects ServesEvents' two gauges from one read of the queue
// per scrape (a query of the state file), not one read for each.
type eventQueue struct {
	read            func() (int, time.Duration, error)
	pending, oldest *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (q eventQueue) Describe(ch chan<- *prometheus.Desc) { ch <- q.pending; ch <- q.oldest }

// Collect implements prometheus.Collector.
func (q eventQueue) Collect(ch chan<- prometheus.Metric) {
	n, age, err := q.read()
	pending, oldest := float64(n), age.Seconds()
	if err != nil {
		pending, oldest = math.NaN(), math.NaN()
	}
	ch <- prometheus.MustNewConstMetric(q.pending, prometheus.GaugeValue, pending)
	ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, oldest)
}

// ArrivalsWithoutCredential returns the stays arriving within 24 hours or
// in house whose credential work did not get done in the run (a create or
// an assign failed, skipped, deferred or of unknown outcome), and the
// Guestway stays arriving within 24 hours or in house whose source holds
// no lock PIN, and the stays the source could not read that hold nothing
// keysync issued (their dates unknown, they may be arriving). A guest
// already in house without a working key (a room move whose new key
// failed) is the most urgent of them.
func ArrivalsWithoutCredential(rep *reconcile.Report) []reconcile.StayRef {
	seen := map[reconcile.StayRef]bool{}
	var out []reconcile.StayRef
	add := func(s reconcile.StayRef) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, a := range rep.Actions() {
		soon := a.Priority == reconcile.PriorityArrivalSoon || a.Priority == reconcile.PriorityInHouse
		if !soon || (a.Op != reconcile.OpCreate && a.Op != reconcile.OpAssign) {
			continue
		}
		switch a.Result {
		case reconcile.ResultFailed, reconcile.ResultSkipped, reconcile.ResultUnknown, reconcile.ResultDeferred:
			add(a.Stay)
		}
	}
	for _, n := range rep.Notes() {
		if n.Kind == reconcile.NoteMissingLockPIN || n.Kind == reconcile.NoteUnreadableStay && n.Unkeyed {
			add(n.Stay)
		}
	}
	return out
}

// WriteFile writes the metrics in the Prometheus text format to path,
// atomically (a temporary file renamed), for the node exporter's textfile
// collector; path should end in .prom.
func (m *Metrics) WriteFile(path string) error {
	return prometheus.WriteToTextfile(path, m.reg)
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// WriteCheckFile writes the metrics of one `keysync check` to path, as
// WriteFile does: when it ran, how many stays it checked, how many of them
// were not ready, and how many reads failed (a property whose stays, or a
// system whose credentials, could not be read: its stays are not known
// ready). The names are check's own, so a check's file and a run's file
// can sit in one textfile collector's directory. shard labels them as New
// does.
func WriteCheckFile(path, shard string, at time.Time, checked, unready, failures int) error {
	reg := prometheus.NewRegistry()
	for _, g := range []struct {
		name, help string
		v          float64
	}{
		{"keysync_check_timestamp_seconds", "When the last readiness check ran, as a Unix time.", unix(at)},
		{"keysync_check_stays", "Stays in house or whose access opens within the last check's horizon.", float64(checked)},
		{"keysync_check_unready", "Of those, the stays that did not hold what they need on every system.", float64(unready)},
		{"keysync_check_failures", "Reads the last check could not make, one per property and system: what they would show is not known ready.", float64(failures)},
	} {
		m := prometheus.NewGauge(prometheus.GaugeOpts{Name: g.name, Help: g.help})
		m.Set(g.v)
		withShard(shard, reg).MustRegister(m)
	}
	return prometheus.WriteToTextfile(path, reg)
}
