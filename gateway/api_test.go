package gateway_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// apiGet GETs an /api/v1 path and decodes {"status":…, "data":…}.
func (g *testGateway) apiGet(path string, data any) {
	g.t.Helper()
	code, body := g.do(http.MethodGet, path, nil, nil)
	if code != http.StatusOK {
		g.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var resp struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		g.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	if resp.Status != "success" {
		g.t.Errorf("GET %s: status %q, want success", path, resp.Status)
	}
	if err := json.Unmarshal(resp.Data, data); err != nil {
		g.t.Fatalf("GET %s data: %v\n%s", path, err, body)
	}
}

func jsonEqual(t *testing.T, what string, got any, wantJSON string) {
	t.Helper()
	var want any
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatalf("%s: bad expected JSON: %v", what, err)
	}
	// Round-trip got so both sides have the same dynamic types.
	b, _ := json.Marshal(got)
	var g any
	_ = json.Unmarshal(b, &g)
	if !reflect.DeepEqual(g, want) {
		w, _ := json.MarshalIndent(want, "", "  ")
		gi, _ := json.MarshalIndent(g, "", "  ")
		t.Errorf("%s:\n got %s\nwant %s", what, gi, w)
	}
}

// TestAPIMetrics checks /api/v1/metrics against the Pushgateway's shape for
// every type: numbers as strings, histogram buckets and summary quantiles as
// maps, the push time gauges and last_push_successful per group.
func TestAPIMetrics(t *testing.T) {
	clk := newFakeClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newOptsGateway(t, gateway.StoreOptions{Now: clk.Now}, gateway.Options{})
	g.push(http.MethodPost, "/metrics/job/api/instance/i1", `# HELP c_total Requests.
# TYPE c_total counter
c_total{k="a"} 3
# TYPE g gauge
g 2.5
# TYPE u untyped
u 1e6
# TYPE h histogram
h_bucket{le="0.5"} 1
h_bucket{le="1"} 2
h_bucket{le="+Inf"} 3
h_sum 4.5
h_count 3
# TYPE s summary
s{quantile="0.5"} 0.2
s{quantile="0.99"} 0.9
s_sum 7
s_count 10
`, http.StatusOK)
	var data []map[string]any
	g.apiGet("/api/v1/metrics", &data)
	const ls = `{"instance":"i1","job":"api"}`
	const ts = `"2025-01-02T03:04:05Z"`
	jsonEqual(t, "group after a push", data, `[{
  "labels": `+ls+`,
  "last_push_successful": true,
  "c_total": {"time_stamp": `+ts+`, "type": "COUNTER", "help": "Requests.",
    "metrics": [{"labels": {"instance":"i1","job":"api","k":"a"}, "value": "3"}]},
  "g": {"time_stamp": `+ts+`, "type": "GAUGE", "metrics": [{"labels": `+ls+`, "value": "2.5"}]},
  "u": {"time_stamp": `+ts+`, "type": "UNTYPED", "metrics": [{"labels": `+ls+`, "value": "1e+06"}]},
  "h": {"time_stamp": `+ts+`, "type": "HISTOGRAM",
    "metrics": [{"labels": `+ls+`, "buckets": {"0.5": "1", "1": "2"}, "count": "3", "sum": "4.5"}]},
  "s": {"time_stamp": `+ts+`, "type": "SUMMARY",
    "metrics": [{"labels": `+ls+`, "quantiles": {"0.5": "0.2", "0.99": "0.9"}, "count": "10", "sum": "7"}]},
  "push_time_seconds": {"time_stamp": `+ts+`, "type": "GAUGE",
    "help": "Last Unix time when changing this group in the Pushgateway succeeded.",
    "metrics": [{"labels": `+ls+`, "value": "1.735787045e+09"}]},
  "push_failure_time_seconds": {"time_stamp": `+ts+`, "type": "GAUGE",
    "help": "Last Unix time when changing this group in the Pushgateway failed.",
    "metrics": [{"labels": `+ls+`, "value": "0"}]}
}]`)

	// A failed push 5s later: last_push_successful false, the failure time
	// set, families unchanged.
	clk.Add(5 * time.Second)
	g.push(http.MethodPost, "/metrics/job/api/instance/i1", "# TYPE g counter\ng 1\n", http.StatusBadRequest)
	data = nil
	g.apiGet("/api/v1/metrics", &data)
	if len(data) != 1 {
		t.Fatalf("%d groups, want 1", len(data))
	}
	grp := data[0]
	if grp["last_push_successful"] != false {
		t.Errorf("last_push_successful = %v, want false", grp["last_push_successful"])
	}
	jsonEqual(t, "push_failure_time_seconds", grp["push_failure_time_seconds"], `{"time_stamp": "2025-01-02T03:04:10Z", "type": "GAUGE",
    "help": "Last Unix time when changing this group in the Pushgateway failed.",
    "metrics": [{"labels": `+ls+`, "value": "1.73578705e+09"}]}`)
	jsonEqual(t, "g after the failed push", grp["g"], `{"time_stamp": `+ts+`, "type": "GAUGE", "metrics": [{"labels": `+ls+`, "value": "2.5"}]}`)

	// Groups are listed sorted by grouping labels; the root group has none.
	g.push(http.MethodPost, "/metrics", "# TYPE r gauge\nr 1\n", http.StatusOK)
	data = nil
	g.apiGet("/api/v1/metrics", &data)
	if len(data) != 2 {
		t.Fatalf("%d groups, want 2", len(data))
	}
	jsonEqual(t, "root group labels", data[0]["labels"], `{}`)
}

