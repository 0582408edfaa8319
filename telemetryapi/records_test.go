package telemetryapi

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(v float64) *float64 { return &v }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

var fixtureTrace = &TraceContext{
	SpanID: "54565fb41ac79632",
	Type:   "X-Amzn-Trace-Id",
	Value:  "Root=1-6720c2b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1",
}

// wantFixtureRecords is every record of the fixture, in order, decoded.
var wantFixtureRecords = []any{
	// batch 0
	&PlatformInitStart{
		InitializationType: InitOnDemand, Phase: PhaseInit,
		RuntimeVersion:    "provided:al2023.v40",
		RuntimeVersionArn: "arn:aws:lambda:eu-west-1::runtime:0a7e1c9c2b0a3d3e1f6a2f0b9d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
		FunctionName:      "orders-api", FunctionVersion: "$LATEST",
		InstanceID: "82561ce0-53dd-47d1-90e0-c8f5e063e62e", InstanceMaxMemory: 512,
	},
	&PlatformTelemetrySubscription{Name: "prometheus-telemetry-extension", State: "Subscribed", Types: []string{"platform", "function"}},
	&PlatformExtension{Name: "prometheus-telemetry-extension", State: "Ready", Events: []string{"INVOKE", "SHUTDOWN"}},
	&PlatformInitRuntimeDone{
		InitializationType: InitOnDemand, Phase: PhaseInit, Status: StatusSuccess,
		Spans: []Span{{Name: SpanRuntimeOverhead, Start: at("2026-11-02T10:00:00.013Z"), DurationMs: 176.2}},
	},
	&PlatformInitReport{InitializationType: InitOnDemand, Phase: PhaseInit, Status: StatusSuccess, Metrics: InitReportMetrics{DurationMs: 178.43}},
	&PlatformStart{RequestID: "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa", Version: "$LATEST", Tracing: fixtureTrace},
	&LogRecord{Text: "2026-11-02T10:00:00.230Z\t6d68ca91-49c9-448d-89b8-7ca3e6dc66aa\tINFO\tprocessing order 1001\n"},
	&PlatformRuntimeDone{
		RequestID: "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa", Status: StatusSuccess, Tracing: fixtureTrace,
		Spans: []Span{
			{Name: SpanResponseLatency, Start: at("2026-11-02T10:00:00.192Z"), DurationMs: 119.5},
			{Name: SpanResponseDuration, Start: at("2026-11-02T10:00:00.311Z"), DurationMs: 0.3},
		},
		Metrics: RuntimeDoneMetrics{DurationMs: 120.1, ProducedBytes: 42},
	},
	// batch 1
	&PlatformReport{
		RequestID: "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa", Status: StatusSuccess,
		Metrics: ReportMetrics{DurationMs: 120.55, BilledDurationMs: 121, MemorySizeMB: 512, MaxMemoryUsedMB: 88, InitDurationMs: ms(178.43)},
		Tracing: fixtureTrace,
		Spans: []Span{
			{Name: SpanResponseLatency, Start: at("2026-11-02T10:00:00.192Z"), DurationMs: 119.5},
			{Name: SpanResponseDuration, Start: at("2026-11-02T10:00:00.311Z"), DurationMs: 0.3},
		},
	},
	&PlatformStart{RequestID: "3da1f2dc-3222-475e-9205-e2e6c6318895", Version: "$LATEST"},
	&LogRecord{
		Object:    json.RawMessage(`{"timestamp": "2026-11-02T10:00:05.010Z", "level": "INFO", "requestId": "3da1f2dc-3222-475e-9205-e2e6c6318895", "message": "processing order 1002"}`),
		Timestamp: at("2026-11-02T10:00:05.010Z"), Level: "INFO", RequestID: "3da1f2dc-3222-475e-9205-e2e6c6318895", Message: "processing order 1002",
	},
	&PlatformRuntimeDone{RequestID: "3da1f2dc-3222-475e-9205-e2e6c6318895", Status: StatusSuccess, Metrics: RuntimeDoneMetrics{DurationMs: 45.7, ProducedBytes: 42}},
	// batch 2
	&PlatformReport{RequestID: "3da1f2dc-3222-475e-9205-e2e6c6318895", Status: StatusSuccess,
		Metrics: ReportMetrics{DurationMs: 45.92, BilledDurationMs: 46, MemorySizeMB: 512, MaxMemoryUsedMB: 91}},
	&PlatformStart{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", Version: "$LATEST"},
	&LogRecord{Text: "2026-11-02T10:00:09.211Z\t8476a536-e9f4-11e8-9739-2dfe598c3fcd\tERROR\tInvoke Error \t{\"errorType\":\"Error\",\"errorMessage\":\"payment service unavailable\"}\n"},
	&PlatformRuntimeDone{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", Status: StatusError, ErrorType: "Runtime.ExitError", Metrics: RuntimeDoneMetrics{DurationMs: 211.9}},
	// batch 3
	&PlatformReport{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", Status: StatusError, ErrorType: "Runtime.ExitError",
		Metrics: ReportMetrics{DurationMs: 212.33, BilledDurationMs: 213, MemorySizeMB: 512, MaxMemoryUsedMB: 97}},
	&PlatformStart{RequestID: "c31e2f14-5d0e-4b2a-9a1a-53d0b3a2f2e1", Version: "$LATEST"},
	&PlatformRuntimeDone{RequestID: "c31e2f14-5d0e-4b2a-9a1a-53d0b3a2f2e1", Status: StatusTimeout, ErrorType: "Sandbox.Timedout", Metrics: RuntimeDoneMetrics{DurationMs: 3000}},
	// batch 4
	&PlatformReport{RequestID: "c31e2f14-5d0e-4b2a-9a1a-53d0b3a2f2e1", Status: StatusTimeout, ErrorType: "Sandbox.Timedout",
		Metrics: ReportMetrics{DurationMs: 3000.77, BilledDurationMs: 3000, MemorySizeMB: 512, MaxMemoryUsedMB: 97}},
	&PlatformLogsDropped{DroppedBytes: 12345, DroppedRecords: 12, Reason: "Some logs were dropped because the downstream consumer is slower than the logs production rate"},
	&UnknownRecord{Type: "platform.someFutureEvent", Raw: json.RawMessage(`{"anything": {"nested": [1, 2, 3]}}`)},
}

func TestDecodeFixtureRecords(t *testing.T) {
	events := fixtureEvents(t)
	if len(events) != len(wantFixtureRecords) {
		t.Fatalf("fixture has %d events, test expects %d", len(events), len(wantFixtureRecords))
	}
	for i, e := range events {
		got, err := e.DecodeRecord()
		if err != nil {
			t.Errorf("event %d (%s): %v", i, e.Type, err)
			continue
		}
		want := wantFixtureRecords[i]
		// The fixture is indented: compare raw JSON fields compacted.
		switch g := got.(type) {
		case *LogRecord:
			g.Object = compact(t, g.Object)
		case *UnknownRecord:
			g.Raw = compact(t, g.Raw)
		}
		switch w := want.(type) {
		case *LogRecord:
			w.Object = compact(t, w.Object)
		case *UnknownRecord:
			w.Raw = compact(t, w.Raw)
		}
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("event %d (%s) = %T %s\nwant %T %s", i, e.Type, got, gj, want, wj)
		}
	}
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The figures of the fixture's .expected.json follow from the decoded
// reports and logsDropped records.
func TestFixtureFiguresFromRecords(t *testing.T) {
	data, err := os.ReadFile("../testdata/cold-start-four-invocations.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		ColdStarts          int                `json:"cold_starts"`
		DurationMsSum       float64            `json:"duration_ms_sum"`
		BilledDurationMsSum float64            `json:"billed_duration_ms_sum"`
		MaxMemoryUsedMB     []float64          `json:"max_memory_used_mb"`
		InitDurationMs      []float64          `json:"init_duration_ms"`
		LogsDroppedRecords  int64              `json:"logs_dropped_records"`
		LogsDroppedBytes    int64              `json:"logs_dropped_bytes"`
		ByStatus            map[string]float64 `json:"invocations_by_status"`
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	var (
		coldStarts              int
		duration, billed        float64
		maxMem, initDur         []float64
		droppedRecs, droppedByt int64
		byStatus                = map[string]float64{}
	)
	for _, e := range fixtureEvents(t) {
		rec, err := e.DecodeRecord()
		if err != nil {
			t.Fatal(err)
		}
		switch r := rec.(type) {
		case *PlatformReport:
			duration += r.Metrics.DurationMs
			billed += r.Metrics.BilledDurationMs
			maxMem = append(maxMem, r.Metrics.MaxMemoryUsedMB)
			byStatus[r.Status]++
			if r.Metrics.InitDurationMs != nil {
				coldStarts++
				initDur = append(initDur, *r.Metrics.InitDurationMs)
			}
		case *PlatformLogsDropped:
			droppedRecs += r.DroppedRecords
			droppedByt += r.DroppedBytes
		}
	}
	if coldStarts != want.ColdStarts || math.Abs(duration-want.DurationMsSum) > 1e-9 || billed != want.BilledDurationMsSum ||
		!reflect.DeepEqual(maxMem, want.MaxMemoryUsedMB) || !reflect.DeepEqual(initDur, want.InitDurationMs) ||
		droppedRecs != want.LogsDroppedRecords || droppedByt != want.LogsDroppedBytes || !reflect.DeepEqual(byStatus, want.ByStatus) {
		t.Errorf("derived cold=%d dur=%v billed=%v mem=%v init=%v dropped=%d/%d status=%v\nwant %+v",
			coldStarts, duration, billed, maxMem, initDur, droppedRecs, droppedByt, byStatus, want)
	}
}

func decode(t *testing.T, typ, record string) any {
	t.Helper()
	rec, err := Event{Type: typ, Record: json.RawMessage(record)}.DecodeRecord()
	if err != nil {
		t.Fatalf("%s %s: %v", typ, record, err)
	}
	return rec
}

func TestDecodeReportLenient(t *testing.T) {
	got := decode(t, TypePlatformReport, `{
		"requestId": "r1",
		"status": "throttled",
		"metrics": {"durationMs": 10.5, "billedDurationMs": 11.0, "memorySizeMB": 1024, "maxMemoryUsedMB": 70,
			"restoreDurationMs": 312.5, "somethingNew": 1},
		"spans": [
			{"name": "responseLatency", "start": "2022-08-02T12:01:23:521Z", "durationMs": 2.5},
			{"name": "responseDuration", "start": "not a time", "durationMs": 0.1},
			{"name": "runtimeOverhead", "start": "2022-08-02T12:01:24Z", "durationMs": 0.2}
		],
		"newField": {"x": 1}
	}`).(*PlatformReport)
	want := &PlatformReport{
		RequestID: "r1", Status: "throttled",
		Metrics: ReportMetrics{DurationMs: 10.5, BilledDurationMs: 11, MemorySizeMB: 1024, MaxMemoryUsedMB: 70, RestoreDurationMs: ms(312.5)},
		Spans: []Span{
			{Name: SpanResponseLatency, Start: time.Date(2022, 8, 2, 12, 1, 23, 521e6, time.UTC), DurationMs: 2.5},
			{Name: SpanResponseDuration, DurationMs: 0.1},
			{Name: SpanRuntimeOverhead, Start: time.Date(2022, 8, 2, 12, 1, 24, 0, time.UTC), DurationMs: 0.2},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report = %+v\nwant %+v", got, want)
	}
}

func TestDecodeReportManagedInstances(t *testing.T) {
	got := decode(t, TypePlatformReport, `{"requestId":"r2","status":"success","metrics":{"durationMs":7.25}}`).(*PlatformReport)
	if got.Metrics.DurationMs != 7.25 || got.Metrics.BilledDurationMs != 0 || got.Metrics.InitDurationMs != nil || got.Tracing != nil {
		t.Errorf("report = %+v", got)
	}
}

func TestDecodeRestoreRecords(t *testing.T) {
	start := decode(t, TypePlatformRestoreStart, `{"runtimeVersion":"java:21.v20","runtimeVersionArn":"arn:x","functionName":"f","functionVersion":"3","instanceId":"i","instanceMaxMemory":2048}`)
	if want := (&PlatformRestoreStart{RuntimeVersion: "java:21.v20", RuntimeVersionArn: "arn:x", FunctionName: "f", FunctionVersion: "3", InstanceID: "i", InstanceMaxMemory: 2048}); !reflect.DeepEqual(start, want) {
		t.Errorf("restoreStart = %+v", start)
	}
	done := decode(t, TypePlatformRestoreRuntimeDone, `{"status":"failure","errorType":"Runtime.RestoreHookFailed","spans":[{"name":"runtimeOverhead","start":"2022-08-02T12:01:23.521Z","durationMs":3}]}`)
	if d := done.(*PlatformRestoreRuntimeDone); d.Status != StatusFailure || d.ErrorType != "Runtime.RestoreHookFailed" || len(d.Spans) != 1 || d.Spans[0].Start.Nanosecond() != 521e6 {
		t.Errorf("restoreRuntimeDone = %+v", d)
	}
	report := decode(t, TypePlatformRestoreReport, `{"status":"success","metrics":{"durationMs":410.2}}`)
	if r := report.(*PlatformRestoreReport); r.Status != StatusSuccess || r.Metrics.DurationMs != 410.2 {
		t.Errorf("restoreReport = %+v", r)
	}
}

func TestDecodeInitStartOpenEnums(t *testing.T) {
	got := decode(t, TypePlatformInitStart, `{"initializationType":"some-new-mode","phase":"invoke","functionName":"f","functionVersion":"1","runtimeVersion":"r"}`).(*PlatformInitStart)
	if got.InitializationType != "some-new-mode" || got.Phase != PhaseInvoke || got.InstanceMaxMemory != 0 {
		t.Errorf("initStart = %+v", got)
	}
}

func TestDecodeJSONLogWithObjectMessage(t *testing.T) {
	got := decode(t, TypeExtension, `{"timestamp":"2026-11-02T10:00:05Z","level":"WARN","message":{"msg":"slow","ms":12}}`).(*LogRecord)
	if !got.IsJSON() || got.Level != "WARN" || got.Message != `{"msg":"slow","ms":12}` || got.RequestID != "" || got.Text != "" ||
		!got.Timestamp.Equal(time.Date(2026, 11, 2, 10, 0, 5, 0, time.UTC)) {
		t.Errorf("log record = %+v", got)
	}
	text := decode(t, TypeFunction, `"plain line"`).(*LogRecord)
	if text.IsJSON() || text.Text != "plain line" {
		t.Errorf("text record = %+v", text)
	}
}

func TestDecodeUnknownType(t *testing.T) {
	got := decode(t, "platform.brandNew", `{"a":1}`)
	u, ok := got.(*UnknownRecord)
	if !ok || u.Type != "platform.brandNew" || string(u.Raw) != `{"a":1}` {
		t.Errorf("DecodeRecord = %#v, want *UnknownRecord", got)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	for _, tc := range []struct{ typ, record string }{
		{TypePlatformReport, `{"requestId":"r","metrics":{"durationMs":"12"}}`},
		{TypePlatformLogsDropped, `{"droppedBytes":"many"}`},
		{TypeFunction, `42`},
		{TypeFunction, `{"message":`},
		{TypePlatformStart, `[`},
	} {
		_, err := Event{Type: tc.typ, Record: json.RawMessage(tc.record)}.DecodeRecord()
		if err == nil {
			t.Errorf("%s %s: no error", tc.typ, tc.record)
		} else if !strings.Contains(err.Error(), tc.typ) {
			t.Errorf("error %q does not name the type %s", err, tc.typ)
		}
	}
}

func TestParseTimeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{`"2026-11-02T10:00:00.012Z"`, time.Date(2026, 11, 2, 10, 0, 0, 12e6, time.UTC)},
		{`"2026-11-02T10:00:00Z"`, time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)},
		{`"2026-11-02T12:00:00.5+02:00"`, time.Date(2026, 11, 2, 10, 0, 0, 5e8, time.UTC)},
		{`"2022-08-02T12:01:23:521Z"`, time.Date(2022, 8, 2, 12, 1, 23, 521e6, time.UTC)},
		{`"2022-08-02 12:01:23.521Z"`, time.Date(2022, 8, 2, 12, 1, 23, 521e6, time.UTC)},
		{`"2022-08-02T12:01:23.521"`, time.Date(2022, 8, 2, 12, 1, 23, 521e6, time.UTC)},
		{`"garbage"`, time.Time{}},
		{`""`, time.Time{}},
		{`null`, time.Time{}},
		{`1793613600312`, time.Time{}},
	} {
		if got := parseTimeJSON([]byte(tc.in)); !got.Equal(tc.want) {
			t.Errorf("parseTimeJSON(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestEventUnmarshalJSON(t *testing.T) {
	var events []Event
	if err := json.Unmarshal([]byte(`[{"time":"12:01:23:521","type":"platform.x","record":{"k":"v"}},{"time":"2026-11-02T10:00:00Z","type":"func\u0074ion","record":"x"}]`), &events); err != nil {
		t.Fatal(err)
	}
	if !events[0].Time.IsZero() || events[0].Type != "platform.x" || string(events[0].Record) != `{"k":"v"}` {
		t.Errorf("event 0 = %+v", events[0])
	}
	if events[1].Type != TypeFunction || events[1].Time.IsZero() {
		t.Errorf("event 1 = %+v", events[1])
	}
}
