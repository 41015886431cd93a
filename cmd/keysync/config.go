package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/keysync/keysync/internal/schedule"
	"github.com/keysync/keysync/reconcile"
	rpmsink "github.com/keysync/keysync/sinks/threerpms"
)

// Config is the YAML configuration file; config.example.yaml documents
// every field.
type Config struct {
	// State is the SQLite state file.
	State string `yaml:"state"`
	// StateKeyFile holds the key the state file's secrets are sealed under
	// (64 hex digits, mode 0600); a relative path is beside the config.
	// KEYSYNC_STATE_KEY, or a systemd credential named state-key, take
	// precedence over it.
	StateKeyFile string `yaml:"state_key_file"`
	// Schedule is serve's cron spec (5 fields, or a descriptor such as
	// @daily), in the first property's time zone unless it starts with
	// CRON_TZ=.
	Schedule string `yaml:"schedule"`
	// schedule is Schedule parsed, filled by Validate.
	schedule schedule.Schedule
	// Retention is how long the state file keeps settled credentials, audit
	// entries, ledger rows and run reports: whole days, such as 90d. A node,
	// so that a field left out (the default, 90d) differs from one set to
	// nothing or to 0, which are errors.
	Retention yaml.Node `yaml:"retention"`
	// Listen is the address serve answers webhooks, /livez, /readyz and
	// /metrics on (host:port); empty means no listener. serve's --listen
	// overrides it.
	Listen string `yaml:"listen"`
	// WebhookDebounce is how long serve gathers webhook events for a
	// property before one targeted run: a Go duration, 100ms to 1m
	// (default 2s).
	WebhookDebounce string           `yaml:"webhook_debounce"`
	Properties      []PropertyConfig `yaml:"properties"`

	// Filled by Validate.
	retention time.Duration
	debounce  time.Duration
	// budgetShare, filled by applyShard, is the share of each credential's
	// daily budget this shard may use.
	budgetShare map[reconcile.Account]float64
	// shard, set by applyShard, is the shard the config was cut to, and
	// unsharded the configured state file, whose name the shards' files
	// take theirs from.
	shard     shardSpec
	unsharded string
	// whole, set by applyShard, is every property of the config, the
	// shard's and the others': a credential's limits and a field's path
	// are the whole config's.
	whole []PropertyConfig
	// shardOfProperty, set by applyShard, is the shard index of every
	// property of the whole config.
	shardOfProperty map[string]int
	// unset names the environment variables a command that calls no API
	// loaded the config without (withoutSecrets): the credentials they
	// name, and so their accounts, are stand-ins.
	unset []string
}

// noState explains err, a state file that does not exist: it names the
// backfill that creates this one, a shard's with its --shard.
func (c *Config) noState(err error) error {
	if lerr := c.shardedLayout(); lerr != nil {
		return lerr
	}
	if !c.shard.on() {
		return err
	}
	return fmt.Errorf("%w\nit is shard %s's state file (each shard, and each N, has its own): run `keysync backfill --config FILE --shard %s` once for it", err, c.shard, c.shard)
}

// PropertyConfig is one property: where it is, its hours, its 3RPMS
// connection and how its rooms open.
type PropertyConfig struct {
	Name       string      `yaml:"name"`
	TimeZone   string      `yaml:"timezone"`
	CheckIn    string      `yaml:"check_in"`
	CheckOut   string      `yaml:"check_out"`
	Grace      GraceConfig `yaml:"grace"`
	WindowDays int         `yaml:"window_days"`
	// The source: exactly one of ThreeRPMS and Guestway.
	ThreeRPMS *ThreeRPMSConfig `yaml:"threerpms"`
	Guestway  *GuestwayConfig  `yaml:"guestway"`
	// The sinks besides 3RPMS keys, needed by qr and key_storage rooms.
	OpenApp       *OpenAppConfig        `yaml:"openapp"`
	KeyBox        *KeyBoxConfig         `yaml:"keybox"`
	PIN           PINConfig             `yaml:"pin"`
	DefaultMethod string                `yaml:"default_method"`
	Rooms         map[string]RoomConfig `yaml:"rooms"`

	// Filled by Validate.
	location                *time.Location
	checkIn, checkOut       reconcile.TimeOfDay
	graceBefore, graceAfter time.Duration
}

// GraceConfig widens every access window.
type GraceConfig struct {
	BeforeArrival  string `yaml:"before_arrival"`
	AfterDeparture string `yaml:"after_departure"`
}

