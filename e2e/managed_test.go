package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

const managedScenarioPath = "../testdata/managed-instances.json"

// managedMetric returns the series of family name whose label has value
// (label "" for the only series); nil when there is none.
func managedMetric(families map[string]*dto.MetricFamily, name, label, value string) *dto.Metric {
	mf, ok := families[name]
	if !ok {
		return nil
	}
	for _, m := range mf.Metric {
		if label == "" {
			return m
		}
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return m
			}
		}
	}
	return nil
}

// TestManagedInstances runs the extension as on Lambda Managed Instances:
// it registers for SHUTDOWN only (at once from AWS_LAMBDA_INITIALIZATION_TYPE,
// or after the emulator refuses INVOKE), subscribes with schema 2025-01-29,
// pushes on its timer before SHUTDOWN, and ends with exact figures and no
// billed-duration or memory-used observations.
func TestManagedInstances(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         []string
		wantRefused int
	}{
		{"initialization type", nil, 0},
		// Without the variable the extension learns it from the refusal.
		{"refused INVOKE", []string{"AWS_LAMBDA_INITIALIZATION_TYPE="}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPipeline(t)
			sc, err := lambdaemu.LoadScenario(managedScenarioPath)
			if err != nil {
				t.Fatal(err)
			}
			p.scenario = sc

			var mu sync.Mutex
			var beforeShutdown float64 = -1
			cfg := lambdaemu.Config{
				ManagedInstances: true,
				BatchInterval:    20 * time.Millisecond,
				BeforeInvoke: func(k int) {
					if k != len(sc.Invocations) {
						return
					}
					// Before SHUTDOWN: the timer must have pushed everything.
					deadline := time.Now().Add(10 * time.Second)
					for {
						fams, _, err := harness.Scrape(context.Background(), p.gateway.URL, "", "")
						n := 0.0
						if err == nil {
							if mf, ok := fams["aws_lambda_invocations_total"]; ok {
								for _, m := range mf.Metric {
									n += m.GetCounter().GetValue()
								}
							}
						}
						if n == 5 || time.Now().After(deadline) {
							mu.Lock()
							beforeShutdown = n
							mu.Unlock()
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				},
			}
			res := p.run(t, cfg, append([]string{"DISPATCH_INTERVAL=50ms", "DISPATCH_MIN_BATCH_SIZE=1000"}, tc.env...)...)

			if strings.Join(res.Events, ",") != "SHUTDOWN" || res.RegisterRefused != tc.wantRefused {
				t.Errorf("registered for %v after %d refusals, want SHUTDOWN after %d", res.Events, res.RegisterRefused, tc.wantRefused)
			}
			var sub struct{ SchemaVersion string }
			if err := json.Unmarshal(res.Subscription, &sub); err != nil || res.SubscribeStatus != 200 || sub.SchemaVersion != "2025-01-29" {
				t.Errorf("subscription %d %s, want 200 with schema 2025-01-29", res.SubscribeStatus, res.Subscription)
			}
			if res.Delivered != len(sc.Batches) || res.Failed != 0 {
				t.Errorf("delivered %d, failed %d of %d batches", res.Delivered, res.Failed, len(sc.Batches))
			}
			mu.Lock()
			if beforeShutdown != 5 {
				t.Errorf("invocations on the gateway before SHUTDOWN = %v, want all 5 pushed by the timer", beforeShutdown)
			}
			mu.Unlock()

			fams, text := p.scrape(t, "", "")
			if m := managedMetric(fams, "aws_lambda_invocations_total", "status", "success"); m.GetCounter().GetValue() != 4 {
				t.Errorf("success invocations = %v, want 4\n%s", m.GetCounter().GetValue(), text)
			}
			if m := managedMetric(fams, "aws_lambda_invocations_total", "status", "error"); m.GetCounter().GetValue() != 1 {
				t.Errorf("error invocations = %v, want 1", m.GetCounter().GetValue())
			}
			if m := managedMetric(fams, "aws_lambda_errors_total", "error_type", "Function.UnhandledError"); m.GetCounter().GetValue() != 1 {
				t.Errorf("errors{Function.UnhandledError} = %v, want 1", m.GetCounter().GetValue())
			}
			d := managedMetric(fams, "aws_lambda_duration_seconds", "", "").GetHistogram()
			if d.GetSampleCount() != 5 || !near(d.GetSampleSum(), 2.5745) {
				t.Errorf("duration count/sum = %d/%v, want 5/2.5745", d.GetSampleCount(), d.GetSampleSum())
			}
			for _, name := range []string{"aws_lambda_billed_duration_seconds", "aws_lambda_max_memory_used_bytes"} {
				if m := managedMetric(fams, name, "", ""); m != nil && m.GetHistogram().GetSampleCount() != 0 {
					t.Errorf("%s has %d observations from reports without it", name, m.GetHistogram().GetSampleCount())
				}
			}
			if m := managedMetric(fams, "aws_lambda_billed_gb_seconds_total", "", ""); m != nil && m.GetCounter().GetValue() != 0 {
				t.Errorf("billed GB-seconds = %v, want none", m.GetCounter().GetValue())
			}
			if m := managedMetric(fams, "aws_lambda_memory_size_bytes", "", ""); m == nil || m.GetGauge().GetValue() != 2048<<20 {
				t.Errorf("memory size = %v, want the configured 2048 MB", m)
			}
			if m := managedMetric(fams, "aws_lambda_cold_starts_total", "", ""); m != nil && m.GetCounter().GetValue() != 0 {
				t.Errorf("cold starts = %v, want none (no initDurationMs)", m.GetCounter().GetValue())
			}
		})
	}
}
