package dispatcher

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// LocalPushSeriesLimit bounds the series the local push endpoint stores
// (all groups together); a push beyond it is rejected with 400.
const LocalPushSeriesLimit = 1000

// localPushMaxBodyBytes bounds a local push body after decompression.
const localPushMaxBodyBytes = 4 << 20

// LocalPush is the extension's local push endpoint: the Pushgateway push
// API (PUT, POST and DELETE on /metrics/job/<job>{/<label>/<value>}), so a
// function can push its own metrics with any Prometheus client library.
//
// A function's registry lives across warm invocations, so what it pushes is
// cumulative: LocalPush keeps the latest pushed state of every series and is
// a Gatherer the custom Pusher gathers together with the EMF metrics (see
// CombineGatherers), so deltas() turns counters, histograms, summaries and
// untyped series into increments (a value going down, or a changed created
// timestamp, is a reset) and gauges replace.
//
// Series labels: the pushed labels, the grouping labels of the push path
// (job becomes exported_job: the gateway's own grouping label job is the
// function name), and function_name, function_version and region. Pushed
// labels with those names become exported_<name>. A pushed clearmode or
// clear_mode label passes through to the gateway.
//
// PUT makes the pushed families the group's whole family set, POST replaces
// the pushed families within the group. DELETE and PUT drop the gauges they
// remove; counters, histograms, summaries and untyped series stay at their
// last pushed value, so what was pushed is counted once, never lost, and a
// later push of the same series continues from there.
//
// Safe for concurrent use.
type LocalPush struct {
	constLabels []*dto.LabelPair // sorted

	mu     sync.Mutex
	groups map[string]*localGroup // by grouping key
	series int                    // stored, all groups
}

type localGroup struct {
	key      string
	families map[string]*dto.MetricFamily // prepared: labels complete and sorted
}

// NewLocalPush returns an empty local push store whose series carry l.
func NewLocalPush(l Labels) *LocalPush {
	return &LocalPush{
		constLabels: []*dto.LabelPair{
			{Name: proto.String("function_name"), Value: proto.String(l.FunctionName)},
			{Name: proto.String("function_version"), Value: proto.String(l.FunctionVersion)},
			{Name: proto.String("region"), Value: proto.String(l.Region)},
		},
		groups: map[string]*localGroup{},
	}
}