// APIConfig is what every API connection shares: request pacing for its
// host (the seeds give 5 requests/s with bursts of 10) and a cap on
// response bodies.
type APIConfig struct {
	RatePerSecond    float64 `yaml:"rate_per_second"`
	Burst            int     `yaml:"burst"`
	MaxResponseBytes int64   `yaml:"max_response_bytes"`
	// DailyCap is the API's request budget over a rolling 24 hours (the
	// seeds give 10,000); -1 turns the budget off.
	DailyCap int `yaml:"daily_cap"`
	// Reserve is the part of the budget only revocations may use.
	Reserve int `yaml:"reserve_for_revocations"`
	// ShardBudgetShare is the share of DailyCap (and of the reserve) each
	// shard using this credential may spend, and of RatePerSecond and Burst
	// it may send at, when keysync runs in shards (--shard I/N): a fraction
	// above 0 and at most 1. Unset (0), a credential used by properties in
	// k shards gives each 1/k.
	ShardBudgetShare float64 `yaml:"shard_budget_share"`
	// shareSet is whether the file sets ShardBudgetShare: a 0 it sets is
	// refused, not taken for unset.
	shareSet bool
}

// applyDefaults fills the fields the file did not set; f is the section's
// field path and set reports the paths the file holds (see fieldsSet).
func (a *APIConfig) applyDefaults(f string, set func(string) bool) {
	orDefault(set, f+".rate_per_second", &a.RatePerSecond, 5)
	orDefault(set, f+".burst", &a.Burst, 10)
	orDefault(set, f+".max_response_bytes", &a.MaxResponseBytes, 8<<20)
	orDefault(set, f+".daily_cap", &a.DailyCap, 10000)
	orDefault(set, f+".reserve_for_revocations", &a.Reserve, 200)
	a.shareSet = set(f + ".shard_budget_share")
}

func (a *APIConfig) validate(f string, bad func(string, string, ...any)) {
	if a.RatePerSecond <= 0 {
		bad(f+".rate_per_second", "%v: must be above 0", a.RatePerSecond)
	}
	if a.Burst < 1 {
		bad(f+".burst", "%d: must be at least 1", a.Burst)
	}
	if a.MaxResponseBytes < 1024 {
		bad(f+".max_response_bytes", "%d: must be at least 1024", a.MaxResponseBytes)
	}
	if a.DailyCap < -1 || a.DailyCap == 0 {
		bad(f+".daily_cap", "%d: must be a number of requests (at least 1), or -1 for no budget", a.DailyCap)
	}
	if a.Reserve < 0 || (a.DailyCap > 0 && a.Reserve >= a.DailyCap) {
		bad(f+".reserve_for_revocations", "%d: must be 0 or more and below daily_cap", a.Reserve)
	}
	if a.ShardBudgetShare < 0 || a.ShardBudgetShare > 1 || (a.shareSet && a.ShardBudgetShare == 0) {
		bad(f+".shard_budget_share", "%v: must be a fraction above 0 and at most 1, like 0.25 (or unset: an equal share per shard)", a.ShardBudgetShare)
	}
}

// ThreeRPMSConfig is the connection to one 3RPMS account.
type ThreeRPMSConfig struct {
	Endpoint string `yaml:"endpoint"`
	// Token is the API token, normally "${ENV_VAR}"; TokenFile reads it
	// from a file instead (a mounted secret). Tokens are never flags.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// PageSize is how many stays one read asks for.
	PageSize int `yaml:"page_size"`
	// MaxOpsPerRequest is how many mutations one request chains.
	MaxOpsPerRequest int `yaml:"max_ops_per_request"`
	// WebhookSecret signs the property's 3RPMS webhook deliveries
	// (package webhook has the contract); WebhookSecretFile reads it from a
	// file. Without one, serve answers the property's webhooks 404.
	WebhookSecret     string `yaml:"webhook_secret"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	APIConfig         `yaml:",inline"`

	token, webhookSecret reconcile.Secret
}

// GuestwayConfig is the connection to a Guestway organisation (the Guestway Open API).
type GuestwayConfig struct {
	BaseURL string `yaml:"base_url"`
	// PartnerKey is the Partnership API Key (X-Api-Key).
	PartnerKey     string `yaml:"partner_key"`
	PartnerKeyFile string `yaml:"partner_key_file"`
	// Token is the Organization Access Token (Authorization: Bearer gw_…).
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	PerPage   int    `yaml:"per_page"`
	// Paths the seed does not give; the sandbox serves the defaults.
	ReservationsPath string `yaml:"reservations_path"`
	ReservationPath  string `yaml:"reservation_path"`
	AccessesPath     string `yaml:"accesses_path"`
	// PollEvery makes serve read a short look-ahead (PollDays from today)
	// that often, since Guestway sends no webhooks: a Go duration of at
	// least 1m; empty means no polling, only the scheduled runs.
	PollEvery string `yaml:"poll_every"`
	PollDays  int    `yaml:"poll_days"`
	APIConfig `yaml:",inline"`

	partnerKey, token reconcile.Secret
	pollEvery         time.Duration
}

// OpenAppConfig is the OpenApp Virtual Access integration (the OpenApp access invites API).
type OpenAppConfig struct {
	BaseURL       string `yaml:"base_url"`
	APIKey        string `yaml:"api_key"`
	APIKeyFile    string `yaml:"api_key_file"`
	OrgID         string `yaml:"org_id"`
	IntegrationID string `yaml:"integration_id"`
	// GuestURL builds the guest's link from the invite token: a URL with a
	// {token} placeholder, or a base the token is appended to.
	GuestURL string `yaml:"guest_url"`
	// SharedPortals (lobby, garage) are on every stay's invite.
	SharedPortals []string `yaml:"shared_portals"`
	// MaxUses caps how often an invite opens a door; 0 leaves it out.
	MaxUses int `yaml:"max_uses"`
	// NoList says the API has no call listing invites (openapp.Options.NoList).
	NoList    bool `yaml:"no_list"`
	APIConfig `yaml:",inline"`

	apiKey reconcile.Secret
}

// KeyBoxConfig is the key-box service (its "Create Access" API, HTTP Basic auth).
type KeyBoxConfig struct {
	BaseURL      string `yaml:"base_url"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// The seed gives no paths: these are configurable, and the sandbox
	// serves the defaults.
	CreatePath   string `yaml:"create_path"`
	CancelPath   string `yaml:"cancel_path"`
	CancelMethod string `yaml:"cancel_method"`
	// ListPath reads back a create whose answer was lost.
	ListPath string `yaml:"list_path"`
	// NoList says the API has no list call (keybox.Options.NoList).
	NoList bool `yaml:"no_list"`
	// Locale of the guest's notifications: en, fr, ja, es, nl, it or pt.
	Locale string `yaml:"locale"`
	// Silent stops the service notifying the guest itself.
	Silent    bool `yaml:"silent"`
	APIConfig `yaml:",inline"`

	password reconcile.Secret
}

