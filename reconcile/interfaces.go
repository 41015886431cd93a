package reconcile

import (
	"context"
	"time"
)

// StaySource reads stays from a PMS or channel manager.
type StaySource interface {
	// Stays returns every stay whose departure is after from and whose
	// arrival is on or before to, following every page. Sources that
	// report cancellations return cancelled stays with Cancelled set. An
	// error means the read is incomplete and must not be planned from.
	Stays(ctx context.Context, from, to Date) ([]Stay, error)
	// StaysByID returns those of ids that still exist. A stay that was
	// deleted or whose reservation was cancelled is simply absent.
	StaysByID(ctx context.Context, ids []string) ([]Stay, error)
}

// CancellationReporter is a StaySource whose reads say a stay is cancelled
// (Stay.Cancelled) rather than leave it out: what its look-up by id
// answers is the stay as it is, and a stay its window read misses but the
// look-up shows live is kept (NoteUnlisted does not apply). Runner finds
// it on the source as it finds Finder on a sink.
type CancellationReporter interface {
	// ReportsCancellations reports whether the source's reads do.
	ReportsCancellations() bool
}

// MovedStaySource is a StaySource of one of several properties on one
// source (a split hotel, Site.Siblings) whose window reads return only the
// stays in the property's own rooms. A backfill reads through it the
// stays now in the other properties' rooms as well: with the state lost,
// nothing else tells the property to end what it issued for its own
// doors to a stay that moved meanwhile.
type MovedStaySource interface {
	// MovedStays returns the stays of the window from..to, as Stays reads
	// it, that are in another of the source's properties' rooms, each
	// marked Stay.MovedTo as StaysByID marks them.
	MovedStays(ctx context.Context, from, to Date) ([]Stay, error)
}

// Sink applies actions on one system.
type Sink interface {
	// MaxBatch is how many actions may share one request; 1 where the API
	// has no batching.
	MaxBatch() int
	// Apply sends the actions as one request and returns one Outcome per
	// action, in order. A non-nil error means the request failed as a
	// whole: it wraps ErrUnknownOutcome when the request may have taken
	// effect (sent, no answer), and otherwise nothing was applied.
	Apply(ctx context.Context, actions []*Action) ([]Outcome, error)
}

// Finder is a Sink that can read back a create whose outcome is unknown
// (the answer was lost, or the process died after sending it): the run
// asks before planning, so a lost invite or access is neither duplicated
// nor forgotten.
type Finder interface {
	// Find looks for what c's create made. found is false when it made
	// nothing; then remoteID is empty. secret is the credential's secret
	// where the system returns it on reads ("" otherwise).
	Find(ctx context.Context, c *Credential) (remoteID string, secret Secret, found bool, err error)
}

// BatchFinder is a Finder that reads back many creates with a few reads
// (one list, not one per credential). A backfill asks it before it creates
// invites or key-box accesses: after the state file was lost, or a shard
// started a new one, those the guests already hold are adopted instead of
// issued a second time.
type BatchFinder interface {
	Finder
	// FindAll returns, for each of sought (creates the plan would send:
	// stay, room, kind and window set), what the system holds for it by
	// Find's rules, or nil where it holds nothing. No remote credential is
	// returned for two of them (as a Held or one of its Spares), nor one
	// whose id is in known (recorded already, for whatever stay).
	FindAll(ctx context.Context, sought []Sought, known map[string]bool) ([]*Held, error)
}

