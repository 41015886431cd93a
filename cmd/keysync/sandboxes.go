package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
	rpmsandbox "github.com/keysync/keysync/internal/threerpms/sandbox"
	kbsandbox "github.com/keysync/keysync/sinks/keybox/sandbox"
	oasandbox "github.com/keysync/keysync/sinks/openapp/sandbox"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// The sandbox's credentials. They are not secrets: the sandboxes only run
// on this machine. Configs still read them from the environment, the way
// real ones are read.
const (
	sandboxToken       = "sandbox-token"
	sandboxIntegration = "keysync"
	sandboxOpenAppKey  = "sandbox-openapp-key"
	sandboxOrg         = "org-sandbox"
	sandboxOpenAppInt  = "int-sandbox"
	sandboxBoxUser     = "keysync"
	sandboxBoxPassword = "sandbox-password"
	// sandboxWebhookSecret signs the sandbox 3RPMS's webhook deliveries.
	sandboxWebhookSecret = "sandbox-webhook-secret"
)

// sandboxEnv is the environment a sandbox config reads its secrets from.
var sandboxEnv = map[string]string{
	"KEYSYNC_3RPMS_TOKEN":          sandboxToken,
	"KEYSYNC_3RPMS_WEBHOOK_SECRET": sandboxWebhookSecret,
	"KEYSYNC_OPENAPP_API_KEY":      sandboxOpenAppKey,
	"KEYSYNC_KEYBOX_PASSWORD":      sandboxBoxPassword,
	"KEYSYNC_GUESTWAY_PARTNER_KEY": gwsandbox.DemoPartnerKey,
	"KEYSYNC_GUESTWAY_TOKEN":       gwsandbox.DemoToken,
}

// sandboxes are the four fakes on one listener: 3RPMS at /graphql (admin
// /_sandbox/), OpenApp under /openapp/, the key box under /keybox/ and
// Guestway under /guestway/ (each with its own /_sandbox/ admin API).
type sandboxes struct {
	rpms     *rpmsandbox.Server
	openapp  *oasandbox.Server
	keybox   *kbsandbox.Server
	guestway *gwsandbox.Server
	base     string
	// hotel maps the demo hotel's rooms to methods; apartments the
	// Guestway listings.
	hotel, apartments map[string]string
	// middleware, when set before serve, wraps every request: tests use it
	// to inject faults (lost answers, 5xx, 429s, churn between read and
	// write) in front of faithful fakes.
	middleware func(http.Handler) http.Handler
	stop       func()
}

// demoMethod spreads the three methods over a property's rooms: mostly
// PIN doors, every fifth room a QR lock, every fifth a key box.
func demoMethod(i int) string {
	switch i % 5 {
	case 3:
		return "qr"
	case 4:
		return "key_storage"
	}
	return "pin"
}

// startSandboxes seeds and serves the four fakes on addr, with the seeds'
// rate limits timed by rateNow (nil: the wall clock).
func startSandboxes(addr string, rooms, listings int, now time.Time, rateNow func() time.Time) (*sandboxes, error) {
	sb := newSandboxes(now, true, rateNow)
	sb.seedDemo(rooms, listings)
	if err := sb.serve(addr); err != nil {
		return nil, err
	}
	return sb, nil
}

// newSandboxes builds the four fakes, empty but for the shared portals,
// with or without the seeds' rate limits, timed by rateNow (nil: the wall
// clock).
func newSandboxes(now time.Time, limits bool, rateNow func() time.Time) *sandboxes {
	sb := &sandboxes{hotel: map[string]string{}, apartments: map[string]string{}}
	rpmsOpts := rpmsandbox.Options{Integrations: map[string]string{sandboxToken: sandboxIntegration}, Now: now, Rates: sandboxkit.Rates{RateNow: rateNow}}
	oaOpts := oasandbox.Options{
		APIKeys:      map[string]string{sandboxOpenAppKey: sandboxOrg},
		Integrations: map[string]string{sandboxOpenAppInt: sandboxOrg},
		Now:          now,
		Rates:        sandboxkit.Rates{RateNow: rateNow},
	}
	kbOpts := kbsandbox.Options{Users: map[string]string{sandboxBoxUser: sandboxBoxPassword}, Now: now, Rates: sandboxkit.Rates{RateNow: rateNow}}
	gwOpts := gwsandbox.Options{
		PartnerKeys: []string{gwsandbox.DemoPartnerKey},
		Tokens:      map[string][]string{gwsandbox.DemoToken: {gwsandbox.ScopeReservationsRead, gwsandbox.ScopeAccessesRead}},
		Now:         now,
		Rates:       sandboxkit.Rates{RateNow: rateNow},
	}
	if limits {
		rpmsOpts, oaOpts, kbOpts, gwOpts = rpmsOpts.WithSeedLimits(), oaOpts.WithSeedLimits(), kbOpts.WithSeedLimits(), gwOpts.WithSeedLimits()
	}
	sb.rpms, sb.openapp, sb.keybox, sb.guestway = rpmsandbox.New(rpmsOpts), oasandbox.New(oaOpts), kbsandbox.New(kbOpts), gwsandbox.New(gwOpts)
	sb.openapp.AddPortal("portal-lobby", sandboxOpenAppInt)
	sb.openapp.AddPortal("portal-garage", sandboxOpenAppInt)
	return sb
}

