package gateway_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

const openMetricsType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

var omHeader = http.Header{"Content-Type": {openMetricsType}}

// decodeOM parses an OpenMetrics body into families by name.
func decodeOM(t *testing.T, body string) map[string]family.Family {
	t.Helper()
	fams, err := gateway.DecodeBody(strings.NewReader(body), omHeader, 0)
	if err != nil {
		t.Fatalf("DecodeBody: %v\n%s", err, body)
	}
	out := map[string]family.Family{}
	for _, f := range fams {
		out[f.Name] = f
	}
	return out
}

// The Python client's OpenMetrics output pushes and scrapes like its text
// output: same names, types, values and HELP.
func TestOpenMetricsPythonFixture(t *testing.T) {
	om := newTestGateway(t)
	code, body := om.do(http.MethodPost, "/metrics/job/py", readFixture(t, "python-client-0.16.openmetrics.txt"), omHeader)
	if code != http.StatusOK {
		t.Fatalf("OpenMetrics push: %d %s", code, body)
	}
	want := map[string]float64{
		`orders_processed_total{job="py",outcome="ok"}`:         3,
		`orders_processed_total{job="py",outcome="rejected"}`:   1,
		`queue_depth{job="py"}`:                                 17,
		`payment_latency_seconds_bucket{job="py",le="0.05"}`:    1,
		`payment_latency_seconds_bucket{job="py",le="0.1"}`:     2,
		`payment_latency_seconds_bucket{job="py",le="0.25"}`:    3,
		`payment_latency_seconds_bucket{job="py",le="0.5"}`:     3,
		`payment_latency_seconds_bucket{job="py",le="1"}`:       4,
		`payment_latency_seconds_bucket{job="py",le="+Inf"}`:    4,
		`payment_latency_seconds_count{job="py"}`:               4,
		`payment_latency_seconds_sum{job="py"}`:                 1.02,
		`request_size_bytes_count{job="py"}`:                    2,
		`request_size_bytes_sum{job="py"}`:                      2560,
		`build_info{commit="9f1c2ab",job="py",version="1.4.2"}`: 1,
		`breaker_state{breaker_state="closed",job="py"}`:        0,
		`breaker_state{breaker_state="open",job="py"}`:          1,
		`breaker_state{breaker_state="half_open",job="py"}`:     0,
	}
	assertSamples(t, om.scrape(), want)

	text := newTestGateway(t)
	if code, body := text.do(http.MethodPost, "/metrics/job/py", readFixture(t, "python-client-0.16.txt"), nil); code != http.StatusOK {
		t.Fatalf("text push: %d %s", code, body)
	}
	assertSamples(t, text.scrape(), want)

	omFams, textFams := om.scrapeFamilies(), text.scrapeFamilies()
	for name, typ := range map[string]dto.MetricType{
		"orders_processed_total": dto.MetricType_COUNTER, "queue_depth": dto.MetricType_GAUGE,
		"payment_latency_seconds": dto.MetricType_HISTOGRAM, "request_size_bytes": dto.MetricType_SUMMARY,
		"build_info": dto.MetricType_GAUGE, "breaker_state": dto.MetricType_GAUGE,
	} {
		if got := omFams[name].GetType(); got != typ {
			t.Errorf("%s: type %v, want %v", name, got, typ)
		}
		if omFams[name].GetHelp() != textFams[name].GetHelp() || omFams[name].GetHelp() == "" {
			t.Errorf("%s: HELP %q (OpenMetrics) vs %q (text)", name, omFams[name].GetHelp(), textFams[name].GetHelp())
		}
	}

	// Gzip works as for the other formats; a second push aggregates.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(readFixture(t, "python-client-0.16.openmetrics.txt"))
	zw.Close()
	hdr := http.Header{"Content-Type": {openMetricsType}, "Content-Encoding": {"gzip"}}
	if code, body := om.do(http.MethodPost, "/metrics/job/py", buf.Bytes(), hdr); code != http.StatusOK {
		t.Fatalf("gzip OpenMetrics push: %d %s", code, body)
	}
	if got := om.scrape()[`orders_processed_total{job="py",outcome="ok"}`]; got != 6 {
		t.Errorf("after two pushes orders_processed_total = %v, want 6", got)
	}
}

