package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

var windowT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newWindowGateway is newTestGateway with a fake clock at windowT0.
func newWindowGateway(t *testing.T) (*testGateway, *fakeClock) {
	t.Helper()
	clk := newFakeClock(windowT0)
	store := gateway.NewMemoryStore(gateway.StoreOptions{Now: clk.Now})
	gw, err := gateway.New(store, gateway.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(gw) // httptest listens on 127.0.0.1.
	t.Cleanup(srv.Close)
	return &testGateway{t: t, srv: srv, store: store}, clk
}

// wSamples is the scrape restricted to the w_* families these tests push
// (the gateway's own and per-group metrics left out).
func wSamples(g *testGateway) map[string]float64 {
	g.t.Helper()
	got := g.scrape()
	maps.DeleteFunc(got, func(k string, _ float64) bool { return !strings.HasPrefix(k, "w_") })
	return got
}

func pushProto(t *testing.T, g *testGateway, path string, mfs ...*dto.MetricFamily) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return g.do(http.MethodPost, path, buf.Bytes(), http.Header{"Content-Type": {protoDelimited}})
}

func protoGauge(name, mode string, v float64, labels ...string) *dto.MetricFamily {
	m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(v)}}
	labels = append(labels, "clearmode", mode)
	for i := 0; i < len(labels); i += 2 {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(labels[i]), Value: proto.String(labels[i+1])})
	}
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{m}}
}

// famGauge is protoGauge as a decoded push, for Store.Push.
func famGauge(name, mode string, v float64, labels ...string) family.Family {
	m := family.Metric{Value: v}
	labels = append(labels, "clearmode", mode)
	for i := 0; i < len(labels); i += 2 {
		m.Labels = append(m.Labels, family.Label{Name: labels[i], Value: labels[i+1]})
	}
	return family.Family{Name: name, Type: family.Gauge, Metrics: []family.Metric{m}}
}

// Gravel: "mean5m returning 0 or stale data". The mean is right, values age
// out exactly at the 5m boundary, and an emptied window leaves the scrape
// instead of showing 0 or its last value.
func TestGravelMean5mZeroOrStale(t *testing.T) {
	g, clk := newWindowGateway(t)
	push := func(at time.Duration, v string) {
		t.Helper()
		clk.Set(windowT0.Add(at))
		g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_latency gauge\nw_latency{clearmode=\"mean5m\"} "+v+"\n", http.StatusOK)
	}
	at := func(d time.Duration) map[string]float64 {
		t.Helper()
		clk.Set(windowT0.Add(d))
		return wSamples(g)
	}
	const id = `w_latency{job="j"}`
	push(0, "10")
	push(time.Minute, "20")
	push(2*time.Minute, "60")
	for _, tc := range []struct {
		at   time.Duration
		want map[string]float64
	}{
		{2 * time.Minute, map[string]float64{id: 30}},
		{5*time.Minute - 1, map[string]float64{id: 30}}, // 10 is still in
		{5 * time.Minute, map[string]float64{id: 40}},   // 10 left at exactly 5m
		{5*time.Minute + 1, map[string]float64{id: 40}},
		{6*time.Minute - 1, map[string]float64{id: 40}},
		{6*time.Minute + 1, map[string]float64{id: 60}},
		{7*time.Minute - 1, map[string]float64{id: 60}},
		{7*time.Minute + 1, map[string]float64{}}, // empty: gone, not 0 nor 60
	} {
		assertSamplesAt(t, tc.at, at(tc.at), tc.want)
	}
	if _, ok := g.scrapeFamilies()["w_latency"]; ok {
		t.Error("a family whose every window is empty is exposed")
	}
	// A new push shows the new value alone, not a stale one mixed in.
	push(10*time.Minute, "4")
	assertSamplesAt(t, 10*time.Minute, at(10*time.Minute), map[string]float64{id: 4})
}

func assertSamplesAt(t *testing.T, at time.Duration, got, want map[string]float64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("at T0+%v: scrape %v, want %v", at, got, want)
	}
}

