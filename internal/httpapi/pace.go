package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keysync/keysync/reconcile"
)

// Pacer keeps the requests to one API under its rate: a token bucket
// (golang.org/x/time/rate) read on an injectable Clock, plus a hold that a
// 429's Retry-After puts on every request to that API. One Pacer is shared
// by everything in the process that calls the API, concurrent work
// included.
//
// The bucket is the API's own (its rate and burst), so it credits the time
// a run takes to spend its burst: a burst spent over half a second (reads
// slowed by a busy machine, a write waiting for the state file) leaves the
// tokens that half second earned, as the API's bucket does (less one kept
// in hand for requests that reach the API late). On top of it,
// the burst is spent once: after it, no more than the rate's worth of
// requests go in any second (a sliding window over the latest requests)
// until the API has been left alone for IdleReset, so a pause inside a run
// (planning, say) does not let a second burst through. A run then never
// sends more than the rate in any second after its first burst.
type Pacer struct {
	clock reconcile.Clock
	mu    sync.Mutex
	lim   *rate.Limiter
	hold  time.Time
	burst int
	// spent counts requests since the last idle reset; last is when the
	// latest was reserved to go.
	spent int
	last  time.Time
	// After the burst, a request goes no sooner than span after the one
	// per requests before it; steady holds the latest per send times.
	per    int
	span   time.Duration
	steady []time.Time
	// limAt is the latest time handed to lim. Its times must not go back:
	// a reservation or cancellation at an earlier time sets the
	// limiter's clock back, and the interval between is credited twice.
	limAt time.Time
	// group is the PacerGroup of the API host, nil when there is none.
	group *PacerGroup
	// bar and barRL: a 429 asked for a wait longer than a run waits
	// (Retry.do); until bar, every request through the Pacer fails as
	// rate limited without being sent.
	bar   time.Time
	barRL *RateLimitedError
}

// IdleReset is how long an API must be left alone before a Pacer allows
// its burst again.
const IdleReset = time.Minute

// NewPacer returns a Pacer allowing perSecond requests with bursts of
// burst, timed by clock (nil means WallClock).
func NewPacer(perSecond float64, burst int, clock reconcile.Clock) *Pacer {
	if clock == nil {
		clock = reconcile.WallClock{}
	}
	// The window after the burst: per requests (the rate rounded up: 5 at
	// 4.75, the API's 5 less keysync's margin) in per/perSecond, and never
	// in less than a second.
	per := max(int(math.Ceil(perSecond)), 1)
	span := time.Second
	if perSecond > 0 {
		span = max(span, time.Duration(float64(per)/perSecond*float64(time.Second)))
	}
	return &Pacer{clock: clock, lim: rate.NewLimiter(rate.Limit(perSecond), burst), burst: burst, per: per, span: span}
}

// Wait blocks until a request may go: after any hold, then when the bucket
// has a token and, after the burst, the last second has room. A nil Pacer
// never waits.
func (p *Pacer) Wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	now := p.clock.Now()
	start := now.Add(max(p.hold.Sub(now), 0))
	at, undo, err := p.take(start)
	group := p.group
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if d := at.Sub(now); d > 0 {
		if err := p.clock.Sleep(ctx, d); err != nil {
			p.mu.Lock()
			undo()
			p.mu.Unlock()
			return err
		}
	}
	return group.wait(ctx)
}