// Every OpenMetrics type maps to the family the text format would carry.
func TestOpenMetricsTypes(t *testing.T) {
	fams := decodeOM(t, `# TYPE c counter
# HELP c A "counter" \\ with\nescapes.
c_total{a="1"} 5 # {trace_id="abc"} 1.0 1700000000.5
c_created{a="1"} 1700000000.25
# TYPE g_seconds gauge
# UNIT g_seconds seconds
g_seconds 2.5
# TYPE u unknown
u -Inf
# TYPE h histogram
h_bucket{le="1"} 1 # {trace_id="x"} 0.5
h_bucket{le="+Inf"} 3
h_sum 7
h_created 1600000000
# TYPE gh gaugehistogram
gh_bucket{le="0.5"} 2
gh_bucket{le="+Inf"} 4
gh_gcount 4
gh_gsum 1.5
# TYPE s summary
s{quantile="0.5"} 0.2
s{quantile="0.99"} 0.9
s_count 10
s_sum 3
s_created 1600000001
# TYPE b info
b_info{version="1"} 1
# TYPE st stateset
st{st="a"} 1
st{st="b"} 0
plain 4
{"dotted.name",a="x"} 1
# EOF
`)
	// Exemplars are checked and dropped: family values have no place for
	// them.
	c := fams["c_total"]
	if c.Type != family.Counter || c.Help != "A \"counter\" \\ with\nescapes." || len(c.Metrics) != 1 {
		t.Errorf("counter family: %+v", c)
	}
	cm := c.Metrics[0]
	if cm.Value != 5 || famLabels(cm)["a"] != "1" || len(cm.Labels) != 1 {
		t.Errorf("counter value/labels: %+v", cm)
	}
	if ts := cm.Created; ts.Unix() != 1700000000 || ts.Nanosecond() != 250000000 {
		t.Errorf("counter created %v, want 1700000000.25", ts)
	}
	if g := fams["g_seconds"]; g.Type != family.Gauge || len(g.Metrics) != 1 || g.Metrics[0].Value != 2.5 {
		t.Errorf("gauge: %+v", g)
	}
	if u := fams["u"]; u.Type != family.Untyped || len(u.Metrics) != 1 || u.Metrics[0].Value > -1e308 {
		t.Errorf("unknown: %+v", u)
	}
	h := fams["h"].Metrics[0]
	if fams["h"].Type != family.Histogram || h.Count != 3 || h.Sum != 7 ||
		len(h.Buckets) != 2 || h.Buckets[0] != (family.Bucket{UpperBound: 1, Count: 1}) || h.Buckets[1].Count != 3 ||
		h.Created.Unix() != 1600000000 || h.Created.Nanosecond() != 0 {
		t.Errorf("histogram (count from +Inf, exemplar dropped, created kept): %+v", h)
	}
	gh := fams["gh"].Metrics[0]
	if fams["gh"].Type != family.GaugeHistogram || gh.Count != 4 || gh.Sum != 1.5 || len(gh.Buckets) != 2 || !gh.Created.IsZero() {
		t.Errorf("gauge histogram: %+v", fams["gh"])
	}
	sm := fams["s"].Metrics[0]
	if fams["s"].Type != family.Summary || sm.Count != 10 || sm.Sum != 3 ||
		len(sm.Quantiles) != 2 || sm.Quantiles[0] != (family.Quantile{Quantile: 0.5, Value: 0.2}) || sm.Quantiles[1] != (family.Quantile{Quantile: 0.99, Value: 0.9}) ||
		sm.Created.Unix() != 1600000001 {
		t.Errorf("summary: %+v", sm)
	}
	info := fams["b_info"]
	if info.Type != family.Gauge || info.Metrics[0].Value != 1 {
		t.Errorf("info: %+v", info)
	}
	if got := famLabels(info.Metrics[0]); got["version"] != "1" || got["clearmode"] != "family" {
		t.Errorf("info labels %v, want version and clearmode=family", got)
	}
	if st := fams["st"]; st.Type != family.Gauge || len(st.Metrics) != 2 {
		t.Errorf("stateset: %+v", st)
	}
	if p := fams["plain"]; p.Type != family.Untyped || len(p.Metrics) != 1 {
		t.Errorf("sample without TYPE: %+v, want untyped", p)
	}
	if d := fams["dotted.name"]; len(d.Metrics) != 1 || d.Metrics[0].Value != 1 || famLabels(d.Metrics[0])["a"] != "x" {
		t.Errorf("quoted name: %+v", d)
	}
}