// Every statistic through HTTP, pushes alternating text and protobuf, on the
// data set 3 1 4 1 5 9 2 6 (sorted 1 1 2 3 4 5 6 9).
func TestWindowedStatisticsHTTP(t *testing.T) {
	g, clk := newWindowGateway(t)
	modes := map[string]float64{
		"mean5m": 31.0 / 8, "mean_5m": 31.0 / 8, "sum1h": 31, "min_30s": 1, "max5m": 9, "count5m": 8,
		"median5m": 3.5, "p90_5m": 6.9, "p99.9_5m": 8.979, "p0_5m": 1, "p100_5m": 9,
	}
	for i, v := range []float64{3, 1, 4, 1, 5, 9, 2, 6} {
		clk.Set(windowT0.Add(time.Duration(i) * time.Second))
		if i%2 == 0 {
			var b strings.Builder
			b.WriteString("# TYPE w_g gauge\n")
			for mode := range modes {
				fmt.Fprintf(&b, "w_g{stat=%q,clear_mode=%q} %v\n", mode, mode, v)
			}
			fmt.Fprintf(&b, "w_u{clearmode=\"p25_5m\"} %v\n", v) // untyped
			g.push(http.MethodPost, "/metrics/job/j", b.String(), http.StatusOK)
			continue
		}
		mf := &dto.MetricFamily{Name: proto.String("w_g"), Type: dto.MetricType_GAUGE.Enum()}
		for mode := range modes {
			mf.Metric = append(mf.Metric, protoGauge("", mode, v, "stat", mode).Metric[0])
		}
		u := &dto.MetricFamily{Name: proto.String("w_u"), Type: dto.MetricType_UNTYPED.Enum(), Metric: []*dto.Metric{{
			Label:   []*dto.LabelPair{{Name: proto.String("clearmode"), Value: proto.String("p25_5m")}},
			Untyped: &dto.Untyped{Value: proto.Float64(v)},
		}}}
		if code, body := pushProto(t, g, "/metrics/job/j", mf, u); code != http.StatusOK {
			t.Fatalf("protobuf push: %d %s", code, body)
		}
	}
	clk.Set(windowT0.Add(10 * time.Second))
	got := wSamples(g)
	want := map[string]float64{`w_u{job="j"}`: 1.75}
	for mode, v := range modes {
		want[fmt.Sprintf(`w_g{job="j",stat=%q}`, mode)] = v
	}
	if len(got) != len(want) {
		t.Errorf("scrape has %d samples, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if v, ok := got[k]; !ok || v-w > 1e-12 || w-v > 1e-12 {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, w)
		}
	}
	// Families keep their pushed type.
	fams := g.scrapeFamilies()
	if fams["w_g"].GetType() != dto.MetricType_GAUGE || fams["w_u"].GetType() != dto.MetricType_UNTYPED {
		t.Errorf("types: w_g %v, w_u %v", fams["w_g"].GetType(), fams["w_u"].GetType())
	}
	// 30s later min_30s is empty and hidden, the rest still exposed.
	clk.Set(windowT0.Add(37 * time.Second))
	got = wSamples(g)
	if _, ok := got[`w_g{job="j",stat="min_30s"}`]; ok {
		t.Error("min_30s exposed after its window emptied")
	}
	if got[`w_g{job="j",stat="count5m"}`] != 8 {
		t.Errorf("count5m = %v, want 8", got[`w_g{job="j",stat="count5m"}`])
	}
}

