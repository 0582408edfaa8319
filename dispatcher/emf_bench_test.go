package dispatcher

import (
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// BenchmarkNonEMFLine is the cost every ordinary function log line pays:
// the "_aws" test, nothing more.
func BenchmarkNonEMFLine(b *testing.B) {
	m := newTestMetrics()
	e := emfTextEvent("2026-11-02T10:00:00.230Z\t6d68ca91-49c9-448d-89b8-7ca3e6dc66aa\tINFO\tprocessing order 1001 for customer 42, 3 items, total 99.90 EUR\n")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.custom.recordFunctionLog(&e)
	}
}

// BenchmarkNonEMFJSONLine is the same for the JSON log format.
func BenchmarkNonEMFJSONLine(b *testing.B) {
	m := newTestMetrics()
	e := emfJSONEvent(`{"timestamp":"2026-11-02T10:00:05.010Z","level":"INFO","requestId":"3da1f2dc-3222-475e-9205-e2e6c6318895","message":"processing order 1002"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.custom.recordFunctionLog(&e)
	}
}

// BenchmarkEMFLine records the aws-embedded-metrics fixture line (three
// metrics, four values) in the text log format with the Node.js prefix.
func BenchmarkEMFLine(b *testing.B) {
	m := newTestMetrics()
	e := emfTextEvent("2026-11-02T10:00:05.010Z\t3da1f2dc-3222-475e-9205-e2e6c6318895\tINFO\t" + emfFixture(b) + "\n")
	events := []telemetryapi.Event{e}
	m.Record(events)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.custom.recordFunctionLog(&e)
	}
}
