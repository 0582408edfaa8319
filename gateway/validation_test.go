package gateway_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// seed is the state every rejection test starts from: two groups and the
// root group, with counters, a gauge, a histogram and a summary.
func seed(g *testGateway) {
	g.push(http.MethodPost, "/metrics/job/x", `# TYPE c_total counter
c_total{k="a"} 1
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 3
h_count 2
# TYPE s summary
s_sum 1
s_count 1
`, http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/y/instance/i1", "# TYPE g gauge\ng 7\n# TYPE q_sum gauge\nq_sum 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics", "# TYPE r_total counter\nr_total{job=\"z\"} 1\n", http.StatusOK)
}

// TestRejectedPushLeavesStateUnchanged sends invalid pushes of many kinds and
// checks each gets 400 naming the problem and changes nothing in the scrape.
func TestRejectedPushLeavesStateUnchanged(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantInBody       []string
	}{
		{"timestamp", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} 1 1700000000000\n",
			[]string{"must not carry timestamps", "c_total"}},
		{"type clash same group", "/metrics/job/x", "# TYPE c_total gauge\nc_total{k=\"a\"} 1\n",
			[]string{"c_total", "clashes", "counter"}},
		{"type clash other group", "/metrics/job/other", "# TYPE g counter\ng 1\n",
			[]string{"metric g", "clashes", "gauge"}},
		{"suffix clash: new name is a histogram series", "/metrics/job/y", "# TYPE h_bucket gauge\nh_bucket 1\n",
			[]string{"h_bucket", "_bucket"}},
		{"suffix clash: summary count", "/metrics/job/y", "s_count 1\n",
			[]string{"s_count"}},
		{"suffix clash: new histogram over a stored name", "/metrics/job/y", "# TYPE q summary\nq_sum 1\nq_count 1\n",
			[]string{"q_sum", "already a metric family"}},
		{"suffix clash within one push", "/metrics/job/y", "# TYPE n_sum gauge\nn_sum 1\n# TYPE n summary\nn_sum 1\nn_count 1\n",
			[]string{"n_sum"}},
		{"duplicate series", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} 1\nc_total{k=\"a\",clearmode=\"sum\"} 1\n",
			[]string{"c_total", "twice"}},
		{"negative counter", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} -1\n",
			[]string{"c_total", "-1"}},
		{"NaN counter", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} NaN\n",
			[]string{"c_total", "NaN"}},
		{"non-cumulative buckets", "/metrics/job/x", "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
			[]string{"metric h", "cumulative"}},
		{"+Inf bucket differs from count", "/metrics/job/x", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 1\nh_count 2\n",
			[]string{"metric h", "+Inf"}},
		{"reserved label name", "/metrics/job/x", "# TYPE c_total counter\nc_total{__k=\"a\"} 1\n",
			[]string{"c_total", "__k"}},
		{"parse error with line", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} 1\nc_total{k=} 1\n",
			[]string{"line 3"}},
		{"series collision: root vs group job=x", "/metrics", "# TYPE c_total counter\nc_total{job=\"x\",k=\"a\"} 1\n",
			[]string{"c_total", "already pushed", `job="x"`}},
		{"series collision: group vs root", "/metrics/job/z", "# TYPE r_total counter\nr_total 1\n",
			[]string{"r_total", "already pushed"}},
		{"series collision: pushed label equals other group's grouping label", "/metrics/job/y", "# TYPE g gauge\ng{instance=\"i1\"} 1\n",
			[]string{"metric g", "already pushed", `instance="i1"`}},
		{"unknown clear mode in a later family", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} 1\n# TYPE zz gauge\nzz{clearmode=\"nope\"} 1\n",
			[]string{"zz", `"nope"`}},
		{"family mode mixed", "/metrics/job/x", "# TYPE zz gauge\nzz{clearmode=\"family\",a=\"1\"} 1\nzz{a=\"2\"} 1\n",
			[]string{"zz", "family"}},
		{"clash with the gateway's own metrics", "/metrics/job/x", "# TYPE gateway_pushes_total gauge\ngateway_pushes_total 1\n",
			[]string{"gateway_pushes_total", "own"}},
		{"PUT is checked too", "/metrics/job/x", "# TYPE c_total counter\nc_total{k=\"a\"} -5\n",
			[]string{"c_total"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t)
			seed(g)
			before := g.scrape()
			method := http.MethodPost
			if strings.HasPrefix(tc.name, "PUT") {
				method = http.MethodPut
			}
			body := g.push(method, tc.path, tc.body, http.StatusBadRequest)
			for _, w := range tc.wantInBody {
				if !strings.Contains(body, w) {
					t.Errorf("body %q does not contain %q", body, w)
				}
			}
			assertSamples(t, g.scrape(), before)
		})
	}
}

