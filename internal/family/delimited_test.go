package family

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// decodeAll decodes every message of b.
func decodeAll(t testing.TB, b []byte) []Family {
	t.Helper()
	d := NewDecoder(bytes.NewReader(b))
	var fams []Family
	for {
		var f Family
		err := d.Decode(&f)
		if err == io.EOF {
			return fams
		}
		if err != nil {
			t.Fatalf("Decode message %d: %v", len(fams), err)
		}
		fams = append(fams, f)
	}
}

// TestEncodeMatchesProtobuf checks that AppendDelimited writes the bytes the
// protobuf runtime writes for the equivalent dto, and that those bytes read
// back into that dto.
func TestEncodeMatchesProtobuf(t *testing.T) {
	for _, f := range sampleFamilies() {
		got := AppendDelimited(nil, &f)
		want := marshalDelimitedDTO(toDTO(&f))
		if !bytes.Equal(got, want) {
			t.Errorf("family %q: AppendDelimited\n%x\nwant (protobuf)\n%x", f.Name, got, want)
		}
		var mf dto.MetricFamily
		if err := protodelim.UnmarshalFrom(bufio.NewReader(bytes.NewReader(got)), &mf); err != nil {
			t.Fatalf("family %q: protodelim.UnmarshalFrom: %v", f.Name, err)
		}
		if !proto.Equal(&mf, toDTO(&f)) {
			t.Errorf("family %q: decoded by protobuf as\n%v\nwant\n%v", f.Name, &mf, toDTO(&f))
		}
	}
}

// TestEncodeAppends checks that AppendDelimited keeps b's content and
// grows it at most once.
func TestEncodeAppends(t *testing.T) {
	fams := sampleFamilies()
	b := []byte("prefix")
	b = AppendDelimited(b, &fams[0])
	if !bytes.HasPrefix(b, []byte("prefix")) || !bytes.Equal(b[6:], AppendDelimited(nil, &fams[0])) {
		t.Fatalf("AppendDelimited did not append: %x", b)
	}
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for i := range fams {
		f := &fams[i]
		if n := testing.AllocsPerRun(10, func() { AppendDelimited(nil, f) }); n > 1 {
			t.Errorf("family %q: %v allocations, want ≤ 1", f.Name, n)
		}
		buf := make([]byte, 0, 1<<20)
		if n := testing.AllocsPerRun(10, func() { AppendDelimited(buf, f) }); n != 0 {
			t.Errorf("family %q into a large buffer: %v allocations, want 0", f.Name, n)
		}
	}
}

// TestRoundTrip: Family → protobuf (dto, protodelim) → Decoder, and
// Family → AppendDelimited → Decoder, in one stream.
func TestRoundTrip(t *testing.T) {
	fams := sampleFamilies()
	var viaDTO bytes.Buffer
	var ours []byte
	for i := range fams {
		if _, err := protodelim.MarshalTo(&viaDTO, toDTO(&fams[i])); err != nil {
			t.Fatal(err)
		}
		ours = AppendDelimited(ours, &fams[i])
	}
	for name, b := range map[string][]byte{"protodelim": viaDTO.Bytes(), "AppendDelimited": ours} {
		got := decodeAll(t, b)
		if len(got) != len(fams) {
			t.Fatalf("%s: decoded %d families, want %d", name, len(got), len(fams))
		}
		for i := range fams {
			if d := diffFamily(&got[i], &fams[i]); d != "" {
				t.Errorf("%s: %s", name, d)
			}
			for _, m := range got[i].Metrics {
				if !m.Created.IsZero() && m.Created.Location() != time.UTC {
					t.Errorf("%s: Created %v not in UTC", name, m.Created)
				}
			}
		}
	}
}

