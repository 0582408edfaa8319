package gateway_test

// Regression tests, one per Gravel Gateway defect listed in
// shared/REFERENCE.md that applies to this gateway.

import (
	"net/http"
	"strings"
	"testing"
)

// Gravel matched samples by label position, swapping values or renaming the
// job label. Series here are matched by label name and value.
func TestGravelLabelPositionMatching(t *testing.T) {
	g := newTestGateway(t)
	g.do(http.MethodPost, "/metrics", readFixture(t, "gravel-issue-3-push-a.txt"), nil)
	code, body := g.do(http.MethodPost, "/metrics", readFixture(t, "gravel-issue-3-push-b.txt"), nil)
	if code != http.StatusOK {
		t.Fatalf("push b: %d %s", code, body)
	}
	assertSamples(t, g.scrape(), map[string]float64{
		`mymetric{job="my_metric",label="value1"}`:           1,
		`mymetric{extra="x",job="my_metric",label="value2"}`: 1,
	})
	// Pushing a again aggregates into its own series only.
	g.do(http.MethodPost, "/metrics", readFixture(t, "gravel-issue-3-push-a.txt"), nil)
	assertSamples(t, g.scrape(), map[string]float64{
		`mymetric{job="my_metric",label="value1"}`:           2,
		`mymetric{extra="x",job="my_metric",label="value2"}`: 1,
	})
}

// Gravel: "Cannot add a sample with 3 labels into a family with 2".
func TestGravelFamilyMixingLabelSets(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE m counter\nm{a=\"1\"} 1\nm{a=\"2\",b=\"x\"} 2\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE m counter\nm{b=\"y\",c=\"z\"} 3\nm{a=\"2\",b=\"x\"} 2\nm 4\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{
		`m{a="1",job="j"}`:       1,
		`m{a="2",b="x",job="j"}`: 4,
		`m{b="y",c="z",job="j"}`: 3,
		`m{job="j"}`:             4,
	})
}

// Gravel applied the families before a failing one. A push is all or nothing.
func TestGravelNoPartialApplication(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", "# TYPE a_total counter\na_total 1\n", http.StatusOK)
	before := g.scrape()
	// Families are applied in name order: a_total and b come before the bad z_total.
	body := g.push(http.MethodPost, "/metrics/job/j",
		"# TYPE a_total counter\na_total 5\n# TYPE b gauge\nb 1\n# TYPE z_total counter\nz_total -1\n",
		http.StatusBadRequest)
	if !strings.Contains(body, "z_total") {
		t.Errorf("error %q does not name z_total", body)
	}
	assertSamples(t, g.scrape(), before)
}

// Gravel rejected the second push of a summary.
func TestGravelSecondSummaryPush(t *testing.T) {
	g := newTestGateway(t)
	for range 2 {
		g.do(http.MethodPost, "/metrics/job/j", readFixture(t, "client-golang-1.25.txt"), nil)
	}
	code, body := g.do(http.MethodPost, "/metrics/job/j", readFixture(t, "prom-client-15.1.txt"), nil)
	if code != http.StatusOK {
		t.Fatalf("third push: %d %s", code, body)
	}
	got := g.scrape()
	if got[`request_size_bytes_count{job="j"}`] != 6 || got[`request_size_bytes_sum{job="j"}`] != 7680 {
		t.Errorf("summary count/sum = %v/%v, want 6/7680", got[`request_size_bytes_count{job="j"}`], got[`request_size_bytes_sum{job="j"}`])
	}
	// prom-client's quantiles (the last push) win.
	if got[`request_size_bytes{job="j",quantile="0.5"}`] != 1280 || got[`request_size_bytes{job="j",quantile="0.999"}`] != 2048 {
		t.Errorf("quantiles are not the last push's: %v", got)
	}
}