// A counter may go down under replace: only aggregation needs it ≥ 0.
func TestNegativeCounterReplace(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE c_total counter\nc_total{clearmode=\"replace\"} -1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: -1})
}

func TestPutVersusPost(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE a_total counter\na_total{k=\"1\"} 1\n# TYPE b gauge\nb 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/other", "# TYPE b gauge\nb 9\n", http.StatusOK)

	// POST touches only the pushed families.
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE a_total counter\na_total{k=\"2\"} 1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{
		`a_total{job="j",k="1"}`: 1, `a_total{job="j",k="2"}`: 1, `b{job="j"}`: 1, `b{job="other"}`: 9,
	})

	// PUT drops the group's other families (b), keeps other groups, and
	// merges the pushed family by clear mode: a_total{k="1"} stays.
	g.push(http.MethodPut, "/metrics/job/j", "# TYPE a_total counter\na_total{k=\"2\"} 5\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{
		`a_total{job="j",k="1"}`: 1, `a_total{job="j",k="2"}`: 6, `b{job="other"}`: 9,
	})

	// PUT with an empty body empties the group.
	g.push(http.MethodPut, "/metrics/job/j", "", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`b{job="other"}`: 9})
}

// Grouping labels are added to every sample and win over pushed labels.
func TestGroupingLabelsWin(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j/instance/i", "# TYPE m gauge\nm{instance=\"pushed\",job=\"pushed\",k=\"v\"} 1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`m{instance="i",job="j",k="v"}`: 1})
}

func TestTypeClashAcrossGroups(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE m counter\nm 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/b", "# TYPE m gauge\nm 1\n", http.StatusBadRequest)
	g.push(http.MethodPost, "/metrics/job/b", "# TYPE m counter\nm 2\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`m{job="a"}`: 1, `m{job="b"}`: 2})
}

func TestSeriesCollisionAcrossGroups(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/x", "# TYPE m gauge\nm{k=\"1\"} 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics", "# TYPE m gauge\nm{job=\"x\",k=\"1\"} 2\n", http.StatusBadRequest)
	// Different label values do not collide.
	g.push(http.MethodPost, "/metrics", "# TYPE m gauge\nm{job=\"x\",k=\"2\"} 2\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/x/k/2", "# TYPE m gauge\nm 3\n", http.StatusBadRequest)
	assertSamples(t, g.scrape(), map[string]float64{`m{job="x",k="1"}`: 1, `m{job="x",k="2"}`: 2})
}

func TestGzipBody(t *testing.T) {
	g := newTestGateway(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(readFixture(t, "prom-client-15.1.txt"))
	zw.Close()
	code, body := g.do(http.MethodPost, "/metrics/job/gz", buf.Bytes(), http.Header{"Content-Encoding": {"gzip"}})
	if code != http.StatusOK {
		t.Fatalf("gzip push: %d %s", code, body)
	}
	if got := g.scrape()[`queue_depth{job="gz"}`]; got != 17 {
		t.Errorf("queue_depth = %v, want 17", got)
	}
	code, _ = g.do(http.MethodPost, "/metrics/job/gz", []byte("not gzip"), http.Header{"Content-Encoding": {"gzip"}})
	if code != http.StatusBadRequest {
		t.Errorf("bad gzip: status %d, want 400", code)
	}
	code, _ = g.do(http.MethodPost, "/metrics/job/gz", []byte("x 1\n"), http.Header{"Content-Encoding": {"br"}})
	if code != http.StatusUnsupportedMediaType {
		t.Errorf("brotli: status %d, want 415", code)
	}
}

// Protobuf input: gzip-compressed, and a timestamp is rejected like in text.
func TestProtobufBody(t *testing.T) {
	g := newTestGateway(t)
	mf := &dto.MetricFamily{
		Name: proto.String("pb_total"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{
			Label:   []*dto.LabelPair{{Name: proto.String("clearmode"), Value: proto.String("replace")}},
			Counter: &dto.Counter{Value: proto.Float64(4)},
		}},
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := expfmt.NewEncoder(zw, expfmt.NewFormat(expfmt.TypeProtoDelim))
	if err := enc.Encode(mf); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	hdr := http.Header{"Content-Type": {protoDelimited}, "Content-Encoding": {"gzip"}}
	if code, body := g.do(http.MethodPost, "/metrics/job/pb", buf.Bytes(), hdr); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	assertSamples(t, g.scrape(), map[string]float64{`pb_total{job="pb"}`: 4})

	mf.Metric[0].TimestampMs = proto.Int64(1)
	buf.Reset()
	if err := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim)).Encode(mf); err != nil {
		t.Fatal(err)
	}
	code, body := g.do(http.MethodPost, "/metrics/job/pb", buf.Bytes(), http.Header{"Content-Type": {protoDelimited}})
	if code != http.StatusBadRequest || !strings.Contains(body, "timestamps") {
		t.Errorf("timestamped protobuf push: %d %q, want 400 naming timestamps", code, body)
	}
	code, _ = g.do(http.MethodPost, "/metrics/job/pb", []byte{0xff, 0xff, 0xff}, http.Header{"Content-Type": {protoDelimited}})
	if code != http.StatusBadRequest {
		t.Errorf("garbage protobuf: status %d, want 400", code)
	}
}

// A protobuf metric without the value its family type needs (a counter
// family carrying a gauge) is a 400 naming the family, and changes nothing.
func TestProtobufTypeMismatch(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/pb", "# TYPE ok_total counter\nok_total 1\n", http.StatusOK)
	for typ, want := range map[dto.MetricType]string{
		dto.MetricType_COUNTER:   "counter value",
		dto.MetricType_HISTOGRAM: "histogram value",
		dto.MetricType_SUMMARY:   "summary value",
		dto.MetricType_UNTYPED:   "untyped value",
	} {
		mf := &dto.MetricFamily{
			Name: proto.String("ok_total"), Type: typ.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(4)}}},
		}
		var buf bytes.Buffer
		if err := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim)).Encode(mf); err != nil {
			t.Fatal(err)
		}
		code, body := g.do(http.MethodPost, "/metrics/job/pb", buf.Bytes(), http.Header{"Content-Type": {protoDelimited}})
		if code != http.StatusBadRequest || !strings.Contains(body, want) || !strings.Contains(body, "ok_total") {
			t.Errorf("%v family with a gauge value: %d %q, want 400 naming ok_total and %q", typ, code, body, want)
		}
	}
	assertSamples(t, g.scrape(), map[string]float64{`ok_total{job="pb"}`: 1})
}

