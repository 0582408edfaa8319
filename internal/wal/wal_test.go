package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func appendSync(t testing.TB, l *Log, rec []byte) uint64 {
	t.Helper()
	seq, err := l.Append(rec)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := l.Sync(context.Background(), seq); err != nil {
		t.Fatalf("Sync(%d): %v", seq, err)
	}
	return seq
}

// replayAll returns every record from seq from on, checking contiguity.
func replayAll(t testing.TB, l *Log, from uint64) [][]byte {
	t.Helper()
	var out [][]byte
	want := from
	err := l.Replay(from, func(seq uint64, rec []byte) error {
		if want != 0 && seq != want {
			return fmt.Errorf("replayed seq %d, want %d", seq, want)
		}
		want = seq + 1
		out = append(out, bytes.Clone(rec))
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	return out
}

func record(i int) []byte {
	// Varying sizes, including empty records.
	return bytes.Repeat([]byte{byte(i)}, i*37%700)
}

func TestRoundTripAcrossRotationsAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 4096})
	var want [][]byte
	for i := range 300 {
		rec := record(i)
		if seq := appendSync(t, l, rec); seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", seq, i+1)
		}
		want = append(want, rec)
		if i == 150 {
			if _, err := l.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := l.Stats(); st.Segments < 10 || st.Appended != 300 || st.Synced != 300 {
		t.Fatalf("stats %+v: want >= 10 segments, 300 appended and synced", st)
	}
	if got := replayAll(t, l, 0); !equalRecords(got, want) {
		t.Fatalf("replay before close differs (%d records)", len(got))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open(t, dir, Options{SegmentBytes: 4096})
	rec := l.Recovery()
	if rec.FirstSeq != 1 || rec.LastSeq != 300 || rec.TruncatedBytes != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	if got := replayAll(t, l, 0); !equalRecords(got, want) {
		t.Fatalf("replay after reopen differs (%d records)", len(got))
	}
	if got := replayAll(t, l, 123); !equalRecords(got, want[122:]) {
		t.Fatalf("replay from 123 differs")
	}
	if seq := appendSync(t, l, []byte("after")); seq != 301 {
		t.Fatalf("seq after reopen %d, want 301", seq)
	}
	want = append(want, []byte("after"))
	l.Close()
	l = open(t, dir, Options{SegmentBytes: 4096})
	defer l.Close()
	if got := replayAll(t, l, 0); !equalRecords(got, want) {
		t.Fatal("replay after second reopen differs")
	}
}

func equalRecords(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestRotateTruncateBeforeAndGaps(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	defer l.Close()
	for i := range 10 {
		appendSync(t, l, record(i))
	}
	n, err := l.Rotate()
	if n != 11 || err != nil {
		t.Fatalf("Rotate = %d, %v; want 11", n, err)
	}
	// The active segment is empty: no new segment.
	if n2, err := l.Rotate(); n2 != 11 || err != nil || l.Stats().Segments != 2 {
		t.Fatalf("second Rotate = %d, %v, %d segments; want 11, 2 segments", n2, err, l.Stats().Segments)
	}
	// Records appended without Sync are made durable by Rotate.
	for i := range 5 {
		if _, err := l.Append(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.Rotate(); n != 16 || err != nil || l.Stats().Synced != 15 {
		t.Fatalf("Rotate = %d, %v, synced %d; want 16, 15", n, err, l.Stats().Synced)
	}
	if err := l.TruncateBefore(16); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(dir); len(segs) != 1 || segs[0].first != 16 {
		t.Fatalf("segments after TruncateBefore(16): %+v", segs)
	}
	if err := l.Replay(1, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrGap) {
		t.Fatalf("Replay(1) after truncation: %v, want ErrGap", err)
	}
	if err := l.Replay(18, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrGap) {
		t.Fatalf("Replay(18) past the end: %v, want ErrGap", err)
	}
	if got := replayAll(t, l, 16); len(got) != 0 {
		t.Fatalf("Replay(16) = %d records, want 0", len(got))
	}
	appendSync(t, l, []byte("x"))
	if got := replayAll(t, l, 16); len(got) != 1 || string(got[0]) != "x" {
		t.Fatalf("Replay(16) = %q", got)
	}
	if err := l.Sync(context.Background(), 99); err == nil {
		t.Fatal("Sync of a sequence never appended succeeded")
	}
	stop := errors.New("stop")
	if err := l.Replay(16, func(uint64, []byte) error { return stop }); err != stop {
		t.Fatalf("Replay returned %v, want fn's error", err)
	}
}

func TestTruncateBeforeKeepsPartlyNeededSegment(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	defer l.Close()
	for range 3 {
		appendSync(t, l, []byte("a"))
	}
	l.Rotate() // segment 4..
	for range 3 {
		appendSync(t, l, []byte("b"))
	}
	l.Rotate() // segment 7..
	if err := l.TruncateBefore(6); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, l, 4); len(got) != 3 {
		t.Fatalf("records 4..6 not kept: %q", got)
	}
}

// lastRecordOffset returns the offset of the last record in a segment.
func lastRecordOffset(t *testing.T, path string, first uint64) (off, size int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr := newFrameReader(f, first)
	for {
		prev := fr.off
		if _, _, err := fr.read(); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			return off, prev
		}
		off = prev
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestTornTail(t *testing.T) {
	base := t.TempDir()
	l := open(t, base, Options{SegmentBytes: 600})
	var want [][]byte
	for i := range 12 {
		rec := bytes.Repeat([]byte{byte('a' + i)}, 100+i)
		appendSync(t, l, rec)
		want = append(want, rec)
	}
	l.Close()
	segs, _ := listSegments(base)
	if len(segs) < 2 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	last := segs[len(segs)-1]
	off, size := lastRecordOffset(t, last.path, last.first)

	check := func(t *testing.T, dir string, wantTruncated int64) {
		t.Helper()
		l := open(t, dir, Options{SegmentBytes: 600, NoSync: true})
		if r := l.Recovery(); r.TruncatedBytes != wantTruncated || r.LastSeq != 11 {
			t.Fatalf("recovery %+v: want %d bytes truncated, last seq 11", r, wantTruncated)
		}
		if got := replayAll(t, l, 0); !equalRecords(got, want[:11]) {
			t.Fatalf("recovered %d records, want the 11 complete ones", len(got))
		}
		if seq := appendSync(t, l, []byte("new")); seq != 12 {
			t.Fatalf("append after recovery got seq %d, want 12", seq)
		}
		l.Close()
		l = open(t, dir, Options{SegmentBytes: 600, NoSync: true})
		defer l.Close()
		if r := l.Recovery(); r.TruncatedBytes != 0 {
			t.Fatalf("second recovery truncated again: %+v", r)
		}
		if got := replayAll(t, l, 0); !equalRecords(got, append(want[:11:11], []byte("new"))) {
			t.Fatal("records after recovery and append differ")
		}
	}

	for cut := off; cut < size; cut++ {
		dir := copyDir(t, base)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(last.path)), cut); err != nil {
			t.Fatal(err)
		}
		check(t, dir, cut-off)
	}
	// A complete last record whose bytes were damaged (one flipped bit at
	// every position), as if the sectors were written partially.
	for pos := off; pos < size; pos++ {
		if pos-off >= headerSize && (pos-off)%7 != 0 {
			continue // every header byte, a sample of the payload
		}
		dir := copyDir(t, base)
		path := filepath.Join(dir, filepath.Base(last.path))
		b, _ := os.ReadFile(path)
		b[pos] ^= 0x10
		os.WriteFile(path, b, 0o600)
		check(t, dir, size-off)
	}
	// Garbage after the last complete record: random bytes, and zeros (an
	// extended file whose data blocks never made it).
	for _, garbage := range [][]byte{randBytes(1), randBytes(7), randBytes(16), randBytes(5000), make([]byte, 4096)} {
		dir := copyDir(t, base)
		path := filepath.Join(dir, filepath.Base(last.path))
		if err := os.Truncate(path, off); err != nil { // drop record 12, then garbage
			t.Fatal(err)
		}
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(garbage)
		f.Close()
		check(t, dir, int64(len(garbage)))
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

func TestCorruptionInNonLastSegmentIsAnError(t *testing.T) {
	base := t.TempDir()
	l := open(t, base, Options{SegmentBytes: 1000})
	for i := range 30 {
		appendSync(t, l, bytes.Repeat([]byte{byte(i)}, 200))
	}
	l.Close()
	segs, _ := listSegments(base)
	if len(segs) < 3 {
		t.Fatalf("want >= 3 segments, got %d", len(segs))
	}
	mid := segs[1]

	t.Run("flipped byte", func(t *testing.T) {
		dir := copyDir(t, base)
		path := filepath.Join(dir, filepath.Base(mid.path))
		b, _ := os.ReadFile(path)
		b[headerSize+216+50] ^= 1 // payload of the second record
		os.WriteFile(path, b, 0o600)
		_, err := Open(dir, Options{Logger: quiet})
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path || ce.Offset != 216 {
			t.Fatalf("Open = %v; want ErrCorrupt at %s offset 216", err, path)
		}
	})
	t.Run("torn tail", func(t *testing.T) {
		dir := copyDir(t, base)
		path := filepath.Join(dir, filepath.Base(mid.path))
		fi, _ := os.Stat(path)
		os.Truncate(path, fi.Size()-3)
		if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
	})
	t.Run("missing segment", func(t *testing.T) {
		dir := copyDir(t, base)
		os.Remove(filepath.Join(dir, filepath.Base(mid.path)))
		if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
	})
	t.Run("misplaced record in last segment", func(t *testing.T) {
		// A record that verifies but has the wrong sequence is no torn
		// write: refuse rather than truncate.
		dir := copyDir(t, base)
		last := segs[len(segs)-1]
		path := filepath.Join(dir, filepath.Base(last.path))
		var buf []byte
		buf = appendRecord(buf, 999, []byte("x"), crc32c([]byte("x")))
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(buf)
		f.Close()
		if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
	})
}

func TestGroupCommit(t *testing.T) {
	const writers, perWriter = 64, 200
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 256 << 10})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				rec := fmt.Appendf(nil, "%d/%d/", g, i)
				rec = append(rec, make([]byte, rand.IntN(512))...)
				seq, err := l.Append(rec)
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Sync(context.Background(), seq); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	l.Close()
	t.Logf("%d records, %d fdatasyncs, %d batches, %d segments", st.Appended, st.Syncs, st.Batches, st.Segments)
	if st.Appended != writers*perWriter || st.Synced != st.Appended {
		t.Fatalf("stats %+v", st)
	}
	// With 64 writers each waiting for its fsync, every fsync but a few
	// carries many records; one record per fsync would be 12800.
	if st.Syncs >= st.Appended/2 {
		t.Fatalf("%d fdatasyncs for %d records: no group commit", st.Syncs, st.Appended)
	}

	l = open(t, dir, Options{})
	defer l.Close()
	next := make([]int, writers)
	for _, rec := range replayAll(t, l, 1) {
		var g, i int
		if _, err := fmt.Sscanf(string(rec), "%d/%d/", &g, &i); err != nil {
			t.Fatalf("record %q: %v", rec, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: record %d, want %d (order lost)", g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != perWriter {
			t.Fatalf("writer %d: %d records, want %d", g, n, perWriter)
		}
	}
}

// faultyFile wraps a segment file; Sync blocks while gate is set (so that
// waiters pile up) and fails once fail is set.
type faultyFile struct {
	segmentFile
	fail      *atomic.Bool
	failWrite *atomic.Bool
	gate      chan struct{}
}

var errInjected = errors.New("injected EIO")

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.failWrite.Load() {
		n, _ := f.segmentFile.Write(p[:len(p)/2]) // a short write, as on a full disk
		return n, syscall.ENOSPC
	}
	return f.segmentFile.Write(p)
}

func (f *faultyFile) Sync() error {
	if f.gate != nil {
		<-f.gate
	}
	if f.fail.Load() {
		return errInjected
	}
	return f.segmentFile.Sync()
}

func TestStickySyncError(t *testing.T) {
	var fail, failWrite atomic.Bool
	gate := make(chan struct{}, 1000)
	opts := Options{Logger: quiet, openFile: func(path string, flag int) (segmentFile, error) {
		f, err := openOSFile(path, flag)
		if err != nil {
			return nil, err
		}
		return &faultyFile{segmentFile: f, fail: &fail, failWrite: &failWrite, gate: gate}, nil
	}}
	l, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	gate <- struct{}{}
	ctx := context.Background()
	s1, _ := l.Append([]byte("one"))
	if err := l.Sync(ctx, s1); err != nil {
		t.Fatal(err)
	}

	// Several records wait on an fsync that fails.
	fail.Store(true)
	var seqs []uint64
	errs := make(chan error, 10)
	for range 10 {
		s, err := l.Append([]byte("doomed"))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
		go func() { errs <- l.Sync(ctx, s) }()
	}
	time.Sleep(20 * time.Millisecond) // let them block
	gate <- struct{}{}
	for range 10 {
		if err := <-errs; !errors.Is(err, errInjected) {
			t.Fatalf("pending Sync = %v, want the injected error", err)
		}
	}
	// Sticky: even once the device "recovers", nothing claims durability.
	fail.Store(false)
	close(gate)
	for _, s := range seqs {
		if err := l.Sync(ctx, s); !errors.Is(err, errInjected) {
			t.Fatalf("later Sync(%d) = %v, want the injected error", s, err)
		}
	}
	if _, err := l.Append([]byte("later")); !errors.Is(err, errInjected) {
		t.Fatalf("Append after failure = %v, want the injected error", err)
	}
	if _, err := l.Rotate(); !errors.Is(err, errInjected) {
		t.Fatalf("Rotate after failure = %v", err)
	}
	if err := l.Sync(ctx, s1); err != nil {
		t.Fatalf("Sync of a record durable before the failure = %v, want nil", err)
	}
	if err := l.Close(); !errors.Is(err, errInjected) {
		t.Fatalf("Close = %v, want the injected error", err)
	}
}

func TestStickyWriteError(t *testing.T) {
	var fail, failWrite atomic.Bool
	dir := t.TempDir()
	opts := Options{Logger: quiet, openFile: func(path string, flag int) (segmentFile, error) {
		f, err := openOSFile(path, flag)
		if err != nil {
			return nil, err
		}
		return &faultyFile{segmentFile: f, fail: &fail, failWrite: &failWrite}, nil
	}}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendSync(t, l, []byte("kept"))
	failWrite.Store(true)
	s, _ := l.Append([]byte("this record is half written"))
	if err := l.Sync(context.Background(), s); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync = %v, want ENOSPC", err)
	}
	l.Close()
	// The half-written record is a torn tail for the next Open.
	l = open(t, dir, Options{})
	defer l.Close()
	if r := l.Recovery(); r.LastSeq != 1 || r.TruncatedBytes == 0 {
		t.Fatalf("recovery %+v, want last seq 1 and a truncated tail", r)
	}
}

func TestCloseAndLock(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	} else {
		t.Log(err)
	}
	s, _ := l.Append([]byte("unsynced"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(context.Background(), s); err != nil {
		t.Fatalf("Sync after Close of a record Close flushed = %v", err)
	}
	if _, err := l.Append(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if _, err := l.Rotate(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Rotate after Close = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	l = open(t, dir, Options{}) // the lock is released
	defer l.Close()
	if got := replayAll(t, l, 1); len(got) != 1 || string(got[0]) != "unsynced" {
		t.Fatalf("records after Close = %q", got)
	}
	for _, name := range []string{"LOCK", segmentName(1)} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", name, err, fi.Mode())
		}
	}
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "wal")
	l := open(t, dir, Options{})
	defer l.Close()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", fi.Mode(), err)
	}
}

func TestSyncContext(t *testing.T) {
	gate := make(chan struct{})
	var no atomic.Bool
	l, err := Open(t.TempDir(), Options{Logger: quiet, openFile: func(path string, flag int) (segmentFile, error) {
		f, err := openOSFile(path, flag)
		return &faultyFile{segmentFile: f, fail: &no, failWrite: &no, gate: gate}, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := l.Append([]byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.Sync(ctx, s); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync = %v, want deadline exceeded", err)
	}
	close(gate)
	if err := l.Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	l.Close()
}
