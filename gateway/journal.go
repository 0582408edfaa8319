package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// Journal receives every change of a MemoryStore as a logical record, in the
// order the changes are applied, so that replaying the records into an empty
// store (or a snapshot's) rebuilds the same state (persist.go). It is the
// storage interface of the store: internal/wal's Log implements it.
//
// Append is called under the store's write lock, after the change was
// validated and before it is applied (applying cannot fail), so the log order
// is the apply order; an Append error leaves the store unchanged. The store
// waits with Sync for a change's record, after releasing the lock, before
// reporting the change done: a push is answered 2xx only once it is durable.
type Journal interface {
	Append(rec []byte) (seq uint64, err error)
	Sync(ctx context.Context, seq uint64) error
}

// ErrNotDurable is matched (errors.Is) by the errors of a store whose journal
// failed to record or make durable a change. The HTTP API answers 503: a
// push may have been applied in memory but is not acknowledged. After a
// write or fsync failure the journal refuses every later change (the error
// is sticky, see internal/wal), so the gateway answers 503 to every write and
// /-/ready fails until it is restarted and recovers from disk.
var ErrNotDurable = errors.New("change not persisted")

// persistError wraps a journal error so that it matches ErrNotDurable.
type persistError struct{ err error }

func (e *persistError) Error() string        { return "persistence: " + e.err.Error() }
func (e *persistError) Unwrap() error        { return e.err }
func (e *persistError) Is(target error) bool { return target == ErrNotDurable }
func notDurable(err error) error             { return &persistError{err} }

// PushMeta is what a push carries besides its content: the Idempotency-Key
// and the request fingerprint the gateway remembers its answer by. The store
// journals it with the push, so that a restarted gateway still knows the
// answer (idempotency.go): an acknowledged push retried after a crash is not
// applied twice. It travels in the context (WithPushMeta), which keeps
// Store.Push's signature that of a plain metrics store.
type PushMeta struct {
	IdempotencyKey string
	Fingerprint    [sha256.Size]byte
}

type pushMetaKey struct{}

// WithPushMeta returns ctx carrying m for Store.Push.
func WithPushMeta(ctx context.Context, m PushMeta) context.Context {
	return context.WithValue(ctx, pushMetaKey{}, m)
}

func pushMetaFrom(ctx context.Context) (PushMeta, bool) {
	m, ok := ctx.Value(pushMetaKey{}).(PushMeta)
	return m, ok && m.IdempotencyKey != ""
}

// Record kinds. A record is: kind byte | store-clock time (int64 LE, Unix
// ns) | body. Expiry needs no record: it follows from the recorded times
// (every change sweeps at its time before applying, exactly as live).
const (
	recPush    byte = 1 // body: flags | grouping labels | key [| fingerprint] | families
	recDelete  byte = 2 // body: grouping labels
	recWipe    byte = 3 // body: none
	recFailure byte = 4 // body: grouping labels

	recFlagReplace byte = 1 // PUT
	recFlagKey     byte = 2 // has an idempotency key and fingerprint
)

const recTimeOff = 1 // offset of the time in a record

// The families of a push are encoded as decoded (fam.Family), values as
// float64 bits: exactly what the store validated and applied. (The
// protobuf-delimited encoding of internal/family would round a summary's
// fractional count toward zero.)

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }
func appendF64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}
func appendStr(b []byte, s string) []byte {
	return append(appendUvarint(b, uint64(len(s))), s...)
}

func appendLabelPairs(b []byte, ls []labelPair) []byte {
	b = appendUvarint(b, uint64(len(ls)))
	for _, l := range ls {
		b = appendStr(appendStr(b, l.name), l.value)
	}
	return b
}

func appendFamilies(b []byte, fams []fam.Family) []byte {
	b = appendUvarint(b, uint64(len(fams)))
	for i := range fams {
		f := &fams[i]
		b = appendStr(appendStr(b, f.Name), f.Help)
		b = appendVarint(b, int64(f.Type))
		b = appendUvarint(b, uint64(len(f.Metrics)))
		for j := range f.Metrics {
			m := &f.Metrics[j]
			b = appendUvarint(b, uint64(len(m.Labels)))
			for _, l := range m.Labels {
				b = appendStr(appendStr(b, l.Name), l.Value)
			}
			b = appendF64(appendF64(appendF64(b, m.Value), m.Count), m.Sum)
			b = appendUvarint(b, uint64(len(m.Buckets)))
			for _, bk := range m.Buckets {
				b = appendF64(appendF64(b, bk.UpperBound), bk.Count)
			}
			b = appendUvarint(b, uint64(len(m.Quantiles)))
			for _, q := range m.Quantiles {
				b = appendF64(appendF64(b, q.Quantile), q.Value)
			}
			b = appendTime(b, m.Created)
			// Timestamps are rejected before a push is journaled.
		}
	}
	return b
}

// appendTime writes a time as a flag, Unix seconds and nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return appendUvarint(appendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// encodePush encodes a push record; its time is patched in under the lock
// (setRecordTime).
func encodePush(glabels []labelPair, fams []fam.Family, replace bool, meta PushMeta, hasMeta bool) []byte {
	b := make([]byte, 9, 256)
	b[0] = recPush
	var flags byte
	if replace {
		flags |= recFlagReplace
	}
	if hasMeta {
		flags |= recFlagKey
	}
	b = append(b, flags)
	b = appendLabelPairs(b, glabels)
	if hasMeta {
		b = appendStr(b, meta.IdempotencyKey)
		b = append(b, meta.Fingerprint[:]...)
	}
	return appendFamilies(b, fams)
}

