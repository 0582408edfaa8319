package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

func newLimitedGateway(t *testing.T, limits gateway.Limits, sopts gateway.StoreOptions) *httptest.Server {
	t.Helper()
	gw, err := gateway.New(gateway.NewMemoryStore(sopts), gateway.Options{Limits: limits, MaxBodyBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPushLimits: each per-push limit refuses the push whole with its status
// and a message naming the label; nothing stored changes, and
// gateway_limit_rejections_total counts it.
func TestPushLimits(t *testing.T) {
	srv := newLimitedGateway(t, gateway.Limits{MaxSamples: 5, MaxLabelNameLength: 8, MaxLabelValueLength: 10, MaxLabelsPerSeries: 3}, gateway.StoreOptions{})
	if code, body := send(t, srv, "POST", "/metrics/job/j", "kept_total 1\n"); code != 200 {
		t.Fatalf("baseline push: %d %s", code, body)
	}
	for _, c := range []struct {
		name, path, body string
		code             int
		inBody           string
	}{
		{"samples", "/metrics/job/j", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\nkept_total 1\nother 1\n", 413, "6 samples, more than the limit of 5"},
		{"samples, +Inf implied", "/metrics/job/j", "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 1\ns_sum 1\ns_count 2\nkept_total 1\nx 1\n", 413, "more than the limit of 5"},
		{"label name", "/metrics/job/j", "kept_total{much_too_long=\"v\"} 1\n", 400, `"much_too_long": name of 13 bytes`},
		{"label value", "/metrics/job/j", "kept_total{a=\"0123456789x\"} 1\n", 400, `label "a": value of 11 bytes`},
		{"grouping label value", "/metrics/job/0123456789x", "kept_total 1\n", 400, `grouping label "job": value of 11 bytes`},
		{"labels per series", "/metrics/job/j/g/1", "kept_total{a=\"1\",b=\"2\"} 1\n", 400, "4 labels (grouping labels included), more than the limit of 3"},
		{"body size", "/metrics/job/j", "kept_total 1\n" + strings.Repeat("# filler comment\n", 300), 413, "larger than 4096 bytes"},
	} {
		code, body := send(t, srv, "POST", c.path, c.body)
		if code != c.code || !strings.Contains(body, c.inBody) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, code, body, c.code, c.inBody)
		}
	}
	// Within limits: a grouping label the push also sets counts once, and
	// empty values and clearmode do not count.
	if code, body := send(t, srv, "POST", "/metrics/job/j/g/1", "kept_total{g=\"2\",clearmode=\"aggregate\",e=\"\"} 1\n"); code != 200 {
		t.Errorf("push within limits: %d %s", code, body)
	}
	code, scrape := send(t, srv, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("scrape: %d", code)
	}
	for _, want := range []string{
		`kept_total{job="j"} 1`,
		`gateway_limit_rejections_total{limit="samples"} 2`,
		`gateway_limit_rejections_total{limit="label_name_length"} 1`,
		`gateway_limit_rejections_total{limit="label_value_length"} 2`,
		`gateway_limit_rejections_total{limit="labels_per_series"} 1`,
		`gateway_limit_rejections_total{limit="body_size"} 1`,
		`gateway_limit_rejections_total{limit="series"} 0`,
		`gateway_push_duration_seconds_count{method="POST"} 9`,
		`gateway_push_duration_seconds_count{method="PUT"} 0`,
		`gateway_groups 3`, // job=j, job=j/g=1, and job=0123456789x with its failure time
	} {
		if !strings.Contains(scrape, want+"\n") {
			t.Errorf("scrape lacks %q:\n%s", want, grepLines(scrape, "kept_total", "gateway_"))
		}
	}
	for _, unwanted := range []string{"\nother ", "\nx ", "\nh_bucket", "\ns_sum", "much_too_long"} {
		if strings.Contains(scrape, unwanted) {
			t.Errorf("a refused push left %q in the scrape", unwanted)
		}
	}
}

func grepLines(s string, prefixes ...string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return b.String()
}

// TestPushLimitsDefaultsAndOff: the zero Limits apply the defaults; a
// negative limit is none.
func TestPushLimitsDefaultsAndOff(t *testing.T) {
	if got := (gateway.Limits{}).Effective(); got != (gateway.Limits{MaxSamples: gateway.DefaultMaxSamples, MaxLabelNameLength: gateway.DefaultMaxLabelNameLength, MaxLabelValueLength: gateway.DefaultMaxLabelValueLength, MaxLabelsPerSeries: gateway.DefaultMaxLabelsPerSeries}) {
		t.Errorf("defaults: %+v", got)
	}
	long := strings.Repeat("v", gateway.DefaultMaxLabelValueLength+1)
	dflt := newLimitedGateway(t, gateway.Limits{}, gateway.StoreOptions{})
	if code, _ := send(t, dflt, "POST", "/metrics/job/j", fmt.Sprintf("m{a=%q} 1\n", long)); code != 400 {
		t.Errorf("default value length: %d, want 400", code)
	}
	off := newLimitedGateway(t, gateway.Limits{MaxSamples: -1, MaxLabelNameLength: -1, MaxLabelValueLength: -1, MaxLabelsPerSeries: -1}, gateway.StoreOptions{})
	if code, body := send(t, off, "POST", "/metrics/job/j", fmt.Sprintf("m{a=%q} 1\n", long)); code != 200 {
		t.Errorf("no limits: %d %s", code, body)
	}
}

// TestSeriesLimitsAndStoreGauges: the store's series limits answer 429 and
// are counted; gateway_groups and gateway_series follow the store.
func TestSeriesLimitsAndStoreGauges(t *testing.T) {
	srv := newLimitedGateway(t, gateway.Limits{}, gateway.StoreOptions{MaxSeries: 3, MaxSeriesPerGroup: 2})
	for i, c := range []struct {
		path, body string
		code       int
	}{
		{"/metrics/job/a", "m{i=\"1\"} 1\nm{i=\"2\"} 1\n", 200},
		{"/metrics/job/a", "m{i=\"3\"} 1\n", 429}, // 3 in group a
		{"/metrics/job/b", "m{i=\"1\"} 1\n", 200},
		{"/metrics/job/c", "m{i=\"1\"} 1\n", 429}, // 4 in all
	} {
		if code, body := send(t, srv, "POST", c.path, c.body); code != c.code {
			t.Errorf("push %d: %d %s, want %d", i, code, body, c.code)
		}
	}
	_, scrape := send(t, srv, "GET", "/metrics", "")
	for _, want := range []string{
		`gateway_limit_rejections_total{limit="series_per_group"} 1`,
		`gateway_limit_rejections_total{limit="series"} 1`,
		`gateway_series 3`,
	} {
		if !strings.Contains(scrape, want+"\n") {
			t.Errorf("scrape lacks %q:\n%s", want, grepLines(scrape, "gateway_"))
		}
	}
	if strings.Contains(scrape, `m{i="3"`) {
		t.Error("refused series stored")
	}
}
