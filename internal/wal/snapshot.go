package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Snapshot file layout (little endian):
//
//	magic "PLSN" | version uint32 (1) | seq uint64 | payload | payload length uint64 | crc uint32
//
// crc is CRC-32C of everything before it. The length before the CRC catches
// a file cut at a point where the CRC happens to match nothing sensible.
const (
	snapMagic      = "PLSN"
	snapVersion    = 1
	snapHeaderSize = 16
	snapTrailer    = 12
	snapPrefix     = "snapshot-"
	tmpSuffix      = ".tmp"
	// snapKeep is how many snapshots WriteSnapshot keeps: the new one and its
	// predecessor, so a newest snapshot found corrupt can fall back.
	snapKeep = 2
)

// ErrNoSnapshot is returned by LatestSnapshot when dir holds no snapshot.
var ErrNoSnapshot = errors.New("wal: no snapshot")

func snapshotName(seq uint64) string { return fmt.Sprintf("%s%020d", snapPrefix, seq) }

// WriteSnapshot writes a snapshot of the state as of record seq (the state
// after applying records 1..seq; 0 for the initial state) to dir, atomically:
// write streams the payload into dir/snapshot-<seq>.tmp, which is fsync'd,
// renamed to dir/snapshot-<seq>, and the directory fsync'd — the classic
// write-temp-fsync-rename-fsync-dir sequence (see rename(2), and Pillai et
// al., "All File Systems Are Not Created Equal", OSDI 2014). When it returns
// nil the snapshot is durable. It then removes every snapshot but the newest
// two and every leftover temporary file. A crash at any point leaves the
// previous snapshots intact. It fails if dir holds a snapshot newer than seq.
// Not safe for concurrent calls on the same dir.
func WriteSnapshot(dir string, seq uint64, write func(w io.Writer) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	seqs, err := Snapshots(dir)
	if err != nil {
		return err
	}
	if n := len(seqs); n > 0 && seqs[n-1] > seq {
		return fmt.Errorf("wal: snapshot at sequence %d, but %s holds a newer one at %d", seq, dir, seqs[n-1])
	}
	final := filepath.Join(dir, snapshotName(seq))
	tmp := final + tmpSuffix
	if err := writeSnapshotFile(tmp, seq, write); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: %w", err)
	}
	if err := syncPath(dir); err != nil {
		return fmt.Errorf("wal: fsync directory: %w", err)
	}
	return pruneSnapshots(dir)
}

type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += int64(n)
	return n, err
}

func writeSnapshotFile(path string, seq uint64, write func(w io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := &crcWriter{w: bw}
	var h [snapHeaderSize]byte
	copy(h[:4], snapMagic)
	binary.LittleEndian.PutUint32(h[4:8], snapVersion)
	binary.LittleEndian.PutUint64(h[8:16], seq)
	cw.Write(h[:])
	if err := write(cw); err != nil {
		return err
	}
	var t [8]byte
	binary.LittleEndian.PutUint64(t[:], uint64(cw.n-snapHeaderSize))
	cw.Write(t[:])
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], cw.crc)
	bw.Write(c[:])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("wal: write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// pruneSnapshots removes all but the newest snapKeep snapshots and every
// temporary file, then fsyncs dir.
func pruneSnapshots(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	seqs, err := Snapshots(dir)
	if err != nil {
		return err
	}
	var victims []string
	if len(seqs) > snapKeep {
		for _, s := range seqs[:len(seqs)-snapKeep] {
			victims = append(victims, snapshotName(s))
		}
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), snapPrefix) && strings.HasSuffix(e.Name(), tmpSuffix) {
			victims = append(victims, e.Name())
		}
	}
	if len(victims) == 0 {
		return nil
	}
	for _, v := range victims {
		if err := os.Remove(filepath.Join(dir, v)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: %w", err)
		}
	}
	if err := syncPath(dir); err != nil {
		return fmt.Errorf("wal: fsync directory: %w", err)
	}
	return nil
}

