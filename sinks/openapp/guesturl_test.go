package openapp_test

import (
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
)

func TestGuestURL(t *testing.T) {
	t.Parallel()
	const token = reconcile.Secret("oat_Ab-c_d~9")
	for _, tc := range []struct {
		base  string
		token reconcile.Secret
		want  string // "": an error
	}{
		{"https://open.example/i/{token}", token, "https://open.example/i/oat_Ab-c_d~9"},
		{"https://open.example/i/{token}/open", token, "https://open.example/i/oat_Ab-c_d~9/open"},
		{"https://open.example/claim?invite={token}&lang=sl", token, "https://open.example/claim?invite=oat_Ab-c_d~9&lang=sl"},
		{"https://open.example/i", token, "https://open.example/i/oat_Ab-c_d~9"},
		{"https://open.example/i/", token, "https://open.example/i/oat_Ab-c_d~9"},
		{"http://localhost:8080", token, "http://localhost:8080/oat_Ab-c_d~9"},
		{"https://open.example/i/{token}", "a/b+c d&e=f", "https://open.example/i/a%2Fb%2Bc%20d%26e%3Df"},
		{"https://open.example/i?x=1", token, ""}, // query without a placeholder
		{"https://open.example/i#frag", token, ""},
		{"open.example/i/{token}", token, ""},
		{"ftp://open.example/{token}", token, ""},
		{"https:///i/{token}", token, ""},
		{"", token, ""},
		{"https://open.example/i/{token}", "", ""},
		{"https://open.example/" + strings.Repeat("p", 512-len("https://open.example/")-len(token)-1) + "/{token}", token, "https://open.example/" + strings.Repeat("p", 512-len("https://open.example/")-len(token)-1) + "/" + string(token)},
		{"https://open.example/" + strings.Repeat("p", 512-len("https://open.example/")-len(token)) + "/{token}", token, ""},
		{"https://open.example/i/{token}", reconcile.Secret(strings.Repeat("T", 500)), ""},
	} {
		got, err := openapp.GuestURL(tc.base, tc.token)
		if tc.want == "" {
			if err == nil {
				t.Errorf("GuestURL(%q) = %q, want an error", tc.base, got)
			} else if tc.token != "" && strings.Contains(err.Error(), tc.token.Reveal()) {
				t.Errorf("error quotes the token: %v", err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("GuestURL(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
		if len(got) > openapp.MaxQRData {
			t.Errorf("%d characters", len(got))
		}
	}
	_, err := openapp.GuestURL("https://open.example/i/{token}", reconcile.Secret(strings.Repeat("T", 500)))
	if err == nil || !strings.Contains(err.Error(), "512") {
		t.Errorf("over the limit: %v", err)
	}
}

// TestDerive checks the sink builds a RoomAccessQR's QR data from an
// invite token through its guest URL, and builds nothing else.
func TestDerive(t *testing.T) {
	t.Parallel()
	s := newSink(t, openapp.Options{GuestURL: "https://open.example/i/{token}"})
	key := &reconcile.Credential{Kind: reconcile.KindQRKey, RoomID: "r104"}
	if err := s.Derive(key, "oat_tok"); err != nil || key.QRData.Reveal() != "https://open.example/i/oat_tok" {
		t.Errorf("Derive = %v, QR data %q", err, key.QRData.Reveal())
	}
	pin := &reconcile.Credential{Kind: reconcile.KindKeyStorageKey}
	if err := s.Derive(pin, "oat_tok"); err == nil || pin.QRData != "" || pin.PIN != "" {
		t.Errorf("Derive of a %s = %v; want an error and nothing filled", pin.Kind, err)
	}
	bad := &reconcile.Credential{Kind: reconcile.KindQRKey}
	if err := newSink(t, openapp.Options{}).Derive(bad, "oat_tok"); err == nil || bad.QRData != "" || strings.Contains(err.Error(), "oat_tok") {
		t.Errorf("Derive without a guest URL = %v, QR data %q; want an error without the token", err, bad.QRData.Reveal())
	}
}

// TestNewRefusesOptions checks New returns the error of options the HTTP
// client cannot be built from, and no sink.
func TestNewRefusesOptions(t *testing.T) {
	t.Parallel()
	o := options("https://api.openapp.example")
	o.MaxResponseBytes = -1
	if s, err := openapp.New(o); s != nil || err == nil || !strings.Contains(err.Error(), "max response bytes") {
		t.Errorf("New = %v, %v; want no sink and an error about max response bytes", s, err)
	}
}
