package schema

import (
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"testing"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	if _, err := gqlparser.LoadSchema(&ast.Source{Name: "s", Input: SDL}); err != nil {
		t.Fatal(err)
	}
}
