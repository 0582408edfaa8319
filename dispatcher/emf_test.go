package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// emfFixture is one line as aws-embedded-metrics 4.2 writes it in Lambda.
func emfFixture(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../testdata/emf-aws-embedded-metrics-4.2.log")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\n")
}

// textEvent is a function log record in the text log format.
func emfTextEvent(line string) telemetryapi.Event {
	rec, _ := json.Marshal(line)
	return telemetryapi.Event{Type: telemetryapi.TypeFunction, Record: rec}
}

// jsonEvent is a function log record in the JSON log format.
func emfJSONEvent(record string) telemetryapi.Event {
	return telemetryapi.Event{Type: telemetryapi.TypeFunction, Record: json.RawMessage(record)}
}

// gathered returns the series of family name keyed by their labels
// ("k=v,k=v", sorted), or nil when the family is absent.
func emfGathered(t *testing.T, m *Metrics, name string) map[string]*dto.Metric {
	t.Helper()
	families, err := gatherDTO(m.Gatherer(), m.CustomGatherer())
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		out := map[string]*dto.Metric{}
		for _, s := range mf.Metric {
			out[emfLabelString(s.Label)] = s
		}
		return out
	}
	return nil
}

func emfLabelString(labels []*dto.LabelPair) string {
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// customFamilies lists the gathered families that are not the platform's.
func emfCustomFamilies(t *testing.T, m *Metrics) []string {
	t.Helper()
	families, err := gatherDTO(m.Gatherer(), m.CustomGatherer())
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range families {
		if !strings.HasPrefix(mf.GetName(), "aws_lambda_") {
			out = append(out, mf.GetName())
		}
	}
	return out
}

const emfFnLabels = "function_name=fn,function_version=1,region=eu-west-1"

func emfWithFn(labels string) string {
	parts := strings.Split(labels+","+emfFnLabels, ",")
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func emfNear(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func emfBucket(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.Bucket {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v in %v", le, h.Bucket)
	return 0
}

// checkFixtureSeries asserts the metrics of n fixture lines exactly.
func checkEMFFixtureSeries(t *testing.T, m *Metrics, n int) {
	t.Helper()
	fam := emfCustomFamilies(t, m)
	sort.Strings(fam)
	if got := strings.Join(fam, " "); got != "cart_bytes orders_placed_total payment_latency_seconds" {
		t.Fatalf("custom families = %s", got)
	}
	want := emfWithFn("namespace=Orders,log_group=orders-api,service_name=orders-api,service_type=AWS::Lambda::Function,service=checkout")
	one := func(name string) *dto.Metric {
		t.Helper()
		s := emfGathered(t, m, name)
		if len(s) != 1 || s[want] == nil {
			var keys []string
			for k := range s {
				keys = append(keys, k)
			}
			t.Fatalf("%s series = %v, want exactly {%s}", name, keys, want)
		}
		return s[want]
	}
	if got := one("orders_placed_total").GetCounter().GetValue(); got != float64(2*n) {
		t.Errorf("orders_placed_total = %v, want %d", got, 2*n)
	}
	lat := one("payment_latency_seconds").GetHistogram()
	if lat.GetSampleCount() != uint64(2*n) || !emfNear(lat.GetSampleSum(), float64(n)*(0.2315+0.0982)) {
		t.Errorf("payment_latency_seconds count/sum = %d/%v, want %d/%v", lat.GetSampleCount(), lat.GetSampleSum(), 2*n, float64(n)*0.3297)
	}
	if emfBucket(t, lat, 0.05) != 0 || emfBucket(t, lat, 0.1) != uint64(n) || emfBucket(t, lat, 0.25) != uint64(2*n) {
		t.Errorf("payment_latency_seconds buckets = %v", lat.Bucket)
	}
	cart := one("cart_bytes").GetHistogram()
	if cart.GetSampleCount() != uint64(n) || cart.GetSampleSum() != float64(2048*n) {
		t.Errorf("cart_bytes count/sum = %d/%v, want %d/%d", cart.GetSampleCount(), cart.GetSampleSum(), n, 2048*n)
	}
	if emfBucket(t, cart, 1024) != 0 || emfBucket(t, cart, 4096) != uint64(n) {
		t.Errorf("cart_bytes buckets = %v", cart.Bucket)
	}
	if n := collectAndCount(m.custom.invalid); n != 0 {
		t.Errorf("%d invalid reasons counted for a valid line", n)
	}
	if n := collectAndCount(m.custom.dropped); n != 0 {
		t.Errorf("%d drop reasons counted for a valid line", n)
	}
}

func TestEMFFixtureInEveryLogShape(t *testing.T) {
	line := emfFixture(t)
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		t.Fatalf("fixture is not JSON: %v", err)
	}
	message, _ := json.Marshal(line)
	const req = "3da1f2dc-3222-475e-9205-e2e6c6318895"
	cases := map[string]telemetryapi.Event{
		"text, raw line":                  emfTextEvent(line + "\n"),
		"text, Node.js console prefix":    emfTextEvent("2026-11-02T10:00:05.010Z\t" + req + "\tINFO\t" + line + "\n"),
		"text, Python logging prefix":     emfTextEvent("[INFO]\t2026-11-02T10:00:05.010Z\t" + req + "\t" + line + "\n"),
		"text, prefix then pretty object": emfTextEvent("2026-11-02T10:00:05.010Z\t" + req + "\tINFO\t\n" + emfIndent(t, line) + "\n"),
		"JSON, line passed through":       emfJSONEvent(line),
		"JSON, message string":            emfJSONEvent(`{"timestamp":"2026-11-02T10:00:05.010Z","level":"INFO","requestId":"` + req + `","message":` + string(message) + `}`),
		"JSON, message object":            emfJSONEvent(`{"timestamp":"2026-11-02T10:00:05.010Z","level":"INFO","requestId":"` + req + `","message":` + line + `}`),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			m := newTestMetrics()
			if n := m.Record([]telemetryapi.Event{e}); n != 1 {
				t.Fatalf("Record counted %d events, want 1", n)
			}
			checkEMFFixtureSeries(t, m, 1)
			m.Record([]telemetryapi.Event{e})
			checkEMFFixtureSeries(t, m, 2)
		})
	}
}

func emfIndent(t *testing.T, line string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(v, "", "\t")
	return string(b)
}

// emfLine builds an EMF document: directives as JSON, root members added.
func emfLine(directives string, members map[string]any) string {
	root := map[string]any{"_aws": json.RawMessage(`{"Timestamp":1795288294266,"CloudWatchMetrics":` + directives + `}`)}
	for k, v := range members {
		root[k] = v
	}
	b, err := json.Marshal(root)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestEMFDimensionSetsAndDirectives(t *testing.T) {
	m := newTestMetrics()
	line := emfLine(`[
		{"Namespace":"Shop","Dimensions":[["Service"],["Service","Operation"],[]],
		 "Metrics":[{"Name":"Latency","Unit":"Milliseconds"},{"Name":"Requests","Unit":"Count"}]},
		{"Namespace":"Shop/Ops","Dimensions":[["Service"]],"Metrics":[{"Name":"Requests","Unit":"Count"}]}]`,
		map[string]any{"Service": "cart", "Operation": "Add Item", "Latency": []float64{5, 20}, "Requests": []float64{1, 1, 1}, "RequestId": "abc"})
	m.Record([]telemetryapi.Event{emfTextEvent(line)})

	reqs := emfGathered(t, m, "requests_total")
	want := map[string]float64{
		emfWithFn("namespace=Shop,service=cart"):                    3,
		emfWithFn("namespace=Shop,operation=Add Item,service=cart"): 3,
		emfWithFn("namespace=Shop"):                                 3,
		emfWithFn("namespace=Shop/Ops,service=cart"):                3,
	}
	if len(reqs) != len(want) {
		t.Errorf("requests_total has %d series, want %d: %v", len(reqs), len(want), reqs)
	}
	for labels, v := range want {
		if got := reqs[labels].GetCounter().GetValue(); got != v {
			t.Errorf("requests_total{%s} = %v, want %v", labels, got, v)
		}
	}
	lat := emfGathered(t, m, "latency_seconds")
	if len(lat) != 3 {
		t.Errorf("latency_seconds has %d series, want 3", len(lat))
	}
	for labels, s := range lat {
		if h := s.GetHistogram(); h.GetSampleCount() != 2 || !emfNear(h.GetSampleSum(), 0.025) {
			t.Errorf("latency_seconds{%s} count/sum = %d/%v, want 2/0.025", labels, h.GetSampleCount(), h.GetSampleSum())
		}
	}
	// Properties (RequestId) are not labels.
	for labels := range reqs {
		if strings.Contains(labels, "request_id") {
			t.Errorf("a property became a label: %s", labels)
		}
	}
}

func TestEMFUnitsAndNames(t *testing.T) {
	cases := []struct {
		name, unit string
		value      float64
		metric     string
		want       float64 // the observation (histograms) or the counter value
	}{
		{"PaymentLatency", "Milliseconds", 231.5, "payment_latency_seconds", 0.2315},
		{"LatencyMs", "Milliseconds", 1500, "latency_seconds", 1.5},
		{"GcPause", "Microseconds", 1500, "gc_pause_seconds", 0.0015},
		{"Wait", "Seconds", 2, "wait_seconds", 2},
		{"CartBytes", "Bytes", 2048, "cart_bytes", 2048},
		{"Upload", "Kilobytes", 2, "upload_bytes", 2000},
		{"S3Object", "Gigabytes", 1.5, "s3_object_bytes", 1.5e9},
		{"Frame", "Kilobits", 8, "frame_bytes", 1000},
		{"Throughput", "Megabits/Second", 8, "throughput_bytes_per_second", 1e6},
		{"Egress", "Kilobytes/Second", 3, "egress_bytes_per_second", 3000},
		{"Polls", "Count/Second", 4, "polls_per_second", 4},
		{"CacheHitPercent", "Percent", 42, "cache_hit_ratio", 0.42},
		{"QueueDepth", "None", 7, "queue_depth", 7},
		{"NoUnit", "", 7, "no_unit", 7},
		{"HTTPRequests", "Count", 3, "http_requests_total", 3},
		{"OrderCount", "Count", 2, "order_total", 2},
		{"cache.hit-rate", "None", 1, "cache_hit_rate", 1},
		{"5xxErrors", "Count", 1, "_5xx_errors_total", 1},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+c.unit, func(t *testing.T) {
			def := fmt.Sprintf(`{"Name":%q,"Unit":%q}`, c.name, c.unit)
			if c.unit == "" {
				def = fmt.Sprintf(`{"Name":%q}`, c.name)
			}
			m := newTestMetrics()
			m.Record([]telemetryapi.Event{emfTextEvent(emfLine(`[{"Namespace":"N","Dimensions":[[]],"Metrics":[`+def+`]}]`, map[string]any{c.name: c.value}))})
			if fam := emfCustomFamilies(t, m); len(fam) != 1 || fam[0] != c.metric {
				t.Fatalf("families = %v, want [%s]", fam, c.metric)
			}
			s := emfGathered(t, m, c.metric)[emfWithFn("namespace=N")]
			if s == nil {
				t.Fatalf("no %s{namespace=N} series", c.metric)
			}
			got := s.GetCounter().GetValue()
			if h := s.GetHistogram(); h != nil {
				got = h.GetSampleSum()
				if h.GetSampleCount() != 1 {
					t.Errorf("%d observations, want 1", h.GetSampleCount())
				}
			} else if c.unit != "Count" {
				t.Errorf("unit %s gave a counter, want a histogram", c.unit)
			}
			if !emfNear(got, c.want) {
				t.Errorf("%s = %v, want %v", c.metric, got, c.want)
			}
		})
	}
}

func TestEMFInvalidDocumentsAreIgnoredAndCounted(t *testing.T) {
	ok := `[{"Namespace":"N","Dimensions":[["Service"]],"Metrics":[{"Name":"Hits","Unit":"Count"}]}]`
	members := map[string]any{"Service": "svc", "Hits": 1}
	with := func(directives string, extra map[string]any) string {
		all := map[string]any{}
		for k, v := range members {
			all[k] = v
		}
		for k, v := range extra {
			if v == nil {
				delete(all, k)
			} else {
				all[k] = v
			}
		}
		return emfLine(directives, all)
	}
	many := make([]float64, 101)
	keys := make([]string, 31)
	for i := range keys {
		keys[i] = fmt.Sprintf("d%d", i)
	}
	tooManyKeys, _ := json.Marshal(keys)
	cases := []struct{ name, line, reason string }{
		{"truncated JSON", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[`, emfInvalidJSON},
		{"trailing data", with(ok, nil) + ` trailing`, emfInvalidJSON},
		{"_aws not an object", `{"_aws":[],"Hits":1}`, emfInvalidMetadata},
		{"no CloudWatchMetrics", `{"_aws":{"Timestamp":1},"Hits":1}`, emfInvalidMetadata},
		{"CloudWatchMetrics not an array", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":{}},"Hits":1}`, emfInvalidMetadata},
		{"no Timestamp", `{"_aws":{"CloudWatchMetrics":` + ok + `},"Service":"svc","Hits":1}`, emfInvalidTimestamp},
		{"Timestamp a string", `{"_aws":{"Timestamp":"1795288294266","CloudWatchMetrics":` + ok + `},"Service":"svc","Hits":1}`, emfInvalidTimestamp},
		{"no Namespace", with(`[{"Dimensions":[["Service"]],"Metrics":[{"Name":"Hits","Unit":"Count"}]}]`, nil), emfInvalidDirective},
		{"empty Namespace", with(`[{"Namespace":"","Dimensions":[["Service"]],"Metrics":[{"Name":"Hits","Unit":"Count"}]}]`, nil), emfInvalidDirective},
		{"no Dimensions", with(`[{"Namespace":"N","Metrics":[{"Name":"Hits","Unit":"Count"}]}]`, nil), emfInvalidDirective},
		{"Dimensions not arrays of strings", with(`[{"Namespace":"N","Dimensions":["Service"],"Metrics":[{"Name":"Hits","Unit":"Count"}]}]`, nil), emfInvalidDirective},
		{"31 dimension keys", with(`[{"Namespace":"N","Dimensions":[`+string(tooManyKeys)+`],"Metrics":[{"Name":"Hits","Unit":"Count"}]}]`, nil), emfInvalidDirective},
		{"no Metrics", with(`[{"Namespace":"N","Dimensions":[["Service"]]}]`, nil), emfInvalidDirective},
		{"dimension missing at the root", with(ok, map[string]any{"Service": nil}), emfInvalidDimensions},
		{"dimension not a string", with(ok, map[string]any{"Service": 12}), emfInvalidDimensions},
		{"two keys, one label", with(`[{"Namespace":"N","Dimensions":[["ServiceName","service_name"]],"Metrics":[{"Name":"Hits","Unit":"Count"}]}]`,
			map[string]any{"ServiceName": "a", "service_name": "b"}), emfInvalidDimensions},
		{"metric without Name", with(`[{"Namespace":"N","Dimensions":[["Service"]],"Metrics":[{"Unit":"Count"}]}]`, nil), emfInvalidMetric},
		{"unknown Unit", with(`[{"Namespace":"N","Dimensions":[["Service"]],"Metrics":[{"Name":"Hits","Unit":"Millis"}]}]`, nil), emfInvalidMetric},
		{"StorageResolution 5", with(`[{"Namespace":"N","Dimensions":[["Service"]],"Metrics":[{"Name":"Hits","Unit":"Count","StorageResolution":5}]}]`, nil), emfInvalidMetric},
		{"value missing", with(ok, map[string]any{"Hits": nil}), emfInvalidValue},
		{"value a string", with(ok, map[string]any{"Hits": "1"}), emfInvalidValue},
		{"value null", with(ok, map[string]any{"Hits": json.RawMessage("null")}), emfInvalidValue},
		{"empty array", with(ok, map[string]any{"Hits": []float64{}}), emfInvalidValue},
		{"101 values", with(ok, map[string]any{"Hits": many}), emfInvalidValue},
		{"array with a string", with(ok, map[string]any{"Hits": []any{1, "2"}}), emfInvalidValue},
		{"negative Count", with(ok, map[string]any{"Hits": -1}), emfInvalidValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// As a text line and, when it is a JSON object, as a JSON-format record.
			events := []telemetryapi.Event{emfTextEvent(c.line)}
			if c.reason != emfInvalidJSON {
				events = append(events, emfJSONEvent(c.line))
			}
			m := newTestMetrics()
			m.Record(events)
			if fam := emfCustomFamilies(t, m); len(fam) != 0 {
				t.Errorf("invalid document recorded %v", fam)
			}
			if got := toFloat64(m.custom.invalid.WithLabelValues(c.reason)); got != float64(len(events)) {
				t.Errorf("aws_lambda_emf_invalid_total{reason=%q} = %v, want %d", c.reason, got, len(events))
			}
			if n := collectAndCount(m.custom.invalid); n != 1 {
				t.Errorf("%d reasons counted, want only %q", n, c.reason)
			}
		})
	}
	// The valid form of the same document is recorded: the cases above fail for their reason only.
	m := newTestMetrics()
	m.Record([]telemetryapi.Event{emfTextEvent(with(ok, nil))})
	if got := toFloat64(m.custom.invalid.WithLabelValues(emfInvalidJSON)); got != 0 {
		t.Fatalf("the valid document counted as invalid")
	}
	if s := emfGathered(t, m, "hits_total"); len(s) != 1 {
		t.Fatalf("the valid document was not recorded: %v", s)
	}
}

func TestEMFNonEMFLinesAreIgnored(t *testing.T) {
	m := newTestMetrics()
	events := []telemetryapi.Event{
		emfTextEvent("2026-11-02T10:00:00.230Z\t6d68ca91\tINFO\tprocessing order 1001\n"),
		emfTextEvent("plain line mentioning _aws and \"_aws\" in passing\n"),
		emfTextEvent(`{"level":"info","msg":"structured, no metrics","_aws_region":"eu-west-1"}`),
		emfTextEvent(`2026-11-02T10:00:09.211Z` + "\t8476a536\tERROR\tInvoke Error \t" + `{"errorType":"Error","errorMessage":"boom"}` + "\n"),
		emfJSONEvent(`{"timestamp":"2026-11-02T10:00:05.010Z","level":"INFO","requestId":"3da1","message":"processing order 1002"}`),
		emfJSONEvent(`{"timestamp":"2026-11-02T10:00:05.010Z","level":"INFO","message":{"order":1002,"note":"_aws\" lookalike"}}`),
		emfJSONEvent(`{"timestamp":"2026-11-02T10:00:05.010Z","level":"INFO","message":"{\"not\":\"_aws\"}"}`),
		emfJSONEvent(`"_aws\" is not an object"`),
	}
	if n := m.Record(events); n != len(events) {
		t.Fatalf("Record counted %d of %d function events", n, len(events))
	}
	if fam := emfCustomFamilies(t, m); len(fam) != 0 {
		t.Errorf("non-EMF lines made families %v", fam)
	}
	if n := collectAndCount(m.custom.invalid); n != 0 {
		t.Errorf("non-EMF lines counted as invalid EMF")
	}
	if got := toFloat64(m.events.WithLabelValues(telemetryapi.TypeFunction)); got != float64(len(events)) {
		t.Errorf("function events counted %v, want %d", got, len(events))
	}
}

func TestEMFConflictsAreDroppedNeverPanic(t *testing.T) {
	m := newTestMetrics()
	rec := func(name, unit string, value any, dims ...string) {
		t.Helper()
		members := map[string]any{name: value}
		keys := []string{}
		for i := 0; i+1 < len(dims); i += 2 {
			members[dims[i]] = dims[i+1]
			keys = append(keys, dims[i])
		}
		k, _ := json.Marshal(keys)
		m.Record([]telemetryapi.Event{emfTextEvent(emfLine(
			fmt.Sprintf(`[{"Namespace":"N","Dimensions":[%s],"Metrics":[{"Name":%q,"Unit":%q}]}]`, k, name, unit), members))})
	}
	rec("Latency", "Milliseconds", 100)
	rec("LatencySeconds", "None", 1)                               // latency_seconds with other buckets: conflict
	rec("Latency", "Seconds", 0.5)                                 // same family, same buckets: fine
	rec("Size", "None", 10)                                        // size
	rec("SizeCount", "None", 1)                                    // size_count collides with size's _count series
	rec("Runs", "Count", 1)                                        // runs_total
	rec("RunsTotal", "None", 1)                                    // a histogram named runs_total: name
	rec("aws_lambda_invocations", "Count", 1)                      // reserved
	rec("GoRoutines", "None", 1)                                   // reserved (the gateway's go_ collector)
	rec("PushTime", "Seconds", 1)                                  // push_time_seconds: reserved
	rec("!!!", "Count", 1)                                         // no name
	rec("Tenant", "Count", 1, "function_name", "other", "Le", "x") // labels the pipeline owns

	for reason, want := range map[string]float64{emfDropConflict: 2, emfDropName: 2, emfDropReserved: 3} {
		if got := toFloat64(m.custom.dropped.WithLabelValues(reason)); got != want {
			t.Errorf("aws_lambda_emf_dropped_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	fam := emfCustomFamilies(t, m) // Gather must still succeed
	sort.Strings(fam)
	if got := strings.Join(fam, " "); got != "latency_seconds runs_total size tenant_total" {
		t.Errorf("families = %s", got)
	}
	lat := emfGathered(t, m, "latency_seconds")[emfWithFn("namespace=N")].GetHistogram()
	if lat.GetSampleCount() != 2 || !emfNear(lat.GetSampleSum(), 0.6) {
		t.Errorf("latency_seconds count/sum = %d/%v, want 2/0.6", lat.GetSampleCount(), lat.GetSampleSum())
	}
	if s := emfGathered(t, m, "tenant_total"); s[emfWithFn("exported_function_name=other,exported_le=x,namespace=N")] == nil {
		t.Errorf("tenant_total series = %v, want exported_function_name and exported_le", s)
	}
	if got := toFloat64(m.invocations.WithLabelValues("success")); got != 0 {
		t.Errorf("a custom metric reached aws_lambda_invocations_total: %v", got)
	}
}

func TestEMFSeriesLimit(t *testing.T) {
	m := newTestMetrics()
	const over = 5
	var events []telemetryapi.Event
	for i := 0; i < emfSeriesLimit+over; i++ {
		events = append(events, emfTextEvent(emfLine(`[{"Namespace":"N","Dimensions":[["Customer"]],"Metrics":[{"Name":"Orders","Unit":"Count"}]}]`,
			map[string]any{"Customer": fmt.Sprintf("c%d", i), "Orders": 1})))
	}
	m.Record(events)
	if n := len(emfGathered(t, m, "orders_total")); n != emfSeriesLimit {
		t.Errorf("orders_total has %d series, want the limit %d", n, emfSeriesLimit)
	}
	if got := toFloat64(m.custom.dropped.WithLabelValues(emfDropLimit)); got != over {
		t.Errorf("dropped{series_limit} = %v, want %d", got, over)
	}
	// Known series still count.
	m.Record(events[:1])
	if got := emfGathered(t, m, "orders_total")[emfWithFn("customer=c0,namespace=N")].GetCounter().GetValue(); got != 2 {
		t.Errorf("orders_total{customer=c0} = %v, want 2", got)
	}
}

func TestCustomPusherCarriesEMFMetrics(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	p := NewPusher(srv.URL, "fn", m.CustomGatherer(), nil, nil)
	line := emfTextEvent(emfFixture(t) + "\n")

	m.Record([]telemetryapi.Event{line, reportEvent("r1", "success")})
	if pushed, err := p.Push(context.Background()); err != nil || !pushed {
		t.Fatalf("push: pushed=%v err=%v", pushed, err)
	}
	check := func(push map[string]*dto.MetricFamily) {
		t.Helper()
		for _, name := range []string{"aws_lambda_invocations_total", "aws_lambda_emf_invalid_total", "aws_lambda_emf_dropped_total"} {
			if push[name] != nil {
				t.Errorf("the push of the custom metrics carries the platform's %s", name)
			}
		}
		for _, name := range []string{"orders_placed_total", "payment_latency_seconds", "cart_bytes"} {
			mf := push[name]
			if mf == nil || len(mf.Metric) != 1 {
				t.Fatalf("push lacks %s: %v", name, mf)
			}
			if got := labelValue(mf.Metric[0], ClearmodeLabel); got != "aggregate" {
				t.Errorf("%s clearmode = %q", name, got)
			}
		}
		s := push["orders_placed_total"].Metric[0]
		if s.GetCounter().GetValue() != 2 || labelValue(s, "service") != "checkout" || labelValue(s, "namespace") != "Orders" || labelValue(s, "function_name") != "fn" {
			t.Errorf("orders_placed_total pushed as %v", s)
		}
		h := push["payment_latency_seconds"].Metric[0].GetHistogram()
		if h.GetSampleCount() != 2 || !emfNear(h.GetSampleSum(), 0.3297) {
			t.Errorf("payment_latency_seconds pushed count/sum %d/%v, want 2/0.3297", h.GetSampleCount(), h.GetSampleSum())
		}
	}
	check(gw.last(t))

	// The next push carries only the increment of the second line.
	m.Record([]telemetryapi.Event{line, reportEvent("r2", "success")})
	if _, err := p.Push(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(gw.last(t))
}