// Sought is a credential a BatchFinder looks for.
type Sought struct {
	// Cred is the credential a create would make. Its RoomID is "" for a
	// stay in none of the property's rooms (a split hotel's stay moved
	// into another property's, Stay.MovedTo), whose credentials here are
	// sought to be ended: only what is surely the stay's is returned (an
	// invite whose owner tag names it, a key-box access whose code it
	// Carries), and no room in Held.RoomID.
	Cred *Credential
	// Guest is the guest name the create would be sent with.
	Guest string
	// Exact takes only what a create of Cred for Guest would have made,
	// whatever else matches (a key-box access's visitor name too): a
	// backfill looks among the credentials of every stay, gone ones
	// included. A lost create's read-back (Find) is not exact: its name
	// is not known.
	Exact bool
	// Carries is the code the stay's 3RPMS key-storage key holds, as
	// read ("" when the stay has none): a key-box access of the stay's
	// whose code it is, is the stay's whatever its key or window (a stay
	// moved or re-dated while the state was lost), and is taken when
	// none matches exactly, to be replaced.
	Carries Secret
}

// FindOne is Find by way of findAll (a BatchFinder's FindAll) for one
// credential: how a BatchFinder implements Find.
func FindOne(ctx context.Context, findAll func(context.Context, []Sought, map[string]bool) ([]*Held, error), c *Credential) (remoteID string, secret Secret, found bool, err error) {
	held, err := findAll(ctx, []Sought{{Cred: c}}, nil)
	if err != nil || len(held) == 0 || held[0] == nil {
		return "", "", false, err
	}
	return held[0].RemoteID, held[0].Secret, true, nil
}

// Held is a credential a system already holds for a stay, as a
// BatchFinder read it back.
type Held struct {
	System   System
	RemoteID string
	// Secret is the credential's secret where the system returns it on
	// reads ("" otherwise: a derived key that needs it then replaces it).
	Secret Secret
	// Valid is its window as the system keeps it.
	Valid Window
	// RoomID is the room whose doors it opens, as the sink's config maps
	// rooms: the sought credential's, or "" when it opens other doors (an
	// invite of a stay that has moved since).
	RoomID string
	// CarriedBy is the id of the stay's 3RPMS key when that key is made
	// from this credential's secret (its PIN is the access's code, its QR
	// data the invite's link), as the runner checked through the sink's
	// Deriver; "" otherwise.
	CarriedBy string
	// Spares are the other credentials the system holds that are as
	// surely the stay's (an OpenApp invite whose owner tag names it):
	// a previous install's, left by a move or a replacement it did not
	// finish. A backfill adopts them to withdraw them; the runner keeps
	// the one the stay's key carries, when that is a spare.
	Spares []Held
}

// Deriver is a Sink whose credentials' secrets a 3RPMS key carries: the
// key box (a RoomAccessKeyStorage holds an access's code and the key's
// compartment) and OpenApp (a RoomAccessQR holds an invite's guest link).
// Apply finds it by type assertion on the sink of the key's upstream
// credential, as the runner finds Finder.
type Deriver interface {
	// Derive fills key's content (its PIN and compartment, or its QR data)
	// from upstreamSecret, what this sink's create returned for the
	// credential the key is derived from. An error means the key cannot
	// be built; it fails without a request.
	Derive(key *Credential, upstreamSecret Secret) error
}

// Checker is a Sink that can read back whether a credential it holds is
// live and opens over a window, for `keysync check`; it writes nothing.
type Checker interface {
	// Check reports whether c is on the system, enabled, and valid over
	// the whole of need, and what is wrong when it is not. err is for a
	// read that failed.
	Check(ctx context.Context, c *Credential, need Window) (Checked, error)
}

// Checked is what a Checker read of a credential.
type Checked struct {
	// Live: on the system, enabled and valid over the whole window asked.
	Live bool
	// InPlace: not live, but found, only switched off or valid over less
	// than the window: an update sets it right and keeps its secret (an
	// OpenApp invite's link), where a replacement would change it.
	InPlace bool
	// Why says what is wrong when it is not live.
	Why string
}

// Outcome is what became of one action in a request.
type Outcome struct {
	// RemoteID is the id of a created credential.
	RemoteID string
	// Secret is what a create returned that grants access, where the
	// system returns one: an OpenApp invite token, a key-box access code.
	Secret Secret
	// Err is nil when the action took effect. Sinks wrap ErrNotFound,
	// ErrNotOurs, ErrConflict and ErrRejected so Apply can decide.
	Err error
}

