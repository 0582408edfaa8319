package dispatcher

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

func costReport(requestID string, billedMs, memoryMB float64) telemetryapi.Event {
	rec, _ := json.Marshal(map[string]any{
		"requestId": requestID,
		"status":    "success",
		"metrics":   map[string]any{"durationMs": billedMs - 0.4, "billedDurationMs": billedMs, "memorySizeMB": memoryMB, "maxMemoryUsedMB": 64},
	})
	return telemetryapi.Event{Type: telemetryapi.TypePlatformReport, Record: rec}
}

func TestDefaultPricesPerArchitecture(t *testing.T) {
	x86 := Prices{PerGBSecond: 0.0000166667, PerRequest: 0.0000002}
	arm := Prices{PerGBSecond: 0.0000133334, PerRequest: 0.0000002}
	for arch, want := range map[string]Prices{"x86_64": x86, "amd64": x86, "arm64": arm, "riscv64": x86} {
		if got := DefaultPrices(arch); !pmNear(got.PerGBSecond, want.PerGBSecond) || !pmNear(got.PerRequest, want.PerRequest) {
			t.Errorf("DefaultPrices(%q) = %+v, want %+v", arch, got, want)
		}
	}
	if lambdaArchitecture("amd64") != "x86_64" || lambdaArchitecture("arm64") != "arm64" {
		t.Errorf("GOARCH amd64/arm64 map to %q/%q", lambdaArchitecture("amd64"), lambdaArchitecture("arm64"))
	}
	m := newTestMetrics()
	if m.Prices() != DefaultPrices(Architecture()) {
		t.Errorf("new Metrics price with %+v, want the defaults of %s", m.Prices(), Architecture())
	}
}

func TestCostPerArchitecture(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		reg := newRegistry()
		c := newCostMetrics(reg, arch)
		// 1,000 ms at 1,024 MB: one GB-second and one request.
		c.record(&telemetryapi.PlatformReport{Metrics: telemetryapi.ReportMetrics{BilledDurationMs: 1000, MemorySizeMB: 1024}})
		want := map[string]float64{"x86_64": 0.0000166667 + 0.0000002, "arm64": 0.0000133334 + 0.0000002}[arch]
		if got := toFloat64(c.usd); !pmNear(got, want) {
			t.Errorf("%s: cost = %v, want %v", arch, got, want)
		}
		if got := toFloat64(c.gbSeconds); got != 1 {
			t.Errorf("%s: GB-s = %v, want 1", arch, got)
		}
		exposition := fmt.Sprintf(`
# HELP aws_lambda_billed_gb_seconds_total Billed compute: platform.report billedDurationMs / 1000 × memorySizeMB / 1024, summed over invocations.
# TYPE aws_lambda_billed_gb_seconds_total counter
aws_lambda_billed_gb_seconds_total{architecture=%q} 1
`, arch)
		if err := testutil.GatherAndCompare(dtoGatherer{reg}, strings.NewReader(exposition), "aws_lambda_billed_gb_seconds_total"); err != nil {
			t.Errorf("%s: %v", arch, err)
		}
	}
}

func TestCostWithoutMemorySizeCountsTheRequestOnly(t *testing.T) {
	// Lambda Managed Instances report only durationMs.
	c := newCostMetrics(newRegistry(), "x86_64")
	c.record(&telemetryapi.PlatformReport{Metrics: telemetryapi.ReportMetrics{DurationMs: 50}})
	if got := toFloat64(c.gbSeconds); got != 0 {
		t.Errorf("GB-s = %v, want 0", got)
	}
	if got := toFloat64(c.usd); !pmNear(got, 0.0000002) {
		t.Errorf("cost = %v, want one request", got)
	}
	// Malformed negative figures never panic a counter.
	c.record(&telemetryapi.PlatformReport{Metrics: telemetryapi.ReportMetrics{BilledDurationMs: -100, MemorySizeMB: 128}})
	if got := toFloat64(c.gbSeconds); got != 0 {
		t.Errorf("GB-s = %v after a negative duration, want 0", got)
	}
}

