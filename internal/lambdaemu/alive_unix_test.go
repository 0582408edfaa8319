//go:build unix

package lambdaemu

import (
	"errors"
	"syscall"
	"testing"
)

// assertGone fails unless no process with pid exists any more (it was
// killed and reaped).
func assertGone(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no pid recorded")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists (kill 0: %v)", pid, err)
	}
}
