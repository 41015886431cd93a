// Package reach classifies a failed HTTP exchange by what it says about the
// configured URL, for every adapter's transport: a host name that does not
// resolve is a wrong URL (reconcile.ErrEndpoint), a connection that cannot
// be made is an unreachable server (reconcile.ErrUnreachable), and only
// while the system has never answered: after one answer, a failure is a
// partial problem of the run, not a wrong config.
package reach

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/keysync/keysync/reconcile"
)

// Tracker remembers whether a system answered, over one run. The zero
// value is ready; it is safe for concurrent use. A nil Tracker classifies
// as if the system never answered.
type Tracker struct {
	answered atomic.Bool
}

// Answer records an HTTP answer and returns reconcile.ErrEndpoint when it
// is a 404 for the configured endpoint itself and the system had never
// answered before; nil otherwise. endpoint says the request was for the
// endpoint the config names (a GraphQL endpoint, a collection the API
// documents), where a 404 means the URL is wrong, not that a record is
// gone.
func (t *Tracker) Answer(status int, endpoint bool) error {
	first := t == nil || !t.answered.Swap(true)
	if status == http.StatusNotFound && endpoint && first {
		return reconcile.ErrEndpoint
	}
	return nil
}

// Failed returns the condition a failed exchange (the error of
// http.Client.Do) shows, or nil: reconcile.ErrEndpoint when the host name
// does not resolve, reconcile.ErrUnreachable when no connection could be
// made (refused, a connect timeout, a TLS handshake refused). Both only
// while the system has never answered; a lost connection after one answer,
// and a failure after the request was sent, give nil.
func (t *Tracker) Failed(err error) error {
	if err == nil || (t != nil && t.answered.Load()) {
		return nil
	}
	return Classify(err)
}

// Classify is Failed without the history: what err alone says about the
// URL.
func Classify(err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return reconcile.ErrEndpoint
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		// Refused, unreachable network, connect timeout, or a DNS lookup
		// that failed for want of an answer (the name may be right).
		return reconcile.ErrUnreachable
	}
	var (
		cert  *tls.CertificateVerificationError
		alert tls.AlertError
		rec   tls.RecordHeaderError
		ua    x509.UnknownAuthorityError
		host  x509.HostnameError
	)
	if errors.As(err, &cert) || errors.As(err, &alert) || errors.As(err, &rec) || errors.As(err, &ua) || errors.As(err, &host) {
		return reconcile.ErrUnreachable
	}
	// net/http turns the TLS record error of an https URL that reaches a
	// plain-HTTP server into this (its own) message, with no type to test.
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return reconcile.ErrUnreachable
	}
	return nil
}

// Wrap adds cond (from Failed or Answer) to err, so errors.Is finds both;
// a nil cond leaves err as it is.
func Wrap(err, cond error) error {
	if cond == nil || err == nil {
		return err
	}
	return fmt.Errorf("%w: %w", err, cond)
}