// Gravel merged histogram buckets wrongly. Same layout: plain addition.
func TestGravelHistogramMergeSameLayout(t *testing.T) {
	g := newTestGateway(t)
	for range 3 {
		g.do(http.MethodPost, "/metrics/job/j", readFixture(t, "prom-client-15.1.txt"), nil)
	}
	got := g.scrape()
	want := map[string]float64{"0.05": 3, "0.1": 6, "0.25": 9, "0.5": 9, "1": 12, "+Inf": 12}
	for le, v := range want {
		if k := `payment_latency_seconds_bucket{job="j",le="` + le + `"}`; got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got[`payment_latency_seconds_count{job="j"}`] != 12 {
		t.Errorf("count = %v, want 12", got[`payment_latency_seconds_count{job="j"}`])
	}
}

// Differing layouts: union of bounds, each side contributing its cumulative
// count at its largest own bound ≤ b.
func TestGravelHistogramMergeDifferentLayouts(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j", `# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="4"} 3
h_bucket{le="+Inf"} 4
h_sum 10
h_count 4
`, http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j", `# TYPE h histogram
h_bucket{le="2"} 2
h_bucket{le="4"} 5
h_bucket{le="8"} 6
h_bucket{le="+Inf"} 6
h_sum 20
h_count 6
`, http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{
		`h_bucket{job="j",le="1"}`:    1,     // 1 + 0
		`h_bucket{job="j",le="2"}`:    1 + 2, // first side still at its le=1
		`h_bucket{job="j",le="4"}`:    3 + 5, // shared bound: exact
		`h_bucket{job="j",le="8"}`:    3 + 6,
		`h_bucket{job="j",le="+Inf"}`: 10,
		`h_sum{job="j"}`:              30,
		`h_count{job="j"}`:            10,
	})
}

// Gravel rejected trailing commas in label sets, uppercase E exponents and
// blank lines (its issue 5, a JVM client's output).
func TestGravelTrailingCommaExponentBlankLines(t *testing.T) {
	g := newTestGateway(t)
	code, body := g.do(http.MethodPost, "/metrics/job/jvm", readFixture(t, "gravel-issue-5-jvm.txt"), nil)
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	assertSamples(t, g.scrape(), map[string]float64{
		`jvm_memory_bytes_used{area="heap",job="jvm"}`:    9.4094392e12,
		`jvm_memory_bytes_used{area="nonheap",job="jvm"}`: 1.2345e8,
	})
}

// Gravel rejected families without samples (its issue 17).
func TestGravelEmptyFamilies(t *testing.T) {
	g := newTestGateway(t)
	code, body := g.do(http.MethodPost, "/metrics/job/j", readFixture(t, "gravel-issue-17-empty-family.txt"), nil)
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	// metric_with_values_created is Python's text rendering of the counter's
	// created time: folded into the counter, not stored as a gauge (created.go).
	assertSamples(t, g.scrape(), map[string]float64{
		`metric_with_values_total{a_label="label_value",another_label="a_value",job="j"}`: 1,
	})
}

// Gravel had no DELETE.
func TestGravelDelete(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/a", "x_total 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/b", "x_total 2\n", http.StatusOK)
	g.push(http.MethodDelete, "/metrics/job/a", "", http.StatusAccepted)
	assertSamples(t, g.scrape(), map[string]float64{`x_total{job="b"}`: 2})
	g.push(http.MethodDelete, "/metrics/job/a", "", http.StatusAccepted) // missing group
	g.push(http.MethodDelete, "/metrics/job/b", "", http.StatusAccepted)
	assertSamples(t, g.scrape(), map[string]float64{})
	// The name is free again: another type may now use it.
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE x_total gauge\nx_total 3\n", http.StatusOK)
}

// Gravel had no protobuf input, client_golang's push default.
func TestGravelProtobufInput(t *testing.T) {
	g := newTestGateway(t)
	code, body := g.do(http.MethodPost, "/metrics/job/pb", readFixture(t, "client-golang-1.25.pb-delimited.bin"),
		http.Header{"Content-Type": {protoDelimited}})
	if code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	// The same metrics in text format give the same scrape.
	g2 := newTestGateway(t)
	g2.do(http.MethodPost, "/metrics/job/pb", readFixture(t, "client-golang-1.25.txt"), nil)
	want := g2.scrape()
	if len(want) == 0 {
		t.Fatal("text push stored nothing")
	}
	assertSamples(t, g.scrape(), want)
}
