package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/wal"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memJournal records in memory (a journal that never fails).
type memJournal struct {
	mu   sync.Mutex
	recs [][]byte
}

func (j *memJournal) Append(rec []byte) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recs = append(j.recs, bytes.Clone(rec))
	return uint64(len(j.recs)), nil
}
func (j *memJournal) Sync(context.Context, uint64) error { return nil }

// randomOps drives a store through a random sequence of every kind of
// change: PUT and POST of every type and clear mode (windows included, one
// past windowExactValues values so it folds into sketches), created
// timestamps, deletes, failures, wipes, expiry, idempotency keys.
type randomOps struct {
	r     *rand.Rand
	clock *testClock
	n     int
}

func (o *randomOps) families() []fam.Family {
	r := o.r
	var fams []fam.Family
	lbl := func() []fam.Label {
		return []fam.Label{{Name: "i", Value: fmt.Sprint(r.IntN(3))}}
	}
	created := func() time.Time {
		if r.IntN(3) == 0 {
			return time.Unix(1_700_000_000+r.Int64N(1000), r.Int64N(1e9)).UTC()
		}
		return time.Time{}
	}
	switch r.IntN(8) {
	case 0:
		mode := []string{"aggregate", "replace"}[r.IntN(2)]
		fams = append(fams, fam.Family{Name: "c_total", Type: fam.Counter, Help: "h" + fmt.Sprint(r.IntN(2)), Metrics: []fam.Metric{
			{Labels: append(lbl(), fam.Label{Name: "clearmode", Value: mode}), Value: float64(r.IntN(5)), Created: created()}}})
	case 1:
		fams = append(fams, fam.Family{Name: "g", Type: fam.Gauge, Metrics: []fam.Metric{{Labels: lbl(), Value: r.NormFloat64()}}})
	case 2:
		fams = append(fams, fam.Family{Name: "h", Type: fam.Histogram, Metrics: []fam.Metric{{Labels: lbl(), Count: 3, Sum: 1.5,
			Buckets: []fam.Bucket{{UpperBound: 0.1, Count: 1}, {UpperBound: float64(1 + r.IntN(2)), Count: 2}}, Created: created()}}})
	case 3:
		fams = append(fams, fam.Family{Name: "s", Type: fam.Summary, Metrics: []fam.Metric{{Labels: lbl(), Count: 2.5, Sum: 3,
			Quantiles: []fam.Quantile{{Quantile: 0.5, Value: r.Float64()}}, Created: created()}}})
	case 4:
		var ms []fam.Metric
		for i := range 1 + r.IntN(3) {
			ms = append(ms, fam.Metric{Labels: []fam.Label{{Name: "v", Value: fmt.Sprint(i + r.IntN(3))}, {Name: "clearmode", Value: "family"}}, Value: 1})
		}
		fams = append(fams, fam.Family{Name: "info", Type: fam.Gauge, Metrics: ms})
	default:
		mode := []string{"mean1m", "p90_1m", "max30s", "count1m"}[r.IntN(4)]
		fams = append(fams, fam.Family{Name: "w", Type: fam.Gauge, Metrics: []fam.Metric{
			{Labels: []fam.Label{{Name: "m", Value: mode}, {Name: "clearmode", Value: mode}}, Value: r.NormFloat64() * 100}}})
	}
	return fams
}

// step applies one random change to every store alike.
func (o *randomOps) step(t *testing.T, stores ...*MemoryStore) {
	r := o.r
	o.n++
	o.clock.add(time.Duration(r.IntN(3000)) * time.Millisecond)
	job := map[string]string{"job": fmt.Sprint("j", r.IntN(4))}
	ctx := context.Background()
	switch k := r.IntN(100); {
	case k < 3:
		for _, s := range stores {
			s.Delete(ctx, job)
		}
	case k < 6:
		for _, s := range stores {
			s.RecordFailure(job)
		}
	case k < 7 && o.n%50 == 0:
		for _, s := range stores {
			s.Wipe(ctx)
		}
	default:
		fams := o.families()
		if r.IntN(2) == 0 {
			var fp [sha256.Size]byte
			fp[0] = byte(o.n)
			ctx = WithPushMeta(ctx, PushMeta{IdempotencyKey: fmt.Sprint("key-", o.n), Fingerprint: fp})
		}
		put := r.IntN(5) == 0
		var errs []string
		for _, s := range stores {
			err := s.Push(ctx, job, fams, put)
			errs = append(errs, fmt.Sprint(err))
		}
		if len(slices.Compact(slices.Clone(errs))) != 1 {
			t.Fatalf("stores disagree on a push: %v", errs)
		}
	}
}

