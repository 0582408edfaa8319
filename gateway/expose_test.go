package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// randomStore fills a store with random pushes: every type, windowed modes,
// several groups sharing names, HELP and label values needing escapes,
// UTF-8 label names, created timestamps, float histogram counts, failures.
func randomStore(t *testing.T, rng *rand.Rand, now func() time.Time) *MemoryStore {
	t.Helper()
	s := NewMemoryStore(StoreOptions{Now: now})
	values := []string{"x", "y", `q"uo"te`, `back\slash`, "new\nline", "ünï©ødé", "0", "10", "9", "a b", "z"}
	lnames := []string{"a", "b", "instance2", "m", "zz", "ü_label", "dotted.name", "colon:name"}
	helps := []string{"", "plain help", "with \\ backslash and \"quotes\" and\nnewline", "ünïcode"}
	floats := []float64{0, 1, -1, 0.5, 1e-9, 123456789012, 3.14159, -2.5e21, math.Inf(1), math.Inf(-1), math.NaN(), 1e21, 100}
	type spec struct {
		name string
		typ  fam.Type
	}
	specs := []spec{
		{"a_counter_total", fam.Counter}, {"b_counter", fam.Counter}, {"c_gauge", fam.Gauge},
		{"d_untyped", fam.Untyped}, {"e_hist", fam.Histogram}, {"f_summary", fam.Summary},
		{"g_window", fam.Gauge}, {"gateway_zz_custom", fam.Gauge}, {"push_u", fam.Gauge},
		{"zz_gaugehist", fam.GaugeHistogram}, {"go_custom_x", fam.Counter}, {"h_window_untyped", fam.Untyped},
	}
	groupLabel := func() map[string]string {
		m := map[string]string{"job": values[rng.IntN(3)]}
		if rng.IntN(2) == 0 {
			m["instance"] = values[rng.IntN(len(values))]
		}
		if rng.IntN(4) == 0 {
			m["m"] = "grp"
		}
		return m
	}
	var groups []map[string]string
	for range 1 + rng.IntN(6) {
		groups = append(groups, groupLabel())
	}
	for range 30 {
		g := groups[rng.IntN(len(groups))]
		var fams []fam.Family
		for range 1 + rng.IntN(4) {
			sp := specs[rng.IntN(len(specs))]
			f := fam.Family{Name: sp.name, Type: sp.typ, Help: helps[rng.IntN(len(helps))]}
			for range 1 + rng.IntN(5) {
				var m fam.Metric
				for _, ln := range lnames {
					if _, inGroup := g[ln]; !inGroup && rng.IntN(3) == 0 {
						m.Labels = append(m.Labels, fam.Label{Name: ln, Value: values[rng.IntN(len(values))]})
					}
				}
				v := floats[rng.IntN(len(floats))]
				switch sp.typ {
				case fam.Counter:
					m.Value = math.Abs(float64(rng.IntN(1000))) / float64(1+rng.IntN(3))
				case fam.Gauge, fam.Untyped:
					m.Value = v
					if strings.Contains(sp.name, "window") {
						if math.IsNaN(v) || math.IsInf(v, 0) {
							m.Value = 2
						}
						m.Labels = append(m.Labels, fam.Label{Name: ClearModeLabel, Value: []string{"mean5m", "p99_5m", "max1m", "count5m", "replace"}[rng.IntN(5)]})
					}
				case fam.Histogram, fam.GaugeHistogram:
					c := 0.0
					for _, ub := range []float64{0.1, 1, 10} {
						c += float64(rng.IntN(3))
						if rng.IntN(8) == 0 {
							c += 0.25
						}
						m.Buckets = append(m.Buckets, fam.Bucket{UpperBound: ub, Count: c})
					}
					m.Count = c + float64(rng.IntN(2))
					m.Sum = float64(rng.IntN(100)) / 7
				case fam.Summary:
					m.Count = float64(rng.IntN(50))
					m.Sum = float64(rng.IntN(100)) / 3
					m.Quantiles = []fam.Quantile{{Quantile: 0.5, Value: v}, {Quantile: 0.99, Value: 2}}
				}
				if rng.IntN(3) == 0 {
					m.Created = time.Unix(1_700_000_000+int64(rng.IntN(1000)), int64(rng.IntN(1e9)))
				}
				f.Metrics = append(f.Metrics, m)
			}
			fams = append(fams, f)
		}
		_ = s.Push(context.Background(), g, fams, rng.IntN(5) == 0) // clashes are rejected: fine
		if rng.IntN(6) == 0 {
			s.RecordFailure(groups[rng.IntN(len(groups))])
		}
	}
	return s
}