func TestPriceOverrides(t *testing.T) {
	o, err := ParsePriceOverrides(costEnv(map[string]string{"PRICE_PER_GB_SECOND": "0.00002", "PRICE_PER_MILLION_REQUESTS": "0.25"}))
	if err != nil {
		t.Fatal(err)
	}
	m := newTestMetrics()
	m.SetPrices(o.Apply(m.Prices()))
	if p := m.Prices(); !pmNear(p.PerGBSecond, 0.00002) || !pmNear(p.PerRequest, 0.00000025) {
		t.Fatalf("prices = %+v", p)
	}
	m.Record([]telemetryapi.Event{costReport("a", 500, 2048)}) // 1 GB-s
	if got := pmCounter(t, m, "aws_lambda_estimated_cost_usd_total", nil); !pmNear(got, 0.00002+0.00000025) {
		t.Errorf("cost with overrides = %v", got)
	}

	// One override keeps the other default; none keeps both.
	o, err = ParsePriceOverrides(costEnv(map[string]string{"PRICE_PER_MILLION_REQUESTS": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Apply(DefaultPrices("arm64")); got != (Prices{PerGBSecond: DefaultPrices("arm64").PerGBSecond}) {
		t.Errorf("request price override = %+v", got)
	}
	o, err = ParsePriceOverrides(costEnv(nil))
	if err != nil || o != (PriceOverrides{}) {
		t.Errorf("no variables: %+v, %v", o, err)
	}

	// Invalid values are errors naming the variable.
	_, err = ParsePriceOverrides(costEnv(map[string]string{"PRICE_PER_GB_SECOND": "cheap", "PRICE_PER_MILLION_REQUESTS": "-1"}))
	if err == nil || !strings.Contains(err.Error(), "PRICE_PER_GB_SECOND") || !strings.Contains(err.Error(), "PRICE_PER_MILLION_REQUESTS") {
		t.Errorf("err = %v, want both variables named", err)
	}
	for _, v := range []string{"NaN", "Inf", "-0.1"} {
		if _, err := ParsePriceOverrides(costEnv(map[string]string{"PRICE_PER_GB_SECOND": v})); err == nil {
			t.Errorf("PRICE_PER_GB_SECOND=%s accepted", v)
		}
	}

	// SetPrices ignores invalid prices rather than poisoning the counter.
	before := m.Prices()
	m.SetPrices(Prices{PerGBSecond: math.NaN(), PerRequest: -1})
	if m.Prices() != before {
		t.Errorf("invalid prices taken: %+v", m.Prices())
	}
}

func costEnv(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// TestCostMatchesAWSPricingExample reproduces Example 1 of the AWS Lambda
// pricing page (https://aws.amazon.com/lambda/pricing/, US East (N.
// Virginia)): 512 MB, 3 million invocations a month, 1 s each. The page
// states: total compute 3,000,000 s = 1,500,000 GB-s; at $0.00001667 per
// GB-s, less the 400,000 GB-s free tier, $18.34; at $0.20 per million, less
// the 1M free requests, $0.40; $18.74 in all. The metrics apply no free tier,
// so the test takes it off the counters to compare.
func TestCostMatchesAWSPricingExample(t *testing.T) {
	// A thousandth of the month through the whole Record path (3 million
	// reports take minutes under -race); the figures scale by 1,000.
	const requests = 3_000
	const scale = 3_000_000 / requests
	m := newTestMetrics()
	m.SetPrices(Prices{PerGBSecond: 0.00001667, PerRequest: 0.20 / 1e6}) // the page's prices
	const batch = 1000
	events := make([]telemetryapi.Event, batch)
	for i := 0; i < requests; i += batch {
		for j := range events {
			events[j] = costReport(fmt.Sprintf("req-%d", i+j), 1000, 512)
		}
		if n := m.Record(events); n != batch {
			t.Fatalf("recorded %d of %d reports", n, batch)
		}
	}
	gbs := pmCounter(t, m, "aws_lambda_billed_gb_seconds_total", nil) * scale
	inv := pmCounter(t, m, "aws_lambda_invocations_total", nil) * scale
	usd := pmCounter(t, m, "aws_lambda_estimated_cost_usd_total", nil) * scale
	if !pmNear(gbs, 1_500_000) {
		t.Errorf("billed GB-s = %v, want the page's 1,500,000", gbs)
	}
	if inv != 3_000_000 {
		t.Errorf("requests = %v, want 3,000,000", inv)
	}
	p := m.Prices()
	if want := 1_500_000*0.00001667 + 3_000_000*0.20/1e6; math.Abs(usd-want) > 1e-6 {
		t.Errorf("estimated cost = %v, want %v", usd, want)
	}
	compute := (gbs - 400_000) * p.PerGBSecond
	request := (inv - 1_000_000) * p.PerRequest
	cents := func(usd float64) float64 { return math.Round(usd*100) / 100 }
	if cents(compute) != 18.34 || cents(request) != 0.40 || cents(usd-400_000*p.PerGBSecond-1_000_000*p.PerRequest) != 18.74 {
		t.Errorf("after the free tier: compute $%.4f, requests $%.4f, total $%.4f; the page states $18.34, $0.40, $18.74",
			compute, request, usd-400_000*p.PerGBSecond-1_000_000*p.PerRequest)
	}

	// The same month at today's default x86 price: 1,500,000 × $0.0000166667 + $0.60.
	x86 := DefaultPrices("x86_64")
	if got := gbs*x86.PerGBSecond + inv*x86.PerRequest; math.Abs(got-25.60005) > 1e-9 {
		t.Errorf("x86 default month = %v, want 25.60005", got)
	}
}
