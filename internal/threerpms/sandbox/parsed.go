package sandbox

import (
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// parsed is a query document as parsed and validated against one schema
// variant: what the sandbox answers for it does not depend on anything
// else, so a document sent again (a window read's every page, each
// property's read in a portfolio, chained mutations of the same shape) is
// parsed and validated once. Validation annotates the document's nodes
// with the schema's definitions, so a document is kept per variant, and
// after it is made it is only read (by the executor, the variable
// coercion and the request log), never changed.
type parsed struct {
	doc      *ast.QueryDocument
	parseErr error
	invalid  gqlerror.List // validation errors, when parseErr is nil
}

// parsedKey is a document's text under one schema variant.
type parsedKey struct {
	variant schemaVariant
	query   string
}

// maxParsed bounds the documents kept: past it the cache starts afresh,
// so a stream of documents that are each new (every mutation document a
// different shape) costs memory no longer than that.
const maxParsed = 256

var (
	parsedMu    sync.Mutex
	parsedCache = map[parsedKey]*parsedEntry{}
)

// parsedEntry is made once, by the first request that asks for it; the
// others wait for it.
type parsedEntry struct {
	once sync.Once
	p    parsed
}

// parseQuery parses query and, if it parses, validates it against sch,
// the schema of variant.
func parseQuery(variant schemaVariant, sch *ast.Schema, query string) *parsed {
	k := parsedKey{variant, query}
	parsedMu.Lock()
	e, ok := parsedCache[k]
	if !ok {
		if len(parsedCache) >= maxParsed {
			clear(parsedCache)
		}
		e = &parsedEntry{}
		parsedCache[k] = e
	}
	parsedMu.Unlock()
	e.once.Do(func() {
		doc, err := parser.ParseQuery(&ast.Source{Name: "request", Input: query})
		if err != nil {
			e.p.parseErr = err
			return
		}
		e.p.doc = doc
		e.p.invalid = validator.ValidateWithRules(sch, doc, nil)
	})
	return &e.p
}
