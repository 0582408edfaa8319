package gateway

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The scrape's fast path: GET /metrics in the text format 0.0.4 or
// OpenMetrics, written straight from a MemoryStore's series into pooled byte
// buffers, without building a dto.MetricFamily per series (which made a
// scrape of 1,000,000 series take tens of seconds and a gigabyte).
//
// The output is byte for byte what promhttp.HandlerFor writes for the same
// state with the Gateway's HandlerOpts (expose_test.go proves it): the same
// negotiation (expfmt.NegotiateAccept over the OpenMetrics formats), headers
// (Content-Type, Vary, Content-Encoding), the families of the gateway's own
// registry interleaved by name (encoded by expfmt itself), metrics in the
// order prometheus.Gatherers leaves them (its unstable sort is replayed with
// the same comparison when the store order differs), expfmt's float
// formatting and escaping, _created samples in OpenMetrics, and an
// OpenMetrics histogram with float counts cut short as expfmt cuts it (the
// error is logged and counted in promhttp_metric_handler_errors_total).
//
// Anything else takes the promhttp path (Gather): protobuf and other
// formats, Accept-Encoding other than absent or exactly "gzip", name[]
// filters, a stored family name that is not a legacy Prometheus name, a
// stored name that the gateway's own registry also serves, an error
// gathering the registry, and stores other than *MemoryStore. Gatherers'
// consistency checks (duplicate series, invalid label values) are not
// repeated: the store validates every push, so they cannot fail here.
//
// Consistency: the set of names is read once; each family is then rendered
// under the store's read lock into a buffer, and the buffer is written to
// the client after the lock is released, so a slow scraper never holds up
// pushes, and every family is one consistent snapshot (a push may land
// between two families). Memory: a buffer as large as the largest family's
// exposition and that family's series references, kept for the next scrape
// (exposeScratch).

// exposer serves scrapes of a MemoryStore, falling back to promhttp.
type exposer struct {
	store    *MemoryStore
	reg      prometheus.Gatherer
	fallback http.Handler
	errCnt   *prometheus.CounterVec // promhttp_metric_handler_errors_total
	logger   promLogger
	scratch  chan *exposeScratch
}

// newExposer returns the scrape handler for store. fallback is the promhttp
// handler, already created with reg as its Registry (so its error counter
// exists and is shared).
func newExposer(store *MemoryStore, reg *prometheus.Registry, fallback http.Handler, logger promLogger) *exposer {
	x := &exposer{store: store, reg: reg, fallback: fallback, logger: logger, scratch: make(chan *exposeScratch, exposeScratchKept)}
	errCnt := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_errors_total",
		Help: "Total number of internal errors encountered by the promhttp metric handler.",
	}, []string{"cause"})
	if err := reg.Register(errCnt); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if cv, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				errCnt = cv
			}
		}
	}
	x.errCnt = errCnt
	return x
}

func (x *exposer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !x.serve(w, r) {
		x.fallback.ServeHTTP(w, r)
	}
}

// exposeGzip pools gzip writers.
var exposeGzip = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// exposeScratch is a scrape's reusable memory: the output buffer of one
// family, its series, the label block. Kept by the exposer across scrapes
// (a sync.Pool would lose it to the garbage collector between two scrapes of
// a large store), up to exposeScratchKept of them, each up to
// exposeScratchMax bytes of buffer.
type exposeScratch struct {
	buf, lb []byte
	refs    []exposeRef
}

const (
	exposeScratchKept = 2
	exposeScratchMax  = 64 << 20
)

func (x *exposer) getScratch() *exposeScratch {
	select {
	case sc := <-x.scratch:
		return sc
	default:
		return &exposeScratch{buf: make([]byte, 0, 64<<10)}
	}
}

func (x *exposer) putScratch(sc *exposeScratch) {
	if cap(sc.buf) > exposeScratchMax {
		return
	}
	clear(sc.refs[:cap(sc.refs)]) // no pointers into the store kept
	sc.refs = sc.refs[:0]
	select {
	case x.scratch <- sc:
	default:
	}
}

