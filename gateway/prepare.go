package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// pushFamily is one pushed metric family, validated on its own and converted
// to stored form, ready to be checked against the store and applied.
type pushFamily struct {
	name       string
	typ        dto.MetricType
	help       string // "" when the push has no HELP
	familyMode bool   // every sample has clear mode family
	series     []*series
	// hashes are the series' identity hashes (identityHash), parallel to
	// series, computed before the lock for the clash index.
	hashes []uint64
}

// preparePush validates families without looking at the store: names,
// labels, timestamps, clear modes, duplicates and values. It merges the
// grouping labels into every series (grouping labels win over pushed ones).
func preparePush(group []labelPair, fams []fam.Family) ([]*pushFamily, error) {
	out := make([]*pushFamily, 0, len(fams))
	for i := range fams {
		pf, err := prepareFamily(group, &fams[i])
		if err != nil {
			return nil, err
		}
		out = append(out, pf)
	}
	return out, nil
}

func prepareFamily(group []labelPair, mf *fam.Family) (*pushFamily, error) {
	name := mf.Name
	if !model.UTF8Validation.IsValidMetricName(name) {
		return nil, &ValidationError{Metric: fmt.Sprintf("%q", name), Reason: "invalid metric name"}
	}
	typ := dto.MetricType(mf.Type) // numbered alike
	switch typ {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED,
		dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM, dto.MetricType_SUMMARY:
	default:
		return nil, &ValidationError{Metric: name, Reason: fmt.Sprintf("unsupported metric type %s", typ)}
	}
	pf := &pushFamily{
		name:   name,
		typ:    typ,
		help:   mf.Help,
		series: make([]*series, 0, len(mf.Metrics)),
		hashes: make([]uint64, 0, len(mf.Metrics)),
	}
	var seen map[string]struct{} // only for families of more than a few series
	if len(mf.Metrics) > 8 {
		seen = make(map[string]struct{}, len(mf.Metrics))
	}
	families := 0
	for i := range mf.Metrics {
		s, err := prepareSeries(group, name, typ, &mf.Metrics[i])
		if err != nil {
			return nil, err
		}
		dup := false
		if seen != nil {
			_, dup = seen[s.key]
			seen[s.key] = struct{}{}
		} else {
			for _, o := range pf.series {
				dup = dup || o.key == s.key
			}
		}
		if dup {
			return nil, &ValidationError{Metric: name + labelString(fullLabels(group, s.key)), Reason: "series pushed twice (labels are compared without the clear mode label)"}
		}
		if s.mode == ClearModeFamily {
			families++
		}
		pf.series = append(pf.series, s)
		pf.hashes = append(pf.hashes, identityHash(name, group, s.key))
	}
	if families > 0 && families < len(pf.series) {
		return nil, &ValidationError{Metric: name, Reason: "clearmode family mixed with other clear modes in one family"}
	}
	pf.familyMode = families > 0
	return pf, nil
}

