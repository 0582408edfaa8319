package gateway_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// newOptsGateway is newTestGateway with store and gateway options.
func newOptsGateway(t *testing.T, so gateway.StoreOptions, o gateway.Options) *testGateway {
	t.Helper()
	store := gateway.NewMemoryStore(so)
	gw, err := gateway.New(store, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &testGateway{t: t, srv: srv, store: store}
}

// withoutPushTimes drops the per-group push time families.
func withoutPushTimes(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		if n := mf.GetName(); n != gateway.PushTimeMetric && n != gateway.PushFailureTimeMetric {
			out = append(out, mf)
		}
	}
	return out
}

// pushTimes scrapes name (a push time family) as grouping labels → value.
func (g *testGateway) pushTimes(name string) map[string]float64 {
	g.t.Helper()
	out := map[string]float64{}
	mf := g.scrapeFamilies()[name]
	if mf == nil {
		return out
	}
	if mf.GetType() != dto.MetricType_GAUGE {
		g.t.Errorf("%s has type %s, want gauge", name, mf.GetType())
	}
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out[strings.Join(ls, ",")] = m.GetGauge().GetValue()
	}
	return out
}

// assertTimes compares push time gauges with want (unix times, 0 = none),
// to the millisecond.
func assertTimes(t *testing.T, what string, got map[string]float64, want map[string]time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: groups %v, want %v", what, got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		wf := 0.0
		if !w.IsZero() {
			wf = float64(w.UnixMilli()) / 1e3
		}
		if !ok || math.Abs(g-wf) > 1e-3 {
			t.Errorf("%s{%s} = %v (present %v), want %v (%v)", what, k, g, ok, wf, w)
		}
	}
}

