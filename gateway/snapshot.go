package gateway

import (
	"crypto/sha256"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
)

// Store snapshots (persist.go): the whole state of a MemoryStore in a
// compact, versioned binary encoding — varints, float64 bits, length-prefixed
// strings — that restores it exactly: groups with their push, failure and
// expiry times, families with HELP and type, series with values, created
// times, push times and clear modes, windows with their timestamped raw
// values and time slices (DDSketches in their own encoding), and the
// journaled idempotency keys. The derived structures (clash index, series
// counts, holders) are rebuilt on decoding. The ring buffer of a window is
// stored as its values in order, not as it lies in memory.

const (
	snapshotMagic   = "GWST"
	snapshotVersion = 1
)

// appendSnapshot encodes the state. The caller holds the lock (read or
// write); windows are read under their own lock, as Gather may evict.
func (s *MemoryStore) appendSnapshot(b []byte) []byte {
	b = append(b, snapshotMagic...)
	b = appendUvarint(b, snapshotVersion)
	b = appendVarint(b, s.oldest)
	b = appendUvarint(b, uint64(len(s.names)))
	for name, e := range s.names {
		b = appendStr(b, name)
		b = appendVarint(b, int64(e.typ))
		b = appendStr(b, e.help)
	}
	b = appendUvarint(b, uint64(len(s.order)))
	for _, g := range s.order {
		b = appendLabelPairs(b, g.labels)
		b = appendVarint(appendVarint(appendVarint(b, g.pushed), g.failed), g.oldest)
		b = appendUvarint(b, uint64(len(g.families)))
		for name, f := range g.families {
			b = appendStr(b, name)
			b = appendUvarint(b, uint64(len(f.series)))
			for _, se := range f.series {
				b = appendSeries(b, se)
			}
		}
	}
	keys := s.keys.live()
	b = appendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k.key)
		b = append(b, k.fp[:]...)
		b = appendVarint(b, k.ns)
	}
	return b
}

func appendSeries(b []byte, se *series) []byte {
	b = appendStr(b, se.key)
	b = appendF64(b, se.value)
	b = appendVarint(b, se.pushed)
	b = appendVarint(appendVarint(b, se.created), int64(se.createdNsec))
	b = append(b, byte(se.mode))
	if d := se.dist; d == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendF64(appendF64(b, d.count), d.sum)
		b = appendUvarint(b, uint64(len(d.buckets)))
		for _, bk := range d.buckets {
			b = appendF64(appendF64(b, bk.upperBound), bk.count)
		}
		b = appendUvarint(b, uint64(len(d.quantiles)))
		for _, q := range d.quantiles {
			b = appendF64(appendF64(b, q.quantile), q.value)
		}
	}
	if se.win == nil {
		return append(b, 0)
	}
	return se.win.appendTo(append(b, 1))
}

func (w *window) appendTo(b []byte) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b = append(b, byte(w.spec.Stat))
	b = appendF64(b, w.spec.Q)
	b = appendVarint(b, int64(w.spec.Length))
	b = appendVarint(b, w.last)
	b = appendUvarint(b, uint64(w.n))
	for _, seg := range w.segments() {
		for _, p := range seg {
			b = appendF64(appendVarint(b, p.t), p.v)
		}
	}
	b = appendUvarint(b, uint64(len(w.slices)))
	for i := range w.slices {
		sl := &w.slices[i]
		b = appendVarint(appendVarint(b, sl.key), sl.newest)
		b = appendUvarint(b, sl.count)
		b = appendF64(appendF64(appendF64(b, sl.sum), sl.min), sl.max)
		if sl.sk == nil {
			b = append(b, 0)
			continue
		}
		var enc []byte
		sl.sk.Encode(&enc, true) // the index mapping is newSketch's
		b = appendStr(append(b, 1), string(enc))
	}
	return b
}

