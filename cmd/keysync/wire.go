package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keysync/keysync/internal/httpapi"
	rpmsapi "github.com/keysync/keysync/internal/threerpms"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/keybox"
	"github.com/keysync/keysync/sinks/openapp"
	rpmsink "github.com/keysync/keysync/sinks/threerpms"
	"github.com/keysync/keysync/sources/guestway"
	rpms "github.com/keysync/keysync/sources/threerpms"
)

// limiters holds one Pacer per metered credential (reconcile.Account) for
// the whole process, so every property and every run (serve's, the demo's)
// using a credential shares its pace, and properties on different
// credentials do not wait for each other; and one PacerGroup per API host,
// which paces the host's credentials as one should the host show it meters
// them together.
type limiters struct {
	mu     sync.Mutex
	m      map[reconcile.Account]*httpapi.Pacer
	groups map[string]*httpapi.PacerGroup // by system and host
	log    *slog.Logger
	// seed, when set, gives the times of an account's recent requests from
	// the ledger; a Pacer is seeded with them when it is created.
	seed func(reconcile.Account) []time.Time
}

// paceMargin is the share of a configured rate keysync actually uses: a
// request paced at exactly the server's rate that meets a few milliseconds
// of network jitter arrives a hair early and is refused with a 429.
const paceMargin = 0.95

// get returns the account's Pacer, creating it first at paceMargin of the
// configured rate, seeding it with the account's recent requests and
// joining it to the group of its system's host. The first property to use
// an account (a host) sets its rate and burst.
func (l *limiters) get(acct reconcile.Account, host string, perSecond float64, burst int, clock reconcile.Clock) *httpapi.Pacer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[reconcile.Account]*httpapi.Pacer{}
		l.groups = map[string]*httpapi.PacerGroup{}
	}
	p, ok := l.m[acct]
	if !ok {
		p = httpapi.NewPacer(perSecond*paceMargin, burst, clock)
		if l.seed != nil {
			p.Seed(l.seed(acct))
		}
		l.m[acct] = p
		name := string(acct.System()) + " at " + host
		g := l.groups[name]
		if g == nil {
			g = httpapi.NewPacerGroup(name, perSecond*paceMargin, burst, clock, l.log)
			l.groups[name] = g
		}
		g.Join(p)
	}
	return p
}

// logTo makes the groups the limiters make from now on log to log.
func (l *limiters) logTo(log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.log == nil {
		l.log = log
	}
}

// ledgerTimes reads request times from the ledger (*state.DB has it).
type ledgerTimes interface {
	RequestTimes(ctx context.Context, since time.Time) (map[reconcile.Account][]time.Time, error)
}

