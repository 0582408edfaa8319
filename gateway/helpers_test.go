package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

const protoDelimited = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

// testGateway is a gateway behind an httptest server on 127.0.0.1.
type testGateway struct {
	t     *testing.T
	srv   *httptest.Server
	store *gateway.MemoryStore
}

func newTestGateway(t *testing.T) *testGateway {
	t.Helper()
	store := gateway.NewMemoryStore(gateway.StoreOptions{})
	gw, err := gateway.New(store, gateway.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(gw) // httptest listens on 127.0.0.1.
	t.Cleanup(srv.Close)
	return &testGateway{t: t, srv: srv, store: store}
}

// do sends a request and returns the status code and body.
func (g *testGateway) do(method, path string, body []byte, header http.Header) (int, string) {
	g.t.Helper()
	req, err := http.NewRequest(method, g.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatalf("request: %v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("reading response: %v", err)
	}
	return resp.StatusCode, string(b)
}

// push sends a text body and fails the test unless the answer is want.
func (g *testGateway) push(method, path, body string, want int) string {
	g.t.Helper()
	code, resp := g.do(method, path, []byte(body), nil)
	if code != want {
		g.t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, code, want, resp)
	}
	return resp
}

// scrapeFamilies GETs /metrics as text and parses it.
func (g *testGateway) scrapeFamilies() map[string]*dto.MetricFamily {
	g.t.Helper()
	code, body := g.do(http.MethodGet, "/metrics", nil, http.Header{"Accept": {"text/plain; version=0.0.4"}})
	if code != http.StatusOK {
		g.t.Fatalf("GET /metrics: status %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		g.t.Fatalf("parsing scrape: %v\n%s", err, body)
	}
	return fams
}

// scrape returns the pushed samples of GET /metrics (the gateway's own
// metrics left out) as "name{a="1",b="2"}" → value.
func (g *testGateway) scrape() map[string]float64 {
	g.t.Helper()
	return pushedSamples(g.t, g.scrapeFamilies())
}

func isOwn(name string) bool {
	if name == gateway.PushTimeMetric || name == gateway.PushFailureTimeMetric {
		return true // Per-group push times: wall clock values (pushtime_test.go checks them).
	}
	for _, p := range []string{"go_", "process_", "promhttp_", "gateway_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func pushedSamples(t *testing.T, fams map[string]*dto.MetricFamily) map[string]float64 {
	t.Helper()
	var list []*dto.MetricFamily
	for name, mf := range fams {
		if !isOwn(name) {
			list = append(list, mf)
		}
	}
	vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, list...)
	if err != nil {
		t.Fatalf("extracting samples: %v", err)
	}
	out := make(map[string]float64, len(vec))
	for _, s := range vec {
		out[sampleID(s.Metric)] = float64(s.Value)
	}
	return out
}

// sampleID renders a sample as name{a="1",b="2"} with sorted labels.
func sampleID(m model.Metric) string {
	names := make([]string, 0, len(m))
	for n := range m {
		if n != model.MetricNameLabel {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(string(m[model.MetricNameLabel]))
	if len(names) > 0 {
		b.WriteByte('{')
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", n, m[model.LabelName(n)])
		}
		b.WriteByte('}')
	}
	return b.String()
}

// assertSamples compares got with want exactly.
func assertSamples(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			t.Errorf("missing %s (want %v)", k, want[k])
		} else if g != want[k] {
			t.Errorf("%s = %v, want %v", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %v", k, got[k])
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeClock is a clock the tests move by hand (StoreOptions.Now and the
// idempotency cache take its Now).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t0 time.Time) *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d and returns the new time.
func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
