//go:build unix

package state

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Lock takes an exclusive, non-blocking flock(2) on statePath + ".lock",
// creating that file (mode 0600) if needed, and writes the process id into
// it for people to read. If another process holds the lock it returns an
// error wrapping ErrLocked at once.
//
// The kernel releases a flock when the process holding it exits for any
// reason, SIGKILL and crashes included, so a lock left by a killed run is
// reclaimed by the next one with nothing to clean up. The lock file itself
// stays; its presence means nothing.
func Lock(statePath string) (*FileLock, error) {
	path := lockPath(statePath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: lock %s: %w; check that the directory exists and is writable by the user keysync runs as", path, err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state: another keysync run%s holds the lock on %s: %w", holder, statePath, ErrLocked)
		}
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	// Best effort: the pid only helps a person find the holder.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &FileLock{path: path, f: f}, nil
}

// Unlock releases the lock. The lock file is left in place: removing it
// would let a run that opened it just before lock a file no other run sees.
// Unlock on a released lock does nothing.
func (l *FileLock) Unlock() error {
	if l == nil || l.released {
		return nil
	}
	l.released = true
	f := l.f
	err := flock(f, syscall.LOCK_UN)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state: unlock %s: %w", l.path, err)
	}
	return nil
}

// flock retries when a signal interrupts the call.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// readPID returns " (pid N)" from a held lock file, or "" if it has none.
func readPID(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}
