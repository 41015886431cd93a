package openapp

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/keysync/keysync/reconcile"
)

// MaxQRData is the longest guest URL keysync writes: the limit 3RPMS sets
// on RoomAccessQR qrData.
const MaxQRData = 512

// TokenPlaceholder marks where GuestURL puts the token in a base URL, in
// its path or its query.
const TokenPlaceholder = "{token}"

// GuestURL returns the link a guest opens for an invite: base with
// TokenPlaceholder replaced by the token, or, without a placeholder, base
// with the token appended as a path segment (https://open.example/i →
// https://open.example/i/<token>). Every byte of the token other than
// letters, digits and -._~ is percent-encoded, so it is safe in a path or
// a query. base must be an absolute http or https URL. It is an error for
// the link to exceed MaxQRData characters. Errors never contain the token.
func GuestURL(base string, token reconcile.Secret) (string, error) {
	if token == "" {
		return "", errors.New("openapp: guest URL: the invite token is empty")
	}
	u, err := url.Parse(strings.ReplaceAll(base, TokenPlaceholder, "token"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("openapp: guest URL base must be an absolute http(s) URL, such as https://open.example/i/{token}")
	}
	esc := escapeToken(token.Reveal())
	var link string
	if strings.Contains(base, TokenPlaceholder) {
		link = strings.ReplaceAll(base, TokenPlaceholder, esc)
	} else {
		if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(base, "?") || strings.HasSuffix(base, "#") {
			return "", fmt.Errorf("openapp: guest URL base has a query or fragment; mark where the token goes with %s", TokenPlaceholder)
		}
		link = strings.TrimRight(base, "/") + "/" + esc
	}
	if n := len(link); n > MaxQRData {
		return "", fmt.Errorf("openapp: guest URL is %d characters, more than the %d 3RPMS accepts as QR data", n, MaxQRData)
	}
	return link, nil
}

// Derive implements reconcile.Deriver: a RoomAccessQR carries the guest
// link of the invite whose token is upstreamSecret, built from
// Options.GuestURL.
func (s *Sink) Derive(key *reconcile.Credential, upstreamSecret reconcile.Secret) error {
	if key.Kind != reconcile.KindQRKey {
		return fmt.Errorf("%s is not derived from an OpenApp invite", key.Kind)
	}
	link, err := GuestURL(s.opts.GuestURL, upstreamSecret)
	if err != nil {
		return err
	}
	key.QRData = reconcile.Secret(link)
	return nil
}

// escapeToken percent-encodes all but RFC 3986's unreserved characters.
func escapeToken(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
