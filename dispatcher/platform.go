package dispatcher

import (
	"strings"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// spanBuckets bound the spans of platform.runtimeDone: responseDuration
// (sending the response) is often well under a millisecond, responseLatency
// as long as the invocation.
var spanBuckets = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900}

// platformMetrics turns the platform events other than platform.report's
// invocation figures and platform.logsDropped into metrics, and estimates
// cost from platform.report. Safe for concurrent use.
type platformMetrics struct {
	initPhaseDuration    *vec // initialization_type, phase, status
	initFailures         *vec // initialization_type, error_type
	restoreDuration      observer
	restoreFailures      *vec // error_type
	producedBytes        *series
	responseLatency      observer
	responseDuration     observer
	runtimeOverhead      *vec // phase
	extensionStates      *vec // extension, state
	subscriptionStates   *vec // extension, state
	shutdowns            *vec // reason
	cost                 *costMetrics
	runtimeDoneRequestID *recentIDs // platform.runtimeDone already recorded
}

func newPlatformMetrics(r *registry, d Distribution) *platformMetrics {
	counterVec := r.counterVec
	p := &platformMetrics{
		initPhaseDuration: r.distributionVec(d, "aws_lambda_init_phase_duration_seconds",
			"Init phase duration by initialization type, phase and status, cold starts and failed inits alike (platform.initReport metrics.durationMs).",
			initDurationBuckets, "initialization_type", "phase", "status"),
		initFailures: counterVec("aws_lambda_init_failures_total",
			"Init phases that did not succeed, by initialization type and errorType (platform.initReport status other than success).",
			"initialization_type", "error_type"),
		restoreDuration: r.distribution(d, "aws_lambda_restore_duration_seconds",
			"SnapStart restore duration of the first invocation after a restore (platform.report restoreDurationMs).",
			initDurationBuckets),
		restoreFailures: counterVec("aws_lambda_restore_failures_total",
			"SnapStart restores that did not succeed, by errorType (platform.restoreReport status other than success).",
			"error_type"),
		producedBytes: r.counter("aws_lambda_produced_bytes_total",
			"Bytes of the responses the runtime produced (platform.runtimeDone metrics.producedBytes)."),
		responseLatency: r.distribution(d, "aws_lambda_response_latency_seconds",
			"Time from the start of an invocation to the first byte of its response (platform.runtimeDone span responseLatency).",
			spanBuckets),
		responseDuration: r.distribution(d, "aws_lambda_response_duration_seconds",
			"Time taken to send the response (platform.runtimeDone span responseDuration).",
			spanBuckets),
		runtimeOverhead: r.distributionVec(d, "aws_lambda_runtime_overhead_seconds",
			"Runtime time outside the handler, by phase (runtimeOverhead span of platform.runtimeDone: invoke; platform.initRuntimeDone: its phase; platform.restoreRuntimeDone: restore).",
			spanBuckets, "phase"),
		extensionStates: counterVec("aws_lambda_extension_state_changes_total",
			"Extensions reaching a state, e.g. Ready at registration, by extension name and state (platform.extension).",
			"extension", "state"),
		subscriptionStates: counterVec("aws_lambda_telemetry_subscription_state_changes_total",
			"Telemetry API subscriptions reaching a state, e.g. Subscribed, by extension name and state (platform.telemetrySubscription).",
			"extension", "state"),
		shutdowns: counterVec("aws_lambda_shutdowns_total",
			"Execution environment shutdowns by the Extensions API SHUTDOWN event's shutdownReason, lower-cased (spindown, timeout, failure).",
			"reason"),
		runtimeDoneRequestID: newRecentIDs(recentReports),
	}
	p.cost = newCostMetrics(r, Architecture())
	return p
}