// PINConfig is the lock's PIN format.
type PINConfig struct {
	Length   int    `yaml:"length"`
	Alphabet string `yaml:"alphabet"`
}

// RoomConfig is how one room opens. In YAML it is either a method name
// ("pin") or a mapping with a method and what the method needs.
type RoomConfig struct {
	Method string `yaml:"method"`
	// Portals are the room's OpenApp portal ids (method qr).
	Portals []string `yaml:"portals"`
	// KeyID or KeySerial names the room's key in the key box, and
	// Compartment where staff put it (method key_storage). The compartment
	// goes to 3RPMS only, never to guests or logs.
	KeyID       string `yaml:"key_id"`
	KeySerial   string `yaml:"key_serial"`
	Compartment string `yaml:"compartment"`
}

// UnmarshalYAML accepts the short form `r101: pin` and, strictly, the
// mapping form.
func (r *RoomConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Method = n.Value
		return nil
	}
	type plain RoomConfig
	return strictDecode(n, (*plain)(r))
}

// strictDecode decodes a node with unknown fields rejected; yaml.v3's
// Node.Decode does not carry the outer decoder's KnownFields setting.
func strictDecode(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, yamlError(err))
	}
	return nil
}

// applyDefaults fills every field the file did not set. A field the file
// sets keeps its value, zero or empty included: validation then honours it
// (reserve_for_revocations: 0 is no reserve) or rejects it naming the field
// (window_days: 0), never silently replaces it. f is the property's field
// path, and set reports the paths the file holds (see fieldsSet).
func (p *PropertyConfig) applyDefaults(f string, set func(string) bool) {
	orDefault(set, f+".check_in", &p.CheckIn, "15:00")
	orDefault(set, f+".check_out", &p.CheckOut, "11:00")
	orDefault(set, f+".grace.before_arrival", &p.Grace.BeforeArrival, "0s")
	orDefault(set, f+".grace.after_departure", &p.Grace.AfterDeparture, "2h")
	orDefault(set, f+".window_days", &p.WindowDays, 7)
	if t := p.ThreeRPMS; t != nil {
		g := f + ".threerpms"
		orDefault(set, g+".page_size", &t.PageSize, 100)
		orDefault(set, g+".max_ops_per_request", &t.MaxOpsPerRequest, 100)
		t.APIConfig.applyDefaults(g, set)
	}
	if gw := p.Guestway; gw != nil {
		g := f + ".guestway"
		orDefault(set, g+".per_page", &gw.PerPage, 50)
		orDefault(set, g+".reservations_path", &gw.ReservationsPath, "/open/v1/reservations")
		orDefault(set, g+".reservation_path", &gw.ReservationPath, "/open/v1/reservations/{id}")
		orDefault(set, g+".accesses_path", &gw.AccessesPath, "/open/v1/reservations/{id}/accesses")
		orDefault(set, g+".poll_days", &gw.PollDays, 2)
		gw.APIConfig.applyDefaults(g, set)
	}
	if o := p.OpenApp; o != nil {
		o.APIConfig.applyDefaults(f+".openapp", set)
	}
	if k := p.KeyBox; k != nil {
		g := f + ".keybox"
		orDefault(set, g+".create_path", &k.CreatePath, "/v2/accesses")
		orDefault(set, g+".cancel_path", &k.CancelPath, "/v2/accesses/{id}")
		orDefault(set, g+".cancel_method", &k.CancelMethod, "DELETE")
		orDefault(set, g+".list_path", &k.ListPath, "/v2/accesses")
		k.APIConfig.applyDefaults(g, set)
	}
	orDefault(set, f+".pin.length", &p.PIN.Length, reconcile.DefaultPINPolicy.Length)
	orDefault(set, f+".pin.alphabet", &p.PIN.Alphabet, reconcile.DefaultPINPolicy.Alphabet)
}

