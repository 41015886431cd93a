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
// refuses): Get reports it, Set changes it from a JSON value.
type Switch struct {
	Name string
	Get  func() any
	Set  func(json.RawMessage) error
}

// Flag is a Switch holding a bool.
func Flag(name string, get func() bool, set func(bool)) Switch {
	return Switch{Name: name, Get: func() any { return get() }, Set: func(raw json.RawMessage) error {
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: want true or false", name)
		}
		set(v)
		return nil
	}}
}

// Size is a Switch holding a count; 0 puts the sandbox's default back.
func Size(name string, get func() int, set func(int)) Switch {
	return Switch{Name: name, Get: func() any { return get() }, Set: func(raw json.RawMessage) error {
		var v int
		if err := json.Unmarshal(raw, &v); err != nil || v < 0 {
			return fmt.Errorf("%s: want a whole number, 0 for the default", name)
		}
		set(v)
		return nil
	}}
}

// Switches mounts GET and POST /_sandbox/assumptions: GET answers every
// switch's value by name; POST sets those its JSON object names (any
// subset) and answers them all. A name no switch has, or a value a
// switch refuses, is 400 and changes nothing.
func Switches(mux *http.ServeMux, switches ...Switch) {
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
		byName := map[string]Switch{}
		var names []string
		for _, s := range switches {
			byName[s.Name] = s
			names = append(names, s.Name)
		}
		for name := range in {
			if _, ok := byName[name]; !ok {
				AdminError(w, http.StatusBadRequest, fmt.Sprintf("no switch %q; this sandbox has %s", name, strings.Join(names, ", ")))
				return
			}
		}
		// Check every value before setting any.
		for _, name := range slices.Sorted(maps.Keys(in)) {
			if err := checkOnly(byName[name], in[name]); err != nil {
				AdminError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		for name, raw := range in {
			_ = byName[name].Set(raw)
		}
		WriteJSON(w, http.StatusOK, view())
	})
}

// checkOnly reports whether s would take raw, without setting it.
func checkOnly(s Switch, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%s: not JSON", s.Name)
	}
	switch s.Get().(type) {
	case bool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want true or false", s.Name)
		}
	case int:
		f, ok := v.(float64)
		if !ok || f < 0 || f != float64(int(f)) {
			return fmt.Errorf("%s: want a whole number, 0 for the default", s.Name)
		}
	}
	return nil
}
