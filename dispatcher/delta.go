package dispatcher

import (
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
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
	value   float64  // counter or gauge
	count   uint64   // histogram or summary sample count
	sum     float64  // histogram or summary sample sum
	buckets []uint64 // histogram cumulative bucket counts, in bucket order
	created int64    // created timestamp (Unix ns) of a counter, histogram or summary; 0 if none
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
func deltas(families []*dto.MetricFamily, acked snapshot) ([]*dto.MetricFamily, snapshot) {
	next := make(snapshot, len(acked))
	var out []*dto.MetricFamily
	var gauges []*dto.MetricFamily
	for _, mf := range families {
		var metrics []*dto.Metric
		for _, m := range mf.Metric {
			key := seriesKey(mf.GetName(), m.Label)
			if hasClearmode(m.Label) { // the same series whatever its clear mode says
				key = seriesKey(mf.GetName(), withoutClearmode(m.Label))
			}
			prev, known := acked[key]
			d := &dto.Metric{}
			mode := clearmodeAggregate
			switch mf.GetType() {
			case dto.MetricType_COUNTER, dto.MetricType_UNTYPED:
				v := m.GetCounter().GetValue()
				if mf.GetType() == dto.MetricType_UNTYPED {
					v = m.GetUntyped().GetValue()
				}
				cur := cumulative{value: v, created: createdOf(m.GetCounter().GetCreatedTimestamp())}
				next[key] = cur
				inc := v - prev.value
				if !known || v < prev.value || restarted(prev, cur) {
					inc = v
				}
				if inc == 0 {
					continue
				}
				if mf.GetType() == dto.MetricType_UNTYPED {
					d.Untyped = &dto.Untyped{Value: proto.Float64(inc)}
				} else {
					d.Counter = &dto.Counter{Value: proto.Float64(inc)}
				}
			case dto.MetricType_GAUGE:
				v := m.GetGauge().GetValue()
				next[key] = cumulative{value: v}
				mode = clearmodeReplace
				d.Gauge = &dto.Gauge{Value: proto.Float64(v)}
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				cur := cumulative{count: h.GetSampleCount(), sum: h.GetSampleSum(), buckets: make([]uint64, len(h.Bucket)),
					created: createdOf(h.GetCreatedTimestamp())}
				for i, b := range h.Bucket {
					cur.buckets[i] = b.GetCumulativeCount()
				}
				next[key] = cur
				if known && (cur.count < prev.count || len(prev.buckets) != len(cur.buckets) || restarted(prev, cur)) {
					known = false // restarted or re-bucketed: send everything
				}
				if !known {
					prev = cumulative{buckets: make([]uint64, len(cur.buckets))}
				}
				if cur.count == prev.count {
					continue
				}
				dh := &dto.Histogram{
					SampleCount: proto.Uint64(cur.count - prev.count),
					SampleSum:   proto.Float64(cur.sum - prev.sum),
					Bucket:      make([]*dto.Bucket, len(h.Bucket)),
				}
				for i, b := range h.Bucket {
					dh.Bucket[i] = &dto.Bucket{UpperBound: b.UpperBound, CumulativeCount: proto.Uint64(cur.buckets[i] - prev.buckets[i])}
				}
				d.Histogram = dh
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				cur := cumulative{count: s.GetSampleCount(), sum: s.GetSampleSum(), created: createdOf(s.GetCreatedTimestamp())}
				next[key] = cur
				if !known || cur.count < prev.count || restarted(prev, cur) {
					prev = cumulative{}
				}
				if cur.count == prev.count {
					continue
				}
				// Quantiles of one environment do not aggregate; only count and sum travel.
				d.Summary = &dto.Summary{SampleCount: proto.Uint64(cur.count - prev.count), SampleSum: proto.Float64(cur.sum - prev.sum)}
			default:
				continue
			}
			if hasClearmode(m.Label) {
				d.Label = m.Label // pushed with its own clear mode: passed through
			} else {
				d.Label = withLabel(m.Label, ClearmodeLabel, mode)
			}
			metrics = append(metrics, d)
		}
		if len(metrics) == 0 {
			continue
		}
		delta := &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: metrics}
		if mf.GetType() == dto.MetricType_GAUGE {
			gauges = append(gauges, delta)
		} else {
			out = append(out, delta)
		}
	}
	if len(out) == 0 {
		return nil, next
	}
	out = append(out, gauges...)
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, next
}

// createdOf returns a created timestamp in Unix nanoseconds, 0 if unset.
func createdOf(ts *timestamppb.Timestamp) int64 {
	if ts == nil {
		return 0
	}
	return ts.AsTime().UnixNano()
}

// restarted reports whether cur's created timestamp says the series started
// again since prev was acknowledged.
func restarted(prev, cur cumulative) bool {
	return prev.created != 0 && cur.created != 0 && prev.created != cur.created
}

// hasClearmode reports whether labels carry a clear mode label, in either
// spelling the gateway accepts.
func hasClearmode(labels []*dto.LabelPair) bool {
	for _, l := range labels {
		if n := l.GetName(); n == ClearmodeLabel || n == clearmodeLabelAlt {
			return true
		}
	}
	return false
}

// seriesKey identifies a series by family name and its (sorted) label pairs.
func seriesKey(name string, labels []*dto.LabelPair) string {
	var b strings.Builder
	b.WriteString(name)
	for _, l := range labels {
		b.WriteByte(0xff) // cannot occur in valid UTF-8 names or values
		b.WriteString(l.GetName())
		b.WriteByte(0xfe)
		b.WriteString(l.GetValue())
	}
	return b.String()
}

// withLabel returns labels plus name=value, kept sorted by name as the
// exposition formats expect.
func withLabel(labels []*dto.LabelPair, name, value string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(labels)+1)
	added := false
	for _, l := range labels {
		if !added && l.GetName() > name {
			out = append(out, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
			added = true
		}
		out = append(out, l)
	}
	if !added {
		out = append(out, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
	}
	return out
}
