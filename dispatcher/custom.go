package dispatcher

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// emfSeriesLimit bounds the custom series of one execution environment;
// observations of further series are dropped and counted.
const emfSeriesLimit = 1000

// emfCacheLimit bounds the memo of EMF names and dimension keys already
// mapped; beyond it they are mapped again each time.
const emfCacheLimit = 4096

// Reasons a valid EMF metric is not recorded (per metric and dimension
// set): the values of aws_lambda_emf_dropped_total's reason label.
const (
	emfDropName     = "name"         // no Prometheus name can be made of it, or a non-Count name ending in _total
	emfDropReserved = "reserved"     // the name belongs to the platform metrics or the gateway
	emfDropConflict = "conflict"     // the name is taken by another type or bucket layout, or collides with a histogram's series
	emfDropLimit    = "series_limit" // emfSeriesLimit reached
)

// Names the gateway or the platform metrics own, and labels the pipeline
// sets itself: a dimension of that name becomes exported_<name>.
var (
	emfReservedPrefixes = []string{"aws_lambda_", "gateway_", "go_", "process_"}
	emfReservedNames    = map[string]bool{"push_time_seconds": true, "push_failure_time_seconds": true}
	emfReservedLabels   = map[string]bool{
		"function_name": true, "function_version": true, "region": true, "job": true, "namespace": true,
		"le": true, "quantile": true, ClearmodeLabel: true, "clear_mode": true,
	}
)

// customMetrics holds the function's own metrics: Embedded Metric Format
// documents in its log lines (emf.go), as counters and histograms in the
// Gatherer of the custom metrics (Metrics.CustomGatherer), which travel in
// pushes of their own. One family may carry series with different label
// names (one per dimension set), which the gateway accepts. Safe for
// concurrent use.
type customMetrics struct {
	invalid  *vec           // reason
	dropped  *vec           // reason
	constant []family.Label // function_name, function_version, region

	mu       sync.Mutex
	families map[string]*emfFamily    // by Prometheus name
	claimed  map[string]*emfFamily    // every name a family's samples use (histograms: _bucket, _count, _sum)
	names    map[emfNameKey]emfLookup // memo: EMF name and unit → family or drop reason
	labels   map[string]string        // memo: dimension key → label name ("" if none can be made)
	series   map[string]*emfSeries    // by family name and label pairs
	order    []*emfSeries             // every series, sorted by family name, then labels (compareLabels)
}

type emfFamily struct {
	name string
	help string
	unit *emfUnit // the unit that created it: kind and buckets of every series
}

type emfNameKey struct {
	name string
	unit *emfUnit
}

type emfLookup struct {
	family *emfFamily
	drop   string
}

type emfSeries struct {
	family *emfFamily
	series // a counter, or a histogram of the family's buckets
}

// newCustomMetrics registers the EMF diagnostics (aws_lambda_emf_*) with
// the platform metrics in platform, and returns the custom metrics, whose
// series carry l: a push of the custom metrics the gateway rejects must not
// take the counts of what was dropped along.
func newCustomMetrics(platform *registry, l Labels) *customMetrics {
	c := &customMetrics{
		invalid: platform.counterVec("aws_lambda_emf_invalid_total",
			"Function log lines that carry an Embedded Metric Format \"_aws\" member but are not valid EMF, by reason; ignored.",
			"reason"),
		dropped: platform.counterVec("aws_lambda_emf_dropped_total",
			"EMF metrics not recorded, per metric and dimension set, by reason (name, reserved, conflict, series_limit).",
			"reason"),
		constant: constLabels(l),
		families: map[string]*emfFamily{},
		claimed:  map[string]*emfFamily{},
		names:    map[emfNameKey]emfLookup{},
		labels:   map[string]string{},
		series:   map[string]*emfSeries{},
	}
	return c
}

// recordFunctionLog reads a function log record and records the EMF
// metrics it carries. A record without "_aws" costs one substring search.
func (c *customMetrics) recordFunctionLog(e *telemetryapi.Event) {
	if !emfCandidate(e.Record) {
		return
	}
	root, err := emfRoot(e.Record)
	if err == nil && root != nil {
		var doc *emfDocument
		if doc, err = parseEMF(root); err == nil {
			err = c.record(doc)
		}
	}
	var bad *emfInvalid
	if errors.As(err, &bad) {
		c.invalid.with(bad.reason).Inc()
	}
}

// emfLabelSet is one series' labels: namespace and dimensions as label
// pairs sorted by name, empty values left out (an empty label is no label).
type emfLabelSet struct {
	pairs []emfDimension // {label name, value}
	key   string
}

// record records a valid document. It fails, recording nothing, when two
// dimension keys of a set map to the same label name.
func (c *customMetrics) record(doc *emfDocument) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sets := make([][]emfLabelSet, len(doc.directives))
	for i := range doc.directives {
		d := &doc.directives[i]
		for _, dims := range d.dimensionSets {
			ls, ok := c.labelSet(d.namespace, dims)
			if !ok {
				return emfInvalidError(emfInvalidDimensions)
			}
			sets[i] = append(sets[i], ls)
		}
	}
	for i := range doc.directives {
		for _, m := range doc.directives[i].metrics {
			fam, drop := c.family(m.name, m.unit)
			if fam == nil {
				c.dropped.with(drop).Add(float64(len(sets[i])))
				continue
			}
			for _, ls := range sets[i] {
				s := c.seriesOf(fam, ls)
				if s == nil {
					c.dropped.with(emfDropLimit).Inc()
					continue
				}
				for _, v := range m.values {
					if fam.unit.kind == emfCounter {
						s.Add(v * m.unit.factor)
					} else {
						s.Observe(v * m.unit.factor)
					}
				}
			}
		}
	}
	return nil
}

