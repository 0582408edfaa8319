package e2e

import (
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

const emfScenarioPath = "../testdata/emf-scenario.json"

// TestEMFEndToEnd replays a function that writes Embedded Metric Format
// lines (text and JSON log formats) and checks the custom series the
// gateway serves, next to the platform metrics of the same pushes.
func TestEMFEndToEnd(t *testing.T) {
	p := startPipeline(t)
	sc, err := lambdaemu.LoadScenario(emfScenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	p.scenario = sc
	p.run(t, lambdaemu.Config{}, "DISPATCH_MIN_BATCH_SIZE=1")
	families, text := p.scrape(t, "", "")

	dims := map[string]string{
		"namespace":    "Orders",
		"log_group":    "orders-api",
		"service_name": "orders-api",
		"service_type": "AWS::Lambda::Function",
		"service":      "checkout",
	}
	check := func(name string) map[string]string {
		t.Helper()
		s := series(t, families, name, "service") // also asserts job, function_name, function_version, region
		m, ok := s["checkout"]
		if !ok || len(s) != 1 {
			t.Fatalf("%s: series %v, want one with service=checkout\n%s", name, s, text)
		}
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range dims {
			if got[k] != v {
				t.Errorf("%s: label %s=%q, want %q", name, k, got[k], v)
			}
		}
		return got
	}
	// Two fixture lines (one per invocation and log format).
	check("orders_placed_total")
	if v := series(t, families, "orders_placed_total", "service")["checkout"].GetCounter().GetValue(); v != 4 {
		t.Errorf("orders_placed_total = %v, want 4", v)
	}
	check("payment_latency_seconds")
	lat := series(t, families, "payment_latency_seconds", "service")["checkout"].GetHistogram()
	if lat.GetSampleCount() != 4 || !near(lat.GetSampleSum(), 2*(0.2315+0.0982)) {
		t.Errorf("payment_latency_seconds count/sum = %d/%v, want 4/%v", lat.GetSampleCount(), lat.GetSampleSum(), 2*(0.2315+0.0982))
	}
	if bucketCount(t, lat, 0.1) != 2 || bucketCount(t, lat, 0.25) != 4 {
		t.Errorf("payment_latency_seconds buckets = %v", lat.Bucket)
	}
	check("cart_bytes")
	cart := series(t, families, "cart_bytes", "service")["checkout"].GetHistogram()
	if cart.GetSampleCount() != 2 || cart.GetSampleSum() != 4096 || bucketCount(t, cart, 4096) != 2 {
		t.Errorf("cart_bytes = %v, want 2 observations of 2048", cart)
	}

	// The line without _aws.Timestamp is counted, not recorded.
	if v := series(t, families, "aws_lambda_emf_invalid_total", "reason")["timestamp"].GetCounter().GetValue(); v != 1 {
		t.Errorf("aws_lambda_emf_invalid_total{reason=timestamp} = %v, want 1", v)
	}
	// The platform metrics travelled too, in pushes of their own.
	if v := series(t, families, "aws_lambda_invocations_total", "status")["success"].GetCounter().GetValue(); v != 2 {
		t.Errorf("aws_lambda_invocations_total{status=success} = %v, want 2", v)
	}
}