var exposeAccepts = []string{
	"",
	"text/plain",
	"text/plain; version=0.0.4",
	"text/plain;version=0.0.4;escaping=underscores",
	"text/plain;version=0.0.4;escaping=dots",
	"text/plain;version=0.0.4;escaping=values",
	"application/openmetrics-text; version=1.0.0",
	"application/openmetrics-text; version=0.0.1",
	"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
	"application/openmetrics-text;version=1.0.0;escaping=underscores",
	"*/*",
}

// compareScrape checks that the fast path serves req exactly as promhttp.
func compareScrape(t *testing.T, gw *Gateway, accept, encoding string) {
	t.Helper()
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if encoding != "" {
			r.Header.Set("Accept-Encoding", encoding)
		}
		return r
	}
	fast, slow := httptest.NewRecorder(), httptest.NewRecorder()
	if !gw.fastScrape.serve(fast, req()) {
		t.Fatalf("Accept %q, Accept-Encoding %q: fast path declined", accept, encoding)
	}
	gw.fastScrape.fallback.ServeHTTP(slow, req())
	for _, h := range []string{"Content-Type", "Content-Encoding"} {
		if f, s := fast.Header().Get(h), slow.Header().Get(h); f != s {
			t.Errorf("Accept %q: %s %q, promhttp %q", accept, h, f, s)
		}
	}
	if f, s := fast.Header().Values("Vary"), slow.Header().Values("Vary"); fmt.Sprint(f) != fmt.Sprint(s) {
		t.Errorf("Accept %q: Vary %q, promhttp %q", accept, f, s)
	}
	fb, sb := fast.Body.Bytes(), slow.Body.Bytes()
	if encoding == "gzip" {
		fb, sb = gunzip(t, fb), gunzip(t, sb)
		// The compressed streams too: same bytes in, same writer.
		if bytes.Equal(fb, sb) && !bytes.Equal(fast.Body.Bytes(), slow.Body.Bytes()) {
			t.Errorf("Accept %q: gzip streams differ (%d vs %d bytes)", accept, fast.Body.Len(), slow.Body.Len())
		}
	}
	// The one line that differs by construction: an OpenMetrics float
	// histogram error counted by the first of the two scrapes.
	fb, sb = encodingErrors.ReplaceAll(fb, nil), encodingErrors.ReplaceAll(sb, nil)
	if !bytes.Equal(fb, sb) {
		t.Fatalf("Accept %q, Accept-Encoding %q: bodies differ\n%s", accept, encoding, firstDiff(fb, sb))
	}
}

var encodingErrors = regexp.MustCompile(`(?m)^promhttp_metric_handler_errors_total\{cause="encoding"\} .*\n`)

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n fast:     %q\n promhttp: %q", i+1, x, y)
		}
	}
	return "same lines"
}

// TestExposeMatchesPromhttp: random stores, every supported Accept and
// Accept-Encoding, byte for byte against promhttp.
func TestExposeMatchesPromhttp(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 42))
		clock := time.Unix(1_750_000_000, 0)
		now := func() time.Time { return clock }
		s := randomStore(t, rng, now)
		clock = clock.Add(time.Duration(rng.IntN(400)) * time.Second) // some windows empty
		gw, err := New(s, Options{Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range exposeAccepts {
			for _, enc := range []string{"", "gzip"} {
				compareScrape(t, gw, a, enc)
			}
		}
	}
}

