package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-lambda/prometheus-lambda/internal/wal"
)

// Persistence (flag --persistence.dir): a MemoryStore journals every change
// to a write-ahead log (internal/wal: group commit, torn-tail recovery) and
// answers a push 2xx only once its record is fsync'd; periodically, and at a
// graceful shutdown, the whole state is snapshotted and the log before the
// previous snapshot deleted. At start the newest valid snapshot is loaded and
// the log replayed from it: every acknowledged push, and the idempotency key
// it came with, survives a crash (kill -9) or power loss.
//
// Records are logical operations (journal.go) with the store-clock time they
// were applied at; replaying them at those times reproduces the state
// exactly — windows, created and push times, expiry — because every change
// sweeps expired series at its time first, as it did live.

// Defaults of PersistenceOptions.
const (
	DefaultSnapshotInterval = 5 * time.Minute
	DefaultSnapshotWALBytes = 256 << 20
)

// PersistenceOptions configures OpenPersistentStore.
type PersistenceOptions struct {
	// Dir holds the log segments and the snapshots; created if missing.
	Dir string
	// SnapshotInterval is how often the state is snapshotted (if it
	// changed). ≤ 0 means DefaultSnapshotInterval.
	SnapshotInterval time.Duration
	// SnapshotWALBytes snapshots sooner, once the log written since the last
	// snapshot exceeds it. ≤ 0 means DefaultSnapshotWALBytes.
	SnapshotWALBytes int64
	// NoSync skips fsync (UNSAFE: survives a process crash, not an OS crash
	// or power loss). For measuring the cost of fsync.
	NoSync bool
	// Logger receives recovery and snapshot messages. Nil discards.
	Logger *slog.Logger
}

// Persistence is a persisting store's journal and snapshotter. Its methods
// are safe for concurrent use.
type Persistence struct {
	opts  PersistenceOptions
	log   *wal.Log
	store *MemoryStore

	failed atomic.Pointer[error] // the first write or fsync error (sticky)

	snapMu       sync.Mutex // one snapshot at a time; guards the fields below
	snapSeq      uint64     // sequence of the newest snapshot, 0 if none
	prevSnapSeq  uint64     // of the one before (the log is kept back to it)
	snapWALBytes uint64     // log bytes written when the newest was taken
	lastSnap     time.Time
	buf          []byte

	stats persistStats // under statsMu
	mu    sync.Mutex
}

type persistStats struct {
	snapshots, snapshotFailures       uint64
	lastTime                          time.Time
	lastDuration, lastStall           time.Duration
	lastSize                          int
	replayDuration                    time.Duration
	replayedRecords, restoredSnapshot uint64
}

// OpenPersistentStore restores a MemoryStore from opts.Dir — the newest
// valid snapshot, then the log after it — and returns it journaling to the
// log. The caller runs Run and, at shutdown after the last request, Close.
func OpenPersistentStore(storeOpts StoreOptions, opts PersistenceOptions) (*MemoryStore, *Persistence, error) {
	if opts.SnapshotInterval <= 0 {
		opts.SnapshotInterval = DefaultSnapshotInterval
	}
	if opts.SnapshotWALBytes <= 0 {
		opts.SnapshotWALBytes = DefaultSnapshotWALBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	store := NewMemoryStore(storeOpts)
	p := &Persistence{opts: opts, store: store}
	from := uint64(1)
	snap, err := wal.LatestSnapshot(opts.Dir)
	switch {
	case errors.Is(err, wal.ErrNoSnapshot):
	case err != nil:
		return nil, nil, fmt.Errorf("persistence: %w", err)
	default:
		for _, e := range snap.Skipped {
			opts.Logger.Warn("persistence: skipped a corrupt snapshot", "err", e)
		}
		data, err := io.ReadAll(snap)
		snap.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("persistence: read snapshot: %w", err)
		}
		if err := store.restoreSnapshot(data); err != nil {
			return nil, nil, fmt.Errorf("persistence: %s: %w", snap.Path, err)
		}
		from = snap.Seq + 1
		p.snapSeq, p.prevSnapSeq = snap.Seq, snap.Seq
		p.stats.restoredSnapshot = snap.Seq
	}
	log, err := wal.Open(opts.Dir, wal.Options{NoSync: opts.NoSync, Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("persistence: %w", err)
	}
	var n uint64
	if err := log.Replay(from, func(seq uint64, rec []byte) error {
		n++
		if err := store.Replay(rec); err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		return nil
	}); err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("persistence: replaying the log in %s: %w", opts.Dir, err)
	}
	p.log = log
	st := log.Stats()
	p.snapWALBytes = st.Bytes
	p.lastSnap = time.Now()
	p.stats.replayDuration, p.stats.replayedRecords = time.Since(start), n
	store.journal, store.lastSeq = p, st.Appended
	rec := log.Recovery()
	opts.Logger.Info("persistence: state restored", "dir", opts.Dir, "snapshot_seq", p.snapSeq,
		"replayed_records", n, "truncated_torn_bytes", rec.TruncatedBytes, "duration", p.stats.replayDuration,
		"groups", len(store.groups), "series", store.nseries)
	return store, p, nil
}

