// Package wal is a write-ahead log with group commit, plus atomic snapshots,
// for making an in-memory state machine (the gateway's store) survive a crash.
//
// # Model
//
// Records are opaque byte slices numbered by a sequence (seq) that starts at 1
// and increases by one per Append, in call order. They live in segment files
// "<first seq, 20 digits>.wal" in one directory; each record is framed with
// its length, its seq and a CRC-32C (see format.go). The caller:
//
//  1. at start: LatestSnapshot (if any) to restore state as of snapshot seq
//     S, Open, then Replay(S+1, apply) before serving;
//  2. per operation: apply it, seq := Append(encoded op), then Sync(ctx, seq)
//     before acknowledging it. Append is cheap; one committer goroutine writes
//     every record appended so far with one write and one fdatasync and wakes
//     every Sync waiting for any of them (group commit, as in PostgreSQL's
//     commit_delay/WAL writer, InnoDB and etcd): concurrency, not a timer,
//     forms the batches;
//  3. periodically, holding whatever excludes the appends from the state
//     capture: n := Rotate() (every record < n is durable, and the state
//     holds exactly the records < n), capture the state, release, then
//     WriteSnapshot(dir, n-1, …) and TruncateBefore(m+1) where m is the
//     oldest snapshot kept (WriteSnapshot keeps the previous snapshot, so a
//     corrupt newest one can fall back losslessly if the log still reaches
//     back to the previous one).
//
// # Guarantees
//
// When Sync(ctx, seq) returns nil, records 1..seq are written and fdatasync'd
// (unless Options.NoSync), and the directory entries of their segments are
// fsync'd: they survive a process crash (kill -9) and an OS crash or power
// loss, provided the disk honours flushes. Open recovers every such record.
// A record whose Sync has not returned nil may or may not be recovered (it
// may have reached the disk before the crash); recovery never invents a
// record, never reorders, and never recovers a record without every record
// before it.
//
// Write and fsync errors are sticky: after the first failure every pending
// and later Sync (of a record not already durable), Append, Rotate and Close
// return that error. After a failed fsync the kernel may have dropped the
// dirty pages and cleared the error, so a retried fsync could succeed without
// the data being on disk (PostgreSQL's "fsyncgate", 2018; Rebello et al.,
// "Can Applications Recover from fsync Failures?", USENIX ATC 2020): the only
// safe reaction is to stop, restart and recover from what is on disk.
//
// Open takes an exclusive flock(2) on dir/LOCK: a second Log on the same
// directory, in this or another process, fails with ErrLocked.
//
// Files are created 0o600 and directories 0o700: the records may be
// sensitive.
package wal

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

var (
	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = errors.New("wal: log closed")
	// ErrCorrupt is matched (errors.Is) by every error about data that fails
	// verification where a crash mid-write cannot explain it; the concrete
	// error is a *CorruptError with the file and offset.
	ErrCorrupt = errors.New("wal: corrupt data")
	// ErrGap is matched by Replay's error when the log does not hold every
	// record from the requested sequence on (segments deleted, or the log is
	// behind the snapshot).
	ErrGap = errors.New("wal: records missing from log")
	// ErrLocked is matched by Open's error when another Log holds the
	// directory.
	ErrLocked = errors.New("wal: directory locked by another log")
	// ErrTooLarge is returned by Append for a record over MaxRecordBytes.
	ErrTooLarge = errors.New("wal: record too large")
)

// Options configures a Log. The zero value is usable.
type Options struct {
	// SegmentBytes is the size after which the committer starts a new
	// segment (a batch is never split, so a segment can exceed it by one
	// batch). 0 means 64 MiB.
	SegmentBytes int64
	// SyncDelay, when positive, makes the committer wait that long after the
	// first record of a batch arrives before writing, to gather larger
	// batches at the cost of latency. 0 (the default) adds no delay: batches
	// form naturally from the records appended while the previous fsync runs.
	SyncDelay time.Duration
	// NoSync skips fdatasync and directory fsyncs. UNSAFE: records then
	// survive a process crash (they are in the kernel's page cache once
	// written) but not an OS crash or power loss. For tests and for measuring
	// the cost of fsync.
	NoSync bool
	// Logger receives recovery warnings (a truncated torn tail). Nil means
	// slog.Default().
	Logger *slog.Logger

	// openFile opens segment files for appending; tests inject failures.
	openFile func(path string, flag int) (segmentFile, error)
}