// manyWindowValues pushes more than windowExactValues values into one
// percentile window, so that it folds into DDSketch slices.
func manyWindowValues(t *testing.T, clock *testClock, s *MemoryStore) {
	for i := range windowExactValues + 500 {
		clock.add(time.Millisecond)
		err := s.Push(context.Background(), map[string]string{"job": "big"}, []fam.Family{{Name: "lat", Type: fam.Gauge,
			Metrics: []fam.Metric{{Labels: []fam.Label{{Name: "clearmode", Value: "p99_5m"}}, Value: float64(i % 977)}}}}, false)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// dump renders a store's whole state canonically (maps sorted, windows by
// their logical content, sketches by their quantiles), for deep comparison.
func dump(s *MemoryStore) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	fmt.Fprintf(&b, "oldest=%d nseries=%d groups=%d index=%d overflow=%d\n", s.oldest, s.nseries, len(s.groups), len(s.index), len(s.overflow))
	for _, name := range slices.Sorted(mapsKeys(s.names)) {
		e := s.names[name]
		fmt.Fprintf(&b, "name %s %v %q holders=%d\n", name, e.typ, e.help, len(e.holders))
	}
	for _, g := range s.order {
		fmt.Fprintf(&b, "group %v pushed=%d failed=%d oldest=%d n=%d\n", g.labels, g.pushed, g.failed, g.oldest, g.nseries)
		for _, name := range slices.Sorted(mapsKeys(g.families)) {
			f := g.families[name]
			if s.names[name].holders[g] != f {
				b.WriteString("  HOLDER MISMATCH\n")
			}
			for _, se := range f.series {
				fmt.Fprintf(&b, "  %s %q v=%v p=%d c=%d.%d m=%v", name, se.key, se.value, se.pushed, se.created, se.createdNsec, se.mode)
				if d := se.dist; d != nil {
					fmt.Fprintf(&b, " dist=%v/%v %v %v", d.count, d.sum, d.buckets, d.quantiles)
				}
				if w := se.win; w != nil {
					w.mu.Lock()
					fmt.Fprintf(&b, " win=%+v last=%d n=%d raw=", w.spec, w.last, w.n)
					for _, seg := range w.segments() {
						for _, p := range seg {
							fmt.Fprint(&b, p, " ")
						}
					}
					for _, sl := range w.slices {
						fmt.Fprintf(&b, " slice{%d %d %d %v %v %v", sl.key, sl.newest, sl.count, sl.sum, sl.min, sl.max)
						if sl.sk != nil {
							for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
								v, _ := sl.sk.GetValueAtQuantile(q)
								fmt.Fprintf(&b, " q%v=%v", q, v)
							}
							fmt.Fprintf(&b, " n=%v", sl.sk.GetCount())
						}
						b.WriteString("}")
					}
					w.mu.Unlock()
				}
				b.WriteString("\n")
			}
		}
	}
	for _, k := range s.keys.live() {
		fmt.Fprintf(&b, "key %s %x %d\n", k.key, k.fp[:4], k.ns)
	}
	return b.String()
}

func mapsKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// scrapeText is the store's Gather output in the text format, and its
// groups as the JSON API sees them.
func scrapeText(t *testing.T, s *MemoryStore) string {
	mfs, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeProtoText))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range s.Groups() {
		fmt.Fprintf(&b, "%v %v %v %d\n", g.Labels, g.LastPush, g.LastFailure, len(g.Families))
	}
	return b.String()
}

func assertSameStore(t *testing.T, what string, want, got *MemoryStore) {
	t.Helper()
	scrapeText(t, want) // reads evict aged-out window values: compare what is observable
	scrapeText(t, got)
	if w, g := dump(want), dump(got); w != g {
		t.Fatalf("%s: state differs: %s", what, firstLineDiff(w, g))
	}
	if w, g := scrapeText(t, want), scrapeText(t, got); w != g {
		t.Fatalf("%s: scrape differs: %s", what, firstLineDiff(w, g))
	}
}

func newClockStore(clock *testClock, ttl time.Duration) *MemoryStore {
	return NewMemoryStore(StoreOptions{Now: clock.Now, TTL: ttl, IdempotencyRetention: 20 * time.Second, IdempotencyMaxKeys: 50})
}