// orDefault sets *v to def unless the file set the field.
func orDefault[T any](set func(string) bool, field string, v *T, def T) {
	if !set(field) {
		*v = def
	}
}

// fieldsSet returns the field paths a YAML document sets, in the form
// errors name them (properties[0].threerpms.page_size), whatever their
// value: `page_size: 0` and `page_size:` are set, a missing key is not.
// Anchors and merge keys (<<) count as set where they are merged.
func fieldsSet(raw []byte) (map[string]bool, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, yamlError(err)
	}
	set := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.AliasNode:
			if n.Alias != nil {
				walk(n.Alias, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i].Value, n.Content[i+1]
				if key == "<<" {
					walk(val, path) // a merge: its keys are this mapping's
					continue
				}
				p := key
				if path != "" {
					p = path + "." + key
				}
				set[p] = true
				walk(val, p)
			}
		}
	}
	walk(&doc, "")
	return set, nil
}

// LoadConfig reads, decodes and validates a config file. getenv resolves
// ${VAR} references (os.Getenv in production).
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// A relative state path is the config file's neighbour, wherever
	// keysync is started (under systemd the working directory is /).
	if !filepath.IsAbs(cfg.State) {
		cfg.State = filepath.Join(filepath.Dir(path), cfg.State)
	}
	if !filepath.IsAbs(cfg.StateKeyFile) {
		cfg.StateKeyFile = filepath.Join(filepath.Dir(path), cfg.StateKeyFile)
	}
	return cfg, nil
}

