package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

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
	if got := toFloat64(m.invocations.WithLabelValues("success")); got != 2 {
		t.Errorf("success invocations = %v, want 2", got)
	}
	if got := toFloat64(m.coldStarts); got != 1 {
		t.Errorf("cold starts = %v, want 1", got)
	}
	if got := toFloat64(m.logsDroppedBytes); got != 12345 {
		t.Errorf("dropped bytes = %v, want 12345", got)
	}
	if got := toFloat64(m.events.WithLabelValues("platform.someFutureEvent")); got != 1 {
		t.Errorf("unknown event type counted %v times, want 1", got)
	}
	if got := toFloat64(m.memorySize); got != 512<<20 {
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
	if got := toFloat64(m.invocations.WithLabelValues("success")); got != 1 {
		t.Fatalf("success invocations = %v, want 1", got)
	}
	if got := toFloat64(m.errors.WithLabelValues("unknown")); got != 1 {
		t.Fatalf("errors without errorType = %v, want 1 under error_type=unknown", got)
	}
	if got := toFloat64(m.events.WithLabelValues(telemetryapi.TypePlatformReport)); got != 2 {
		t.Fatalf("report events = %v, want 2", got)
	}
}

func TestMetricsForgetsOldReportsWithinBound(t *testing.T) {
	m := newTestMetrics()
	for i := 0; i < recentReports*3; i++ {
		m.Record([]telemetryapi.Event{reportEvent(fmt.Sprintf("req-%d", i), "success")})
	}
	if got := m.reports.len(); got != recentReports {
		t.Fatalf("remembered %d request ids, want the bound %d", got, recentReports)
	}
}

func TestMetricsCountsUndecodableRecords(t *testing.T) {
	m := newTestMetrics()
	n := m.Record([]telemetryapi.Event{{Type: telemetryapi.TypePlatformReport, Record: json.RawMessage(`"not an object"`)}})
	if n != 0 {
		t.Fatalf("an undecodable report was counted as recorded")
	}
	if got := toFloat64(m.undecodable.WithLabelValues(telemetryapi.TypePlatformReport)); got != 1 {
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
		checked <- toFloat64(m.logsDroppedRecords)
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

// conflictGateway answers 400, as the gateway does to a push carrying a
// family another job stores with another type, to every push carrying
// orders_placed_total, and passes the others on.
type conflictGateway struct{ next http.Handler }

func (g conflictGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	if bytes.Contains(raw, []byte("orders_placed_total")) {
		http.Error(w, "orders_placed_total: type counter, but job other stores it as gauge", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	g.next.ServeHTTP(w, r)
}

// A custom metric the gateway rejects is dropped with its batches; the
// platform metrics, in pushes of their own, all arrive, and the custom
// lane's drops neither back off nor delay the platform's pushes.
func TestDispatcherCustomRejectionSparesPlatformMetrics(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(conflictGateway{gw})
	defer srv.Close()
	m := newTestMetrics()
	platform := NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil)
	custom := NewPusher(srv.URL, "fn", m.CustomGatherer(), nil, nil)
	d := New(Config{Metrics: m, Pusher: platform, CustomPusher: custom, MinBatchSize: 1, ReportWait: time.Minute})
	ctx := context.Background()
	line := emfTextEvent(emfFixture(t) + "\n")

	const n = 5
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		d.Invoke(ctx, id)
		d.HandleEvents(ctx, []telemetryapi.Event{line, reportEvent(id, "success")})
	}
	if d.Shutdown(ctx, time.Now().Add(10*time.Second), true) {
		t.Error("shutdown reported success although the last custom batch was rejected")
	}
	if got := gw.sum("aws_lambda_invocations_total"); got != n {
		t.Errorf("the gateway got %v invocations, want all %d", got, n)
	}
	if got := gw.sum("aws_lambda_emf_invalid_total") + gw.sum("aws_lambda_telemetry_events_total"); got == 0 {
		t.Error("the platform pushes lack the EMF diagnostics and event counts")
	}
	if gw.sum("orders_placed_total") != 0 {
		t.Error("a push carrying the conflicting family was applied")
	}
	ps, cs := platform.Stats(), custom.Stats()
	if ps.Dropped != 0 || ps.Failures != 0 || ps.Acknowledged != n {
		t.Errorf("platform pusher %+v, want %d acknowledged batches and no drop", ps, n)
	}
	if cs.Dropped != n || cs.Failures != 0 || cs.Acknowledged != 0 {
		t.Errorf("custom pusher %+v, want its %d batches dropped", cs, n)
	}
	for _, l := range d.lanes {
		if l.failures != 0 || !l.retryAt.IsZero() || l.pending.Load() != 0 {
			t.Errorf("%s lane: failures %d, retryAt %v, pending %d; a dropped batch is no failure to back off from",
				l.name, l.failures, l.retryAt, l.pending.Load())
		}
	}
	if _, _, _, ok := custom.InFlight(); ok {
		t.Error("a rejected custom batch is still in flight")
	}
}

// A hanging push of the custom metrics cannot starve the platform's: the
// platform metrics go first and get the whole budget; a custom failure
// backs off the custom lane only.
func TestDispatcherCustomFailureBacksOffCustomOnly(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	down := &recordingGateway{fail: true} // 500
	downSrv := httptest.NewServer(down)
	defer downSrv.Close()
	m := newTestMetrics()
	platform := NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil)
	custom := NewPusher(downSrv.URL, "fn", m.CustomGatherer(), nil, nil)
	d := New(Config{Metrics: m, Pusher: platform, CustomPusher: custom, MinBatchSize: 1,
		PushTimeout: 200 * time.Millisecond, RetryBackoff: time.Hour})
	ctx := context.Background()
	line := emfTextEvent(emfFixture(t) + "\n")
	for i := range 3 {
		id := fmt.Sprintf("r%d", i)
		d.HandleEvents(ctx, []telemetryapi.Event{line, reportEvent(id, "success")})
		d.Invoke(ctx, id)
	}
	if got := gw.sum("aws_lambda_invocations_total"); got != 3 {
		t.Errorf("platform invocations pushed = %v, want 3: a custom failure delayed them", got)
	}
	if d.Pending() != 0 || d.lanes[0].failures != 0 {
		t.Errorf("platform lane pending %d, failures %d", d.Pending(), d.lanes[0].failures)
	}
	if d.lanes[1].failures != 1 || d.lanes[1].retryAt.IsZero() {
		t.Errorf("custom lane failures %d, retryAt %v; want one failed dispatch and a backoff", d.lanes[1].failures, d.lanes[1].retryAt)
	}
	if _, _, _, ok := custom.InFlight(); !ok {
		t.Error("the failed custom batch is not kept in flight")
	}
}
