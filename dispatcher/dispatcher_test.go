package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// scenarioBatches loads the Telemetry API batches of the bundled scenario.
func scenarioBatches(t testing.TB) [][]telemetryapi.Event {
	t.Helper()
	b, err := os.ReadFile("../testdata/cold-start-four-invocations.json")
	if err != nil {
		t.Fatal(err)
	}
	var sc struct{ Batches []json.RawMessage }
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	out := make([][]telemetryapi.Event, len(sc.Batches))
	for i, raw := range sc.Batches {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func reportEvent(requestID, status string) telemetryapi.Event {
	rec, _ := json.Marshal(map[string]any{
		"requestId": requestID,
		"status":    status,
		"metrics":   map[string]any{"durationMs": 10.5, "billedDurationMs": 11, "memorySizeMB": 128, "maxMemoryUsedMB": 64},
	})
	return telemetryapi.Event{Type: telemetryapi.TypePlatformReport, Record: rec}
}

func newTestMetrics() *Metrics {
	return NewMetrics(Labels{FunctionName: "fn", FunctionVersion: "1", Region: "eu-west-1"}, Histogram)
}

func TestMetricsRecordsScenario(t *testing.T) {
	m := newTestMetrics()
	total := 0
	for _, batch := range scenarioBatches(t) {
		total += len(batch)
		if n := m.Record(batch); n != len(batch) {
			t.Fatalf("Record counted %d of %d events", n, len(batch))
		}
	}
	if got := testutil.ToFloat64(m.invocations.WithLabelValues("success")); got != 2 {
		t.Errorf("success invocations = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.coldStarts); got != 1 {
		t.Errorf("cold starts = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.logsDroppedBytes); got != 12345 {
		t.Errorf("dropped bytes = %v, want 12345", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("platform.someFutureEvent")); got != 1 {
		t.Errorf("unknown event type counted %v times, want 1", got)
	}
	if got := testutil.ToFloat64(m.memorySize); got != 512<<20 {
		t.Errorf("memory size = %v, want %v", got, 512<<20)
	}
}

func TestMetricsDropsRedeliveredReport(t *testing.T) {
	m := newTestMetrics()
	if n := m.Record([]telemetryapi.Event{reportEvent("a", "success")}); n != 1 {
		t.Fatalf("first report counted %d", n)
	}
	// The same report again, alone and inside a later batch.
	if n := m.Record([]telemetryapi.Event{reportEvent("a", "success")}); n != 0 {
		t.Fatalf("redelivered report counted %d", n)
	}
	m.Record([]telemetryapi.Event{reportEvent("b", "error"), reportEvent("a", "success")})
	if got := testutil.ToFloat64(m.invocations.WithLabelValues("success")); got != 1 {
		t.Fatalf("success invocations = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("unknown")); got != 1 {
		t.Fatalf("errors without errorType = %v, want 1 under error_type=unknown", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues(telemetryapi.TypePlatformReport)); got != 2 {
		t.Fatalf("report events = %v, want 2", got)
	}
}

func TestMetricsForgetsOldReportsWithinBound(t *testing.T) {
	m := newTestMetrics()
	for i := 0; i < recentReports*3; i++ {
		m.Record([]telemetryapi.Event{reportEvent(fmt.Sprintf("req-%d", i), "success")})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) != recentReports {
		t.Fatalf("remembered %d request ids, want the bound %d", len(m.seen), recentReports)
	}
}

func TestMetricsCountsUndecodableRecords(t *testing.T) {
	m := newTestMetrics()
	n := m.Record([]telemetryapi.Event{{Type: telemetryapi.TypePlatformReport, Record: json.RawMessage(`"not an object"`)}})
	if n != 0 {
		t.Fatalf("an undecodable report was counted as recorded")
	}
	if got := testutil.ToFloat64(m.undecodable.WithLabelValues(telemetryapi.TypePlatformReport)); got != 1 {
		t.Fatalf("undecodable = %v, want 1", got)
	}
}

func TestDispatcherPushesAtInvokeOnlyAfterMinBatch(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), MinBatchSize: 3})
	ctx := context.Background()

	d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("r1", "success"), {Type: "platform.start", Record: json.RawMessage(`{}`)}})
	d.Invoke(ctx, "r2")
	if gw.count() != 0 {
		t.Fatal("pushed with 2 events pending and a minimum batch of 3")
	}
	d.HandleEvents(ctx, []telemetryapi.Event{{Type: "platform.runtimeDone", Record: json.RawMessage(`{}`)}})
	d.Invoke(ctx, "r3")
	if gw.count() != 1 {
		t.Fatalf("pushes = %d, want 1 once 3 events were pending", gw.count())
	}
	if d.Pending() != 0 {
		t.Fatalf("pending = %d after a successful push", d.Pending())
	}
	if got := gw.last(t)["aws_lambda_invocations_total"].Metric[0].GetCounter().GetValue(); got != 1 {
		t.Fatalf("pushed invocations = %v, want 1", got)
	}
}

func TestDispatcherShutdownWaitsForLastReport(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), ReportWait: time.Minute})
	ctx := context.Background()
	d.Invoke(ctx, "last")

	go func() {
		time.Sleep(20 * time.Millisecond)
		d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("last", "timeout")})
	}()
	if !d.Shutdown(ctx, time.Now().Add(10*time.Second), true) {
		t.Fatal("shutdown push failed")
	}
	if got := gw.last(t)["aws_lambda_invocations_total"].Metric[0]; labelValue(got, "status") != "timeout" || got.GetCounter().GetValue() != 1 {
		t.Fatalf("shutdown pushed %v, want the last report's timeout", got)
	}
}