// take reserves a request to go at start or later and returns when it may
// go, and how to give the reservation back (a request that will not go
// after all); p.mu is held by the caller of both.
func (p *Pacer) take(start time.Time) (time.Time, func(), error) {
	if rested := later(p.last, p.hold); p.burst > 1 && !p.last.IsZero() && start.Sub(rested) >= IdleReset {
		// Rested (a 429's hold is not rest): a full bucket again (a new
		// limiter starts full).
		p.spent, p.steady = 0, p.steady[:0]
		p.lim = rate.NewLimiter(p.lim.Limit(), p.burst)
	}
	t := p.limTime(start)
	r := p.lim.ReserveN(t, 1)
	if !r.OK() {
		return time.Time{}, nil, errors.New("pacer: burst is zero")
	}
	at := t.Add(r.DelayFrom(t))
	p.spent++
	if p.burst > 1 && p.spent == p.burst && p.lim.TokensAt(at) >= 1 {
		// The burst is spent, slowly enough to have earned tokens: one of
		// them stays in hand, so a request that reaches the API late (a
		// slow network, a busy machine) does not leave the next one an
		// empty bucket there. (A burst spent at once earned none, and the
		// steady rate starts from it as it always did.)
		p.lim.ReserveN(t, 1)
	}
	steady := p.burst > 1 && p.spent > p.burst
	var dropped *time.Time
	if steady {
		if len(p.steady) == p.per {
			first := p.steady[0]
			if next := first.Add(p.span); next.After(at) {
				at = next
			}
			p.steady, dropped = slices.Delete(p.steady, 0, 1), &first
		}
		p.steady = append(p.steady, at)
	}
	lastBefore := p.last
	p.last = at
	lim := p.lim
	return at, func() {
		r.CancelAt(p.limTime(p.clock.Now()))
		if lim != p.lim {
			return // rested since: the reservation went with the old bucket
		}
		p.spent--
		if i := slices.Index(p.steady, at); steady && i >= 0 {
			p.steady = slices.Delete(p.steady, i, i+1)
			if dropped != nil {
				p.steady = slices.Insert(p.steady, 0, *dropped)
			}
		}
		if p.last.Equal(at) {
			p.last = lastBefore
		}
	}, nil
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// limTime is t, or the latest time lim was handed if that is later, and
// becomes the latest; p.mu is held.
func (p *Pacer) limTime(t time.Time) time.Time {
	if t.Before(p.limAt) {
		t = p.limAt
	}
	p.limAt = t
	return t
}

// Rate returns the Pacer's steady rate per second and its burst.
func (p *Pacer) Rate() (perSecond float64, burst int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.lim.Limit()), p.burst
}

// Seed replays requests sent to the API before this Pacer existed (by an
// earlier process), at the given times on the Pacer's clock, so it starts
// with the tokens the server's bucket has left instead of a full burst:
// back-to-back processes then pace as one. Times after the clock's now are
// ignored; call it before the first Wait.
func (p *Pacer) Seed(times []time.Time) {
	if p == nil || len(times) == 0 {
		return
	}
	times = slices.Clone(times)
	slices.SortFunc(times, time.Time.Compare)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	for _, t := range times {
		if !t.After(now) {
			p.take(t)
		}
	}
}

// Bar refuses every request through the Pacer until the given time
// without sending it, as rl (a 429 asking for a wait longer than a run
// waits) refused one: the API would refuse each request before then the
// same way (other properties on the credential, serve's later webhook and
// poll runs).
func (p *Pacer) Bar(until time.Time, rl *RateLimitedError) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.bar) {
		p.bar, p.barRL = until, rl
	}
}

// errBarred marks a request a Pacer's Bar refused without sending it.
var errBarred = errors.New("not sent: the API asked to be left alone")

// barred returns, while a Bar is in force, the error a request gets: rate
// limited for the time left (ErrWaitTooLong, errBarred); nil otherwise.
func (p *Pacer) barred() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	if p.barRL == nil || !now.Before(p.bar) {
		return nil
	}
	rl := *p.barRL
	rl.RetryAfter = p.bar.Sub(now)
	return fmt.Errorf("%w: %w (%w)", ErrWaitTooLong, &rl, errBarred)
}

// Hold stops every request until the given time, as a 429 asks.
func (p *Pacer) Hold(until time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	group := p.group
	p.mu.Unlock()
	group.refused(p, until)
	p.hold429(until)
}

