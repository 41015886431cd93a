package threerpms

import (
	"errors"
	"net/http"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// TestRefusedQuery: the page size is asked again at 20 after an answer
// that may refuse the query's input: HTTP 400, or GraphQL errors one of
// which has no code or an input code; not after errors that all name
// another code, nor after an outage.
func TestRefusedQuery(t *testing.T) {
	t.Parallel()
	coded := func(codes ...string) error {
		var list gqlerror.List
		for _, c := range codes {
			e := &gqlerror.Error{Message: "x"}
			if c != "" {
				e.Extensions = map[string]any{"code": c}
			}
			list = append(list, e)
		}
		return list
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no code", coded(""), true},
		{"input code", coded("BAD_USER_INPUT"), true},
		{"validation", coded("GRAPHQL_VALIDATION_FAILED"), true},
		{"internal only", coded("INTERNAL_SERVER_ERROR"), false},
		{"internal and uncoded", coded("INTERNAL_SERVER_ERROR", ""), true},
		{"HTTP 400", &httpapi.Error{Status: http.StatusBadRequest, Err: reconcile.ErrRejected}, true},
		{"HTTP 503", &httpapi.Error{Status: http.StatusServiceUnavailable, Err: reconcile.ErrUnavailable}, false},
		{"no answer", errors.New("connection reset"), false},
	} {
		if got := refusedQuery(tc.err); got != tc.want {
			t.Errorf("%s: refusedQuery = %v, want %v", tc.name, got, tc.want)
		}
	}
}
