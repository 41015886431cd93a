package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/keysync/keysync/reconcile"
)

// Config is the YAML configuration file; config.example.yaml documents
// every field.
type Config struct {
	// State is the SQLite state file.
	State string `yaml:"state"`
	// Schedule is serve's cron spec (5 fields, or a descriptor such as
	// @daily), in the first property's time zone unless it starts with
	// CRON_TZ=.
	Schedule   string           `yaml:"schedule"`
	Properties []PropertyConfig `yaml:"properties"`
}

// PropertyConfig is one property: where it is, its hours, its 3RPMS
// connection and how its rooms open.
type PropertyConfig struct {
	Name          string                `yaml:"name"`
	TimeZone      string                `yaml:"timezone"`
	CheckIn       string                `yaml:"check_in"`
	CheckOut      string                `yaml:"check_out"`
	Grace         GraceConfig           `yaml:"grace"`
	WindowDays    int                   `yaml:"window_days"`
	ThreeRPMS     ThreeRPMSConfig       `yaml:"threerpms"`
	PIN           PINConfig             `yaml:"pin"`
	DefaultMethod string                `yaml:"default_method"`
	Rooms         map[string]RoomConfig `yaml:"rooms"`

	// Filled by Validate.
	location                *time.Location
	checkIn, checkOut       reconcile.Clock
	graceBefore, graceAfter time.Duration
}

// GraceConfig widens every access window.
type GraceConfig struct {
	BeforeArrival  string `yaml:"before_arrival"`
	AfterDeparture string `yaml:"after_departure"`
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
	// RatePerSecond and Burst pace requests to the endpoint's host.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// MaxResponseBytes caps a response body.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`

	token reconcile.Secret
}

// PINConfig is the lock's PIN format.
type PINConfig struct {
	Length   int    `yaml:"length"`
	Alphabet string `yaml:"alphabet"`
}

// RoomConfig is how one room opens. In YAML it is either a method name
// ("pin") or a mapping with a method field.
type RoomConfig struct {
	Method string `yaml:"method"`
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

// applyDefaults fills every field the file left unset (or zero).
func (p *PropertyConfig) applyDefaults() {
	p.CheckIn = cmp.Or(p.CheckIn, "15:00")
	p.CheckOut = cmp.Or(p.CheckOut, "11:00")
	p.Grace.BeforeArrival = cmp.Or(p.Grace.BeforeArrival, "0s")
	p.Grace.AfterDeparture = cmp.Or(p.Grace.AfterDeparture, "2h")
	p.WindowDays = cmp.Or(p.WindowDays, 7)
	t := &p.ThreeRPMS
	t.PageSize = cmp.Or(t.PageSize, 20)
	t.MaxOpsPerRequest = cmp.Or(t.MaxOpsPerRequest, 100)
	t.RatePerSecond = cmp.Or(t.RatePerSecond, 5)
	t.Burst = cmp.Or(t.Burst, 10)
	t.MaxResponseBytes = cmp.Or(t.MaxResponseBytes, 8<<20)
	p.PIN.Length = cmp.Or(p.PIN.Length, reconcile.DefaultPINPolicy.Length)
	p.PIN.Alphabet = cmp.Or(p.PIN.Alphabet, reconcile.DefaultPINPolicy.Alphabet)
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
	return cfg, nil
}

// ParseConfig decodes YAML with unknown fields rejected, applies defaults,
// resolves secrets and validates.
func ParseConfig(r io.Reader, getenv func(string) string) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	cfg := &Config{State: "keysync.db", Schedule: "0 2 * * *"}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	for i := range cfg.Properties {
		cfg.Properties[i].applyDefaults()
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
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		bad("schedule", "%v", err)
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
		} else if names[p.Name] {
			bad(f+".name", "%q is used by another property", p.Name)
		}
		names[p.Name] = true
		var err error
		if p.TimeZone == "" {
			bad(f+".timezone", "is required (an IANA zone such as Europe/Ljubljana)")
		} else if p.location, err = time.LoadLocation(p.TimeZone); err != nil || p.TimeZone == "Local" {
			bad(f+".timezone", "%q is not an IANA time zone such as Europe/Ljubljana", p.TimeZone)
		}
		if p.checkIn, err = reconcile.ParseClock(p.CheckIn); err != nil {
			bad(f+".check_in", "%v", err)
		}
		if p.checkOut, err = reconcile.ParseClock(p.CheckOut); err != nil {
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
		t := &p.ThreeRPMS
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(f+".threerpms.endpoint", "%q is not an http(s) URL", t.Endpoint)
		}
		if tok, err := resolveSecret(t.Token, t.TokenFile, getenv); err != nil {
			bad(f+".threerpms.token", "%v", err)
		} else {
			t.token = tok
		}
		if t.PageSize < 1 || t.PageSize > 100 {
			bad(f+".threerpms.page_size", "%d: must be 1 to 100", t.PageSize)
		}
		if t.MaxOpsPerRequest < 1 || t.MaxOpsPerRequest > 500 {
			bad(f+".threerpms.max_ops_per_request", "%d: must be 1 to 500", t.MaxOpsPerRequest)
		}
		if t.RatePerSecond <= 0 {
			bad(f+".threerpms.rate_per_second", "%v: must be above 0", t.RatePerSecond)
		}
		if t.Burst < 1 {
			bad(f+".threerpms.burst", "%d: must be at least 1", t.Burst)
		}
		if t.MaxResponseBytes < 1024 {
			bad(f+".threerpms.max_response_bytes", "%d: must be at least 1024", t.MaxResponseBytes)
		}
		if err := p.pinPolicy().Validate(); err != nil {
			bad(f+".pin", "%v", err)
		}
		if p.DefaultMethod != "" && !reconcile.Method(p.DefaultMethod).Valid() {
			bad(f+".default_method", "unknown method %q (want pin, key_storage or qr)", p.DefaultMethod)
		}
		for _, id := range sortedKeys(p.Rooms) {
			if !reconcile.Method(p.Rooms[id].Method).Valid() {
				bad(fmt.Sprintf("%s.rooms[%q].method", f, id), "unknown method %q (want pin, key_storage or qr)", p.Rooms[id].Method)
			}
		}
		if len(p.Rooms) == 0 && p.DefaultMethod == "" {
			bad(f+".rooms", "map at least one room, or set default_method")
		}
	}
	return errors.Join(errs...)
}

// secretRef matches a whole-value ${VAR} reference.
var secretRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// resolveSecret returns a secret from ${ENV}, a file, or (discouraged, but
// handy for the sandbox) a literal.
func resolveSecret(value, file string, getenv func(string) string) (reconcile.Secret, error) {
	switch {
	case value != "" && file != "":
		return "", errors.New("set the token or token_file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("token_file %s is empty", file)
		}
		return reconcile.Secret(s), nil
	case value == "":
		return "", errors.New("is required (use ${ENV_VAR} or token_file)")
	}
	if m := secretRef.FindStringSubmatch(value); m != nil {
		v := getenv(m[1])
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", m[1])
		}
		return reconcile.Secret(v), nil
	}
	if strings.Contains(value, "${") {
		return "", errors.New("write a reference as the whole value, like ${KEYSYNC_3RPMS_TOKEN}")
	}
	return reconcile.Secret(value), nil
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
	}
}