// TestExposeSortReplay: label sets whose value order differs from the
// store's order (group labels first), and label counts that differ.
func TestExposeSortReplay(t *testing.T) {
	s := NewMemoryStore(StoreOptions{})
	for i := range 40 {
		g := map[string]string{"job": fmt.Sprintf("j%d", 39-i)}
		f := fam.Family{Name: "x_total", Type: fam.Counter}
		for k := range 15 {
			ls := []fam.Label{{Name: "a", Value: fmt.Sprintf("%d", (k*7+i)%5)}}
			if k%3 == 0 {
				ls = append(ls, fam.Label{Name: "z", Value: "1"})
			}
			if k%4 == 0 {
				ls = append(ls, fam.Label{Name: "b", Value: fmt.Sprint(k)})
			}
			f.Metrics = append(f.Metrics, fam.Metric{Labels: ls, Value: float64(k)})
		}
		_ = s.Push(context.Background(), g, []fam.Family{f}, false)
	}
	gw, err := New(s, Options{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range exposeAccepts {
		compareScrape(t, gw, a, "")
	}
}

// TestExposeFallback: what the fast path leaves to promhttp, and the
// default registry (Go and process metrics) served through ServeHTTP.
func TestExposeFallback(t *testing.T) {
	s := NewMemoryStore(StoreOptions{})
	gw, err := New(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	push := func(name string) {
		t.Helper()
		if err := s.Push(context.Background(), map[string]string{"job": "j"}, []fam.Family{{Name: name, Type: fam.Gauge, Metrics: []fam.Metric{{Value: 1}}}}, false); err != nil {
			t.Fatal(err)
		}
	}
	push("ok_gauge")
	decline := []struct{ accept, encoding, query string }{
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "", ""},
		{"text/plain", "gzip, deflate", ""},
		{"text/plain", "br", ""},
		{"text/plain", "", "name[]=ok_gauge"},
	}
	for _, d := range decline {
		r := httptest.NewRequest(http.MethodGet, "/metrics?"+d.query, nil)
		r.Header.Set("Accept", d.accept)
		if d.encoding != "" {
			r.Header.Set("Accept-Encoding", d.encoding)
		}
		if gw.fastScrape.serve(httptest.NewRecorder(), r) {
			t.Errorf("%+v: fast path served", d)
		}
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("%+v: status %d", d, w.Code)
		}
	}
	// Served through ServeHTTP: own metrics present, handler instrumented.
	for range 2 {
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		body := w.Body.String()
		for _, want := range []string{"ok_gauge{job=\"j\"} 1\n", "go_goroutines ", "gateway_pushes_total{", "promhttp_metric_handler_requests_total{code=\"200\"}", "push_time_seconds{job=\"j\"}"} {
			if !strings.Contains(body, want) {
				t.Errorf("scrape lacks %q", want)
			}
		}
	}
	// A UTF-8 family name is left to promhttp.
	push("ünï.gauge")
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if gw.fastScrape.serve(httptest.NewRecorder(), r) {
		t.Error("fast path served a UTF-8 family name")
	}
}

// TestExposeOpenMetricsFloatHistogram: an OpenMetrics scrape of a histogram
// with float counts is cut as promhttp cuts it, and counted as an error.
func TestExposeOpenMetricsFloatHistogram(t *testing.T) {
	s := NewMemoryStore(StoreOptions{})
	h := fam.Family{Name: "fh", Type: fam.Histogram, Metrics: []fam.Metric{
		{Labels: []fam.Label{{Name: "a", Value: "1"}}, Count: 2, Sum: 1, Buckets: []fam.Bucket{{UpperBound: 1, Count: 2}}},
		{Labels: []fam.Label{{Name: "a", Value: "2"}}, Count: 2.5, Sum: 1, Buckets: []fam.Bucket{{UpperBound: 1, Count: 0}, {UpperBound: 2, Count: 1.5}}},
	}}
	if err := s.Push(context.Background(), map[string]string{"job": "j"}, []fam.Family{h}, false); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	gw, err := New(s, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	compareScrape(t, gw, "application/openmetrics-text; version=1.0.0", "")
	compareScrape(t, gw, "text/plain", "")
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	gw.fastScrape.serve(w, r)
	body := w.Body.String()
	for _, want := range []string{
		"fh_bucket{a=\"1\",job=\"j\",le=\"+Inf\"} 2\n", "fh_count{a=\"1\",job=\"j\"} 2\n",
		"fh_bucket{a=\"2\",job=\"j\",le=\"1.0\"} 0\n",                    // then cut: float count
		"promhttp_metric_handler_errors_total{cause=\"encoding\"} 2.0\n", // promhttp's and ours
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "fh_bucket{a=\"2\",job=\"j\",le=\"2.0\"}") {
		t.Error("float bucket written")
	}
}

// TestScrapeFastPathHTTP: a real HTTP scrape with gzip through the
// instrumented handler.
func TestScrapeFastPathHTTP(t *testing.T) {
	s := NewMemoryStore(StoreOptions{})
	if err := s.Push(context.Background(), map[string]string{"job": "j"}, []fam.Family{{Name: "c_total", Type: fam.Counter, Metrics: []fam.Metric{{Value: 3}}}}, false); err != nil {
		t.Fatal(err)
	}
	gw, err := New(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req) // asks for gzip, decompresses
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !resp.Uncompressed {
		t.Error("response not gzipped")
	}
	for _, want := range []string{"# TYPE c counter\n", "c_total{job=\"j\"} 3.0\n", "c_created{job=\"j\"} ", "# EOF\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
}