// TestDecodeHandwrittenDTO decodes dto values written by hand rather than
// by toDTO, including fields the family model does not keep.
func TestDecodeHandwrittenDTO(t *testing.T) {
	ts := &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 5}
	created := time.Unix(1700000000, 5).UTC()
	ex := &dto.Exemplar{Label: []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String("abc")}}, Value: proto.Float64(1), Timestamp: ts}
	in := []*dto.MetricFamily{
		{Name: proto.String("c_total"), Help: proto.String("h"), Type: dto.MetricType_COUNTER.Enum(), Unit: proto.String("seconds"), Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("b")}}, Counter: &dto.Counter{Value: proto.Float64(2), Exemplar: ex, CreatedTimestamp: ts}},
			// A gauge value in a counter family is not the counter's value.
			{Counter: &dto.Counter{Value: proto.Float64(3)}, Gauge: &dto.Gauge{Value: proto.Float64(99)}, TimestampMs: proto.Int64(7)},
		}},
		// No type field: COUNTER, the proto2 default.
		{Name: proto.String("untyped_default"), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(4)}}}},
		{Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(10), SampleCountFloat: proto.Float64(10.5), SampleSum: proto.Float64(3),
				Bucket: []*dto.Bucket{
					{CumulativeCount: proto.Uint64(4), UpperBound: proto.Float64(1), Exemplar: ex},
					{CumulativeCount: proto.Uint64(9), CumulativeCountFloat: proto.Float64(9.5), UpperBound: proto.Float64(2)},
					{CumulativeCount: proto.Uint64(10), CumulativeCountFloat: proto.Float64(-1), UpperBound: proto.Float64(math.Inf(1))},
				},
				CreatedTimestamp: ts,
				Schema:           proto.Int32(3), ZeroThreshold: proto.Float64(1e-128), ZeroCount: proto.Uint64(1),
				PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(-2), Length: proto.Uint32(2)}}, PositiveDelta: []int64{1, -1},
				NegativeCount: []float64{1, 2}, Exemplars: []*dto.Exemplar{ex},
			}},
			// Native only: no classic buckets.
			{Histogram: &dto.Histogram{SampleCount: proto.Uint64(2), SampleSum: proto.Float64(1), Schema: proto.Int32(0), PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(1)}}, PositiveDelta: []int64{2}}},
		}},
		// Gauge histograms have no created timestamp in this model.
		{Name: proto.String("gh"), Type: dto.MetricType_GAUGE_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{SampleCountFloat: proto.Float64(1.5), Bucket: []*dto.Bucket{{CumulativeCountFloat: proto.Float64(1.5), UpperBound: proto.Float64(1)}}, CreatedTimestamp: ts}},
		}},
		{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum(), Metric: []*dto.Metric{
			{Summary: &dto.Summary{SampleCount: proto.Uint64(3), SampleSum: proto.Float64(6), Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(2)}}, CreatedTimestamp: &timestamppb.Timestamp{}}},
		}},
	}
	want := []Family{
		{Name: "c_total", Help: "h", Type: Counter, Metrics: []Metric{
			{Labels: []Label{{"a", "b"}}, Value: 2, Created: created},
			{Value: 3, TimestampMs: 7, HasTimestamp: true},
		}},
		{Name: "untyped_default", Type: Counter, Metrics: []Metric{{Value: 4}}},
		{Name: "h", Type: Histogram, Metrics: []Metric{
			{Count: 10.5, Sum: 3, Buckets: []Bucket{{1, 4}, {2, 9.5}, {math.Inf(1), 10}}, Created: created},
			{Count: 2, Sum: 1},
		}},
		{Name: "gh", Type: GaugeHistogram, Metrics: []Metric{{Count: 1.5, Buckets: []Bucket{{1, 1.5}}}}},
		{Name: "s", Type: Summary, Metrics: []Metric{{Count: 3, Sum: 6, Quantiles: []Quantile{{0.5, 2}}, Created: time.Unix(0, 0).UTC()}}},
	}
	var buf bytes.Buffer
	for _, mf := range in {
		if _, err := protodelim.MarshalTo(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	got := decodeAll(t, buf.Bytes())
	if len(got) != len(want) {
		t.Fatalf("decoded %d families, want %d", len(got), len(want))
	}
	for i := range want {
		if d := diffFamily(&got[i], &want[i]); d != "" {
			t.Error(d)
		}
	}
}

// TestDecodeAnyOrderAndMerge checks fields out of order (the type after the
// metrics) and repeated non-repeated fields (last wins, messages merge).
func TestDecodeAnyOrderAndMerge(t *testing.T) {
	var tsA, tsB, counter1, counter2, metric, fam []byte
	tsA = protowire.AppendTag(tsA, 1, protowire.VarintType)
	tsA = protowire.AppendVarint(tsA, 100)
	tsB = protowire.AppendTag(tsB, 2, protowire.VarintType)
	tsB = protowire.AppendVarint(tsB, 7)
	counter1 = appendFixed(counter1, 1, 1)
	counter1 = protowire.AppendTag(counter1, 3, protowire.BytesType)
	counter1 = protowire.AppendBytes(counter1, tsA)
	counter2 = appendFixed(counter2, 1, 2)
	counter2 = protowire.AppendTag(counter2, 3, protowire.BytesType)
	counter2 = protowire.AppendBytes(counter2, tsB)
	metric = protowire.AppendTag(metric, 3, protowire.BytesType)
	metric = protowire.AppendBytes(metric, counter1)
	metric = protowire.AppendTag(metric, 6, protowire.VarintType)
	metric = protowire.AppendVarint(metric, 1)
	metric = appendString(metric, 99, "unknown field")
	metric = protowire.AppendTag(metric, 3, protowire.BytesType)
	metric = protowire.AppendBytes(metric, counter2)
	metric = protowire.AppendTag(metric, 1, protowire.BytesType)
	metric = protowire.AppendBytes(metric, appendString(appendString(nil, 2, "v"), 1, "n"))
	fam = appendString(fam, 1, "first")
	fam = protowire.AppendTag(fam, 4, protowire.BytesType)
	fam = protowire.AppendBytes(fam, metric)
	fam = protowire.AppendTag(fam, 3, protowire.VarintType)
	fam = protowire.AppendVarint(fam, uint64(Gauge))
	fam = protowire.AppendTag(fam, 3, protowire.VarintType)
	fam = protowire.AppendVarint(fam, uint64(Counter))
	fam = appendString(fam, 1, "last")
	fam = protowire.AppendTag(fam, 50, protowire.Fixed32Type)
	fam = protowire.AppendFixed32(fam, 1)
	msg := protowire.AppendBytes(nil, fam)

	got := decodeAll(t, msg)
	want := Family{Name: "last", Type: Counter, Metrics: []Metric{{
		Labels: []Label{{"n", "v"}}, Value: 2, Created: time.Unix(100, 7).UTC(), TimestampMs: 1, HasTimestamp: true,
	}}}
	if len(got) != 1 {
		t.Fatalf("decoded %d families", len(got))
	}
	if d := diffFamily(&got[0], &want); d != "" {
		t.Error(d)
	}
	// The protobuf runtime agrees.
	var mf dto.MetricFamily
	if err := protodelim.UnmarshalFrom(bufio.NewReader(bytes.NewReader(msg)), &mf); err != nil {
		t.Fatal(err)
	}
	if viaDTO := fromDTO(&mf); diffFamily(&viaDTO, &want) != "" {
		t.Errorf("protobuf disagrees: %s", diffFamily(&viaDTO, &want))
	}
}

// TestDecodeDoesNotAlias checks that decoded families do not share memory
// with the decoder's buffers.
func TestDecodeDoesNotAlias(t *testing.T) {
	fams := sampleFamilies()
	var b []byte
	for i := range fams {
		b = AppendDelimited(b, &fams[i])
	}
	got := decodeAll(t, b)
	for i := range got {
		if d := diffFamily(&got[i], &fams[i]); d != "" {
			t.Fatalf("decoded families changed by later decoding: %s", d)
		}
	}
}

// TestClientGolang decodes what client_golang and expfmt write.
func TestClientGolang(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "plain_total", Help: "A counter."})
	c.Add(3.5)
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "labelled_total", Help: "Counter vec."}, []string{"code", "path"})
	cv.WithLabelValues("200", "/ü").Inc()
	cv.WithLabelValues("500", "/x").Add(2)
	ce := prometheus.NewCounter(prometheus.CounterOpts{Name: "exemplar_total", Help: "With exemplar."})
	ce.(prometheus.ExemplarAdder).AddWithExemplar(1, prometheus.Labels{"trace_id": "abc"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "A gauge."})
	g.Set(math.Inf(-1))
	gv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gv", Help: "Gauge vec."}, []string{"x"})
	gv.WithLabelValues("a").Set(1)
	gv.WithLabelValues("b").Set(math.NaN())
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "Histogram.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hv_seconds", Help: "Histogram vec."}, []string{"m"})
	nh := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "native_seconds", Help: "Native and classic.", NativeHistogramBucketFactor: 1.1})
	for i := range 1000 {
		v := float64(i) / 300
		h.Observe(v)
		hv.WithLabelValues("GET").Observe(v)
		nh.Observe(v)
	}
	hv.WithLabelValues("PUT") // no observations
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "s_seconds", Help: "Summary.", Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}})
	sv := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "sv_seconds", Help: "Summary vec."}, []string{"q"})
	for i := range 100 {
		s.Observe(float64(i))
		sv.WithLabelValues("z").Observe(float64(i))
	}
	u := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "u", Help: "Untyped."}, func() float64 { return 42 })
	reg.MustRegister(c, cv, ce, g, gv, h, hv, nh, s, sv, u)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	got := decodeAll(t, buf.Bytes())
	if len(got) != len(mfs) {
		t.Fatalf("decoded %d families, want %d", len(got), len(mfs))
	}
	createdSeen := false
	for i, mf := range mfs {
		want := fromDTO(mf)
		if d := diffFamily(&got[i], &want); d != "" {
			t.Errorf("%s", d)
		}
		for _, m := range got[i].Metrics {
			createdSeen = createdSeen || !m.Created.IsZero()
		}
		// Re-encoded, the families read back by protobuf as client_golang
		// wrote them, less what the model drops.
		var back dto.MetricFamily
		if err := protodelim.UnmarshalFrom(bufio.NewReader(bytes.NewReader(AppendDelimited(nil, &got[i]))), &back); err != nil {
			t.Fatal(err)
		}
		switch mf.GetName() {
		case "exemplar_total", "native_seconds":
			if viaBack := fromDTO(&back); diffFamily(&viaBack, &want) != "" {
				t.Errorf("%s", diffFamily(&viaBack, &want))
			}
		default:
			if !proto.Equal(&back, mf) {
				t.Errorf("re-encoded %s reads back as\n%v\nwant\n%v", mf.GetName(), &back, mf)
			}
		}
	}
	if !createdSeen {
		t.Error("client_golang wrote no created timestamps; the test lost coverage")
	}
}

