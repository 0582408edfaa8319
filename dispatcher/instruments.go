package dispatcher

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// This file holds the extension's own small instrument set — counters,
// gauges, histograms with fixed buckets and count+sum summaries, alone or
// as vectors with fixed label names — and the registry that gathers them as
// family values. It replaces client_golang, which cost a quarter of the
// layer binary for far more than the extension uses.

// Gatherer yields cumulative metric families, sorted by name, each
// metric's labels sorted by name. The returned values are the caller's:
// later recording does not change them (label, bucket and quantile slices
// may be shared and must not be modified in place).
type Gatherer interface {
	Gather() []family.Family
}

// GathererFunc is a function serving as a Gatherer.
type GathererFunc func() []family.Family

// Gather calls f.
func (f GathererFunc) Gather() []family.Family { return f() }

// observer takes observations of a histogram or summary.
type observer interface {
	Observe(v float64)
}

// series is one series of a registered family: a counter or gauge value, or
// a histogram's (buckets non-nil) or summary's count and sum.
type series struct {
	labels  []family.Label // constant and own labels, sorted by name; immutable
	created time.Time      // counters, histograms, summaries: when the series was made

	bits atomic.Uint64 // counter or gauge value (math.Float64bits)

	upper  []float64 // histogram upper bounds, ascending, without +Inf; shared, immutable
	mu     sync.Mutex
	count  uint64
	sum    float64
	counts []uint64 // histogram: observations per bucket (not cumulative), len(upper)
}