// ParseConfig decodes YAML with unknown fields rejected, applies defaults,
// resolves secrets and validates.
func ParseConfig(r io.Reader, getenv func(string) string) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	cfg := &Config{State: "keysync.db", StateKeyFile: "keysync.key", Schedule: "15 4 * * *", WebhookDebounce: "2s"}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	set, err := fieldsSet(raw)
	if err != nil {
		return nil, err
	}
	has := func(field string) bool { return set[field] }
	for i := range cfg.Properties {
		cfg.Properties[i].applyDefaults(fmt.Sprintf("properties[%d]", i), has)
	}
	if err := cfg.Validate(getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlError turns yaml.v3's messages ("line 4: field foo not found in type
// main.PropertyConfig") into ones that do not mention Go types.
func yamlError(err error) error {
	msg := goTypeRe.ReplaceAllString(err.Error(), "here")
	return errors.New(strings.ReplaceAll(msg, "yaml: unmarshal errors:\n  ", ""))
}

var goTypeRe = regexp.MustCompile(`in type main\.\w+`)

// checkSplits: properties that reach one 3RPMS endpoint with one token
// read the same hotel's room stays (a hotel split into properties:
// buildings with their own check-in times or locks), and properties on
// one Guestway organisation token the same organisation's reservations,
// so each must name its rooms and no room may be in two of them;
// otherwise two properties would key the same stay. (Another token on the
// same endpoint is another hotel, or organisation.)
func (c *Config) checkSplits(bad func(field, format string, args ...any)) {
	c.checkSplit(c.splitHotels(), "room", "rooms", func(p *PropertyConfig) string { return "3RPMS endpoint " + p.ThreeRPMS.Endpoint + " and its token" }, "the same 3RPMS endpoint and token", bad)
	c.checkSplit(c.splitOrgs(), "listing", "listings", func(p *PropertyConfig) string {
		return "Guestway " + p.Guestway.BaseURL + " and its organisation token"
	}, "the same Guestway organisation token", bad)
}

// checkSplit checks each group of properties that share a source (see
// checkSplits); room and rooms name what they list, shares says what a
// property shares and same what the others use.
func (c *Config) checkSplit(groups map[string][]int, room, rooms string, shares func(*PropertyConfig) string, same string, bad func(field, format string, args ...any)) {
	for _, key := range sortedKeys(groups) {
		owner := map[string]int{}
		for _, i := range groups[key] {
			p := &c.Properties[i]
			f := fmt.Sprintf("properties[%d]", i)
			if p.DefaultMethod != "" {
				bad(f+".default_method", "property %q shares %s with another property: list its %s instead (default_method would key the other's %s too)", p.Name, shares(p), rooms, rooms)
			}
			for _, id := range sortedKeys(p.Rooms) {
				if j, ok := owner[id]; ok {
					bad(fmt.Sprintf("%s.rooms[%q]", f, id), "%s %s is also mapped by property %q, which uses %s: a %s belongs to one property", room, id, c.Properties[j].Name, same, room)
					continue
				}
				owner[id] = i
			}
		}
	}
}

// splitOrgs groups the properties that share a Guestway base URL and
// organisation token (an organisation's listings split into properties),
// as splitHotels does for 3RPMS.
func (c *Config) splitOrgs() map[string][]int {
	return c.groups(func(p *PropertyConfig) string {
		if g := p.Guestway; g != nil && g.BaseURL != "" && g.token != "" {
			return endpointKey(g.BaseURL) + "\x00" + g.token.Reveal()
		}
		return ""
	})
}

// groups groups the properties by key, leaving out those whose key is ""
// or that no other property shares: each group's property indexes, in
// config order.
func (c *Config) groups(key func(*PropertyConfig) string) map[string][]int {
	by := map[string][]int{}
	for i := range c.Properties {
		if k := key(&c.Properties[i]); k != "" {
			by[k] = append(by[k], i)
		}
	}
	for k, idx := range by {
		if len(idx) < 2 {
			delete(by, k)
		}
	}
	return by
}

// splits is every group of properties that share a source: each split
// hotel's (splitHotels) and each split Guestway organisation's
// (splitOrgs).
func (c *Config) splits() [][]int {
	return append(slices.Collect(maps.Values(c.splitHotels())), slices.Collect(maps.Values(c.splitOrgs()))...)
}

// splitHotels groups the properties that share a 3RPMS endpoint and token
// (a hotel split into properties): each group's property indexes, in
// config order, by chainKey. A property alone on its endpoint and token is
// in none.
func (c *Config) splitHotels() map[string][]int {
	return c.groups(func(p *PropertyConfig) string {
		if t := p.ThreeRPMS; t != nil && t.Endpoint != "" && t.token != "" {
			return t.chainKey()
		}
		return ""
	})
}

// endpointKey is an endpoint as the same server: scheme and host in lower
// case, no default port (canonicalHost), no trailing slash.
func endpointKey(endpoint string) string {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil {
		return endpoint
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), canonicalHost(u)
	return u.String()
}

// Validate checks every field and fills the parsed forms. Each message
// names the field, e.g. properties[0].rooms["204"].method.
func (c *Config) Validate(getenv func(string) string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.State == "" {
		bad("state", "is required")
	}
	if c.StateKeyFile == "" {
		bad("state_key_file", "is required (default keysync.key beside the config)")
	}
	var err error
	if c.retention, err = parseRetention(&c.Retention); err != nil {
		bad("retention", "%v", err)
	}
	if d, err := time.ParseDuration(c.WebhookDebounce); err != nil || d < 100*time.Millisecond || d > time.Minute {
		bad("webhook_debounce", "%q: want a duration from 100ms to 1m, like 2s", c.WebhookDebounce)
	} else {
		c.debounce = d
	}
	if len(c.Properties) == 0 {
		bad("properties", "at least one property is required")
	}
	names := map[string]bool{}
	for i := range c.Properties {
		p := &c.Properties[i]
		f := fmt.Sprintf("properties[%d]", i)
		if p.Name == "" {
			bad(f+".name", "is required")
		} else if strings.TrimSpace(p.Name) != p.Name || p.Name == "." || p.Name == ".." ||
			strings.ContainsFunc(p.Name, func(r rune) bool { return strings.ContainsRune("/%?#", r) || unicode.IsControl(r) }) {
			// The name is the last segment of its webhook path
			// (/webhooks/3rpms/NAME), as typed, and part of its records
			// and tags.
			bad(f+".name", "%q: not . or .., no '/', '%%', '?', '#' or control characters, no spaces at either end", p.Name)
		} else if names[p.Name] {
			bad(f+".name", "%q is used by another property", p.Name)
		}
		names[p.Name] = true
		if p.TimeZone == "" {
			bad(f+".timezone", "is required (an IANA zone such as Europe/Ljubljana)")
		} else if p.location, err = time.LoadLocation(p.TimeZone); err != nil || p.TimeZone == "Local" {
			bad(f+".timezone", "%q is not an IANA time zone such as Europe/Ljubljana", p.TimeZone)
		}
		if p.checkIn, err = reconcile.ParseTimeOfDay(p.CheckIn); err != nil {
			bad(f+".check_in", "%v", err)
		}
		if p.checkOut, err = reconcile.ParseTimeOfDay(p.CheckOut); err != nil {
			bad(f+".check_out", "%v", err)
		}
		if p.graceBefore, err = parseGrace(p.Grace.BeforeArrival); err != nil {
			bad(f+".grace.before_arrival", "%v", err)
		}
		if p.graceAfter, err = parseGrace(p.Grace.AfterDeparture); err != nil {
			bad(f+".grace.after_departure", "%v", err)
		}
		if p.WindowDays < 1 || p.WindowDays > 31 {
			bad(f+".window_days", "%d: must be 1 to 31", p.WindowDays)
		}
		p.validateSystems(f, bad, getenv)
		if err := p.pinPolicy().Validate(); err != nil {
			bad(f+".pin", "%v", err)
		}
		if p.DefaultMethod != "" && !reconcile.Method(p.DefaultMethod).Valid() {
			bad(f+".default_method", "unknown method %q (want pin, key_storage or qr)", p.DefaultMethod)
		}
		for _, id := range sortedKeys(p.Rooms) {
			p.validateRoom(fmt.Sprintf("%s.rooms[%q]", f, id), p.Rooms[id], bad)
		}
		if len(p.Rooms) == 0 && p.DefaultMethod == "" {
			bad(f+".rooms", "map at least one room, or set default_method")
		}
	}
	c.checkSplits(bad)
	var loc *time.Location
	if len(c.Properties) > 0 {
		loc = c.Properties[0].location
	}
	if c.schedule, err = schedule.Parse(c.Schedule, loc); err != nil {
		bad("schedule", "%v", err)
	}
	return errors.Join(errs...)
}

// validateSystems checks the property's source and sinks.
func (p *PropertyConfig) validateSystems(f string, bad func(string, string, ...any), getenv func(string) string) {
	secret := func(field, value, file string) reconcile.Secret {
		v, err := resolveSecret(value, file, getenv)
		if err != nil {
			bad(field, "%v", err)
		}
		return v
	}
	switch {
	case p.ThreeRPMS == nil && p.Guestway == nil:
		bad(f, "needs a source: a threerpms or a guestway section")
	case p.ThreeRPMS != nil && p.Guestway != nil:
		bad(f, "has both a threerpms and a guestway section; a property has one source")
	}
	if t := p.ThreeRPMS; t != nil {
		validURL(f+".threerpms.endpoint", t.Endpoint, bad)
		t.token = secret(f+".threerpms.token", t.Token, t.TokenFile)
		if t.WebhookSecret != "" || t.WebhookSecretFile != "" {
			t.webhookSecret = secret(f+".threerpms.webhook_secret", t.WebhookSecret, t.WebhookSecretFile)
		}
		if t.PageSize < 1 || t.PageSize > 100 {
			bad(f+".threerpms.page_size", "%d: must be 1 to 100", t.PageSize)
		}
		if t.MaxOpsPerRequest < 1 || t.MaxOpsPerRequest > 500 {
			bad(f+".threerpms.max_ops_per_request", "%d: must be 1 to 500", t.MaxOpsPerRequest)
		}
		t.APIConfig.validate(f+".threerpms", bad)
	}
	if g := p.Guestway; g != nil {
		validURL(f+".guestway.base_url", g.BaseURL, bad)
		g.partnerKey = secret(f+".guestway.partner_key", g.PartnerKey, g.PartnerKeyFile)
		g.token = secret(f+".guestway.token", g.Token, g.TokenFile)
		if g.PollEvery != "" {
			if d, err := time.ParseDuration(g.PollEvery); err != nil || d < time.Minute {
				bad(f+".guestway.poll_every", "%q: want a duration of at least 1m, like 15m", g.PollEvery)
			} else {
				g.pollEvery = d
			}
		}
		if g.PollDays < 1 || g.PollDays > 7 {
			bad(f+".guestway.poll_days", "%d: must be 1 to 7", g.PollDays)
		}
		if g.token != "" && !strings.HasPrefix(g.token.Reveal(), "gw_") && !strings.HasPrefix(g.token.Reveal(), standIn) {
			bad(f+".guestway.token", "Organization Access Tokens start with gw_ (the Guestway Open API); check the value")
		}
		if g.PerPage < 1 || g.PerPage > 100 {
			bad(f+".guestway.per_page", "%d: must be 1 to 100", g.PerPage)
		}
		if !strings.HasPrefix(g.ReservationsPath, "/") {
			bad(f+".guestway.reservations_path", "%q: must be a path starting with /", g.ReservationsPath)
		}
		for _, field := range []string{"reservation_path", "accesses_path"} {
			path := map[string]string{"reservation_path": g.ReservationPath, "accesses_path": g.AccessesPath}[field]
			if !strings.HasPrefix(path, "/") || !strings.Contains(path, "{id}") {
				bad(f+".guestway."+field, "%q: must be a path starting with / with an {id} placeholder", path)
			}
		}
		g.APIConfig.validate(f+".guestway", bad)
	}
	if o := p.OpenApp; o != nil {
		validURL(f+".openapp.base_url", o.BaseURL, bad)
		o.apiKey = secret(f+".openapp.api_key", o.APIKey, o.APIKeyFile)
		if o.OrgID == "" {
			bad(f+".openapp.org_id", "is required (the X-Org header)")
		}
		if o.IntegrationID == "" {
			bad(f+".openapp.integration_id", "is required (Dashboard → Integrations)")
		}
		if p.ThreeRPMS != nil {
			validURL(f+".openapp.guest_url", strings.ReplaceAll(o.GuestURL, "{token}", "t"), bad)
		}
		if o.MaxUses < 0 {
			bad(f+".openapp.max_uses", "%d: must be 0 (no limit) or more", o.MaxUses)
		}
		o.APIConfig.validate(f+".openapp", bad)
	}
	if k := p.KeyBox; k != nil {
		validURL(f+".keybox.base_url", k.BaseURL, bad)
		if k.Username == "" {
			bad(f+".keybox.username", "is required (HTTP Basic auth)")
		}
		k.password = secret(f+".keybox.password", k.Password, k.PasswordFile)
		if !strings.HasPrefix(k.CancelPath, "/") || !strings.Contains(k.CancelPath, "{id}") {
			bad(f+".keybox.cancel_path", "%q: must be a path starting with / with an {id} placeholder", k.CancelPath)
		}
		for _, field := range []string{"create_path", "list_path"} {
			if path := map[string]string{"create_path": k.CreatePath, "list_path": k.ListPath}[field]; !strings.HasPrefix(path, "/") {
				bad(f+".keybox."+field, "%q: must be a path starting with /", path)
			}
		}
		switch strings.ToUpper(k.CancelMethod) {
		case "DELETE", "POST", "PUT", "PATCH":
		default:
			bad(f+".keybox.cancel_method", "%q: want DELETE, POST, PUT or PATCH", k.CancelMethod)
		}
		switch k.Locale {
		case "", "en", "fr", "ja", "es", "nl", "it", "pt":
		default:
			bad(f+".keybox.locale", "%q: want en, fr, ja, es, nl, it or pt", k.Locale)
		}
		k.APIConfig.validate(f+".keybox", bad)
	}
	if p.DefaultMethod == string(reconcile.MethodQR) {
		bad(f+".default_method", "qr needs each room's portals; list the rooms instead")
	}
	if p.DefaultMethod == string(reconcile.MethodKeyStorage) {
		bad(f+".default_method", "key_storage needs each room's key; list the rooms instead")
	}
}

// zone is the time zone of the named property, UTC for one the config does
// not hold (a property the state file still records).
func (c *Config) zone(property string) *time.Location {
	for _, p := range c.Properties {
		if p.Name == property && p.location != nil {
			return p.location
		}
	}
	return time.UTC
}

// urlField names the config field holding a property's URL for a system,
// such as properties[0].threerpms.endpoint.
func (c *Config) urlField(property string, sys reconcile.System) string {
	return c.field(property, map[reconcile.System]string{
		reconcile.System3RPMS: "threerpms.endpoint", reconcile.SystemGuestway: "guestway.base_url",
		reconcile.SystemOpenApp: "openapp.base_url", reconcile.SystemKeyBox: "keybox.base_url",
	}[sys])
}

// credentialField names the config fields of the credentials property
// uses on sys, as urlField names its URL.
func (c *Config) credentialField(property string, sys reconcile.System) string {
	return c.field(property, map[reconcile.System]string{
		reconcile.System3RPMS: "threerpms.token", reconcile.SystemGuestway: "guestway.partner_key and guestway.token",
		reconcile.SystemOpenApp: "openapp.api_key", reconcile.SystemKeyBox: "keybox.username and keybox.password",
	}[sys])
}

// every is every property of the config: in a shard, the others' too.
func (c *Config) every() []PropertyConfig {
	if c.whole != nil {
		return c.whole
	}
	return c.Properties
}

// field is the config path of a property's field, properties[N].field, N
// its place in the config file (in a shard too).
func (c *Config) field(property, field string) string {
	for i, p := range c.every() {
		if p.Name == property {
			return fmt.Sprintf("properties[%d].%s", i, field)
		}
	}
	return field
}

// validateRoom checks a room has what its method needs.
func (p *PropertyConfig) validateRoom(f string, r RoomConfig, bad func(string, string, ...any)) {
	switch reconcile.Method(r.Method) {
	case reconcile.MethodPIN:
	case reconcile.MethodQR:
		if p.OpenApp == nil {
			bad(f+".method", "qr needs an openapp section in the property")
		} else if len(r.Portals) == 0 {
			bad(f+".portals", "a qr room needs the OpenApp portal id of its door")
		}
	case reconcile.MethodKeyStorage:
		if p.KeyBox == nil {
			bad(f+".method", "key_storage needs a keybox section in the property")
		}
		if (r.KeyID == "") == (r.KeySerial == "") {
			bad(f, "set exactly one of key_id and key_serial (the key in the key box)")
		}
		if p.ThreeRPMS != nil && !rpmsink.ValidCompartment(r.Compartment) {
			bad(f+".compartment", "must be 1 to 10 letters or digits (3RPMS RoomAccessKeyStorage)")
		}
	default:
		bad(f+".method", "unknown method %q (want pin, key_storage or qr)", r.Method)
	}
}

func validURL(field, raw string, bad func(string, string, ...any)) {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(field, "%q is not an http(s) URL", raw)
	}
}

