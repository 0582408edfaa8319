package gateway_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// inproc is a gateway served in-process (no sockets) on a fake clock, with
// a registry of its own (no Go and process collectors, whose values move),
// seeded with a non-empty state: the harness of the fuzz and malformed-input
// tests.
type inproc struct {
	tb    testing.TB
	gw    http.Handler
	clock *fakeClock
	reg   *prometheus.Registry // the gateway's own metrics
}

// inprocMaxBody is the push body limit of the harness (small, so the 413
// cases need no 32 MiB bodies).
const inprocMaxBody = 64 << 10

// baseState is pushed before every case: every type, clear modes, grouping
// labels, the root group, several groups holding one name.
var baseState = []struct{ method, path, body string }{
	{"PUT", "/metrics/job/api", `# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{code="200"} 5
requests_total{code="500"} 1
# TYPE temperature gauge
temperature{room="a"} 21.5
# TYPE req_duration_seconds histogram
req_duration_seconds_bucket{le="0.1"} 1
req_duration_seconds_bucket{le="1"} 3
req_duration_seconds_bucket{le="+Inf"} 4
req_duration_seconds_sum 2.5
req_duration_seconds_count 4
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds_sum 1
rpc_seconds_count 3
# TYPE jobs untyped
jobs 7
`},
	{"POST", "/metrics/job/api/instance/i1", `# TYPE requests_total counter
requests_total{code="200"} 2
# TYPE up_g gauge
up_g 1
# TYPE load gauge
load{clearmode="mean5m"} 3
load{clearmode="mean5m",core="1"} 5
`},
	{"POST", "/metrics/job/batch", `# TYPE build_info gauge
build_info{clearmode="family",version="1.2"} 1
# TYPE events_total counter
events_total 10
# TYPE queue_depth gauge
queue_depth{clearmode="replace"} 4
# TYPE disk_sum gauge
disk_sum 3
# TYPE boot_created gauge
boot_created 1.7e9
`},
	{"PUT", "/metrics", `# TYPE root_metric gauge
root_metric 1
`},
}

func newInproc(tb testing.TB) *inproc {
	tb.Helper()
	clock := newFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	store := gateway.NewMemoryStore(gateway.StoreOptions{Now: clock.Now})
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(store, gateway.Options{
		Registry:     reg,
		MaxBodyBytes: inprocMaxBody,
		Idempotency:  gateway.IdempotencyOptions{Now: clock.Now},
	})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	h := &inproc{tb: tb, gw: gw, clock: clock, reg: reg}
	for _, p := range baseState {
		if code, body := h.do(p.method, p.path, nil, []byte(p.body)); code != http.StatusOK {
			tb.Fatalf("seeding %s %s: %d %s", p.method, p.path, code, body)
		}
	}
	clock.Add(time.Second) // pushes and failures after the seed get other times
	return h
}

// serve runs one request through the gateway.
func (h *inproc) serve(req *http.Request) (int, string) {
	rec := httptest.NewRecorder()
	h.gw.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func (h *inproc) do(method, target string, header http.Header, body []byte) (int, string) {
	h.tb.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, vs := range header {
		req.Header[k] = vs
	}
	return h.serve(req)
}

// scrapeText is GET /metrics in the text format, raw.
func (h *inproc) scrapeText() string {
	h.tb.Helper()
	code, body := h.do(http.MethodGet, "/metrics", http.Header{"Accept": {"text/plain; version=0.0.4"}}, nil)
	if code != http.StatusOK {
		h.tb.Fatalf("GET /metrics: %d %s", code, body)
	}
	return body
}

// state is everything a push can change, as bytes: the text scrape and
// /api/v1/metrics, without what changes by design on every request (the
// gateway's own metrics) and on every rejected push (each group's
// push_failure_time_seconds and last_push_successful, and the group a
// failure into a new group path creates, which has nothing but zero push
// times).
func (h *inproc) state() string {
	h.tb.Helper()
	scrape := h.scrapeText()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.tb.Fatal(err)
	}
	own := map[string]bool{}
	for _, mf := range mfs {
		own[mf.GetName()] = true
	}
	var b strings.Builder
	for line := range strings.Lines(scrape) {
		name := lineMetricName(line)
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(name, suf); ok && own[s] {
				base = s
			}
		}
		switch {
		case own[base], name == gateway.PushFailureTimeMetric:
			continue
		case name == gateway.PushTimeMetric && strings.HasSuffix(line, " 0\n"):
			continue // a group created by a failure
		}
		b.WriteString(line)
	}
	b.WriteString("---- /api/v1/metrics\n")
	b.WriteString(h.apiState())
	return b.String()
}

