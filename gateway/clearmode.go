package gateway

import (
	"fmt"
	"regexp"

	dto "github.com/prometheus/client_model/go"
)

// Label names that carry a sample's clear mode. Both spellings are accepted
// (Gravel Gateway's README writes clearmode, its author's talk clear_mode); a
// sample carrying both is rejected. The label never reaches the scrape.
const (
	ClearModeLabel    = "clearmode"
	ClearModeLabelAlt = "clear_mode"
)

// ClearMode says how a pushed sample is merged into the stored series with the
// same identity (family name and full label set, clear mode label excluded).
// It follows Gravel Gateway's semantics.
type ClearMode uint8

const (
	// ClearModeAggregate adds the pushed value to the stored one: counters,
	// gauges and untyped values are summed; histograms sum count, sum and
	// buckets; summaries sum count and sum and take the pushed quantiles.
	// Label values "aggregate" and "sum".
	ClearModeAggregate ClearMode = iota + 1
	// ClearModeReplace makes the pushed value the stored one. Label value
	// "replace".
	ClearModeReplace
	// ClearModeFamily makes the pushed samples the whole family within the
	// group: stored series of the family that the push does not mention are
	// dropped (info-metric semantics). Label values "family" and "info".
	ClearModeFamily
)

// String returns the canonical label value of m.
func (m ClearMode) String() string {
	switch m {
	case ClearModeAggregate:
		return "aggregate"
	case ClearModeReplace:
		return "replace"
	case ClearModeFamily:
		return "family"
	default:
		return fmt.Sprintf("ClearMode(%d)", uint8(m))
	}
}

// windowedRE matches Gravel's windowed statistics (mean5m, p99_5m, max1h, …):
// a statistic, an optional underscore and a window length.
var windowedRE = regexp.MustCompile(`^(mean|avg|min|max|count|stddev|p[0-9]{1,2}(\.[0-9]+)?)_?[0-9]+(ms|s|m|h|d)$`)

// ErrWindowedClearMode is wrapped by ParseClearMode for windowed statistics,
// which the gateway does not support yet.
var ErrWindowedClearMode = fmt.Errorf("windowed clearmode not supported yet")

// ParseClearMode parses a clear mode label value. Windowed statistics such as
// "mean5m" yield an error wrapping ErrWindowedClearMode; any other unknown
// value yields an error naming it.
func ParseClearMode(v string) (ClearMode, error) {
	switch v {
	case "aggregate", "sum":
		return ClearModeAggregate, nil
	case "replace":
		return ClearModeReplace, nil
	case "family", "info":
		return ClearModeFamily, nil
	}
	if windowedRE.MatchString(v) {
		return 0, fmt.Errorf("%w: %q", ErrWindowedClearMode, v)
	}
	return 0, fmt.Errorf("unknown clearmode %q (want aggregate, sum, replace, family or info)", v)
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