// Snapshots returns the sequences of dir's snapshot files, ascending,
// without verifying them; none if dir does not exist.
func Snapshots(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		if s, ok := parseSeqName(e.Name(), snapPrefix, ""); ok && e.Type().IsRegular() {
			seqs = append(seqs, s)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Snapshot is a verified snapshot's payload, open for reading.
type Snapshot struct {
	Seq  uint64 // the state as of record Seq: replay from Seq+1
	Path string
	// Skipped holds the errors (matching ErrCorrupt) of newer snapshots that
	// failed verification and were passed over; the caller should log them.
	Skipped []error
	r       io.Reader
	f       *os.File
}

// Read reads the payload.
func (s *Snapshot) Read(p []byte) (int, error) { return s.r.Read(p) }

// Close closes the file.
func (s *Snapshot) Close() error { return s.f.Close() }

// LatestSnapshot opens the newest snapshot in dir that verifies (it reads the
// whole file to check its CRC before returning it). Newer snapshots that fail
// verification are reported in Snapshot.Skipped; temporary files are
// ignored. Errors: ErrNoSnapshot if dir holds no snapshot (or does not
// exist), an error matching ErrCorrupt if none verifies. Falling back to an
// older snapshot is lossless only if the log still holds the records after
// it; Log.Replay fails with ErrGap otherwise.
func LatestSnapshot(dir string) (*Snapshot, error) {
	seqs, err := Snapshots(dir)
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return nil, ErrNoSnapshot
	}
	var skipped []error
	for i := len(seqs) - 1; i >= 0; i-- {
		path := filepath.Join(dir, snapshotName(seqs[i]))
		s, err := openSnapshot(path, seqs[i])
		if err == nil {
			s.Skipped = skipped
			return s, nil
		}
		if !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		skipped = append(skipped, err)
	}
	return nil, fmt.Errorf("wal: no valid snapshot in %s: %w", dir, errors.Join(skipped...))
}

func openSnapshot(path string, seq uint64) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	s, err := verifySnapshot(f, path, seq)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func verifySnapshot(f *os.File, path string, seq uint64) (*Snapshot, error) {
	bad := func(reason string) error { return &CorruptError{Path: path, Reason: reason} }
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	size := fi.Size()
	if size < snapHeaderSize+snapTrailer {
		return nil, bad(fmt.Sprintf("snapshot of %d bytes is too short", size))
	}
	var h [snapHeaderSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return nil, fmt.Errorf("wal: read %s: %w", path, err)
	}
	if string(h[:4]) != snapMagic {
		return nil, bad("not a snapshot (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(h[4:8]); v != snapVersion {
		return nil, bad(fmt.Sprintf("unsupported snapshot version %d", v))
	}
	if s := binary.LittleEndian.Uint64(h[8:16]); s != seq {
		return nil, bad(fmt.Sprintf("header says sequence %d, name %d", s, seq))
	}
	crc := crc32.Update(0, castagnoli, h[:])
	cw := &crcWriter{w: io.Discard, crc: crc}
	if _, err := io.CopyN(cw, bufio.NewReaderSize(f, 1<<20), size-snapHeaderSize-4); err != nil {
		return nil, fmt.Errorf("wal: read %s: %w", path, err)
	}
	var t [snapTrailer]byte
	if _, err := f.ReadAt(t[:], size-snapTrailer); err != nil {
		return nil, fmt.Errorf("wal: read %s: %w", path, err)
	}
	if n := binary.LittleEndian.Uint64(t[:8]); n != uint64(size-snapHeaderSize-snapTrailer) {
		return nil, bad(fmt.Sprintf("payload length %d does not match file size %d", n, size))
	}
	if cw.crc != binary.LittleEndian.Uint32(t[8:]) {
		return nil, bad("checksum mismatch")
	}
	payload := io.NewSectionReader(f, snapHeaderSize, size-snapHeaderSize-snapTrailer)
	return &Snapshot{Seq: seq, Path: path, r: bufio.NewReaderSize(payload, 1<<16), f: f}, nil
}
