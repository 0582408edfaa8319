package wal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func writeSnap(t *testing.T, dir string, seq uint64, payload []byte) {
	t.Helper()
	err := WriteSnapshot(dir, seq, func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		t.Fatalf("WriteSnapshot(%d): %v", seq, err)
	}
}

func readSnap(t *testing.T, dir string) (*Snapshot, []byte) {
	t.Helper()
	s, err := LatestSnapshot(dir)
	if err != nil {
		t.Fatalf("LatestSnapshot: %v", err)
	}
	defer s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func TestSnapshotRoundTripAndRetention(t *testing.T) {
	dir := t.TempDir()
	if _, err := LatestSnapshot(dir); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("empty dir: %v, want ErrNoSnapshot", err)
	}
	if _, err := LatestSnapshot(filepath.Join(dir, "missing")); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("missing dir: %v, want ErrNoSnapshot", err)
	}
	big := randBytes(1 << 20)
	writeSnap(t, dir, 0, nil)
	writeSnap(t, dir, 10, []byte("ten"))
	writeSnap(t, dir, 20, big)
	s, b := readSnap(t, dir)
	if s.Seq != 20 || !bytes.Equal(b, big) || len(s.Skipped) != 0 {
		t.Fatalf("got seq %d, %d bytes, skipped %v", s.Seq, len(b), s.Skipped)
	}
	if seqs, _ := Snapshots(dir); fmt.Sprint(seqs) != "[10 20]" {
		t.Fatalf("kept %v, want [10 20]", seqs)
	}
	fi, _ := os.Stat(filepath.Join(dir, snapshotName(20)))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := WriteSnapshot(dir, 5, func(io.Writer) error { return nil }); err == nil {
		t.Fatal("WriteSnapshot older than the newest succeeded")
	}
	boom := errors.New("boom")
	if err := WriteSnapshot(dir, 30, func(io.Writer) error { return boom }); err != boom {
		t.Fatalf("WriteSnapshot with failing writer = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName(30)+tmpSuffix)); !os.IsNotExist(err) {
		t.Fatal("temporary file of a failed snapshot left behind")
	}
}

func TestSnapshotCorruptNewestFallsBack(t *testing.T) {
	dir := t.TempDir()
	writeSnap(t, dir, 10, []byte("older state"))
	writeSnap(t, dir, 20, []byte("newer state"))
	path := filepath.Join(dir, snapshotName(20))
	orig, _ := os.ReadFile(path)

	for pos := range orig { // any damaged byte is caught
		b := bytes.Clone(orig)
		b[pos] ^= 0x40
		os.WriteFile(path, b, 0o600)
		s, got := readSnap(t, dir)
		if s.Seq != 10 || string(got) != "older state" || len(s.Skipped) != 1 || !errors.Is(s.Skipped[0], ErrCorrupt) {
			t.Fatalf("byte %d damaged: got seq %d %q, skipped %v", pos, s.Seq, got, s.Skipped)
		}
	}
	for cut := range len(orig) { // and any truncation
		os.WriteFile(path, orig[:cut], 0o600)
		if s, _ := readSnap(t, dir); s.Seq != 10 {
			t.Fatalf("cut at %d: got seq %d", cut, s.Seq)
		}
	}
	// Both corrupt: an error, not an empty state.
	os.WriteFile(filepath.Join(dir, snapshotName(10)), []byte("PLSN garbage garbage garbage"), 0o600)
	if _, err := LatestSnapshot(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("LatestSnapshot with every snapshot corrupt = %v, want ErrCorrupt", err)
	}
}

func TestSnapshotTmpLeftoversIgnoredAndCleaned(t *testing.T) {
	dir := t.TempDir()
	writeSnap(t, dir, 10, []byte("ten"))
	// A crash mid-write leaves a temporary file, possibly complete.
	stale := filepath.Join(dir, snapshotName(30)+tmpSuffix)
	os.WriteFile(stale, []byte("half a snapshot"), 0o600)
	if s, _ := readSnap(t, dir); s.Seq != 10 {
		t.Fatalf("got seq %d, want 10 (tmp ignored)", s.Seq)
	}
	writeSnap(t, dir, 40, []byte("forty"))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temporary file not removed")
	}
	if s, b := readSnap(t, dir); s.Seq != 40 || string(b) != "forty" {
		t.Fatalf("got %d %q", s.Seq, b)
	}
}

// TestSnapshotAndLogTogether follows the documented protocol, including the
// fallback to the previous snapshot when the newest is corrupt.
func TestSnapshotAndLogTogether(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	state := 0 // the "store": a sum of records
	apply := func(rec []byte) { state += int(rec[0]) }
	var prev uint64
	snapshot := func() {
		n, err := l.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		s := state
		if err := WriteSnapshot(dir, n-1, func(w io.Writer) error {
			_, err := fmt.Fprint(w, s)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := l.TruncateBefore(prev + 1); err != nil { // keep the log since the previous snapshot
			t.Fatal(err)
		}
		prev = n - 1
	}
	for i := range 100 {
		rec := []byte{byte(i)}
		apply(rec)
		appendSync(t, l, rec)
		if i%30 == 29 {
			snapshot()
		}
	}
	l.Close()
	want := state

	recoverState := func() int {
		s, err := LatestSnapshot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var st int
		fmt.Fscan(s, &st)
		l := open(t, dir, Options{})
		defer l.Close()
		if err := l.Replay(s.Seq+1, func(_ uint64, rec []byte) error { st += int(rec[0]); return nil }); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if got := recoverState(); got != want {
		t.Fatalf("recovered %d, want %d", got, want)
	}
	seqs, _ := Snapshots(dir)
	os.WriteFile(filepath.Join(dir, snapshotName(seqs[len(seqs)-1])), []byte("junk"), 0o600)
	if got := recoverState(); got != want {
		t.Fatalf("recovered %d from the previous snapshot, want %d", got, want)
	}
}
