package reconcile

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPlanReportEmptyListsInJSON: a property with nothing to do and
// nothing to note reads as empty lists in JSON, not null, for scripts that
// iterate over them.
func TestPlanReportEmptyListsInJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(newPlanReport(&Plan{Property: "hotel"}))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"actions":[]`) || !strings.Contains(s, `"notes":[]`) || strings.Contains(s, "null") {
		t.Errorf("empty plan report: %s", s)
	}
}