func TestAPIStatus(t *testing.T) {
	before := time.Now()
	g := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{Flags: map[string]string{"web.listen-address": ":9091", "push.ttl": "0s"}})
	after := time.Now()
	var data struct {
		Flags     map[string]string `json:"flags"`
		StartTime time.Time         `json:"start_time"`
		BuildInfo map[string]string `json:"build_information"`
	}
	g.apiGet("/api/v1/status", &data)
	if !reflect.DeepEqual(data.Flags, map[string]string{"web.listen-address": ":9091", "push.ttl": "0s"}) {
		t.Errorf("flags %v", data.Flags)
	}
	if data.StartTime.Before(before.Truncate(time.Second)) || data.StartTime.After(after) {
		t.Errorf("start_time %v, want between %v and %v", data.StartTime, before, after)
	}
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := data.BuildInfo[k]; !ok {
			t.Errorf("build_information lacks %q: %v", k, data.BuildInfo)
		}
	}
	if data.BuildInfo["goVersion"] != runtime.Version() {
		t.Errorf("goVersion %q, want %q", data.BuildInfo["goVersion"], runtime.Version())
	}

	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/api/v1/status", nil)
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "*" {
		t.Errorf("CORS origin %q, want *", o)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodOptions, "/api/v1/anything", http.StatusOK},
		{http.MethodGet, "/api/v1/nope", http.StatusNotFound},
		{http.MethodPost, "/api/v1/metrics", http.StatusMethodNotAllowed},
	} {
		if code, _ := g.do(tc.method, tc.path, nil, nil); code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
}

func TestAdminWipe(t *testing.T) {
	off := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{})
	off.push(http.MethodPost, "/metrics/job/a", "m 1\n", http.StatusOK)
	if code, _ := off.do(http.MethodPut, "/api/v1/admin/wipe", nil, nil); code != http.StatusNotFound {
		t.Errorf("wipe without --web.enable-admin-api: %d, want 404", code)
	}
	assertSamples(t, off.scrape(), map[string]float64{`m{job="a"}`: 1})

	on := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{EnableAdminAPI: true})
	on.push(http.MethodPost, "/metrics/job/a", "m 1\n", http.StatusOK)
	on.push(http.MethodPost, "/metrics/job/b/x/y", "# TYPE n gauge\nn 1\n", http.StatusOK)
	on.push(http.MethodPost, "/metrics/job/c", "bad{\n", http.StatusBadRequest)
	if code, _ := on.do(http.MethodGet, "/api/v1/admin/wipe", nil, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET wipe: %d, want 405", code)
	}
	if code, body := on.do(http.MethodPut, "/api/v1/admin/wipe", nil, nil); code != http.StatusAccepted {
		t.Errorf("PUT wipe: %d %s, want 202", code, body)
	}
	if mfs, _ := on.store.Gather(); len(mfs) != 0 {
		t.Errorf("after wipe: %v", mfs)
	}
	// The store works on after a wipe; the type of n may change now.
	on.push(http.MethodPost, "/metrics/job/a", "# TYPE n counter\nn 2\n", http.StatusOK)
	assertSamples(t, on.scrape(), map[string]float64{`n{job="a"}`: 2})
}

func TestQuit(t *testing.T) {
	var calls atomic.Int32
	quit := func() { calls.Add(1) }
	off := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{Quit: quit})
	if code, body := off.do(http.MethodPut, "/-/quit", nil, nil); code != http.StatusForbidden || !strings.Contains(body, "not enabled") {
		t.Errorf("quit without --web.enable-lifecycle: %d %q, want 403", code, body)
	}
	if calls.Load() != 0 {
		t.Error("Quit called without the lifecycle API")
	}

	on := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{EnableLifecycle: true, Quit: quit})
	if code, _ := on.do(http.MethodGet, "/-/quit", nil, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/quit: %d, want 405", code)
	}
	if code, body := on.do(http.MethodPost, "/-/quit", nil, nil); code != http.StatusOK || !strings.Contains(body, "Goodbye") {
		t.Errorf("POST /-/quit: %d %q, want 200", code, body)
	}
	if code, _ := on.do(http.MethodPut, "/-/quit", nil, nil); code != http.StatusOK {
		t.Errorf("PUT /-/quit: %d, want 200", code)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Quit called %d times, want once", n)
	}
}
