package seal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k, _, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := k.Seal("482913", "cred 7"), k.Seal("482913", "cred 7")
	if s1 == s2 || strings.Contains(s1, "482913") {
		t.Errorf("sealed values %q %q: want distinct, without the plaintext", s1, s2)
	}
	if got, err := k.Open(s1, "cred 7"); err != nil || got != "482913" {
		t.Errorf("Open = %q, %v", got, err)
	}
	if _, err := k.Open(s1, "cred 8"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("another context: %v", err)
	}
	other, _, _ := Generate()
	if _, err := other.Open(s1, "cred 7"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("another key: %v", err)
	}
	if KeyOf(s1) != k.ID() {
		t.Errorf("KeyOf = %q, want %q", KeyOf(s1), k.ID())
	}
	tampered := s1[:len(s1)-2] + "AA"
	if _, err := k.Open(tampered, "cred 7"); err == nil {
		t.Error("a changed value opened")
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.key")
	if _, err := Load(path); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing file: %v", err)
	}
	k, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if _, err := Create(path); err == nil {
		t.Error("Create overwrote a key file")
	}
	again, err := Load(path)
	if err != nil || again.ID() != k.ID() {
		t.Fatalf("Load: %v", err)
	}
	if got, err := again.Open(k.Seal("x", "c"), "c"); err != nil || got != "x" {
		t.Errorf("a value sealed before loading: %q %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
