package dispatcher

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// managedReport is a Lambda Managed Instances platform.report: durationMs only.
func managedReport(requestID string, durationMs float64) telemetryapi.Event {
	rec, _ := json.Marshal(map[string]any{
		"requestId": requestID,
		"status":    "success",
		"metrics":   map[string]any{"durationMs": durationMs},
	})
	return telemetryapi.Event{Type: telemetryapi.TypePlatformReport, Record: rec}
}

func TestMetricsManagedInstancesReportSkipsAbsentFigures(t *testing.T) {
	m := newTestMetrics()
	m.SetMemorySizeMB(2048)
	m.Record([]telemetryapi.Event{managedReport("a", 100), managedReport("b", 300)})
	if got := toFloat64(m.invocations.WithLabelValues("success")); got != 2 {
		t.Errorf("invocations = %v, want 2", got)
	}
	if got := toFloat64(m.memorySize); got != 2048*bytesPerMB {
		t.Errorf("memory size = %v, want the configured 2048 MB kept", got)
	}
	count := func(name string) (uint64, float64) {
		mfs, err := gatherDTO(m.Gatherer())
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				h := mf.Metric[0].GetHistogram()
				return h.GetSampleCount(), h.GetSampleSum()
			}
		}
		t.Fatalf("no family %s", name)
		return 0, 0
	}
	if n, sum := count("aws_lambda_duration_seconds"); n != 2 || sum != 0.4 {
		t.Errorf("duration: count %d sum %v, want 2 and 0.4", n, sum)
	}
	for _, name := range []string{"aws_lambda_billed_duration_seconds", "aws_lambda_max_memory_used_bytes"} {
		if n, _ := count(name); n != 0 {
			t.Errorf("%s observed %d times from reports without it", name, n)
		}
	}
	if got := toFloat64(m.platform.cost.gbSeconds); got != 0 {
		t.Errorf("GB-seconds = %v, want 0 without billed duration and memory", got)
	}
	if got, want := toFloat64(m.platform.cost.usd), 2*m.Prices().PerRequest; got != want {
		t.Errorf("cost = %v, want the two requests' %v", got, want)
	}
}

func TestDispatcherRunPushesOnTimer(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), MinBatchSize: 1000})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.Run(ctx, 20*time.Millisecond) }()

	time.Sleep(60 * time.Millisecond)
	if gw.count() != 0 {
		t.Fatal("pushed with nothing pending")
	}
	d.HandleEvents(ctx, []telemetryapi.Event{managedReport("a", 10)})
	waitFor(t, func() bool { return gw.count() == 1 && d.Pending() == 0 })
	cancel()
	wg.Wait()

	d.HandleEvents(context.Background(), []telemetryapi.Event{managedReport("b", 10)})
	if !d.ShutdownQuiet(context.Background(), time.Now().Add(2*time.Second), true) {
		t.Fatal("shutdown push failed")
	}
	if got := gw.last(t)["aws_lambda_invocations_total"].Metric[0].GetCounter().GetValue(); got != 1 {
		t.Fatalf("shutdown pushed an increment of %v invocations, want 1", got)
	}
}

func TestDispatcherRunPushesOnBatchSize(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), MinBatchSize: 2})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.Run(ctx, time.Hour) }()
	defer func() { cancel(); wg.Wait() }()

	d.HandleEvents(ctx, []telemetryapi.Event{managedReport("a", 10)})
	time.Sleep(50 * time.Millisecond)
	if gw.count() != 0 {
		t.Fatal("pushed below the batch size, before the interval")
	}
	d.HandleEvents(ctx, []telemetryapi.Event{managedReport("b", 10)})
	waitFor(t, func() bool { return gw.count() == 1 })
}

func TestDispatcherShutdownQuietWaitsForLateBatch(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), ReportWait: time.Second})
	go func() {
		time.Sleep(30 * time.Millisecond) // within the quiet period after SHUTDOWN
		d.HandleEvents(context.Background(), []telemetryapi.Event{managedReport("late", 10)})
	}()
	start := time.Now()
	if !d.ShutdownQuiet(context.Background(), time.Now().Add(2*time.Second), true) {
		t.Fatal("shutdown push failed")
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("shutdown took %v, want about 130 ms", took)
	}
	if gw.count() != 1 || gw.last(t)["aws_lambda_invocations_total"].Metric[0].GetCounter().GetValue() != 1 {
		t.Fatal("the batch that came during the quiet wait missed the final push")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
