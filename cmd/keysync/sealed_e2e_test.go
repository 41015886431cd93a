package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/state"
)

// sealedWorld is a hotel keyed by PIN, QR and key box, backfilled.
func sealedWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, map[string]string{"r101": "pin", "r102": "pin", "r201": "qr", "r301": "key_storage"}, nil)
	w.hotelStay("s1", "r101", 0, 2)
	w.hotelStay("s2", "r102", 1, 3)
	w.hotelStay("s3", "r201", 0, 2)
	w.hotelStay("s4", "r301", 1, 3)
	w.run(ExitOK, "backfill")
	w.converges()
	return w
}

// issuedSecrets returns every PIN, key-box code and invite token keysync
// issued in the sandboxes, by stay where a 3RPMS key carries it.
func issuedSecrets(t *testing.T, w *world) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range []string{"s1", "s2", "s4"} {
		if k := w.key(s); k.PIN != "" {
			out[s] = k.PIN
		}
	}
	for _, a := range w.accesses() {
		out["access "+a.ID] = a.Code
	}
	for _, inv := range w.invites() {
		out["invite "+inv.ID] = inv.Token
	}
	if len(out) < 5 {
		t.Fatalf("issued secrets %d, want PINs for s1, s2, s4, an access code and an invite token", len(out))
	}
	return out
}

// tableText returns every value of every table of the state file as text.
func tableText(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tb := range tables {
		rows, err := db.Query("SELECT * FROM " + tb)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "%s\t", v)
			}
			b.WriteString("\n")
		}
		rows.Close()
	}
	return b.String()
}

