// Package schema holds the 3RPMS GraphQL schema (SDL) that keysync is built
// against. The stay source's queries and the key sink's mutations are generated
// from the file; the sandbox server
// validates every request against the embedded copy.
package schema

import _ "embed"

// SDL is the schema text, written from the 3RPMS Room Access Key API.
//
//go:embed schema.graphql
var SDL string