func TestDispatcherShutdownWaitIsBounded(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), ReportWait: time.Hour})
	ctx := context.Background()
	d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("earlier", "success")})
	d.Invoke(ctx, "never-reported")

	deadline := time.Now().Add(400 * time.Millisecond)
	done := make(chan bool)
	go func() { done <- d.Shutdown(ctx, deadline, true) }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("shutdown push failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown kept waiting for a report that never came, past its deadline")
	}
	if gw.count() != 1 {
		t.Fatalf("pushes = %d, want the final flush", gw.count())
	}
}

// The report wait must end only after the whole batch carrying the report is
// recorded, or the SHUTDOWN push misses what follows the report in it.
func TestReportArrivedAfterWholeBatch(t *testing.T) {
	m := newTestMetrics()
	arrived := m.ReportArrived("last")
	dropped := telemetryapi.Event{Type: telemetryapi.TypePlatformLogsDropped, Record: json.RawMessage(`{"droppedBytes":10,"droppedRecords":1,"reason":"slow"}`)}
	checked := make(chan float64, 1)
	go func() {
		<-arrived
		checked <- testutil.ToFloat64(m.logsDroppedRecords)
	}()
	m.Record([]telemetryapi.Event{reportEvent("last", "success"), dropped})
	if got := <-checked; got != 1 {
		t.Fatalf("when the report wait ended, dropped records = %v; the rest of the batch was not recorded yet", got)
	}
}

// The SHUTDOWN wait may begin while the listener is still recording the batch
// that carries the awaited report: the report is known (deduplicated) but
// the batch is not finished, and the wait must go on until it is.
func TestReportArrivedWhileItsBatchIsBeingRecorded(t *testing.T) {
	m := newTestMetrics()
	if !m.firstReport("last") { // the listener's goroutine, mid-batch
		t.Fatal("first report not new")
	}
	arrived := m.ReportArrived("last") // the event loop, at SHUTDOWN
	select {
	case <-arrived:
		t.Fatal("the wait ended before the report's batch was recorded")
	default:
	}
	m.markRecorded([]string{"last"}) // the listener finishes the batch
	select {
	case <-arrived:
	default:
		t.Fatal("the wait did not end once the batch was recorded")
	}
	select {
	case <-m.ReportArrived("last"):
	default:
		t.Fatal("waiting for an already recorded report must end at once")
	}
}
