package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/threerpms/sandbox"
	"github.com/keysync/keysync/reconcile"
)

// TestRemovedHotelStaysNamedBesideAnotherHotelsLikeIds: two hotels on 3RPMS
// servers of their own (own endpoints, own tokens) number their rooms,
// stays and keys alike, as two `keysync sandbox` instances do (and as
// hotels on separate 3RPMS installations may: the ids are only unique
// within one). Removing one hotel from the config must leave every live
// key of it named every run (README, "Adding, renaming and removing a
// property": exit 6, property_removed, until a person deals with them).
// Before, the removed hotel's records whose remote id, stay and room the
// other hotel's records happened to repeat were "released" as if a
// renamed property had taken them over: the removed hotel's live keys
// went unnamed, though nothing in the config reaches them.
func TestRemovedHotelStaysNamedBesideAnotherHotelsLikeIds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	property := func(name string) string {
		return fmt.Sprintf("  - name: %s\n    timezone: Europe/Ljubljana\n    threerpms:\n      endpoint: %s/%s/graphql\n      token: %s-token\n      rate_per_second: 1000\n      burst: 1000\n    default_method: pin\n",
			name, srv.URL, name, name)
	}
	for _, name := range []string{"hotel", "annex"} {
		sb := sandbox.New(sandbox.Options{Integrations: map[string]string{name + "-token": ourID}, Now: t0})
		for r := range 4 {
			room := fmt.Sprintf("r%d", 101+r)
			sb.AddRoom(room, fmt.Sprint(101+r))
			// The same stay ids in both hotels, as every sandbox seeds.
			if err := sb.AddStay(sandbox.Stay{ID: fmt.Sprintf("rs_%d", r+1), RoomID: room, Arrival: day(r % 2), Departure: day(r%2 + 3)}); err != nil {
				t.Fatal(err)
			}
		}
		mux.Handle("/"+name+"/", http.StripPrefix("/"+name, sb))
	}
	head := fmt.Sprintf("state: %s\nproperties:\n", filepath.Join(dir, "keysync.db"))
	cfg := filepath.Join(dir, "keysync.yaml")
	write := func(yaml string) {
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(want int, cmd string) *reconcile.Report {
		t.Helper()
		var out, errb bytes.Buffer
		env := newEnvironment(&out, &errb, func(string) string { return "" })
		err := env.run(context.Background(), []string{cmd, "--config", cfg, "--now", t0.Add(time.Hour).Format(time.RFC3339), "--json"})
		if code := exitCode(err); code != want {
			t.Fatalf("%s exited %d, want %d: %v\n%s", cmd, code, want, err, errb.String())
		}
		return parseReport(t, cmd, out.String())
	}
	write(head + property("hotel") + property("annex"))
	run(ExitOK, "backfill")
	live := 0
	for _, c := range readCredentials(t, filepath.Join(dir, "keysync.db")) {
		if c.Stay.Property == "annex" && (c.Status == reconcile.StatusActive || c.Status == reconcile.StatusPending) {
			live++
		}
	}
	if live == 0 {
		t.Fatal("the annex holds no live credential after its backfill")
	}

	// The annex leaves the config; its keys stay live on its own server.
	write(head + property("hotel"))
	rep := run(ExitAttention, "run")
	named := false
	for _, p := range rep.Problems {
		if p.Kind == reconcile.ProblemPropertyRemoved && p.Property == "annex" {
			named = true
			if want := fmt.Sprintf("holds %d live credential(s) of property annex", live); !strings.Contains(p.Detail, want) {
				t.Errorf("removed annex named as %q, want %q", p.Detail, want)
			}
		}
	}
	if !named {
		t.Errorf("the removed annex's %d live keys are not named (problems %+v)", live, rep.Problems)
	}
	for _, c := range readCredentials(t, filepath.Join(dir, "keysync.db")) {
		if c.Stay.Property == "annex" && c.Status == reconcile.StatusReleased {
			t.Errorf("the annex's record of %s %s (stay %s) was released to the hotel, whose key of that id is another server's", c.System, c.RemoteID, c.Stay.ID)
		}
	}
}