func encodeSimple(kind byte, glabels []labelPair) []byte {
	b := make([]byte, 9, 64)
	b[0] = kind
	if kind != recWipe {
		b = appendLabelPairs(b, glabels)
	}
	return b
}

func setRecordTime(rec []byte, now time.Time) {
	binary.LittleEndian.PutUint64(rec[recTimeOff:], uint64(now.UnixNano()))
}

// decoder reads the encodings above; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated data")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit the remaining bytes at min bytes each.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/max(minBytes, 1)+1) {
		d.fail(fmt.Errorf("count %d exceeds the data", n))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) str() string { return string(d.bytes(d.count(1))) }

func (d *decoder) u64() uint64 {
	if v := d.bytes(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }
func (d *decoder) i64() int64   { return int64(d.u64()) }

func (d *decoder) labelPairs() []labelPair {
	n := d.count(2)
	ls := make([]labelPair, n)
	for i := range ls {
		ls[i] = labelPair{d.str(), d.str()}
	}
	return ls
}

func (d *decoder) time() time.Time {
	if d.byte1() == 0 {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) families() []fam.Family {
	fams := make([]fam.Family, d.count(3))
	for i := range fams {
		f := &fams[i]
		f.Name, f.Help = d.str(), d.str()
		f.Type = fam.Type(d.varint())
		f.Metrics = make([]fam.Metric, d.count(27))
		for j := range f.Metrics {
			m := &f.Metrics[j]
			if n := d.count(2); n > 0 {
				m.Labels = make([]fam.Label, n)
				for k := range m.Labels {
					m.Labels[k] = fam.Label{Name: d.str(), Value: d.str()}
				}
			}
			m.Value, m.Count, m.Sum = d.f64(), d.f64(), d.f64()
			if n := d.count(16); n > 0 {
				m.Buckets = make([]fam.Bucket, n)
				for k := range m.Buckets {
					m.Buckets[k] = fam.Bucket{UpperBound: d.f64(), Count: d.f64()}
				}
			}
			if n := d.count(16); n > 0 {
				m.Quantiles = make([]fam.Quantile, n)
				for k := range m.Quantiles {
					m.Quantiles[k] = fam.Quantile{Quantile: d.f64(), Value: d.f64()}
				}
			}
			m.Created = d.time()
		}
	}
	return fams
}

// Replay applies one journaled record to s, as it was applied live: at its
// recorded time, without limits (the limits were checked live; they may
// have been lowered since) and without journaling it again. An error means
// the record is malformed or does not apply to the state (the log and the
// snapshot disagree): the state cannot be trusted.
func (s *MemoryStore) Replay(rec []byte) error {
	d := &decoder{b: rec}
	kind := d.byte1()
	now := time.Unix(0, d.i64())
	if d.err != nil {
		return fmt.Errorf("journal record: %w", d.err)
	}
	switch kind {
	case recPush:
		flags := d.byte1()
		glabels := d.labelPairs()
		var meta PushMeta
		if flags&recFlagKey != 0 {
			meta.IdempotencyKey = d.str()
			copy(meta.Fingerprint[:], d.bytes(sha256.Size))
		}
		fams := d.families()
		if d.err != nil {
			return fmt.Errorf("push record: %w", d.err)
		}
		pushed, err := preparePush(glabels, fams)
		if err == nil {
			err = checkPushTimeNames(pushed)
		}
		if err != nil {
			return fmt.Errorf("push record no longer valid: %w", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.pushLocked(labelsKey(glabels), glabels, pushed, flags&recFlagReplace != 0, now, true); err != nil {
			return fmt.Errorf("push record does not apply: %w", err)
		}
		if flags&recFlagKey != 0 {
			s.keys.add(meta, now.UnixNano())
		}
		return nil
	case recDelete, recFailure:
		glabels := d.labelPairs()
		if d.err != nil {
			return fmt.Errorf("record: %w", d.err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sweepLocked(now)
		if kind == recDelete {
			s.deleteLocked(labelsKey(glabels))
		} else {
			s.recordFailureLocked(glabels, now)
		}
		return nil
	case recWipe:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.wipeLocked()
		return nil
	}
	return fmt.Errorf("journal record of unknown kind %d", kind)
}

// journalKeys are the idempotency keys of the journaled pushes still within
// the retention, oldest first: the part of the idempotency state that must
// survive a restart (a 2xx answer; see idempotency.go). Kept under the
// store's lock in apply order, so a snapshot holds exactly the keys of the
// pushes it holds.
type journalKeys struct {
	retention time.Duration
	maxKeys   int
	entries   []journalKey // oldest first; a ring would avoid the copy, a slice is simpler
	head      int
}

type journalKey struct {
	key string
	fp  [sha256.Size]byte
	ns  int64 // when the push was applied (store clock)
}

// add remembers meta's key, applied at ns, forgetting keys past the
// retention or beyond maxKeys.
func (k *journalKeys) add(meta PushMeta, ns int64) {
	if k.retention <= 0 {
		return
	}
	k.entries = append(k.entries, journalKey{key: meta.IdempotencyKey, fp: meta.Fingerprint, ns: ns})
	cutoff := ns - int64(k.retention)
	for k.head < len(k.entries) && (k.entries[k.head].ns <= cutoff || len(k.entries)-k.head > k.maxKeys) {
		k.entries[k.head] = journalKey{}
		k.head++
	}
	if k.head > 1024 && k.head > len(k.entries)/2 {
		k.entries = append(k.entries[:0], k.entries[k.head:]...)
		k.head = 0
	}
}

// live returns the remembered keys, oldest first.
func (k *journalKeys) live() []journalKey { return k.entries[k.head:] }
