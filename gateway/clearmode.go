package gateway

import (
	"fmt"

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
	// ClearModeWindowed exposes a statistic of the values pushed within a
	// sliding window: label values such as "mean5m", "max_1h", "p99_5m" (see
	// the package documentation, "Windowed statistics"). Gauge and untyped
	// samples only.
	ClearModeWindowed
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
	case ClearModeWindowed:
		return "windowed"
	default:
		return fmt.Sprintf("ClearMode(%d)", uint8(m))
	}
}

// ParseClearMode parses a clear mode label value. Windowed statistics such as
// "mean5m" or "p99_5m" yield ClearModeWindowed; a malformed windowed value or
// any other unknown value yields an error naming it.
func ParseClearMode(v string) (ClearMode, error) {
	m, _, err := parseClearMode(v)
	return m, err
}

// parseClearMode is ParseClearMode that also returns the window of a
// windowed mode (nil otherwise).
func parseClearMode(v string) (ClearMode, *windowSpec, error) {
	switch v {
	case "aggregate", "sum":
		return ClearModeAggregate, nil, nil
	case "replace":
		return ClearModeReplace, nil, nil
	case "family", "info":
		return ClearModeFamily, nil, nil
	}
	spec, windowed, err := parseWindow(v)
	switch {
	case err != nil:
		return 0, nil, err
	case windowed:
		return ClearModeWindowed, &spec, nil
	}
	return 0, nil, fmt.Errorf("unknown clearmode %q (want aggregate, sum, replace, family, info, or a windowed statistic such as mean5m or p99_5m)", v)
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
