package dispatcher

import (
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// Distribution selects how per-invocation figures (duration, billed
// duration, max memory used, init duration) are exposed.
type Distribution int

const (
	// Histogram exposes classic histograms, so percentiles aggregate across
	// execution environments (histogram_quantile over summed buckets).
	Histogram Distribution = iota
	// Summary exposes summaries without quantiles: only _count and _sum,
	// enough for averages, and the smallest payload.
	Summary
)

// ParseDistribution parses "histogram" or "summary" (case-insensitive).
func ParseDistribution(s string) (Distribution, error) {
	switch strings.ToLower(s) {
	case "histogram":
		return Histogram, nil
	case "summary":
		return Summary, nil
	}
	return 0, fmt.Errorf("unknown distribution %q: want histogram or summary", s)
}

// Labels identify the function whose execution environment this is. They
// become constant labels on every metric; request and instance ids never
// do, since they would make every invocation a new series.
type Labels struct {
	FunctionName    string
	FunctionVersion string
	Region          string
}

const bytesPerMB = 1 << 20 // Lambda's "MB" (memorySizeMB, maxMemoryUsedMB) is a mebibyte

var (
	// Lambda durations run from about a millisecond to the 900 s limit.
	durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900}
	// Init is capped at 10 s for on-demand functions.
	initDurationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// Memory sizes run from 128 MB to 10,240 MB.
	memoryBuckets = []float64{32 * bytesPerMB, 64 * bytesPerMB, 128 * bytesPerMB, 256 * bytesPerMB, 512 * bytesPerMB,
		1024 * bytesPerMB, 2048 * bytesPerMB, 4096 * bytesPerMB, 8192 * bytesPerMB, 10240 * bytesPerMB}
)

// recentReports is how many platform.report request ids are remembered to
// drop redeliveries. Telemetry redelivery follows a failed POST within
// seconds, and an on-demand environment runs one invocation at a time, so a
// short memory is enough.
const recentReports = 128

// Metrics turns Telemetry API events into Prometheus metrics for one
// execution environment. Values are cumulative for the environment's
// lifetime; the Pusher turns them into deltas. Safe for concurrent use.
type Metrics struct {
	registry *registry // platform metrics, EMF diagnostics included

	invocations        *vec // status
	errors             *vec // error_type
	duration           observer
	billedDuration     observer
	maxMemoryUsed      observer
	initDuration       observer
	memorySize         *series
	coldStarts         *series
	events             *vec // type
	logsDroppedRecords *series
	logsDroppedBytes   *series
	undecodable        *vec             // type
	platform           *platformMetrics // every other platform event and cost (platform.go)
	custom             *customMetrics   // the function's own metrics (custom.go)

	// reports holds the request ids of recent platform.report events,
	// flagged once the batch carrying the report is recorded whole.
	reports *recentIDs

	mu        sync.Mutex    // guards awaited and awaitedCh
	awaited   string        // request id whose report SHUTDOWN waits for
	awaitedCh chan struct{} // closed when that report's batch is recorded
}

// constLabels returns the labels every series of l's environment carries.
func constLabels(l Labels) []family.Label {
	return []family.Label{
		{Name: "function_name", Value: l.FunctionName},
		{Name: "function_version", Value: l.FunctionVersion},
		{Name: "region", Value: l.Region},
	}
}

// NewMetrics registers the metric families of the README's metric table.
func NewMetrics(l Labels, d Distribution) *Metrics {
	r := newRegistry(constLabels(l)...)
	m := &Metrics{
		registry:           r,
		invocations:        r.counterVec("aws_lambda_invocations_total", "Invocations by platform.report status (success, error, failure, timeout).", "status"),
		errors:             r.counterVec("aws_lambda_errors_total", "Invocations that did not succeed, by platform.report errorType.", "error_type"),
		duration:           r.distribution(d, "aws_lambda_duration_seconds", "Invocation duration (platform.report durationMs).", durationBuckets),
		billedDuration:     r.distribution(d, "aws_lambda_billed_duration_seconds", "Billed invocation duration (platform.report billedDurationMs).", durationBuckets),
		maxMemoryUsed:      r.distribution(d, "aws_lambda_max_memory_used_bytes", "Peak memory used by the execution environment during an invocation (platform.report maxMemoryUsedMB).", memoryBuckets),
		initDuration:       r.distribution(d, "aws_lambda_init_duration_seconds", "Init phase duration of cold starts (platform.report initDurationMs).", initDurationBuckets),
		coldStarts:         r.counter("aws_lambda_cold_starts_total", "Invocations that paid for an init phase (platform.report carrying initDurationMs)."),
		events:             r.counterVec("aws_lambda_telemetry_events_total", "Telemetry API events received, by type; redeliveries excluded.", "type"),
		logsDroppedRecords: r.counter("aws_lambda_logs_dropped_records_total", "Log records Lambda dropped before delivering them to the extension (platform.logsDropped droppedRecords)."),
		logsDroppedBytes:   r.counter("aws_lambda_logs_dropped_bytes_total", "Bytes of log records Lambda dropped (platform.logsDropped droppedBytes)."),
		undecodable:        r.counterVec("aws_lambda_telemetry_undecodable_events_total", "Telemetry API events whose record did not decode, by type.", "type"),
		memorySize:         r.gauge("aws_lambda_memory_size_bytes", "Memory configured for the function (platform.report memorySizeMB)."),
		reports:            newRecentIDs(recentReports),
	}
	m.platform = newPlatformMetrics(r, d)
	m.custom = newCustomMetrics(r, l)
	return m
}

