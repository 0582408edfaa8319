package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// BenchmarkRecordInvocation records what one warm invocation yields: start,
// runtimeDone, report (its requestId new each time) and a log line.
func BenchmarkRecordInvocation(b *testing.B) {
	m := newTestMetrics()
	batches := scenarioBatches(b)
	start, runtimeDone, logLine := batches[1][1], batches[1][3], batches[1][2]
	// More distinct request ids than the dedup window remembers, so every
	// report counts when the cycle comes round again.
	reports := make([][]telemetryapi.Event, 8*recentReports)
	for i := range reports {
		reports[i] = []telemetryapi.Event{start, logLine, runtimeDone, reportEvent(fmt.Sprintf("req-%d", i), "success")}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m.Record(reports[i%len(reports)]) != 4 {
			b.Fatal("an event was not recorded")
		}
	}
}

// BenchmarkDispatch measures a dispatch after one invocation: gather,
// compute deltas, encode and POST to a loopback server.
func BenchmarkDispatch(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	m := newTestMetrics()
	p := NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Record([]telemetryapi.Event{reportEvent(fmt.Sprintf("req-%d", i), "success")})
		if _, err := p.Push(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordMetrics measures the instruments alone: what one warm
// invocation records once its events are decoded (the report's counters,
// histograms and cost, the runtimeDone spans, the events by type).
func BenchmarkRecordMetrics(b *testing.B) {
	m := newTestMetrics()
	batches := scenarioBatches(b)
	rec, err := batches[1][3].DecodeRecord()
	if err != nil {
		b.Fatal(err)
	}
	done, ok := rec.(*telemetryapi.PlatformRuntimeDone)
	if !ok {
		b.Fatalf("event 3 of batch 1 is %T, want a platform.runtimeDone", rec)
	}
	report := reportEvent("req", "success")
	rec, err = report.DecodeRecord()
	if err != nil {
		b.Fatal(err)
	}
	r := rec.(*telemetryapi.PlatformReport)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.recordReport(r)
		m.platform.observeSpans(done.Spans, telemetryapi.PhaseInvoke)
		m.events.WithLabelValues(telemetryapi.TypePlatformStart).Inc()
		m.events.WithLabelValues(telemetryapi.TypeFunction).Inc()
		m.events.WithLabelValues(telemetryapi.TypePlatformRuntimeDone).Inc()
		m.events.WithLabelValues(telemetryapi.TypePlatformReport).Inc()
	}
}
