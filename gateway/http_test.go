package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// Every fixture in testdata pushes successfully and its families show up.
func TestFixturesPush(t *testing.T) {
	files, err := filepath.Glob("testdata/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue // testdata/fuzz holds fuzz regression seeds, not fixtures
		}
		t.Run(name, func(t *testing.T) {
			var hdr http.Header
			if strings.HasSuffix(name, ".bin") {
				hdr = http.Header{"Content-Type": {protoDelimited}}
			}
			if strings.HasSuffix(name, ".openmetrics.txt") {
				hdr = http.Header{"Content-Type": {openMetricsType}}
			}
			g := newTestGateway(t)
			body := readFixture(t, name)
			for _, m := range []string{http.MethodPut, http.MethodPost} {
				if code, resp := g.do(m, "/metrics/job/fixture", body, hdr); code != http.StatusOK {
					t.Fatalf("%s: %d %s", m, code, resp)
				}
			}
			if len(g.scrape()) == 0 {
				t.Error("nothing in the scrape")
			}
		})
	}
}

// OpenMetrics versions other than 1.0.0 and 0.0.1 are not read (415).
func TestOpenMetricsVersionRejected(t *testing.T) {
	g := newTestGateway(t)
	code, body := g.do(http.MethodPost, "/metrics/job/om", readFixture(t, "python-client-0.16.openmetrics.txt"),
		http.Header{"Content-Type": {"application/openmetrics-text; version=2.0.0; charset=utf-8"}})
	if code != http.StatusUnsupportedMediaType || !strings.Contains(body, "OpenMetrics") {
		t.Errorf("status %d %q, want 415 naming OpenMetrics", code, body)
	}
}

// client_golang's push package: Add (POST, protobuf by default), text format,
// Push (PUT) and Delete.
func TestClientGolangPush(t *testing.T) {
	g := newTestGateway(t)
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "Requests."}, []string{"code"})
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "temperature_celsius", Help: "Temperature."})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	reg.MustRegister(requests, temp, lat)
	requests.WithLabelValues("200").Add(3)
	temp.Set(21.5)
	lat.Observe(0.05)
	lat.Observe(0.5)

	pusher := func() *push.Pusher { return push.New(g.srv.URL, "fn").Grouping("env", "prod").Gatherer(reg) }
	if err := pusher().Add(); err != nil { // protobuf
		t.Fatalf("Add: %v", err)
	}
	if err := pusher().Format(expfmt.NewFormat(expfmt.TypeTextPlain)).Add(); err != nil {
		t.Fatalf("Add text: %v", err)
	}
	assertSamples(t, g.scrape(), map[string]float64{
		`requests_total{code="200",env="prod",job="fn"}`:        6,
		`temperature_celsius{env="prod",job="fn"}`:              21.5,
		`latency_seconds_bucket{env="prod",job="fn",le="0.1"}`:  2,
		`latency_seconds_bucket{env="prod",job="fn",le="1"}`:    4,
		`latency_seconds_bucket{env="prod",job="fn",le="+Inf"}`: 4,
		`latency_seconds_sum{env="prod",job="fn"}`:              1.1,
		`latency_seconds_count{env="prod",job="fn"}`:            4,
	})

	// Push (PUT) with only the counter: the other families of the group go,
	// the counter is still aggregated.
	only := prometheus.NewRegistry()
	only.MustRegister(requests)
	if err := push.New(g.srv.URL, "fn").Grouping("env", "prod").Gatherer(only).Push(); err != nil {
		t.Fatalf("Push: %v", err)
	}
	assertSamples(t, g.scrape(), map[string]float64{`requests_total{code="200",env="prod",job="fn"}`: 9})

	if err := push.New(g.srv.URL, "fn").Grouping("env", "prod").Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertSamples(t, g.scrape(), map[string]float64{})

	// A rejected push surfaces as an error naming the status.
	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_pushes_total", Help: "x"}, func() float64 { return 1 }))
	if err := push.New(g.srv.URL, "fn").Gatherer(bad).Add(); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("clashing push: err = %v, want a 400", err)
	}
}

func TestScrapeContentNegotiationAndOwnMetrics(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE c_total counter\nc_total{clearmode=\"sum\"} 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j", "c_total{clearmode=\"bogus\"} 1\n", http.StatusBadRequest)
	g.push(http.MethodDelete, "/metrics/job/nothing", "", http.StatusAccepted)

	fams := g.scrapeFamilies()
	counts := map[string]float64{}
	for _, m := range fams["gateway_pushes_total"].GetMetric() {
		var method, result string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "method":
				method = l.GetValue()
			case "result":
				result = l.GetValue()
			}
		}
		counts[method+" "+result] = m.GetCounter().GetValue()
	}
	if counts["POST success"] != 1 || counts["POST rejected"] != 1 || counts["DELETE success"] != 1 {
		t.Errorf("gateway_pushes_total = %v", counts)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go collector metrics")
	}
	if strings.Contains(fams["c_total"].String(), "clearmode") {
		t.Error("clearmode label reached the scrape")
	}

	for accept, want := range map[string]string{
		"application/openmetrics-text; version=1.0.0": "application/openmetrics-text",
		protoDelimited: "application/vnd.google.protobuf",
		"text/plain":   "text/plain",
	} {
		req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/metrics", nil)
		req.Header.Set("Accept", accept)
		resp, err := g.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("Accept %q: Content-Type %q", accept, ct)
		}
		if want == "application/vnd.google.protobuf" {
			dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
			found := false
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err != nil {
					break
				}
				found = found || mf.GetName() == "c_total"
			}
			if !found {
				t.Error("protobuf scrape lacks c_total")
			}
		}
		resp.Body.Close()
	}
}

