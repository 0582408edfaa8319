package gateway_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// malformedCase is one request the gateway must refuse: its answer, a
// substring of the reason that names the problem, and no change to the
// pushed state (see inproc.state).
type malformedCase struct {
	name   string
	method string // default POST
	path   string // default /metrics/job/m
	ct, ce string // Content-Type, Content-Encoding
	header http.Header
	body   []byte
	// setup runs before the state is taken (e.g. the first use of a key).
	setup func(t *testing.T, h *inproc)
	want  int
	// reason must occur in the answer's body (case-sensitive).
	reason string
}

func text(s string) []byte { return []byte(s) }

// pb encodes MetricFamily messages, length-delimited, as client_golang does.
func pb(t testing.TB, mfs ...*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := protodelim.MarshalTo(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func counterMF(name string, v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(v)}}}}
}

func malformedCases(t testing.TB) []malformedCase {
	okCounter := counterMF("fresh_total", 1)
	goodPB := pb(t, okCounter)
	big := strings.Repeat("# padding comment line to grow the body past the limit\n", inprocMaxBody/50)

	cases := []malformedCase{
		// --- text format errors ---
		{name: "text/no trailing newline", body: text("a 1"), want: 400, reason: "line feed"},
		{name: "text/value missing", body: text("a\n"), want: 400, reason: "expected a float"},
		{name: "text/value not a number", body: text("a one\n"), want: 400, reason: `expected a float as the value, got "one"`},
		{name: "text/value hex", body: text("a 0x10\n"), want: 400, reason: "expected a float"},
		{name: "text/two values", body: text("a 1 2 3\n"), want: 400, reason: "spurious string after the timestamp"},
		{name: "text/timestamp not integer", body: text("a 1 2.5\n"), want: 400, reason: "expected an integer as the timestamp"},
		{name: "text/unterminated label value", body: text("a{b=\"c} 1\n"), want: 400, reason: "label value"},
		{name: "text/label without =", body: text("a{b} 1\n"), want: 400, reason: "expected '='"},
		{name: "text/label value unquoted", body: text("a{b=c} 1\n"), want: 400, reason: `expected '"' at the start of the value of label "b"`},
		{name: "text/unclosed braces", body: text("a{b=\"c\" 1\n"), want: 400, reason: "line 1"},
		{name: "text/invalid escape", body: text("a{b=\"\\q\"} 1\n"), want: 400, reason: `invalid escape sequence`},
		{name: "text/invalid label name", body: text("a{0b=\"c\"} 1\n"), want: 400, reason: "invalid label name"},
		{name: "text/__name__ label", body: text("a{__name__=\"b\"} 1\n"), want: 400, reason: `"__name__" is reserved`},
		{name: "text/reserved __ label", body: text("a{__x=\"b\"} 1\n"), want: 400, reason: `label name "__x" is reserved`},
		{name: "text/duplicate label", body: text("a{b=\"1\",b=\"2\"} 1\n"), want: 400, reason: `duplicate label name "b"`},
		{name: "text/unknown type", body: text("# TYPE a countr\na 1\n"), want: 400, reason: `unknown metric type "countr"`},
		{name: "text/second TYPE", body: text("# TYPE a gauge\n# TYPE a gauge\na 1\n"), want: 400, reason: "second TYPE line"},
		{name: "text/TYPE after samples", body: text("a 1\n# TYPE a gauge\n"), want: 400, reason: "second TYPE line for the metric, or TYPE after its samples"},
		{name: "text/second HELP", body: text("# HELP a x\n# HELP a y\na 1\n"), want: 400, reason: "second HELP line"},
		{name: "text/TYPE with invalid name", body: text("# TYPE 0a gauge\n"), want: 400, reason: "invalid metric name in # TYPE line"},
		{name: "text/invalid metric name", body: text("0a 1\n"), want: 400, reason: "invalid metric name"},
		{name: "text/braces without name", body: text("{} 1\n"), want: 400, reason: "invalid metric name"},
		{name: "text/invalid UTF-8 label value", body: text("a{b=\"\xff\"} 1\n"), want: 400, reason: "invalid label value"},
		{name: "text/histogram le not a float", body: text("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n"), want: 400, reason: "expected a float as the value of label le"},
		{name: "text/summary quantile not a float", body: text("# TYPE s summary\ns{quantile=\"x\"} 1\n"), want: 400, reason: "expected a float as the value of label quantile"},
		{name: "text/negative histogram count", body: text("# TYPE h histogram\nh_count -1\n"), want: 400, reason: "negative histogram count"},
		{name: "text/negative bucket", body: text("# TYPE h histogram\nh_bucket{le=\"1\"} -1\nh_count 1\n"), want: 400, reason: "negative histogram bucket count"},
		{name: "text/error on a later line", body: text("a 1\nb 2\nc x\n"), want: 400, reason: "line 3"},
		{name: "text/multiple metric names", body: text("{\"a\",\"b\"} 1\n"), want: 400, reason: "multiple metric names"},
		{name: "text/line feed in quoted name", body: text("{\"a\n\"} 1\n"), want: 400, reason: "unescaped line feed"},

		// --- OpenMetrics errors ---
		{name: "om/missing EOF", ct: omCT, body: text("a 1\n"), want: 400, reason: "missing # EOF"},
		{name: "om/content after EOF", ct: omCT, body: text("# EOF\na 1\n"), want: 400, reason: "content after # EOF"},
		{name: "om/blank line", ct: omCT, body: text("a 1\n\n# EOF\n"), want: 400, reason: "empty line"},
		{name: "om/carriage return", ct: omCT, body: text("a 1\r\n# EOF\n"), want: 400, reason: "carriage return"},
		{name: "om/plain comment", ct: omCT, body: text("# hello\n# EOF\n"), want: 400, reason: "unexpected comment"},
		{name: "om/unknown type", ct: omCT, body: text("# TYPE a foo\n# EOF\n"), want: 400, reason: `unknown type "foo"`},
		{name: "om/TYPE twice", ct: omCT, body: text("# TYPE a gauge\n# TYPE a gauge\n# EOF\n"), want: 400, reason: "# TYPE given twice"},
		{name: "om/HELP twice", ct: omCT, body: text("# HELP a x\n# HELP a y\n# EOF\n"), want: 400, reason: "# HELP given twice"},
		{name: "om/metadata after samples", ct: omCT, body: text("# TYPE a gauge\na 1\n# HELP a x\n# EOF\n"), want: 400, reason: "after the family's samples"},
		{name: "om/counter without _total", ct: omCT, body: text("# TYPE a counter\na 1\n# EOF\n"), want: 400, reason: "sample name not valid in counter family a"},
		{name: "om/counter created only", ct: omCT, body: text("# TYPE a counter\na_created 1\n# EOF\n"), want: 400, reason: "counter without a a_total sample"},
		{name: "om/histogram without +Inf", ct: omCT, body: text("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\nh_sum 1\n# EOF\n"), want: 400, reason: "histogram without a +Inf bucket"},
		{name: "om/bucket without le", ct: omCT, body: text("# TYPE h histogram\nh_bucket 1\n# EOF\n"), want: 400, reason: `without a "le" label`},
		{name: "om/invalid le", ct: omCT, body: text("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n# EOF\n"), want: 400, reason: `invalid le label "x"`},
		{name: "om/stateset value 2", ct: omCT, body: text("# TYPE s stateset\ns{s=\"a\"} 2\n# EOF\n"), want: 400, reason: "stateset value 2 must be 0 or 1"},
		{name: "om/info value 2", ct: omCT, body: text("# TYPE b info\nb_info 2\n# EOF\n"), want: 400, reason: "info value 2 must be 1"},
		{name: "om/timestamp", ct: omCT, body: text("a 1 123\n# EOF\n"), want: 400, reason: "must not carry timestamps"},
		{name: "om/bad unit", ct: omCT, body: text("# TYPE a_seconds gauge\n# UNIT a_seconds bytes\na_seconds 1\n# EOF\n"), want: 400, reason: "not a suffix of the family name"},
		{name: "om/interleaved family", ct: omCT, body: text("# TYPE a gauge\na{x=\"1\"} 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n# EOF\n"), want: 400, reason: "not contiguous"},
		{name: "om/series twice", ct: omCT, body: text("a 1\na 2\n# EOF\n"), want: 400, reason: "given twice"},
		{name: "om/bad exemplar", ct: omCT, body: text("# TYPE a counter\na_total 1 # {x=\"1\"\n# EOF\n"), want: 400, reason: "exemplar"},
		{name: "om/duplicate label", ct: omCT, body: text("a{x=\"1\",x=\"2\"} 1\n# EOF\n"), want: 400, reason: `label "x" given twice`},
		{name: "om/negative count", ct: omCT, body: text("# TYPE s summary\ns_count -1\n# EOF\n"), want: 400, reason: "count -1 must be ≥ 0"},
		{name: "om/version 2.0.0", ct: "application/openmetrics-text; version=2.0.0", body: text("a 1\n# EOF\n"), want: 415, reason: `OpenMetrics version "2.0.0"`},

		// --- protobuf ---
		{name: "pb/garbage", ct: protoDelimited, body: text("this is not protobuf at all"), want: 400, reason: "malformed body"},
		{name: "pb/truncated message", ct: protoDelimited, body: goodPB[:len(goodPB)-3], want: 400, reason: "message 1"},
		{name: "pb/truncated second message", ct: protoDelimited, body: append(bytes.Clone(goodPB), goodPB[:4]...), want: 400, reason: "message 2"},
		{name: "pb/length prefix only", ct: protoDelimited, body: []byte{0x7f}, want: 400, reason: "malformed body"},
		{name: "pb/varint overflow", ct: protoDelimited, body: bytes.Repeat([]byte{0xff}, 11), want: 413, reason: "larger than"},
		{name: "pb/length beyond limit", ct: protoDelimited, body: []byte{0xff, 0xff, 0xff, 0x7f, 0x00}, want: 413, reason: "larger than"},
		{name: "pb/counter family with gauge value", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("tm"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}), want: 400, reason: `"tm"`},
		{name: "pb/histogram family with counter value", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("hm"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1)}}}}), want: 400, reason: `"hm"`},
		{name: "pb/unknown type", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("ut"), Type: dto.MetricType(42).Enum(),
			Metric: []*dto.Metric{{Untyped: &dto.Untyped{Value: proto.Float64(1)}}}}), want: 400, reason: "unknown metric type 42"},
		{name: "pb/family twice", ct: protoDelimited, body: pb(t, okCounter, okCounter), want: 400, reason: "metric fresh_total: metric family sent twice in one push"},
		{name: "pb/invalid metric name", ct: protoDelimited, body: pb(t, counterMF("", 1)), want: 400, reason: "invalid metric name"},
		{name: "pb/timestamp", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("ts_total"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1)}, TimestampMs: proto.Int64(1)}}}), want: 400, reason: "must not carry timestamps"},
		{name: "pb/reserved label", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("rl_total"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("__x"), Value: proto.String("1")}}, Counter: &dto.Counter{Value: proto.Float64(1)}}}}), want: 400, reason: `"__x" is reserved`},
		{name: "pb/quantile out of range", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("qs"), Type: dto.MetricType_SUMMARY.Enum(),
			Metric: []*dto.Metric{{Summary: &dto.Summary{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), Quantile: []*dto.Quantile{{Quantile: proto.Float64(1.5), Value: proto.Float64(1)}}}}}}),
			want: 400, reason: "summary quantile 1.5 is outside [0, 1]"},
		{name: "pb/encoding=text", ct: "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text", body: goodPB, want: 415, reason: "encoding=delimited"},
		{name: "pb/other proto", ct: "application/vnd.google.protobuf; proto=foo.Bar; encoding=delimited", body: goodPB, want: 415, reason: "proto=io.prometheus.client.MetricFamily"},

		// --- gzip and encodings ---
		{name: "gzip/garbage", ce: "gzip", body: text("not gzip\n"), want: 400, reason: "invalid gzip body"},
		{name: "gzip/truncated", ce: "gzip", body: gzipBytes(text("fresh 1\n"))[:15], want: 400, reason: "malformed body: unexpected EOF"},
		{name: "gzip/corrupt checksum", ce: "gzip", body: corruptTail(gzipBytes(text("fresh 1\n"))), want: 400, reason: "checksum"},
		{name: "gzip/bomb", ce: "gzip", body: gzipBytes([]byte(big)), want: 413, reason: "push body larger than"},
		{name: "encoding/br", ce: "br", body: text("fresh 1\n"), want: 415, reason: `Content-Encoding "br"`},
		{name: "encoding/deflate", ce: "deflate", body: text("fresh 1\n"), want: 415, reason: "want gzip or none"},
		{name: "encoding/gzip then gzip", ce: "gzip, gzip", body: gzipBytes(gzipBytes(text("fresh 1\n"))), want: 415, reason: "Content-Encoding"},
		{name: "size/oversize body", body: []byte(big + "fresh 1\n"), want: 413, reason: "push body larger than 65536 bytes"},

		// --- grouping paths ---
		{name: "path/odd segments", path: "/metrics/job/x/instance", body: text("fresh 1\n"), want: 400, reason: "odd number of segments"},
		{name: "path/job only", path: "/metrics/job", body: text("fresh 1\n"), want: 400, reason: "odd number of segments"},
		{name: "path/not job first", path: "/metrics/instance/x/job/y", body: text("fresh 1\n"), want: 400, reason: "must start with /job/<job>"},
		{name: "path/empty job", path: "/metrics/job/", body: text("fresh 1\n"), want: 400, reason: "job name must not be empty"},
		{name: "path/empty base64 job", path: "/metrics/job@base64/=", body: text("fresh 1\n"), want: 400, reason: "job name must not be empty"},
		{name: "path/bad base64", path: "/metrics/job/x/a@base64/!!!", body: text("fresh 1\n"), want: 400, reason: "invalid base64url value"},
		{name: "path/standard base64 alphabet", path: "/metrics/job/x/a@base64/a+b/", body: text("fresh 1\n"), want: 400, reason: "odd number of segments"},
		{name: "path/base64 invalid UTF-8", path: "/metrics/job/x/a@base64/_w", body: text("fresh 1\n"), want: 400, reason: "not valid UTF-8"},
		{name: "path/invalid label name", path: "/metrics/job/x//v", body: text("fresh 1\n"), want: 400, reason: "invalid label name"},
		{name: "path/reserved label", path: "/metrics/job/x/__name__/v", body: text("fresh 1\n"), want: 400, reason: `"__name__" is reserved`},
		{name: "path/reserved prefix", path: "/metrics/job/x/__meta/v", body: text("fresh 1\n"), want: 400, reason: `prefix "__"`},
		{name: "path/label twice", path: "/metrics/job/x/a/1/a/2", body: text("fresh 1\n"), want: 400, reason: `grouping label "a" given twice`},
		{name: "path/job twice", path: "/metrics/job/x/job/y", body: text("fresh 1\n"), want: 400, reason: `"job" given twice`},
		{name: "path/clearmode label", path: "/metrics/job/x/clearmode/replace", body: text("fresh 1\n"), want: 400, reason: "set per sample, not per group"},
		{name: "path/label name not UTF-8", path: "/metrics/job/x/%ff/v", body: text("fresh 1\n"), want: 400, reason: `invalid label name "\xff"`},
		{name: "path/trailing slash", path: "/metrics/job/x/", body: text("fresh 1\n"), want: 400, reason: "odd number of segments"},
		{name: "path/delete odd segments", method: "DELETE", path: "/metrics/job/api/instance", want: 400, reason: "odd number of segments"},
		{name: "path/delete empty job", method: "DELETE", path: "/metrics/job/", want: 400, reason: "job name must not be empty"},
		{name: "path/not found", path: "/metricsx/job/x", body: text("fresh 1\n"), want: 404, reason: "not found"},
		{name: "path/api not found", path: "/api/v1/push", body: text("fresh 1\n"), want: 404, reason: "not found"},

		// --- methods ---
		{name: "method/PATCH metrics", method: "PATCH", path: "/metrics", body: text("fresh 1\n"), want: 405, reason: "method not allowed"},
		{name: "method/GET group", method: "GET", path: "/metrics/job/api", want: 405, reason: "method not allowed"},
		{name: "method/PATCH group", method: "PATCH", path: "/metrics/job/api", body: text("fresh 1\n"), want: 405, reason: "method not allowed"},
		{name: "method/POST healthy", method: "POST", path: "/-/healthy", body: text("fresh 1\n"), want: 405, reason: "method not allowed"},
		{name: "method/POST api metrics", method: "POST", path: "/api/v1/metrics", body: text("fresh 1\n"), want: 405, reason: "method not allowed"},
		{name: "method/wipe disabled", method: "PUT", path: "/api/v1/admin/wipe", want: 404, reason: "not found"},
		{name: "method/quit disabled", method: "PUT", path: "/-/quit", want: 403, reason: "Lifecycle API is not enabled"},

		// --- clear modes ---
		{name: "clearmode/unknown", body: text("fresh{clearmode=\"average\"} 1\n"), want: 400, reason: `unknown clearmode "average"`},
		{name: "clearmode/upper case", body: text("fresh{clearmode=\"REPLACE\"} 1\n"), want: 400, reason: `unknown clearmode "REPLACE"`},
		{name: "clearmode/both spellings", body: text("fresh{clearmode=\"sum\",clear_mode=\"sum\"} 1\n"), want: 400, reason: "both clearmode and clear_mode labels given"},
		{name: "clearmode/window zero", body: text("fresh{clearmode=\"mean0s\"} 1\n"), want: 400, reason: "window length must be greater than 0"},
		{name: "clearmode/window too long", body: text("fresh{clearmode=\"mean8d\"} 1\n"), want: 400, reason: "exceeds the maximum 7d"},
		{name: "clearmode/window bad unit", body: text("fresh{clearmode=\"mean5x\"} 1\n"), want: 400, reason: `clearmode "mean5x"`},
		{name: "clearmode/percentile without underscore", body: text("fresh{clearmode=\"p995m\"} 1\n"), want: 400, reason: "needs an underscore"},
		{name: "clearmode/percentile over 100", body: text("fresh{clearmode=\"p101_5m\"} 1\n"), want: 400, reason: "outside [0, 100]"},
		{name: "clearmode/windowed counter", body: text("# TYPE fresh_total counter\nfresh_total{clearmode=\"mean5m\"} 1\n"), want: 400, reason: "applies to gauge and untyped samples, not to a counter"},
		{name: "clearmode/windowed histogram", body: text("# TYPE fh histogram\nfh_bucket{le=\"+Inf\",clearmode=\"max1m\"} 1\nfh_count{clearmode=\"max1m\"} 1\nfh_sum{clearmode=\"max1m\"} 1\n"), want: 400, reason: "not to a histogram"},
		{name: "clearmode/windowed summary", body: text("# TYPE fs summary\nfs_count{clearmode=\"max1m\"} 1\nfs_sum{clearmode=\"max1m\"} 1\n"), want: 400, reason: "not to a summary"},
		{name: "clearmode/windowed NaN", body: text("# TYPE fg gauge\nfg{clearmode=\"mean5m\"} NaN\n"), want: 400, reason: "must be finite"},
		{name: "clearmode/windowed +Inf", body: text("# TYPE fg gauge\nfg{clearmode=\"mean5m\"} +Inf\n"), want: 400, reason: "must be finite"},
		{name: "clearmode/family mixed", body: text("# TYPE fi gauge\nfi{clearmode=\"family\",v=\"1\"} 1\nfi{v=\"2\"} 1\n"), want: 400, reason: "clearmode family mixed with other clear modes"},
		{name: "clearmode/om bad mode", ct: omCT, body: text("a{clearmode=\"bogus\"} 1\n# EOF\n"), want: 400, reason: `unknown clearmode "bogus"`},

		// --- clashes with stored families ---
		{name: "clash/type across groups", path: "/metrics/job/other", body: text("# TYPE requests_total gauge\nrequests_total 1\n"), want: 400, reason: "type gauge clashes with the stored type counter"},
		{name: "clash/type same group", path: "/metrics/job/api", body: text("# TYPE temperature counter\ntemperature 1\n"), want: 400, reason: "type counter clashes with the stored type gauge"},
		{name: "clash/untyped vs counter", path: "/metrics/job/other", body: text("events_total 1\n"), want: 400, reason: "type untyped clashes with the stored type counter"},
		{name: "clash/protobuf type", path: "/metrics/job/other", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("temperature"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1)}}}}), want: 400, reason: "type counter clashes with the stored type gauge"},
		{name: "clash/_bucket of stored histogram", path: "/metrics/job/other", body: text("# TYPE req_duration_seconds_bucket gauge\nreq_duration_seconds_bucket 1\n"), want: 400, reason: "name collides with the _bucket series of histogram req_duration_seconds"},
		{name: "clash/_count of stored histogram", path: "/metrics/job/other", body: text("req_duration_seconds_count 1\n"), want: 400, reason: "_count series of histogram req_duration_seconds"},
		{name: "clash/_sum of stored summary", path: "/metrics/job/other", body: text("# TYPE rpc_seconds_sum counter\nrpc_seconds_sum 1\n"), want: 400, reason: "_sum series of summary rpc_seconds"},
		{name: "clash/histogram exposing stored _sum", path: "/metrics/job/other", body: text("# TYPE disk histogram\ndisk_bucket{le=\"+Inf\"} 1\ndisk_count 1\ndisk_sum 1\n"), want: 400, reason: "histogram would expose disk_sum, which is already a metric family"},
		{name: "clash/summary exposing stored _created", path: "/metrics/job/other", body: text("# TYPE boot summary\nboot_count 1\nboot_sum 1\n"), want: 400, reason: "summary would expose boot_created, which is already a metric family"},
		{name: "clash/_created of stored counter", path: "/metrics/job/other", body: text("# TYPE requests_created gauge\nrequests_created 1\n"), want: 400, reason: "_created series of counter requests_total"},
		{name: "clash/_created of stored histogram", path: "/metrics/job/other", body: text("# TYPE req_duration_seconds_created gauge\nreq_duration_seconds_created 1\n"), want: 400, reason: "_created series of histogram req_duration_seconds"},
		{name: "clash/series across groups", path: "/metrics/job/api/room/a", body: text("# TYPE temperature gauge\ntemperature 1\n"), want: 400, reason: `series already pushed to group {job="api"}`},
		{name: "clash/series in job group from instance group", path: "/metrics/job/api", body: text("# TYPE up_g gauge\nup_g{instance=\"i1\"} 1\n"), want: 400, reason: `series already pushed to group {instance="i1",job="api"}`},
		{name: "clash/series pushed twice in one push", body: text("fresh{a=\"1\"} 1\nfresh{a=\"1\",clearmode=\"sum\"} 2\n"), want: 400, reason: "series pushed twice"},
		{name: "clash/series twice via empty label", body: text("fresh{a=\"\"} 1\nfresh 2\n"), want: 400, reason: "series pushed twice"},

		// --- reserved labels, values ---
		{name: "label/le in histogram via protobuf", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("lh"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("le"), Value: proto.String("1")}}, Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1)}}}}),
			want: 400, reason: `label "le" is reserved in a histogram`},
		{name: "label/quantile in summary via protobuf", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("lq"), Type: dto.MetricType_SUMMARY.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("quantile"), Value: proto.String("1")}}, Summary: &dto.Summary{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1)}}}}),
			want: 400, reason: `label "quantile" is reserved in a summary`},
		{name: "label/duplicate via protobuf", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("dl_total"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("1")}, {Name: proto.String("a"), Value: proto.String("2")}}, Counter: &dto.Counter{Value: proto.Float64(1)}}}}),
			want: 400, reason: `label "a" given twice`},
		{name: "label/invalid UTF-8 value via protobuf", ct: protoDelimited, body: family.AppendDelimited(nil, &family.Family{Name: "iu", Type: family.Gauge,
			Metrics: []family.Metric{{Labels: []family.Label{{Name: "a", Value: "\xff"}}, Value: 1}}}), want: 400, reason: "UTF-8"},
		{name: "label/empty name via protobuf", ct: protoDelimited, body: family.AppendDelimited(nil, &family.Family{Name: "en", Type: family.Gauge,
			Metrics: []family.Metric{{Labels: []family.Label{{Name: "", Value: "x"}}, Value: 1}}}), want: 400, reason: "invalid label name"},
		{name: "value/timestamp in text", body: text("fresh 1 1700000000000\n"), want: 400, reason: "pushed metrics must not carry timestamps"},
		{name: "value/negative counter", body: text("# TYPE fresh_total counter\nfresh_total -1\n"), want: 400, reason: "counter value -1 cannot be aggregated"},
		{name: "value/NaN counter", body: text("# TYPE fresh_total counter\nfresh_total NaN\n"), want: 400, reason: "counter value NaN cannot be aggregated"},
		{name: "value/negative counter onto stored", path: "/metrics/job/api", body: text("# TYPE requests_total counter\nrequests_total{code=\"200\"} -5\n"), want: 400, reason: "must be ≥ 0"},
		{name: "value/non-cumulative buckets", body: text("# TYPE fh histogram\nfh_bucket{le=\"1\"} 5\nfh_bucket{le=\"2\"} 3\nfh_bucket{le=\"+Inf\"} 5\nfh_count 5\nfh_sum 1\n"), want: 400, reason: "not cumulative"},
		{name: "value/+Inf differs from count", body: text("# TYPE fh histogram\nfh_bucket{le=\"1\"} 1\nfh_bucket{le=\"+Inf\"} 3\nfh_count 4\nfh_sum 1\n"), want: 400, reason: "+Inf bucket count 3 differs from sample count 4"},
		{name: "value/bucket exceeds count", body: text("# TYPE fh histogram\nfh_bucket{le=\"1\"} 5\nfh_count 4\nfh_sum 1\n"), want: 400, reason: "exceeds sample count"},
		{name: "value/bucket NaN bound via protobuf", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("nb"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), Bucket: []*dto.Bucket{{UpperBound: proto.Float64(nan()), CumulativeCount: proto.Uint64(1)}}}}}}),
			want: 400, reason: "upper bound NaN"},
		{name: "value/bucket twice via protobuf", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("bt"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(2), SampleSum: proto.Float64(1), Bucket: []*dto.Bucket{
				{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(1)}, {UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(2)}}}}}}),
			want: 400, reason: "le=1 given twice"},
		{name: "value/summary quantile twice via protobuf", ct: protoDelimited, body: pb(t, &dto.MetricFamily{Name: proto.String("sq"), Type: dto.MetricType_SUMMARY.Enum(),
			Metric: []*dto.Metric{{Summary: &dto.Summary{SampleCount: proto.Uint64(1), SampleSum: proto.Float64(1), Quantile: []*dto.Quantile{
				{Quantile: proto.Float64(0.5), Value: proto.Float64(1)}, {Quantile: proto.Float64(0.5), Value: proto.Float64(2)}}}}}}),
			want: 400, reason: "summary quantile 0.5 given twice"},
		{name: "value/text summary count fraction om", ct: omCT, body: text("# TYPE s summary\ns_count 1.5\ns_sum 1\n# EOF\n"), want: 400, reason: "must be a whole number"},

		// --- the gateway's own names ---
		{name: "own/push_time_seconds", body: text("push_time_seconds 1\n"), want: 400, reason: "reserved for the gateway's per-group push time gauge"},
		{name: "own/push_failure_time_seconds gauge", body: text("# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds 1\n"), want: 400, reason: "metric push_failure_time_seconds: name is reserved"},
		{name: "own/gateway_pushes_total as gauge", body: text("# TYPE gateway_pushes_total gauge\ngateway_pushes_total 1\n"), want: 400, reason: "clashes with the gateway's own counter"},
		{name: "own/gateway_idempotency_keys as counter", body: text("# TYPE gateway_idempotency_keys counter\ngateway_idempotency_keys 1\n"), want: 400, reason: "clashes with the gateway's own gauge"},
		{name: "own/promhttp counter as gauge", body: text("# TYPE promhttp_metric_handler_requests_total gauge\npromhttp_metric_handler_requests_total 1\n"), want: 400, reason: "clashes with the gateway's own counter"},

		// --- idempotency keys ---
		{name: "idempotency/key reused for another body", header: http.Header{gateway.IdempotencyKeyHeader: {`"k-1"`}}, body: text("fresh 2\n"),
			setup: pushWithKey(`"k-1"`, "/metrics/job/m", "fresh 1\n"), want: 422, reason: "idempotency key already used for a different request"},
		{name: "idempotency/key reused for another path", path: "/metrics/job/n", header: http.Header{gateway.IdempotencyKeyHeader: {`"k-2"`}}, body: text("fresh 1\n"),
			setup: pushWithKey(`"k-2"`, "/metrics/job/m", "fresh 1\n"), want: 422, reason: "different request"},
		{name: "idempotency/key reused with PUT", method: "PUT", header: http.Header{gateway.IdempotencyKeyHeader: {`"k-3"`}}, body: text("fresh 1\n"),
			setup: pushWithKey(`"k-3"`, "/metrics/job/m", "fresh 1\n"), want: 422, reason: "different request"},
		{name: "idempotency/key twice", header: http.Header{gateway.IdempotencyKeyHeader: {`"a"`, `"b"`}}, body: text("fresh 1\n"), want: 400, reason: "Idempotency-Key given 2 times"},
		{name: "idempotency/empty key", header: http.Header{gateway.IdempotencyKeyHeader: {`""`}}, body: text("fresh 1\n"), want: 400, reason: "Idempotency-Key is empty"},
		{name: "idempotency/unterminated key", header: http.Header{gateway.IdempotencyKeyHeader: {`"abc`}}, body: text("fresh 1\n"), want: 400, reason: "unterminated string"},
		{name: "idempotency/key too long", header: http.Header{gateway.IdempotencyKeyHeader: {strings.Repeat("k", 256)}}, body: text("fresh 1\n"), want: 400, reason: "longer than 255 characters"},
		{name: "idempotency/replayed rejection", header: http.Header{gateway.IdempotencyKeyHeader: {`"k-4"`}}, body: text("fresh x\n"),
			setup: pushWithKey(`"k-4"`, "/metrics/job/m", "fresh x\n"), want: 400, reason: "expected a float"},
	}

	return cases
}

