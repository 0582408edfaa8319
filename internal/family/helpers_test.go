package family

import (
	"fmt"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// toDTO is the dto.MetricFamily AppendDelimited's rules describe for f,
// written independently of the encoder.
func toDTO(f *Family) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: proto.String(f.Name), Type: dto.MetricType(f.Type).Enum()}
	if f.Help != "" {
		mf.Help = proto.String(f.Help)
	}
	created := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	for _, m := range f.Metrics {
		dm := &dto.Metric{}
		for _, l := range m.Labels {
			dm.Label = append(dm.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
		}
		switch f.Type {
		case Counter:
			dm.Counter = &dto.Counter{Value: proto.Float64(m.Value), CreatedTimestamp: created(m.Created)}
		case Gauge:
			dm.Gauge = &dto.Gauge{Value: proto.Float64(m.Value)}
		case Untyped:
			dm.Untyped = &dto.Untyped{Value: proto.Float64(m.Value)}
		case Summary:
			s := &dto.Summary{SampleCount: proto.Uint64(clampUint64(m.Count)), SampleSum: proto.Float64(m.Sum), CreatedTimestamp: created(m.Created)}
			for _, q := range m.Quantiles {
				s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(q.Quantile), Value: proto.Float64(q.Value)})
			}
			dm.Summary = s
		case Histogram, GaugeHistogram:
			h := &dto.Histogram{SampleSum: proto.Float64(m.Sum)}
			if u, ok := wholeCount(m.Count); ok {
				h.SampleCount = proto.Uint64(u)
			} else {
				h.SampleCountFloat = proto.Float64(m.Count)
			}
			for _, b := range m.Buckets {
				db := &dto.Bucket{UpperBound: proto.Float64(b.UpperBound)}
				if u, ok := wholeCount(b.Count); ok {
					db.CumulativeCount = proto.Uint64(u)
				} else {
					db.CumulativeCountFloat = proto.Float64(b.Count)
				}
				h.Bucket = append(h.Bucket, db)
			}
			if f.Type == Histogram {
				h.CreatedTimestamp = created(m.Created)
			}
			dm.Histogram = h
		}
		if m.HasTimestamp {
			dm.TimestampMs = proto.Int64(m.TimestampMs)
		}
		mf.Metric = append(mf.Metric, dm)
	}
	return mf
}

// fromDTO is how metrics.proto says to read mf into a Family, written
// independently of the decoder. It assumes each metric has the value
// message of the family type.
func fromDTO(mf *dto.MetricFamily) Family {
	f := Family{Name: mf.GetName(), Help: mf.GetHelp(), Type: Type(mf.GetType())}
	created := func(ts *timestamppb.Timestamp) time.Time {
		if ts == nil {
			return time.Time{}
		}
		return time.Unix(ts.GetSeconds(), int64(ts.GetNanos())).UTC()
	}
	for _, dm := range mf.Metric {
		var m Metric
		for _, l := range dm.Label {
			m.Labels = append(m.Labels, Label{l.GetName(), l.GetValue()})
		}
		switch f.Type {
		case Counter:
			m.Value = dm.GetCounter().GetValue()
			m.Created = created(dm.GetCounter().GetCreatedTimestamp())
		case Gauge:
			m.Value = dm.GetGauge().GetValue()
		case Untyped:
			m.Value = dm.GetUntyped().GetValue()
		case Summary:
			s := dm.GetSummary()
			m.Count, m.Sum = float64(s.GetSampleCount()), s.GetSampleSum()
			for _, q := range s.GetQuantile() {
				m.Quantiles = append(m.Quantiles, Quantile{q.GetQuantile(), q.GetValue()})
			}
			m.Created = created(s.GetCreatedTimestamp())
		case Histogram, GaugeHistogram:
			h := dm.GetHistogram()
			m.Count, m.Sum = float64(h.GetSampleCount()), h.GetSampleSum()
			if h.GetSampleCountFloat() > 0 {
				m.Count = h.GetSampleCountFloat()
			}
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if b.GetCumulativeCountFloat() > 0 {
					c = b.GetCumulativeCountFloat()
				}
				m.Buckets = append(m.Buckets, Bucket{b.GetUpperBound(), c})
			}
			if f.Type == Histogram {
				m.Created = created(h.GetCreatedTimestamp())
			}
		}
		if dm.TimestampMs != nil {
			m.TimestampMs, m.HasTimestamp = dm.GetTimestampMs(), true
		}
		f.Metrics = append(f.Metrics, m)
	}
	return f
}