// encodeRaw wraps a hand-built message body in its length prefix.
func encodeRaw(body []byte) []byte { return protowire.AppendBytes(nil, body) }

func TestDecodeErrors(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	msg := func(b []byte, num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), body)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, num, protowire.VarintType), v)
	}
	// family builds a family message named x of type typ with one metric.
	family := func(typ uint64, metric []byte) []byte {
		return encodeRaw(msg(varint(appendString(nil, 1, "x"), 3, typ), 4, metric))
	}
	gaugeMetric := msg(nil, 2, appendFixed(nil, 1, 1))
	ts := func(sec, nanos int64) []byte {
		return varint(varint(nil, 1, uint64(sec)), 2, uint64(nanos))
	}
	counterWithCreated := func(ts []byte) []byte { return msg(nil, 3, msg(appendFixed(nil, 1, 1), 3, ts)) }
	valid := AppendDelimited(nil, &sampleFamilies()[4])

	for _, tc := range []struct {
		name    string
		in      []byte
		is      error  // errors.Is target
		message string // substring of the error
	}{
		{"truncated length", []byte{0x80}, io.ErrUnexpectedEOF, "reading message length"},
		{"truncated long length", []byte{0xff, 0xff, 0x01 | 0x80}, io.ErrUnexpectedEOF, "length"},
		{"truncated message", valid[:len(valid)-1], io.ErrUnexpectedEOF, "reading message"},
		{"length only", protowire.AppendVarint(nil, 10), io.ErrUnexpectedEOF, "got 0 of 10 bytes"},
		{"huge length", protowire.AppendVarint(nil, 1<<40), ErrMessageTooLarge, "limit 33554432"},
		{"max uint64 length", protowire.AppendVarint(nil, math.MaxUint64), ErrMessageTooLarge, ""},
		{"overflowing length varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, ErrMessageTooLarge, "overflows"},
		{"invalid tag", encodeRaw([]byte{0xff}), ErrMalformed, "invalid field tag"},
		{"field number 0", encodeRaw(varint(nil, 0, 1)), ErrMalformed, "invalid field tag"},
		{"end group alone", encodeRaw(tag(nil, 9, protowire.EndGroupType)), ErrMalformed, "field 9"},
		{"invalid varint", encodeRaw(append(tag(nil, 3, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), ErrMalformed, "field 3"},
		{"bytes past end", encodeRaw(append(tag(nil, 1, protowire.BytesType), 5, 'a')), ErrMalformed, "field 1"},
		{"name as varint", encodeRaw(varint(nil, 1, 1)), ErrMalformed, "field 1 has wire type 0, want 2"},
		{"type as bytes", encodeRaw(appendString(nil, 3, "x")), ErrMalformed, "field 3 has wire type 2"},
		{"metric as fixed64", encodeRaw(appendFixed(nil, 4, 1)), ErrMalformed, "field 4 has wire type 1"},
		{"gauge value as varint", family(1, msg(nil, 2, varint(nil, 1, 1))), ErrMalformed, `metric 0 of family "x": gauge: field 1 has wire type 0, want 1`},
		{"label name as varint", family(1, append(msg(nil, 1, varint(nil, 1, 1)), gaugeMetric...)), ErrMalformed, "label 0: field 1 has wire type 0"},
		{"timestamp_ms as fixed64", family(1, appendFixed(gaugeMetric, 6, 1)), ErrMalformed, "field 6 has wire type 1"},
		{"bucket count as fixed64", family(4, msg(nil, 7, msg(nil, 3, appendFixed(nil, 1, 1)))), ErrMalformed, "bucket: field 1 has wire type 1"},
		{"bad enum", family(6, gaugeMetric), ErrMalformed, `family "x": unknown metric type 6`},
		{"negative enum", family(uint64(math.MaxUint64), gaugeMetric), ErrMalformed, "unknown metric type"},
		{"missing counter value", family(0, gaugeMetric), ErrMalformed, `metric 0 of family "x": counter family without a counter value`},
		{"missing histogram value", family(5, gaugeMetric), ErrMalformed, "gaugehistogram family without a histogram value"},
		{"missing summary value", family(2, msg(nil, 7, nil)), ErrMalformed, "summary family without a summary value"},
		{"invalid UTF-8 name", encodeRaw(appendString(nil, 1, "a\xffb")), ErrMalformed, `name is not valid UTF-8: "a\xffb"`},
		{"invalid UTF-8 help", encodeRaw(appendString(appendString(nil, 1, "x"), 2, "\xc3")), ErrMalformed, "help is not valid UTF-8"},
		{"invalid UTF-8 label name", family(1, append(msg(nil, 1, appendString(nil, 1, "\xed\xa0\x80")), gaugeMetric...)), ErrMalformed, "label 0: label name is not valid UTF-8"},
		{"invalid UTF-8 label value", family(1, append(msg(nil, 1, appendString(appendString(nil, 1, "n"), 2, "\xff")), gaugeMetric...)), ErrMalformed, "label value is not valid UTF-8"},
		{"negative nanos", family(0, counterWithCreated(ts(1, -1))), ErrMalformed, "nanos -1 outside [0, 1e9)"},
		{"nanos 1e9", family(0, counterWithCreated(ts(1, 1e9))), ErrMalformed, "nanos 1000000000"},
		{"seconds after 9999", family(0, counterWithCreated(ts(253402300800, 0))), ErrMalformed, "seconds 253402300800"},
		{"seconds before 1", family(0, counterWithCreated(ts(-62135596801, 0))), ErrMalformed, "seconds"},
		{"bad timestamp in summary", family(2, msg(nil, 4, msg(nil, 4, ts(0, 2e9)))), ErrMalformed, "nanos"},
		{"bad timestamp in histogram", family(4, msg(nil, 7, msg(nil, 15, ts(0, -5)))), ErrMalformed, "nanos"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Family
			err := NewDecoder(bytes.NewReader(tc.in)).Decode(&f)
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", f)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not contain %q", err, tc.message)
			}
			if f.Name != "" || f.Metrics != nil {
				t.Errorf("Decode changed *f on error: %+v", f)
			}
		})
	}
}

