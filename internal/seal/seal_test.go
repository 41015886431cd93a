package seal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestCreateTogether: processes creating the key file at once (shards
// starting together) leave one key: one Create wins, the others fail with
// fs.ErrExist, a reader meanwhile finds no file or the whole winner's key,
// never a half-written one, and no temporary file is left behind.
func TestCreateTogether(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.key")
		var wg sync.WaitGroup
		keys := make([]*Key, 8)
		errs := make([]error, 8)
		stop := make(chan struct{})
		var seen []string
		var readErr error
		read := make(chan struct{})
		go func() {
			defer close(read)
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, err := Load(path)
				switch {
				case errors.Is(err, ErrNoKey):
				case err != nil:
					readErr = err
					return
				default:
					seen = append(seen, k.ID())
				}
			}
		}()
		for i := range keys {
			wg.Go(func() { keys[i], errs[i] = Create(path) })
		}
		wg.Wait()
		close(stop)
		<-read
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("round %d: two Creates succeeded", round)
			case err == nil:
				won = i
			case !errors.Is(err, fs.ErrExist):
				t.Fatalf("round %d: a losing Create: %v, want fs.ErrExist", round, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no Create succeeded: %v", round, errs)
		}
		k, err := Load(path)
		if err != nil || k.ID() != keys[won].ID() {
			t.Fatalf("round %d: the file holds another key than the winner's: %v", round, err)
		}
		if readErr != nil {
			t.Fatalf("round %d: a reader met a half-written key file: %v", round, readErr)
		}
		for _, id := range seen {
			if id != k.ID() {
				t.Fatalf("round %d: a reader saw key %s, not the winner's", round, id)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("round %d: %d files in the directory, want the key file alone", round, len(entries))
		}
	}
}

// TestCreateWithoutHardLinks: on a filesystem without hard links (some SMB
// and FUSE mounts, FAT; os.Link fails with EPERM or ENOTSUP there), the
// first backfill still creates the key file, as it did before the key was
// linked into place, and a second Create still refuses to overwrite it.
// Not parallel: it swaps the package's link.
func TestCreateWithoutHardLinks(t *testing.T) {
	defer func(l func(string, string) error) { link = l }(link)
	link = func(oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state.key")
	k, err := Create(path)
	if err != nil {
		t.Fatalf("Create on a filesystem without hard links: %v", err)
	}
	got, err := Load(path)
	if err != nil || got.ID() != k.ID() {
		t.Fatalf("Load after Create: %v, %v; want key %s", got, err, k.ID())
	}
	if _, err := Create(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v, want fs.ErrExist", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d files, want the key file alone", len(entries))
	}
}
