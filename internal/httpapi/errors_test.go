package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// TestNoList: a list call answered 404 or 405 means the system has no
// such call (reconcile.ErrNoList, the answer kept); any other failure is
// left as it is.
func TestNoList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		noList bool
	}{
		{"404", &httpapi.Error{API: "openapp", Call: "find invites", Status: http.StatusNotFound, Err: reconcile.ErrNotFound}, true},
		{"405", &httpapi.Error{API: "keybox", Call: "find access", Status: http.StatusMethodNotAllowed}, true},
		{"404 wrapped", fmt.Errorf("page 1: %w", &httpapi.Error{Status: http.StatusNotFound}), true},
		{"409", &httpapi.Error{Status: http.StatusConflict, Err: reconcile.ErrConflict}, false},
		{"503", &httpapi.Error{Status: http.StatusServiceUnavailable, Err: reconcile.ErrUnavailable}, false},
		{"no answer", &httpapi.Error{Err: reconcile.ErrUnreachable}, false},
		{"not an httpapi error", errors.New("not found"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := httpapi.NoList(tc.err)
			if errors.Is(got, reconcile.ErrNoList) != tc.noList {
				t.Fatalf("NoList(%v) = %v, want ErrNoList: %v", tc.err, got, tc.noList)
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Errorf("NoList(%v) = %v lost the error it was given", tc.err, got)
			}
			if !tc.noList && got != tc.err {
				t.Errorf("NoList(%v) = %v, want it unchanged", tc.err, got)
			}
		})
	}
}
