package pushbody_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

const (
	protoType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
	omType    = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

func ct(v string) http.Header { return http.Header{"Content-Type": {v}} }

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// delimited encodes families with the family codec.
func delimited(fams ...family.Family) []byte {
	var b []byte
	for i := range fams {
		b = family.AppendDelimited(b, &fams[i])
	}
	return b
}

// dtoDelimited encodes families with the generated code, as client_golang
// does.
func dtoDelimited(t testing.TB, mfs ...*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := protodelim.MarshalTo(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func lbl(kv ...string) []family.Label {
	var out []family.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, family.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// normalize makes families comparable with reflect.DeepEqual: empty slices
// become nil and times lose their representation details.
func normalize(fams []family.Family) []family.Family {
	out := make([]family.Family, len(fams))
	for i, f := range fams {
		f.Metrics = append([]family.Metric(nil), f.Metrics...)
		if len(f.Metrics) == 0 {
			f.Metrics = nil
		}
		for j := range f.Metrics {
			m := &f.Metrics[j]
			if len(m.Labels) == 0 {
				m.Labels = nil
			}
			if len(m.Buckets) == 0 {
				m.Buckets = nil
			}
			if len(m.Quantiles) == 0 {
				m.Quantiles = nil
			}
			if !m.Created.IsZero() {
				m.Created = time.Unix(m.Created.Unix(), int64(m.Created.Nanosecond())).UTC()
			}
		}
		out[i] = f
	}
	return out
}

func dump(fams []family.Family) string {
	var b strings.Builder
	for _, f := range fams {
		fmt.Fprintf(&b, "%s %s help=%q\n", f.Name, f.Type, f.Help)
		for _, m := range f.Metrics {
			fmt.Fprintf(&b, "  %+v\n", m)
		}
	}
	return b.String()
}

var created = time.Date(2026, 11, 21, 10, 0, 0, 250_000_000, time.UTC)

const textBody = `# HELP c_total Counts.
# TYPE c_total counter
c_total{a="1"} 3
c_total{a="2"} 0
# TYPE g gauge
g 2.5
# TYPE empty gauge
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 3
h_count 2
# TYPE s summary
s{quantile="0.5"} 0.25
s_sum 4
s_count 5
u{"dotted.label"="x"} 7
`

// textFams is textBody decoded.
var textFams = []family.Family{
	{Name: "c_total", Help: "Counts.", Type: family.Counter, Metrics: []family.Metric{
		{Labels: lbl("a", "1"), Value: 3}, {Labels: lbl("a", "2"), Value: 0},
	}},
	{Name: "g", Type: family.Gauge, Metrics: []family.Metric{{Value: 2.5}}},
	{Name: "h", Type: family.Histogram, Metrics: []family.Metric{
		{Count: 2, Sum: 3, Buckets: []family.Bucket{{UpperBound: 1, Count: 1}, {UpperBound: math.Inf(1), Count: 2}}},
	}},
	{Name: "s", Type: family.Summary, Metrics: []family.Metric{
		{Count: 5, Sum: 4, Quantiles: []family.Quantile{{Quantile: 0.5, Value: 0.25}}},
	}},
	{Name: "u", Type: family.Untyped, Metrics: []family.Metric{{Labels: lbl("dotted.label", "x"), Value: 7}}},
}

func TestDecodeBody(t *testing.T) {
	var big string // 50 bytes
	var bigFams []family.Family
	for i := range 10 {
		big += fmt.Sprintf("m%d 1\n", i)
		bigFams = append(bigFams, family.Family{Name: fmt.Sprint("m", i), Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}})
	}

	tests := []struct {
		name     string
		body     []byte
		header   http.Header
		maxBytes int64
		want     []family.Family // when no error is wanted
		// Wanted error: errIs/errAs, and the text and line of a
		// *ValidationError.
		errIs    error
		tooLarge bool
		invalid  string // substring of a *ValidationError's message
		line     int
	}{
		// Text.
		{name: "text", body: []byte(textBody), want: textFams},
		{name: "text/plain content type", body: []byte(textBody), header: ct("text/plain; version=0.0.4"), want: textFams},
		{name: "unparseable content type is text", body: []byte(textBody), header: ct("not a / media type;;"), want: textFams},
		{name: "text gzip", body: gzipped([]byte(textBody)), header: http.Header{"Content-Encoding": {"gzip"}}, want: textFams},
		{name: "text x-gzip", body: gzipped([]byte(textBody)), header: http.Header{"Content-Encoding": {"X-Gzip"}}, want: textFams},
		{name: "text identity", body: []byte(textBody), header: http.Header{"Content-Encoding": {"identity"}}, want: textFams},
		{name: "empty text body", body: nil, want: nil},
		{name: "text only empty families", body: []byte("# TYPE a gauge\n# HELP b x\n"), want: nil},
		{
			name: "text Python created gauges fold",
			body: []byte("# TYPE jobs_total counter\njobs_total{kind=\"a\"} 4\njobs_total{kind=\"b\"} 1\n" +
				"# TYPE jobs_created gauge\njobs_created{kind=\"a\"} 1.5e+09\njobs_created{kind=\"c\"} 7\n" +
				"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# TYPE h_created gauge\nh_created 1.25\n" +
				"# TYPE lone_created gauge\nlone_created 5\n"),
			want: []family.Family{
				{Name: "h", Type: family.Histogram, Metrics: []family.Metric{
					{Count: 1, Sum: 1, Buckets: []family.Bucket{{UpperBound: math.Inf(1), Count: 1}}, Created: time.Unix(1, 250_000_000).UTC()},
				}},
				{Name: "jobs_total", Type: family.Counter, Metrics: []family.Metric{
					{Labels: lbl("kind", "a"), Value: 4, Created: time.Unix(1.5e9, 0).UTC()},
					{Labels: lbl("kind", "b"), Value: 1},
				}},
				{Name: "lone_created", Type: family.Gauge, Metrics: []family.Metric{{Value: 5}}},
			},
		},
		{
			name: "text timestamps are kept for the receiver to reject",
			body: []byte("a 1 1700000000000\n"),
			want: []family.Family{{Name: "a", Type: family.Untyped, Metrics: []family.Metric{{Value: 1, TimestampMs: 1700000000000, HasTimestamp: true}}}},
		},
		{name: "text syntax error", body: []byte("a 1\nb{x=\"1\" 2\n"), invalid: "", line: 2},
		{name: "text bad value", body: []byte("# TYPE a gauge\na 1\na{x=\"y\"} one\n"), invalid: "", line: 3},
		{name: "bad gzip", body: []byte("not gzip"), header: http.Header{"Content-Encoding": {"gzip"}}, invalid: "invalid gzip body"},
		{name: "brotli", body: []byte(textBody), header: http.Header{"Content-Encoding": {"br"}}, errIs: pushbody.ErrUnsupportedMediaType},

		// Limits.
		{name: "text exactly at the limit", body: []byte(big), maxBytes: int64(len(big)),
			want: bigFams},
		{name: "text over the limit", body: []byte(big), maxBytes: int64(len(big)) - 1, tooLarge: true},
		{name: "gzip bomb", body: gzipped(bytes.Repeat([]byte("# comment that compresses well\n"), 10_000)), header: http.Header{"Content-Encoding": {"gzip"}}, maxBytes: 4096, tooLarge: true},
		{name: "OpenMetrics over the limit", body: []byte(big + "# EOF\n"), header: ct(omType), maxBytes: int64(len(big)), tooLarge: true},
		{name: "protobuf over the limit", body: delimited(family.Family{Name: "x", Type: family.Gauge, Metrics: make([]family.Metric, 100)}), header: ct(protoType), maxBytes: 64, tooLarge: true},
		{name: "protobuf length prefix beyond the limit", body: []byte{0x80, 0x80, 0x04}, header: ct(protoType), maxBytes: 1024, tooLarge: true},

		// OpenMetrics.
		{
			name: "OpenMetrics",
			body: []byte("# TYPE c counter\n# HELP c Help.\nc_total{a=\"1\"} 5 # {trace_id=\"abc\"} 1.0\nc_created{a=\"1\"} 1795255200.25\n" +
				"# TYPE b info\nb_info{version=\"1\"} 1\n# TYPE gh gaugehistogram\ngh_bucket{le=\"0.5\"} 0.5\ngh_bucket{le=\"+Inf\"} 4\ngh_gcount 4\ngh_gsum 1.5\n" +
				"# TYPE s summary\ns{quantile=\"0.9\"} 2\ns_count 3\ns_sum 4\ns_created 1795255200.25\n# TYPE e gauge\n# EOF\n"),
			header: ct(omType),
			want: []family.Family{
				{Name: "b_info", Type: family.Gauge, Metrics: []family.Metric{{Labels: lbl("version", "1", "clearmode", "family"), Value: 1}}},
				{Name: "c_total", Help: "Help.", Type: family.Counter, Metrics: []family.Metric{{Labels: lbl("a", "1"), Value: 5, Created: created}}},
				{Name: "gh", Type: family.GaugeHistogram, Metrics: []family.Metric{
					{Count: 4, Sum: 1.5, Buckets: []family.Bucket{{UpperBound: 0.5, Count: 0.5}, {UpperBound: math.Inf(1), Count: 4}}},
				}},
				{Name: "s", Type: family.Summary, Metrics: []family.Metric{{Count: 3, Sum: 4, Quantiles: []family.Quantile{{Quantile: 0.9, Value: 2}}, Created: created}}},
			},
		},
		{name: "OpenMetrics 0.0.1 and gzip", body: gzipped([]byte("g 1\n# EOF\n")), header: http.Header{"Content-Type": {"application/openmetrics-text; version=0.0.1"}, "Content-Encoding": {"gzip"}},
			want: []family.Family{{Name: "g", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
		{name: "OpenMetrics without version", body: []byte("g 1\n# EOF"), header: ct("application/openmetrics-text"),
			want: []family.Family{{Name: "g", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
		{name: "OpenMetrics missing EOF", body: []byte("# TYPE a gauge\na 1\n"), header: ct(omType), invalid: "missing # EOF", line: 3},
		{name: "OpenMetrics timestamp", body: []byte("# TYPE a gauge\na 1 17\n# EOF\n"), header: ct(omType), invalid: "line 2: metric a: pushed metrics must not carry timestamps", line: 2},
		{name: "OpenMetrics 2.0", body: []byte("# EOF\n"), header: ct("application/openmetrics-text; version=2.0.0"), errIs: pushbody.ErrUnsupportedMediaType},

		// Protobuf.
		{
			name: "protobuf",
			body: delimited(
				family.Family{Name: "z_total", Help: "Z.", Type: family.Counter, Metrics: []family.Metric{{Labels: lbl("a", "1"), Value: 2, Created: created}}},
				family.Family{Name: "empty", Type: family.Gauge},
				family.Family{Name: "h", Type: family.Histogram, Metrics: []family.Metric{
					{Count: 2.5, Sum: 3, Buckets: []family.Bucket{{UpperBound: 1, Count: 0.5}, {UpperBound: math.Inf(1), Count: 2.5}}, Created: created},
				}},
				family.Family{Name: "s", Type: family.Summary, Metrics: []family.Metric{{Count: 5, Sum: 4, Quantiles: []family.Quantile{{Quantile: 0.5, Value: 0.25}}}}},
				family.Family{Name: "g", Type: family.Gauge, Metrics: []family.Metric{{Value: -1}, {Labels: lbl("x", "y"), Value: 2}}},
			),
			header: ct(protoType),
			want: []family.Family{
				{Name: "g", Type: family.Gauge, Metrics: []family.Metric{{Value: -1}, {Labels: lbl("x", "y"), Value: 2}}},
				{Name: "h", Type: family.Histogram, Metrics: []family.Metric{
					{Count: 2.5, Sum: 3, Buckets: []family.Bucket{{UpperBound: 1, Count: 0.5}, {UpperBound: math.Inf(1), Count: 2.5}}, Created: created},
				}},
				{Name: "s", Type: family.Summary, Metrics: []family.Metric{{Count: 5, Sum: 4, Quantiles: []family.Quantile{{Quantile: 0.5, Value: 0.25}}}}},
				{Name: "z_total", Help: "Z.", Type: family.Counter, Metrics: []family.Metric{{Labels: lbl("a", "1"), Value: 2, Created: created}}},
			},
		},
		{
			name: "protobuf from the generated code, gzip",
			body: gzipped(dtoDelimited(t, &dto.MetricFamily{
				Name: proto.String("pb_total"), Type: dto.MetricType_COUNTER.Enum(),
				Metric: []*dto.Metric{{
					Label:   []*dto.LabelPair{{Name: proto.String("clearmode"), Value: proto.String("replace")}},
					Counter: &dto.Counter{Value: proto.Float64(4), CreatedTimestamp: timestamppb.New(created), Exemplar: &dto.Exemplar{Value: proto.Float64(1)}},
				}},
			}, &dto.MetricFamily{
				Name: proto.String("gh"), Type: dto.MetricType_GAUGE_HISTOGRAM.Enum(),
				Metric: []*dto.Metric{{Histogram: &dto.Histogram{
					SampleCount: proto.Uint64(2), SampleSum: proto.Float64(5),
					Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(2)}},
					Schema: proto.Int32(3), ZeroThreshold: proto.Float64(1e-9), PositiveDelta: []int64{1},
					PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(1)}},
				}}},
			})),
			header: http.Header{"Content-Type": {protoType}, "Content-Encoding": {"gzip"}},
			want: []family.Family{
				{Name: "gh", Type: family.GaugeHistogram, Metrics: []family.Metric{{Count: 2, Sum: 5, Buckets: []family.Bucket{{UpperBound: 1, Count: 2}}}}},
				{Name: "pb_total", Type: family.Counter, Metrics: []family.Metric{{Labels: lbl("clearmode", "replace"), Value: 4, Created: created}}},
			},
		},
		{
			name:   "protobuf timestamps are kept for the receiver to reject",
			body:   delimited(family.Family{Name: "a", Type: family.Gauge, Metrics: []family.Metric{{Value: 1, TimestampMs: 17, HasTimestamp: true}}}),
			header: ct(protoType),
			want:   []family.Family{{Name: "a", Type: family.Gauge, Metrics: []family.Metric{{Value: 1, TimestampMs: 17, HasTimestamp: true}}}},
		},
		{name: "empty protobuf body", body: nil, header: ct(protoType), want: nil},
		{
			name: "protobuf family twice",
			body: delimited(
				family.Family{Name: "a", Type: family.Gauge, Metrics: []family.Metric{{Value: 1}}},
				family.Family{Name: "a", Type: family.Gauge, Metrics: []family.Metric{{Value: 2}}},
			),
			header:  ct(protoType),
			invalid: "metric a: metric family sent twice in one push",
		},
		{name: "protobuf garbage", body: []byte{0xff, 0xff, 0xff}, header: ct(protoType), invalid: "malformed body: message 1:"},
		{
			name:    "protobuf truncated second message",
			body:    delimited(family.Family{Name: "a", Type: family.Gauge, Metrics: []family.Metric{{Value: 1}}}, family.Family{Name: "b", Type: family.Gauge, Metrics: []family.Metric{{Value: 1}}})[:20],
			header:  ct(protoType),
			invalid: "malformed body: message 2:",
		},
		{
			name: "protobuf counter without a counter value",
			body: dtoDelimited(t, &dto.MetricFamily{
				Name: proto.String("c_total"), Type: dto.MetricType_COUNTER.Enum(),
				Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}},
			}),
			header:  ct(protoType),
			invalid: "counter value",
		},
		{name: "protobuf text encoding", body: []byte(textBody), header: ct("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text"), errIs: pushbody.ErrUnsupportedMediaType},
		{name: "protobuf other message", body: nil, header: ct("application/vnd.google.protobuf; proto=other.Message; encoding=delimited"), errIs: pushbody.ErrUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			got, err := pushbody.DecodeBody(bytes.NewReader(tc.body), h, tc.maxBytes)
			wantErr := tc.errIs != nil || tc.tooLarge || tc.invalid != "" || tc.line != 0
			if !wantErr {
				if err != nil {
					t.Fatalf("DecodeBody: %v", err)
				}
				if g, w := normalize(got), normalize(tc.want); !reflect.DeepEqual(g, w) {
					t.Errorf("DecodeBody:\n%s\nwant\n%s", dump(g), dump(w))
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeBody = %s, want an error", dump(got))
			}
			if got != nil {
				t.Errorf("DecodeBody returned families with error %v", err)
			}
			var ve *pushbody.ValidationError
			var mbe *http.MaxBytesError
			switch {
			case tc.errIs != nil:
				if !errors.Is(err, tc.errIs) {
					t.Errorf("err = %v, want %v", err, tc.errIs)
				}
				if errors.As(err, &ve) {
					t.Errorf("err = %v is also a ValidationError", err)
				}
			case tc.tooLarge:
				if !errors.As(err, &mbe) {
					t.Errorf("err = %v (%T), want an *http.MaxBytesError", err, err)
				} else if want := tc.maxBytes; mbe.Limit != want {
					t.Errorf("MaxBytesError.Limit = %d, want %d", mbe.Limit, want)
				}
			default:
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v (%T), want a *ValidationError", err, err)
				}
				if !strings.Contains(err.Error(), tc.invalid) {
					t.Errorf("err = %q, want it to contain %q", err, tc.invalid)
				}
				if ve.Line != tc.line {
					t.Errorf("err = %q at line %d, want line %d", err, ve.Line, tc.line)
				}
				if errors.Is(err, pushbody.ErrUnsupportedMediaType) || errors.As(err, &mbe) {
					t.Errorf("err = %v is also another kind of error", err)
				}
			}
		})
	}
}

// endless is an endless body of the letter a.
type endless struct{}

var as = bytes.Repeat([]byte("a"), 64<<10)

func (endless) Read(p []byte) (int, error) { return copy(p, as), nil }

// The default limit (maxBytes ≤ 0) is DefaultMaxBodyBytes.
func TestDecodeBodyDefaultLimit(t *testing.T) {
	for _, maxBytes := range []int64{0, -1} {
		for i, h := range []http.Header{{}, ct(omType)} {
			if i != int(-maxBytes) {
				continue // text with 0, OpenMetrics with -1: 32 MiB each is slow under -race
			}
			_, err := pushbody.DecodeBody(endless{}, h, maxBytes)
			var mbe *http.MaxBytesError
			if !errors.As(err, &mbe) || mbe.Limit != pushbody.DefaultMaxBodyBytes {
				t.Errorf("maxBytes %d, %v: err = %v, want an *http.MaxBytesError with limit %d", maxBytes, h, err, pushbody.DefaultMaxBodyBytes)
			}
		}
		// A protobuf message longer than the limit fails on its length.
		_, err := pushbody.DecodeBody(bytes.NewReader([]byte{0x81, 0x80, 0x80, 0x10}), ct(protoType), maxBytes)
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) || mbe.Limit != pushbody.DefaultMaxBodyBytes {
			t.Errorf("maxBytes %d, protobuf: err = %v, want an *http.MaxBytesError with limit %d", maxBytes, err, pushbody.DefaultMaxBodyBytes)
		}
	}
}

// client_golang's protobuf and text outputs of the same registry decode to
// the same families, but for the created timestamps only protobuf carries.
func TestDecodeBodyClientGolangFixtures(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("../../gateway/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pb, err := pushbody.DecodeBody(bytes.NewReader(read("client-golang-1.25.pb-delimited.bin")), ct(protoType), 0)
	if err != nil {
		t.Fatal(err)
	}
	text, err := pushbody.DecodeBody(bytes.NewReader(read("client-golang-1.25.txt")), http.Header{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pb) == 0 {
		t.Fatal("no families in the protobuf fixture")
	}
	createdSeen := false
	for i := range pb {
		for j := range pb[i].Metrics {
			createdSeen = createdSeen || !pb[i].Metrics[j].Created.IsZero()
			pb[i].Metrics[j].Created = time.Time{}
		}
	}
	if !createdSeen {
		t.Error("no created timestamp in the protobuf fixture")
	}
	// The text format has the +Inf bucket, which client_golang leaves out
	// of protobuf.
	for i := range text {
		for j := range text[i].Metrics {
			m := &text[i].Metrics[j]
			if n := len(m.Buckets); n > 0 && math.IsInf(m.Buckets[n-1].UpperBound, 1) && m.Buckets[n-1].Count == m.Count {
				m.Buckets = m.Buckets[:n-1]
			}
		}
	}
	if g, w := normalize(pb), normalize(text); !reflect.DeepEqual(g, w) {
		t.Errorf("protobuf fixture:\n%s\ntext fixture:\n%s", dump(g), dump(w))
	}
}

func TestCheckLabelName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "job": true, "dotted.name": true, "ünïcode": true, "_x": true, "1st": true,
		"": false, "\xff": false, "__name__": false, "__x": false,
	} {
		if err := pushbody.CheckLabelName(name); (err == nil) != ok {
			t.Errorf("CheckLabelName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

func TestCreatedSibling(t *testing.T) {
	types := map[string]family.Type{
		"c_total": family.Counter, "h": family.Histogram, "s": family.Summary, "g": family.Gauge,
		"bare": family.Counter, "gh": family.GaugeHistogram,
	}
	typeOf := func(n string) (family.Type, bool) { t, ok := types[n]; return t, ok }
	for name, want := range map[string]string{
		"c_created": "c_total", "h_created": "h", "s_created": "s", "bare_created": "bare",
		"g_created": "", "gh_created": "", "x_created": "", "_created": "", "c": "",
	} {
		sib, typ, ok := pushbody.CreatedSibling(name, typeOf)
		if sib != want || ok != (want != "") || ok && typ != types[want] {
			t.Errorf("CreatedSibling(%q) = %q, %v, %v, want %q", name, sib, typ, ok, want)
		}
	}
}

func TestParseGroupingPath(t *testing.T) {
	for path, want := range map[string]map[string]string{
		"":                                  {},
		"/job/j":                            {"job": "j"},
		"/job/j/instance/i%2Fx":             {"job": "j", "instance": "i/x"},
		"/job@base64/YS9i/shard@base64/=":   {"job": "a/b"},
		"/job/j/x@base64/w6Q":               {"job": "j", "x": "ä"},
		"/job/j/dotted.name/v":              {"job": "j", "dotted.name": "v"},
		"/job/j/empty/":                     {"job": "j"}, // an empty value is no label
		"/instance/i/job/j":                 nil,
		"/job/":                             nil,
		"/job/j/__x/1":                      nil,
		"/job/j/clearmode/replace":          nil,
		"/job/j/a/1/a/2":                    nil,
		"/job/j/a":                          nil,
		"/job/j/a@base64/!!":                nil,
		"/job/j/a/%ff":                      nil,
		"/job/j/a/%zz":                      nil,
		"/job/j/" + "%C3%A4" + "/v":         {"job": "j", "ä": "v"},
		"/job/j/instance@base64/aW5zdA==/x": nil,
	} {
		got, err := pushbody.ParseGroupingPath(path)
		if want == nil {
			if err == nil {
				t.Errorf("ParseGroupingPath(%q) = %v, want an error", path, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseGroupingPath(%q) = %v, %v, want %v", path, got, err, want)
		}
	}
}

// benchBody is a push of 100 families of each kind, 10 series each, in the
// text format and protobuf.
func benchBody(b *testing.B) (text, pb []byte) {
	b.Helper()
	var fams []family.Family
	for i := range 100 {
		c := family.Family{Name: fmt.Sprintf("requests_%d_total", i), Help: "Requests handled.", Type: family.Counter}
		g := family.Family{Name: fmt.Sprintf("in_flight_%d", i), Help: "Requests in flight.", Type: family.Gauge}
		h := family.Family{Name: fmt.Sprintf("latency_%d_seconds", i), Help: "Latency.", Type: family.Histogram}
		for j := range 10 {
			ls := lbl("function", "orders", "route", fmt.Sprintf("/r%d", j), "clearmode", "aggregate")
			c.Metrics = append(c.Metrics, family.Metric{Labels: ls, Value: float64(j)})
			g.Metrics = append(g.Metrics, family.Metric{Labels: ls, Value: float64(j) / 3})
			hm := family.Metric{Labels: ls, Count: 10, Sum: 1.5}
			for k, ub := range []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10} {
				hm.Buckets = append(hm.Buckets, family.Bucket{UpperBound: ub, Count: float64(k)})
			}
			hm.Buckets = append(hm.Buckets, family.Bucket{UpperBound: math.Inf(1), Count: 10})
			h.Metrics = append(h.Metrics, hm)
		}
		fams = append(fams, c, g, h)
	}
	pb = delimited(fams...)
	var tb strings.Builder
	for _, f := range fams {
		fmt.Fprintf(&tb, "# HELP %s %s\n# TYPE %s %s\n", f.Name, f.Help, f.Name, f.Type)
		for _, m := range f.Metrics {
			var ls []string
			for _, l := range m.Labels {
				ls = append(ls, fmt.Sprintf("%s=%q", l.Name, l.Value))
			}
			lstr := strings.Join(ls, ",")
			if f.Type != family.Histogram {
				fmt.Fprintf(&tb, "%s{%s} %v\n", f.Name, lstr, m.Value)
				continue
			}
			for _, bk := range m.Buckets {
				fmt.Fprintf(&tb, "%s_bucket{%s,le=\"%v\"} %v\n", f.Name, lstr, bk.UpperBound, bk.Count)
			}
			fmt.Fprintf(&tb, "%s_sum{%s} %v\n%s_count{%s} %v\n", f.Name, lstr, m.Sum, f.Name, lstr, m.Count)
		}
	}
	text = []byte(tb.String())
	// Both decode to the same families.
	ft, err := pushbody.DecodeBody(bytes.NewReader(text), http.Header{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	fp, err := pushbody.DecodeBody(bytes.NewReader(pb), ct(protoType), 0)
	if err != nil {
		b.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(ft), normalize(fp)) {
		b.Fatal("text and protobuf bodies differ")
	}
	return text, pb
}

func BenchmarkDecodeBody(b *testing.B) {
	text, pb := benchBody(b)
	for _, bc := range []struct {
		name string
		body []byte
		h    http.Header
	}{
		{"text", text, http.Header{}},
		{"protobuf", pb, ct(protoType)},
		{"text_gzip", gzipped(text), http.Header{"Content-Encoding": {"gzip"}}},
		{"protobuf_gzip", gzipped(pb), http.Header{"Content-Type": {protoType}, "Content-Encoding": {"gzip"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pushbody.DecodeBody(bytes.NewReader(bc.body), bc.h, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