// Append implements Journal.
func (p *Persistence) Append(rec []byte) (uint64, error) {
	seq, err := p.log.Append(rec)
	if err != nil {
		p.setFailed(err)
	}
	return seq, err
}

// Sync implements Journal.
func (p *Persistence) Sync(ctx context.Context, seq uint64) error {
	err := p.log.Sync(ctx, seq)
	if err != nil && ctx.Err() == nil {
		p.setFailed(err)
	}
	return err
}

func (p *Persistence) setFailed(err error) {
	if errors.Is(err, wal.ErrTooLarge) {
		return // that record only
	}
	if p.failed.CompareAndSwap(nil, &err) {
		p.opts.Logger.Error("persistence failed: answering 503 to every change until restarted", "err", err)
	}
}

// Ready reports the sticky persistence failure, if any: the gateway can no
// longer promise durability (/-/ready answers 503).
func (p *Persistence) Ready() error {
	if e := p.failed.Load(); e != nil {
		return fmt.Errorf("persistence failed, restart to recover from disk: %w", *e)
	}
	return nil
}

// Snapshot writes a snapshot of the store if it changed since the last one,
// then deletes the log segments older than the previous snapshot (so a
// corrupt newest snapshot can fall back without loss). Writers are stalled
// while the state is encoded into memory (not while it is written).
func (p *Persistence) Snapshot() error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	err := p.snapshotLocked()
	p.mu.Lock()
	if err != nil {
		p.stats.snapshotFailures++
	}
	p.mu.Unlock()
	return err
}

func (p *Persistence) snapshotLocked() error {
	if err := p.Ready(); err != nil {
		return err
	}
	s := p.store
	start := time.Now()
	s.mu.RLock() // excludes every change, hence every Append
	next, err := p.log.Rotate()
	if err != nil {
		s.mu.RUnlock()
		p.setFailed(err)
		return fmt.Errorf("persistence: snapshot: %w", err)
	}
	seq := next - 1 // the state holds exactly records 1..seq
	if seq == p.snapSeq {
		s.mu.RUnlock()
		return nil // unchanged
	}
	p.buf = s.appendSnapshot(p.buf[:0])
	s.mu.RUnlock()
	stall := time.Since(start)
	buf := p.buf
	if err := wal.WriteSnapshot(p.opts.Dir, seq, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	}); err != nil {
		return fmt.Errorf("persistence: snapshot: %w", err)
	}
	if cap(p.buf) > 64<<20 && len(buf) < cap(p.buf)/4 {
		p.buf = nil
	}
	p.prevSnapSeq, p.snapSeq = p.snapSeq, seq
	if err := p.log.TruncateBefore(p.prevSnapSeq + 1); err != nil {
		p.opts.Logger.Warn("persistence: deleting old log segments", "err", err)
	}
	p.snapWALBytes, p.lastSnap = p.log.Stats().Bytes, time.Now()
	d := time.Since(start)
	p.mu.Lock()
	p.stats.snapshots++
	p.stats.lastTime, p.stats.lastDuration, p.stats.lastStall, p.stats.lastSize = p.lastSnap, d, stall, len(buf)
	p.mu.Unlock()
	p.opts.Logger.Debug("persistence: snapshot written", "seq", seq, "bytes", len(buf), "duration", d, "writers_stalled", stall)
	return nil
}

