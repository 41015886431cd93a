// Package seal keeps secrets (PINs, key-box codes, invite tokens) encrypted
// at rest, under a key that lives outside the state file: a key file, the
// environment, or a systemd credential. It uses AES-256-GCM from the
// standard library; each sealed value carries its own random nonce and the
// key's short id, so a rotated key is told apart from a wrong one.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// Key seals and opens values.
type Key struct {
	aead cipher.AEAD
	id   string
}

// ErrNoKey means no key was found where one was looked for.
var ErrNoKey = errors.New("no state key")

// ErrWrongKey means a value was sealed under another key, or was changed.
var ErrWrongKey = errors.New("sealed with another key, or damaged")

// New makes a key from 32 raw bytes.
func New(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a state key is %d bytes, not %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("keysync state key id\x00"), raw...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// Generate makes a new random key and its text form (64 hex digits), the
// form key files and the environment hold.
func Generate() (*Key, string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	k, err := New(raw)
	return k, hex.EncodeToString(raw), err
}

// Parse reads a key's text form (64 hex digits, surrounding space ignored).
func Parse(text string) (*Key, error) {
	raw, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(raw) != KeySize {
		return nil, fmt.Errorf("a state key is %d hex digits", 2*KeySize)
	}
	return New(raw)
}

// Load reads a key file. A missing file is an error wrapping ErrNoKey; a
// file others can read is refused.
func Load(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state key file %s: %w", path, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("state key file %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("state key file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("state key file %s: %w", path, err)
	}
	k, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("state key file %s: %w", path, err)
	}
	return k, nil
}

// link puts a written key file in place (os.Link; a test's stand-in for a
// filesystem without hard links).
var link = os.Link

// Create writes a new key file, mode 0600; it refuses to overwrite one
// (an error wrapping fs.ErrExist). The file appears whole or not at all:
// the key is written to a temporary file beside it and linked into place,
// so shards starting together neither read a key file half written nor
// both create one (the loser gets fs.ErrExist and loads the winner's). On
// a filesystem without hard links it is created in place, exclusively.
func Create(path string) (*Key, error) {
	k, text, err := Generate()
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create state key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create state key file %s: %w", path, err)
	}
	if err := writeKeyText(tmp, path, text); err != nil {
		return nil, err
	}
	switch err := link(tmp.Name(), path); {
	case errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("create state key file %s: %w", path, err)
	case err != nil:
		// A filesystem without hard links (some SMB and FUSE mounts,
		// FAT): the file is created in place, exclusively, as before
		// keysync linked it; a reader may meet it half written there.
		return createInPlace(path, text, k)
	}
	return k, nil
}

// createInPlace writes the key file at path itself, refusing to overwrite
// one (fs.ErrExist), and removes what it wrote when the write fails.
func createInPlace(path, text string, k *Key) (*Key, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create state key file %s: %w", path, err)
	}
	if err := writeKeyText(f, path, text); err != nil {
		os.Remove(path)
		return nil, err
	}
	return k, nil
}

// writeKeyText writes the key's text and a newline to f, the key file at
// path or its temporary stand-in, syncs it and closes it (closing it on
// failure too).
func writeKeyText(f *os.File, path, text string) error {
	_, err := f.WriteString(text + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write state key file %s: %w", path, err)
	}
	return nil
}

// ID is a short, public fingerprint of the key.
func (k *Key) ID() string { return k.id }

// Seal encrypts plaintext; context binds it to where it is stored (a
// credential's id, say), so a sealed value moved elsewhere does not open.
func (k *Key) Seal(plaintext, context string) string {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: no randomness: " + err.Error())
	}
	ct := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return "v1:" + k.id + ":" + base64.RawStdEncoding.EncodeToString(ct)
}

// Open decrypts a sealed value made by Seal with the same context.
func (k *Key) Open(sealed, context string) (string, error) {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != "v1" {
		return "", errors.New("not a sealed value")
	}
	if parts[1] != k.id {
		return "", fmt.Errorf("sealed under key %s, not %s: %w", parts[1], k.id, ErrWrongKey)
	}
	ct, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil || len(ct) < k.aead.NonceSize() {
		return "", fmt.Errorf("sealed value is damaged: %w", ErrWrongKey)
	}
	pt, err := k.aead.Open(nil, ct[:k.aead.NonceSize()], ct[k.aead.NonceSize():], []byte(context))
	if err != nil {
		return "", ErrWrongKey
	}
	return string(pt), nil
}

// KeyOf returns the id of the key a sealed value was made with.
func KeyOf(sealed string) string {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}
