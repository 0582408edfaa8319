package wal

import (
	"os"
	"syscall"
)

// osFile is a segment file whose Sync is fdatasync(2): with O_APPEND the file
// size changes, and fdatasync still flushes the metadata needed to read the
// data back (the size) while skipping timestamps.
type osFile struct{ *os.File }

func (f osFile) Sync() error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