// TestDecodeAcceptsTimestampBounds: the range ends are valid.
func TestDecodeAcceptsTimestampBounds(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		f := Family{Name: "c", Type: Summary, Metrics: []Metric{{Created: tm.Add(time.Nanosecond)}}}
		if tm.Year() == 9999 {
			f.Metrics[0].Created = tm
		}
		got := decodeAll(t, AppendDelimited(nil, &f))
		if d := diffFamily(&got[0], &f); d != "" {
			t.Error(d)
		}
	}
}

// TestDecodeEOF: io.EOF, unwrapped, only at a clean end, and again after.
func TestDecodeEOF(t *testing.T) {
	d := NewDecoder(bytes.NewReader(nil))
	var f Family
	for range 2 {
		if err := d.Decode(&f); err != io.EOF {
			t.Fatalf("Decode of empty input = %v, want io.EOF", err)
		}
	}
	// An empty message is a valid, empty family.
	d = NewDecoder(bytes.NewReader([]byte{0}))
	if err := d.Decode(&f); err != nil {
		t.Fatalf("Decode of an empty message: %v", err)
	}
	if err := d.Decode(&f); err != io.EOF {
		t.Fatalf("then %v, want io.EOF", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestDecodeReaderError: reader errors are wrapped, not replaced.
func TestDecodeReaderError(t *testing.T) {
	boom := errors.New("boom")
	var f Family
	if err := NewDecoder(errReader{boom}).Decode(&f); !errors.Is(err, boom) {
		t.Errorf("error %v does not wrap the reader's", err)
	}
	r := io.MultiReader(bytes.NewReader([]byte{5, 1}), errReader{boom})
	if err := NewDecoder(r).Decode(&f); !errors.Is(err, boom) {
		t.Errorf("error %v inside a message does not wrap the reader's", err)
	}
}

// TestDecodeMaxMessageBytes: the limit is on the message, inclusive.
func TestDecodeMaxMessageBytes(t *testing.T) {
	f := sampleFamilies()[0]
	b := AppendDelimited(nil, &f)
	_, n := protowire.ConsumeVarint(b)
	size := len(b) - n
	var got Family
	d := NewDecoder(bytes.NewReader(b))
	d.MaxMessageBytes = size
	if err := d.Decode(&got); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
	d = NewDecoder(bytes.NewReader(b))
	d.MaxMessageBytes = size - 1
	if err := d.Decode(&got); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("message over the limit: %v, want ErrMessageTooLarge", err)
	}
}

// TestDecodeHugeLengthAllocatesLittle: a length prefix claiming 30 MiB
// followed by a few bytes must not allocate 30 MiB.
func TestDecodeHugeLengthAllocatesLittle(t *testing.T) {
	in := append(protowire.AppendVarint(nil, 30<<20), "short"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var f Family
	err := NewDecoder(bytes.NewReader(in)).Decode(&f)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Decode = %v, want io.ErrUnexpectedEOF", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d bytes for a 5-byte message", n)
	}
}

// TestDecodeLargeMessage reads a message far larger than the buffers' first
// size, in a reader that returns one byte at a time.
func TestDecodeLargeMessage(t *testing.T) {
	f := Family{Name: "big", Type: Gauge}
	for i := range 50000 {
		f.Metrics = append(f.Metrics, Metric{Labels: []Label{{"i", itoa(int64(i))}}, Value: float64(i)})
	}
	b := AppendDelimited(nil, &f)
	d := NewDecoder(iotestOneByte{bytes.NewReader(b)})
	var got Family
	if err := d.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if diff := diffFamily(&got, &f); diff != "" {
		t.Error(diff)
	}
}

type iotestOneByte struct{ r io.Reader }

func (r iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return r.r.Read(p[:1])
}

// TestEncodeUnrepresentableCounts documents what metrics.proto cannot
// carry: negative and NaN histogram counts read back as 0, summary counts
// are whole.
func TestEncodeUnrepresentableCounts(t *testing.T) {
	f := Family{Name: "h", Type: Histogram, Metrics: []Metric{{Count: -1.5, Buckets: []Bucket{{1, math.NaN()}}}}}
	got := decodeAll(t, AppendDelimited(nil, &f))
	if m := got[0].Metrics[0]; m.Count != 0 || m.Buckets[0].Count != 0 {
		t.Errorf("histogram counts read back as %v, %v; want 0, 0", m.Count, m.Buckets[0].Count)
	}
	s := Family{Name: "s", Type: Summary, Metrics: []Metric{{Count: 2.9}, {Count: -3}, {Count: math.NaN()}, {Count: 1e30}}}
	got = decodeAll(t, AppendDelimited(nil, &s))
	for i, want := range []float64{2, 0, 0, math.MaxUint64} {
		if c := got[0].Metrics[i].Count; c != want {
			t.Errorf("summary count %v read back as %v, want %v", s.Metrics[i].Count, c, want)
		}
	}
}

// TestDecodeAllocations: a warmed-up Decoder allocates at most once per
// kind per family — the strings, metrics, labels, buckets and quantiles.
func TestDecodeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	fams := sampleFamilies()
	for i := range fams {
		b := AppendDelimited(nil, &fams[i])
		r := bytes.NewReader(b)
		d := NewDecoder(r)
		var f Family
		n := testing.AllocsPerRun(20, func() {
			r.Reset(b)
			if err := d.Decode(&f); err != nil {
				t.Fatal(err)
			}
		})
		if n > 5 {
			t.Errorf("family %q: %v allocations per Decode, want ≤ 5", fams[i].Name, n)
		}
	}
}
