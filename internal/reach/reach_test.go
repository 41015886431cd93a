package reach_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/keysync/keysync/internal/reach"
	"github.com/keysync/keysync/reconcile"
)

// TestFailedOnlyBeforeAnyAnswer: a server that refuses connections from
// the start is unreachable; one that answered and then went away is a
// partial problem (nil), over real HTTP.
func TestFailedOnlyBeforeAnyAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	base := srv.URL
	client := srv.Client()

	var fresh, used reach.Tracker
	resp, err := client.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cond := used.Answer(resp.StatusCode, true); cond != nil {
		t.Errorf("Answer(200) = %v", cond)
	}
	srv.Close()
	client.CloseIdleConnections()

	_, err = client.Get(base)
	if err == nil {
		t.Fatal("a closed server answered")
	}
	if cond := fresh.Failed(err); !errors.Is(cond, reconcile.ErrUnreachable) {
		t.Errorf("never answered, refused: %v, want ErrUnreachable (err %v)", cond, err)
	}
	if cond := used.Failed(err); cond != nil {
		t.Errorf("answered before, then refused: %v, want nil (a partial problem)", cond)
	}
}

// TestAnswer404: a 404 is a wrong URL only for the endpoint itself and
// only as the system's first answer.
func TestAnswer404(t *testing.T) {
	t.Parallel()
	var a, b, c reach.Tracker
	if cond := a.Answer(http.StatusNotFound, true); !errors.Is(cond, reconcile.ErrEndpoint) {
		t.Errorf("first answer 404 on the endpoint: %v, want ErrEndpoint", cond)
	}
	if cond := b.Answer(http.StatusNotFound, false); cond != nil {
		t.Errorf("404 for a record: %v, want nil", cond)
	}
	c.Answer(http.StatusOK, true)
	if cond := c.Answer(http.StatusNotFound, true); cond != nil {
		t.Errorf("404 after an answer: %v, want nil", cond)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	dial := func(err error) error {
		return &url.Error{Op: "Get", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"no such host", dial(&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}), reconcile.ErrEndpoint},
		{"DNS timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}), reconcile.ErrUnreachable},
		{"refused", dial(errors.New("connect: connection refused")), reconcile.ErrUnreachable},
		{"lost after sending", &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("reset")}}, nil},
		{"other", errors.New("EOF"), nil},
	} {
		if got := reach.Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
}
