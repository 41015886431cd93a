package sandboxkit_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	m := map[string]string{"a": "alpha"}
	if v, ok := sandboxkit.Lookup(&mu, &m, "a", strings.ToUpper); !ok || v != "ALPHA" {
		t.Errorf("a: %q %v, want ALPHA true", v, ok)
	}
	if v, ok := sandboxkit.Lookup(&mu, &m, "b", strings.ToUpper); ok || v != "" {
		t.Errorf("b: %q %v, want the zero value and false", v, ok)
	}
}

func TestViews(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	recs := []string{"b", "a"}
	if got := sandboxkit.Views(&mu, &recs, strings.ToUpper); len(got) != 2 || got[0] != "B" || got[1] != "A" {
		t.Errorf("Views = %q, want [B A]", got)
	}
	var none []string
	if got := sandboxkit.Views(&mu, &none, strings.ToUpper); got == nil || len(got) != 0 {
		t.Errorf("Views of none = %#v, want an empty slice", got)
	}
}
