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
