package httpapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/clocktest"
)

// pacerRun is a Pacer on a fake clock and the times its requests went.
type pacerRun struct {
	t     *testing.T
	start time.Time
	clock *clocktest.Clock
	p     *httpapi.Pacer
	times []time.Time
}

// pacerStart is when a pacerRun's clock starts.
var pacerStart = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

func newPacerRun(t *testing.T, perSecond float64, burst int) *pacerRun {
	clock := clocktest.New(pacerStart)
	return &pacerRun{t: t, start: pacerStart, clock: clock, p: httpapi.NewPacer(perSecond, burst, clock)}
}

// send sends n requests, each when the pacer lets it, and returns how long
// they waited.
func (r *pacerRun) send(n int) time.Duration {
	r.t.Helper()
	before := r.clock.Now()
	for range n {
		if err := r.p.Wait(r.t.Context()); err != nil {
			r.t.Fatal(err)
		}
		r.times = append(r.times, r.clock.Now())
	}
	return r.clock.Now().Sub(before)
}

// TestPacerBurstsOnce paces 40 requests with a 3-second pause in the
// middle (a run planning between reads and writes): the first 10 go at
// once, and after them no 1-second window holds more than 5, pause or not.
// After a minute's rest the burst is allowed again.
func TestPacerBurstsOnce(t *testing.T) {
	t.Parallel()
	r := newPacerRun(t, 5, 10)
	r.send(20)
	r.clock.Advance(3 * time.Second)
	r.send(20)
	if !r.times[9].Equal(r.start) {
		t.Errorf("the first burst of 10 waited: 10th request at %s", r.times[9].Sub(r.start))
	}
	if d := r.times[10].Sub(r.start); d != 200*time.Millisecond {
		t.Errorf("11th request, after a burst spent at once, at %s, want one token's wait (200ms)", d)
	}
	if why := httpapi.PaceBroken(r.times, 10, 5); why != "" {
		t.Fatal(why)
	}
	r.clock.Advance(httpapi.IdleReset)
	if d := r.send(10); d != 0 {
		t.Errorf("after resting, a burst of 10 waited %s", d)
	}
}

// TestPacerCreditsASlowBurst: a burst spent slowly (a busy machine, writes
// waiting for the state file) leaves the tokens its time earned, as the
// API's own bucket does (but one), so the requests after it do not wait
// for them again; and whatever the gaps between requests, the times keep to the
// API's bucket (5 a second, burst 10) and, after the first 10, to 5 in
// any second.
func TestPacerCreditsASlowBurst(t *testing.T) {
	t.Parallel()
	r := newPacerRun(t, 5, 10)
	for i := range 10 {
		if d := r.send(1); d != 0 {
			t.Fatalf("request %d of the burst waited %s", i+1, d)
		}
		r.clock.Advance(100 * time.Millisecond)
	}
	// The burst took a second: 5 tokens earned, one kept in hand, so 4
	// more go at once.
	for i := range 4 {
		if d := r.send(1); d != 0 {
			t.Errorf("request %d, after a burst spent over a second, waited %s for a token the second earned", 11+i, d)
		}
	}
	// Then a mix of quick and slow requests.
	for i := range 60 {
		r.send(1)
		r.clock.Advance(time.Duration(i%7) * 45 * time.Millisecond)
	}
	if why := httpapi.PaceBroken(r.times, 10, 5); why != "" {
		t.Fatal(why)
	}
}

