package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

// The Grafana dashboard of the compose stack, proved against a real
// Prometheus: the gateway and the extension run the bundled scenario,
// Debian's prometheus scrapes the gateway with the stack's own scrape
// config, and every query of the dashboard is evaluated through
// Prometheus's HTTP API.

const (
	dashboardPath = "../deploy/grafana/dashboards/lambda.json"
	// customFunction is the function the EMF scenario runs as here, next to
	// the cold-start scenario's orders-api: it feeds the dashboard's custom
	// metrics example (orders_placed_total, payment_latency_seconds) without
	// changing orders-api's figures, and gives $function two values.
	customFunction = "checkout-api"
	platformFn     = "orders-api"
)

// grafanaVars replaces the Grafana variables of the dashboard's queries for
// instant queries at the end of the test:
//   - $function: the variable's All value, ".*" (the queries match it with =~);
//     the exact-value checks put a function name instead;
//   - $__rate_interval, $__interval: 1m. Grafana would use at least four
//     scrape intervals; all of this test's samples lie within the last
//     minute, so every window covers the whole run;
//   - $__range: 5m, the dashboard's time range, likewise covering everything.
func grafanaVars(expr, function string) string {
	r := strings.NewReplacer(
		"$function", function,
		"$__rate_interval", "1m",
		"$__interval", "1m",
		"$__range", "5m",
	)
	return r.Replace(expr)
}

type dashTarget struct {
	panel, refID, expr string
}