// Fractional histogram counts (float histograms) are kept and exposed as
// floats.
func TestFloatHistogramCounts(t *testing.T) {
	g := newTestGateway(t)
	body := "# TYPE h histogram\nh_bucket{le=\"1\"} 0.5\nh_bucket{le=\"+Inf\"} 1.5\nh_sum 2\nh_count 1.5\n"
	g.push(http.MethodPost, "/metrics/job/j", body, http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j", body, http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{
		`h_bucket{job="j",le="1"}`: 1, `h_bucket{job="j",le="+Inf"}`: 3, `h_sum{job="j"}`: 4, `h_count{job="j"}`: 3,
	})
}

// Gauge histograms (protobuf only) default to replace; native-histogram
// fields are ignored, classic buckets kept.
func TestGaugeHistogramProtobuf(t *testing.T) {
	g := newTestGateway(t)
	pushGH := func(count uint64, sum float64) {
		t.Helper()
		mf := &dto.MetricFamily{
			Name: proto.String("gh"), Type: dto.MetricType_GAUGE_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(count), SampleSum: proto.Float64(sum),
				Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(count)}},
				Schema: proto.Int32(3), ZeroThreshold: proto.Float64(1e-9), PositiveDelta: []int64{1},
				PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(1)}},
			}}},
		}
		var buf bytes.Buffer
		if err := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim)).Encode(mf); err != nil {
			t.Fatal(err)
		}
		if code, body := g.do(http.MethodPost, "/metrics/job/j", buf.Bytes(), http.Header{"Content-Type": {protoDelimited}}); code != http.StatusOK {
			t.Fatalf("push: %d %s", code, body)
		}
	}
	pushGH(2, 5)
	pushGH(1, 1)
	fams := g.scrapeFamilies()
	h := fams["gh"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 1 || len(h.GetBucket()) != 2 || h.GetBucket()[0].GetCumulativeCount() != 1 {
		t.Errorf("gauge histogram not replaced: %v", h)
	}
}
