// Package e2e tests the pipeline over the real binaries: bin/extension under
// the local Lambda emulator replaying a recorded telemetry scenario, pushing
// to bin/gateway, which the tests scrape.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

var (
	extensionBin string
	gatewayBin   string
)

const scenarioPath = "../testdata/cold-start-four-invocations.json"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	// The layer binary's registered name is its basename, as in /opt/extensions/.
	extensionBin, err = harness.BuildExtension(ctx, "..", dir, "prometheus-lambda-extension")
	if err == nil {
		gatewayBin, err = harness.Build(ctx, "..", "./gateway/cmd/gateway", dir, "gateway")
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// expected mirrors cold-start-four-invocations.expected.json (units of the events: ms, MB).
type expected struct {
	ColdStarts          float64            `json:"cold_starts"`
	DurationMsSum       float64            `json:"duration_ms_sum"`
	BilledDurationMsSum float64            `json:"billed_duration_ms_sum"`
	MaxMemoryUsedMB     []float64          `json:"max_memory_used_mb"`
	InitDurationMs      []float64          `json:"init_duration_ms"`
	LogsDroppedRecords  float64            `json:"logs_dropped_records"`
	LogsDroppedBytes    float64            `json:"logs_dropped_bytes"`
	InvocationsByStatus map[string]float64 `json:"invocations_by_status"`
}

func loadExpected(t *testing.T) expected {
	t.Helper()
	b, err := os.ReadFile("../testdata/cold-start-four-invocations.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// eventTypes counts the scenario's events by type, each batch once.
func eventTypes(t *testing.T, sc *lambdaemu.Scenario) map[string]float64 {
	t.Helper()
	counts := map[string]float64{}
	for _, batch := range sc.Batches {
		var events []struct{ Type string }
		if err := json.Unmarshal(batch, &events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			counts[e.Type]++
		}
	}
	return counts
}

type pipeline struct {
	gateway  *harness.Gateway
	logs     *harness.LogBuffer // gateway and extension output, shown when a test fails
	scenario *lambdaemu.Scenario
}

func startPipeline(t *testing.T, gatewayArgs ...string) *pipeline {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := lambdaemu.LoadScenario(scenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{logs: &harness.LogBuffer{}, scenario: sc}
	gw, err := harness.StartGateway(ctx, gatewayBin, p.logs, gatewayArgs...)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.logs)
	}
	p.gateway = gw
	t.Cleanup(func() {
		if err := gw.Stop(); err != nil {
			t.Errorf("gateway did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("process output:\n%s", p.logs)
		}
	})
	return p
}

// run replays the scenario through the extension; env adds to the extension's environment.
func (p *pipeline) run(t *testing.T, cfg lambdaemu.Config, env ...string) *lambdaemu.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.ExtensionPath = extensionBin
	cfg.Scenario = p.scenario
	cfg.Env = append([]string{
		"GATEWAY=" + p.gateway.URL,
		"TELEMETRY_LISTENER_ADDRESS=127.0.0.1:0",
		"EXTENSION_LOG_LEVEL=debug",
	}, env...)
	cfg.Stdout, cfg.Stderr = p.logs, p.logs
	res, err := lambdaemu.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("emulator: %v\n%s", err, p.logs)
	}
	if res.ExitCode != 0 {
		t.Fatalf("extension exit code %d", res.ExitCode)
	}
	return res
}

func (p *pipeline) scrape(t *testing.T, user, password string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	families, text, err := harness.Scrape(context.Background(), p.gateway.URL, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return families, text
}

// wantLabels are the labels every aws_lambda_* series of the scenario carries.
var wantLabels = map[string]string{
	"job":              "orders-api",
	"function_name":    "orders-api",
	"function_version": "$LATEST",
	"region":           "eu-west-1",
}

// series returns the metrics of a family keyed by the values of label (or "" for all).
func series(t *testing.T, families map[string]*dto.MetricFamily, name, label string) map[string]*dto.Metric {
	t.Helper()
	mf, ok := families[name]
	if !ok {
		t.Fatalf("family %s missing from the scrape", name)
	}
	out := map[string]*dto.Metric{}
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range wantLabels {
			if labels[k] != v {
				t.Errorf("%s%v: label %s=%q, want %q", name, labels, k, labels[k], v)
			}
		}
		if _, ok := labels["clearmode"]; ok {
			t.Errorf("%s%v: the clearmode label reached the scrape", name, labels)
		}
		key := labels[label]
		if _, dup := out[key]; dup {
			t.Fatalf("%s: two series with %s=%q", name, label, key)
		}
		out[key] = m
	}
	return out
}

func single(t *testing.T, families map[string]*dto.MetricFamily, name string) *dto.Metric {
	t.Helper()
	s := series(t, families, name, "")
	if len(s) != 1 {
		t.Fatalf("%s: %d series, want 1", name, len(s))
	}
	return s[""]
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// bucketCount returns the cumulative count of the bucket with upper bound le.
func bucketCount(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.Bucket {
		if near(b.GetUpperBound(), le) {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

// checkScenario asserts the scrape equals what the scenario implies: the
// figures of expected.json converted to base units.
func checkScenario(t *testing.T, families map[string]*dto.MetricFamily, sc *lambdaemu.Scenario) {
	t.Helper()
	want := loadExpected(t)
	const mib = 1 << 20

	inv := series(t, families, "aws_lambda_invocations_total", "status")
	if len(inv) != len(want.InvocationsByStatus) {
		t.Errorf("invocation statuses = %d, want %d", len(inv), len(want.InvocationsByStatus))
	}
	for status, n := range want.InvocationsByStatus {
		if m, ok := inv[status]; !ok || m.GetCounter().GetValue() != n {
			t.Errorf("aws_lambda_invocations_total{status=%q} = %v, want %v", status, m.GetCounter().GetValue(), n)
		}
	}
	errs := series(t, families, "aws_lambda_errors_total", "error_type")
	if got := errs["Runtime.ExitError"].GetCounter().GetValue(); got != 1 {
		t.Errorf("errors{Runtime.ExitError} = %v, want 1", got)
	}
	if got := errs["Sandbox.Timedout"].GetCounter().GetValue(); got != 1 {
		t.Errorf("errors{Sandbox.Timedout} = %v, want 1", got)
	}
	if got := single(t, families, "aws_lambda_cold_starts_total").GetCounter().GetValue(); got != want.ColdStarts {
		t.Errorf("cold starts = %v, want %v", got, want.ColdStarts)
	}

	invocations := float64(len(want.MaxMemoryUsedMB))
	d := single(t, families, "aws_lambda_duration_seconds").GetHistogram()
	if float64(d.GetSampleCount()) != invocations || !near(d.GetSampleSum(), want.DurationMsSum/1000) {
		t.Errorf("duration count/sum = %d/%v, want %v/%v", d.GetSampleCount(), d.GetSampleSum(), invocations, want.DurationMsSum/1000)
	}
	// 45.92 ms ≤ 0.05 s; 120.55 and 212.33 ms ≤ 0.25 s; 3000.77 ms ≤ 5 s only.
	if bucketCount(t, d, 0.05) != 1 || bucketCount(t, d, 0.25) != 3 || bucketCount(t, d, 2.5) != 3 || bucketCount(t, d, 5) != 4 {
		t.Errorf("duration buckets = %v", d.Bucket)
	}
	b := single(t, families, "aws_lambda_billed_duration_seconds").GetHistogram()
	if float64(b.GetSampleCount()) != invocations || !near(b.GetSampleSum(), want.BilledDurationMsSum/1000) {
		t.Errorf("billed duration count/sum = %d/%v, want %v/%v", b.GetSampleCount(), b.GetSampleSum(), invocations, want.BilledDurationMsSum/1000)
	}
	mem := single(t, families, "aws_lambda_max_memory_used_bytes").GetHistogram()
	if float64(mem.GetSampleCount()) != invocations || !near(mem.GetSampleSum(), sum(want.MaxMemoryUsedMB)*mib) {
		t.Errorf("max memory count/sum = %d/%v, want %v/%v", mem.GetSampleCount(), mem.GetSampleSum(), invocations, sum(want.MaxMemoryUsedMB)*mib)
	}
	if bucketCount(t, mem, 64*mib) != 0 || bucketCount(t, mem, 128*mib) != 4 {
		t.Errorf("max memory buckets = %v", mem.Bucket)
	}
	init := single(t, families, "aws_lambda_init_duration_seconds").GetHistogram()
	if float64(init.GetSampleCount()) != float64(len(want.InitDurationMs)) || !near(init.GetSampleSum(), sum(want.InitDurationMs)/1000) {
		t.Errorf("init duration count/sum = %d/%v, want %d/%v", init.GetSampleCount(), init.GetSampleSum(), len(want.InitDurationMs), sum(want.InitDurationMs)/1000)
	}
	if got := single(t, families, "aws_lambda_memory_size_bytes").GetGauge().GetValue(); got != float64(sc.Function.MemorySizeMB)*mib {
		t.Errorf("memory size = %v, want %v", got, float64(sc.Function.MemorySizeMB)*mib)
	}
	if got := single(t, families, "aws_lambda_logs_dropped_records_total").GetCounter().GetValue(); got != want.LogsDroppedRecords {
		t.Errorf("dropped records = %v, want %v", got, want.LogsDroppedRecords)
	}
	if got := single(t, families, "aws_lambda_logs_dropped_bytes_total").GetCounter().GetValue(); got != want.LogsDroppedBytes {
		t.Errorf("dropped bytes = %v, want %v", got, want.LogsDroppedBytes)
	}

	// Every event counted once by type, although one batch arrived twice.
	events := series(t, families, "aws_lambda_telemetry_events_total", "type")
	wantEvents := eventTypes(t, sc)
	var got, wanted []string
	for typ, m := range events {
		got = append(got, fmt.Sprintf("%s=%v", typ, m.GetCounter().GetValue()))
	}
	for typ, n := range wantEvents {
		wanted = append(wanted, fmt.Sprintf("%s=%v", typ, n))
	}
	sort.Strings(got)
	sort.Strings(wanted)
	if strings.Join(got, " ") != strings.Join(wanted, " ") {
		t.Errorf("telemetry events by type:\n got %v\nwant %v", got, wanted)
	}
}

func TestScenarioEndToEnd(t *testing.T) {
	p := startPipeline(t)
	res := p.run(t, lambdaemu.Config{Redeliver: []int{2}})
	if res.Delivered != len(p.scenario.Batches)+1 {
		t.Fatalf("emulator delivered %d batches, want %d (one redelivered)", res.Delivered, len(p.scenario.Batches)+1)
	}
	families, _ := p.scrape(t, "", "")
	checkScenario(t, families, p.scenario)
}

func TestScenarioAsSummaries(t *testing.T) {
	p := startPipeline(t)
	p.run(t, lambdaemu.Config{}, "METRIC_DISTRIBUTION=summary")
	families, _ := p.scrape(t, "", "")
	want := loadExpected(t)
	s := single(t, families, "aws_lambda_duration_seconds")
	if s.GetSummary() == nil || s.GetSummary().GetSampleCount() != 4 || !near(s.GetSummary().GetSampleSum(), want.DurationMsSum/1000) {
		t.Fatalf("duration summary = %v, want count 4 sum %v", s, want.DurationMsSum/1000)
	}
	if q := s.GetSummary().GetQuantile(); len(q) != 0 {
		t.Fatalf("summary quantiles %v pushed; only count and sum aggregate", q)
	}
}

func TestExtensionRunsOnWithoutTelemetry(t *testing.T) {
	p := startPipeline(t)
	res := p.run(t, lambdaemu.Config{TelemetryNotSupported: true})
	if res.Delivered != 0 {
		t.Fatalf("delivered %d batches without a subscription", res.Delivered)
	}
	// Without telemetry only what the Extensions API and the environment
	// tell is known: the SHUTDOWN reason and the configured memory.
	families, _ := p.scrape(t, "", "")
	for name := range families {
		if strings.HasPrefix(name, "aws_lambda_") && name != "aws_lambda_shutdowns_total" && name != "aws_lambda_memory_size_bytes" {
			t.Errorf("family %s pushed although no telemetry flowed", name)
		}
	}
	if got := series(t, families, "aws_lambda_shutdowns_total", "reason")["spindown"].GetCounter().GetValue(); got != 1 {
		t.Errorf("aws_lambda_shutdowns_total{reason=\"spindown\"} = %v, want 1", got)
	}
	if got := single(t, families, "aws_lambda_memory_size_bytes").GetGauge().GetValue(); got != float64(p.scenario.Function.MemorySizeMB)*(1<<20) {
		t.Errorf("memory size = %v, want the configured %d MB from AWS_LAMBDA_FUNCTION_MEMORY_SIZE", got, p.scenario.Function.MemorySizeMB)
	}
	if !strings.Contains(p.logs.String(), "Telemetry API is not supported") {
		t.Errorf("the extension did not log that telemetry is unavailable")
	}
}

func TestExtensionSurvivesAnUnreachableGateway(t *testing.T) {
	p := startPipeline(t)
	// A port nothing listens on: every push fails, the function must not notice.
	ctx := context.Background()
	dead, err := harness.StartGateway(ctx, gatewayBin, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadURL := dead.URL
	if err := dead.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg := lambdaemu.Config{}
	cfg.ExtensionPath = extensionBin
	cfg.Scenario = p.scenario
	cfg.Env = []string{"GATEWAY=" + deadURL, "TELEMETRY_LISTENER_ADDRESS=127.0.0.1:0", "DISPATCH_MIN_BATCH_SIZE=1"}
	cfg.Stdout, cfg.Stderr = p.logs, p.logs
	res, err := lambdaemu.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d, want 0", res.ExitCode)
	}
	if !strings.Contains(p.logs.String(), "push failed") {
		t.Errorf("push failures were not logged")
	}
}

func TestInvalidConfigurationKeepsTheFunctionRunning(t *testing.T) {
	p := startPipeline(t)
	p.run(t, lambdaemu.Config{}, "DISPATCH_MIN_BATCH_SIZE=lots")
	if !strings.Contains(p.logs.String(), "DISPATCH_MIN_BATCH_SIZE") {
		t.Errorf("the invalid setting was not named in the logs")
	}
	families, _ := p.scrape(t, "", "")
	if _, ok := families["aws_lambda_invocations_total"]; ok {
		t.Errorf("metrics pushed despite an invalid configuration")
	}
}
