package sandbox

// A small GraphQL executor over the gqlparser AST. It runs a validated
// operation against the sandbox state (the caller holds s.mu): fields are
// collected with fragments and @skip/@include applied, resolved from records,
// and completed against the schema's types so that a null in a non-null
// position propagates to the nearest nullable parent, as the spec requires.

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// gqlError is one entry of a response's "errors".
type gqlError struct {
	Message    string              `json:"message"`
	Locations  []gqlerror.Location `json:"locations,omitempty"`
	Path       []any               `json:"path,omitempty"`
	Extensions map[string]any      `json:"extensions,omitempty"`
}

// respObject is a JSON object that keeps its keys in selection order.
type respObject []respField

type respField struct {
	key   string
	value any
}

// MarshalJSON writes the fields in order. Nested objects and lists are
// written here too, not through json.Marshal, which would check and
// compact each nested object's output again at every level.
func (o respObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := o.encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (o respObject) encode(b *bytes.Buffer) error {
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		b.Write(k)
		b.WriteByte(':')
		if err := encodeValue(b, f.value); err != nil {
			return fmt.Errorf("field %s: %w", f.key, err)
		}
	}
	b.WriteByte('}')
	return nil
}

// encodeValue writes a field's value: an object, a list, or a scalar.
func encodeValue(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case respObject:
		return v.encode(b)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(j)
	return nil
}

// record is a value of a GraphQL object type: its concrete type name and its
// field values. A value of type resolverFunc is called with the field's
// arguments; any other value is the field's result as is.
type record struct {
	typ    string
	fields map[string]any
}

type resolverFunc func(args map[string]any) (any, error)

type executor struct {
	s      *Server
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any
	caller string
	errs   []gqlError
}

// run executes op and returns its data (nil when a null reached the root).
func (e *executor) run(op *ast.OperationDefinition) any {
	root := record{typ: "Query", fields: map[string]any{
		"room_stays":   resolverFunc(e.roomStays),
		"reservations": resolverFunc(e.reservations),
	}}
	if op.Operation == ast.Mutation {
		root = record{typ: "Mutation", fields: map[string]any{
			"createRoomAccessKey": resolverFunc(e.createRoomAccessKey),
			"addRoomAccessKey":    e.stayKeyMutation("AddRoomAccessKeyPayload", e.s.addKey),
			"removeRoomAccessKey": e.stayKeyMutation("RemoveRoomAccessKeyPayload", e.s.removeKey),
			"deleteRoomAccessKey": resolverFunc(e.deleteRoomAccessKey),
		}}
	}
	data, ok := e.selectionSet(root, op.SelectionSet, nil)
	if !ok {
		return nil
	}
	return data
}

func (e *executor) addError(path []any, pos *ast.Position, err error) {
	ge := gqlError{Message: err.Error(), Path: path}
	if pos != nil {
		ge.Locations = []gqlerror.Location{{Line: pos.Line, Column: pos.Column}}
	}
	if code := errCode(err); code != "" {
		ge.Extensions = map[string]any{"code": code}
	}
	e.errs = append(e.errs, ge)
}

// fieldGroup is the fields of one response key, merged as the spec's
// CollectFields does.
type fieldGroup struct {
	key    string
	fields []*ast.Field
}

func (e *executor) collect(typeName string, set ast.SelectionSet, groups []*fieldGroup, seen map[string]bool) []*fieldGroup {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if !e.included(sel.Directives) {
				continue
			}
			key := cmp.Or(sel.Alias, sel.Name)
			if i := slices.IndexFunc(groups, func(g *fieldGroup) bool { return g.key == key }); i >= 0 {
				groups[i].fields = append(groups[i].fields, sel)
			} else {
				groups = append(groups, &fieldGroup{key: key, fields: []*ast.Field{sel}})
			}
		case *ast.InlineFragment:
			if e.included(sel.Directives) && e.applies(sel.TypeCondition, typeName) {
				groups = e.collect(typeName, sel.SelectionSet, groups, seen)
			}
		case *ast.FragmentSpread:
			if !e.included(sel.Directives) || seen[sel.Name] {
				continue
			}
			seen[sel.Name] = true
			if frag := e.doc.Fragments.ForName(sel.Name); frag != nil && e.applies(frag.TypeCondition, typeName) {
				groups = e.collect(typeName, frag.SelectionSet, groups, seen)
			}
		}
	}
	return groups
}