// TestSecretsSealedAtRest: no issued PIN, code or token is in any table
// or anywhere in the state file's bytes; with the key, every one opens.
func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	w := sealedWorld(t)
	secrets := issuedSecrets(t, w)
	path := w.statePath()

	// Checkpoint, so what the -wal held is in the file too, then read both.
	creds := readCredentialsWith(t, path, state.Options{Key: stateKeyOf(t, w.config())})
	var raw []byte
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		b, _ := os.ReadFile(f)
		raw = append(raw, b...)
	}
	text := tableText(t, path)
	for what, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the state file's bytes hold %s's secret", what)
		}
		if strings.Contains(text, s) {
			t.Errorf("a table of the state file holds %s's secret", what)
		}
	}

	// With the key, the store gives every one back.
	var opened []string
	for _, c := range creds {
		if c.Status.Live() {
			opened = append(opened, secretShown(c).Reveal())
		}
	}
	for what, s := range secrets {
		if !slices.Contains(opened, s) {
			t.Errorf("%s's secret does not open from the state file", what)
		}
	}

	// The key file is beside the config, readable by its owner only.
	fi, err := os.Stat(filepath.Join(filepath.Dir(w.cfg), "keysync.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}

// config loads the world's config.
func (w *world) config() *Config {
	w.t.Helper()
	cfg, err := LoadConfig(w.cfg, w.getenv)
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// TestStateCopyWithoutKey: a copy of the state file (a backup) without the
// key runs into one clear error, and nothing is written, remote or local.
func TestStateCopyWithoutKey(t *testing.T) {
	t.Parallel()
	w := sealedWorld(t)
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "k.db")
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"backup", "--config", w.cfg, "--to", copyPath}, &out, &errb, w.getenv); err != nil {
		t.Fatal(err)
	}
	cfgText, _ := os.ReadFile(w.cfg)
	cfgCopy := filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(cfgCopy, bytes.ReplaceAll(cfgText, []byte(w.statePath()), []byte(copyPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(copyPath)
	keysBefore := len(w.sb.rpms.Keys())
	w.setNow(w.now.Add(24 * time.Hour))
	w.hotelStay("s5", "r102", 1, 3) // work a run would do

	for _, cmd := range []string{"run", "plan", "backfill"} {
		out.Reset()
		errb.Reset()
		err := Run(context.Background(), []string{cmd, "--config", cfgCopy, "--now", w.now.Format(time.RFC3339)}, &out, &errb, w.getenv)
		if code := exitCode(err); code != ExitConfig {
			t.Fatalf("%s on a copy without the key: exit %d (%v), want %d", cmd, code, err, ExitConfig)
		}
		msg := err.Error()
		if !strings.Contains(msg, "state_key_file") || !strings.Contains(msg, "keysync.key") || strings.Count(msg, "\n") > 0 {
			t.Errorf("%s: error %q: want one line naming state_key_file and the key file", cmd, msg)
		}
	}
	if after, _ := os.ReadFile(copyPath); !bytes.Equal(before, after) {
		t.Error("the state copy changed")
	}
	if _, err := os.Stat(copyPath + "-wal"); err == nil {
		t.Error("the state copy was opened for writing (a -wal beside it)")
	}
	if _, err := os.Stat(filepath.Join(dir, "keysync.key")); err == nil {
		t.Error("a key file was created for an existing state file")
	}
	if n := len(w.sb.rpms.Keys()); n != keysBefore {
		t.Errorf("3RPMS keys %d, want %d: a run without the key wrote", n, keysBefore)
	}

	// The same with another key: the error names rekey, and no record
	// changes (opening it read-write switches the copy to WAL journaling,
	// which changes only its header).
	tables := tableText(t, copyPath)
	_, text, _ := seal.Generate()
	getenv := func(k string) string {
		if k == stateKeyEnv {
			return text
		}
		return w.getenv(k)
	}
	err := Run(context.Background(), []string{"run", "--config", cfgCopy, "--now", w.now.Format(time.RFC3339)}, &out, &errb, getenv)
	if code := exitCode(err); code != ExitConfig || !strings.Contains(err.Error(), "rekey") {
		t.Errorf("run with another key: exit %d, %v; want %d naming rekey", code, err, ExitConfig)
	}
	if tableText(t, copyPath) != tables {
		t.Error("a run with another key changed the state copy's records")
	}
}

// TestRekeyKeepsEveryCredential: after rekey every secret opens with the
// new key only, each old key is kept as .old-ID, and the next run re-issues
// nothing.
func TestRekeyKeepsEveryCredential(t *testing.T) {
	t.Parallel()
	w := sealedWorld(t)
	cfg := w.config()
	oldKey := stateKeyOf(t, cfg)
	secretsOf := func(k *seal.Key) map[int64]string {
		out := map[int64]string{}
		for _, c := range readCredentialsWith(t, cfg.State, state.Options{ReadOnly: true, Key: k}) {
			if s := secretShown(c); s != "" {
				out[c.ID] = s.Reveal()
			}
		}
		return out
	}
	before := secretsOf(oldKey)

	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"rekey", "--config", w.cfg}, &out, &errb, w.getenv); err != nil {
		t.Fatalf("rekey: %v\n%s", err, errb.String())
	}
	newKey := stateKeyOf(t, cfg)
	if newKey.ID() == oldKey.ID() {
		t.Fatal("rekey kept the key")
	}
	if k, err := seal.Load(cfg.StateKeyFile + ".old-" + oldKey.ID()); err != nil || k.ID() != oldKey.ID() {
		t.Errorf("the old key is not kept as .old-ID: %v", err)
	}
	// A second rekey keeps the first key too: each is named by its id.
	if err := Run(context.Background(), []string{"rekey", "--config", w.cfg}, &out, &errb, w.getenv); err != nil {
		t.Fatalf("second rekey: %v\n%s", err, errb.String())
	}
	for _, k := range []*seal.Key{oldKey, newKey} {
		if got, err := seal.Load(cfg.StateKeyFile + ".old-" + k.ID()); err != nil || got.ID() != k.ID() {
			t.Errorf("after two rekeys, key %s is not kept: %v", k.ID(), err)
		}
	}
	newKey = stateKeyOf(t, cfg)
	if after := secretsOf(newKey); fmt.Sprint(after) != fmt.Sprint(before) || len(after) < 5 {
		t.Errorf("after rekey the secrets are %d, want the %d from before", len(after), len(before))
	}
	if _, err := state.Open(context.Background(), cfg.State, state.Options{ReadOnly: true, Key: oldKey}); err == nil {
		t.Error("the old key still opens the state file")
	}
	keysBefore := len(w.sb.rpms.Keys())
	rep := w.run(ExitOK, "run")
	for _, a := range rep.Actions() {
		t.Errorf("run after rekey: %s %s %s: %s", a.System, a.Op, a.Stay.ID, a.Reason)
	}
	if n := len(w.sb.rpms.Keys()); n != keysBefore {
		t.Errorf("3RPMS keys %d after the run, want %d", n, keysBefore)
	}
}

// TestShowPrintsSecretsOnlyWhenAsked: `keysync show` lists a stay's
// credentials, and its PIN only with --secrets.
func TestShowPrintsSecretsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	w := sealedWorld(t)
	pin := w.key("s1").PIN
	other := w.key("s2").PIN
	show := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := Run(context.Background(), append([]string{"show", "--config", w.cfg, "--stay", "s1"}, args...), &out, &errb, w.getenv); err != nil {
			t.Fatalf("show: %v\n%s", err, errb.String())
		}
		return out.String()
	}
	plain := show()
	if strings.Contains(plain, pin) || !strings.Contains(plain, string(reconcile.KindPINKey)) || !strings.Contains(plain, "active") {
		t.Errorf("show without --secrets:\n%s\nwant s1's key, active, without its PIN", plain)
	}
	full := show("--secrets")
	if !strings.Contains(full, pin) || strings.Contains(full, other) {
		t.Errorf("show --secrets:\n%s\nwant s1's PIN and not s2's", full)
	}
}