// seedDemo fills the fakes with the demo's hotel and apartments, spreading
// the access methods over their rooms.
func (sb *sandboxes) seedDemo(rooms, listings int) {
	sb.rpms.SeedDemo(rooms)
	sb.guestway.SeedDemo(listings)
	for i, r := range sb.rpms.Rooms() {
		sb.addRoom(sb.hotel, r.ID, demoMethod(i))
	}
	// A multi-unit listing's rooms are its units (Guestway's unit_id).
	var units []string
	for _, r := range sb.guestway.Reservations() {
		room := cmp.Or(r.UnitID, r.ListingID)
		if !slices.Contains(units, room) {
			units = append(units, room)
		}
	}
	slices.Sort(units)
	for i, room := range units {
		sb.addRoom(sb.apartments, room, demoMethod(i+3)) // start with a QR and a key box
	}
}

// serve starts serving the fakes on addr.
func (sb *sandboxes) serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", sb.rpms)
	mux.Handle("/openapp/", http.StripPrefix("/openapp", sb.openapp))
	mux.Handle("/keybox/", http.StripPrefix("/keybox", sb.keybox))
	mux.Handle("/guestway/", http.StripPrefix("/guestway", sb.guestway))
	var h http.Handler = mux
	if sb.middleware != nil {
		h = sb.middleware(mux)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	sb.base = "http://" + ln.Addr().String()
	sb.stop = func() {
		// Graceful for a moment, then close whatever is left (an idle
		// client connection would otherwise hold Shutdown to its timeout).
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
	return nil
}

// addRoom maps a room to a method in a property and gives it what the
// method needs in the fakes: a portal for a QR lock, a key in the key box.
func (sb *sandboxes) addRoom(property map[string]string, room, method string) {
	property[room] = method
	switch method {
	case "qr":
		sb.openapp.AddPortal("portal-"+room, sandboxOpenAppInt)
	case "key_storage":
		sb.keybox.AddKey("key-"+room, "")
	}
}

// setNow moves every fake's business clock.
func (sb *sandboxes) setNow(t time.Time) {
	sb.rpms.SetNow(t)
	sb.openapp.SetNow(t)
	sb.keybox.SetNow(t)
	sb.guestway.SetNow(t)
}

// config is a keysync config for the sandboxes: a hotel on 3RPMS and an
// apartment portfolio on Guestway, using all three access methods.
func (sb *sandboxes) config(statePath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# keysync against the sandboxes\nstate: %s\nproperties:\n", statePath)
	if len(sb.hotel) > 0 {
		fmt.Fprintf(&b, `  - name: sandbox-hotel
    timezone: UTC
    check_in: "15:00"
    check_out: "11:00"
    grace: {before_arrival: 2h, after_departure: 2h}
    threerpms:
      endpoint: %s/graphql
      token: ${KEYSYNC_3RPMS_TOKEN}
      webhook_secret: ${KEYSYNC_3RPMS_WEBHOOK_SECRET}
`, sb.base)
		sb.sinks(&b, false)
		b.WriteString("    rooms:\n")
		sb.rooms(&b, sb.hotel, true)
	}
	if len(sb.apartments) > 0 {
		fmt.Fprintf(&b, `  - name: sandbox-apartments
    timezone: UTC
    grace: {before_arrival: 2h, after_departure: 2h}
    guestway:
      base_url: %s/guestway
      partner_key: ${KEYSYNC_GUESTWAY_PARTNER_KEY}
      token: ${KEYSYNC_GUESTWAY_TOKEN}
`, sb.base)
		sb.sinks(&b, true)
		b.WriteString("    rooms:\n")
		sb.rooms(&b, sb.apartments, false)
	}
	return b.String()
}

func (sb *sandboxes) sinks(b *strings.Builder, shared bool) {
	fmt.Fprintf(b, `    openapp:
      base_url: %s/openapp
      api_key: ${KEYSYNC_OPENAPP_API_KEY}
      org_id: %s
      integration_id: %s
      guest_url: https://open.example/i/{token}
`, sb.base, sandboxOrg, sandboxOpenAppInt)
	if shared {
		b.WriteString("      shared_portals: [portal-lobby, portal-garage]\n")
	}
	fmt.Fprintf(b, `    keybox:
      base_url: %s/keybox
      username: %s
      password: ${KEYSYNC_KEYBOX_PASSWORD}
`, sb.base, sandboxBoxUser)
}

func (sb *sandboxes) rooms(b *strings.Builder, methods map[string]string, compartments bool) {
	for _, id := range sortedKeys(methods) {
		switch methods[id] {
		case "qr":
			fmt.Fprintf(b, "      %s: {method: qr, portals: [portal-%s]}\n", id, id)
		case "key_storage":
			comp := ""
			if compartments {
				comp = ", compartment: C" + strings.TrimPrefix(id, "r")
			}
			fmt.Fprintf(b, "      %s: {method: key_storage, key_id: key-%s%s}\n", id, id, comp)
		default:
			fmt.Fprintf(b, "      %s: pin\n", id)
		}
	}
}