// apiState is /api/v1/metrics normalised as state describes.
func (h *inproc) apiState() string {
	h.tb.Helper()
	code, body := h.do(http.MethodGet, "/api/v1/metrics", nil, nil)
	if code != http.StatusOK {
		h.tb.Fatalf("GET /api/v1/metrics: %d %s", code, body)
	}
	var resp struct {
		Status string           `json:"status"`
		Data   []map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Status != "success" {
		h.tb.Fatalf("GET /api/v1/metrics: %v: %s", err, body)
	}
	var groups []map[string]any
	for _, g := range resp.Data {
		delete(g, gateway.PushFailureTimeMetric)
		delete(g, "last_push_successful")
		pt, _ := g[gateway.PushTimeMetric].(map[string]any)
		if pt == nil {
			h.tb.Fatalf("group without %s: %v", gateway.PushTimeMetric, g)
		}
		delete(pt, "time_stamp") // the group's last change, failures included
		if len(g) == 2 && fmt.Sprint(pt["metrics"]) == fmt.Sprint([]any{map[string]any{"labels": g["labels"], "value": "0"}}) {
			continue // only push times, never pushed: created by a failure
		}
		groups = append(groups, g)
	}
	out, err := json.MarshalIndent(groups, "", " ") // map keys sorted
	if err != nil {
		h.tb.Fatal(err)
	}
	return string(out) + "\n"
}

// lineMetricName is the metric name of a text-format line: the name a
// # HELP or # TYPE line describes, or a sample's name ("" for others).
func lineMetricName(line string) string {
	if rest, ok := strings.CutPrefix(line, "# "); ok {
		f := strings.Fields(rest)
		if len(f) >= 2 && (f[0] == "HELP" || f[0] == "TYPE") {
			return strings.Trim(f[1], `"`)
		}
		return ""
	}
	if strings.HasPrefix(line, "{") { // {"quoted.name",…}
		if end := strings.Index(line[2:], `"`); end >= 0 {
			return line[2 : 2+end]
		}
	}
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		return line[:i]
	}
	return ""
}

// checkScrape fails unless the text scrape parses with expfmt and has no
// series, HELP or TYPE twice (what promtool check metrics and Prometheus'
// own parser would refuse), and the OpenMetrics scrape and the JSON API
// answer.
func (h *inproc) checkScrape(t testing.TB) {
	t.Helper()
	text := h.scrapeText()
	if _, err := parseText(strings.NewReader(text)); err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, text)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		var key string
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			key = strings.Join(strings.Fields(line)[:3], " ")
		} else if !strings.HasPrefix(line, "#") && line != "" {
			i := strings.LastIndexByte(line, ' ')
			if i < 0 {
				t.Fatalf("scrape line without a value: %q", line)
			}
			key = line[:i] // the series: name and labels, as the encoder wrote them
		} else {
			continue
		}
		if seen[key] {
			t.Fatalf("scrape has %q twice:\n%s", key, text)
		}
		seen[key] = true
	}
	code, om := h.do(http.MethodGet, "/metrics", http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}}, nil)
	if code != http.StatusOK || !strings.HasSuffix(om, "# EOF\n") {
		t.Fatalf("OpenMetrics scrape: %d\n%s", code, om)
	}
	h.apiState()
	if code, body := h.do(http.MethodGet, "/status", nil, nil); code != http.StatusOK {
		t.Fatalf("GET /status: %d %s", code, body)
	}
}