// serve writes the scrape and reports true, or reports false having written
// nothing (the caller falls back to promhttp).
func (x *exposer) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.URL != nil && r.URL.RawQuery != "" && r.URL.Query().Has("name[]") {
		return false
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	om := false
	switch format.FormatType() {
	case expfmt.TypeTextPlain:
	case expfmt.TypeOpenMetrics:
		om = true
	default:
		return false
	}
	useGzip := false
	switch ae := r.Header.Values("Accept-Encoding"); {
	case len(ae) == 0 || (len(ae) == 1 && strings.TrimSpace(ae[0]) == ""):
	case len(ae) == 1 && strings.TrimSpace(ae[0]) == "gzip":
		useGzip = true
	default:
		return false
	}

	s := x.store
	s.Sweep()
	s.mu.RLock()
	names := slices.Sorted(maps.Keys(s.names))
	if len(s.groups) > 0 {
		names = append(names, PushTimeMetric, PushFailureTimeMetric)
		slices.Sort(names)
	}
	s.mu.RUnlock()
	for _, n := range names {
		if !model.LegacyValidation.IsValidMetricName(n) {
			return false
		}
	}
	own, err := x.reg.Gather()
	if err != nil {
		return false
	}
	for _, mf := range own {
		if _, found := slices.BinarySearch(names, mf.GetName()); found {
			return false // merged by Gatherers: leave it to promhttp
		}
	}

	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	var out io.Writer = w
	if useGzip {
		h.Set("Content-Encoding", "gzip")
		gz := exposeGzip.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() { _ = gz.Close(); exposeGzip.Put(gz) }()
		out = gz
	}

	enc := expfmt.NewEncoder(out, format, expfmt.WithCreatedLines())
	sc := x.getScratch()
	defer x.putScratch(sc)
	e := exposeEncoder{lb: sc.lb, om: om, scheme: format.ToEscapingScheme()}
	failed := func(err error) {
		x.logger.Println("error encoding and sending metric family:", err)
		x.errCnt.WithLabelValues("encoding").Inc()
	}
	i := 0
	for _, name := range names {
		for ; i < len(own) && own[i].GetName() < name; i++ {
			if err := enc.Encode(own[i]); err != nil {
				failed(err)
			}
		}
		e.b = sc.buf[:0]
		err := s.appendFamily(&e, &sc.refs, name)
		sc.buf, sc.lb = e.b, e.lb
		if err != nil {
			failed(err)
		}
		if len(e.b) > 0 {
			if _, err := out.Write(e.b); err != nil {
				failed(err)
				return true
			}
		}
	}
	for ; i < len(own); i++ {
		if err := enc.Encode(own[i]); err != nil {
			failed(err)
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil { // OpenMetrics: # EOF
			failed(err)
		}
	}
	return true
}

// exposeRef is one exposed series of a family: its group's labels, its
// encoded pushed labels and the series (the exposed copy for a windowed
// one).
type exposeRef struct {
	gl  []labelPair
	key string
	se  *series
}

// labelCount is the number of labels of r's series.
func (r *exposeRef) labelCount() int { return len(r.gl) + strings.Count(r.key, "\xff")/2 }

// appendFamily appends the exposition of family name (or a push time
// family) to e.b under the read lock; nothing if it has no exposed series.
// An error is an OpenMetrics histogram with float counts: the family is cut
// where expfmt cuts it.
func (s *MemoryStore) appendFamily(e *exposeEncoder, rp *[]exposeRef, name string) error {
	refs := (*rp)[:0]

	s.mu.RLock()
	defer s.mu.RUnlock()
	var typ dto.MetricType
	var help string
	if name == PushTimeMetric || name == PushFailureTimeMetric {
		if len(s.order) == 0 {
			return nil
		}
		typ, help = dto.MetricType_GAUGE, pushTimeHelp
		if name == PushFailureTimeMetric {
			help = pushFailureTimeHelp
		}
		vals := make([]series, len(s.order))
		for i, g := range s.order {
			ns := g.pushed
			if name == PushFailureTimeMetric {
				ns = g.failed
			}
			vals[i].value = unixSeconds(ns)
			refs = append(refs, exposeRef{gl: g.labels, se: &vals[i]})
		}
	} else {
		en := s.names[name]
		if en == nil {
			return nil // dropped since the names were read
		}
		typ, help = en.typ, en.help
		if help == "" {
			help = defaultHelp
		}
		now := s.now()
		for _, h := range s.holdersInOrder(en) {
			for _, se := range h.f.series {
				if se = exposed(se, now); se != nil {
					refs = append(refs, exposeRef{gl: h.g.labels, key: se.key, se: se})
				}
			}
		}
	}
	*rp = refs
	if len(refs) == 0 {
		return nil
	}
	// prometheus.Gatherers sorts every family's metrics with sort.Sort by
	// label values (internal.MetricSorter). On sorted input that leaves the
	// order as it is; otherwise replaying sort.Sort with the same
	// comparison yields the same permutation.
	sorter := refSorter(refs)
	for i := 1; i < len(refs); i++ {
		if sorter.Less(i, i-1) {
			sort.Sort(sorter)
			break
		}
	}
	return e.family(name, typ, help, refs)
}

// refSorter orders series as internal.MetricSorter orders dto.Metrics.
type refSorter []exposeRef

func (s refSorter) Len() int      { return len(s) }
func (s refSorter) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s refSorter) Less(i, j int) bool {
	a, b := &s[i], &s[j]
	if sameGroup(a.gl, b.gl) {
		// The common case, quicker: the same group labels, so with the
		// same pushed label names the values compare in key order. Label
		// counts decide first.
		ka, kb := a.key, b.key
		cmp := 0
		for ka != "" && kb != "" {
			var na, va, nb, vb string
			na, va, ka = nextLabel(ka)
			nb, vb, kb = nextLabel(kb)
			if na != nb {
				goto general
			}
			if cmp == 0 && va != vb {
				cmp = strings.Compare(va, vb)
			}
		}
		if ka != "" || kb != "" {
			goto general // label counts differ
		}
		return cmp < 0
	}
general:
	if na, nb := a.labelCount(), b.labelCount(); na != nb {
		return na < nb
	}
	ia, ib := labelIter{gl: a.gl, key: a.key}, labelIter{gl: b.gl, key: b.key}
	for {
		_, va, ok := ia.next()
		if !ok {
			return false // equal; no timestamps
		}
		_, vb, _ := ib.next()
		if va != vb {
			return va < vb
		}
	}
}

