package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestTransport(t *testing.T) {
	t.Parallel()
	inner := fmt.Errorf(`net/http: malformed MIME header line: "Content-Type: tok-CANARY": %w`, context.Canceled)
	err := scrubTransport(&url.Error{Op: "Post", URL: "https://user:pass@api.example/graphql?key=CANARY2", Err: inner})
	if strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), "api.example") {
		t.Errorf("scrubbed error still says %q", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Error("the cause is no longer reachable")
	}
	if scrubTransport(nil) != nil {
		t.Error("nil is not nil")
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	var v struct{ N int }
	for _, body := range []string{`{"N":"secret-CANARY"}`, `{"N":1,"tok-CANARY`, `secret-CANARY`} {
		err := JSONError(json.Unmarshal([]byte(body), &v))
		if err == nil || strings.Contains(err.Error(), "CANARY") {
			t.Errorf("%s: %v", body, err)
		}
		if msg := describeJSON(json.Unmarshal([]byte(body), &v), len(body)); strings.Contains(msg, "CANARY") {
			t.Errorf("%s: %s", body, msg)
		}
	}
}