// ServeHTTP serves the push API under /metrics/.
func (lp *LocalPush) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), "/metrics")
	if !ok || path == "" || path == "/" {
		http.Error(w, "push to /metrics/job/<job>{/<label>/<value>}", http.StatusNotFound)
		return
	}
	grouping, err := pushbody.ParseGroupingPath(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		fams, err := pushbody.DecodeBody(r.Body, r.Header, localPushMaxBodyBytes)
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			case errors.Is(err, pushbody.ErrUnsupportedMediaType):
				http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
			default:
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
			return
		}
		if err := lp.Push(grouping, fams, r.Method == http.MethodPut); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		lp.Delete(grouping)
		w.WriteHeader(http.StatusAccepted)
	default:
		w.Header().Set("Allow", "PUT, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// Push stores fams as the latest cumulative state of the group: with
// replace (PUT) they become its whole family set, otherwise (POST) they
// replace the families of the same names. Nothing is stored when it fails.
func (lp *LocalPush) Push(grouping map[string]string, fams []*dto.MetricFamily, replace bool) error {
	group := groupLabels(grouping)
	prepared := make(map[string]*dto.MetricFamily, len(fams))
	for _, mf := range fams {
		if localPushSkipped(mf.GetName()) {
			continue
		}
		p, err := lp.prepare(group, mf)
		if err != nil {
			return err
		}
		prepared[p.GetName()] = p
	}
	key := labelsKeyOf(group)

	lp.mu.Lock()
	defer lp.mu.Unlock()
	for name, mf := range prepared {
		for k, g := range lp.groups {
			if other := g.families[name]; other != nil && k != key && other.GetType() != mf.GetType() {
				return fmt.Errorf("metric %s: pushed as %s, but another group holds it as %s",
					name, strings.ToLower(mf.GetType().String()), strings.ToLower(other.GetType().String()))
			}
		}
	}
	old := lp.groups[key]
	next := map[string]*dto.MetricFamily{}
	if old != nil {
		for name, mf := range old.families {
			if _, repushed := prepared[name]; repushed {
				continue
			}
			if replace {
				if mf = cumulativeOnly(mf); mf == nil {
					continue
				}
			}
			next[name] = mf
		}
	}
	for name, mf := range prepared {
		if old != nil && old.families[name] != nil {
			mf = keepCumulative(old.families[name], mf)
		}
		next[name] = mf
	}
	n := lp.series - countSeries(old) + countFamilies(next)
	if n > LocalPushSeriesLimit {
		return fmt.Errorf("series limit reached: this push would make %d series, at most %d are kept (DELETE or PUT groups to free room)", n, LocalPushSeriesLimit)
	}
	lp.series = n
	lp.groups[key] = &localGroup{key: key, families: next}
	return nil
}

// Delete drops the group's gauges; its counters, histograms, summaries and
// untyped series keep their last value (see LocalPush).
func (lp *LocalPush) Delete(grouping map[string]string) {
	key := labelsKeyOf(groupLabels(grouping))
	lp.mu.Lock()
	defer lp.mu.Unlock()
	g := lp.groups[key]
	if g == nil {
		return
	}
	lp.series -= countSeries(g)
	next := map[string]*dto.MetricFamily{}
	for name, mf := range g.families {
		if mf = cumulativeOnly(mf); mf != nil {
			next[name] = mf
		}
	}
	if len(next) == 0 {
		delete(lp.groups, key)
		return
	}
	g.families = next
	lp.series += countSeries(g)
}

// Gather returns the stored families, merged across groups, sorted by name.
// Stored metrics are never modified, so they are shared, not copied.
func (lp *LocalPush) Gather() ([]*dto.MetricFamily, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	keys := make([]string, 0, len(lp.groups))
	for k := range lp.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	byName := map[string]*dto.MetricFamily{}
	seen := map[string]bool{}
	for _, k := range keys {
		for name, mf := range lp.groups[k].families {
			out := byName[name]
			if out == nil {
				out = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				byName[name] = out
			}
			for _, m := range mf.Metric {
				sk := seriesKey(name, m.Label)
				if !seen[sk] { // the same series from two groups: the first group's
					seen[sk] = true
					out.Metric = append(out.Metric, m)
				}
			}
		}
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

// CombineGatherers gathers primary (the EMF metrics, Metrics.CustomGatherer)
// and then local; a local family whose name primary already has is left
// out, so a function's push cannot break the batches of its EMF metrics.
// (Platform names are reserved: LocalPush rejects them.)
func CombineGatherers(primary, local prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := primary.Gather()
		if err != nil {
			return fams, err
		}
		lf, _ := local.Gather() // LocalPush.Gather never fails
		if len(lf) == 0 {
			return fams, nil
		}
		names := make(map[string]bool, len(fams))
		for _, mf := range fams {
			names[mf.GetName()] = true
		}
		for _, mf := range lf {
			if !names[mf.GetName()] {
				fams = append(fams, mf)
			}
		}
		return fams, nil
	})
}

// localPushSkipped tells families a client library pushes by default that
// describe its own runtime (Go's default registry), which the gateway owns
// for itself: they are ignored, not rejected.
func localPushSkipped(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// groupLabels turns grouping labels into series labels: job becomes
// exported_job, since the gateway's grouping label job (the function name)
// would overwrite it, and the extension's constant labels likewise become
// exported_<name>.
func groupLabels(grouping map[string]string) map[string]string {
	out := make(map[string]string, len(grouping))
	for n, v := range grouping {
		out[localLabelName(n)] = v
	}
	return out
}

// localLabelName renames labels the pipeline sets itself.
func localLabelName(n string) string {
	switch n {
	case "job", "function_name", "function_version", "region":
		return "exported_" + n
	}
	return n
}

func labelsKeyOf(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0xff)
		b.WriteString(labels[n])
		b.WriteByte(0xfe)
	}
	return b.String()
}