// Store is keysync's memory of what it issued. Implementations must write
// each Save atomically: a crash leaves either all of it or none.
type Store interface {
	// Credentials returns the live credentials of a property (Status.Live).
	Credentials(ctx context.Context, property string) ([]Credential, error)
	// Save writes credentials, inserting those with ID 0 (and setting their
	// ID), and appends the audit entries and the requests sent for them to
	// the daily ledger, all in one transaction.
	Save(ctx context.Context, creds []*Credential, audit []Audit, requests ...RequestRecord) error
	// Spent counts the ledger's requests per Account since the given time,
	// across runs and processes; requests recorded without an account come
	// under AnyAccount of their system.
	Spent(ctx context.Context, since time.Time) (map[Account]int, error)
	// DeferredStays returns the stays whose work the last run of the
	// property deferred for lack of budget, so this run does them first.
	DeferredStays(ctx context.Context, property string) (map[StayRef]bool, error)
	// SaveStays replaces the snapshot of a property's stays.
	SaveStays(ctx context.Context, property string, stays []Stay) error
	// BeginRun records the start of a run and returns its id.
	BeginRun(ctx context.Context, mode Mode, now time.Time) (int64, error)
	// FinishRun records a run's end and its report.
	FinishRun(ctx context.Context, id int64, r *Report) error
	// RecentFailures counts, for each stay, system and operation of a
	// property, in how many of the n runs recorded before run `before` an
	// action failed or had an unknown outcome.
	RecentFailures(ctx context.Context, property string, before int64, n int) (map[FailureKey]int, error)
	// Backfilled reports whether a backfill of the property has completed:
	// every key of unknown owner it found was claimed and answered.
	Backfilled(ctx context.Context, property string) (bool, error)
	// MarkBackfilled records that a backfill of the property completed.
	MarkBackfilled(ctx context.Context, property string, at time.Time) error
}

// EndedRecords is a Store that keeps the credentials it ended. Runner
// finds it on the Store: for a stay the source lists but cannot read
// (Stay.Unreadable) and that holds nothing live, the window last recorded
// for it tells a stay that has left from one that may be arriving; a
// Store without it leaves every such stay possibly arriving.
type EndedRecords interface {
	// LastRecorded returns, of the stays refs of property, each as last
	// recorded (its Ref, Arrival and Departure: those of its credential,
	// live or ended, whose departure is the latest); a stay keysync never
	// issued anything for is left out.
	LastRecorded(ctx context.Context, property string, refs []StayRef) (map[StayRef]Stay, error)
}

// ReleasedKeys is a Store that keeps the 3RPMS keys it let go of while
// another stay held them (StatusReleased). Runner finds it on the Store:
// a stay holding such a key that no live record names holds a key of
// keysync's that hotel staff gave it (Input.Lent), noted as such rather
// than as another integration's; a Store without it leaves such a key
// unknown.
type ReleasedKeys interface {
	// Released returns, of the 3RPMS remote key ids, those a credential
	// of property records released, each with the stay it was issued for
	// (the last released record's).
	Released(ctx context.Context, property string, ids []string) (map[string]StayRef, error)
}

// UnlistedHistory is a Store that remembers the stays a whole run kept
// though its window read left them out (NoteUnlistedOnce). Runner finds
// it on the Store: such a stay is taken as gone only when the whole run
// before kept it so too; a Store without it never takes one as gone.
type UnlistedHistory interface {
	// LastUnlisted returns the stays of property that the last whole run
	// (run or backfill) recorded before run `before` kept though its
	// window read left them out.
	LastUnlisted(ctx context.Context, property string, before int64) (map[StayRef]bool, error)
}

