package reconcile

import (
	"errors"
	"fmt"
	"testing"
)

// TestCutOffAfter: a whole-request failure cuts a system off for the run,
// except a 401 or 403 to a change of credentials the system holds, which
// fails that request alone however many come; a refused create, or a
// request with a create in it, still cuts it off.
func TestCutOffAfter(t *testing.T) {
	unauthorized := fmt.Errorf("openapp: HTTP 403: %w", ErrUnauthorized)
	unavailable := fmt.Errorf("openapp: HTTP 503: %w", ErrUnavailable)
	change := []*Action{{Op: OpDisable, Cred: &Credential{RemoteID: "l1"}}}
	create := []*Action{{Op: OpCreate, Cred: &Credential{}}}
	mixed := append(append([]*Action{}, change...), create...)
	type req struct {
		sent []*Action
		err  error
	}
	for _, tc := range []struct {
		name string
		reqs []req
		dead bool
	}{
		{"a refused change alone", []req{{change, unauthorized}}, false},
		{"refused changes in a row, then a create", []req{{change, unauthorized}, {change, unauthorized}, {change, unauthorized}, {create, nil}}, false},
		{"a refused create", []req{{create, unauthorized}}, true},
		{"a refused request with a create in it", []req{{mixed, unauthorized}}, true},
		{"refused changes, then a refused create", []req{{change, unauthorized}, {change, unauthorized}, {create, unauthorized}}, true},
		{"an outage on a change", []req{{change, unavailable}}, true},
	} {
		ap := &applier{dead: map[System]error{}}
		for _, r := range tc.reqs {
			ap.cutOffAfter(SystemOpenApp, r.sent, r.err)
		}
		err := ap.cutOff(SystemOpenApp)
		if dead := err != nil; dead != tc.dead {
			t.Errorf("%s: cut off %v, want %v", tc.name, dead, tc.dead)
		}
		if err != nil && !errors.Is(err, tc.reqs[len(tc.reqs)-1].err) {
			t.Errorf("%s: cut off for %v, want the last failure", tc.name, err)
		}
	}
}
