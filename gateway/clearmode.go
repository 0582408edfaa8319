package gateway

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
)

// Label names that carry a sample's clear mode. Both spellings are accepted
// (Gravel Gateway's README writes clearmode, its author's talk clear_mode); a
// sample carrying both is rejected. The label never reaches the scrape.
const (
	ClearModeLabel    = clearmode.Label
	ClearModeLabelAlt = clearmode.LabelAlt
)

// ClearMode says how a pushed sample is merged into the stored series with the
// same identity (family name and full label set, clear mode label excluded).
// It follows Gravel Gateway's semantics; the grammar lives in
// internal/clearmode, shared with the extension's local push endpoint.
type ClearMode = clearmode.Kind

const (
	// ClearModeAggregate adds the pushed value to the stored one: counters,
	// gauges and untyped values are summed; histograms sum count, sum and
	// buckets; summaries sum count and sum and take the pushed quantiles.
	// Label values "aggregate" and "sum".
	ClearModeAggregate = clearmode.Aggregate
	// ClearModeReplace makes the pushed value the stored one. Label value
	// "replace".
	ClearModeReplace = clearmode.Replace
	// ClearModeFamily makes the pushed samples the whole family within the
	// group: stored series of the family that the push does not mention are
	// dropped (info-metric semantics). Label values "family" and "info".
	ClearModeFamily = clearmode.Family
	// ClearModeWindowed exposes a statistic of the values pushed within a
	// sliding window: label values such as "mean5m", "max_1h", "p99_5m" (see
	// the package documentation, "Windowed statistics"). Gauge and untyped
	// samples only.
	ClearModeWindowed = clearmode.Windowed
)

// ParseClearMode parses a clear mode label value. Windowed statistics such as
// "mean5m" or "p99_5m" yield ClearModeWindowed; a malformed windowed value or
// any other unknown value yields an error naming it.
func ParseClearMode(v string) (ClearMode, error) {
	m, _, err := clearmode.Parse(v)
	return m, err
}

// DefaultClearMode is the mode of a sample without a clear mode label: gauges
// (and gauge histograms) are replaced, everything else is aggregated.
func DefaultClearMode(t dto.MetricType) ClearMode {
	switch t {
	case dto.MetricType_GAUGE, dto.MetricType_GAUGE_HISTOGRAM:
		return ClearModeReplace
	default:
		return ClearModeAggregate
	}
}