// included evaluates @skip and @include.
func (e *executor) included(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil && d.ArgumentMap(e.vars)["if"] == true {
		return false
	}
	if d := dirs.ForName("include"); d != nil && d.ArgumentMap(e.vars)["if"] == false {
		return false
	}
	return true
}

// applies reports whether a fragment with type condition cond applies to an
// object of type typeName.
func (e *executor) applies(cond, typeName string) bool {
	if cond == "" || cond == typeName {
		return true
	}
	def := e.schema.Types[cond]
	if def == nil || !def.IsAbstractType() {
		return false
	}
	return slices.ContainsFunc(e.schema.GetPossibleTypes(def), func(d *ast.Definition) bool { return d.Name == typeName })
}

// selectionSet resolves set on obj; ok is false when a non-null field came
// back null and obj itself must become null.
func (e *executor) selectionSet(obj record, set ast.SelectionSet, path []any) (respObject, bool) {
	groups := e.collect(obj.typ, set, nil, map[string]bool{})
	out := make(respObject, 0, len(groups))
	for _, g := range groups {
		f := g.fields[0]
		fpath := append(slices.Clone(path), g.key)
		if f.Name == "__typename" {
			out = append(out, respField{g.key, obj.typ})
			continue
		}
		if f.Definition == nil {
			e.addError(fpath, f.Position, fmt.Errorf("field %s.%s is not defined", obj.typ, f.Name))
			return nil, false
		}
		val, err := e.resolve(obj, f)
		if err != nil {
			e.addError(fpath, f.Position, err)
		}
		v, ok := e.complete(f.Definition.Type, val, g.fields, fpath, err != nil)
		if !ok {
			return nil, false
		}
		out = append(out, respField{g.key, v})
	}
	return out, true
}

func (e *executor) resolve(obj record, f *ast.Field) (any, error) {
	v, ok := obj.fields[f.Name]
	if !ok {
		return nil, fmt.Errorf("%s.%s is not supported by the sandbox", obj.typ, f.Name)
	}
	if fn, ok := v.(resolverFunc); ok {
		return fn(f.ArgumentMap(e.vars))
	}
	return v, nil
}

// complete shapes val to typ. ok is false when the result is null in a
// non-null position, so the caller must become null in turn.
func (e *executor) complete(typ *ast.Type, val any, fields []*ast.Field, path []any, errored bool) (any, bool) {
	if val == nil {
		if typ.NonNull {
			if !errored {
				e.addError(path, fields[0].Position, errors.New("cannot return null for non-nullable field"))
			}
			return nil, false
		}
		return nil, true
	}
	if typ.Elem != nil {
		items, _ := val.([]any)
		out := make([]any, len(items))
		for i, item := range items {
			v, ok := e.complete(typ.Elem, item, fields, append(slices.Clone(path), i), false)
			if !ok {
				return nil, !typ.NonNull
			}
			out[i] = v
		}
		return out, true
	}
	def := e.schema.Types[typ.NamedType]
	if def == nil || !def.IsCompositeType() {
		return val, true
	}
	obj, isRecord := val.(record)
	if !isRecord {
		e.addError(path, fields[0].Position, fmt.Errorf("internal: %s resolved to %T", typ.NamedType, val))
		return nil, !typ.NonNull
	}
	var sub ast.SelectionSet
	for _, f := range fields {
		sub = append(sub, f.SelectionSet...)
	}
	v, ok := e.selectionSet(obj, sub, path)
	if !ok {
		return nil, !typ.NonNull
	}
	return v, true
}

// ---- records ---------------------------------------------------------------

func (e *executor) stayRecord(st *stay) record {
	room := e.s.rooms[st.roomID]
	var k any
	if st.keyID != "" {
		k = e.keyRecord(e.s.keys[st.keyID])
	}
	return record{typ: "RoomStay", fields: map[string]any{
		"id":               st.id,
		"room_setup":       record{typ: "RoomSetup", fields: map[string]any{"id": room.ID, "name": room.Name}},
		"reservation_from": fmtDate(st.arrival),
		"reservation_to":   fmtDate(st.departure),
		"roomAccessKey":    k,
	}}
}