// seedFrom arms the limiters to seed new Pacers with the requests the
// ledger holds from the last IdleReset: a process that starts right after
// another then paces as if it had sent them, instead of assuming the
// server's burst is full (it is not: the server's bucket remembers).
//
// The one assumption: ledger stamps are the run's instant, the pacer's
// clock shifted by --now's offset (reconcile.Meter). They are on the
// pacer's timeline only when the run acts at the clock's present, so
// pacers are seeded only when this run's now is within a second of the
// clock (no --now, as a timer runs keysync); a --now preview starts with a
// full burst as before. Records an earlier --now run stamped elsewhere are
// ignored when in the future and, in the recent past, only make the pacer
// more careful. Ledger rows recorded without an account (before state
// migration 0008) are replayed into every account of their system:
// careful, never too fast.
func (l *limiters) seedFrom(ctx context.Context, store reconcile.Store, now time.Time, clock reconcile.Clock, log *slog.Logger) {
	lt, ok := store.(ledgerTimes)
	if !ok {
		return
	}
	if clock == nil {
		clock = reconcile.WallClock{}
	}
	at := clock.Now()
	if d := now.Sub(at); d > time.Second || d < -time.Second {
		return
	}
	times, err := lt.RequestTimes(ctx, at.Add(-httpapi.IdleReset))
	if err != nil {
		log.Warn("could not read recent requests from the ledger; pacing from a full burst", "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seed = func(acct reconcile.Account) []time.Time {
		return append(slices.Clone(times[acct]), times[reconcile.AnyAccount(acct.System())]...)
	}
}

// buildRunner wires the config's properties to their adapters.
func (env *environment) buildRunner(cfg *Config, store reconcile.Store, log *slog.Logger, meter *reconcile.Meter) (*reconcile.Runner, error) {
	env.limiters.logTo(log)
	r := &reconcile.Runner{Store: store, Log: log, Meter: meter, Crash: crashHook(env.getenv), Budgets: budgets(cfg),
		Retention: cfg.retention}
	hotels, limits := cfg.chains(), cfg.limits()
	var listed []string // every property's name, in a shard the others' too
	for _, p := range cfg.every() {
		listed = append(listed, p.Name)
	}
	for i := range cfg.Properties {
		site, err := env.site(&cfg.Properties[i], log, meter, hotels, limits, listed)
		if err != nil {
			return nil, err
		}
		r.Sites = append(r.Sites, site)
	}
	// The properties of a split Guestway organisation each know which of
	// the others maps each listing, for the guests that move there.
	for _, idx := range cfg.splitOrgs() {
		for _, i := range idx {
			others := map[string]string{}
			for _, j := range idx {
				for room := range cfg.Properties[j].Rooms {
					if j != i {
						others[room] = cfg.Properties[j].Name
					}
				}
			}
			src, ok := r.Sites[i].Source.(*guestway.Source)
			if !ok {
				return nil, fmt.Errorf("properties %q: its Guestway source is a %T", cfg.Properties[i].Name, r.Sites[i].Source)
			}
			src.Beside(others)
		}
	}
	// The properties of a split hotel or organisation are each other's
	// siblings: a stay moving between them is let go of by the one and
	// taken up by the other in the same run, a hotel's PIN key going along.
	for _, idx := range cfg.splits() {
		for _, i := range idx {
			for _, j := range idx {
				if i != j {
					r.Sites[i].Siblings = append(r.Sites[i].Siblings, cfg.Properties[j].Name)
				}
			}
		}
	}
	return r, nil
}

// hotel is what the properties on one 3RPMS endpoint and token (a hotel
// split into properties) share in a run: one read of the window's stays,
// and documents for their key mutations (up to the max_ops_per_request of
// the first of them).
type hotel struct {
	stays *rpms.Hotel
	chain *rpmsink.Chain
}

// chains finds the properties that share a 3RPMS endpoint and token: the
// map holds an empty hotel for each such endpoint and token, filled by the
// first of its properties that is wired; a property alone on its endpoint
// and token is not in it.
func (cfg *Config) chains() map[string]*hotel {
	out := map[string]*hotel{}
	for k := range cfg.splitHotels() {
		out[k] = &hotel{}
	}
	return out
}

// chainKey names the endpoint and token of a 3RPMS connection (never
// printed: it holds the token).
func (t *ThreeRPMSConfig) chainKey() string {
	return endpointKey(t.Endpoint) + "\x00" + t.token.Reveal()
}

// credentialLimits is what the properties that use one metered credential
// configure for it, taken together: the smallest daily cap (a property that
// turns its budget off, -1, lifts no other's cap) with the reserve set
// beside it (of two such caps, the larger reserve: a reserve set beside a
// larger cap could take all of a smaller one), the slowest rate and the
// smallest burst; in a shard, the shard's share of them.
type credentialLimits struct {
	budget reconcile.DailyBudget // Cap 0: no budget
	rate   float64
	burst  int
}

// limits gives each metered credential of the config its limits, taken
// over every property of the config: in a shard the others' too, so each
// shard takes its share (applyShard) of the same limits, whichever of the
// credential's properties it runs.
func (c *Config) limits() map[reconcile.Account]credentialLimits {
	out := c.wholeLimits()
	for acct, l := range out {
		l.budget = shareOf(l.budget, c.budgetShare[acct])
		l.rate, l.burst = shareOfPace(l.rate, l.burst, c.budgetShare[acct])
		out[acct] = l
	}
	return out
}

// wholeLimits is limits before a shard takes its share.
func (c *Config) wholeLimits() map[reconcile.Account]credentialLimits {
	out := map[reconcile.Account]credentialLimits{}
	for _, p := range c.every() {
		for sys, acct := range p.accounts() {
			a := p.apiConfig(sys)
			l, seen := out[acct]
			if !seen || a.RatePerSecond < l.rate {
				l.rate = a.RatePerSecond
			}
			if !seen || a.Burst < l.burst {
				l.burst = a.Burst
			}
			switch {
			case a.DailyCap <= 0:
			case l.budget.Cap == 0 || a.DailyCap < l.budget.Cap:
				l.budget = reconcile.DailyBudget{Cap: a.DailyCap, Reserve: a.Reserve}
			case a.DailyCap == l.budget.Cap:
				l.budget.Reserve = max(l.budget.Reserve, a.Reserve)
			}
			out[acct] = l
		}
	}
	return out
}

// budgets is the daily request budget of each metered credential this
// config's properties use (limits: in a shard, its share). The ledger
// counts an account's requests across the whole state file.
func budgets(cfg *Config) map[reconcile.Account]reconcile.DailyBudget {
	limits := cfg.limits()
	out := map[reconcile.Account]reconcile.DailyBudget{}
	for i := range cfg.Properties {
		for _, acct := range cfg.Properties[i].accounts() {
			if b := limits[acct].budget; b.Cap > 0 {
				out[acct] = b
			}
		}
	}
	return out
}

// accounts names the metered credential each system the property calls
// counts its requests against: the 3RPMS token, Guestway's partner key
// (not the organisation's token: the Guestway API meters the partner, so
// every organisation on one partner key shares its limits), the OpenApp
// API key, the key-box account (its username).
//
// A name must identify the credential across runs and config edits and
// never reveal it, so it is a fingerprint, not a property name (which
// would move the ledger's count to another name when properties are
// reordered or renamed): the first 8 hex digits of SHA-256 over the
// system, the API's host and the credential. 32 bits cannot be turned
// back into a token or key of any real length, and two credentials of one
// portfolio colliding is a one-in-billions chance (it would only make them
// share a budget: careful, not unsafe). The key box is fingerprinted by
// its username, never its password, which may be short enough to guess
// from a fingerprint. A rotated secret is a new account: the API meters
// the new credential afresh. Reports list the properties using each
// account beside its name.
func (p *PropertyConfig) accounts() map[reconcile.System]reconcile.Account {
	out := map[reconcile.System]reconcile.Account{}
	p.apiCredentials(func(sys reconcile.System, endpoint, credential string) {
		out[sys] = fingerprint(sys, endpoint, credential)
	})
	return out
}

// apiCredentials calls f with each API credential of p: its system, its
// endpoint and what its account is named by (see accounts).
func (p *PropertyConfig) apiCredentials(f func(sys reconcile.System, endpoint, credential string)) {
	if t := p.ThreeRPMS; t != nil {
		f(reconcile.System3RPMS, t.Endpoint, t.token.Reveal())
	}
	if g := p.Guestway; g != nil {
		f(reconcile.SystemGuestway, g.BaseURL, g.partnerKey.Reveal())
	}
	if o := p.OpenApp; o != nil {
		f(reconcile.SystemOpenApp, o.BaseURL, o.apiKey.Reveal())
	}
	if k := p.KeyBox; k != nil {
		f(reconcile.SystemKeyBox, k.BaseURL, k.Username)
	}
}

// usersOf names the properties whose requests count against acct, in
// config order.
func (cfg *Config) usersOf(acct reconcile.Account) []string {
	var out []string
	for i := range cfg.Properties {
		for _, a := range cfg.Properties[i].accounts() {
			if a == acct {
				out = append(out, cfg.Properties[i].Name)
				break
			}
		}
	}
	return out
}

// apiConfig is the property's limits for a system it calls.
func (p *PropertyConfig) apiConfig(sys reconcile.System) APIConfig {
	switch {
	case sys == reconcile.System3RPMS && p.ThreeRPMS != nil:
		return p.ThreeRPMS.APIConfig
	case sys == reconcile.SystemGuestway && p.Guestway != nil:
		return p.Guestway.APIConfig
	case sys == reconcile.SystemOpenApp && p.OpenApp != nil:
		return p.OpenApp.APIConfig
	case sys == reconcile.SystemKeyBox && p.KeyBox != nil:
		return p.KeyBox.APIConfig
	}
	return APIConfig{}
}

// shareOfPace is a shard's part of a credential's pace, for a credential
// that properties in several shards use (share, from applyShard; 0 means
// unsharded): the rate and the burst times the share, the burst rounded
// down but at least 1, so the shards together stay within the credential's
// limits as their budgets do.
func shareOfPace(perSecond float64, burst int, share float64) (float64, int) {
	if share <= 0 || share >= 1 {
		return perSecond, burst
	}
	return perSecond * share, max(1, int(float64(burst)*share))
}

// fingerprint is the Account of a credential on an API (see accounts).
func fingerprint(sys reconcile.System, endpoint, credential string) reconcile.Account {
	return fingerprintOn(sys, hostOf(endpoint), credential)
}

func fingerprintOn(sys reconcile.System, host, credential string) reconcile.Account {
	sum := sha256.Sum256([]byte(string(sys) + "\x00" + host + "\x00" + credential))
	return reconcile.NewAccount(sys, hex.EncodeToString(sum[:4]))
}

// renamedAccounts maps the name each of the config's credentials had
// before fingerprints took the host as canonicalHost (the host as the URL
// wrote it, case and default port included) to its name now, where the
// two differ: the state's request ledger holds a day of requests under
// the earlier name, which must go on counting against the credential's
// budget and pace (state.DB.CountAs), or the first day after an upgrade
// would start from a full budget and pass the API's daily limit.
func (cfg *Config) renamedAccounts() map[reconcile.Account]reconcile.Account {
	out := map[reconcile.Account]reconcile.Account{}
	rawHost := func(endpoint string) string {
		u, err := url.Parse(endpoint)
		if err != nil {
			return endpoint
		}
		return u.Host
	}
	add := func(sys reconcile.System, endpoint, credential string) {
		if raw := rawHost(endpoint); raw != hostOf(endpoint) {
			out[fingerprintOn(sys, raw, credential)] = fingerprint(sys, endpoint, credential)
		}
	}
	for i := range cfg.Properties {
		cfg.Properties[i].apiCredentials(add)
	}
	// A name a credential of the config has now is never renamed: its
	// rows are that credential's own requests (the same key on one host
	// and port under the other scheme, https://h:443 having been named by
	// "h:443" as http://h:443 still is, or a fingerprint collision), and
	// moving them would leave it a full budget and pace every day.
	for _, props := range [][]PropertyConfig{cfg.Properties, cfg.whole} {
		for i := range props {
			for _, acct := range props[i].accounts() {
				delete(out, acct)
			}
		}
	}
	return out
}

// site builds one property's source and sinks (their warnings go to log),
// or says which of its systems could not be set up. listed names every
// property of the config: OpenApp takes over the invites of a name not
// among them (a renamed property's).
func (env *environment) site(p *PropertyConfig, log *slog.Logger, meter *reconcile.Meter, hotels map[string]*hotel, limits map[reconcile.Account]credentialLimits, listed []string) (*reconcile.Site, error) {
	// One limiter per metered credential (which includes the API's host:
	// the sandboxes share a host, real systems do not), at the pace its
	// properties allow it together (limits).
	accounts := p.accounts()
	// transport is every adapter's transport for sys: its credential's
	// limiter and account, the retry policy, the meter and a's cap.
	transport := func(sys reconcile.System, a APIConfig, base string) httpapi.Transport {
		l := limits[accounts[sys]]
		return httpapi.Transport{
			Pacer: env.limiters.get(accounts[sys], hostOf(base), l.rate, l.burst, env.clock), Account: accounts[sys],
			Retry: env.retry, Meter: meter, MaxResponseBytes: a.MaxResponseBytes, Now: env.now,
		}
	}
	site := &reconcile.Site{Property: p.policy(), Sinks: map[reconcile.System]reconcile.Sink{}, Accounts: accounts}
	if t := p.ThreeRPMS; t != nil {
		client, err := rpmsapi.NewClient(rpmsapi.ClientOptions{
			Endpoint: t.Endpoint, Token: t.token, Transport: transport(reconcile.System3RPMS, t.APIConfig, t.Endpoint),
		})
		if err != nil {
			return nil, fmt.Errorf("properties %q: threerpms: %w", p.Name, err)
		}
		src := rpms.NewSource(client, p.Name, t.PageSize)
		src.SetLogger(log)
		site.Source, site.SourceSystem = src, reconcile.System3RPMS
		sink := rpmsink.New(client, t.MaxOpsPerRequest)
		if h := hotels[t.chainKey()]; h != nil {
			if h.chain == nil {
				h.stays, h.chain = rpms.NewHotel(env.clock), rpmsink.NewChain(client, t.MaxOpsPerRequest, env.clock)
			}
			// The config gives each of them its own rooms (checkSplits).
			src.Within(sortedKeys(p.Rooms), h.stays)
			sink = h.chain.Sink()
		}
		if log != nil {
			// A Chain's properties share one sink limit: name the endpoint.
			sink.SetLogger(log.With("host", hostOf(t.Endpoint)))
		}
		site.Sinks[reconcile.System3RPMS] = sink
	}
	if g := p.Guestway; g != nil {
		src, err := guestway.New(guestway.Options{
			BaseURL: g.BaseURL, PartnerKey: g.partnerKey, Token: g.token, Property: p.Name,
			ReservationsPath: g.ReservationsPath, ReservationPath: g.ReservationPath, AccessesPath: g.AccessesPath,
			PerPage: g.PerPage, Transport: transport(reconcile.SystemGuestway, g.APIConfig, g.BaseURL), Location: p.location,
		})
		if err != nil {
			return nil, fmt.Errorf("properties %q: guestway: %w", p.Name, err)
		}
		src.SetLogger(log)
		site.Source, site.SourceSystem = src, reconcile.SystemGuestway
	}
	if o := p.OpenApp; o != nil {
		portals := map[string][]string{}
		for id, room := range p.Rooms {
			if len(room.Portals) > 0 {
				portals[id] = room.Portals
			}
		}
		sink, err := openapp.New(openapp.Options{
			BaseURL: o.BaseURL, APIKey: o.apiKey, OrgID: o.OrgID, IntegrationID: o.IntegrationID,
			Rooms: portals, SharedPortals: o.SharedPortals, MaxUses: o.MaxUses, GuestURL: o.GuestURL, Property: p.Name, Listed: listed, NoList: o.NoList,
			Transport: transport(reconcile.SystemOpenApp, o.APIConfig, o.BaseURL),
		})
		if err != nil {
			return nil, fmt.Errorf("properties %q: openapp: %w", p.Name, err)
		}
		site.Sinks[reconcile.SystemOpenApp] = sink
	}
	if k := p.KeyBox; k != nil {
		keys := map[string]keybox.KeyRef{}
		for id, room := range p.Rooms {
			if room.KeyID != "" || room.KeySerial != "" {
				keys[id] = keybox.KeyRef{ID: room.KeyID, SerialNumber: room.KeySerial, Compartment: reconcile.Secret(room.Compartment)}
			}
		}
		sink, err := keybox.New(keybox.Options{
			BaseURL: k.BaseURL, Username: k.Username, Password: k.password,
			CreatePath: k.CreatePath, CancelPath: k.CancelPath, CancelMethod: k.CancelMethod, ListPath: k.ListPath, NoList: k.NoList,
			Rooms: keys, TimeZone: p.location, Locale: k.Locale, Silent: k.Silent, Property: p.Name,
			Transport: transport(reconcile.SystemKeyBox, k.APIConfig, k.BaseURL),
		})
		if err != nil {
			return nil, fmt.Errorf("properties %q: %w", p.Name, err)
		}
		site.Sinks[reconcile.SystemKeyBox] = sink
	}
	return site, nil
}

// hostOf is the API host an endpoint names, as one server is named
// however the config spells it: lower case, without the scheme's default
// port. Accounts (fingerprint) and pacer groups are by it, and a split
// hotel's endpoints compare by it (endpointKey), so one token on one host
// is one account, paced and budgeted once.
func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	return canonicalHost(u)
}

