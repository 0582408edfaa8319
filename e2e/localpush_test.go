package e2e

import (
	"fmt"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

// TestLocalPushEndToEnd has "the function" push its own registry with
// client_golang's push package to the extension's local endpoint before
// each of three invocations: its cumulative counter reads 1, 3, 6, and the
// gateway must serve 6 (each increment once), not 10; the gauge its last
// value, the histogram its three observations.
func TestLocalPushEndToEnd(t *testing.T) {
	p := startPipeline(t)
	addr := freeAddr(t)

	reg := prometheus.NewRegistry()
	orders := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orders_placed_total", Help: "Orders placed."}, []string{"service"})
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "queue_depth", Help: "Queue depth."})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "checkout_seconds", Help: "Checkout latency.", Buckets: []float64{0.1, 1}})
	reg.MustRegister(orders, depth, lat)

	var pushErrs []error
	cfg := lambdaemu.Config{BeforeInvoke: func(k int) {
		if k > 2 {
			return
		}
		orders.WithLabelValues("checkout").Add(float64(k + 1)) // cumulative 1, 3, 6
		depth.Set(float64(10 * (k + 1)))
		lat.Observe(0.05 * float64(k+1))
		if err := push.New("http://"+addr, "orders").Grouping("instance", "fn").Gatherer(reg).Push(); err != nil {
			pushErrs = append(pushErrs, fmt.Errorf("push before invocation %d: %w", k, err))
		}
	}}
	p.run(t, cfg, "DISPATCH_MIN_BATCH_SIZE=1", "LOCAL_PUSH_ADDRESS="+addr)
	for _, err := range pushErrs {
		t.Error(err)
	}
	families, text := p.scrape(t, "", "")

	s := series(t, families, "orders_placed_total", "service") // also asserts job, function_name, function_version, region
	m, ok := s["checkout"]
	if !ok {
		t.Fatalf("orders_placed_total{service=checkout} missing\n%s", text)
	}
	if v := m.GetCounter().GetValue(); v != 6 {
		t.Errorf("orders_placed_total = %v, want 6 (each increment once)\n%s", v, text)
	}
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["exported_job"] != "orders" || labels["instance"] != "fn" {
		t.Errorf("orders_placed_total labels %v, want exported_job=orders and instance=fn", labels)
	}
	if v := single(t, families, "queue_depth").GetGauge().GetValue(); v != 30 {
		t.Errorf("queue_depth = %v, want the last value 30", v)
	}
	h := single(t, families, "checkout_seconds").GetHistogram()
	if h.GetSampleCount() != 3 || !near(h.GetSampleSum(), 0.3) || bucketCount(t, h, 0.1) != 2 {
		t.Errorf("checkout_seconds = %v, want 3 observations summing to 0.3, 2 of them ≤ 0.1", h)
	}
	// The platform metrics travelled too, in pushes of their own.
	if v := series(t, families, "aws_lambda_invocations_total", "status")["success"].GetCounter().GetValue(); v == 0 {
		t.Errorf("aws_lambda_invocations_total{status=success} = 0")
	}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