// Run snapshots every SnapshotInterval, or sooner once SnapshotWALBytes of
// log were written since the last snapshot, until ctx is done.
func (p *Persistence) Run(ctx context.Context) {
	t := time.NewTicker(min(time.Second, p.opts.SnapshotInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.snapMu.Lock()
		due := time.Since(p.lastSnap) >= p.opts.SnapshotInterval ||
			p.log.Stats().Bytes-p.snapWALBytes >= uint64(p.opts.SnapshotWALBytes)
		p.snapMu.Unlock()
		if due {
			if err := p.Snapshot(); err != nil {
				p.opts.Logger.Error("persistence: snapshot failed", "err", err)
			}
		}
	}
}

// Close writes a final snapshot (so the next start replays nothing) unless
// persistence failed, then closes the log. Call it after the last change.
func (p *Persistence) Close() error {
	var serr error
	if p.Ready() == nil {
		serr = p.Snapshot()
	}
	return errors.Join(serr, p.log.Close())
}

var (
	descWALBytes    = prometheus.NewDesc("gateway_persistence_wal_bytes_total", "Bytes written to the write-ahead log.", nil, nil)
	descWALFsyncs   = prometheus.NewDesc("gateway_persistence_wal_fsyncs_total", "fdatasync calls on the write-ahead log (one per group commit).", nil, nil)
	descWALRecords  = prometheus.NewDesc("gateway_persistence_wal_records_total", "Records appended to the write-ahead log since it was created (its last sequence number).", nil, nil)
	descWALSegments = prometheus.NewDesc("gateway_persistence_wal_segments", "Segment files of the write-ahead log.", nil, nil)
	descLastFsync   = prometheus.NewDesc("gateway_persistence_wal_last_fsync_seconds", "Duration of the last fdatasync of the write-ahead log.", nil, nil)
	descLag         = prometheus.NewDesc("gateway_persistence_lag_records", "Records appended to the write-ahead log but not yet durable (their pushes wait for the fsync).", nil, nil)
	descSnapTime    = prometheus.NewDesc("gateway_persistence_last_snapshot_timestamp_seconds", "Unix time of the last snapshot written by this process (0: none yet).", nil, nil)
	descSnapDur     = prometheus.NewDesc("gateway_persistence_last_snapshot_duration_seconds", "Duration of the last snapshot, writing and fsync included.", nil, nil)
	descSnapStall   = prometheus.NewDesc("gateway_persistence_last_snapshot_stall_seconds", "How long the last snapshot held back pushes (rotating the log and encoding the state in memory).", nil, nil)
	descSnapSize    = prometheus.NewDesc("gateway_persistence_last_snapshot_size_bytes", "Size of the last snapshot's encoded state.", nil, nil)
	descSnaps       = prometheus.NewDesc("gateway_persistence_snapshots_total", "Snapshots written.", nil, nil)
	descSnapFails   = prometheus.NewDesc("gateway_persistence_snapshot_failures_total", "Snapshots that failed.", nil, nil)
	descReplayDur   = prometheus.NewDesc("gateway_persistence_replay_duration_seconds", "Time taken at start to load the snapshot and replay the log.", nil, nil)
	descReplayed    = prometheus.NewDesc("gateway_persistence_replayed_records", "Log records replayed at start.", nil, nil)
	descFailed      = prometheus.NewDesc("gateway_persistence_failed", "1 once writing or fsyncing the log failed: changes answer 503 and /-/ready fails until a restart.", nil, nil)
)

// Describe implements prometheus.Collector.
func (p *Persistence) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWALBytes, descWALFsyncs, descWALRecords, descWALSegments, descLastFsync, descLag,
		descSnapTime, descSnapDur, descSnapStall, descSnapSize, descSnaps, descSnapFails, descReplayDur, descReplayed, descFailed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Persistence) Collect(ch chan<- prometheus.Metric) {
	w := p.log.Stats()
	p.mu.Lock()
	st := p.stats
	p.mu.Unlock()
	c := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(d, t, v)
	}
	c(descWALBytes, prometheus.CounterValue, float64(w.Bytes))
	c(descWALFsyncs, prometheus.CounterValue, float64(w.Syncs))
	c(descWALRecords, prometheus.CounterValue, float64(w.Appended))
	c(descWALSegments, prometheus.GaugeValue, float64(w.Segments))
	c(descLastFsync, prometheus.GaugeValue, w.LastSyncDuration.Seconds())
	c(descLag, prometheus.GaugeValue, float64(w.Appended-w.Synced))
	var ts float64
	if !st.lastTime.IsZero() {
		ts = float64(st.lastTime.UnixNano()) / 1e9
	}
	c(descSnapTime, prometheus.GaugeValue, ts)
	c(descSnapDur, prometheus.GaugeValue, st.lastDuration.Seconds())
	c(descSnapStall, prometheus.GaugeValue, st.lastStall.Seconds())
	c(descSnapSize, prometheus.GaugeValue, float64(st.lastSize))
	c(descSnaps, prometheus.CounterValue, float64(st.snapshots))
	c(descSnapFails, prometheus.CounterValue, float64(st.snapshotFailures))
	c(descReplayDur, prometheus.GaugeValue, st.replayDuration.Seconds())
	c(descReplayed, prometheus.GaugeValue, float64(st.replayedRecords))
	failed := 0.0
	if p.Ready() != nil {
		failed = 1
	}
	c(descFailed, prometheus.GaugeValue, failed)
}

// Ready reports whether the store can still promise durability (persisting
// stores; always nil in memory).
func (s *MemoryStore) Ready() error {
	if r, ok := s.journal.(interface{ Ready() error }); ok {
		return r.Ready()
	}
	return nil
}

// Describe implements prometheus.Collector: a persisting store's
// gateway_persistence_* metrics (none in memory), registered by the gateway
// with its own (metrics.go).
func (s *MemoryStore) Describe(ch chan<- *prometheus.Desc) {
	if c, ok := s.journal.(prometheus.Collector); ok {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *MemoryStore) Collect(ch chan<- prometheus.Metric) {
	if c, ok := s.journal.(prometheus.Collector); ok {
		c.Collect(ch)
	}
}

// journaledKeys returns the idempotency keys of the journaled pushes within
// the retention, oldest first (restored into the gateway's answers,
// idempotency.go).
func (s *MemoryStore) journaledKeys() []journalKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]journalKey(nil), s.keys.live()...)
}