// Replaying the journal of a live store into an empty one, and restoring a
// snapshot of it, both reproduce the live state exactly.
func TestJournalReplayAndSnapshotReproduceState(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			clock := &testClock{t: time.Unix(1_800_000_000, 0)}
			ttl := time.Duration(0)
			if seed%2 == 1 {
				ttl = 20 * time.Second // expiry on
			}
			live := newClockStore(clock, ttl)
			j := &memJournal{}
			live.journal = j
			ops := &randomOps{r: rand.New(rand.NewPCG(seed, 7)), clock: clock}
			if seed == 0 {
				manyWindowValues(t, clock, live)
			}
			for range 1500 {
				ops.step(t, live)
				if ops.n%300 == 0 {
					live.Gather() // reads sweep and evict; replay must not depend on them
				}
			}
			replayed := newClockStore(clock, ttl)
			for i, rec := range j.recs {
				if err := replayed.Replay(rec); err != nil {
					t.Fatalf("record %d: %v", i+1, err)
				}
			}
			// Compare before reading (reads sweep).
			if w, g := dump(live), dump(replayed); w != g {
				// Expiry may differ only in what reads swept: compare after a sweep.
				live.Sweep()
				replayed.Sweep()
			}
			assertSameStore(t, "replay", live, replayed)

			restored := newClockStore(clock, ttl)
			if err := restored.restoreSnapshot(live.snapshotBytes()); err != nil {
				t.Fatal(err)
			}
			assertSameStore(t, "snapshot", live, restored)

			// And both keep evolving alike.
			restored.journal, replayed.journal = &memJournal{}, &memJournal{}
			for range 300 {
				before := dump(replayed)
				ops.step(t, live, restored, replayed)
				if dump(live) != dump(replayed) {
					t.Logf("before: %s", before)
					assertSameStore(t, fmt.Sprint("step ", ops.n), live, replayed)
				}
			}
			clock.add(10 * time.Second)
			assertSameStore(t, "after more changes (snapshot)", live, restored)
			assertSameStore(t, "after more changes (replay)", live, replayed)
		})
	}
}

// Through the real log and snapshot files: a store restored from a
// directory (snapshot + log after it; the process "crashed" without a final
// snapshot) equals the live one, idempotency keys included.
func TestPersistentStoreRestores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	opts := StoreOptions{Now: clock.Now, IdempotencyRetention: time.Hour, IdempotencyMaxKeys: 1000}
	s, p, err := OpenPersistentStore(opts, PersistenceOptions{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	shadow := NewMemoryStore(opts)
	shadow.journal = &memJournal{}
	ops := &randomOps{r: rand.New(rand.NewPCG(42, 1)), clock: clock}
	for i := range 900 {
		ops.step(t, s, shadow)
		if i == 300 || i == 600 {
			if err := p.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if seqs, _ := wal.Snapshots(dir); len(seqs) != 2 {
		t.Fatalf("snapshots %v, want 2", seqs)
	}
	if err := p.log.Close(); err != nil { // a crash: no final snapshot
		t.Fatal(err)
	}
	s2, p2, err := OpenPersistentStore(opts, PersistenceOptions{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if p2.stats.replayedRecords == 0 {
		t.Error("nothing replayed after the snapshot")
	}
	assertSameStore(t, "restored", shadow, s2)
	if len(s2.journaledKeys()) == 0 {
		t.Error("no idempotency keys restored")
	}
	// Graceful: Close snapshots, the next start replays nothing.
	ops.step(t, s2, shadow)
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	s3, p3, err := OpenPersistentStore(opts, PersistenceOptions{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p3.Close()
	if p3.stats.replayedRecords != 0 {
		t.Errorf("replayed %d records after a graceful close", p3.stats.replayedRecords)
	}
	assertSameStore(t, "after close", shadow, s3)

	// The gateway restores the remembered answers.
	g, err := New(s3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, want := g.idem.cache.len(), len(s3.journaledKeys()); n != want || n == 0 {
		t.Errorf("gateway remembers %d answers, want %d", n, want)
	}
}

func firstLineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d\nwant: %.1500s\ngot:  %.1500s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}

// BenchmarkSnapshot1M measures the writers' stall of a snapshot (encoding the
// state in memory under the lock) and a restore, for a store of 1M series
// (1,000 groups of 500 counters and 500 histograms).
func BenchmarkSnapshot1M(b *testing.B) {
	s := NewMemoryStore(StoreOptions{})
	for g := range 1000 {
		c := fam.Family{Name: "requests_total", Type: fam.Counter}
		h := fam.Family{Name: "duration_seconds", Type: fam.Histogram}
		for i := range 500 {
			l := []fam.Label{{Name: "route", Value: fmt.Sprintf("/api/v1/r%d", i)}}
			c.Metrics = append(c.Metrics, fam.Metric{Labels: l, Value: float64(i)})
			h.Metrics = append(h.Metrics, fam.Metric{Labels: l, Count: 10, Sum: 2,
				Buckets: []fam.Bucket{{UpperBound: 0.1, Count: 2}, {UpperBound: 0.5, Count: 5}, {UpperBound: 1, Count: 9}}})
		}
		if err := s.Push(context.Background(), map[string]string{"job": "fn", "instance": fmt.Sprint(g)}, []fam.Family{c, h}, true); err != nil {
			b.Fatal(err)
		}
	}
	var buf []byte
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			s.mu.RLock()
			buf = s.appendSnapshot(buf[:0])
			s.mu.RUnlock()
		}
		b.ReportMetric(float64(len(buf)), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if err := NewMemoryStore(StoreOptions{}).restoreSnapshot(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
