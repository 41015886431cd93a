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
	for _, tt := range []struct{ path, state, key string }{
		{"../../deploy/systemd/keysync.yaml", "/var/lib/keysync/keysync.db", "/var/lib/keysync/keysync.key"},
		{"../../deploy/kubernetes/base/keysync.yaml", "/data/keysync.db", "/data/keysync.key"},
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
				if strings.Contains(m[0], "state_key_file") {
					continue // written by the first backfill, not read here
				}
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
			// Both must lie where the unit or pod may write: the first
			// backfill creates the key file.
			if cfg.State != tt.state || cfg.StateKeyFile != tt.key {
				t.Errorf("state = %q, key = %q; want %q, %q", cfg.State, cfg.StateKeyFile, tt.state, tt.key)
			}
			if cfg.Properties[0].ThreeRPMS.token.Reveal() != "gw_s3cret" {
				t.Error("the 3RPMS token was not read from its file")
			}
		})
	}
}
