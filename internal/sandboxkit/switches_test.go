package sandboxkit_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit"
)

// TestSwitches: GET /_sandbox/assumptions shows every switch; POST sets
// the ones it names and shows them all; an unknown name or a value a
// switch refuses is 400 and changes nothing, not even the valid members
// beside it.
func TestSwitches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	noList, pageSize := false, 0
	mux := http.NewServeMux()
	sandboxkit.Switches(mux,
		sandboxkit.Flag("no_list", func() bool { mu.Lock(); defer mu.Unlock(); return noList }, func(v bool) { mu.Lock(); noList = v; mu.Unlock() }),
		sandboxkit.Size("max_page_size", func() int { mu.Lock(); defer mu.Unlock(); return pageSize }, func(v int) { mu.Lock(); pageSize = v; mu.Unlock() }),
	)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/_sandbox/assumptions", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status[:3] + " " + strings.TrimSpace(string(b))
	}
	for _, tc := range []struct{ method, body, want string }{
		{"GET", "", `200 {"max_page_size":0,"no_list":false}`},
		{"POST", `{"no_list": true}`, `200 {"max_page_size":0,"no_list":true}`},
		{"POST", `{"max_page_size": 20, "no_list": false}`, `200 {"max_page_size":20,"no_list":false}`},
		{"POST", `{"no_list": true, "nope": 1}`, `400 `},
		{"POST", `{"no_list": true, "max_page_size": -1}`, `400 `},
		{"POST", `{"no_list": "yes"}`, `400 `},
		{"POST", `{"max_page_size": 2.5}`, `400 `},
		{"GET", "", `200 {"max_page_size":20,"no_list":false}`}, // the refused ones changed nothing
		{"POST", `{"max_page_size": 0}`, `200 {"max_page_size":0,"no_list":false}`},
	} {
		if got := call(tc.method, tc.body); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s %s: %s, want %s…", tc.method, tc.body, got, tc.want)
		}
	}
}
