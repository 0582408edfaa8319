package gateway

import (
	"fmt"
	"math"
	"net/http"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// Default per-push limits (Limits). They are generous for Pushgateway-style
// batch jobs and for the extension, whose largest push (1,000 custom
// histogram series of 17 buckets) is about 20,000 samples of at most 35
// labels (30 EMF dimensions and the pipeline's own).
const (
	DefaultMaxSamples          = 100_000
	DefaultMaxLabelNameLength  = 1024
	DefaultMaxLabelValueLength = 2048
	DefaultMaxLabelsPerSeries  = 64
)

// Names of limits, the values of gateway_limit_rejections_total's limit
// label.
const (
	LimitBodySize         = "body_size"
	LimitSamples          = "samples"
	LimitLabelNameLength  = "label_name_length"
	LimitLabelValueLength = "label_value_length"
	LimitLabelsPerSeries  = "labels_per_series"
)

// Limits bounds what one push may carry. Each field: 0 means its default
// (the Default* constants), a negative value no limit.
type Limits struct {
	// MaxSamples bounds the samples of a push as a scrape would show them:
	// one per counter, gauge or untyped series; a histogram's buckets (+Inf
	// included), _count and _sum; a summary's quantiles, _count and _sum.
	// Beyond: 413.
	MaxSamples int
	// MaxLabelNameLength and MaxLabelValueLength bound a label's name and
	// value, in bytes, pushed and grouping labels alike. Beyond: 400 naming
	// the label.
	MaxLabelNameLength  int
	MaxLabelValueLength int
	// MaxLabelsPerSeries bounds the labels of a series, its grouping labels
	// included (not the metric name, clearmode, le or quantile). Beyond: 400.
	MaxLabelsPerSeries int
}

// Effective returns l with defaults filled in and no limit as 0.
func (l Limits) Effective() Limits {
	eff := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	return Limits{
		MaxSamples:          eff(l.MaxSamples, DefaultMaxSamples),
		MaxLabelNameLength:  eff(l.MaxLabelNameLength, DefaultMaxLabelNameLength),
		MaxLabelValueLength: eff(l.MaxLabelValueLength, DefaultMaxLabelValueLength),
		MaxLabelsPerSeries:  eff(l.MaxLabelsPerSeries, DefaultMaxLabelsPerSeries),
	}
}

// PushLimitError is a push refused by a per-push limit.
type PushLimitError struct {
	Limit  string // LimitSamples, LimitLabelNameLength, …
	Status int    // HTTP status: 413 for samples, 400 otherwise
	msg    string
}

func (e *PushLimitError) Error() string { return e.msg }

func limitErr(limit string, status int, format string, args ...any) *PushLimitError {
	return &PushLimitError{Limit: limit, Status: status, msg: fmt.Sprintf(format, args...)}
}

// Check returns a *PushLimitError if the push of fams into the group with
// the grouping labels exceeds l (effective limits: 0 is no limit), nil
// otherwise. It does not change fams.
func (l Limits) Check(grouping map[string]string, fams []fam.Family) error {
	for name, value := range grouping {
		if err := l.checkLabel("", name, value); err != nil {
			return err
		}
	}
	groupingLabels := 0
	for _, v := range grouping {
		if v != "" {
			groupingLabels++
		}
	}
	samples := 0
	for i := range fams {
		f := &fams[i]
		for j := range f.Metrics {
			m := &f.Metrics[j]
			n := groupingLabels
			for _, lp := range m.Labels {
				if lp.Value == "" || lp.Name == "clearmode" || lp.Name == "clear_mode" {
					continue
				}
				if err := l.checkLabel(f.Name, lp.Name, lp.Value); err != nil {
					return err
				}
				if _, dup := grouping[lp.Name]; !dup || grouping[lp.Name] == "" {
					n++
				}
			}
			if l.MaxLabelsPerSeries > 0 && n > l.MaxLabelsPerSeries {
				return limitErr(LimitLabelsPerSeries, http.StatusBadRequest,
					"metric %q: a series has %d labels (grouping labels included), more than the limit of %d", f.Name, n, l.MaxLabelsPerSeries)
			}
			samples += sampleCount(f.Type, m)
		}
	}
	if l.MaxSamples > 0 && samples > l.MaxSamples {
		return limitErr(LimitSamples, http.StatusRequestEntityTooLarge,
			"push has %d samples, more than the limit of %d: split it into several pushes", samples, l.MaxSamples)
	}
	return nil
}

// checkLabel checks one label of metric family metric ("" for a grouping
// label). The message is built only on failure: this runs for every label of
// every push.
func (l Limits) checkLabel(metric, name, value string) error {
	what := func() string {
		if metric == "" {
			return "grouping label"
		}
		return fmt.Sprintf("metric %q: label", metric)
	}
	if l.MaxLabelNameLength > 0 && len(name) > l.MaxLabelNameLength {
		shown := name
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		return limitErr(LimitLabelNameLength, http.StatusBadRequest,
			"%s %q: name of %d bytes, longer than the limit of %d", what(), shown, len(name), l.MaxLabelNameLength)
	}
	if l.MaxLabelValueLength > 0 && len(value) > l.MaxLabelValueLength {
		return limitErr(LimitLabelValueLength, http.StatusBadRequest,
			"%s %q: value of %d bytes, longer than the limit of %d", what(), name, len(value), l.MaxLabelValueLength)
	}
	return nil
}

// sampleCount is the number of exposition samples of one metric.
func sampleCount(t fam.Type, m *fam.Metric) int {
	switch t {
	case fam.Histogram, fam.GaugeHistogram:
		n := len(m.Buckets) + 2
		if len(m.Buckets) == 0 || !math.IsInf(m.Buckets[len(m.Buckets)-1].UpperBound, 1) {
			n++ // The +Inf bucket, which the exposition always has.
		}
		return n
	case fam.Summary:
		return len(m.Quantiles) + 2
	}
	return 1
}
