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
	"strconv"
	"strings"
)

// Record framing (little endian), one after another in a segment file:
//
//	length uint32 | crc uint32 | seq uint64 | payload [length]byte
//
// crc is CRC-32C (Castagnoli, as in ext4, iSCSI, LevelDB and RocksDB logs) of
// payload, then seq, then length: computing the payload part outside the
// Log's mutex keeps Append cheap. The per-record seq makes a record that
// verifies but sits in the wrong place (a stale or foreign file) an error
// instead of a silently replayed operation.
const (
	headerSize = 16
	// MaxRecordBytes is the largest record Append accepts. It is a format
	// constant, not an option, so that recovery never mistakes a valid
	// record for a torn one after a configuration change.
	MaxRecordBytes = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment files are named by the sequence of their first record, zero padded
// so that names sort like numbers.
const segmentSuffix = ".wal"

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentSuffix) }

// parseSeqName parses "<20 digits><suffix>" and reports whether name has
// that shape exactly.
func parseSeqName(name, prefix, suffix string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, suffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

type segment struct {
	first uint64 // sequence of its first record (from the file name)
	path  string
}

// listSegments returns dir's segment files sorted by first sequence.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range ents {
		if first, ok := parseSeqName(e.Name(), "", segmentSuffix); ok && e.Type().IsRegular() {
			segs = append(segs, segment{first: first, path: filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpUint(a.first, b.first) })
	return segs, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendRecord appends the framed record to buf; payloadCRC is
// crc32.Checksum(rec, castagnoli).
func appendRecord(buf []byte, seq uint64, rec []byte, payloadCRC uint32) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(rec)))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	crc := crc32.Update(payloadCRC, castagnoli, h[8:16])
	crc = crc32.Update(crc, castagnoli, h[0:4])
	binary.LittleEndian.PutUint32(h[4:8], crc)
	buf = append(buf, h[:]...)
	return append(buf, rec...)
}

// frameError is an invalid frame at off: a torn write if it is in the last
// segment, corruption otherwise.
type frameError struct {
	off    int64
	reason string
	// misplaced is a frame that verifies but carries the wrong sequence:
	// never the result of a crash mid-write, so never truncated away.
	misplaced bool
}

func (e *frameError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.reason) }

// CorruptError is a record that fails verification where a crash cannot
// explain it. It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	Path   string // the segment or snapshot file
	Offset int64  // byte offset of the bad record (0 for snapshots)
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s at offset %d: %s: %v", e.Path, e.Offset, e.Reason, ErrCorrupt)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// frameReader reads and verifies frames from a segment.
type frameReader struct {
	br   *bufio.Reader
	off  int64  // offset of the next frame
	next uint64 // expected sequence of the next frame
	buf  []byte
}

func newFrameReader(r io.Reader, first uint64) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 1<<20), next: first}
}

// read returns the next record (valid until the next call), io.EOF at a clean
// end, a *frameError for an invalid frame, or an I/O error.
func (fr *frameReader) read() (uint64, []byte, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(fr.br, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, &frameError{off: fr.off, reason: "truncated record header"}
		}
		return 0, nil, err // io.EOF: clean end
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > MaxRecordBytes {
		return 0, nil, &frameError{off: fr.off, reason: fmt.Sprintf("implausible record length %d", n)}
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.br, p); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, nil, &frameError{off: fr.off, reason: "truncated record"}
		}
		return 0, nil, err
	}
	crc := crc32.Update(crc32.Checksum(p, castagnoli), castagnoli, h[8:16])
	crc = crc32.Update(crc, castagnoli, h[0:4])
	if crc != binary.LittleEndian.Uint32(h[4:8]) {
		return 0, nil, &frameError{off: fr.off, reason: "checksum mismatch"}
	}
	seq := binary.LittleEndian.Uint64(h[8:16])
	if seq != fr.next {
		return 0, nil, &frameError{off: fr.off, reason: fmt.Sprintf("record has sequence %d, want %d", seq, fr.next), misplaced: true}
	}
	fr.off += headerSize + int64(n)
	fr.next++
	return seq, p, nil
}
