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
	"unicode/utf8"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
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
	constLabels []family.Label // sorted

	mu     sync.Mutex
	groups map[string]*localGroup // by grouping key
	series int                    // stored, all groups
}

type localGroup struct {
	key      string
	families map[string]*family.Family // prepared: labels complete and sorted
}

// NewLocalPush returns an empty local push store whose series carry l.
func NewLocalPush(l Labels) *LocalPush {
	return &LocalPush{
		constLabels: constLabels(l),
		groups:      map[string]*localGroup{},
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
func (lp *LocalPush) Push(grouping map[string]string, fams []family.Family, replace bool) error {
	group := groupLabels(grouping)
	prepared := make(map[string]*family.Family, len(fams))
	for i := range fams {
		if localPushSkipped(fams[i].Name) {
			continue
		}
		p, err := lp.prepare(group, &fams[i])
		if err != nil {
			return err
		}
		prepared[p.Name] = p
	}
	key := labelsKeyOf(group)

	lp.mu.Lock()
	defer lp.mu.Unlock()
	for name, mf := range prepared {
		for k, g := range lp.groups {
			if other := g.families[name]; other != nil && k != key && other.Type != mf.Type {
				return fmt.Errorf("metric %s: pushed as %s, but another group holds it as %s",
					name, mf.Type, other.Type)
			}
		}
	}
	old := lp.groups[key]
	next := map[string]*family.Family{}
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
	next := map[string]*family.Family{}
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
// Stored metrics are never modified, so their label, bucket and quantile
// slices are shared, not copied.
func (lp *LocalPush) Gather() []family.Family {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	keys := make([]string, 0, len(lp.groups))
	for k := range lp.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	byName := map[string]*family.Family{}
	seen := map[string]bool{}
	for _, k := range keys {
		for name, mf := range lp.groups[k].families {
			out := byName[name]
			if out == nil {
				out = &family.Family{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				byName[name] = out
			}
			for _, m := range mf.Metrics {
				sk := seriesKey(name, m.Labels)
				if !seen[sk] { // the same series from two groups: the first group's
					seen[sk] = true
					out.Metrics = append(out.Metrics, m)
				}
			}
		}
	}
	out := make([]family.Family, 0, len(byName))
	for _, mf := range byName {
		out = append(out, *mf)
	}
	slices.SortFunc(out, func(a, b family.Family) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// CombineGatherers gathers primary (the EMF metrics, Metrics.CustomGatherer)
// and then local; a local family whose name primary already has is left
// out, so a function's push cannot break the batches of its EMF metrics.
// (Platform names are reserved: LocalPush rejects them.) The result is
// sorted by name.
func CombineGatherers(primary, local Gatherer) Gatherer {
	return GathererFunc(func() []family.Family {
		fams := primary.Gather()
		lf := local.Gather()
		if len(lf) == 0 {
			return fams
		}
		names := make(map[string]bool, len(fams))
		for i := range fams {
			names[fams[i].Name] = true
		}
		for i := range lf {
			if !names[lf[i].Name] {
				fams = append(fams, lf[i])
			}
		}
		slices.SortStableFunc(fams, func(a, b family.Family) int { return strings.Compare(a.Name, b.Name) })
		return fams
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
func checkClearmode(typ family.Type, v string) error {
	kind, _, err := clearmode.Parse(v)
	if err != nil {
		return err
	}
	if typ != family.Gauge {
		if kind == clearmode.Aggregate {
			return nil
		}
		return fmt.Errorf("clearmode %q: a %s is pushed on as increments, only aggregate applies", v, typ)
	}
	if kind == clearmode.Aggregate {
		return fmt.Errorf("clearmode %q: a gauge is pushed on with every batch, adding it up would count it again and again", v)
	}
	return nil
}

// prepare validates a pushed family as the gateway would and returns it with
// complete, sorted labels.
func (lp *LocalPush) prepare(group map[string]string, mf *family.Family) (*family.Family, error) {
	name := mf.Name
	bad := func(format string, args ...any) error {
		return fmt.Errorf("metric %s: %s", name, fmt.Sprintf(format, args...))
	}
	if name == "" || !utf8.ValidString(name) {
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
	typ := mf.Type
	switch typ {
	case family.Counter, family.Gauge, family.Untyped, family.Histogram, family.Summary:
	default:
		return nil, bad("unsupported metric type %s", strings.ToUpper(typ.String()))
	}
	out := &family.Family{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metrics: make([]family.Metric, 0, len(mf.Metrics))}
	seen := map[string]bool{}
	families := 0
	for mi := range mf.Metrics {
		m := &mf.Metrics[mi]
		if m.HasTimestamp {
			return nil, bad("pushed metrics must not carry timestamps")
		}
		labels := make(map[string]string, len(m.Labels)+len(group)+3)
		mode := ""
		for _, l := range m.Labels {
			ln, lv := l.Name, l.Value
			if err := pushbody.CheckLabelName(ln); err != nil {
				return nil, bad("%v", err)
			}
			if !utf8.ValidString(lv) {
				return nil, bad("label %q: value is not valid UTF-8", ln)
			}
			if (ln == "le" && typ == family.Histogram) || (ln == "quantile" && typ == family.Summary) {
				return nil, bad("label %q is reserved in a %s", ln, typ)
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
			labels[c.Name] = c.Value
		}
		if err := checkValue(typ, m); err != nil {
			return nil, bad("%v", err)
		}
		pairs := make([]family.Label, 0, len(labels))
		for n, v := range labels {
			pairs = append(pairs, family.Label{Name: n, Value: v})
		}
		sortLabels(pairs)
		id := seriesKey(name, withoutClearmode(pairs))
		if seen[id] {
			return nil, bad("series pushed twice (labels are compared without the clear mode label)")
		}
		seen[id] = true
		c := *m
		c.Labels = pairs
		c.Buckets, c.Quantiles = slices.Clone(m.Buckets), slices.Clone(m.Quantiles)
		out.Metrics = append(out.Metrics, c)
	}
	if families > 0 && families < len(out.Metrics) {
		return nil, bad("clearmode family mixed with other clear modes in one family")
	}
	return out, nil
}

// checkValue rejects values the gateway would reject or cannot merge.
func checkValue(typ family.Type, m *family.Metric) error {
	switch typ {
	case family.Counter:
		if v := m.Value; !(v >= 0) || math.IsInf(v, 1) {
			return fmt.Errorf("counter value %v must be finite and ≥ 0", v)
		}
	case family.Untyped:
		if v := m.Value; math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("untyped value %v must be finite (it is pushed on as increments)", v)
		}
	case family.Histogram:
		count := m.Count
		var prevBound = math.Inf(-1)
		var prevCount float64
		for i, b := range m.Buckets {
			ub, c := b.UpperBound, b.Count
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
				return fmt.Errorf("histogram bucket le=%v count %v exceeds sample count %v", ub, c, count)
			}
			if math.IsInf(ub, 1) && c != count {
				return fmt.Errorf("histogram +Inf bucket count %v differs from sample count %v", c, count)
			}
			prevBound, prevCount = ub, c
		}
	case family.Summary:
		for _, q := range m.Quantiles {
			if !(q.Quantile >= 0 && q.Quantile <= 1) {
				return fmt.Errorf("summary quantile %v is outside [0, 1]", q.Quantile)
			}
		}
	}
	return nil
}

// cumulativeOnly returns mf if its series are cumulative (everything but
// gauges), nil for gauges.
func cumulativeOnly(mf *family.Family) *family.Family {
	if mf.Type == family.Gauge {
		return nil
	}
	return mf
}

// keepCumulative returns the new family plus the cumulative series of the
// old one that the new push does not mention (they stay at their last
// value, see LocalPush); gauges are replaced as a whole.
func keepCumulative(old, cur *family.Family) *family.Family {
	if cur.Type == family.Gauge || old.Type != cur.Type {
		return cur
	}
	have := make(map[string]bool, len(cur.Metrics))
	for _, m := range cur.Metrics {
		have[seriesKey("", withoutClearmode(m.Labels))] = true
	}
	var kept []family.Metric
	for _, m := range old.Metrics {
		if !have[seriesKey("", withoutClearmode(m.Labels))] {
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		return cur
	}
	return &family.Family{Name: cur.Name, Help: cur.Help, Type: cur.Type, Metrics: append(slices.Clip(cur.Metrics), kept...)}
}

func countSeries(g *localGroup) int {
	if g == nil {
		return 0
	}
	return countFamilies(g.families)
}

func countFamilies(fams map[string]*family.Family) int {
	n := 0
	for _, mf := range fams {
		n += len(mf.Metrics)
	}
	return n
}