// secretRef matches a whole-value ${VAR} reference.
var secretRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// resolveSecret returns a secret from ${ENV}, a file, or (discouraged, but
// handy for the sandbox) a literal.
func resolveSecret(value, file string, getenv func(string) string) (reconcile.Secret, error) {
	switch {
	case value != "" && file != "":
		return "", errors.New("set the value or the _file form, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		return reconcile.Secret(s), nil
	case value == "":
		return "", errors.New("is required (use ${ENV_VAR}, or the _file form for a mounted secret)")
	}
	// A value from the environment or the config is trimmed as a file's
	// is: the same token spelled with a stray space or newline (an
	// environment variable set from a file that ends in one) is the same
	// credential, one account and one split hotel, and a header can carry
	// it (a newline in a header value fails every request).
	if m := secretRef.FindStringSubmatch(value); m != nil {
		v := getenv(m[1])
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", m[1])
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("environment variable %s holds only whitespace", m[1])
		}
		return reconcile.Secret(v), nil
	}
	if strings.Contains(value, "${") {
		return "", errors.New("write a reference as the whole value, like ${KEYSYNC_3RPMS_TOKEN}")
	}
	if value = strings.TrimSpace(value); value == "" {
		return "", errors.New("is only whitespace")
	}
	return reconcile.Secret(value), nil
}