// ReadFailureHistory is a Store that remembers whole runs' failed reads.
// Runner finds it on the Store as it finds Finder on a sink: a Store
// without it never raises a repeated read failure.
type ReadFailureHistory interface {
	// RecentReadFailures counts, for each property, how many of the n
	// whole runs (run or backfill) recorded before run `before` failed to
	// read it (Failure.Read).
	RecentReadFailures(ctx context.Context, before int64, n int) (map[string]int, error)
}

// FailureKey names an action across runs: what was done to which stay's
// credential on which system.
type FailureKey struct {
	Stay   StayRef
	System System
	Op     Op
}

// MinRetention is the shortest retention a Pruner accepts: the request
// ledger's rolling 24 hours, which the daily budget counts, plus the two
// days the 3RPMS Room Access Key API takes to delete a key whose create
// answer was lost, so the record of an abandoned key outlives the key.
const MinRetention = 24*time.Hour + 2*24*time.Hour

// Pruner is a Store that forgets what retention no longer needs. The
// Runner finds it by type assertion and calls it once per run that writes
// (never in a dry run), near the end.
type Pruner interface {
	// Prune deletes, in one transaction, what is older than now - keep:
	// settled (deleted, released, abandoned) credentials last updated
	// before then, audit entries, ledger rows and run reports (the last
	// run of each mode is kept). Live credentials are never pruned. It
	// returns the number of rows deleted. keep below MinRetention is an
	// error; on any error nothing was deleted.
	Prune(ctx context.Context, now time.Time, keep time.Duration) (int, error)
}

// PropertyLister is a Store that can say which properties hold live
// credentials, so a run can name those its config no longer lists.
type PropertyLister interface {
	// LiveProperties counts the live credentials of every property that
	// has any.
	LiveProperties(ctx context.Context) (map[string]int, error)
}

// WriteSpender is a Store whose request ledger tells writes from reads.
// The reserve for revocations is then kept from every read of the day,
// not only from the run's own: reads are never deferred, and a day of
// polls would otherwise spend the reserve before the run that finds a
// checkout.
type WriteSpender interface {
	// SpentWrites is Spent of the write requests alone.
	SpentWrites(ctx context.Context, since time.Time) (map[Account]int, error)
}

// Releaser is a Store that can let go of the records a property the
// config no longer lists keeps of credentials a listed property now holds:
// a renamed property's new name claims or adopts its credentials, and the
// old name's records of them are then released, not named as live
// credentials a person must remove.
type Releaser interface {
	// ReleaseHeld marks released, with an audit line naming the holder,
	// each live credential of property whose remote credential (system
	// and remote id) one of holders records live for the same stay and
	// room, and returns how many. With dryRun it only counts them.
	ReleaseHeld(ctx context.Context, property string, holders []string, at time.Time, dryRun bool) (int, error)
}

// RequestRecord is one request sent, for the daily ledger.
type RequestRecord struct {
	System System
	// Account is the credential the request counted against; "" for one
	// recorded without (it counts against every account of System).
	Account Account
	At      time.Time
	Write   bool
}

// Audit is one line of the audit trail: an intent before a request, or an
// outcome after it, or a change keysync made to its own records.
type Audit struct {
	RunID  int64
	At     time.Time
	System System
	Op     Op
	Stay   StayRef
	// Cred is the credential concerned; the store reads its ID after
	// inserting it in the same Save.
	Cred     *Credential
	RemoteID string
	Phase    Phase
	Detail   string
}

// Phase is where an audited action stands.
type Phase string

// Audit phases.
const (
	PhaseIntent  Phase = "intent"
	PhaseDone    Phase = "done"
	PhaseFailed  Phase = "failed"
	PhaseUnknown Phase = "unknown"
	PhaseSkipped Phase = "skipped"
)

// Mode is the kind of run.
type Mode string

// Run modes.
const (
	ModeRun      Mode = "run"
	ModeBackfill Mode = "backfill"
	ModePlan     Mode = "plan"
	// ModeTargeted is a run for a few stays, after webhook events or
	// run --stay: it reads only them, by id.
	ModeTargeted Mode = "targeted"
)