func (p *Pacer) hold429(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !until.After(p.hold) {
		return
	}
	p.hold = until
	// The bucket refills while the requests are held; the API, which
	// answered 429, is not so sure. One request goes when the hold ends,
	// then the steady rate.
	t := p.limTime(until)
	if n := int(p.lim.TokensAt(t)) - 1; n > 0 {
		p.lim.ReserveN(t, n)
	}
}

// PacerGroup is the Pacers of the credentials keysync uses on one API host
// (one per token or key, see Pacer). keysync assumes an API meters each
// credential on its own; the API documents do not say (3RPMS's gives no
// numbers at all). A host that meters them together, by client address or
// for the whole API, answers 429 to several of them. Once it has to two,
// the group paces its members as one caller too, for the rest of the
// process: each request also waits on a bucket of the group's own at the
// API's rate, held after the 429 as a member is (one request when the
// hold ends, then the rate). The two 429s must come within IdleReset of
// each other; a 429 to one credential alone (another client using that
// token, say) changes nothing for the others.
type PacerGroup struct {
	name   string
	log    *slog.Logger
	shared *Pacer

	mu      sync.Mutex
	refusal map[*Pacer]time.Time // when a 429 was last answered to each member
	engaged bool
}

// NewPacerGroup returns the group of an API host named name (for its log
// line), whose shared bucket allows perSecond with bursts of burst on
// clock. log says when it starts pacing its members as one; nil logs
// nothing.
func NewPacerGroup(name string, perSecond float64, burst int, clock reconcile.Clock, log *slog.Logger) *PacerGroup {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PacerGroup{name: name, log: log, shared: NewPacer(perSecond, burst, clock)}
}

// Join makes p a member of g.
func (g *PacerGroup) Join(p *Pacer) {
	p.mu.Lock()
	p.group = g
	p.mu.Unlock()
}

// Engaged reports whether g paces its members as one.
func (g *PacerGroup) Engaged() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.engaged
}

// refused records a 429 answered to member p, held until until.
func (g *PacerGroup) refused(p *Pacer, until time.Time) {
	if g == nil {
		return
	}
	now := g.shared.clock.Now()
	g.mu.Lock()
	if g.refusal == nil {
		g.refusal = map[*Pacer]time.Time{}
	}
	g.refusal[p] = now
	maps.DeleteFunc(g.refusal, func(_ *Pacer, at time.Time) bool { return now.Sub(at) >= IdleReset })
	start := !g.engaged && len(g.refusal) >= 2
	if start {
		g.engaged = true
	}
	engaged := g.engaged
	g.mu.Unlock()
	if start {
		g.log.Warn("the API answered 429 to two of keysync's credentials on one host: it meters them together, not each on its own; pacing them as one from now on",
			"api", g.name)
	}
	if engaged {
		g.shared.hold429(until)
	}
}

// wait waits on the shared bucket once g paces its members as one.
func (g *PacerGroup) wait(ctx context.Context) error {
	if !g.Engaged() {
		return nil
	}
	return g.shared.Wait(ctx)
}

// Retry is how an adapter retries one exchange: a 429 waits out its
// Retry-After (at most MaxWait; longer defers the system for this run),
// and a system that is unavailable (5xx, no answer) is retried with
// exponential backoff and full jitter, but only for idempotent calls: a
// create whose outcome is unknown is never sent again blindly.
type Retry struct {
	// Attempts is the most tries in all; 0 means 4.
	Attempts int
	// Base and Cap bound the backoff: a random wait in [0, min(Cap,
	// Base·2^n)). Zero means 500 ms and 10 s.
	Base, Cap time.Duration
	// MaxWait is the longest Retry-After the run waits out; 0 means 60 s.
	MaxWait time.Duration
	Clock   reconcile.Clock
	// Rand returns a number in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
	Log  *slog.Logger
}

// ErrWaitTooLong wraps a rate limit whose Retry-After is longer than the
// run can wait: that system is deferred to the next run.
var ErrWaitTooLong = errors.New("rate limited for longer than this run waits")