// restoreSnapshot replaces s's state, which must be empty, by the encoded
// one. It is called before s is used.
func (s *MemoryStore) restoreSnapshot(data []byte) error {
	d := &decoder{b: data}
	if string(d.bytes(len(snapshotMagic))) != snapshotMagic {
		return fmt.Errorf("not a gateway store snapshot")
	}
	if v := d.uvarint(); v != snapshotVersion {
		return fmt.Errorf("unsupported store snapshot version %d", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oldest = d.varint()
	for n := d.count(3); n > 0 && d.err == nil; n-- {
		name := d.str()
		typ := dto.MetricType(d.varint())
		s.names[name] = &nameEntry{typ: typ, help: d.str(), holders: map[*group]*family{}}
	}
	for n := d.count(5); n > 0 && d.err == nil; n-- {
		g := &group{labels: d.labelPairs()}
		g.pushed, g.failed, g.oldest = d.varint(), d.varint(), d.varint()
		nf := d.count(2)
		g.families = make(map[string]*family, nf)
		for ; nf > 0 && d.err == nil; nf-- {
			name := d.str()
			e := s.names[name]
			if e == nil {
				d.fail(fmt.Errorf("family %q without a name entry", name))
				break
			}
			f := &family{series: make([]*series, d.count(20))}
			for i := range f.series {
				se := d.series()
				f.series[i] = se
				if d.err == nil {
					s.indexAdd(identityHash(name, g.labels, se.key), g)
				}
			}
			g.families[name] = f
			e.holders[g] = f
			g.nseries += len(f.series)
		}
		gkey := labelsKey(g.labels)
		if s.groups[gkey] != nil {
			d.fail(fmt.Errorf("group %s twice", labelString(g.labels)))
		}
		s.groups[gkey] = g
		s.order = append(s.order, g) // encoded in order
		s.nseries += g.nseries
	}
	for n := d.count(34); n > 0 && d.err == nil; n-- {
		k := journalKey{key: d.str()}
		copy(k.fp[:], d.bytes(sha256.Size))
		k.ns = d.varint()
		s.keys.entries = append(s.keys.entries, k)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d bytes after the end", len(d.b)))
	}
	if d.err != nil {
		return fmt.Errorf("store snapshot: %w", d.err)
	}
	return nil
}

func (d *decoder) series() *series {
	se := &series{key: d.str(), value: d.f64(), pushed: d.varint()}
	se.created, se.createdNsec = d.varint(), int32(d.varint())
	se.mode = clearmode.Kind(d.byte1())
	if d.byte1() == 1 {
		dist := &distribution{count: d.f64(), sum: d.f64()}
		if n := d.count(16); n > 0 {
			dist.buckets = make([]bucket, n)
			for i := range dist.buckets {
				dist.buckets[i] = bucket{upperBound: d.f64(), count: d.f64()}
			}
		}
		if n := d.count(16); n > 0 {
			dist.quantiles = make([]quantile, n)
			for i := range dist.quantiles {
				dist.quantiles[i] = quantile{quantile: d.f64(), value: d.f64()}
			}
		}
		se.dist = dist
	}
	if d.byte1() == 1 {
		se.win = d.window()
	}
	return se
}

func (d *decoder) window() *window {
	spec := windowSpec{Stat: clearmode.Stat(d.byte1()), Q: d.f64(), Length: time.Duration(d.varint())}
	w := newWindow(spec)
	w.last = d.varint()
	if n := d.count(9); n > 0 {
		w.ring = make([]point, max(n, windowMinRing))
		for i := range n {
			w.ring[i] = point{t: d.varint(), v: d.f64()}
		}
		w.n = n
	}
	if n := d.count(30); n > 0 {
		w.slices = make([]windowSlice, n)
		for i := range w.slices {
			sl := &w.slices[i]
			sl.key, sl.newest = d.varint(), d.varint()
			sl.count = d.uvarint()
			sl.sum, sl.min, sl.max = d.f64(), d.f64(), d.f64()
			if d.byte1() == 1 {
				enc := d.bytes(d.count(1))
				sl.sk = newSketch()
				if d.err == nil {
					if err := sl.sk.DecodeAndMergeWith(enc); err != nil {
						d.fail(fmt.Errorf("window sketch: %w", err))
					}
				}
			}
		}
	}
	return w
}

// snapshotBytes encodes the state under the read lock (tests).
func (s *MemoryStore) snapshotBytes() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.appendSnapshot(nil)
}