// keyRecord is a key as GraphQL reads it; with Options.HideQRData a QR
// key's qrData reads as "".
func (e *executor) keyRecord(k *key) record {
	qr := k.QRData
	if e.s.hideQR {
		qr = ""
	}
	return record{typ: string(k.Type), fields: map[string]any{
		"id":          k.id,
		"pin":         k.PIN,
		"compartment": k.Compartment,
		"qrData":      qr,
	}}
}

func (e *executor) reservationRecord(res *reservation) record {
	return record{typ: "Reservation", fields: map[string]any{
		"id":   res.id,
		"code": res.code,
		"rooms": resolverFunc(func(args map[string]any) (any, error) {
			var items []*stay
			for _, st := range e.s.sortedStays() {
				if st.reservationID == res.id && e.s.visible(st) {
					items = append(items, st)
				}
			}
			return e.stayConnection(items, args)
		}),
	}}
}

// ---- queries -------------------------------------------------------------

func (e *executor) roomStays(args map[string]any) (any, error) {
	match, err := parseStayFilter(args["filter"])
	if err != nil {
		return nil, err
	}
	// Options.CancelledByID: found by id, a cancelled reservation's
	// stays are still answered for.
	f, _ := args["filter"].(map[string]any)
	_, byID := f["id"]
	byID = byID && e.s.cancelledByID
	var items []*stay
	for _, st := range e.s.sortedStays() {
		if (e.s.visible(st) || byID && !st.deleted) && match(st) {
			items = append(items, st)
		}
	}
	return e.stayConnection(items, args)
}

func (e *executor) reservations(args map[string]any) (any, error) {
	var code any
	if f, ok := args["filter"].(map[string]any); ok {
		if c, ok := f["code"].(map[string]any); ok {
			code = c["eq"]
		}
	}
	var items []*reservation
	for _, res := range e.s.reservations {
		if !res.cancelled && (code == nil || code == res.code) {
			items = append(items, res)
		}
	}
	slices.SortFunc(items, func(a, b *reservation) int { return strings.Compare(a.id, b.id) })
	return connection(e, "Reservation", items, args, func(r *reservation) string { return r.id }, e.reservationRecord)
}

func (e *executor) stayConnection(items []*stay, args map[string]any) (any, error) {
	return connection(e, "RoomStay", items, args, func(st *stay) string {
		return fmtDate(st.arrival) + "|" + st.id
	}, e.stayRecord)
}

// connection pages items (already ordered by sortKey) with first/after and
// builds a <node>Connection record. Cursors are base64 of "<node>:<sortKey>",
// so a page continues after the cursor's position even if that item changed.
func connection[T any](e *executor, node string, items []T, args map[string]any, sortKey func(T) string, rec func(T) record) (any, error) {
	first, err := e.pageSize(args["first"])
	if err != nil {
		return nil, err
	}
	start := 0
	if after, _ := args["after"].(string); after != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(after)
		key, ok := strings.CutPrefix(string(raw), node+":")
		if derr != nil || !ok {
			return nil, errorf(CodeBadUserInput, "after: not a cursor of this connection")
		}
		start = len(items)
		for i, it := range items {
			if sortKey(it) > key {
				start = i
				break
			}
		}
	}
	end := min(start+first, len(items))
	edges := make([]any, 0, end-start)
	var endCursor any
	for _, it := range items[start:end] {
		c := base64.RawURLEncoding.EncodeToString([]byte(node + ":" + sortKey(it)))
		edges = append(edges, record{typ: node + "Edge", fields: map[string]any{"cursor": c, "node": rec(it)}})
		endCursor = c
	}
	return record{typ: node + "Connection", fields: map[string]any{
		"edges": edges,
		"pageInfo": record{typ: "PageInfo", fields: map[string]any{
			"hasNextPage": end < len(items),
			"endCursor":   endCursor,
		}},
	}}, nil
}

func (e *executor) pageSize(v any) (int, error) {
	if v == nil {
		return DefaultPageSize, nil
	}
	n, ok := toInt(v)
	switch {
	case !ok || n < 0:
		return 0, errorf(CodeBadUserInput, "first: must be a non-negative integer")
	case n > e.s.opts.MaxPageSize:
		return 0, errorf(CodeBadUserInput, "first: must be at most %d", e.s.opts.MaxPageSize)
	}
	return n, nil
}

