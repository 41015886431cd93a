// Package schema holds the 3RPMS GraphQL schema (SDL) that keysync is built
// against. The genqlient clients generate from the file; the sandbox server
// validates every request against the embedded copy.
package schema

import _ "embed"

// SDL is the schema text, written from seed 003.
//
//go:embed schema.graphql
var SDL string
