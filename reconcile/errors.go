package reconcile

import "errors"

// Conditions callers branch on. Adapters wrap them with context.
var (
	// ErrNotFound: the stay or credential does not exist (any more). For a
	// revoke or delete it means the work is already done.
	ErrNotFound = errors.New("not found")
	// ErrNotOurs: the remote system says the credential belongs to another
	// integration.
	ErrNotOurs = errors.New("not created by this integration")
	// ErrConflict: the request contradicts remote state (the stay already
	// holds another key; the key is still assigned).
	ErrConflict = errors.New("conflict")
	// ErrRejected: the remote system refused the input as invalid.
	ErrRejected = errors.New("rejected as invalid")
	// ErrUnknownOutcome: the request was sent and no answer came back, so
	// it may or may not have taken effect.
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrUnauthorized: the credentials for a system are wrong or lack a
	// permission; nothing more can be done with that system this run.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsafe: the plan looks like the result of a source outage (far
	// fewer stays than recorded) and was not applied; --force overrides.
	ErrUnsafe = errors.New("refused: the plan looks unsafe")
	// ErrConfig: the config contradicts what a source shows (a room keyed
	// by its name instead of its id); the property is not applied.
	ErrConfig = errors.New("config does not match the source")
	// ErrUnavailable: the system answered 5xx or not at all. Idempotent
	// calls may be retried after a backoff; it may be wrapped together
	// with ErrUnknownOutcome for writes.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnreachable: no connection to the system could be made at all this
	// run (refused, timed out connecting, TLS failed) before it ever
	// answered: the server is down, firewalled or the port is wrong. It is
	// wrapped together with ErrUnavailable, so reads are still retried.
	ErrUnreachable = errors.New("cannot connect")
	// ErrEndpoint: the configured URL is wrong: its host name does not
	// resolve, or the server answered 404 for the endpoint itself. Nothing
	// is retried; the config needs fixing.
	ErrEndpoint = errors.New("wrong URL")
	// ErrStalePlan: a saved plan no longer holds (Options.Review refused
	// the plan the run computed); nothing was written.
	ErrStalePlan = errors.New("the saved plan no longer holds")
	// ErrRateLimited: the system refused the request for its rate limit
	// (HTTP 429); the request was not run, and the next run retries it.
	ErrRateLimited = errors.New("rate limited")
	// ErrOverBudget: a write would have been sent again (after a 429, an
	// outage, or a 3RPMS document the server undid or refused whole) and
	// the day's request budget had nothing left for it, so it was not
	// sent (see WithResends). Alone, it means the write did not run: its
	// action is deferred to the next run. With ErrUnknownOutcome, the send
	// before it may have run: the next read decides.
	ErrOverBudget = errors.New("the day's request budget has nothing left to send it again")
	// ErrNoList: the system has no call that lists what it holds (it
	// answered the list 404 or 405), so nothing can be read back from it:
	// a backfill cannot adopt there, and a create whose answer was lost
	// cannot be found. The API documents show no list call for OpenApp or
	// the key box; keysync uses one where it answers.
	ErrNoList = errors.New("the system offers no list to read back from")
)