// defaultRetention is the retention of a config that does not set one.
const defaultRetention = 90 * 24 * time.Hour

// retentionRe is the retention's format: whole days.
var retentionRe = regexp.MustCompile(`^([0-9]{1,6})d$`)

// parseRetention reads the retention: the default when the field is left
// out, whole days (at least reconcile.MinRetention) when it is set, and an
// error for anything else, an empty value or 0 included.
func parseRetention(n *yaml.Node) (time.Duration, error) {
	if n.Kind == 0 {
		return defaultRetention, nil
	}
	minDays := int(reconcile.MinRetention / (24 * time.Hour))
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.Value == "" {
		return 0, fmt.Errorf("give a number of days such as 90d, or leave the field out for the default (90d)")
	}
	m := retentionRe.FindStringSubmatch(n.Value)
	if m == nil {
		return 0, fmt.Errorf("%q is not a number of days such as 90d", n.Value)
	}
	days, _ := strconv.Atoi(m[1])
	if days < minDays {
		return 0, fmt.Errorf("%dd is too short: keep at least %dd, so that the request ledger holds its 24 hours for the daily budget and the record of an abandoned 3RPMS key outlives the key (3RPMS deletes it after 2 days)", days, minDays)
	}
	if days > 36500 {
		return 0, fmt.Errorf("%dd: at most 36500d", days)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func parseGrace(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 2h or 30m", s)
	}
	if d < 0 || d > 48*time.Hour {
		return 0, fmt.Errorf("%s: must be 0 to 48h", d)
	}
	return d, nil
}

func (p *PropertyConfig) pinPolicy() reconcile.PINPolicy {
	return reconcile.PINPolicy{Length: p.PIN.Length, Alphabet: p.PIN.Alphabet}
}

// policy converts a validated property config to the core's policy.
func (p *PropertyConfig) policy() *reconcile.Property {
	rooms := make(map[string]reconcile.Method, len(p.Rooms))
	for id, r := range p.Rooms {
		rooms[id] = reconcile.Method(r.Method)
	}
	return &reconcile.Property{
		Name: p.Name, Location: p.location, CheckIn: p.checkIn, CheckOut: p.checkOut,
		GraceBefore: p.graceBefore, GraceAfter: p.graceAfter, WindowDays: p.WindowDays,
		Rooms: rooms, DefaultMethod: reconcile.Method(p.DefaultMethod), PIN: p.pinPolicy(),
		SharedPortals: p.OpenApp != nil && len(p.OpenApp.SharedPortals) > 0,
	}
}
