package main

import (
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/time/rate"

	"github.com/keysync/keysync/reconcile"
	rpmsink "github.com/keysync/keysync/sinks/threerpms"
	rpms "github.com/keysync/keysync/sources/threerpms"
)

// limiters holds one rate limiter per API host for the whole process, so
// every property and every run (serve's, the demo's) calling a host shares
// its pace.
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// paceMargin is the share of a configured rate keysync actually uses: a
// request paced at exactly the server's rate that meets a few milliseconds
// of network jitter arrives a hair early and is refused with a 429.
const paceMargin = 0.95

// get returns the host's limiter, creating it first at paceMargin of the
// configured rate.
func (l *limiters) get(host string, perSecond float64, burst int) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	lim, ok := l.m[host]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(perSecond*paceMargin), burst)
		l.m[host] = lim
	}
	return lim
}

// buildRunner wires the config's properties to their adapters.
func (env *environment) buildRunner(cfg *Config, store reconcile.Store, log *slog.Logger, meter *reconcile.Meter) *reconcile.Runner {
	r := &reconcile.Runner{Store: store, Log: log, Meter: meter, Crash: crashHook(env.getenv)}
	for i := range cfg.Properties {
		p := &cfg.Properties[i]
		t := p.ThreeRPMS
		lim := env.limiters.get(hostOf(t.Endpoint), t.RatePerSecond, t.Burst)
		client := rpms.NewClient(rpms.ClientOptions{
			Endpoint: t.Endpoint, Token: t.token, Limiter: lim, Meter: meter, MaxResponseBytes: t.MaxResponseBytes,
		})
		r.Sites = append(r.Sites, &reconcile.Site{
			Property: p.policy(),
			Source:   rpms.NewSource(client, p.Name, t.PageSize),
			Sinks:    map[reconcile.System]reconcile.Sink{reconcile.System3RPMS: rpmsink.New(client, t.MaxOpsPerRequest)},
		})
	}
	return r
}

func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	return u.Host
}

// crashHook returns the fault tests' hook: with KEYSYNC_CRASH_AT set to a
// crash point (reconcile.CrashAfterIntent, …), optionally followed by
// ":N" for its Nth occurrence, the process kills itself with SIGKILL there,
// exactly as an OOM kill or power loss would stop it. Unset, it does nothing.
func crashHook(getenv func(string) string) func(string) {
	spec := getenv("KEYSYNC_CRASH_AT")
	if spec == "" {
		return nil
	}
	point, nth := spec, 1
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		point = spec[:i]
		if n, err := parsePositive(spec[i+1:]); err == nil {
			nth = n
		}
	}
	seen := 0
	return func(p string) {
		if p != point {
			return
		}
		if seen++; seen == nth {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not instant; never run past the point
		}
	}
}
