package dispatcher

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// pmEvent builds an event of type typ whose record is rec marshalled, or
// rec itself when it is a string of raw JSON.
func pmEvent(t *testing.T, typ string, rec any) telemetryapi.Event {
	t.Helper()
	if raw, ok := rec.(string); ok {
		return telemetryapi.Event{Type: typ, Record: json.RawMessage(raw)}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return telemetryapi.Event{Type: typ, Record: b}
}

// pmSeries returns the series of family name whose labels include want
// (function labels aside), nil when there is none; it fails when several match.
func pmSeries(t *testing.T, m *Metrics, name string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := gatherDTO(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	var found *dto.Metric
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.Metric {
			labels := map[string]string{}
			for _, l := range s.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["function_name"] != "fn" || labels["function_version"] != "1" || labels["region"] != "eu-west-1" {
				t.Errorf("%s%v lacks the function labels", name, labels)
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			if found != nil {
				t.Fatalf("%s: several series match %v", name, want)
			}
			found = s
		}
	}
	return found
}

// pmLabelSets lists the label sets (function labels left out) of family name.
func pmLabelSets(t *testing.T, m *Metrics, name string) []string {
	t.Helper()
	families, err := gatherDTO(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.Metric {
			var pairs []string
			for _, l := range s.Label {
				switch l.GetName() {
				case "function_name", "function_version", "region":
				default:
					pairs = append(pairs, l.GetName()+"="+l.GetValue())
				}
			}
			out = append(out, strings.Join(pairs, ","))
		}
	}
	sort.Strings(out)
	return out
}

func pmCounter(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	s := pmSeries(t, m, name, labels)
	if s == nil {
		t.Fatalf("%s%v: no series", name, labels)
	}
	if s.Counter == nil {
		t.Fatalf("%s%v is not a counter", name, labels)
	}
	return s.GetCounter().GetValue()
}

// pmCountSum returns the count and sum of a histogram or summary series.
func pmCountSum(t *testing.T, m *Metrics, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	s := pmSeries(t, m, name, labels)
	switch {
	case s == nil:
		t.Fatalf("%s%v: no series", name, labels)
	case s.Histogram != nil:
		return s.GetHistogram().GetSampleCount(), s.GetHistogram().GetSampleSum()
	case s.Summary != nil:
		if len(s.GetSummary().GetQuantile()) != 0 {
			t.Errorf("%s%v: summary with quantiles", name, labels)
		}
		return s.GetSummary().GetSampleCount(), s.GetSummary().GetSampleSum()
	}
	t.Fatalf("%s%v is neither a histogram nor a summary", name, labels)
	return 0, 0
}

func pmNear(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func pmWantCountSum(t *testing.T, m *Metrics, name string, labels map[string]string, count uint64, sum float64) {
	t.Helper()
	c, s := pmCountSum(t, m, name, labels)
	if c != count || !pmNear(s, sum) {
		t.Errorf("%s%v count/sum = %d/%v, want %d/%v", name, labels, c, s, count, sum)
	}
}

func pmRecordScenario(t *testing.T, m *Metrics) {
	t.Helper()
	for _, batch := range scenarioBatches(t) {
		if n := m.Record(batch); n != len(batch) {
			t.Fatalf("Record counted %d of %d events", n, len(batch))
		}
	}
}

func TestPlatformMetricsFromScenario(t *testing.T) {
	for _, d := range []Distribution{Histogram, Summary} {
		m := NewMetrics(Labels{FunctionName: "fn", FunctionVersion: "1", Region: "eu-west-1"}, d)
		pmRecordScenario(t, m)

		// platform.initReport: 178.43 ms, on-demand, init phase, success.
		pmWantCountSum(t, m, "aws_lambda_init_phase_duration_seconds",
			map[string]string{"initialization_type": "on-demand", "phase": "init", "status": "success"}, 1, 0.17843)
		if got := pmLabelSets(t, m, "aws_lambda_init_phase_duration_seconds"); len(got) != 1 {
			t.Errorf("init phase series = %v, want one", got)
		}
		if got := pmLabelSets(t, m, "aws_lambda_init_failures_total"); len(got) != 0 {
			t.Errorf("init failures %v in a scenario without one", got)
		}
		// platform.runtimeDone: producedBytes 42, 42, 0 and one absent.
		if got := pmCounter(t, m, "aws_lambda_produced_bytes_total", nil); got != 84 {
			t.Errorf("produced bytes = %v, want 84", got)
		}
		// Spans of the first runtimeDone only; the report repeating them is not read.
		pmWantCountSum(t, m, "aws_lambda_response_latency_seconds", nil, 1, 0.1195)
		pmWantCountSum(t, m, "aws_lambda_response_duration_seconds", nil, 1, 0.0003)
		pmWantCountSum(t, m, "aws_lambda_runtime_overhead_seconds", map[string]string{"phase": "init"}, 1, 0.1762)
		if got := pmLabelSets(t, m, "aws_lambda_runtime_overhead_seconds"); len(got) != 1 {
			t.Errorf("runtime overhead series = %v, want phase=init only", got)
		}
		if got := pmCounter(t, m, "aws_lambda_extension_state_changes_total",
			map[string]string{"extension": "prometheus-telemetry-extension", "state": "Ready"}); got != 1 {
			t.Errorf("extension Ready = %v, want 1", got)
		}
		if got := pmCounter(t, m, "aws_lambda_telemetry_subscription_state_changes_total",
			map[string]string{"extension": "prometheus-telemetry-extension", "state": "Subscribed"}); got != 1 {
			t.Errorf("subscription Subscribed = %v, want 1", got)
		}
		// No SnapStart in this scenario: no restore observed.
		if c, _ := pmCountSum(t, m, "aws_lambda_restore_duration_seconds", nil); c != 0 {
			t.Errorf("restore durations observed: %d", c)
		}
		// Cost: billed 121 + 46 + 213 + 3000 ms at 512 MB.
		gbs := (121.0 + 46 + 213 + 3000) / 1000 * 512 / 1024
		arch := map[string]string{"architecture": Architecture()}
		if got := pmCounter(t, m, "aws_lambda_billed_gb_seconds_total", arch); !pmNear(got, gbs) {
			t.Errorf("billed GB-s = %v, want %v", got, gbs)
		}
		p := DefaultPrices(Architecture())
		if got, want := pmCounter(t, m, "aws_lambda_estimated_cost_usd_total", arch), gbs*p.PerGBSecond+4*p.PerRequest; !pmNear(got, want) {
			t.Errorf("estimated cost = %v, want %v", got, want)
		}
		// The unknown type is counted by type and nothing else.
		if got := pmCounter(t, m, "aws_lambda_telemetry_events_total", map[string]string{"type": "platform.someFutureEvent"}); got != 1 {
			t.Errorf("unknown type counted %v times, want 1", got)
		}
		if got := pmLabelSets(t, m, "aws_lambda_telemetry_undecodable_events_total"); len(got) != 0 {
			t.Errorf("undecodable events in the scenario: %v", got)
		}
	}
}

func TestPlatformMetricsSnapStartRestore(t *testing.T) {
	m := newTestMetrics()
	restoreMs := 245.6
	events := []telemetryapi.Event{
		pmEvent(t, telemetryapi.TypePlatformRestoreStart, map[string]any{
			"runtimeVersion": "python:3.13.v20", "functionName": "fn", "functionVersion": "1",
			"instanceId": "i-1", "instanceMaxMemory": 1024}),
		pmEvent(t, telemetryapi.TypePlatformRestoreRuntimeDone, map[string]any{
			"status": "success",
			"spans":  []map[string]any{{"name": "runtimeOverhead", "start": "2026-11-02T10:00:00.010Z", "durationMs": 12.5}}}),
		pmEvent(t, telemetryapi.TypePlatformRestoreReport, map[string]any{
			"status": "success", "metrics": map[string]any{"durationMs": restoreMs}}),
		pmEvent(t, telemetryapi.TypePlatformStart, map[string]any{"requestId": "r1"}),
		pmEvent(t, telemetryapi.TypePlatformReport, map[string]any{
			"requestId": "r1", "status": "success",
			"metrics": map[string]any{"durationMs": 80.2, "billedDurationMs": 81, "memorySizeMB": 1024,
				"maxMemoryUsedMB": 200, "restoreDurationMs": restoreMs}}),
	}
	if n := m.Record(events); n != len(events) {
		t.Fatalf("Record counted %d of %d", n, len(events))
	}
	// Timed once, from platform.report, although restoreReport carries it too.
	pmWantCountSum(t, m, "aws_lambda_restore_duration_seconds", nil, 1, restoreMs/1000)
	pmWantCountSum(t, m, "aws_lambda_runtime_overhead_seconds", map[string]string{"phase": "restore"}, 1, 0.0125)
	if got := pmLabelSets(t, m, "aws_lambda_restore_failures_total"); len(got) != 0 {
		t.Errorf("restore failures after a successful restore: %v", got)
	}
	// A redelivered report does not time the restore again.
	m.Record(events[4:])
	pmWantCountSum(t, m, "aws_lambda_restore_duration_seconds", nil, 1, restoreMs/1000)

	// Failed restores, with and without an errorType.
	m.Record([]telemetryapi.Event{
		pmEvent(t, telemetryapi.TypePlatformRestoreReport, map[string]any{
			"status": "failure", "errorType": "Runtime.ExitError", "metrics": map[string]any{"durationMs": 30}}),
		pmEvent(t, telemetryapi.TypePlatformRestoreReport, map[string]any{"status": "timeout"}),
	})
	if got := pmLabelSets(t, m, "aws_lambda_restore_failures_total"); strings.Join(got, " ") != "error_type=Runtime.ExitError error_type=unknown" {
		t.Errorf("restore failures = %v", got)
	}
	pmWantCountSum(t, m, "aws_lambda_restore_duration_seconds", nil, 1, restoreMs/1000)
}

func TestPlatformMetricsInitFailures(t *testing.T) {
	m := newTestMetrics()
	m.Record([]telemetryapi.Event{
		pmEvent(t, telemetryapi.TypePlatformInitRuntimeDone, map[string]any{
			"initializationType": "on-demand", "phase": "init", "status": "error", "errorType": "Runtime.ExitError"}),
		pmEvent(t, telemetryapi.TypePlatformInitReport, map[string]any{
			"initializationType": "on-demand", "phase": "init", "status": "error", "errorType": "Runtime.ExitError",
			"metrics": map[string]any{"durationMs": 1500}}),
		// Lambda retries the init in the invoke phase, which times out.
		pmEvent(t, telemetryapi.TypePlatformInitReport, map[string]any{
			"initializationType": "on-demand", "phase": "invoke", "status": "timeout",
			"metrics": map[string]any{"durationMs": 3000}}),
		// Provisioned concurrency, successful.
		pmEvent(t, telemetryapi.TypePlatformInitReport, map[string]any{
			"initializationType": "provisioned-concurrency", "phase": "init", "status": "success",
			"metrics": map[string]any{"durationMs": 900}}),
		// Schema 2022-07-01: no status; not a failure.
		pmEvent(t, telemetryapi.TypePlatformInitReport, map[string]any{
			"initializationType": "on-demand", "phase": "init", "metrics": map[string]any{"durationMs": 100}}),
	})
	// Counted once per failed init, from initReport, not again from initRuntimeDone.
	want := "error_type=Runtime.ExitError,initialization_type=on-demand error_type=unknown,initialization_type=on-demand"
	if got := pmLabelSets(t, m, "aws_lambda_init_failures_total"); strings.Join(got, " ") != want {
		t.Errorf("init failures = %v\nwant %v", got, want)
	}
	if got := pmCounter(t, m, "aws_lambda_init_failures_total",
		map[string]string{"initialization_type": "on-demand", "error_type": "Runtime.ExitError"}); got != 1 {
		t.Errorf("init failures Runtime.ExitError = %v, want 1", got)
	}
	pmWantCountSum(t, m, "aws_lambda_init_phase_duration_seconds",
		map[string]string{"initialization_type": "on-demand", "phase": "init", "status": "error"}, 1, 1.5)
	pmWantCountSum(t, m, "aws_lambda_init_phase_duration_seconds",
		map[string]string{"initialization_type": "on-demand", "phase": "invoke", "status": "timeout"}, 1, 3)
	pmWantCountSum(t, m, "aws_lambda_init_phase_duration_seconds",
		map[string]string{"initialization_type": "provisioned-concurrency", "phase": "init", "status": "success"}, 1, 0.9)
	pmWantCountSum(t, m, "aws_lambda_init_phase_duration_seconds",
		map[string]string{"initialization_type": "on-demand", "phase": "init", "status": "unknown"}, 1, 0.1)
	// Unlike aws_lambda_init_duration_seconds, which needs a platform.report.
	if c, _ := pmCountSum(t, m, "aws_lambda_init_duration_seconds", nil); c != 0 {
		t.Errorf("init_duration observed %d times without a report", c)
	}
}

func TestPlatformMetricsExtensionAndSubscriptionStates(t *testing.T) {
	m := newTestMetrics()
	m.Record([]telemetryapi.Event{
		pmEvent(t, telemetryapi.TypePlatformExtension, map[string]any{"name": "a", "state": "Ready", "events": []string{"INVOKE", "SHUTDOWN"}}),
		pmEvent(t, telemetryapi.TypePlatformExtension, map[string]any{"name": "b", "state": "Ready", "events": []string{"SHUTDOWN"}}),
		pmEvent(t, telemetryapi.TypePlatformExtension, map[string]any{"name": "b", "state": "Failed", "errorType": "Extension.Crash"}),
		pmEvent(t, telemetryapi.TypePlatformExtension, map[string]any{}),
		pmEvent(t, telemetryapi.TypePlatformTelemetrySubscription, map[string]any{"name": "a", "state": "Subscribed", "types": []string{"platform"}}),
		pmEvent(t, telemetryapi.TypePlatformTelemetrySubscription, map[string]any{"name": "a", "state": "Subscribed", "types": []string{"platform", "function"}}),
	})
	if got, want := strings.Join(pmLabelSets(t, m, "aws_lambda_extension_state_changes_total"), " "),
		"extension=a,state=Ready extension=b,state=Failed extension=b,state=Ready extension=unknown,state=unknown"; got != want {
		t.Errorf("extension states = %v\nwant %v", got, want)
	}
	if got := pmCounter(t, m, "aws_lambda_telemetry_subscription_state_changes_total",
		map[string]string{"extension": "a", "state": "Subscribed"}); got != 2 {
		t.Errorf("subscriptions = %v, want 2", got)
	}
}

func TestPlatformMetricsUnknownTypesAreNeverFatal(t *testing.T) {
	m := newTestMetrics()
	events := []telemetryapi.Event{
		pmEvent(t, "platform.someFutureEvent", `{"anything":{"nested":[1,2,3]}}`),
		pmEvent(t, "platform.fault", `"not even an object"`),
		pmEvent(t, "platform.nothing", `null`),
		{Type: "platform.empty"},
		{Type: ""},
		pmEvent(t, telemetryapi.TypeExtension, `"an extension's log line"`),
	}
	if n := m.Record(events); n != len(events) {
		t.Fatalf("Record counted %d of %d", n, len(events))
	}
	for _, e := range events {
		if got := pmCounter(t, m, "aws_lambda_telemetry_events_total", map[string]string{"type": e.Type}); got != 1 {
			t.Errorf("events{type=%q} = %v, want 1", e.Type, got)
		}
	}
	if got := pmLabelSets(t, m, "aws_lambda_telemetry_undecodable_events_total"); len(got) != 0 {
		t.Errorf("unknown types counted as undecodable: %v", got)
	}
}

func TestPlatformMetricsUndecodableRecords(t *testing.T) {
	bad := map[string]string{
		telemetryapi.TypePlatformInitStart:             `{"initializationType": 1}`,
		telemetryapi.TypePlatformInitRuntimeDone:       `{"spans": "none"}`,
		telemetryapi.TypePlatformInitReport:            `{"metrics": {"durationMs": "slow"}}`,
		telemetryapi.TypePlatformStart:                 `[1]`,
		telemetryapi.TypePlatformRuntimeDone:           `{"metrics": {"producedBytes": "42"}}`,
		telemetryapi.TypePlatformRestoreStart:          `"text"`,
		telemetryapi.TypePlatformRestoreRuntimeDone:    `{"status": false}`,
		telemetryapi.TypePlatformRestoreReport:         `{"metrics": []}`,
		telemetryapi.TypePlatformExtension:             `{"name": {}}`,
		telemetryapi.TypePlatformTelemetrySubscription: `not json`,
	}
	m := newTestMetrics()
	for typ, raw := range bad {
		e := telemetryapi.Event{Type: typ, Record: json.RawMessage(raw)}
		if n := m.Record([]telemetryapi.Event{e}); n != 0 {
			t.Errorf("%s %s: counted as recorded", typ, raw)
		}
		if got := pmCounter(t, m, "aws_lambda_telemetry_undecodable_events_total", map[string]string{"type": typ}); got != 1 {
			t.Errorf("undecodable{type=%q} = %v, want 1", typ, got)
		}
	}
	if got := pmLabelSets(t, m, "aws_lambda_telemetry_events_total"); len(got) != 0 {
		t.Errorf("undecodable events counted by type: %v", got)
	}
}

func TestPlatformMetricsRuntimeDoneRecordedOncePerRequest(t *testing.T) {
	m := newTestMetrics()
	done := pmEvent(t, telemetryapi.TypePlatformRuntimeDone, map[string]any{
		"requestId": "r1", "status": "success",
		"metrics": map[string]any{"durationMs": 20, "producedBytes": 100},
		"spans":   []map[string]any{{"name": "responseLatency", "start": "2026-11-02T10:00:00.000Z", "durationMs": 19}}})
	m.Record([]telemetryapi.Event{done})
	m.Record([]telemetryapi.Event{done}) // a redelivery in another batch
	if got := pmCounter(t, m, "aws_lambda_produced_bytes_total", nil); got != 100 {
		t.Errorf("produced bytes = %v, want 100", got)
	}
	pmWantCountSum(t, m, "aws_lambda_response_latency_seconds", nil, 1, 0.019)
	// Malformed figures never panic a counter.
	m.Record([]telemetryapi.Event{pmEvent(t, telemetryapi.TypePlatformRuntimeDone, map[string]any{
		"requestId": "r2", "metrics": map[string]any{"producedBytes": -5}})})
	if got := pmCounter(t, m, "aws_lambda_produced_bytes_total", nil); got != 100 {
		t.Errorf("produced bytes = %v after a negative producedBytes, want 100", got)
	}
}

func TestRecordShutdown(t *testing.T) {
	m := newTestMetrics()
	for _, reason := range []string{"SPINDOWN", "spindown", "TIMEOUT", "FAILURE", ""} {
		m.RecordShutdown(reason)
	}
	want := map[string]float64{"spindown": 2, "timeout": 1, "failure": 1, "unknown": 1}
	for reason, n := range want {
		if got := pmCounter(t, m, "aws_lambda_shutdowns_total", map[string]string{"reason": reason}); got != n {
			t.Errorf("shutdowns{reason=%q} = %v, want %v", reason, got, n)
		}
	}
	if got := pmLabelSets(t, m, "aws_lambda_shutdowns_total"); len(got) != len(want) {
		t.Errorf("shutdown reasons = %v", got)
	}
}