// sameGroup reports whether two group label sets are the same slice.
func sameGroup(a, b []labelPair) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// labelIter yields a series' full label set, group labels gl merged with the
// encoded pushed labels key, in name order (as fullLabels, without
// allocating).
type labelIter struct {
	gl       []labelPair
	key      string
	pn, pv   string
	buffered bool
}

func (it *labelIter) next() (name, value string, ok bool) {
	if !it.buffered && it.key != "" {
		it.pn, it.pv, it.key = nextLabel(it.key)
		it.buffered = true
	}
	if len(it.gl) > 0 && (!it.buffered || it.gl[0].name < it.pn) {
		l := it.gl[0]
		it.gl = it.gl[1:]
		return l.name, l.value, true
	}
	if it.buffered {
		it.buffered = false
		return it.pn, it.pv, true
	}
	return "", "", false
}

// errFloatHistogram is expfmt's refusal of float histogram counts in
// OpenMetrics 1.0.
type errFloatHistogram struct{ name string }

func (e errFloatHistogram) Error() string {
	return "OpenMetrics v1.0 does not support float histogram " + e.name
}

// exposeEncoder appends expfmt's text or OpenMetrics exposition to b.
type exposeEncoder struct {
	b      []byte
	lb     []byte // the current series' label block
	om     bool
	scheme model.EscapingScheme
}