// canonicalHost is u's host in lower case, without the default port of
// its scheme (443 for https, 80 for http).
func canonicalHost(u *url.URL) string {
	host := strings.ToLower(u.Host)
	switch port := u.Port(); {
	case port == "443" && strings.EqualFold(u.Scheme, "https"), port == "80" && strings.EqualFold(u.Scheme, "http"):
		host = strings.TrimSuffix(host, ":"+port)
	}
	return host
}

// crashHook returns the fault tests' hook: with KEYSYNC_CRASH_AT set to
// POINT[:SYSTEM][:N] (a reconcile crash point such as after-intent, the
// system whose batch it is, and which occurrence, default 1), the process
// kills itself with SIGKILL there, exactly as an OOM kill or power loss
// would stop it. Unset, it does nothing.
func crashHook(getenv func(string) string) func(string, reconcile.System) {
	spec := getenv("KEYSYNC_CRASH_AT")
	if spec == "" {
		return nil
	}
	parts := strings.Split(spec, ":")
	point, system, nth := parts[0], "", 1
	for _, p := range parts[1:] {
		if n, err := parsePositive(p); err == nil {
			nth = n
		} else {
			system = p
		}
	}
	var mu sync.Mutex
	seen := 0
	return func(p string, sys reconcile.System) {
		if p != point || (system != "" && string(sys) != system) {
			return
		}
		mu.Lock()
		seen++
		hit := seen == nth
		mu.Unlock()
		if hit {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not instant; never run past the point
		}
	}
}
