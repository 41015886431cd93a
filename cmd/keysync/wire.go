package main

import (
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"golang.org/x/time/rate"

	"github.com/keysync/keysync/reconcile"
	rpmsink "github.com/keysync/keysync/sinks/threerpms"
	rpms "github.com/keysync/keysync/sources/threerpms"
)

// buildRunner wires the config's properties to their adapters. Every
// property calling the same host shares that host's rate limiter.
func buildRunner(cfg *Config, store reconcile.Store, log *slog.Logger, meter *reconcile.Meter, hc *http.Client, getenv func(string) string) *reconcile.Runner {
	limiters := map[string]*rate.Limiter{}
	r := &reconcile.Runner{Store: store, Log: log, Meter: meter, Crash: crashHook(getenv)}
	for i := range cfg.Properties {
		p := &cfg.Properties[i]
		t := p.ThreeRPMS
		host := hostOf(t.Endpoint)
		lim, ok := limiters[host]
		if !ok {
			lim = rate.NewLimiter(rate.Limit(t.RatePerSecond), t.Burst)
			limiters[host] = lim
		}
		client := rpms.NewClient(rpms.ClientOptions{
			Endpoint: t.Endpoint, Token: t.token, HTTP: hc, Limiter: lim, Meter: meter, MaxResponseBytes: t.MaxResponseBytes,
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