// Do runs fn, paced by pacer, retrying as the policy allows. idempotent
// says fn may be repeated after an unknown outcome (reads, PUT, DELETE).
func (r Retry) Do(ctx context.Context, pacer *Pacer, idempotent bool, fn func() error) error {
	return r.do(ctx, pacer, idempotent, nil, fn)
}

// do is Do, asking again, when set, before each retry: an error from it
// (a write's re-send the day's budget has no request for,
// reconcile.Resend) ends the retries, and the last failure is returned
// wrapped with it.
func (r Retry) do(ctx context.Context, pacer *Pacer, idempotent bool, again func() error, fn func() error) error {
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	clock := r.Clock
	if clock == nil {
		clock = reconcile.WallClock{}
	}
	var err error
	for n := 0; n < attempts; n++ {
		if berr := pacer.barred(); berr != nil {
			return berr
		}
		if werr := pacer.Wait(ctx); werr != nil {
			return werr
		}
		if err = fn(); err == nil {
			return nil
		}
		var rl *RateLimitedError
		switch {
		case errors.As(err, &rl):
			// A 429 was refused, not run: trying again is safe for any call.
			if rl.RetryAfter > r.maxWait() {
				pacer.Bar(clock.Now().Add(rl.RetryAfter), rl)
				return fmt.Errorf("%w (%s asks to wait %s): %w", ErrWaitTooLong, rl.System, rl.RetryAfter, err)
			}
			pacer.Hold(clock.Now().Add(rl.RetryAfter))
			if n == attempts-1 {
				return err
			}
			if aerr := ask(again); aerr != nil {
				return fmt.Errorf("%w; %w", err, aerr)
			}
			r.log().Warn("rate limited; waiting", "system", rl.System, "retry_after", rl.RetryAfter)
			if pacer == nil {
				if serr := clock.Sleep(ctx, rl.RetryAfter); serr != nil {
					return err
				}
			}
		case idempotent && errors.Is(err, reconcile.ErrUnavailable) && !errors.Is(err, reconcile.ErrEndpoint):
			// A host name that does not resolve will not in a few seconds.
			if n == attempts-1 {
				return err
			}
			if aerr := ask(again); aerr != nil {
				return fmt.Errorf("%w; %w", err, aerr)
			}
			d := r.backoff(n)
			r.log().Warn("system unavailable; retrying", "attempt", n+1, "wait", d, "err", err)
			if serr := clock.Sleep(ctx, d); serr != nil {
				return err
			}
		default:
			return err
		}
	}
	return err
}

// ask calls again, when set.
func ask(again func() error) error {
	if again == nil {
		return nil
	}
	return again()
}

func (r Retry) backoff(n int) time.Duration {
	base, ceiling := r.Base, r.Cap
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if ceiling <= 0 {
		ceiling = 10 * time.Second
	}
	d := min(ceiling, base<<min(n, 20))
	f := rand.Float64
	if r.Rand != nil {
		f = r.Rand
	}
	return time.Duration(f() * float64(d))
}

func (r Retry) maxWait() time.Duration {
	if r.MaxWait <= 0 {
		return 60 * time.Second
	}
	return r.MaxWait
}

func (r Retry) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// MaxRetryAfter caps every Retry-After keysync reads: the APIs' daily
// request caps reset within a day, so no longer wait is ever meaningful.
// Any wait past Retry.MaxWait defers the system to the next run anyway;
// the cap only keeps the reported wait truthful and free of overflow.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header (seconds or an HTTP date)
// relative to now. Missing, negative or malformed values give one second;
// values above MaxRetryAfter, however large, give MaxRetryAfter. It is the
// one Retry-After policy of every adapter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	const floor, ceiling = time.Second, MaxRetryAfter
	v = strings.TrimSpace(v)
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Compare in seconds before converting, so huge values cannot
		// overflow into negative durations.
		switch {
		case err != nil && strings.HasPrefix(v, "-"), secs < 0:
			d = 0
		case err != nil, secs > int64(ceiling/time.Second):
			d = ceiling
		default:
			d = time.Duration(secs) * time.Second
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, floor), ceiling)
}