func (c *customMetrics) labelSet(namespace string, dims []emfDimension) (emfLabelSet, bool) {
	pairs := make([]emfDimension, 0, len(dims)+1)
	pairs = append(pairs, emfDimension{key: "namespace", value: namespace})
	for _, d := range dims {
		name := c.labelName(d.key)
		if name == "" {
			return emfLabelSet{}, false
		}
		pairs = append(pairs, emfDimension{key: name, value: d.value})
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].key < pairs[j].key })
	var b strings.Builder
	out := pairs[:0]
	for i, p := range pairs {
		if i > 0 && p.key == pairs[i-1].key {
			return emfLabelSet{}, false // two keys, one label name
		}
		if p.value == "" {
			continue
		}
		b.WriteByte(0xff)
		b.WriteString(p.key)
		b.WriteByte(0xfe)
		b.WriteString(p.value)
		out = append(out, p)
	}
	return emfLabelSet{pairs: out, key: b.String()}, true
}

// labelName maps a dimension key to a label name: snake_case, and
// exported_<name> for the labels the pipeline sets itself.
func (c *customMetrics) labelName(key string) string {
	if name, ok := c.labels[key]; ok {
		return name
	}
	name := emfSnakeCase(key)
	if emfReservedLabels[name] {
		name = "exported_" + name
	}
	if len(c.labels) < emfCacheLimit {
		c.labels[key] = name
	}
	return name
}

// family returns the family of an EMF metric, creating it on first use,
// or nil and the reason it cannot be recorded.
func (c *customMetrics) family(name string, unit *emfUnit) (*emfFamily, string) {
	k := emfNameKey{name: name, unit: unit}
	if r, ok := c.names[k]; ok {
		return r.family, r.drop
	}
	r := c.lookup(name, unit)
	if len(c.names) < emfCacheLimit {
		c.names[k] = r
	}
	return r.family, r.drop
}

func (c *customMetrics) lookup(name string, unit *emfUnit) emfLookup {
	pn := emfMetricName(name, unit)
	if pn == "" || (unit.kind != emfCounter && strings.HasSuffix(pn, "_total")) {
		return emfLookup{drop: emfDropName}
	}
	if emfReservedNames[pn] {
		return emfLookup{drop: emfDropReserved}
	}
	for _, p := range emfReservedPrefixes {
		if strings.HasPrefix(pn, p) {
			return emfLookup{drop: emfDropReserved}
		}
	}
	if fam, ok := c.families[pn]; ok {
		if fam.unit.kind != unit.kind || !emfSameBuckets(fam.unit.buckets, unit.buckets) {
			return emfLookup{drop: emfDropConflict}
		}
		return emfLookup{family: fam}
	}
	exposed := []string{pn}
	if unit.kind != emfCounter {
		exposed = append(exposed, pn+"_bucket", pn+"_count", pn+"_sum")
	}
	for _, n := range exposed {
		if _, taken := c.claimed[n]; taken {
			return emfLookup{drop: emfDropConflict}
		}
	}
	fam := &emfFamily{
		name: pn,
		help: "Embedded Metric Format metric " + name + " of the function (unit " + unit.name + ").",
		unit: unit,
	}
	c.families[pn] = fam
	for _, n := range exposed {
		c.claimed[n] = fam
	}
	return emfLookup{family: fam}
}

func emfSameBuckets(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// seriesOf returns the series of a family with labels ls, creating it
// unless emfSeriesLimit is reached (nil then).
func (c *customMetrics) seriesOf(fam *emfFamily, ls emfLabelSet) *emfSeries {
	key := fam.name + ls.key
	if s, ok := c.series[key]; ok {
		return s
	}
	if len(c.series) >= emfSeriesLimit {
		return nil
	}
	labels := make([]family.Label, 0, len(ls.pairs)+len(c.constant))
	labels = append(labels, c.constant...)
	for _, p := range ls.pairs {
		labels = append(labels, family.Label{Name: p.key, Value: p.value})
	}
	sortLabels(labels)
	s := &emfSeries{family: fam}
	s.labels, s.created = slices.Clip(labels), time.Now()
	if fam.unit.kind != emfCounter {
		s.upper, s.counts = fam.unit.buckets, make([]uint64, len(fam.unit.buckets))
	}
	c.series[key] = s
	i, _ := slices.BinarySearchFunc(c.order, s, compareEMFSeries)
	c.order = slices.Insert(c.order, i, s)
	return s
}

func compareEMFSeries(a, b *emfSeries) int {
	if c := strings.Compare(a.family.name, b.family.name); c != 0 {
		return c
	}
	return compareLabels(a.labels, b.labels)
}

// Gather returns the custom families, sorted by name, their metrics by
// labels (as client_golang sorts them).
func (c *customMetrics) Gather() []family.Family {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []family.Family
	for _, s := range c.order {
		typ := family.Counter
		if s.family.unit.kind != emfCounter {
			typ = family.Histogram
		}
		if n := len(out); n == 0 || out[n-1].Name != s.family.name {
			out = append(out, family.Family{Name: s.family.name, Help: s.family.help, Type: typ})
		}
		f := &out[len(out)-1]
		f.Metrics = append(f.Metrics, s.metric(typ))
	}
	return out
}
