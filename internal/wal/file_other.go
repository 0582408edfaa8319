//go:build !linux

package wal

import "os"

// osFile is a segment file; Sync is fsync(2) (os.File.Sync).
type osFile struct{ *os.File }
