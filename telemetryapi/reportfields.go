package telemetryapi

import "encoding/json"

// ReportFields is a set of the optional figures of a platform.report's
// metrics, for ReportMetrics.Missing.
type ReportFields uint8

// The figures of ReportMetrics whose absence is recorded.
const (
	FieldBilledDuration ReportFields = 1 << iota // billedDurationMs
	FieldMemorySize                              // memorySizeMB
	FieldMaxMemoryUsed                           // maxMemoryUsedMB
)

// HasBilledDuration reports whether BilledDurationMs was sent.
func (m *ReportMetrics) HasBilledDuration() bool { return m.Missing&FieldBilledDuration == 0 }

// HasMemorySize reports whether MemorySizeMB was sent.
func (m *ReportMetrics) HasMemorySize() bool { return m.Missing&FieldMemorySize == 0 }

// HasMaxMemoryUsed reports whether MaxMemoryUsedMB was sent.
func (m *ReportMetrics) HasMaxMemoryUsed() bool { return m.Missing&FieldMaxMemoryUsed == 0 }

// UnmarshalJSON decodes the metrics object of a platform.report and flags,
// in Missing, the figures it leaves out or sets to null (a Lambda Managed
// Instances report carries only durationMs).
func (m *ReportMetrics) UnmarshalJSON(b []byte) error {
	var w struct {
		DurationMs        float64  `json:"durationMs"`
		BilledDurationMs  *float64 `json:"billedDurationMs"`
		MemorySizeMB      *float64 `json:"memorySizeMB"`
		MaxMemoryUsedMB   *float64 `json:"maxMemoryUsedMB"`
		InitDurationMs    *float64 `json:"initDurationMs"`
		RestoreDurationMs *float64 `json:"restoreDurationMs"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = ReportMetrics{
		DurationMs:        w.DurationMs,
		InitDurationMs:    w.InitDurationMs,
		RestoreDurationMs: w.RestoreDurationMs,
	}
	if w.BilledDurationMs != nil {
		m.BilledDurationMs = *w.BilledDurationMs
	} else {
		m.Missing |= FieldBilledDuration
	}
	if w.MemorySizeMB != nil {
		m.MemorySizeMB = *w.MemorySizeMB
	} else {
		m.Missing |= FieldMemorySize
	}
	if w.MaxMemoryUsedMB != nil {
		m.MaxMemoryUsedMB = *w.MaxMemoryUsedMB
	} else {
		m.Missing |= FieldMaxMemoryUsed
	}
	return nil
}