func TestRoutes(t *testing.T) {
	g := newTestGateway(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/-/healthy", http.StatusOK},
		{http.MethodGet, "/-/ready", http.StatusOK},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/metrics/job/j", http.StatusMethodNotAllowed},
		{http.MethodPatch, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodPost, "/-/ready", http.StatusMethodNotAllowed},
	} {
		if code, _ := g.do(tc.method, tc.path, nil, nil); code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
	// Root group: PUT/POST/DELETE /metrics.
	g.push(http.MethodPut, "/metrics", "root_total 1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{"root_total": 1})
	g.push(http.MethodDelete, "/metrics", "", http.StatusAccepted)
	assertSamples(t, g.scrape(), map[string]float64{})
}

func TestBodyTooLarge(t *testing.T) {
	store := gateway.NewMemoryStore(gateway.StoreOptions{})
	gw, err := gateway.New(store, gateway.Options{MaxBodyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("m_total 1\n", 10)
	req, _ := http.NewRequest(http.MethodPost, "/metrics/job/j", strings.NewReader(body))
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", rec.Code)
	}
	if mfs, _ := store.Gather(); len(withoutPushTimes(mfs)) != 0 {
		t.Errorf("oversized push stored %v", mfs)
	}
}

func TestStoreGather(t *testing.T) {
	s := gateway.NewMemoryStore(gateway.StoreOptions{})
	ctx := context.Background()
	parse := func(text string) []family.Family {
		fams, err := gateway.DecodeBody(strings.NewReader(text), http.Header{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fams
	}
	if err := s.Push(ctx, map[string]string{"job": "b"}, parse("# HELP m old help\n# TYPE m gauge\nm{z=\"1\"} 1\n"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, map[string]string{"job": "a"}, parse("# HELP m new help\n# TYPE m gauge\nm 2\n# TYPE a gauge\na 1\n"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, map[string]string{"job": "c"}, parse("# TYPE m gauge\nm 3\n"), false); err != nil { // no HELP: kept
		t.Fatal(err)
	}
	mfs, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	mfs = withoutPushTimes(mfs)
	if len(mfs) != 2 || mfs[0].GetName() != "a" || mfs[1].GetName() != "m" {
		t.Fatalf("families %v, want [a m]", mfs)
	}
	m := mfs[1]
	if m.GetHelp() != "new help" {
		t.Errorf("HELP %q, want the latest pushed", m.GetHelp())
	}
	var got []string
	for _, x := range m.GetMetric() {
		var ls []string
		for _, l := range x.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		got = append(got, strings.Join(ls, ","))
	}
	if want := "job=a|job=b,z=1|job=c"; strings.Join(got, "|") != want {
		t.Errorf("metrics %q, want %q", strings.Join(got, "|"), want)
	}

	// A validation error is typed, and leaves the store alone.
	err = s.Push(ctx, map[string]string{"job": "a"}, parse("# TYPE m counter\nm 1\n"), false)
	var ve *gateway.ValidationError
	if !errors.As(err, &ve) || ve.Metric != "m" {
		t.Errorf("type clash: %v, want a ValidationError for m", err)
	}
	// A cancelled context stops a push before it changes anything.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Push(cctx, map[string]string{"job": "a"}, parse("a 5\n"), false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled push: %v", err)
	}
	s.Delete(context.Background(), map[string]string{"job": "a"})
	s.Delete(context.Background(), map[string]string{"job": "b"})
	s.Delete(context.Background(), map[string]string{"job": "c"})
	if mfs, _ := s.Gather(); len(mfs) != 0 {
		t.Errorf("after deleting every group: %v", mfs)
	}
}

// Concurrent pushes from many "execution environments" into one group all
// count, while scrapes run alongside (run with -race).
func TestConcurrentPushes(t *testing.T) {
	g := newTestGateway(t)
	const workers, pushes = 8, 25
	var wg sync.WaitGroup
	errs := make(chan string, workers*pushes)
	for w := range workers {
		wg.Go(func() {
			for range pushes {
				body := fmt.Sprintf("# TYPE inv_total counter\ninv_total 1\n# TYPE env_up gauge\nenv_up{env=\"%d\"} 1\n", w)
				code, resp := g.do(http.MethodPost, "/metrics/job/fn", []byte(body), nil)
				if code != http.StatusOK {
					errs <- resp
				}
			}
		})
		wg.Go(func() { g.scrapeFamilies() })
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	got := g.scrape()
	if got[`inv_total{job="fn"}`] != workers*pushes {
		t.Errorf("inv_total = %v, want %d", got[`inv_total{job="fn"}`], workers*pushes)
	}
	if len(got) != workers+1 {
		t.Errorf("%d series, want %d", len(got), workers+1)
	}
}