// family appends one family (its name is a legacy metric name).
func (e *exposeEncoder) family(name string, typ dto.MetricType, help string, refs []exposeRef) error {
	compliant := name
	if e.om && typ == dto.MetricType_COUNTER {
		compliant = strings.TrimSuffix(name, "_total")
	}
	e.b = append(e.b, "# HELP "...)
	e.b = append(e.b, compliant...)
	e.b = append(e.b, ' ')
	e.b = appendEscaped(e.b, help, e.om)
	e.b = append(e.b, "\n# TYPE "...)
	e.b = append(e.b, compliant...)
	e.b = append(e.b, typeWord(typ, name, e.om)...)
	for i := range refs {
		if err := e.series(name, typ, &refs[i]); err != nil {
			return err
		}
	}
	return nil
}

func typeWord(typ dto.MetricType, name string, om bool) string {
	switch typ {
	case dto.MetricType_COUNTER:
		if om && !strings.HasSuffix(name, "_total") {
			return " unknown\n"
		}
		return " counter\n"
	case dto.MetricType_GAUGE:
		return " gauge\n"
	case dto.MetricType_SUMMARY:
		return " summary\n"
	case dto.MetricType_UNTYPED:
		if om {
			return " unknown\n"
		}
		return " untyped\n"
	case dto.MetricType_GAUGE_HISTOGRAM:
		if om {
			return " gaugehistogram\n"
		}
	}
	return " histogram\n"
}

func (e *exposeEncoder) series(name string, typ dto.MetricType, r *exposeRef) error {
	se := r.se
	e.labelBlock(r)
	switch typ {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
		e.labels(name, "", "", 0)
		e.float(se.value)
		e.b = append(e.b, '\n')
		if typ == dto.MetricType_COUNTER {
			e.created(strings.TrimSuffix(name, "_total"), r)
		}
	case dto.MetricType_SUMMARY:
		d := se.dist
		for _, q := range d.quantiles {
			e.labels(name, "", model.QuantileLabel, q.quantile)
			e.float(q.value)
			e.b = append(e.b, '\n')
		}
		e.labels(name, "_sum", "", 0)
		e.float(d.sum)
		e.b = append(e.b, '\n')
		e.labels(name, "_count", "", 0)
		e.count(uint64(math.Round(d.count)))
		e.b = append(e.b, '\n')
		e.created(name, r)
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		d := se.dist
		integral := d.integral()
		// expfmt's view of a count held as a float (not integral):
		// GetCumulativeCountFloat, or the unset integer 0 when that is 0.
		asFloat := func(c float64) float64 {
			if c == 0 {
				return 0
			}
			return c
		}
		infSeen := false
		for _, bk := range d.buckets {
			if e.om && !integral && bk.count > 0 {
				return errFloatHistogram{name}
			}
			e.labels(name, "_bucket", model.BucketLabel, bk.upperBound)
			switch {
			case integral:
				e.count(uint64(bk.count))
			case e.om:
				e.count(0)
			default:
				e.float(asFloat(bk.count))
			}
			e.b = append(e.b, '\n')
			if math.IsInf(bk.upperBound, +1) {
				infSeen = true
			}
		}
		countLine := func(suffix string, le bool) {
			if le {
				e.labels(name, suffix, model.BucketLabel, math.Inf(+1))
			} else {
				e.labels(name, suffix, "", 0)
			}
			switch {
			case integral:
				e.count(uint64(d.count))
			case e.om:
				e.count(0)
			default:
				e.float(asFloat(d.count))
			}
			e.b = append(e.b, '\n')
		}
		if !infSeen {
			countLine("_bucket", true)
		}
		e.labels(name, "_sum", "", 0)
		e.float(d.sum)
		e.b = append(e.b, '\n')
		if e.om && !integral && d.count > 0 {
			return errFloatHistogram{name}
		}
		countLine("_count", false)
		if typ == dto.MetricType_HISTOGRAM {
			e.created(name, r)
		}
	}
	return nil
}

// created appends the OpenMetrics _created sample of base, if the series
// has a created time.
func (e *exposeEncoder) created(base string, r *exposeRef) {
	if !e.om || r.se.createdNsec == 0 {
		return
	}
	e.labels(base, "_created", "", 0)
	ts := time.Unix(r.se.created, int64(r.se.createdNsec-1))
	e.float(float64(ts.UnixNano()) / 1e9)
	e.b = append(e.b, '\n')
}