// TestPushTimes checks push_time_seconds and push_failure_time_seconds after
// successful and failed pushes, with a fake clock.
func TestPushTimes(t *testing.T) {
	clk := newFakeClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newOptsGateway(t, gateway.StoreOptions{Now: clk.Now}, gateway.Options{})
	t0 := clk.Now()

	g.push(http.MethodPost, "/metrics/job/a", "# TYPE c_total counter\nc_total 1\n", http.StatusOK)
	assertTimes(t, "push_time_seconds", g.pushTimes(gateway.PushTimeMetric), map[string]time.Time{"job=a": t0})
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{"job=a": {}})

	// A parse error (rejected before the store) and a store rejection both
	// record a failure; the last success stays.
	t1 := clk.Add(10 * time.Second)
	g.push(http.MethodPost, "/metrics/job/a", "c_total{\n", http.StatusBadRequest)
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{"job=a": t1})
	t2 := clk.Add(10 * time.Second)
	g.push(http.MethodPut, "/metrics/job/a", "# TYPE c_total gauge\nc_total 1\n", http.StatusBadRequest)
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{"job=a": t2})
	assertTimes(t, "push_time_seconds", g.pushTimes(gateway.PushTimeMetric), map[string]time.Time{"job=a": t0})
	if gs := g.store.Groups(); len(gs) != 1 || gs[0].LastPushSuccessful() {
		t.Errorf("after a failure: %+v, want one group whose last push failed", gs)
	}

	// A failed push into a group that does not exist creates it (as the
	// Pushgateway): push time 0, the failure time, no series.
	t3 := clk.Add(10 * time.Second)
	g.push(http.MethodPost, "/metrics/job/b/instance/i", "bad line\n", http.StatusBadRequest)
	assertTimes(t, "push_time_seconds", g.pushTimes(gateway.PushTimeMetric), map[string]time.Time{"job=a": t0, "instance=i,job=b": {}})
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{"job=a": t2, "instance=i,job=b": t3})
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="a"}`: 1})

	// An invalid grouping path names no group: nothing recorded.
	g.push(http.MethodPost, "/metrics/nojob/x", "m 1\n", http.StatusBadRequest)
	if n := len(g.store.Groups()); n != 2 {
		t.Errorf("%d groups after a push to an invalid path, want 2", n)
	}

	// A later success: the push time moves, the failure time stays.
	t4 := clk.Add(10 * time.Second)
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE c_total counter\nc_total 1\n", http.StatusOK)
	assertTimes(t, "push_time_seconds", g.pushTimes(gateway.PushTimeMetric), map[string]time.Time{"job=a": t4, "instance=i,job=b": {}})
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{"job=a": t2, "instance=i,job=b": t3})
	if gs := g.store.Groups(); !gs[1].LastPushSuccessful() || gs[0].LastPushSuccessful() {
		t.Errorf("last_push_successful: %v %v, want false for job=b (failure only), true for job=a", gs[0].LastPushSuccessful(), gs[1].LastPushSuccessful())
	}

	// The names are the gateway's: pushing them is rejected, with the name.
	for _, name := range []string{gateway.PushTimeMetric, gateway.PushFailureTimeMetric} {
		body := g.push(http.MethodPost, "/metrics/job/a", "# TYPE "+name+" gauge\n"+name+" 5\n", http.StatusBadRequest)
		if !strings.Contains(body, name) || !strings.Contains(body, "reserved") {
			t.Errorf("pushing %s: %q", name, body)
		}
	}

	// DELETE removes the group with its push times.
	g.push(http.MethodDelete, "/metrics/job/a", "", http.StatusAccepted)
	assertTimes(t, "push_time_seconds", g.pushTimes(gateway.PushTimeMetric), map[string]time.Time{"instance=i,job=b": {}})
}

// TestEmptyPushKeepsNoGroup: an empty successful push into a new group
// stores nothing, so no push time either (a group exists while it has series
// or a recorded failure).
func TestEmptyPushKeepsNoGroup(t *testing.T) {
	g := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{})
	g.push(http.MethodPut, "/metrics/job/e", "", http.StatusOK)
	if got := g.pushTimes(gateway.PushTimeMetric); len(got) != 0 {
		t.Errorf("push times %v, want none", got)
	}
}

// TestExpiry drives the TTL with a fake clock: series expire exactly past the
// TTL, refreshed series stay, an emptied group goes with its push times, and
// a push after expiry starts afresh (no merge into, or clash with, expired
// state even when nothing swept in between).
func TestExpiry(t *testing.T) {
	const ttl = time.Minute
	clk := newFakeClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newOptsGateway(t, gateway.StoreOptions{Now: clk.Now, TTL: ttl}, gateway.Options{})
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE c_total counter\nc_total{k=\"1\"} 1\nc_total{k=\"2\"} 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/b", "# TYPE g gauge\ng 5\n", http.StatusOK)
	t40 := clk.Add(40 * time.Second)
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE c_total counter\nc_total{k=\"2\"} 1\n", http.StatusOK)

	clk.Add(20 * time.Second) // t0 + TTL: still live.
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="a",k="1"}`: 1, `c_total{job="a",k="2"}`: 2, `g{job="b"}`: 5})

	clk.Add(time.Nanosecond) // Just past: the t0 series and group b go.
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="a",k="2"}`: 2})
	assertTimes(t, "push_time_seconds", g.pushTimes(gateway.PushTimeMetric), map[string]time.Time{"job=a": t40})
	if n := len(g.store.Groups()); n != 1 {
		t.Errorf("%d groups, want 1", n)
	}

	clk.Add(40 * time.Second) // Past t40 + TTL: group a empties and goes.
	assertSamples(t, g.scrape(), map[string]float64{})
	if mfs, _ := g.store.Gather(); len(mfs) != 0 {
		t.Errorf("after everything expired, Gather = %v", mfs)
	}

	// Pushes after expiry, with no scrape in between: a counter restarts
	// from the pushed value, and a name whose every series expired may come
	// back with another type.
	g.push(http.MethodPost, "/metrics/job/c", "# TYPE x gauge\nx 1\n# TYPE n_total counter\nn_total 5\n", http.StatusOK)
	clk.Add(ttl + time.Second)
	g.push(http.MethodPost, "/metrics/job/d", "# TYPE x counter\nx 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/c", "# TYPE n_total counter\nn_total 2\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`x{job="d"}`: 1, `n_total{job="c"}`: 2})

	// A group holding only a failure lives for the TTL after it (groups c
	// and d, pushed a second before it, have gone by then).
	tf := clk.Add(time.Second)
	g.push(http.MethodPost, "/metrics/job/f", "oops{\n", http.StatusBadRequest)
	clk.Add(ttl)
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{"job=f": tf})
	clk.Add(time.Nanosecond)
	assertTimes(t, "push_failure_time_seconds", g.pushTimes(gateway.PushFailureTimeMetric), map[string]time.Time{})
}

// TestNoTTLKeepsEverything: TTL 0 never expires anything.
func TestNoTTLKeepsEverything(t *testing.T) {
	clk := newFakeClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newOptsGateway(t, gateway.StoreOptions{Now: clk.Now}, gateway.Options{})
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE c_total counter\nc_total 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/f", "oops{\n", http.StatusBadRequest)
	clk.Add(100 * 365 * 24 * time.Hour)
	g.store.Sweep()
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE c_total counter\nc_total 1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="a"}`: 2})
	if n := len(g.store.Groups()); n != 2 {
		t.Errorf("%d groups, want 2", n)
	}
}

// TestRunSweeps: Run returns at once without a TTL and stops with its
// context.
func TestRunSweeps(t *testing.T) {
	done := make(chan struct{})
	go func() { gateway.NewMemoryStore(gateway.StoreOptions{}).Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run without TTL did not return")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		gateway.NewMemoryStore(gateway.StoreOptions{TTL: time.Hour}).Run(ctx)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}
