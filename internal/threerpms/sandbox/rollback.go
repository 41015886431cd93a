package sandbox

import (
	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/webhook"
)

// A server that runs each request in one transaction undoes a whole
// mutation document when any of its fields fails. The 3RPMS Room Access
// Key API does not say whether chained operations stand alone or fall
// together; keysync assumes nothing either way, and Options.RollbackDocuments
// makes the sandbox such a server, so tests show what keysync does then.

// undo is what a mutation document changed, to put back if it fails:
// every key as it was, each stay's key, and the webhooks its fields
// emitted, sent only once the document stands.
type undo struct {
	keys    map[string]*key // nil value: the key did not exist
	stays   map[*stay]string
	holders map[string]int
	events  [][2]string // name, id
}

// begin starts recording a document's changes when documents are
// undone whole. Caller holds s.mu.
func (s *Server) begin() {
	if !s.rollback {
		return
	}
	u := &undo{keys: map[string]*key{}, stays: map[*stay]string{}, holders: make(map[string]int, len(s.holders))}
	for id, k := range s.keys {
		kc := *k
		u.keys[id] = &kc
	}
	for _, st := range s.stays {
		u.stays[st] = st.keyID
	}
	for id, n := range s.holders {
		u.holders[id] = n
	}
	s.undo = u
}

// end settles the document begun: failed puts everything back and drops
// its webhooks, otherwise they are sent. It reports whether the document
// was undone. Caller holds s.mu.
func (s *Server) end(failed bool) bool {
	u := s.undo
	if u == nil {
		return false
	}
	s.undo = nil
	if !failed {
		for _, e := range u.events {
			s.hooks.emit(e[0], e[1])
		}
		return false
	}
	for id := range s.keys {
		if u.keys[id] == nil {
			delete(s.keys, id)
		}
	}
	for id, k := range u.keys {
		s.keys[id] = k
	}
	for st, keyID := range u.stays {
		st.keyID = keyID
	}
	s.holders = u.holders
	s.recheck()
	return true
}

// emitKeyDeleted sends the key.deleted webhook, or holds it until the
// document being run stands.
func (s *Server) emitKeyDeleted(id string) {
	if s.undo != nil {
		s.undo.events = append(s.undo.events, [2]string{webhook.KeyDeleted, id})
		return
	}
	s.hooks.emit(webhook.KeyDeleted, id)
}

// SetRollbackDocuments switches Options.RollbackDocuments.
func (s *Server) SetRollbackDocuments(on bool) { sandboxkit.Store(&s.mu, &s.rollback, on) }

// RollbackDocuments reports whether a mutation document with a failed
// field is undone whole.
func (s *Server) RollbackDocuments() bool { return sandboxkit.Load(&s.mu, &s.rollback) }

// nullFields answers every root field of an undone document null.
func nullFields(data any) any {
	obj, ok := data.(respObject)
	if !ok {
		return data
	}
	out := make(respObject, len(obj))
	for i, f := range obj {
		out[i] = respField{key: f.key}
	}
	return out
}
