package sandboxkit

import (
	"fmt"
	"time"
)

// Limiter admits a sandbox's API requests, per caller, under its Limits and
// on its own clock (Rates.RateNow in every sandbox's Options), which also
// stamps the request log.
type Limiter struct {
	quota   *Quota
	now     func() time.Time
	message func(Refusal, Limits) string
}

// NewLimiter returns a Limiter enforcing l on the clock now. A Burst of zero
// or less means SeedBurst; a nil now means time.Now.
func NewLimiter(l Limits, now func() time.Time) *Limiter {
	if l.Burst <= 0 {
		l.Burst = SeedBurst
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{quota: NewQuota(l), now: now, message: RefusalMessage}
}

// Rates are the rate-limit options every sandbox's Options embeds: the
// limits each caller (a token, a user, an API key, a partner key: the
// sandbox's Options says which) is held to, and the clock they are counted
// on. The zero value sets no limits and counts on time.Now.
type Rates struct {
	// RateNow is the clock of the rate limiter and of the request log; nil
	// means time.Now. It is independent of the business clock.
	RateNow func() time.Time
	// RatePerSecond is each caller's sustained request rate; zero or
	// negative disables the per-second limit.
	RatePerSecond float64
	// Burst is each caller's burst; zero or negative means SeedBurst.
	Burst int
	// DailyCap is each caller's requests per UTC day (by RateNow); zero or
	// negative disables it.
	DailyCap int
}

// WithSeedLimits returns r with the API documents' limits (SeedPerSecond,
// SeedBurst, SeedDailyCap) filled into the fields that are zero.
func (r Rates) WithSeedLimits() Rates {
	FillSeedLimits(&r.RatePerSecond, &r.Burst, &r.DailyCap)
	return r
}

// Limiter returns a new Limiter enforcing r on the clock RateNow.
func (r Rates) Limiter() *Limiter {
	return NewLimiter(Limits{PerSecond: r.RatePerSecond, Burst: r.Burst, DailyCap: r.DailyCap}, r.RateNow)
}

// WithMessage makes l word its refusals with msg instead of RefusalMessage,
// for a service whose API document gives its own text. It returns l.
func (l *Limiter) WithMessage(msg func(Refusal, Limits) string) *Limiter {
	l.message = msg
	return l
}

// Now reads the limiter's clock.
func (l *Limiter) Now() time.Time { return l.now() }

// Admit counts a request by who against its limits. It returns 0 when the
// request may proceed, or the seconds to wait (for Retry-After) and the
// message of the 429.
func (l *Limiter) Admit(who string) (retryAfter int, msg string) {
	r, ok := l.quota.Admit(who, l.now())
	if ok {
		return 0, ""
	}
	return r.RetryAfter, l.message(r, l.quota.Limits())
}

// RefusalMessage is the usual text of a 429: which limit refused the
// request and when to retry.
func RefusalMessage(r Refusal, l Limits) string {
	if r.Daily {
		return fmt.Sprintf("rate limited: daily cap of %d requests reached; retry after %d s", l.DailyCap, r.RetryAfter)
	}
	return fmt.Sprintf("rate limited: %g requests per second, burst %d; retry after %d s", l.PerSecond, l.Burst, r.RetryAfter)
}