const omCT = "application/openmetrics-text; version=1.0.0; charset=utf-8"

func nan() float64 { var z float64; return z / z }

// corruptTail flips a byte of the gzip trailer (CRC-32).
func corruptTail(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-6] ^= 0xff
	return b
}

// pushWithKey is a setup pushing body with an Idempotency-Key (answered as
// it may be: the case is about the repeat).
func pushWithKey(key, path, body string) func(*testing.T, *inproc) {
	return func(t *testing.T, h *inproc) {
		code, resp := h.do(http.MethodPost, path, http.Header{gateway.IdempotencyKeyHeader: {key}}, []byte(body))
		if code >= 500 {
			t.Fatalf("setup push: %d %s", code, resp)
		}
	}
}

// TestMalformedPushes sends every malformed case to a gateway holding
// baseState and checks the status, the reason and that nothing changed.
func TestMalformedPushes(t *testing.T) {
	cases := malformedCases(t)
	if len(cases) < 100 {
		t.Fatalf("only %d cases", len(cases))
	}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("case %q twice", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if c.want == 0 {
				t.Fatalf("case without an expected status")
			}
			h := newInproc(t)
			if c.setup != nil {
				c.setup(t, h)
			}
			before := h.state()
			method, path := c.method, c.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/metrics/job/m"
			}
			hdr := http.Header{}
			for k, vs := range c.header {
				hdr[k] = vs
			}
			if c.ct != "" {
				hdr.Set("Content-Type", c.ct)
			}
			if c.ce != "" {
				hdr.Set("Content-Encoding", c.ce)
			}
			code, resp := h.do(method, path, hdr, c.body)
			if code != c.want {
				t.Errorf("%s %s: status %d, want %d; body: %s", method, path, code, c.want, resp)
			}
			if !strings.Contains(resp, c.reason) {
				t.Errorf("%s %s: reason %q does not mention %q", method, path, strings.TrimSpace(resp), c.reason)
			}
			if after := h.state(); after != before {
				t.Errorf("%s %s changed the state:\n%s", method, path, diffLines(before, after))
			}
		})
	}
}