// Changing a series' mode to, from or between windowed modes restarts it
// from the push; equal specs in different spellings do not.
func TestWindowedModeChangeResets(t *testing.T) {
	g, clk := newWindowGateway(t)
	const id = `w_g{job="j"}`
	steps := []struct{ mode, value string }{
		{"mean5m", "10"}, {"mean5m", "20"}, // 15
		{"mean_5m", "30"},  // same spec: 20
		{"mean300s", "40"}, // same spec: 25
		{"replace", "7"},   // 7
		{"mean5m", "1"},    // restarts: 1, not mean(10, 20, 30, 40, 1)
		{"max5m", "0.5"},   // restarts: 0.5, not max(1, 0.5)
		{"max10m", "0.25"}, // other length: restarts
		{"aggregate", "2"}, // 2, not 0.25 + 2
		{"aggregate", "3"}, // 5: plain modes merge as before
	}
	wants := []float64{10, 15, 20, 25, 7, 1, 0.5, 0.25, 2, 5}
	for i, s := range steps {
		clk.Set(windowT0.Add(time.Duration(i) * time.Second))
		g.push(http.MethodPost, "/metrics/job/j", fmt.Sprintf("# TYPE w_g gauge\nw_g{clearmode=%q} %s\n", s.mode, s.value), http.StatusOK)
		if got := wSamples(g); !maps.Equal(got, map[string]float64{id: wants[i]}) {
			t.Errorf("after %s %s: %v, want %v", s.mode, s.value, got, wants[i])
		}
	}
	// Without a clear mode label a gauge is replaced: that is a change too.
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_g gauge\nw_g{clearmode=\"sum5m\"} 4\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_g gauge\nw_g 6\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_g gauge\nw_g{clearmode=\"sum5m\"} 1\n", http.StatusOK)
	if got := wSamples(g)[id]; got != 1 {
		t.Errorf("sum5m after a default-mode push = %v, want 1", got)
	}
}

// Windowed and other modes mix within a family (not with family), and PUT
// merges a pushed windowed series as POST does.
func TestWindowedMixedModesAndPut(t *testing.T) {
	g, clk := newWindowGateway(t)
	g.push(http.MethodPut, "/metrics/job/j", "# TYPE w_g gauge\nw_g{k=\"a\",clearmode=\"sum5m\"} 1\nw_g{k=\"b\"} 1\n", http.StatusOK)
	clk.Set(windowT0.Add(time.Minute))
	g.push(http.MethodPut, "/metrics/job/j", "# TYPE w_g gauge\nw_g{k=\"a\",clearmode=\"sum5m\"} 2\nw_g{k=\"b\"} 2\n", http.StatusOK)
	assertSamples(t, wSamples(g), map[string]float64{`w_g{job="j",k="a"}`: 3, `w_g{job="j",k="b"}`: 2})
	body := g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_g gauge\nw_g{k=\"a\",clearmode=\"sum5m\"} 2\nw_g{k=\"c\",clearmode=\"family\"} 1\n", http.StatusBadRequest)
	if !strings.Contains(body, "family") {
		t.Errorf("body %q does not name the family mix", body)
	}
	// A family push replaces the family, windows included.
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_g gauge\nw_g{k=\"c\",clearmode=\"family\"} 1\n", http.StatusOK)
	assertSamples(t, wSamples(g), map[string]float64{`w_g{job="j",k="c"}`: 1})
}