// checkClearmode accepts the pushed clear modes that make sense for a type
// whose values go to the gateway as deltas (counters, histograms, summaries,
// untyped: aggregate) or as values (gauges), in the gateway's grammar
// (internal/clearmode), so the gateway never rejects what is accepted here.
func checkClearmode(typ dto.MetricType, v string) error {
	kind, _, err := clearmode.Parse(v)
	if err != nil {
		return err
	}
	if typ != dto.MetricType_GAUGE {
		if kind == clearmode.Aggregate {
			return nil
		}
		return fmt.Errorf("clearmode %q: a %s is pushed on as increments, only aggregate applies", v, strings.ToLower(typ.String()))
	}
	if kind == clearmode.Aggregate {
		return fmt.Errorf("clearmode %q: a gauge is pushed on with every batch, adding it up would count it again and again", v)
	}
	return nil
}

// prepare validates a pushed family as the gateway would and returns it with
// complete, sorted labels.
func (lp *LocalPush) prepare(group map[string]string, mf *dto.MetricFamily) (*dto.MetricFamily, error) {
	name := mf.GetName()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("metric %s: %s", name, fmt.Sprintf(format, args...))
	}
	if !model.UTF8Validation.IsValidMetricName(name) {
		return nil, fmt.Errorf("invalid metric name %q", name)
	}
	for _, p := range emfReservedPrefixes {
		if strings.HasPrefix(name, p) {
			return nil, bad("the prefix %s is reserved for the platform metrics and the gateway", p)
		}
	}
	if emfReservedNames[name] {
		return nil, bad("the name is reserved for the gateway")
	}
	typ := mf.GetType()
	switch typ {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED,
		dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
	default:
		return nil, bad("unsupported metric type %s", typ)
	}
	out := &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: make([]*dto.Metric, 0, len(mf.Metric))}
	seen := map[string]bool{}
	families := 0
	for _, m := range mf.Metric {
		if m.TimestampMs != nil {
			return nil, bad("pushed metrics must not carry timestamps")
		}
		labels := make(map[string]string, len(m.Label)+len(group)+3)
		mode := ""
		for _, l := range m.Label {
			ln, lv := l.GetName(), l.GetValue()
			if err := pushbody.CheckLabelName(ln); err != nil {
				return nil, bad("%v", err)
			}
			if !model.LabelValue(lv).IsValid() {
				return nil, bad("label %q: value is not valid UTF-8", ln)
			}
			if (ln == model.BucketLabel && typ == dto.MetricType_HISTOGRAM) || (ln == model.QuantileLabel && typ == dto.MetricType_SUMMARY) {
				return nil, bad("label %q is reserved in a %s", ln, strings.ToLower(typ.String()))
			}
			if ln == ClearmodeLabel || ln == clearmodeLabelAlt {
				if mode != "" {
					return nil, bad("both %s and %s labels given", ClearmodeLabel, clearmodeLabelAlt)
				}
				if err := checkClearmode(typ, lv); err != nil {
					return nil, bad("%v", err)
				}
				mode = lv
				if lv == "family" || lv == "info" {
					families++
				}
			}
			ln = localLabelName(ln)
			if _, dup := labels[ln]; dup {
				return nil, bad("label %q given twice", ln)
			}
			if lv != "" {
				labels[ln] = lv
			}
		}
		for n, v := range group { // grouping labels win, as at the gateway
			labels[n] = v
		}
		for _, c := range lp.constLabels {
			labels[c.GetName()] = c.GetValue()
		}
		if err := checkValue(typ, m); err != nil {
			return nil, bad("%v", err)
		}
		pairs := make([]*dto.LabelPair, 0, len(labels))
		for n, v := range labels {
			pairs = append(pairs, &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)})
		}
		slices.SortFunc(pairs, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		id := seriesKey(name, withoutClearmode(pairs))
		if seen[id] {
			return nil, bad("series pushed twice (labels are compared without the clear mode label)")
		}
		seen[id] = true
		c := proto.Clone(m).(*dto.Metric)
		c.Label = pairs
		out.Metric = append(out.Metric, c)
	}
	if families > 0 && families < len(out.Metric) {
		return nil, bad("clearmode family mixed with other clear modes in one family")
	}
	return out, nil
}

