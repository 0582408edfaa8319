//go:build unix

package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock(2) on dir/LOCK. flock locks
// belong to the open file description, so a second Open in the same process
// conflicts too; the kernel releases the lock when the process dies, so a
// crash leaves no stale lock behind.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held (by pid %q); is another gateway running with this storage directory?", ErrLocked, path, holder)
		}
		return nil, fmt.Errorf("wal: flock %s: %w", path, err)
	}
	// The pid is only a diagnostic for the message above.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	}
	return f, nil
}

func unlockDir(f *os.File) {
	f.Close() // releases the flock
}
