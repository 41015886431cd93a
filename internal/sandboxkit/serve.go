package sandboxkit

import (
	"net/http"
	"strconv"
	"strings"
)

// Route serves r with admin when its path is the admin API's (/_sandbox
// or anything under /_sandbox/), else with api: the split of a sandbox
// whose API is not routed by the mux Mount adds the admin routes to.
func Route(w http.ResponseWriter, r *http.Request, admin http.Handler, api http.HandlerFunc) {
	if r.URL.Path == "/_sandbox" || strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		admin.ServeHTTP(w, r)
		return
	}
	api(w, r)
}

// Answer writes an API answer: a Retry-After header of retryAfter seconds
// when it is positive, then status with body as JSON (see WriteJSON), or
// with no body at all when body is nil.
func Answer(w http.ResponseWriter, status int, body any, retryAfter int) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	WriteJSON(w, status, body)
}