// marshalDelimitedDTO is protodelim.MarshalTo's output, deterministic.
func marshalDelimitedDTO(mf *dto.MetricFamily) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mf)
	if err != nil {
		panic(err)
	}
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

// diffFamily describes the first difference between a and b, "" if none.
// NaNs equal NaNs, nil slices equal empty ones, times compare with Equal.
func diffFamily(a, b *Family) string {
	if a.Name != b.Name || a.Help != b.Help || a.Type != b.Type {
		return fmt.Sprintf("header: %q %q %v != %q %q %v", a.Name, a.Help, a.Type, b.Name, b.Help, b.Type)
	}
	if len(a.Metrics) != len(b.Metrics) {
		return fmt.Sprintf("family %q: %d metrics != %d", a.Name, len(a.Metrics), len(b.Metrics))
	}
	for i := range a.Metrics {
		if d := diffMetric(&a.Metrics[i], &b.Metrics[i]); d != "" {
			return fmt.Sprintf("family %q metric %d: %s", a.Name, i, d)
		}
	}
	return ""
}

func feq(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

func diffMetric(a, b *Metric) string {
	if len(a.Labels) != len(b.Labels) {
		return fmt.Sprintf("labels %q != %q", a.Labels, b.Labels)
	}
	for i := range a.Labels {
		if a.Labels[i] != b.Labels[i] {
			return fmt.Sprintf("labels %q != %q", a.Labels, b.Labels)
		}
	}
	if !feq(a.Value, b.Value) || !feq(a.Count, b.Count) || !feq(a.Sum, b.Sum) {
		return fmt.Sprintf("value/count/sum %v/%v/%v != %v/%v/%v", a.Value, a.Count, a.Sum, b.Value, b.Count, b.Sum)
	}
	if len(a.Buckets) != len(b.Buckets) || len(a.Quantiles) != len(b.Quantiles) {
		return fmt.Sprintf("buckets/quantiles %v %v != %v %v", a.Buckets, a.Quantiles, b.Buckets, b.Quantiles)
	}
	for i := range a.Buckets {
		if !feq(a.Buckets[i].UpperBound, b.Buckets[i].UpperBound) || !feq(a.Buckets[i].Count, b.Buckets[i].Count) {
			return fmt.Sprintf("bucket %d: %v != %v", i, a.Buckets[i], b.Buckets[i])
		}
	}
	for i := range a.Quantiles {
		if !feq(a.Quantiles[i].Quantile, b.Quantiles[i].Quantile) || !feq(a.Quantiles[i].Value, b.Quantiles[i].Value) {
			return fmt.Sprintf("quantile %d: %v != %v", i, a.Quantiles[i], b.Quantiles[i])
		}
	}
	if !a.Created.Equal(b.Created) {
		return fmt.Sprintf("created %v != %v", a.Created, b.Created)
	}
	if a.HasTimestamp != b.HasTimestamp || a.TimestampMs != b.TimestampMs {
		return fmt.Sprintf("timestamp %v/%d != %v/%d", a.HasTimestamp, a.TimestampMs, b.HasTimestamp, b.TimestampMs)
	}
	return ""
}

// sampleFamilies covers every type, created timestamps (with and without
// nanos, before 1970, in a non-UTC zone), float counts, NaN and ±Inf
// values, empty help, UTF-8 labels, sample timestamps and many metrics.
func sampleFamilies() []Family {
	nan, inf := math.NaN(), math.Inf(1)
	zone := time.FixedZone("X", 5*3600)
	ct := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	many := make([]Metric, 1000)
	for i := range many {
		many[i] = Metric{Labels: []Label{{"i", itoa(int64(i))}, {"shard", "s" + itoa(int64(i%7))}}, Value: float64(i) * 1.5}
	}
	buckets := func(n int, frac float64) []Bucket {
		bs := make([]Bucket, n)
		for i := range bs {
			bs[i] = Bucket{UpperBound: math.Pow(2, float64(i-4)), Count: float64(i*i) + frac}
		}
		bs[n-1].UpperBound = inf
		return bs
	}
	return []Family{
		{Name: "requests_total", Help: "Requests served.", Type: Counter, Metrics: []Metric{
			{Labels: []Label{{"code", "200"}, {"method", "GET"}}, Value: 1027, Created: ct},
			{Labels: []Label{{"code", "500"}, {"method", "POST"}}, Value: 3, Created: time.Unix(1700000000, 0).In(zone)},
			{Labels: []Label{{"code", "404"}}, Value: 0},
			{Value: 1, Created: time.Date(1969, 7, 20, 20, 17, 40, 5, time.UTC)},
		}},
		{Name: "temperature", Type: Gauge, Metrics: []Metric{ // empty help
			{Labels: []Label{{"city", "Zürich"}, {"名前", "値 🌡"}}, Value: -3.25},
			{Labels: []Label{{"city", "nan"}}, Value: nan},
			{Labels: []Label{{"city", "inf"}}, Value: inf},
			{Labels: []Label{{"city", "-inf"}}, Value: -inf},
			{Labels: []Label{{"city", "-0"}}, Value: math.Copysign(0, -1)},
			{Labels: []Label{{"city", "ts"}}, Value: 1, TimestampMs: 1700000000123, HasTimestamp: true},
			{Labels: []Label{{"city", "old"}}, Value: 2, TimestampMs: -5, HasTimestamp: true},
			{Labels: []Label{{"", ""}}, Value: math.SmallestNonzeroFloat64},
		}},
		{Name: "up", Help: "Untyped with\nnewline and \\ backslash.", Type: Untyped, Metrics: []Metric{{Value: 1}}},
		{Name: "rpc_seconds", Help: "RPC latency.", Type: Summary, Metrics: []Metric{
			{Labels: []Label{{"svc", "a"}}, Count: 42, Sum: 12.5, Quantiles: []Quantile{{0.5, 0.2}, {0.9, 0.7}, {0.99, nan}}, Created: ct},
			{Labels: []Label{{"svc", "b"}}, Count: 0, Sum: 0},
			{Labels: []Label{{"svc", "big"}}, Count: 1 << 60, Sum: inf},
		}},
		{Name: "http_request_duration_seconds", Help: "Latency.", Type: Histogram, Metrics: []Metric{
			{Labels: []Label{{"handler", "/"}}, Count: 225, Sum: 53423.5, Buckets: buckets(16, 0), Created: ct},
			{Labels: []Label{{"handler", "/float"}}, Count: 225.5, Sum: -1, Buckets: buckets(5, 0.25)},
			{Labels: []Label{{"handler", "/empty"}}}, // no buckets, count 0
			{Labels: []Label{{"handler", "/huge"}}, Count: 1 << 63, Sum: nan, Buckets: []Bucket{{nan, 1 << 62}, {inf, 1 << 63}}},
		}},
		{Name: "queue_size", Help: "Gauge histogram.", Type: GaugeHistogram, Metrics: []Metric{
			{Count: 7.5, Sum: 30, Buckets: []Bucket{{1, 2.5}, {10, 7.5}}},
			{Count: 3, Sum: 3, Buckets: []Bucket{{1, 3}}, TimestampMs: 1, HasTimestamp: true},
		}},
		{Name: "many_series", Help: "Many.", Type: Gauge, Metrics: many},
		{Name: "no_metrics", Help: "none", Type: Counter},
		{Name: "", Type: Counter, Metrics: []Metric{{Value: 1}}},
	}
}