// parseText parses a text-format scrape with expfmt.
func parseText(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func readSeed(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// Header values FuzzPushHandler picks from.
var (
	fuzzContentTypes = []string{
		"",
		"text/plain; version=0.0.4; charset=utf-8",
		protoDelimited,
		"application/openmetrics-text; version=1.0.0; charset=utf-8",
		"application/openmetrics-text; version=0.0.1",
		"application/openmetrics-text; version=9",
		"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text",
		"application/json",
	}
	// 1 and 4: the harness compresses the body; 2: gzip declared, raw body.
	fuzzEncodings = []string{"", "gzip", "gzip", "br", "x-gzip"}
)

// FuzzPushHandler pushes one fuzzed request (method, grouping path,
// Content-Type, Content-Encoding, optional Idempotency-Key, body) into a
// gateway holding baseState, and checks: no panic; the answer is 2xx or 4xx,
// never 5xx; a 4xx has a reason and leaves the state (scrape and
// /api/v1/metrics) byte-identical; after a 2xx the scrape parses and has no
// series twice. An accepted push is then repeated: with its key it is
// replayed (same answer, state unchanged), without a key it is applied
// again under the same rules.
func FuzzPushHandler(f *testing.F) {
	for i, name := range []string{
		"client-golang-1.25.txt", "gravel-issue-17-empty-family.txt", "gravel-issue-3-push-a.txt",
		"gravel-issue-3-push-b.txt", "gravel-issue-5-jvm.txt", "prom-client-15.1.txt", "python-client-0.16.txt",
	} {
		f.Add(uint8(i), "/job/fuzz", uint8(i%2), uint8(i%2), false, readSeed(f, name))
	}
	f.Add(uint8(0), "/job/fuzz/instance@base64/L3Zhci90bXA", uint8(3), uint8(0), true, readSeed(f, "python-client-0.16.openmetrics.txt"))
	f.Add(uint8(1), "/job/api", uint8(2), uint8(1), true, readSeed(f, "client-golang-1.25.pb-delimited.bin"))
	for _, p := range baseState {
		f.Add(uint8(1), strings.TrimPrefix(p.path, "/metrics"), uint8(0), uint8(0), false, []byte(p.body))
	}
	f.Add(uint8(1), "/job/api", uint8(0), uint8(0), false, []byte("requests_total{code=\"200\"} -1\n"))
	f.Add(uint8(1), "/job/api/instance/i1", uint8(0), uint8(0), false, []byte("# TYPE temperature gauge\ntemperature{room=\"a\"} 1\n"))
	f.Add(uint8(1), "/job/x", uint8(0), uint8(0), false, []byte("# TYPE req_duration_seconds_count gauge\nreq_duration_seconds_count 1\n"))

	f.Fuzz(func(t *testing.T, method uint8, path string, ctIdx, ceIdx uint8, withKey bool, body []byte) {
		target, err := url.ParseRequestURI("/metrics" + path)
		if err != nil || target.Host != "" {
			return // not a request line a server would pass on
		}
		h := newInproc(t)
		hdr := http.Header{}
		if c := fuzzContentTypes[int(ctIdx)%len(fuzzContentTypes)]; c != "" {
			hdr.Set("Content-Type", c)
		}
		enc := int(ceIdx) % len(fuzzEncodings)
		wire := body
		if e := fuzzEncodings[enc]; e != "" {
			hdr.Set("Content-Encoding", e)
			if enc == 1 || enc == 4 {
				wire = gzipBytes(body)
			}
		}
		if withKey {
			hdr.Set(gateway.IdempotencyKeyHeader, `"fuzz-key"`)
		}
		m := http.MethodPost
		if method%2 == 0 {
			m = http.MethodPut
		}
		push := func() (int, string) {
			req := httptest.NewRequest(m, target.RequestURI(), bytes.NewReader(wire))
			req.Header = hdr.Clone()
			return h.serve(req)
		}

		for round := 0; round < 2; round++ {
			before := h.state()
			code, resp := push()
			switch {
			case code >= 500:
				t.Fatalf("round %d: %s %s: server error %d: %s", round, m, target, code, resp)
			case code >= 400:
				if strings.TrimSpace(resp) == "" {
					t.Fatalf("round %d: %s %s: %d without a reason", round, m, target, code)
				}
				if after := h.state(); after != before {
					t.Fatalf("round %d: %s %s: %d %q changed the state:\n%s", round, m, target, code, resp, diffLines(before, after))
				}
				return
			case code < 200 || code >= 300:
				t.Fatalf("round %d: %s %s: status %d: %s", round, m, target, code, resp)
			}
			h.checkScrape(t)
			if withKey {
				after := h.state()
				code2, resp2 := push()
				if code2 != code || resp2 != resp {
					t.Fatalf("replay answered %d %q, first %d %q", code2, resp2, code, resp)
				}
				if again := h.state(); again != after {
					t.Fatalf("replayed push changed the state:\n%s", diffLines(after, again))
				}
				return
			}
		}
	})
}

// diffLines lists the lines only in a or only in b.
func diffLines(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range la {
		if !slices.Contains(lb, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range lb {
		if !slices.Contains(la, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