// parseStayFilter turns a RoomStayFilter into a predicate (all parts ANDed).
func parseStayFilter(v any) (func(*stay) bool, error) {
	f, _ := v.(map[string]any)
	var preds []func(*stay) bool
	if idf, ok := f["id"].(map[string]any); ok {
		if eq := idf["eq"]; eq != nil {
			id := idString(eq)
			preds = append(preds, func(st *stay) bool { return st.id == id })
		}
		if in, ok := idf["in"].([]any); ok {
			set := map[string]bool{}
			for _, x := range in {
				set[idString(x)] = true
			}
			preds = append(preds, func(st *stay) bool { return set[st.id] })
		}
	}
	for _, name := range []string{"reservation_from", "reservation_to"} {
		df, ok := f[name].(map[string]any)
		if !ok {
			continue
		}
		field := func(st *stay) time.Time { return st.arrival }
		if name == "reservation_to" {
			field = func(st *stay) time.Time { return st.departure }
		}
		for _, op := range []string{"eq", "lt", "le", "gt", "ge"} {
			raw := df[op]
			if raw == nil {
				continue
			}
			str, _ := raw.(string)
			d, err := parseDate(str)
			if err != nil {
				return nil, errorf(CodeBadUserInput, "filter.%s.%s: %v", name, op, err)
			}
			cmp := map[string]func(int) bool{
				"eq": func(c int) bool { return c == 0 }, "lt": func(c int) bool { return c < 0 },
				"le": func(c int) bool { return c <= 0 }, "gt": func(c int) bool { return c > 0 },
				"ge": func(c int) bool { return c >= 0 },
			}[op]
			preds = append(preds, func(st *stay) bool { return cmp(field(st).Compare(d)) })
		}
	}
	return func(st *stay) bool {
		for _, p := range preds {
			if !p(st) {
				return false
			}
		}
		return true
	}, nil
}

// ---- mutations -------------------------------------------------------------

func (e *executor) createRoomAccessKey(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	var k Key
	set := 0
	if m, ok := in["roomAccessPin"].(map[string]any); ok {
		set++
		k = Key{Type: KeyTypePin, PIN: str(m["pin"])}
	}
	if m, ok := in["roomAccessKeyStorage"].(map[string]any); ok {
		set++
		k = Key{Type: KeyTypeKeyStorage, PIN: str(m["pin"]), Compartment: str(m["compartment"])}
	}
	if m, ok := in["roomAccessQR"].(map[string]any); ok {
		set++
		k = Key{Type: KeyTypeQR, QRData: str(m["qrData"])}
	}
	if set != 1 {
		return nil, errorf(CodeBadUserInput, msgOneOf)
	}
	nk, err := e.s.createKey(e.caller, k)
	if err != nil {
		return nil, err
	}
	return record{typ: "CreateRoomAccessKeyPayload", fields: map[string]any{"roomAccessKey": e.keyRecord(nk)}}, nil
}

// stayKeyMutation resolves addRoomAccessKey or removeRoomAccessKey: change
// (Server.addKey or Server.removeKey) applied to the input's stay and key,
// answered with a payload of type typ that holds the stay.
func (e *executor) stayKeyMutation(typ string, change func(caller, stayID, keyID string) (*stay, *Error)) resolverFunc {
	return func(args map[string]any) (any, error) {
		in, _ := args["input"].(map[string]any)
		st, err := change(e.caller, idString(in["roomStayId"]), idString(in["roomAccessKeyId"]))
		if err != nil {
			return nil, err
		}
		return record{typ: typ, fields: map[string]any{"roomStay": e.stayRecord(st)}}, nil
	}
}

func (e *executor) deleteRoomAccessKey(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	if err := e.s.deleteKey(e.caller, idString(in["roomAccessKeyId"])); err != nil {
		return nil, err
	}
	var deleted any = true
	if e.s.deletedAsID { // Options.DeletedAsID; the caller holds s.mu
		deleted = idString(in["roomAccessKeyId"])
	}
	return record{typ: "DeleteRoomAccessKeyPayload", fields: map[string]any{"deleted": deleted}}, nil
}

// ---- value helpers ---------------------------------------------------------

func str(v any) string {
	s, _ := v.(string)
	return s
}

// idString renders an ID argument, which gqlparser may hand over as a string
// or, for integer input, as a number.
func idString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		return int(v), true
	case int:
		return v, true
	case float64:
		return int(v), v == float64(int(v))
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}