// famLabels returns a pushed metric's labels by name.
func famLabels(m family.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Labels {
		out[l.Name] = l.Value
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// Malformed OpenMetrics bodies are rejected with the offending line.
func TestOpenMetricsMalformed(t *testing.T) {
	tests := []struct {
		name, body string
		line       int
		want       string
	}{
		{"missing EOF", "# TYPE a gauge\na 1\n", 3, "# EOF"},
		{"missing EOF, no final line feed", "a 1", 1, "# EOF"},
		{"empty body", "", 1, "# EOF"},
		{"content after EOF", "a 1\n# EOF\nb 1\n", 3, "after # EOF"},
		{"blank line after EOF", "a 1\n# EOF\n\n", 3, "after # EOF"},
		{"empty line", "a 1\n\nb 1\n# EOF\n", 2, "empty line"},
		{"carriage return", "a 1\r\n# EOF\n", 1, "carriage return"},
		{"timestamp", "# TYPE a gauge\na 1 1700000000\n# EOF\n", 2, "timestamps"},
		{"other comment", "# just a comment\n# EOF\n", 1, "unexpected comment"},
		{"TYPE after samples", "a 1\n# TYPE a gauge\n# EOF\n", 2, "after the family's samples"},
		{"TYPE twice", "# TYPE a gauge\n# TYPE a gauge\n# EOF\n", 2, "twice"},
		{"unknown type", "# TYPE a untyped\n# EOF\n", 1, "unknown type"},
		{"interleaved families", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n# EOF\n", 5, "not contiguous"},
		{"interleaved metrics", "# TYPE h histogram\nh_bucket{x=\"1\",le=\"+Inf\"} 1\nh_bucket{x=\"2\",le=\"+Inf\"} 1\nh_count{x=\"1\"} 1\n# EOF\n", 4, "contiguous"},
		{"counter sample without _total", "# TYPE c counter\nc 1\n# EOF\n", 2, "c_total"},
		{"counter with only _created", "# TYPE c counter\nc_created 1\n# EOF\n", 2, "without a c_total"},
		{"info value", "# TYPE b info\nb_info{v=\"1\"} 2\n# EOF\n", 2, "must be 1"},
		{"stateset value", "# TYPE s stateset\ns{s=\"a\"} 0.5\n# EOF\n", 2, "0 or 1"},
		{"stateset without state label", "# TYPE s stateset\ns{x=\"a\"} 1\n# EOF\n", 2, "state label"},
		{"histogram without +Inf", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n# EOF\n", 2, "+Inf"},
		{"bucket without le", "# TYPE h histogram\nh_bucket 1\n# EOF\n", 2, `"le"`},
		{"negative bucket", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} -1\n# EOF\n", 2, "≥ 0"},
		{"summary count not whole", "# TYPE s summary\ns_count 1.5\n# EOF\n", 2, "whole"},
		{"duplicate sample", "# TYPE c counter\nc_total 1\nc_total 2\n# EOF\n", 3, "twice"},
		{"duplicate gauge series", "# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n# EOF\n", 3, "twice"},
		{"invalid number", "a 0x10\n# EOF\n", 1, "invalid number"},
		{"missing value", "a\n# EOF\n", 1, "space before the value"},
		{"unterminated label value", "a{x=\"1} 1\n# EOF\n", 1, "unterminated"},
		{"trailing comma", "a{x=\"1\",} 1\n# EOF\n", 1, "trailing comma"},
		{"label without quotes", "a{x=1} 1\n# EOF\n", 1, "quoted value"},
		{"duplicate label", "a{x=\"1\",x=\"2\"} 1\n# EOF\n", 1, "twice"},
		{"unit not a suffix", "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n", 1, "suffix"},
		{"bad exemplar", "# TYPE c counter\nc_total 1 # trace 1\n# EOF\n", 2, "exemplar"},
		{"invalid UTF-8", "a{x=\"\xff\"} 1\n# EOF\n", 1, "UTF-8"},
		{"same converted name twice", "# TYPE c counter\nc_total 1\n# TYPE c_total gauge\nc_total 2\n# EOF\n", 3, "becomes c_total"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.DecodeBody(strings.NewReader(tc.body), omHeader, 0)
			var ve *gateway.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			if ve.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q (line %d), want line %d and %q", err, ve.Line, tc.line, tc.want)
			}
		})
	}
}

// Over HTTP a malformed body is a 400 naming the line, and changes nothing.
func TestOpenMetricsRejectedOverHTTP(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE c_total counter\nc_total 1\n", http.StatusOK)
	for body, want := range map[string]string{
		"# TYPE c counter\nc_total 1\n":            "line 3: missing # EOF",
		"# TYPE c counter\nc_total 1 123\n# EOF\n": "line 2: metric c_total: pushed metrics must not carry timestamps",
		"# TYPE c counter\nc_total -1\n# EOF\n":    "c_total",         // validated like any push
		"# TYPE c gauge\nc_total 1\n# EOF\n":       "untyped clashes", // c_total is no sample of gauge c
		"# TYPE c_total gauge\nc_total 1\n# EOF\n": "clashes",
	} {
		code, resp := g.do(http.MethodPost, "/metrics/job/j", []byte(body), omHeader)
		if code != http.StatusBadRequest || !strings.Contains(resp, want) {
			t.Errorf("%q: %d %q, want 400 containing %q", body, code, resp, want)
		}
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 1})
}

// Info metrics default to clear mode family: the latest push's label sets are
// the family in that group. An explicit clear mode label wins.
func TestOpenMetricsInfoDefaultsToFamily(t *testing.T) {
	g := newTestGateway(t)
	push := func(body string) {
		t.Helper()
		if code, resp := g.do(http.MethodPost, "/metrics/job/j", []byte(body), omHeader); code != http.StatusOK {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	push("# TYPE build info\nbuild_info{version=\"1.0\"} 1\n# EOF\n")
	push("# TYPE build info\nbuild_info{version=\"1.1\"} 1\n# EOF\n")
	assertSamples(t, g.scrape(), map[string]float64{`build_info{job="j",version="1.1"}`: 1})

	push("# TYPE other info\nother_info{v=\"a\",clearmode=\"replace\"} 1\n# EOF\n")
	push("# TYPE other info\nother_info{v=\"b\",clearmode=\"replace\"} 1\n# EOF\n")
	assertSamples(t, g.scrape(), map[string]float64{
		`build_info{job="j",version="1.1"}`: 1, `other_info{job="j",v="a"}`: 1, `other_info{job="j",v="b"}`: 1,
	})

	// Statesets are gauges: each state replaced.
	push("# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# EOF\n")
	push("# TYPE st stateset\nst{st=\"a\"} 0\nst{st=\"b\"} 1\n# EOF\n")
	got := g.scrape()
	if got[`st{job="j",st="a"}`] != 0 || got[`st{job="j",st="b"}`] != 1 {
		t.Errorf("stateset after two pushes: %v", got)
	}
}