// platformLabel returns s, or "unknown" when Lambda left the field out.
func platformLabel(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// platformFailed reports whether a status says an init or restore did not succeed.
// An absent status (schema versions before 2022-12-13) is not a failure.
func platformFailed(status string) bool {
	return status != "" && status != telemetryapi.StatusSuccess
}

// record records one platform event of a type Metrics.record does not
// handle itself; it reports false when the record did not decode. Other
// types (extension log lines, types Lambda adds later) are left to
// aws_lambda_telemetry_events_total.
func (p *platformMetrics) record(e *telemetryapi.Event) bool {
	switch e.Type {
	case telemetryapi.TypePlatformInitStart, telemetryapi.TypePlatformStart, telemetryapi.TypePlatformRestoreStart,
		telemetryapi.TypePlatformInitRuntimeDone, telemetryapi.TypePlatformInitReport,
		telemetryapi.TypePlatformRuntimeDone,
		telemetryapi.TypePlatformRestoreRuntimeDone, telemetryapi.TypePlatformRestoreReport,
		telemetryapi.TypePlatformExtension, telemetryapi.TypePlatformTelemetrySubscription:
	default:
		return true
	}
	rec, err := e.DecodeRecord()
	if err != nil {
		return false
	}
	switch r := rec.(type) {
	case *telemetryapi.PlatformInitRuntimeDone:
		// Its failures are counted from platform.initReport, which follows
		// it and reports the whole init phase.
		phase := r.Phase
		if phase == "" {
			phase = telemetryapi.PhaseInit
		}
		p.observeSpans(r.Spans, phase)
	case *telemetryapi.PlatformInitReport:
		p.initPhaseDuration.with(platformLabel(r.InitializationType), platformLabel(r.Phase), platformLabel(r.Status)).
			Observe(r.Metrics.DurationMs / 1000)
		if platformFailed(r.Status) {
			p.initFailures.with(platformLabel(r.InitializationType), platformLabel(r.ErrorType)).Inc()
		}
	case *telemetryapi.PlatformRuntimeDone:
		if r.RequestID != "" && !p.runtimeDoneRequestID.add(r.RequestID) {
			return true // a redelivery: counted by type, recorded once
		}
		if r.Metrics.ProducedBytes > 0 {
			p.producedBytes.Add(float64(r.Metrics.ProducedBytes))
		}
		p.observeSpans(r.Spans, telemetryapi.PhaseInvoke)
	case *telemetryapi.PlatformRestoreRuntimeDone:
		p.observeSpans(r.Spans, "restore")
	case *telemetryapi.PlatformRestoreReport:
		// The duration is taken from platform.report restoreDurationMs
		// (recordReport), so a restore is timed once.
		if platformFailed(r.Status) {
			p.restoreFailures.with(platformLabel(r.ErrorType)).Inc()
		}
	case *telemetryapi.PlatformExtension:
		p.extensionStates.with(platformLabel(r.Name), platformLabel(r.State)).Inc()
	case *telemetryapi.PlatformTelemetrySubscription:
		p.subscriptionStates.with(platformLabel(r.Name), platformLabel(r.State)).Inc()
	}
	return true
}

// observeSpans records the spans of a runtimeDone-like record; the response
// spans only occur in platform.runtimeDone. platform.report repeats the
// spans of its platform.runtimeDone and is not read for them.
func (p *platformMetrics) observeSpans(spans []telemetryapi.Span, phase string) {
	for _, s := range spans {
		switch s.Name {
		case telemetryapi.SpanResponseLatency:
			p.responseLatency.Observe(s.DurationMs / 1000)
		case telemetryapi.SpanResponseDuration:
			p.responseDuration.Observe(s.DurationMs / 1000)
		case telemetryapi.SpanRuntimeOverhead:
			p.runtimeOverhead.with(phase).Observe(s.DurationMs / 1000)
		}
	}
}

// recordReport adds what platform.report tells beyond the invocation
// figures: the SnapStart restore duration and the cost. Metrics calls it
// once per request id.
func (p *platformMetrics) recordReport(r *telemetryapi.PlatformReport) {
	if r.Metrics.RestoreDurationMs != nil {
		p.restoreDuration.Observe(*r.Metrics.RestoreDurationMs / 1000)
	}
	p.cost.record(r)
}

// RecordShutdown counts a shutdown of the execution environment by the
// shutdownReason of the Extensions API SHUTDOWN event (SPINDOWN, TIMEOUT,
// FAILURE), lower-cased; call it before the final push.
func (m *Metrics) RecordShutdown(reason string) {
	m.platform.shutdowns.with(platformLabel(strings.ToLower(reason))).Inc()
}
