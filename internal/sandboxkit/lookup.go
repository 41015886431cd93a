package sandboxkit

import "sync"

// Lookup returns view of the record *m holds under id, and whether it
// holds one: the getter of one record by id (a stay, an invite, a
// reservation) that a sandbox's tests and admin routes read. The map is
// read, and view run, under mu, so view may read the rest of the
// sandbox's state.
func Lookup[T, V any](mu sync.Locker, m *map[string]T, id string, view func(T) V) (V, bool) {
	mu.Lock()
	defer mu.Unlock()
	rec, ok := (*m)[id]
	if !ok {
		var zero V
		return zero, false
	}
	return view(rec), true
}

// Views returns view of each record *recs holds, in its order, and an
// empty slice (not nil) when there is none: the getter of every record of
// a kind (the accesses, the invites, the rooms) that a sandbox's tests and
// admin routes read. The slice is read, and view run, under mu, so view
// may read the rest of the sandbox's state (a record kept in a map by the
// ids *recs holds, say).
func Views[T, V any](mu sync.Locker, recs *[]T, view func(T) V) []V {
	mu.Lock()
	defer mu.Unlock()
	out := make([]V, 0, len(*recs))
	for _, rec := range *recs {
		out = append(out, view(rec))
	}
	return out
}