// segmentFile is what the committer writes to: an *os.File in production.
type segmentFile interface {
	io.Writer
	Sync() error // must be at least fdatasync
	Close() error
}

// Recovery describes what Open found.
type Recovery struct {
	Segments int    // segment files found (after recovery, including a created one)
	FirstSeq uint64 // sequence of the first record the log can hold (first segment's name)
	LastSeq  uint64 // last recovered record; FirstSeq-1 if none
	// TruncatedBytes bytes were cut from TruncatedSegment at TruncatedOffset:
	// a torn write (a record whose write did not complete before a crash, so
	// never acknowledged). 0 if the log ended cleanly.
	TruncatedSegment string
	TruncatedOffset  int64
	TruncatedBytes   int64
	TruncatedReason  string
}

// Stats are counters for self-monitoring. All are cumulative since Open
// except Segments, Synced and Appended.
type Stats struct {
	Appended         uint64        // last sequence assigned (0 if none ever)
	Synced           uint64        // last durable sequence
	Syncs            uint64        // fdatasync calls for batches
	Batches          uint64        // batch writes (each one write(2))
	Bytes            uint64        // bytes written to segments
	Segments         int           // segment files in the directory
	LastSyncDuration time.Duration // duration of the last batch fdatasync
}

// Log is a write-ahead log. Its methods are safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	lock *os.File // flock'd dir/LOCK
	rec  Recovery

	kick    chan struct{} // wakes the committer; capacity 1
	truncMu sync.Mutex    // serializes TruncateBefore
	done    chan struct{} // closed when the committer exits

	mu        sync.Mutex
	nextSeq   uint64 // next sequence to assign
	pending   []byte // framed records not yet taken by the committer
	spare     []byte // the committer's previous batch buffer, for reuse
	synced    uint64 // last durable sequence
	syncedCh  chan struct{}
	err       error // sticky write/fsync error
	closed    bool  // Close called
	stopped   bool  // committer exited
	rotations []chan rotateResult
	segs      []segment // all segments, the last one active
	stats     Stats

	// Committer-only state.
	f       segmentFile // the active segment
	segSize int64
}

type rotateResult struct {
	seq uint64
	err error
}

// Open opens or creates the log in dir and recovers it: every segment is
// verified; an invalid tail of the last segment (a torn write) is truncated
// and reported through Recovery and Options.Logger; an invalid record in any
// other segment, a record with an unexpected sequence anywhere, or a gap
// between segments fails Open with an error matching ErrCorrupt. Open then
// fsyncs the segments so that everything it recovered is durable even if a
// crashed predecessor never fsync'd it.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.openFile == nil {
		opts.openFile = openOSFile
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, lock: lock, kick: make(chan struct{}, 1), done: make(chan struct{}), syncedCh: make(chan struct{})}
	if err := l.recover(); err != nil {
		unlockDir(lock)
		return nil, err
	}
	go l.run()
	return l, nil
}

