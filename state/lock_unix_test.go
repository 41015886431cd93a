//go:build unix

package state

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const lockHelperEnv = "KEYSYNC_STATE_LOCK_HELPER"

// TestLockHelperProcess is not a test: TestLockKilledHolder runs the test
// binary with it as a child that takes the lock and waits to be killed.
func TestLockHelperProcess(t *testing.T) {
	t.Parallel()
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		t.Skip("helper process for TestLockKilledHolder")
	}
	if _, err := Lock(path); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute)
	os.Exit(2)
}

func TestLockKilledHolder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keysync.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while the helper holds it: got %v, want ErrLocked", err)
	} else if !strings.Contains(err.Error(), "pid") {
		t.Errorf("message should name the holder's pid: %v", err)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to unlock
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	l, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	l.Unlock()
}
