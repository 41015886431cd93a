package sandboxkit

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Store sets *p to v under mu: a sandbox's run-time switch.
func Store[T any](mu sync.Locker, p *T, v T) {
	mu.Lock()
	defer mu.Unlock()
	*p = v
}

// Load returns *p read under mu.
func Load[T any](mu sync.Locker, p *T) T {
	mu.Lock()
	defer mu.Unlock()
	return *p
}

// Cut keeps the first n characters of s (all of them when n is not
// positive): a name field shorter than keysync assumes (a switch such as
// the key box's visitor_name_limit).
func Cut(s string, n int) string {
	if r := []rune(s); n > 0 && len(r) > n {
		return string(r[:n])
	}
	return s
}

// Switch is one way a sandbox can break an assumption keysync makes where
// an API document is silent (a list without tokens, a page size it
// refuses): Get reports it; Parse reads a JSON value for it and returns
// how to set it, or why the value is refused.
type Switch struct {
	Name  string
	Get   func() any
	Parse func(json.RawMessage) (set func(), err error)
}

// Flag is a Switch holding a bool.
func Flag(name string, get func() bool, set func(bool)) Switch {
	return Switch{Name: name, Get: func() any { return get() }, Parse: func(raw json.RawMessage) (func(), error) {
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s: want true or false", name)
		}
		return func() { set(v) }, nil
	}}
}

// FlagVar is a Flag kept in *p under mu.
func FlagVar(name string, mu sync.Locker, p *bool) Switch {
	return Flag(name, func() bool { return Load(mu, p) }, func(v bool) { Store(mu, p, v) })
}

// Size is a Switch holding a count; 0 puts the sandbox's default back.
func Size(name string, get func() int, set func(int)) Switch {
	return Switch{Name: name, Get: func() any { return get() }, Parse: func(raw json.RawMessage) (func(), error) {
		var v int
		if err := json.Unmarshal(raw, &v); err != nil || v < 0 {
			return nil, fmt.Errorf("%s: want a whole number, 0 for the default", name)
		}
		return func() { set(v) }, nil
	}}
}

// SizeVar is a Size kept in *p under mu.
func SizeVar(name string, mu sync.Locker, p *int) Switch {
	return Size(name, func() int { return Load(mu, p) }, func(v int) { Store(mu, p, v) })
}

// Switches mounts GET and POST /_sandbox/assumptions: GET answers every
// switch's value by name; POST sets those its JSON object names (any
// subset) and answers them all. A name no switch has, or a value a
// switch refuses, is 400 and changes nothing.
func Switches(mux *http.ServeMux, switches ...Switch) {
	byName := map[string]Switch{}
	var names []string
	for _, s := range switches {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	view := func() map[string]any {
		out := map[string]any{}
		for _, s := range switches {
			out[s.Name] = s.Get()
		}
		return out
	}
	mux.HandleFunc("GET /_sandbox/assumptions", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, view())
	})
	mux.HandleFunc("POST /_sandbox/assumptions", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]json.RawMessage
		if !Decode(w, r, &in) {
			return
		}
		// Read every value before setting any.
		var sets []func()
		for _, name := range slices.Sorted(maps.Keys(in)) {
			sw, ok := byName[name]
			if !ok {
				AdminError(w, http.StatusBadRequest, fmt.Sprintf("no switch %q; this sandbox has %s", name, strings.Join(names, ", ")))
				return
			}
			set, err := sw.Parse(in[name])
			if err != nil {
				AdminError(w, http.StatusBadRequest, err.Error())
				return
			}
			sets = append(sets, set)
		}
		for _, set := range sets {
			set()
		}
		WriteJSON(w, http.StatusOK, view())
	})
}
