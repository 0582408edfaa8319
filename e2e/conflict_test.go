package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

// TestCustomConflictSparesPlatformMetrics has another job store
// orders_placed_total as a gauge before the EMF scenario runs, so the
// gateway rejects (400) every push carrying the scenario's counter of that
// name. The function's own metrics travel in pushes of their own: those are
// dropped, and the platform metrics all arrive, exactly.
func TestCustomConflictSparesPlatformMetrics(t *testing.T) {
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.gateway.URL+"/metrics/job/other",
		strings.NewReader("# TYPE orders_placed_total gauge\norders_placed_total 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("push of the other job's gauge: %s %s", resp.Status, body)
	}

	sc, err := lambdaemu.LoadScenario(emfScenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	p.scenario = sc
	p.run(t, lambdaemu.Config{}, "DISPATCH_MIN_BATCH_SIZE=1")
	families, text := p.scrape(t, "", "")

	// The platform metrics are exact.
	inv := series(t, families, "aws_lambda_invocations_total", "status")
	if len(inv) != 1 || inv["success"].GetCounter().GetValue() != 2 {
		t.Errorf("aws_lambda_invocations_total = %v, want 2 successes\n%s", inv, text)
	}
	if got := single(t, families, "aws_lambda_duration_seconds").GetHistogram().GetSampleCount(); got != 2 {
		t.Errorf("aws_lambda_duration_seconds count = %d, want 2", got)
	}
	events := series(t, families, "aws_lambda_telemetry_events_total", "type")
	for typ, n := range eventTypes(t, sc) {
		if got := events[typ].GetCounter().GetValue(); got != n {
			t.Errorf("aws_lambda_telemetry_events_total{type=%q} = %v, want %v", typ, got, n)
		}
	}
	if v := series(t, families, "aws_lambda_emf_invalid_total", "reason")["timestamp"].GetCounter().GetValue(); v != 1 {
		t.Errorf("aws_lambda_emf_invalid_total{reason=timestamp} = %v, want 1", v)
	}

	// The conflicting custom metric is absent: only the other job's gauge
	// has that name. The rest of its batches went with it.
	mf := families["orders_placed_total"]
	if mf == nil || len(mf.Metric) != 1 || mf.GetType().String() != "GAUGE" || mf.Metric[0].GetGauge().GetValue() != 7 {
		t.Errorf("orders_placed_total = %v, want the other job's gauge alone\n%s", mf, text)
	}
	for _, m := range mf.GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "job" && l.GetValue() != "other" {
				t.Errorf("orders_placed_total has a series of job %q", l.GetValue())
			}
		}
	}
	for _, name := range []string{"payment_latency_seconds", "cart_bytes"} {
		if families[name] != nil {
			t.Errorf("%s reached the gateway in a batch it should have rejected whole", name)
		}
	}
	rejected := 0
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if !strings.Contains(line, "gateway rejected a push") {
			continue
		}
		if !strings.Contains(line, "metrics=custom") {
			t.Errorf("a push other than the custom metrics' was rejected: %s", line)
		}
		rejected++
	}
	if rejected == 0 {
		t.Errorf("no rejection of the custom metrics logged")
	}
}
