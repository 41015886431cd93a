package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGuestwayPolls: serve polls each Guestway property with poll_every,
// but a split organisation (one base URL and token) once, as its first
// polling property, at the shortest interval over the longest look-ahead.
func TestGuestwayPolls(t *testing.T) {
	t.Parallel()
	// property is a Guestway property of organisation token tok, listing
	// room, with poll (a poll_every and poll_days, or "" for none).
	property := func(name, tok, room, poll string) string {
		return fmt.Sprintf("  - name: %s\n    timezone: UTC\n    guestway: {base_url: \"https://g.example\", partner_key: pk, token: %s%s}\n    rooms: {%s: pin}\n", name, tok, poll, room)
	}
	hotel := "  - name: hotel\n    timezone: UTC\n    threerpms: {endpoint: \"https://x.example/graphql\", token: t}\n    default_method: pin\n"
	for _, c := range []struct {
		name  string
		props []string
		want  []guestwayPoll
	}{
		{"two organisations", []string{hotel, property("a", "gw_a", "l1", ", poll_every: 15m"), property("b", "gw_b", "l2", ", poll_every: 30m, poll_days: 3")},
			[]guestwayPoll{{"a", 15 * time.Minute, 2}, {"b", 30 * time.Minute, 3}}},
		{"a split organisation", []string{property("east", "gw_a", "l1", ", poll_every: 15m"), hotel, property("west", "gw_a", "l2", ", poll_every: 5m, poll_days: 3")},
			[]guestwayPoll{{"east", 5 * time.Minute, 3}}},
		{"the first member polls not", []string{property("east", "gw_a", "l1", ""), property("west", "gw_a", "l2", ", poll_every: 10m")},
			[]guestwayPoll{{"west", 10 * time.Minute, 2}}},
		{"none polls", []string{hotel, property("east", "gw_a", "l1", "")}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig(strings.NewReader("properties:\n"+strings.Join(c.props, "")), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			if got := guestwayPolls(cfg); !slices.Equal(got, c.want) {
				t.Errorf("polls %+v, want %+v", got, c.want)
			}
		})
	}
}
