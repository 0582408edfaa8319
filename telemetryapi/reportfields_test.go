package telemetryapi

import (
	"encoding/json"
	"testing"
)

func TestReportMetricsMissingFields(t *testing.T) {
	// A Lambda Managed Instances report: durationMs only.
	e := Event{Type: TypePlatformReport, Record: json.RawMessage(`{"requestId":"r1","status":"success","metrics":{"durationMs":12.5}}`)}
	rec, err := e.DecodeRecord()
	if err != nil {
		t.Fatal(err)
	}
	m := rec.(*PlatformReport).Metrics
	if m.DurationMs != 12.5 || m.HasBilledDuration() || m.HasMemorySize() || m.HasMaxMemoryUsed() {
		t.Errorf("managed-instances report: %+v, has billed %v memory %v maxMemory %v", m, m.HasBilledDuration(), m.HasMemorySize(), m.HasMaxMemoryUsed())
	}

	// An on-demand report, zeros included, counts every figure as present.
	e.Record = json.RawMessage(`{"requestId":"r2","status":"success","metrics":{"durationMs":0.5,"billedDurationMs":1,"memorySizeMB":128,"maxMemoryUsedMB":0,"initDurationMs":3}}`)
	rec, err = e.DecodeRecord()
	if err != nil {
		t.Fatal(err)
	}
	m = rec.(*PlatformReport).Metrics
	if m.Missing != 0 || !m.HasBilledDuration() || !m.HasMemorySize() || !m.HasMaxMemoryUsed() || m.BilledDurationMs != 1 || m.MemorySizeMB != 128 || m.InitDurationMs == nil || *m.InitDurationMs != 3 {
		t.Errorf("on-demand report: %+v", m)
	}

	// null is absent.
	e.Record = json.RawMessage(`{"requestId":"r3","metrics":{"durationMs":1,"billedDurationMs":null,"memorySizeMB":256,"maxMemoryUsedMB":null}}`)
	rec, err = e.DecodeRecord()
	if err != nil {
		t.Fatal(err)
	}
	m = rec.(*PlatformReport).Metrics
	if m.Missing != FieldBilledDuration|FieldMaxMemoryUsed {
		t.Errorf("nulls: Missing = %b", m.Missing)
	}

	// Built in code: everything present.
	if lit := (ReportMetrics{DurationMs: 1}); !lit.HasBilledDuration() || !lit.HasMemorySize() || !lit.HasMaxMemoryUsed() {
		t.Error("a ReportMetrics literal should count its fields as present")
	}
}
