package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// TestNoList: a list call answered 405 means the system has no such call
// (reconcile.ErrNoList, the answer kept); a 404 stays a failure that names
// the option saying so; any other failure is left as it is.
func TestNoList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		noList bool
	}{
		{"404", &httpapi.Error{API: "openapp", Call: "find invites", Status: http.StatusNotFound, Err: reconcile.ErrNotFound}, false},
		{"405", &httpapi.Error{API: "keybox", Call: "find access", Status: http.StatusMethodNotAllowed}, true},
		{"405 wrapped", fmt.Errorf("page 1: %w", &httpapi.Error{Status: http.StatusMethodNotAllowed}), true},
		{"409", &httpapi.Error{Status: http.StatusConflict, Err: reconcile.ErrConflict}, false},
		{"503", &httpapi.Error{Status: http.StatusServiceUnavailable, Err: reconcile.ErrUnavailable}, false},
		{"no answer", &httpapi.Error{Err: reconcile.ErrUnreachable}, false},
		{"not an httpapi error", errors.New("not found"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := httpapi.NoList(tc.err, "no_list: true")
			if errors.Is(got, reconcile.ErrNoList) != tc.noList {
				t.Fatalf("NoList(%v) = %v, want ErrNoList: %v", tc.err, got, tc.noList)
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Errorf("NoList(%v) = %v lost the error it was given", tc.err, got)
			}
			is404 := tc.name == "404"
			if is404 && !strings.Contains(got.Error(), "set no_list: true") {
				t.Errorf("NoList(%v) = %v, want the option named", tc.err, got)
			}
			if !tc.noList && !is404 && got != tc.err {
				t.Errorf("NoList(%v) = %v, want it unchanged", tc.err, got)
			}
		})
	}
}

// TestRedactFold: a secret is cut from a message in whatever case the
// server echoed it; an empty secret cuts nothing.
func TestRedactFold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		msg     string
		secrets []string
		want    string
	}{
		{"token AbC123xyz refused", []string{"AbC123xyz"}, "token [redacted] refused"},
		{"token abc123xyz refused", []string{"AbC123xyz"}, "token [redacted] refused"},
		{"ABC123XYZ twice: abc123xyz", []string{"AbC123xyz"}, "[redacted] twice: [redacted]"},
		{"code a.b+c", []string{"a.b+c"}, "code [redacted]"}, // not a pattern
		{"nothing here", []string{""}, "nothing here"},
	} {
		if got := httpapi.RedactFold(tc.msg, tc.secrets...); got != tc.want {
			t.Errorf("RedactFold(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}