// TestOwnSeriesPushedToRootGroup: a push into the root group of one of the
// gateway's own metric names could equal one of its own series, which the
// scrape cannot show twice (it used to be accepted and then hidden from
// /metrics while /api/v1/metrics showed it); it is refused.
func TestOwnSeriesPushedToRootGroup(t *testing.T) {
	h := newInproc(t)
	before := h.state()
	code, resp := h.do(http.MethodPost, "/metrics", nil,
		text("# TYPE gateway_pushes_total counter\ngateway_pushes_total{method=\"PUT\",result=\"success\"} 1000\n"))
	if code != http.StatusBadRequest || !strings.Contains(resp, "gateway_pushes_total") {
		t.Errorf("status %d %q, want 400 naming gateway_pushes_total", code, resp)
	}
	if after := h.state(); after != before {
		t.Errorf("state changed:\n%s", diffLines(before, after))
	}
}

// TestCounterTotalBesideHistogramOfBaseName: counter foo_total and
// histogram (or summary) foo are both family foo in an OpenMetrics scrape (it
// used to show two "# TYPE foo" blocks and foo_created twice, which
// OpenMetrics parsers refuse), so the second is refused, in one push, across
// groups, and beside the gateway's own counter gateway_pushes_total.
func TestCounterTotalBesideHistogramOfBaseName(t *testing.T) {
	for _, c := range []struct{ name, path, setup, body string }{
		{"one push", "/metrics/job/x", "",
			"# TYPE foo_total counter\nfoo_total 1\n# TYPE foo histogram\nfoo_bucket{le=\"+Inf\"} 1\nfoo_count 1\nfoo_sum 1\n"},
		{"summary after stored counter", "/metrics/job/y", "# TYPE requests_total counter\nrequests_total 1\n",
			"# TYPE requests summary\nrequests_count 1\nrequests_sum 1\n"},
		{"histogram beside the gateway's own counter", "/metrics/job/x", "",
			"# TYPE gateway_pushes histogram\ngateway_pushes_bucket{le=\"+Inf\"} 1\ngateway_pushes_count 1\ngateway_pushes_sum 1\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newInproc(t)
			if c.setup != "" {
				if code, resp := h.do(http.MethodPost, "/metrics/job/z", nil, text(c.setup)); code != http.StatusOK {
					t.Fatalf("setup: %d %s", code, resp)
				}
			}
			code, resp := h.do(http.MethodPost, c.path, nil, text(c.body))
			if code == http.StatusBadRequest {
				return
			}
			_, om := h.do(http.MethodGet, "/metrics", http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}}, nil)
			t.Errorf("push answered %d %q, want 400; OpenMetrics families named twice: %v", code, resp, duplicateOMFamilies(om))
		})
	}
}

// duplicateOMFamilies lists the family names with more than one # TYPE line.
func duplicateOMFamilies(om string) []string {
	seen := map[string]int{}
	var dups []string
	for line := range strings.Lines(om) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			if seen[f[2]]++; seen[f[2]] == 2 {
				dups = append(dups, f[2])
			}
		}
	}
	return dups
}