type dashboard struct {
	targets   []dashTarget
	variables []string // the template variables' queries
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"` // collapsed rows hold their panels
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Query struct {
					Query string `json:"query"`
				} `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out dashboard
	var add func(p panel)
	add = func(p panel) {
		for _, tg := range p.Targets {
			out.targets = append(out.targets, dashTarget{p.Title, tg.RefID, tg.Expr})
		}
		for _, raw := range p.Panels {
			var sub panel
			if err := json.Unmarshal(raw, &sub); err != nil {
				t.Fatal(err)
			}
			add(sub)
		}
	}
	for _, p := range d.Panels {
		add(p)
	}
	for _, v := range d.Templating.List {
		out.variables = append(out.variables, v.Query.Query)
	}
	if len(out.targets) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

// target returns the expr of a panel's query.
func (d dashboard) target(t *testing.T, panel, refID string) string {
	t.Helper()
	for _, tg := range d.targets {
		if tg.panel == panel && tg.refID == refID {
			return tg.expr
		}
	}
	t.Fatalf("dashboard has no query %s in panel %q", refID, panel)
	return ""
}

var (
	rangeFunc   = regexp.MustCompile(`(?:rate|increase)\(([^()\[\]]+)\[\$__rate_interval\]\)`)
	labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
)

// cumulative is a panel's query with its rate()/increase() windows taken
// out: the same aggregation over the raw counters and buckets since the
// start. The panels show per-interval increases, which Prometheus
// extrapolates (and a series' first sample does not count), so exact
// figures are checked on this form of the very same expression.
func cumulative(t *testing.T, expr string) string {
	t.Helper()
	out := rangeFunc.ReplaceAllString(expr, "$1")
	if out == expr || strings.Contains(out, "$__") {
		t.Fatalf("query has no rate/increase over $__rate_interval to take out (or other windows): %s", expr)
	}
	return out
}

// report is the part of a platform.report record the checks use.
type report struct {
	Status  string `json:"status"`
	Metrics struct {
		DurationMs       float64 `json:"durationMs"`
		BilledDurationMs float64 `json:"billedDurationMs"`
		MemorySizeMB     float64 `json:"memorySizeMB"`
	} `json:"metrics"`
}

func scenarioReports(t *testing.T, sc *lambdaemu.Scenario) []report {
	t.Helper()
	var out []report
	for _, batch := range sc.Batches {
		var events []struct {
			Type   string          `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(batch, &events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Type != "platform.report" {
				continue
			}
			var r report
			if err := json.Unmarshal(e.Record, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// durationBuckets are the README's duration histogram buckets.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900}

// classicQuantile is what Prometheus 2.x's histogram_quantile returns for
// observations xs in cumulative buckets with upper bounds (plus +Inf):
// the bucket holding rank q×count, linearly interpolated from its lower
// bound (0 for the first bucket); in the +Inf bucket the highest finite bound.
func classicQuantile(q float64, bounds, xs []float64) float64 {
	counts := make([]float64, len(bounds)+1)
	for i, b := range bounds {
		for _, x := range xs {
			if x <= b {
				counts[i]++
			}
		}
	}
	counts[len(bounds)] = float64(len(xs))
	rank := q * counts[len(bounds)]
	b := sort.Search(len(bounds), func(i int) bool { return counts[i] >= rank })
	if b == len(bounds) {
		return bounds[len(bounds)-1]
	}
	start, prev := 0.0, 0.0
	if b > 0 {
		start, prev = bounds[b-1], counts[b-1]
	}
	return start + (bounds[b]-start)*((rank-prev)/(counts[b]-prev))
}

func TestDashboardQueriesOnRealPrometheus(t *testing.T) {
	promBin := prometheusBinary(t)
	dash := loadDashboard(t)
	p := startPipeline(t)
	coldStart := p.scenario
	config, job := stackConfigFor(t, strings.TrimPrefix(p.gateway.URL, "http://"))
	prom := startPrometheus(t, promBin, config, p.logs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Prometheus scrapes the (still empty) gateway before anything is pushed.
	waitQuery(ctx, t, prom, fmt.Sprintf(`up{job=%q} == 1`, job), func(s []sample) bool { return len(s) == 1 })

	want := loadExpected(t)
	total := 0.0
	for _, n := range want.InvocationsByStatus {
		total += n
	}
	emf, err := lambdaemu.LoadScenario(emfScenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	emf.Function.Name = customFunction

	// Each scenario runs twice, as two execution environments of its
	// function (Lambda scaling out), the second after Prometheus has scraped
	// the first: every rate() and increase() of the dashboard then has an
	// increase in its window, cold starts and the EMF histogram included,
	// so no panel shows NaN. Invocations pause longer than the 1s scrape
	// interval, so Prometheus sees the counters grow.
	pause := lambdaemu.Config{BeforeInvoke: func(k int) {
		if k > 0 {
			time.Sleep(1200 * time.Millisecond)
		}
	}}
	const environments = 2
	for env := 1; env <= environments; env++ {
		p.scenario = coldStart
		p.run(t, pause, "DISPATCH_MIN_BATCH_SIZE=1")
		p.scenario = emf
		p.run(t, pause, "DISPATCH_MIN_BATCH_SIZE=1")
		// Everything the extensions pushed has been scraped.
		waitQuery(ctx, t, prom, fmt.Sprintf(`sum(aws_lambda_invocations_total{function_name=%q})`, platformFn),
			func(s []sample) bool { return len(s) == 1 && s[0].Value == float64(env)*total })
		waitQuery(ctx, t, prom, fmt.Sprintf(`sum(orders_placed_total{function_name=%q})`, customFunction),
			func(s []sample) bool { return len(s) == 1 && s[0].Value == float64(env)*4 })
		waitQuery(ctx, t, prom, fmt.Sprintf(`sum(aws_lambda_invocations_total{function_name=%q})`, customFunction),
			func(s []sample) bool { return len(s) == 1 && s[0].Value == float64(env*len(emf.Invocations)) })
	}
	p.scenario = coldStart

	// Every query of the dashboard parses and returns data. rate() needs two
	// samples of a series in its window, so poll until all have data (or
	// the deadline: then each empty one is reported).
	pending := map[string]dashTarget{}
	for _, tg := range dash.targets {
		expr := grafanaVars(tg.expr, ".*")
		if strings.Contains(expr, "$") {
			t.Errorf("panel %q %s: unsubstituted variable in %s", tg.panel, tg.refID, expr)
			continue
		}
		pending[expr] = tg
	}
	for _, v := range dash.variables {
		// Grafana's label_values(metric, label) is not PromQL: it asks the
		// series API; its PromQL equivalent is group by (label) (metric).
		m := labelValues.FindStringSubmatch(v)
		if m == nil {
			t.Errorf("template variable query %q is not label_values(metric, label)", v)
			continue
		}
		expr := fmt.Sprintf("group by (%s) (%s)", m[2], m[1])
		res, err := prom.query(ctx, expr)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range res {
			got = append(got, s.Metric[m[2]])
		}
		sort.Strings(got)
		if strings.Join(got, ",") != customFunction+","+platformFn {
			t.Errorf("variable %s: values %v, want [%s %s]", v, got, customFunction, platformFn)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(pending) > 0 {
		for expr, tg := range pending {
			res, err := prom.query(ctx, expr)
			if err != nil {
				t.Errorf("panel %q query %s: %v", tg.panel, tg.refID, err)
				delete(pending, expr)
				continue
			}
			if len(res) > 0 {
				var nan []map[string]string
				for _, s := range res {
					if math.IsNaN(s.Value) {
						nan = append(nan, s.Metric)
					}
				}
				if len(nan) > 0 {
					// A quantile or ratio of rates without an increase in
					// its window: Grafana would show no value.
					t.Errorf("panel %q query %s: %d of %d series NaN %v: %s", tg.panel, tg.refID, len(nan), len(res), nan, expr)
				}
				delete(pending, expr)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for expr, tg := range pending {
		t.Errorf("panel %q query %s returned no data within 30s: %s", tg.panel, tg.refID, expr)
	}

	// The key panels, in their cumulative form, equal what the scenario implies.
	one := func(panel, refID, function string) []sample {
		t.Helper()
		expr := grafanaVars(cumulative(t, dash.target(t, panel, refID)), function)
		res, err := prom.query(ctx, expr)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == 0 {
			t.Fatalf("panel %q query %s (cumulative form) returned nothing: %s", panel, refID, expr)
		}
		return res
	}
	// Invocations by status.
	got := map[string]float64{}
	for _, s := range one("Invocations by status", "A", platformFn) {
		if s.Metric["function_name"] != platformFn {
			t.Errorf("invocations: series of function %q", s.Metric["function_name"])
		}
		got[s.Metric["status"]] = s.Value
	}
	wantByStatus := map[string]float64{}
	for status, n := range want.InvocationsByStatus {
		wantByStatus[status] = environments * n
	}
	if fmt.Sprint(got) != fmt.Sprint(wantByStatus) {
		t.Errorf("invocations by status = %v, want %v", got, wantByStatus)
	}
	// Error rate: the non-success share.
	if r := one("Error rate", "A", platformFn); len(r) != 1 || !near(r[0].Value, (total-want.InvocationsByStatus["success"])/total) {
		t.Errorf("error rate = %v, want %v", r, (total-want.InvocationsByStatus["success"])/total)
	}
	// Duration and billed duration p50, p90, p99: histogram_quantile over
	// the cumulative buckets, against the same quantile of the scenario's
	// reports in the README's buckets (p99: rank 3.96 of 4 falls in the
	// (2.5 s, 5 s] bucket holding the 3000.77 ms timeout: 2.5 + 2.5 × 0.96 = 4.9 s).
	reports := scenarioReports(t, coldStart)
	var durations, billed []float64
	for _, r := range reports {
		durations = append(durations, r.Metrics.DurationMs/1000)
		billed = append(billed, r.Metrics.BilledDurationMs/1000)
	}
	quantileOf := regexp.MustCompile(`^histogram_quantile\(([0-9.]+),`)
	for _, c := range []struct {
		panel string
		xs    []float64
	}{{"Duration p50 / p90 / p99", durations}, {"Billed duration p50 / p90 / p99", billed}} {
		for _, ref := range []string{"A", "B", "C"} {
			m := quantileOf.FindStringSubmatch(dash.target(t, c.panel, ref))
			if m == nil {
				t.Fatalf("panel %q %s is not a histogram_quantile", c.panel, ref)
			}
			q, _ := strconv.ParseFloat(m[1], 64)
			wantQ := classicQuantile(q, durationBuckets, c.xs)
			if r := one(c.panel, ref, platformFn); len(r) != 1 || !near(r[0].Value, wantQ) {
				t.Errorf("%s: quantile %v = %v, want %v", c.panel, q, r, wantQ)
			}
		}
	}
	if p99 := classicQuantile(0.99, durationBuckets, durations); !near(p99, 4.9) {
		t.Errorf("the scenario's p99 duration works out at %v, the comment says 4.9", p99)
	}
	// Cold starts, dropped logs, memory size, the custom counter.
	scalars := []struct {
		panel, ref, function string
		want                 float64
	}{
		{"Cold starts", "A", platformFn, environments * want.ColdStarts},
		{"Dropped logs", "A", platformFn, environments * want.LogsDroppedRecords},
		{"Dropped logs", "B", platformFn, environments * want.LogsDroppedBytes},
		{"Orders placed (custom counter)", "A", customFunction, environments * 4}, // two EMF lines of OrdersPlaced 2 per environment
	}
	for _, c := range scalars {
		if r := one(c.panel, c.ref, c.function); len(r) != 1 || r[0].Value != c.want {
			t.Errorf("%s %s (%s) = %v, want %v", c.panel, c.ref, c.function, r, c.want)
		}
	}
	memExpr := grafanaVars(dash.target(t, "Max memory used vs memory size", "C"), platformFn)
	if r, err := prom.query(ctx, memExpr); err != nil || len(r) != 1 || r[0].Value != float64(coldStart.Function.MemorySizeMB)*(1<<20) {
		t.Errorf("memory size %s = %v (%v), want %d MiB", memExpr, r, err, coldStart.Function.MemorySizeMB)
	}
	// The estimated cost: billed GB-seconds × the default price per GB-second
	// of this machine's architecture + requests × $0.20 per million.
	perGBs := map[string]float64{"amd64": 0.0000166667, "arm64": 0.0000133334}[runtime.GOARCH]
	if perGBs != 0 {
		wantCost := 0.0
		for _, r := range reports {
			wantCost += r.Metrics.BilledDurationMs/1000*r.Metrics.MemorySizeMB/1024*perGBs + 0.0000002
		}
		wantCost *= environments
		costExpr := fmt.Sprintf(`sum(aws_lambda_estimated_cost_usd_total{function_name=%q})`, platformFn)
		if r, err := prom.query(ctx, costExpr); err != nil || len(r) != 1 || math.Abs(r[0].Value-wantCost) > 1e-12 {
			t.Errorf("%s = %v (%v), want %v", costExpr, r, err, wantCost)
		}
	}
	// The gateway is up, as the health panel shows.
	upExpr := grafanaVars(dash.target(t, "Gateway up", "A"), ".*")
	if r, err := prom.query(ctx, upExpr); err != nil || len(r) != 1 || r[0].Value != 1 {
		t.Errorf("%s = %v (%v), want 1", upExpr, r, err)
	}
}

// waitQuery polls expr until ok accepts its result or ctx ends.
func waitQuery(ctx context.Context, t *testing.T, prom *promServer, expr string, ok func([]sample) bool) {
	t.Helper()
	var last []sample
	var lastErr error
	for {
		last, lastErr = prom.query(ctx, expr)
		if lastErr == nil && ok(last) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last result %v, error %v", expr, last, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