// prepareSeries converts one pushed metric into a series with its full label
// set and clear mode.
func prepareSeries(group []labelPair, name string, typ dto.MetricType, m *fam.Metric) (*series, error) {
	pushed := make([]labelPair, 0, len(m.Labels)+len(group))
	var modeLabel, modeValue string
	for _, lp := range m.Labels {
		ln, lv := lp.Name, lp.Value
		if err := pushbody.CheckLabelName(ln); err != nil {
			return nil, &ValidationError{Metric: name, Err: err}
		}
		if !model.LabelValue(lv).IsValid() {
			return nil, &ValidationError{Metric: name, Reason: fmt.Sprintf("label %q: value is not valid UTF-8", ln)}
		}
		if (ln == model.BucketLabel && isHistogram(typ)) || (ln == model.QuantileLabel && typ == dto.MetricType_SUMMARY) {
			return nil, &ValidationError{Metric: name, Reason: fmt.Sprintf("label %q is reserved in a %s", ln, strings.ToLower(typ.String()))}
		}
		if ln == ClearModeLabel || ln == ClearModeLabelAlt {
			if modeLabel != "" {
				return nil, &ValidationError{Metric: name, Reason: fmt.Sprintf("both %s and %s labels given", ClearModeLabel, ClearModeLabelAlt)}
			}
			modeLabel, modeValue = ln, lv
			continue
		}
		pushed = append(pushed, labelPair{ln, lv})
	}
	slices.SortFunc(pushed, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(pushed); i++ {
		if pushed[i].name == pushed[i-1].name {
			return nil, &ValidationError{Metric: name, Reason: fmt.Sprintf("label %q given twice", pushed[i].name)}
		}
	}
	s := &series{key: labelsKey(pushedOnly(group, pushed))}
	// The series as an error message names it; built only on error.
	id := func() string { return name + labelString(fullLabels(group, s.key)) }

	s.mode = DefaultClearMode(typ)
	if modeLabel != "" {
		mode, spec, err := clearmode.Parse(modeValue)
		if err != nil {
			return nil, &ValidationError{Metric: id(), Err: err}
		}
		s.mode = mode
		if spec != nil {
			s.win = newWindow(*spec)
		}
	}
	if m.HasTimestamp {
		return nil, &ValidationError{Metric: id(), Reason: "pushed metrics must not carry timestamps"}
	}
	if err := setValue(s, typ, m); err != nil {
		return nil, &ValidationError{Metric: id(), Err: err}
	}
	s.setCreated(pushedCreated(typ, m)) // the pushed created timestamp, if any (created.go)
	if s.win != nil {
		if err := checkWindowed(typ, s.value, modeValue); err != nil {
			return nil, &ValidationError{Metric: id(), Err: err}
		}
	}
	return s, nil
}

// pushedOnly filters sorted pushed labels in place to those a series stores
// (grouping labels are the group's): a grouping label wins over a pushed
// label of the same name (as in the Pushgateway), and pushed labels with an
// empty value are dropped, because Prometheus treats an empty label as an
// absent one and identity must agree with that.
func pushedOnly(group, pushed []labelPair) []labelPair {
	out := pushed[:0]
	i := 0
	for _, l := range pushed {
		for i < len(group) && group[i].name < l.name {
			i++
		}
		if l.value == "" || (i < len(group) && group[i].name == l.name) {
			continue
		}
		out = append(out, l)
	}
	return out
}

func isHistogram(t dto.MetricType) bool {
	return t == dto.MetricType_HISTOGRAM || t == dto.MetricType_GAUGE_HISTOGRAM
}

// setValue copies m's value of type typ into s, checking it can be merged.
// Created times are taken separately (pushedCreated). That m's fields match
// typ (a protobuf counter carries a counter value, …) the decoder checked.
func setValue(s *series, typ dto.MetricType, m *fam.Metric) error {
	switch typ {
	case dto.MetricType_COUNTER:
		s.value = m.Value
		if s.mode == ClearModeAggregate && (s.value < 0 || math.IsNaN(s.value)) {
			return fmt.Errorf("counter value %v cannot be aggregated (must be ≥ 0)", s.value)
		}
	case dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
		s.value = m.Value
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		d, err := histogramValue(m)
		if err != nil {
			return err
		}
		s.dist = d
	case dto.MetricType_SUMMARY:
		d, err := summaryValue(m)
		if err != nil {
			return err
		}
		s.dist = d
	}
	return nil
}

func histogramValue(m *fam.Metric) (*distribution, error) {
	d := &distribution{sum: m.Sum, count: m.Count}
	if !(d.count >= 0) {
		return nil, fmt.Errorf("histogram sample count %v is negative or NaN", d.count)
	}
	d.buckets = make([]bucket, 0, len(m.Buckets))
	for _, b := range m.Buckets {
		c, ub := b.Count, b.UpperBound
		if math.IsNaN(ub) {
			return nil, errors.New("histogram bucket with upper bound NaN")
		}
		if !(c >= 0) {
			return nil, fmt.Errorf("histogram bucket le=%v: count %v is negative or NaN", ub, c)
		}
		d.buckets = append(d.buckets, bucket{upperBound: ub, count: c})
	}
	slices.SortFunc(d.buckets, func(a, b bucket) int { return cmp.Compare(a.upperBound, b.upperBound) })
	for i := 1; i < len(d.buckets); i++ {
		prev, cur := d.buckets[i-1], d.buckets[i]
		if cur.upperBound == prev.upperBound {
			return nil, fmt.Errorf("histogram bucket le=%v given twice", cur.upperBound)
		}
		if cur.count < prev.count {
			return nil, fmt.Errorf("histogram bucket counts are not cumulative: le=%v has %v, le=%v has %v",
				prev.upperBound, prev.count, cur.upperBound, cur.count)
		}
	}
	// The +Inf bucket is the sample count; keep one source of truth.
	if n := len(d.buckets); n > 0 && math.IsInf(d.buckets[n-1].upperBound, +1) {
		if inf := d.buckets[n-1].count; inf != d.count {
			return nil, fmt.Errorf("histogram +Inf bucket count %v differs from sample count %v", inf, d.count)
		}
		d.buckets = d.buckets[:n-1]
	}
	if n := len(d.buckets); n > 0 && d.buckets[n-1].count > d.count {
		return nil, fmt.Errorf("histogram bucket le=%v count %v exceeds sample count %v",
			d.buckets[n-1].upperBound, d.buckets[n-1].count, d.count)
	}
	return d, nil
}

func summaryValue(m *fam.Metric) (*distribution, error) {
	d := &distribution{sum: m.Sum, count: m.Count}
	if !(d.count >= 0) {
		return nil, fmt.Errorf("summary sample count %v is negative or NaN", d.count)
	}
	d.quantiles = make([]quantile, 0, len(m.Quantiles))
	for _, q := range m.Quantiles {
		if !(q.Quantile >= 0 && q.Quantile <= 1) {
			return nil, fmt.Errorf("summary quantile %v is outside [0, 1]", q.Quantile)
		}
		d.quantiles = append(d.quantiles, quantile{quantile: q.Quantile, value: q.Value})
	}
	slices.SortFunc(d.quantiles, func(a, b quantile) int { return cmp.Compare(a.quantile, b.quantile) })
	for i := 1; i < len(d.quantiles); i++ {
		if d.quantiles[i].quantile == d.quantiles[i-1].quantile {
			return nil, fmt.Errorf("summary quantile %v given twice", d.quantiles[i].quantile)
		}
	}
	return d, nil
}