// TestPacerHoldLetsOneGoFirst: after a 429's hold, whatever the bucket
// earned meanwhile, one request goes when the hold ends and the next ones
// at the steady rate: the API that refused is not sent a burst.
func TestPacerHoldLetsOneGoFirst(t *testing.T) {
	t.Parallel()
	r := newPacerRun(t, 4.75, 10)
	r.send(12)
	r.clock.Advance(3 * time.Second) // the bucket fills again
	until := r.clock.Now().Add(2 * time.Second)
	r.p.Hold(until)
	r.send(3)
	after := r.times[12:]
	if !after[0].Equal(until) {
		t.Errorf("first request after the hold at %s, want when it ends (%s)", after[0].Sub(r.start), until.Sub(r.start))
	}
	for i := 1; i < len(after); i++ {
		if gap := after[i].Sub(after[i-1]); gap < 200*time.Millisecond {
			t.Errorf("request %d after the hold %s after the one before, want the steady rate (≥ 1/4.75 s)", i+1, gap)
		}
	}

	// A hold of a minute (Retry-After: 60, a per-minute quota) is not a
	// minute's rest: no burst at its end either.
	r.p.Hold(r.clock.Now().Add(httpapi.IdleReset))
	if d := r.send(3); d < httpapi.IdleReset+400*time.Millisecond {
		t.Errorf("3 requests after a minute's hold took %s, want the hold and then the steady rate", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"7", 7 * time.Second},
		{"0", time.Second},
		{"-1", time.Second},
		{"garbage", time.Second},
		{"", time.Second},
		{"86400", 24 * time.Hour},
		{"99999999999999999999", 24 * time.Hour}, // beyond int64: the cap, not the floor
		{"9999999999", 24 * time.Hour},           // would overflow a Duration
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		// The cases each adapter's own Retry-After wrapper was tested with,
		// now under the one policy (a cap of a day).
		{" 7 ", 7 * time.Second},
		{" 90 ", 90 * time.Second},
		{"1.5", time.Second},
		{"599", 599 * time.Second},
		{"600", 10 * time.Minute},
		{"3600", time.Hour},
		{"999999999999", 24 * time.Hour},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second},
		{now.Format(http.TimeFormat), time.Second},
		{now.Add(24 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
	} {
		if got := httpapi.ParseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

// TestPacerSeed: a Pacer seeded with the requests an earlier process sent
// continues at the steady rate instead of bursting again; seeded requests
// a minute old, or in the future, leave the burst whole.
func TestPacerSeed(t *testing.T) {
	t.Parallel()
	start := pacerStart
	burst := make([]time.Time, 10)
	for i := range burst {
		burst[i] = start.Add(-100 * time.Millisecond)
	}
	for _, tc := range []struct {
		name  string
		seed  []time.Time
		waits bool
	}{
		{"just sent a burst", burst, true},
		{"a minute ago", []time.Time{start.Add(-time.Minute), start.Add(-time.Minute)}, false},
		{"in the future", []time.Time{start.Add(time.Second), start.Add(time.Second)}, false},
		{"nothing", nil, false},
	} {
		r := newPacerRun(t, 5, 10)
		r.p.Seed(tc.seed)
		waited := r.send(10)
		if tc.waits && waited < 1700*time.Millisecond {
			t.Errorf("%s: 10 requests took %s, want the steady rate (≥ 1.7 s at 5/s)", tc.name, waited)
		}
		if !tc.waits && waited != 0 {
			t.Errorf("%s: 10 requests took %s, want a whole burst at once", tc.name, waited)
		}
	}
}

// TestPacerGroupMetersAHostTogether sends 120 requests, alternating between
// two credentials' Pacers, to a host that meters them together: one
// bucket at the API's 5 requests/s with bursts of 10 for both, refusing
// with a 429 and Retry-After: 1, which Retry waits out as adapters do.
// Paced each on its own they send at twice the host's rate and are refused
// again and again (each refusal's hold lets the host's bucket refill a
// little); in a PacerGroup, once both were refused the group paces them as
// one and the host refuses nothing more.
func TestPacerGroupMetersAHostTogether(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		grouped     bool
		maxRefused  int
		minRefused  int
		wantEngaged bool
	}{
		{"each on its own", false, 1000, 10, false},
		{"in a group", true, 2, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clocktest.New(pacerStart)
			// The host's bucket, refilled by the fake clock's time.
			tokens, last := 10.0, pacerStart
			admit := func() bool {
				now := clock.Now()
				tokens = min(10, tokens+now.Sub(last).Seconds()*5)
				last = now
				if tokens < 1 {
					return false
				}
				tokens--
				return true
			}
			pacers := []*httpapi.Pacer{httpapi.NewPacer(4.75, 10, clock), httpapi.NewPacer(4.75, 10, clock)}
			group := httpapi.NewPacerGroup("3rpms at api.test", 4.75, 10, clock, nil)
			if tc.grouped {
				for _, p := range pacers {
					group.Join(p)
				}
			}
			retry := httpapi.Retry{Clock: clock, Attempts: 100}
			refused := 0
			for i := range 120 {
				err := retry.Do(t.Context(), pacers[i%2], true, func() error {
					if !admit() {
						refused++
						return &httpapi.RateLimitedError{RetryAfter: time.Second}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			t.Logf("%d refused; the clock moved %s", refused, clock.Now().Sub(pacerStart))
			if refused < tc.minRefused || refused > tc.maxRefused {
				t.Errorf("%d requests refused, want %d to %d", refused, tc.minRefused, tc.maxRefused)
			}
			if group.Engaged() != tc.wantEngaged {
				t.Errorf("group paces its members as one: %v, want %v", group.Engaged(), tc.wantEngaged)
			}
		})
	}
}

// TestPacerGroupOneCredentialRefused: 429s to one credential alone (another
// client on the same token), or to two more than a minute apart, leave the
// group's members paced each on its own.
func TestPacerGroupOneCredentialRefused(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(pacerStart)
	group := httpapi.NewPacerGroup("3rpms at api.test", 4.75, 10, clock, nil)
	a, b := httpapi.NewPacer(4.75, 10, clock), httpapi.NewPacer(4.75, 10, clock)
	group.Join(a)
	group.Join(b)
	for range 3 {
		a.Hold(clock.Now().Add(time.Second))
		clock.Advance(2 * time.Second)
	}
	if group.Engaged() {
		t.Fatal("429s to one credential made the group pace its members as one")
	}
	c := httpapi.NewPacer(4.75, 10, clock)
	group.Join(c)
	clock.Advance(httpapi.IdleReset)
	c.Hold(clock.Now().Add(time.Second))
	if group.Engaged() {
		t.Fatal("429s to two credentials a minute apart made the group pace its members as one")
	}
	before := clock.Now()
	for range 10 {
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if d := clock.Now().Sub(before); d != 0 {
		t.Errorf("the other credential's burst of 10 waited %s, want none", d)
	}
}

// TestPacerBarsALongRateLimit: a 429 asking for a wait longer than a run
// waits fails the request (ErrWaitTooLong) and bars the Pacer until then:
// every request through it, another call's too, fails the same way
// without reaching the API, until the time the API named.
func TestPacerBarsALongRateLimit(t *testing.T) {
	t.Parallel()
	srv, got := refuseFirst(t, http.StatusTooManyRequests, "86400")
	clock := clocktest.New(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))
	c, err := httpapi.New(httpapi.Options{
		System: reconcile.SystemGuestway, BaseURL: srv.URL,
		Transport: httpapi.Transport{Pacer: httpapi.NewPacer(5, 10, clock), Retry: httpapi.Retry{Clock: clock}},
	})
	if err != nil {
		t.Fatal(err)
	}
	do := func(path string) error {
		_, err := c.Do(t.Context(), httpapi.Request{Call: "list " + path, Method: http.MethodGet, Path: path, Idempotent: true})
		return err
	}
	if err := do("/a"); !errors.Is(err, httpapi.ErrWaitTooLong) || !errors.Is(err, reconcile.ErrRateLimited) {
		t.Fatalf("first request: %v, want ErrWaitTooLong and ErrRateLimited", err)
	}
	clock.Advance(23 * time.Hour)
	if err := do("/b"); !errors.Is(err, httpapi.ErrWaitTooLong) || !errors.Is(err, reconcile.ErrRateLimited) || !strings.Contains(err.Error(), "not sent, an earlier 429 asked to wait 1h0m0s more") {
		t.Errorf("another request within the day: %v, want it refused unsent, naming the wait left", err)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("the API got %d requests while it had asked to be left alone, want 1", n)
	}
	clock.Advance(time.Hour)
	if err := do("/b"); err != nil {
		t.Errorf("after the wait: %v", err)
	}
	if n := got.Load(); n != 2 {
		t.Errorf("the API got %d requests, want 2", n)
	}
}

// refuseFirst serves a test API that answers its first request with status
// (and Retry-After retryAfter) and every other one {"ok":true}; got counts
// the requests it got.
func refuseFirst(t *testing.T, status int, retryAfter string) (srv *httptest.Server, got *atomic.Int32) {
	t.Helper()
	got = new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if got.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}
