package state

import (
	"errors"
	"os"
)

// ErrLocked means another keysync run holds the lock on the state file.
var ErrLocked = errors.New("state file is locked")

// FileLock is an exclusive lock on a state file, held from Lock until
// Unlock. It guards against two keysync runs working on one state file at
// once; it does not stop SQLite from being opened without it.
type FileLock struct {
	path     string
	f        *os.File // the held lock file (Unix)
	released bool
}

// Path returns the lock file's name: the state file's name plus ".lock".
func (l *FileLock) Path() string { return l.path }

func lockPath(statePath string) string { return statePath + ".lock" }
