package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

func TestParseClearMode(t *testing.T) {
	for v, want := range map[string]gateway.ClearMode{
		"aggregate": gateway.ClearModeAggregate,
		"sum":       gateway.ClearModeAggregate,
		"replace":   gateway.ClearModeReplace,
		"family":    gateway.ClearModeFamily,
		"info":      gateway.ClearModeFamily,
	} {
		got, err := gateway.ParseClearMode(v)
		if err != nil || got != want {
			t.Errorf("ParseClearMode(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "Aggregate", "bogus", "avg5m", "Mean5m"} {
		if _, err := gateway.ParseClearMode(v); err == nil || !strings.Contains(err.Error(), "unknown clearmode") {
			t.Errorf("ParseClearMode(%q) = %v, want an unknown-mode error", v, err)
		}
	}
	for _, v := range []string{"mean5m", "p99_5m", "max1h", "p50_30s", "sum5m"} {
		if got, err := gateway.ParseClearMode(v); err != nil || got != gateway.ClearModeWindowed {
			t.Errorf("ParseClearMode(%q) = %v, %v; want windowed", v, got, err)
		}
	}
	for _, v := range []string{"mean0s", "p99x5m", "p101_5m"} {
		if _, err := gateway.ParseClearMode(v); err == nil || !strings.Contains(err.Error(), "windowed clearmode") {
			t.Errorf("ParseClearMode(%q) = %v, want a malformed windowed error", v, err)
		}
	}
}

func TestDefaultClearMode(t *testing.T) {
	for typ, want := range map[dto.MetricType]gateway.ClearMode{
		dto.MetricType_GAUGE:           gateway.ClearModeReplace,
		dto.MetricType_GAUGE_HISTOGRAM: gateway.ClearModeReplace,
		dto.MetricType_COUNTER:         gateway.ClearModeAggregate,
		dto.MetricType_HISTOGRAM:       gateway.ClearModeAggregate,
		dto.MetricType_SUMMARY:         gateway.ClearModeAggregate,
		dto.MetricType_UNTYPED:         gateway.ClearModeAggregate,
	} {
		if got := gateway.DefaultClearMode(typ); got != want {
			t.Errorf("DefaultClearMode(%v) = %v, want %v", typ, got, want)
		}
	}
}

// TestClearModes pushes the same series twice (into /metrics/job/j) and checks
// the scrape for every clear mode, its aliases, both label spellings and the
// per-type defaults.
func TestClearModes(t *testing.T) {
	hist := func(mode string, b1, b2, count, sum string) string {
		l := ""
		if mode != "" {
			l = `clearmode="` + mode + `",`
		}
		return "# TYPE h histogram\n" +
			"h_bucket{" + l + `le="1"} ` + b1 + "\n" +
			"h_bucket{" + l + `le="2"} ` + b2 + "\n" +
			"h_bucket{" + l + `le="+Inf"} ` + count + "\n" +
			"h_sum{" + l[:max(0, len(l)-1)] + "} " + sum + "\n" +
			"h_count{" + l[:max(0, len(l)-1)] + "} " + count + "\n"
	}
	tests := []struct {
		name   string
		pushes []string
		want   map[string]float64
	}{
		{"counter default aggregates", []string{"# TYPE c_total counter\nc_total 2\n", "# TYPE c_total counter\nc_total 3\n"},
			map[string]float64{`c_total{job="j"}`: 5}},
		{"counter aggregate", []string{"# TYPE c_total counter\nc_total{clearmode=\"aggregate\"} 2\n", "# TYPE c_total counter\nc_total{clearmode=\"aggregate\"} 3\n"},
			map[string]float64{`c_total{job="j"}`: 5}},
		{"counter sum alias", []string{"# TYPE c_total counter\nc_total{clearmode=\"sum\"} 2\n", "# TYPE c_total counter\nc_total{clearmode=\"sum\"} 3\n"},
			map[string]float64{`c_total{job="j"}`: 5}},
		{"counter replace", []string{"# TYPE c_total counter\nc_total{clearmode=\"replace\"} 2\n", "# TYPE c_total counter\nc_total{clearmode=\"replace\"} 3\n"},
			map[string]float64{`c_total{job="j"}`: 3}},
		{"gauge default replaces", []string{"# TYPE g gauge\ng 5\n", "# TYPE g gauge\ng 3\n"},
			map[string]float64{`g{job="j"}`: 3}},
		{"gauge aggregate adds", []string{"# TYPE g gauge\ng{clearmode=\"aggregate\"} 5\n", "# TYPE g gauge\ng{clearmode=\"aggregate\"} -3\n"},
			map[string]float64{`g{job="j"}`: 2}},
		{"clear_mode spelling", []string{"# TYPE g gauge\ng{clear_mode=\"aggregate\"} 5\n", "# TYPE g gauge\ng{clear_mode=\"aggregate\"} 3\n"},
			map[string]float64{`g{job="j"}`: 8}},
		{"untyped default aggregates", []string{"u 1.5\n", "u 2\n"},
			map[string]float64{`u{job="j"}`: 3.5}},
		{"untyped replace", []string{"u{clearmode=\"replace\"} 1.5\n", "u{clearmode=\"replace\"} 2\n"},
			map[string]float64{`u{job="j"}`: 2}},
		{"family replaces the label sets", []string{
			"# TYPE v gauge\nv{version=\"1\",clearmode=\"family\"} 1\nv{version=\"1b\",clearmode=\"family\"} 1\n",
			"# TYPE v gauge\nv{version=\"2\",clearmode=\"family\"} 1\n"},
			map[string]float64{`v{job="j",version="2"}`: 1}},
		{"info alias, counter family", []string{
			"# TYPE i_total counter\ni_total{a=\"x\",clearmode=\"info\"} 4\n",
			"# TYPE i_total counter\ni_total{a=\"y\",clearmode=\"info\"} 2\n"},
			map[string]float64{`i_total{a="y",job="j"}`: 2}},
		{"family keeps series pushed again, with the pushed value", []string{
			"# TYPE v gauge\nv{k=\"a\",clearmode=\"family\"} 1\nv{k=\"b\",clearmode=\"family\"} 1\n",
			"# TYPE v gauge\nv{k=\"a\",clearmode=\"family\"} 7\n"},
			map[string]float64{`v{job="j",k="a"}`: 7}},
		{"histogram default aggregates", []string{hist("", "1", "2", "3", "4.5"), hist("", "0", "1", "1", "1.5")},
			map[string]float64{`h_bucket{job="j",le="1"}`: 1, `h_bucket{job="j",le="2"}`: 3, `h_bucket{job="j",le="+Inf"}`: 4, `h_sum{job="j"}`: 6, `h_count{job="j"}`: 4}},
		{"histogram replace", []string{hist("replace", "1", "2", "3", "4.5"), hist("replace", "0", "1", "1", "1.5")},
			map[string]float64{`h_bucket{job="j",le="1"}`: 0, `h_bucket{job="j",le="2"}`: 1, `h_bucket{job="j",le="+Inf"}`: 1, `h_sum{job="j"}`: 1.5, `h_count{job="j"}`: 1}},
		{"summary default aggregates, last quantiles win", []string{
			"# TYPE s summary\ns{quantile=\"0.5\"} 10\ns_sum 30\ns_count 3\n",
			"# TYPE s summary\ns{quantile=\"0.5\"} 20\ns_sum 50\ns_count 2\n"},
			map[string]float64{`s{job="j",quantile="0.5"}`: 20, `s_sum{job="j"}`: 80, `s_count{job="j"}`: 5}},
		{"summary replace", []string{
			"# TYPE s summary\ns{quantile=\"0.5\",clearmode=\"replace\"} 10\ns_sum{clearmode=\"replace\"} 30\ns_count{clearmode=\"replace\"} 3\n",
			"# TYPE s summary\ns{quantile=\"0.9\",clearmode=\"replace\"} 20\ns_sum{clearmode=\"replace\"} 50\ns_count{clearmode=\"replace\"} 2\n"},
			map[string]float64{`s{job="j",quantile="0.9"}`: 20, `s_sum{job="j"}`: 50, `s_count{job="j"}`: 2}},
		{"modes are per sample", []string{
			"# TYPE g gauge\ng{k=\"a\",clearmode=\"aggregate\"} 1\ng{k=\"b\"} 1\n",
			"# TYPE g gauge\ng{k=\"a\",clearmode=\"aggregate\"} 1\ng{k=\"b\"} 1\n"},
			map[string]float64{`g{job="j",k="a"}`: 2, `g{job="j",k="b"}`: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t)
			for _, p := range tc.pushes {
				g.push(http.MethodPost, "/metrics/job/j", p, http.StatusOK)
			}
			assertSamples(t, g.scrape(), tc.want)
		})
	}
}

// TestClearModeRejected checks 400s naming the culprit for bad clear modes.
func TestClearModeRejected(t *testing.T) {
	tests := []struct {
		name, body string
		wantInBody []string
	}{
		{"unknown", "# TYPE g gauge\ng{clearmode=\"bogus\"} 1\n", []string{`"bogus"`, "g"}},
		{"malformed windowed", "# TYPE g gauge\ng{clearmode=\"mean5\"} 1\n", []string{"windowed clearmode", `"mean5"`, "metric g"}},
		{"malformed windowed percentile", "# TYPE g gauge\ng{clearmode=\"p995m\"} 1\n", []string{"windowed clearmode", `"p995m"`, "underscore"}},
		{"windowed on a counter", "# TYPE c_total counter\nc_total{clearmode=\"mean5m\"} 1\n", []string{`"mean5m"`, "counter", "metric c_total"}},
		{"both spellings", "# TYPE g gauge\ng{clearmode=\"replace\",clear_mode=\"replace\"} 1\n", []string{"clearmode", "clear_mode", "metric g"}},
		{"family mixed with others", "# TYPE g gauge\ng{k=\"a\",clearmode=\"family\"} 1\ng{k=\"b\"} 1\n", []string{"family", "metric g"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t)
			body := g.push(http.MethodPost, "/metrics/job/j", tc.body, http.StatusBadRequest)
			for _, w := range tc.wantInBody {
				if !strings.Contains(body, w) {
					t.Errorf("body %q does not contain %q", body, w)
				}
			}
			if got := g.scrape(); len(got) != 0 {
				t.Errorf("rejected push stored %v", got)
			}
		})
	}
}
