//go:build !unix

package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Lock creates statePath + ".lock" exclusively (O_CREATE|O_EXCL, mode 0600)
// and writes the process id into it. If the file exists it returns an error
// wrapping ErrLocked.
//
// This fallback for systems without flock(2) is weaker than the Unix lock:
// nothing removes the file when a process dies, so a run that was killed or
// crashed leaves a stale lock that a person must remove after checking that
// the process id in it is not running any more.
func Lock(statePath string) (*FileLock, error) {
	path := lockPath(statePath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		holder := ""
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("state: another keysync run%s holds the lock on %s (if it is not running, remove %s): %w", holder, statePath, path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("state: lock %s: %w; check that the directory exists and is writable by the user keysync runs as", path, err)
	}
	_, werr := f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	return &FileLock{path: path}, nil
}

// Unlock releases the lock by removing the lock file. Unlock on a released
// lock does nothing.
func (l *FileLock) Unlock() error {
	if l == nil || l.released {
		return nil
	}
	l.released = true
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: unlock %s: %w", l.path, err)
	}
	return nil
}