func withoutClearmode(ls []*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(ls))
	for _, l := range ls {
		if l.GetName() != ClearmodeLabel && l.GetName() != clearmodeLabelAlt {
			out = append(out, l)
		}
	}
	return out
}

// checkValue rejects values the gateway would reject or cannot merge.
func checkValue(typ dto.MetricType, m *dto.Metric) error {
	switch typ {
	case dto.MetricType_COUNTER:
		if m.Counter == nil {
			return errors.New("counter without a counter value")
		}
		if v := m.Counter.GetValue(); !(v >= 0) || math.IsInf(v, 1) {
			return fmt.Errorf("counter value %v must be finite and ≥ 0", v)
		}
	case dto.MetricType_GAUGE:
		if m.Gauge == nil {
			return errors.New("gauge without a gauge value")
		}
	case dto.MetricType_UNTYPED:
		if m.Untyped == nil {
			return errors.New("untyped metric without an untyped value")
		}
		if v := m.Untyped.GetValue(); math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("untyped value %v must be finite (it is pushed on as increments)", v)
		}
	case dto.MetricType_HISTOGRAM:
		h := m.Histogram
		if h == nil {
			return errors.New("histogram without a histogram value")
		}
		count := h.GetSampleCount()
		var prevBound = math.Inf(-1)
		var prevCount uint64
		for i, b := range h.GetBucket() {
			ub, c := b.GetUpperBound(), b.GetCumulativeCount()
			if math.IsNaN(ub) {
				return errors.New("histogram bucket with upper bound NaN")
			}
			if i > 0 && ub <= prevBound {
				return fmt.Errorf("histogram buckets not in increasing order at le=%v", ub)
			}
			if c < prevCount {
				return fmt.Errorf("histogram bucket counts are not cumulative at le=%v", ub)
			}
			if c > count {
				return fmt.Errorf("histogram bucket le=%v count %d exceeds sample count %d", ub, c, count)
			}
			if math.IsInf(ub, 1) && c != count {
				return fmt.Errorf("histogram +Inf bucket count %d differs from sample count %d", c, count)
			}
			prevBound, prevCount = ub, c
		}
	case dto.MetricType_SUMMARY:
		s := m.Summary
		if s == nil {
			return errors.New("summary without a summary value")
		}
		for _, q := range s.GetQuantile() {
			if !(q.GetQuantile() >= 0 && q.GetQuantile() <= 1) {
				return fmt.Errorf("summary quantile %v is outside [0, 1]", q.GetQuantile())
			}
		}
	}
	return nil
}

// cumulativeOnly returns mf if its series are cumulative (everything but
// gauges), nil for gauges.
func cumulativeOnly(mf *dto.MetricFamily) *dto.MetricFamily {
	if mf.GetType() == dto.MetricType_GAUGE {
		return nil
	}
	return mf
}

// keepCumulative returns the new family plus the cumulative series of the
// old one that the new push does not mention (they stay at their last
// value, see LocalPush); gauges are replaced as a whole.
func keepCumulative(old, cur *dto.MetricFamily) *dto.MetricFamily {
	if cur.GetType() == dto.MetricType_GAUGE || old.GetType() != cur.GetType() {
		return cur
	}
	have := make(map[string]bool, len(cur.Metric))
	for _, m := range cur.Metric {
		have[seriesKey("", withoutClearmode(m.Label))] = true
	}
	var kept []*dto.Metric
	for _, m := range old.Metric {
		if !have[seriesKey("", withoutClearmode(m.Label))] {
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		return cur
	}
	out := &dto.MetricFamily{Name: cur.Name, Help: cur.Help, Type: cur.Type, Metric: append(slices.Clip(cur.Metric), kept...)}
	return out
}

func countSeries(g *localGroup) int {
	if g == nil {
		return 0
	}
	return countFamilies(g.families)
}

func countFamilies(fams map[string]*dto.MetricFamily) int {
	n := 0
	for _, mf := range fams {
		n += len(mf.Metric)
	}
	return n
}