// labelBlock renders r's label set, `{a="1",b="2"` without the closing
// brace, into e.lb (empty without labels), once for all of its lines.
func (e *exposeEncoder) labelBlock(r *exposeRef) {
	e.lb = e.lb[:0]
	sep := byte('{')
	it := labelIter{gl: r.gl, key: r.key}
	for {
		ln, lv, ok := it.next()
		if !ok {
			break
		}
		e.lb = append(e.lb, sep)
		e.lb = e.labelName(e.lb, ln)
		e.lb = append(e.lb, `="`...)
		e.lb = appendEscaped(e.lb, lv, true)
		e.lb = append(e.lb, '"')
		sep = ','
	}
}

// labels appends name+suffix and the label block, with an extra label (le,
// quantile) when extra is not "", and the space before the value.
func (e *exposeEncoder) labels(name, suffix string, extra string, extraValue float64) {
	e.b = append(e.b, name...)
	e.b = append(e.b, suffix...)
	if len(e.lb) == 0 && extra == "" {
		e.b = append(e.b, ' ')
		return
	}
	sep := byte('{')
	if len(e.lb) > 0 {
		e.b = append(e.b, e.lb...)
		sep = ','
	}
	if extra != "" {
		e.b = append(e.b, sep)
		e.b = append(e.b, extra...)
		e.b = append(e.b, `="`...)
		e.float(extraValue)
		e.b = append(e.b, '"')
	}
	e.b = append(e.b, '}', ' ')
}

// labelName appends a label name as the encoder writes it: escaped by the
// negotiated scheme, then quoted if still not a legacy name.
func (e *exposeEncoder) labelName(b []byte, n string) []byte {
	if model.LegacyValidation.IsValidMetricName(n) {
		return append(b, n...)
	}
	if e.scheme != model.NoEscaping {
		n = model.EscapeName(n, e.scheme)
		if model.LegacyValidation.IsValidMetricName(n) {
			return append(b, n...)
		}
	}
	b = append(b, '"')
	b = appendEscaped(b, n, true)
	return append(b, '"')
}

// float appends f as expfmt's writeFloat (text) or writeOpenMetricsFloat.
func (e *exposeEncoder) float(f float64) {
	switch {
	case f == 1:
		if e.om {
			e.b = append(e.b, "1.0"...)
		} else {
			e.b = append(e.b, '1')
		}
	case f == 0:
		if e.om {
			e.b = append(e.b, "0.0"...)
		} else {
			e.b = append(e.b, '0')
		}
	case f == -1:
		if e.om {
			e.b = append(e.b, "-1.0"...)
		} else {
			e.b = append(e.b, "-1"...)
		}
	case math.IsNaN(f):
		e.b = append(e.b, "NaN"...)
	case math.IsInf(f, +1):
		e.b = append(e.b, "+Inf"...)
	case math.IsInf(f, -1):
		e.b = append(e.b, "-Inf"...)
	default:
		start := len(e.b)
		e.b = strconv.AppendFloat(e.b, f, 'g', -1, 64)
		if e.om && !bytes.ContainsAny(e.b[start:], "e.") {
			e.b = append(e.b, '.', '0')
		}
	}
}

// count appends an integer count: OpenMetrics writes it as an integer, the
// text format as the float it converts to.
func (e *exposeEncoder) count(u uint64) {
	if e.om {
		e.b = strconv.AppendUint(e.b, u, 10)
		return
	}
	e.float(float64(u))
}

// appendEscaped appends s escaped as expfmt does: backslash and newline,
// and the double quote with quote.
func appendEscaped(b []byte, s string, quote bool) []byte {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\n' || c == '"' {
			clean = false
			break
		}
	}
	if clean {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '"':
			if quote {
				b = append(b, '\\', '"')
			} else {
				b = append(b, c)
			}
		default:
			b = append(b, c)
		}
	}
	return b
}
