package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// customMetrics holds the function's own metrics.
type customMetrics struct{}

func newCustomMetrics(reg *prometheus.Registry, l Labels) *customMetrics {
	return &customMetrics{}
}

// recordFunctionLog reads a function log record.
func (c *customMetrics) recordFunctionLog(e *telemetryapi.Event) {}