// SetMemorySizeMB records the memory configured for the function, in MB
// (Lambda's mebibytes), as known at init from AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
// every platform.report restates it. Without it the gauge would read 0 until
// the first report, or for ever where telemetry is unavailable.
func (m *Metrics) SetMemorySizeMB(mb float64) {
	if mb > 0 {
		m.memorySize.Set(mb * bytesPerMB)
	}
}

// Gatherer exposes the cumulative values of the platform metrics (the
// EMF diagnostics aws_lambda_emf_* included): what the platform Pusher
// gathers.
func (m *Metrics) Gatherer() Gatherer { return m.registry }

// CustomGatherer exposes the cumulative values of the function's own EMF
// metrics, with the same constant labels: what the custom Pusher gathers
// (with the local push endpoint's, see CombineGatherers). They travel in
// pushes of their own, so that a custom metric the gateway rejects (a name
// another job stores with another type) never takes the platform metrics
// along.
func (m *Metrics) CustomGatherer() Gatherer { return m.custom }

// Record turns a batch of events into metrics and returns how many events
// it counted: a platform.report whose requestId was already recorded is a
// redelivery and is neither counted nor recorded again.
func (m *Metrics) Record(events []telemetryapi.Event) int {
	n := 0
	var reports []string // request ids of the reports recorded from this batch
	for i := range events {
		if ok, requestID := m.record(&events[i]); ok {
			n++
			if requestID != "" {
				reports = append(reports, requestID)
			}
		}
	}
	// Only now, with the whole batch recorded, do its reports count as
	// arrived: events after the last report (platform.logsDropped, say) must
	// be in the SHUTDOWN push too.
	if len(reports) > 0 {
		m.markRecorded(reports)
	}
	return n
}

// record records one event and reports whether it counted and, for a
// platform.report, its request id.
func (m *Metrics) record(e *telemetryapi.Event) (counted bool, reportID string) {
	switch e.Type {
	case telemetryapi.TypePlatformReport:
		rec, err := e.DecodeRecord()
		report, ok := rec.(*telemetryapi.PlatformReport)
		if err != nil || !ok {
			m.undecodable.with(e.Type).Inc()
			return false, ""
		}
		if !m.firstReport(report.RequestID) {
			return false, ""
		}
		m.recordReport(report)
		reportID = report.RequestID
	case telemetryapi.TypePlatformLogsDropped:
		rec, err := e.DecodeRecord()
		dropped, ok := rec.(*telemetryapi.PlatformLogsDropped)
		if err != nil || !ok {
			m.undecodable.with(e.Type).Inc()
			return false, ""
		}
		m.logsDroppedRecords.Add(float64(dropped.DroppedRecords))
		m.logsDroppedBytes.Add(float64(dropped.DroppedBytes))
	case telemetryapi.TypeFunction:
		m.custom.recordFunctionLog(e)
	default:
		if !m.platform.record(e) {
			m.undecodable.with(e.Type).Inc()
			return false, ""
		}
	}
	m.events.with(e.Type).Inc()
	return true, reportID
}

func (m *Metrics) recordReport(r *telemetryapi.PlatformReport) {
	status := r.Status
	if status == "" {
		status = "unknown"
	}
	m.invocations.with(status).Inc()
	if status != telemetryapi.StatusSuccess {
		errorType := r.ErrorType
		if errorType == "" {
			errorType = "unknown"
		}
		m.errors.with(errorType).Inc()
	}
	m.duration.Observe(r.Metrics.DurationMs / 1000)
	// A Lambda Managed Instances report carries only durationMs: figures
	// it leaves out are not observed as zeros.
	if r.Metrics.HasBilledDuration() {
		m.billedDuration.Observe(r.Metrics.BilledDurationMs / 1000)
	}
	if r.Metrics.HasMaxMemoryUsed() {
		m.maxMemoryUsed.Observe(r.Metrics.MaxMemoryUsedMB * bytesPerMB)
	}
	if r.Metrics.HasMemorySize() && r.Metrics.MemorySizeMB > 0 {
		m.memorySize.Set(r.Metrics.MemorySizeMB * bytesPerMB)
	}
	m.platform.recordReport(r)
	if r.Metrics.InitDurationMs != nil {
		m.coldStarts.Inc()
		m.initDuration.Observe(*r.Metrics.InitDurationMs / 1000)
	}
}

// firstReport remembers requestID and reports whether it is new.
func (m *Metrics) firstReport(requestID string) bool { return m.reports.add(requestID) }

// markRecorded marks reports whose batch is recorded whole, and releases
// ReportArrived's channel when its report is among them.
func (m *Metrics) markRecorded(requestIDs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range requestIDs {
		m.reports.setFlag(id)
		if m.awaitedCh != nil && id == m.awaited {
			close(m.awaitedCh)
			m.awaitedCh = nil
		}
	}
}

// ReportArrived returns a channel closed once the batch carrying the
// platform.report of requestID has been recorded whole (at once if it
// already was). One request is awaited at a time, which is all SHUTDOWN
// needs: a later call replaces the earlier one, whose channel then never
// closes.
func (m *Metrics) ReportArrived(requestID string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{})
	if m.reports.flagged(requestID) {
		close(ch)
		return ch
	}
	m.awaited, m.awaitedCh = requestID, ch
	return ch
}
