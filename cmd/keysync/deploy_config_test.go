package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployConfigsParse loads the sample configs the systemd units and the
// Kubernetes manifests ship (deploy/) with the real loader, each secret
// file they name replaced by a temporary one, so a config change that
// breaks them fails here. deploy/'s own tests check the paths against the
// units and manifests.
func TestDeployConfigsParse(t *testing.T) {
	t.Parallel()
	fileRef := regexp.MustCompile(`(?m)^\s*\w+_file:\s*(\S+)\s*$`)
	for _, tt := range []struct{ path, state string }{
		{"../../deploy/systemd/keysync.yaml", "/var/lib/keysync/keysync.db"},
		{"../../deploy/kubernetes/base/keysync.yaml", "/data/keysync.db"},
	} {
		t.Run(filepath.Base(filepath.Dir(tt.path)), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			text := string(raw)
			refs := fileRef.FindAllStringSubmatch(text, -1)
			if len(refs) == 0 {
				t.Fatal("no *_file secrets")
			}
			for _, m := range refs {
				// gw_: Guestway's organization tokens must start with it.
				tmp := filepath.Join(dir, filepath.Base(m[1]))
				if err := os.WriteFile(tmp, []byte("gw_s3cret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				text = strings.ReplaceAll(text, m[1], tmp)
			}
			cfg, err := ParseConfig(strings.NewReader(text), env())
			if err != nil {
				t.Fatalf("%s: %v", tt.path, err)
			}
			if cfg.State != tt.state {
				t.Errorf("state = %q, want %q", cfg.State, tt.state)
			}
			if cfg.Properties[0].ThreeRPMS.token.Reveal() != "gw_s3cret" {
				t.Error("the 3RPMS token was not read from its file")
			}
		})
	}
}
