package dispatcher

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// ClearmodeLabel is the label that tells the gateway how to merge a sample.
const ClearmodeLabel = clearmode.Label

// clearmodeLabelAlt is the other spelling of ClearmodeLabel the gateway reads.
const clearmodeLabelAlt = clearmode.LabelAlt

// Clearmode values the deltas carry. They restate the gateway's defaults
// for counters, histograms, summaries (aggregate) and gauges (replace), so
// the meaning does not depend on how a gateway is configured.
const (
	clearmodeAggregate = "aggregate"
	clearmodeReplace   = "replace"
)

// cumulative is the last acknowledged value of one series.
type cumulative struct {
	value   float64   // counter or gauge
	count   float64   // histogram or summary sample count
	sum     float64   // histogram or summary sample sum
	buckets []float64 // histogram cumulative bucket counts, in bucket order
	created int64     // created timestamp (Unix ns) of a counter, histogram or summary; 0 if none
}

// snapshot maps series (family name + label pairs) to cumulative values.
type snapshot map[string]cumulative

// deltas compares the gathered cumulative families with the acknowledged
// snapshot and returns what a push must carry — increments of counters,
// histograms and summaries, with the current value of gauges — together
// with the snapshot to acknowledge once that push succeeds.
//
// A value below its acknowledged one means the series restarted (a new
// execution environment has fresh counters, or a client reset its registry):
// the whole current value is then the increment. Gauges ride along only when
// something else changed, so an idle environment pushes nothing.
//
// A counter, histogram or summary whose created timestamp differs from the
// acknowledged one (both set) restarted too, even if its value did not drop.
//
// Every sample gets a clearmode label (aggregate for increments, replace for
// gauges) unless it carries one (clearmode or clear_mode, as pushed to the
// local push endpoint), which is kept as it is. Untyped series are treated as counters; native histogram fields
// are not pushed.
//
// families are not modified; the result shares their label slices.
func deltas(families []family.Family, acked snapshot) ([]family.Family, snapshot) {
	next := make(snapshot, len(acked))
	var out []family.Family
	var gauges []family.Family
	for fi := range families {
		mf := &families[fi]
		var metrics []family.Metric
		for mi := range mf.Metrics {
			m := &mf.Metrics[mi]
			pushedMode := hasClearmode(m.Labels)
			var key string
			if pushedMode { // the same series whatever its clear mode says
				key = seriesKey(mf.Name, withoutClearmode(m.Labels))
			} else {
				key = seriesKey(mf.Name, m.Labels)
			}
			prev, known := acked[key]
			var d family.Metric
			mode := clearmodeAggregate
			switch mf.Type {
			case family.Counter, family.Untyped:
				cur := cumulative{value: m.Value}
				if mf.Type == family.Counter {
					cur.created = createdOf(m.Created)
				}
				next[key] = cur
				inc := cur.value - prev.value
				if !known || cur.value < prev.value || restarted(prev, cur) {
					inc = cur.value
				}
				if inc == 0 {
					continue
				}
				d.Value = inc
			case family.Gauge:
				next[key] = cumulative{value: m.Value}
				mode = clearmodeReplace
				d.Value = m.Value
			case family.Histogram:
				cur := cumulative{count: m.Count, sum: m.Sum, buckets: make([]float64, len(m.Buckets)),
					created: createdOf(m.Created)}
				for i, b := range m.Buckets {
					cur.buckets[i] = b.Count
				}
				next[key] = cur
				if known && (cur.count < prev.count || len(prev.buckets) != len(cur.buckets) || restarted(prev, cur)) {
					known = false // restarted or re-bucketed: send everything
				}
				if !known {
					prev = cumulative{buckets: make([]float64, len(cur.buckets))}
				}
				if cur.count == prev.count {
					continue
				}
				d.Count, d.Sum = cur.count-prev.count, cur.sum-prev.sum
				d.Buckets = make([]family.Bucket, len(m.Buckets))
				for i, b := range m.Buckets {
					d.Buckets[i] = family.Bucket{UpperBound: b.UpperBound, Count: cur.buckets[i] - prev.buckets[i]}
				}
			case family.Summary:
				cur := cumulative{count: m.Count, sum: m.Sum, created: createdOf(m.Created)}
				next[key] = cur
				if !known || cur.count < prev.count || restarted(prev, cur) {
					prev = cumulative{}
				}
				if cur.count == prev.count {
					continue
				}
				// Quantiles of one environment do not aggregate; only count and sum travel.
				d.Count, d.Sum = cur.count-prev.count, cur.sum-prev.sum
			default:
				continue
			}
			if pushedMode {
				d.Labels = m.Labels // pushed with its own clear mode: passed through
			} else {
				d.Labels = withLabel(m.Labels, ClearmodeLabel, mode)
			}
			metrics = append(metrics, d)
		}
		if len(metrics) == 0 {
			continue
		}
		delta := family.Family{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metrics: metrics}
		if mf.Type == family.Gauge {
			gauges = append(gauges, delta)
		} else {
			out = append(out, delta)
		}
	}
	if len(out) == 0 {
		return nil, next
	}
	out = append(out, gauges...)
	slices.SortFunc(out, func(a, b family.Family) int { return strings.Compare(a.Name, b.Name) })
	return out, next
}

// createdOf returns a created time in Unix nanoseconds, 0 if unset.
func createdOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// restarted reports whether cur's created timestamp says the series started
// again since prev was acknowledged.
func restarted(prev, cur cumulative) bool {
	return prev.created != 0 && cur.created != 0 && prev.created != cur.created
}

// hasClearmode reports whether labels carry a clear mode label, in either
// spelling the gateway accepts.
func hasClearmode(labels []family.Label) bool {
	for _, l := range labels {
		if l.Name == ClearmodeLabel || l.Name == clearmodeLabelAlt {
			return true
		}
	}
	return false
}

// withoutClearmode returns labels without the clear mode labels.
func withoutClearmode(ls []family.Label) []family.Label {
	out := make([]family.Label, 0, len(ls))
	for _, l := range ls {
		if l.Name != ClearmodeLabel && l.Name != clearmodeLabelAlt {
			out = append(out, l)
		}
	}
	return out
}

// seriesKey identifies a series by family name and its (sorted) label pairs.
func seriesKey(name string, labels []family.Label) string {
	n := len(name)
	for _, l := range labels {
		n += 2 + len(l.Name) + len(l.Value)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(name)
	for _, l := range labels {
		b.WriteByte(0xff) // cannot occur in valid UTF-8 names or values
		b.WriteString(l.Name)
		b.WriteByte(0xfe)
		b.WriteString(l.Value)
	}
	return b.String()
}

// withLabel returns labels plus name=value, kept sorted by name as the
// exposition formats expect.
func withLabel(labels []family.Label, name, value string) []family.Label {
	out := make([]family.Label, 0, len(labels)+1)
	added := false
	for _, l := range labels {
		if !added && l.Name > name {
			out = append(out, family.Label{Name: name, Value: value})
			added = true
		}
		out = append(out, l)
	}
	if !added {
		out = append(out, family.Label{Name: name, Value: value})
	}
	return out
}