// Add adds v (≥ 0; anything else is ignored) to a counter.
func (s *series) Add(v float64) {
	if !(v >= 0) {
		return
	}
	for {
		old := s.bits.Load()
		if s.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Inc adds 1 to a counter.
func (s *series) Inc() { s.Add(1) }

// Set sets a gauge to v.
func (s *series) Set(v float64) { s.bits.Store(math.Float64bits(v)) }

// Observe adds one observation to a histogram (into the first bucket whose
// upper bound is ≥ v, as client_golang) or a summary.
func (s *series) Observe(v float64) {
	s.mu.Lock()
	s.count++
	s.sum += v
	if s.counts != nil {
		if i := sort.SearchFloat64s(s.upper, v); i < len(s.counts) {
			s.counts[i]++
		}
	}
	s.mu.Unlock()
}

// metric returns the series' current value as a family.Metric of type t.
func (s *series) metric(t family.Type) family.Metric {
	m := family.Metric{Labels: s.labels}
	switch t {
	case family.Counter:
		m.Value = math.Float64frombits(s.bits.Load())
		m.Created = s.created
	case family.Gauge, family.Untyped:
		m.Value = math.Float64frombits(s.bits.Load())
	case family.Histogram, family.Summary:
		m.Created = s.created
		s.mu.Lock()
		m.Count, m.Sum = float64(s.count), s.sum
		if s.counts != nil {
			m.Buckets = make([]family.Bucket, len(s.counts))
			var cum uint64
			for i, c := range s.counts {
				cum += c
				m.Buckets[i] = family.Bucket{UpperBound: s.upper[i], Count: float64(cum)}
			}
		}
		s.mu.Unlock()
	}
	return m
}

// maxVecLabels bounds the label names of a vector, so that a series is
// found by an array of label values, without allocating.
const maxVecLabels = 3

type vecKey [maxVecLabels]string

// vec is a registered family: its series by label values. A family without
// label names has one series, made at registration.
type vec struct {
	name, help string
	typ        family.Type
	labelNames []string
	upper      []float64 // histograms
	constant   []family.Label

	// byKey maps label values to series; copied on write (a new series is
	// rare), so that recording reads it without locking.
	byKey  atomic.Pointer[map[vecKey]*series]
	mu     sync.Mutex // serialises writers; guards sorted
	sorted []*series  // by labels (compareLabels)
}

// with returns the series of the label values (one per label name, in
// order), making it on first use.
func (v *vec) with(values ...string) *series {
	var k vecKey
	copy(k[:], values)
	if s := (*v.byKey.Load())[k]; s != nil {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := *v.byKey.Load()
	if s := old[k]; s != nil {
		return s
	}
	labels := make([]family.Label, 0, len(v.constant)+len(v.labelNames))
	labels = append(labels, v.constant...)
	for i, n := range v.labelNames {
		labels = append(labels, family.Label{Name: n, Value: values[i]})
	}
	sortLabels(labels)
	s := &series{labels: slices.Clip(labels), created: time.Now(), upper: v.upper}
	if v.typ == family.Histogram {
		s.counts = make([]uint64, len(v.upper))
	}
	next := make(map[vecKey]*series, len(old)+1)
	maps.Copy(next, old)
	next[k] = s
	v.byKey.Store(&next)
	i, _ := slices.BinarySearchFunc(v.sorted, s, func(a, b *series) int { return compareLabels(a.labels, b.labels) })
	v.sorted = slices.Insert(v.sorted, i, s)
	return s
}

// gather appends the family to out unless it has no series.
func (v *vec) gather(out []family.Family) []family.Family {
	v.mu.Lock()
	ss := slices.Clone(v.sorted)
	v.mu.Unlock()
	if len(ss) == 0 {
		return out
	}
	f := family.Family{Name: v.name, Help: v.help, Type: v.typ, Metrics: make([]family.Metric, len(ss))}
	for i, s := range ss {
		f.Metrics[i] = s.metric(v.typ)
	}
	return append(out, f)
}

// registry holds registered families with constant labels; Gather yields
// them sorted by name, each family's metrics ordered by labels as
// client_golang orders them (compareLabels). Safe for concurrent use.
type registry struct {
	constant []family.Label // sorted by name

	mu   sync.Mutex
	vecs []*vec // sorted by name
}

// newRegistry returns a registry whose series all carry the constant labels.
func newRegistry(constant ...family.Label) *registry {
	c := slices.Clone(constant)
	sortLabels(c)
	return &registry{constant: c}
}

// register adds a family. It panics on a duplicate name or more than
// maxVecLabels label names: both are programming errors.
func (r *registry) register(name, help string, typ family.Type, upper []float64, labelNames ...string) *vec {
	if len(labelNames) > maxVecLabels {
		panic("dispatcher: too many label names for " + name)
	}
	v := &vec{name: name, help: help, typ: typ, labelNames: labelNames, upper: upper, constant: r.constant}
	v.byKey.Store(&map[vecKey]*series{})
	r.mu.Lock()
	i, found := slices.BinarySearchFunc(r.vecs, name, func(a *vec, n string) int { return strings.Compare(a.name, n) })
	if found {
		r.mu.Unlock()
		panic("dispatcher: duplicate metric " + name)
	}
	r.vecs = slices.Insert(r.vecs, i, v)
	r.mu.Unlock()
	if len(labelNames) == 0 {
		v.with() // a family without labels exposes its series from the start, as client_golang's
	}
	return v
}

// counter registers a counter without labels.
func (r *registry) counter(name, help string) *series {
	return r.register(name, help, family.Counter, nil).with()
}

// counterVec registers a counter family with label names.
func (r *registry) counterVec(name, help string, labelNames ...string) *vec {
	return r.register(name, help, family.Counter, nil, labelNames...)
}

// gauge registers a gauge without labels.
func (r *registry) gauge(name, help string) *series {
	return r.register(name, help, family.Gauge, nil).with()
}

// distributionVec registers a histogram family with the given upper bounds
// (ascending, without +Inf) or, with Summary, a summary of count and sum.
func (r *registry) distributionVec(d Distribution, name, help string, upper []float64, labelNames ...string) *vec {
	if d == Summary {
		return r.register(name, help, family.Summary, nil, labelNames...)
	}
	return r.register(name, help, family.Histogram, upper, labelNames...)
}

// distribution registers a histogram or summary without labels.
func (r *registry) distribution(d Distribution, name, help string, upper []float64) *series {
	return r.distributionVec(d, name, help, upper).with()
}

// Gather returns the families that have series, sorted by name, with the
// current values.
func (r *registry) Gather() []family.Family {
	r.mu.Lock()
	vecs := slices.Clone(r.vecs)
	r.mu.Unlock()
	out := make([]family.Family, 0, len(vecs))
	for _, v := range vecs {
		out = v.gather(out)
	}
	return out
}

// sortLabels sorts labels by name.
func sortLabels(ls []family.Label) {
	slices.SortFunc(ls, func(a, b family.Label) int { return strings.Compare(a.Name, b.Name) })
}

// compareLabels orders label sets (sorted by name) as client_golang orders
// a family's metrics: fewer labels first, then by values in label order.
func compareLabels(a, b []family.Label) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	for i := range a {
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	for i := range a {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
	}
	return 0
}