// A windowed clear mode on a counter, histogram or summary, a malformed one,
// or a non-finite value is a 400 naming it, and nothing changes.
func TestWindowedRejected(t *testing.T) {
	tests := []struct {
		name, body string
		wantInBody []string
	}{
		{"counter", "# TYPE w_c_total counter\nw_c_total{clearmode=\"mean5m\"} 1\n", []string{`"mean5m"`, "counter", "w_c_total"}},
		{"histogram", "# TYPE w_h histogram\nw_h_bucket{le=\"1\",clearmode=\"max5m\"} 1\nw_h_bucket{le=\"+Inf\",clearmode=\"max5m\"} 1\nw_h_sum{clearmode=\"max5m\"} 1\nw_h_count{clearmode=\"max5m\"} 1\n",
			[]string{`"max5m"`, "histogram", "w_h"}},
		{"summary", "# TYPE w_s summary\nw_s{quantile=\"0.5\",clearmode=\"p99_5m\"} 1\nw_s_sum{clearmode=\"p99_5m\"} 1\nw_s_count{clearmode=\"p99_5m\"} 1\n",
			[]string{`"p99_5m"`, "summary", "w_s"}},
		{"malformed percentile", "# TYPE w_g gauge\nw_g{clearmode=\"p99x5m\"} 1\n", []string{`"p99x5m"`, "w_g"}},
		{"percentile out of range", "# TYPE w_g gauge\nw_g{clearmode=\"p101_5m\"} 1\n", []string{`"p101_5m"`, "[0, 100]"}},
		{"zero length", "# TYPE w_g gauge\nw_g{clearmode=\"mean0s\"} 1\n", []string{`"mean0s"`, "greater than 0"}},
		{"no unit", "# TYPE w_g gauge\nw_g{clearmode=\"mean5\"} 1\n", []string{`"mean5"`, "duration"}},
		{"not a duration", "# TYPE w_g gauge\nw_g{clearmode=\"meanfoo\"} 1\n", []string{`"meanfoo"`, "duration"}},
		{"too long", "# TYPE w_g gauge\nw_g{clearmode=\"max8d\"} 1\n", []string{`"max8d"`, "7d"}},
		{"NaN", "# TYPE w_g gauge\nw_g{clearmode=\"mean5m\"} NaN\n", []string{`"mean5m"`, "NaN", "finite"}},
		{"Inf", "# TYPE w_g gauge\nw_g{clearmode=\"mean5m\"} +Inf\n", []string{`"mean5m"`, "finite"}},
		// The valid w_a sample is not applied either.
		{"whole push", "# TYPE w_a gauge\nw_a{clearmode=\"count5m\"} 1\n# TYPE w_g gauge\nw_g{clearmode=\"p99_\"} 1\n", []string{`"p99_"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, clk := newWindowGateway(t)
			g.push(http.MethodPost, "/metrics/job/j", "# TYPE w_a gauge\nw_a{clearmode=\"count5m\"} 1\n# TYPE w_g gauge\nw_g{clearmode=\"mean5m\"} 2\n", http.StatusOK)
			clk.Set(windowT0.Add(time.Second))
			before := wSamples(g)
			body := g.push(http.MethodPost, "/metrics/job/j", tc.body, http.StatusBadRequest)
			for _, w := range tc.wantInBody {
				if !strings.Contains(body, w) {
					t.Errorf("body %q does not contain %q", body, w)
				}
			}
			assertSamples(t, wSamples(g), before)
			assertSamples(t, before, map[string]float64{`w_a{job="j"}`: 1, `w_g{job="j"}`: 2})
		})
	}
	// Through protobuf too.
	g, _ := newWindowGateway(t)
	c := &dto.MetricFamily{Name: proto.String("w_c_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{
		Label:   []*dto.LabelPair{{Name: proto.String("clearmode"), Value: proto.String("sum5m")}},
		Counter: &dto.Counter{Value: proto.Float64(1)},
	}}}
	if code, body := pushProto(t, g, "/metrics/job/j", protoGauge("w_g", "mean5m", 1), c); code != http.StatusBadRequest || !strings.Contains(body, `"sum5m"`) {
		t.Errorf("protobuf counter with sum5m: %d %q, want 400 naming sum5m", code, body)
	}
	if got := wSamples(g); len(got) != 0 {
		t.Errorf("rejected protobuf push stored %v", got)
	}
}

// Concurrent pushes and gathers (gathers evict under the read lock): run
// with -race.
func TestWindowedConcurrentGather(t *testing.T) {
	clk := newFakeClock(windowT0)
	store := gateway.NewMemoryStore(gateway.StoreOptions{Now: clk.Now})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := store.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 2000 {
		clk.Set(windowT0.Add(time.Duration(i) * time.Millisecond))
		fams := []family.Family{famGauge("w_g", "p99_100ms", float64(i)), famGauge("w_m", "mean100ms", float64(i))}
		if err := store.Push(ctx, map[string]string{"job": "j"}, fams, false); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	mfs, _ := store.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "w_m" {
			// 1999 at t=1999ms: the window (1899ms, 1999ms] holds 1900…1999.
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 1949.5 {
				t.Errorf("mean100ms = %v, want 1949.5", v)
			}
		}
	}
}