func openOSFile(path string, flag int) (segmentFile, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// recover scans the segments, truncates a torn tail and opens the active
// segment.
func (l *Log) recover() error {
	segs, err := listSegments(l.dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	next := uint64(1)
	if len(segs) > 0 {
		next = segs[0].first
		if next == 0 {
			return &CorruptError{Path: segs[0].path, Reason: "segment named for sequence 0"}
		}
	}
	l.rec.FirstSeq = next
	var activeSize int64
	for i, s := range segs {
		last := i == len(segs)-1
		if s.first != next {
			return fmt.Errorf("wal: %s starts at sequence %d, previous segment ends at %d: %w",
				s.path, s.first, next-1, &CorruptError{Path: s.path, Reason: "gap between segments"})
		}
		n, size, err := l.scan(s, last)
		if err != nil {
			return err
		}
		next = n
		activeSize = size
		if !l.opts.NoSync {
			// A crashed predecessor may have written records it never
			// fsync'd; we are about to build on them.
			if err := syncPath(s.path); err != nil {
				return fmt.Errorf("wal: %w", err)
			}
		}
	}
	l.nextSeq, l.synced = next, next-1
	l.rec.LastSeq = next - 1
	if len(segs) == 0 {
		segs = []segment{{first: next, path: filepath.Join(l.dir, segmentName(next))}}
		f, err := l.opts.openFile(segs[0].path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		l.f = f
		if err := l.syncDir(); err != nil {
			f.Close()
			return err
		}
	} else {
		f, err := l.opts.openFile(segs[len(segs)-1].path, os.O_WRONLY|os.O_APPEND)
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		l.f, l.segSize = f, activeSize
	}
	l.segs = segs
	l.rec.Segments = len(segs)
	l.stats.Appended, l.stats.Synced, l.stats.Segments = l.synced, l.synced, len(segs)
	return nil
}

// scan verifies segment s and returns the sequence after its last record and
// its valid size; in the last segment it truncates an invalid tail.
func (l *Log) scan(s segment, last bool) (next uint64, size int64, err error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	fr := newFrameReader(f, s.first)
	for {
		_, _, err := fr.read()
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			return fr.next, fr.off, nil
		}
		var fe *frameError
		if !errors.As(err, &fe) {
			return 0, 0, fmt.Errorf("wal: read %s: %w", s.path, err)
		}
		if !last || fe.misplaced {
			return 0, 0, &CorruptError{Path: s.path, Offset: fe.off, Reason: fe.reason}
		}
		fi, err := f.Stat()
		if err != nil {
			return 0, 0, fmt.Errorf("wal: %w", err)
		}
		if err := truncate(s.path, fe.off); err != nil {
			return 0, 0, fmt.Errorf("wal: truncate torn tail: %w", err)
		}
		l.rec.TruncatedSegment, l.rec.TruncatedOffset = s.path, fe.off
		l.rec.TruncatedBytes, l.rec.TruncatedReason = fi.Size()-fe.off, fe.reason
		l.opts.Logger.Warn("wal: truncated torn tail of last segment (a write cut short by a crash; never acknowledged)",
			"segment", s.path, "offset", fe.off, "bytes", fi.Size()-fe.off, "reason", fe.reason)
		return fr.next, fe.off, nil
	}
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes created, renamed and removed entries of dir durable: fsync on
// a file does not persist its directory entry (see fsync(2)).
func (l *Log) syncDir() error {
	if l.opts.NoSync {
		return nil
	}
	if err := syncPath(l.dir); err != nil {
		return fmt.Errorf("wal: fsync directory: %w", err)
	}
	return nil
}

// Recovery reports what Open found and repaired.
func (l *Log) Recovery() Recovery { return l.rec }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Append assigns rec the next sequence and queues it for the committer; it
// does not wait for the disk. rec is copied, so the caller may reuse it. The
// record is durable once Sync(ctx, seq) returns nil. Records wait in memory
// until the committer takes them, without bound: callers are expected to Sync
// what they append (the gateway does, per push). Errors: ErrTooLarge,
// ErrClosed, or the sticky write error.
func (l *Log) Append(rec []byte) (seq uint64, err error) {
	if len(rec) > MaxRecordBytes {
		return 0, ErrTooLarge
	}
	crc := crc32.Checksum(rec, castagnoli) // outside the lock: the bulk of the work
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	seq = l.nextSeq
	l.nextSeq++
	l.pending = appendRecord(l.pending, seq, rec, crc)
	l.stats.Appended = seq
	l.mu.Unlock()
	l.wake()
	return seq, nil
}

func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Sync waits until record seq (and so every record before it) is durable. It
// returns nil if it is, the sticky write error if it cannot become so,
// ErrClosed if the log was closed without making it durable, an error if seq
// was never appended, or ctx's error. Cancelling ctx does not withdraw the
// record: it may still become durable.
func (l *Log) Sync(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		synced, err, ch := l.synced, l.err, l.syncedCh
		next, stopped := l.nextSeq, l.stopped
		l.mu.Unlock()
		switch {
		case seq <= synced:
			return nil
		case err != nil:
			return err
		case seq >= next:
			return fmt.Errorf("wal: sync of sequence %d, which was never appended (last %d)", seq, next-1)
		case stopped:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Rotate makes every record appended so far durable, then starts a new
// segment unless the active one is empty, and returns the sequence n of the
// next record: every record < n is durable and lies in segments before the
// active one, so TruncateBefore(n) can delete them all once a snapshot covers
// them.
func (l *Log) Rotate() (uint64, error) {
	ch := make(chan rotateResult, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	l.rotations = append(l.rotations, ch)
	l.mu.Unlock()
	l.wake()
	r := <-ch
	return r.seq, r.err
}

// TruncateBefore deletes the segments whose records all have sequences < seq
// (never the active segment), then fsyncs the directory. Records >= seq are
// kept; so may be some < seq that share a segment with them. Deleting the
// oldest segment first keeps the log contiguous if it is interrupted.
func (l *Log) TruncateBefore(seq uint64) error {
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].first <= seq {
		n++
	}
	victims := append([]segment(nil), l.segs[:n]...)
	l.mu.Unlock()
	for i, s := range victims {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.dropSegments(i)
			if i > 0 {
				l.syncDir()
			}
			return fmt.Errorf("wal: %w", err)
		}
	}
	l.dropSegments(len(victims))
	if len(victims) == 0 {
		return nil
	}
	return l.syncDir()
}

// dropSegments forgets the n oldest segments, after their files are gone.
func (l *Log) dropSegments(n int) {
	l.mu.Lock()
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.stats.Segments = len(l.segs)
	l.mu.Unlock()
}

// Replay calls fn, in order, for every durable record with sequence >= from
// (from 0 means the first record held), up to the last record durable when
// Replay was called. rec is valid only during the call. Replay verifies every
// record again (ErrCorrupt). It fails with ErrGap if the log no longer holds
// record from (segments truncated) or ends before from-1 (it is behind the
// snapshot the caller restored). fn's error stops Replay and is returned as
// is. Replay is safe concurrently with the other methods (it reads segments
// it opened at the start), but is meant for startup, before Append.
func (l *Log) Replay(from uint64, fn func(seq uint64, rec []byte) error) error {
	l.mu.Lock()
	limit := l.synced
	segs := append([]segment(nil), l.segs...)
	if from == 0 {
		from = segs[0].first
	}
	if from < segs[0].first || from > limit+1 {
		l.mu.Unlock()
		return fmt.Errorf("wal: replay from sequence %d, but the log holds %d..%d: %w", from, segs[0].first, limit, ErrGap)
	}
	// Open the files under the lock, so TruncateBefore cannot remove them in
	// between; an open file stays readable after its removal.
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var keep []segment
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].first <= from || s.first > limit {
			continue // every record < from, or > limit
		}
		f, err := os.Open(s.path)
		if err != nil {
			l.mu.Unlock()
			return fmt.Errorf("wal: %w", err)
		}
		files = append(files, f)
		keep = append(keep, s)
	}
	l.mu.Unlock()
	for i, s := range keep {
		fr := newFrameReader(files[i], s.first)
		for fr.next <= limit {
			seq, rec, err := fr.read()
			if errors.Is(err, io.EOF) {
				if i == len(keep)-1 {
					return &CorruptError{Path: s.path, Offset: fr.off, Reason: fmt.Sprintf("ends before durable sequence %d", limit)}
				}
				break
			}
			var fe *frameError
			if errors.As(err, &fe) {
				return &CorruptError{Path: s.path, Offset: fe.off, Reason: fe.reason}
			}
			if err != nil {
				return fmt.Errorf("wal: read %s: %w", s.path, err)
			}
			if seq < from {
				continue
			}
			if err := fn(seq, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close makes every appended record durable, closes the active segment and
// releases the directory lock. Later calls return nil; other methods return
// ErrClosed. It returns the sticky write error if there was one.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.wake()
	<-l.done
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: %w", cerr)
	}
	unlockDir(l.lock)
	return err
}

// run is the committer: it takes every record appended so far, writes them
// with one write and one fdatasync, and publishes the new durable sequence.
func (l *Log) run() {
	defer close(l.done)
	for {
		<-l.kick
		if l.opts.SyncDelay > 0 {
			time.Sleep(l.opts.SyncDelay)
		}
		l.mu.Lock()
		batch, first, last := l.pending, l.synced+1, l.nextSeq-1
		l.pending, l.spare = l.spare[:0], nil
		rotations := l.rotations
		l.rotations = nil
		closing, err := l.closed, l.err
		l.mu.Unlock()

		var st Stats
		if err == nil && len(batch) > 0 {
			err = l.commit(batch, first, &st)
		}
		if err == nil && len(rotations) > 0 && l.segSize > 0 {
			err = l.newSegment(last + 1)
		}

		l.mu.Lock()
		l.spare = batch[:0]
		if err != nil && l.err == nil {
			l.err = err
		}
		if l.err == nil {
			l.synced = last
		}
		l.stats.Synced = l.synced
		l.stats.Syncs += st.Syncs
		l.stats.Batches += st.Batches
		l.stats.Bytes += st.Bytes
		if st.Syncs > 0 {
			l.stats.LastSyncDuration = st.LastSyncDuration
		}
		if closing {
			l.stopped = true
		}
		close(l.syncedCh)
		l.syncedCh = make(chan struct{})
		err = l.err
		l.mu.Unlock()

		for _, ch := range rotations {
			ch <- rotateResult{seq: last + 1, err: err}
		}
		if closing {
			return
		}
	}
}

// commit writes and syncs one batch whose first record has sequence first.
func (l *Log) commit(batch []byte, first uint64, st *Stats) error {
	if l.segSize > 0 && l.segSize+int64(len(batch)) > l.opts.SegmentBytes {
		if err := l.newSegment(first); err != nil {
			return err
		}
	}
	n, err := l.f.Write(batch)
	l.segSize += int64(n)
	st.Bytes += uint64(n)
	st.Batches++
	if err != nil {
		return fmt.Errorf("wal: write segment: %w", err)
	}
	if l.opts.NoSync {
		return nil
	}
	start := time.Now()
	err = l.f.Sync()
	st.LastSyncDuration = time.Since(start)
	st.Syncs++
	if err != nil {
		return fmt.Errorf("wal: fdatasync segment: %w", err)
	}
	return nil
}

// newSegment closes the active segment (already synced: every batch is) and
// creates segment first, durably, before any record goes into it.
func (l *Log) newSegment(first uint64) error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("wal: close segment: %w", err)
	}
	path := filepath.Join(l.dir, segmentName(first))
	f, err := l.opts.openFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL)
	if err != nil {
		l.f = closedFile{}
		return fmt.Errorf("wal: create segment: %w", err)
	}
	l.f, l.segSize = f, 0
	if err := l.syncDir(); err != nil {
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, segment{first: first, path: path})
	l.stats.Segments = len(l.segs)
	l.mu.Unlock()
	return nil
}

// closedFile stands in for a segment that could not be created.
type closedFile struct{}

func (closedFile) Write([]byte) (int, error) { return 0, os.ErrClosed }
func (closedFile) Sync() error               { return os.ErrClosed }
func (closedFile) Close() error              { return nil }
