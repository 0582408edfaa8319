package pushbody

import (
	"math"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// CreatedSibling returns the family whose created time a family named name
// would restate (X_created → counter X_total, or histogram or summary X),
// given a lookup of types by name.
func CreatedSibling(name string, typeOf func(string) (dto.MetricType, bool)) (string, dto.MetricType, bool) {
	base, ok := strings.CutSuffix(name, "_created")
	if !ok || base == "" {
		return "", 0, false
	}
	if t, ok := typeOf(base + "_total"); ok && t == dto.MetricType_COUNTER {
		return base + "_total", t, true
	}
	if t, ok := typeOf(base); ok && (t == dto.MetricType_HISTOGRAM || t == dto.MetricType_SUMMARY || t == dto.MetricType_COUNTER) {
		return base, t, true
	}
	return "", 0, false
}

// foldCreatedGauges drops the gauge (or untyped) families X_created whose
// counter X_total or histogram or summary X is in fams, setting each value
// as the created timestamp of the sibling series with the same labels (when
// that series has none yet and the value is a finite time).
func foldCreatedGauges(fams []*dto.MetricFamily) []*dto.MetricFamily {
	byName := make(map[string]*dto.MetricFamily, len(fams))
	for _, mf := range fams {
		byName[mf.GetName()] = mf
	}
	typeOf := func(n string) (dto.MetricType, bool) {
		if mf := byName[n]; mf != nil {
			return mf.GetType(), true
		}
		return 0, false
	}
	out := fams[:0]
	for _, mf := range fams {
		t := mf.GetType()
		if t == dto.MetricType_GAUGE || t == dto.MetricType_UNTYPED {
			if sib, st, ok := CreatedSibling(mf.GetName(), typeOf); ok {
				setCreatedFrom(mf, byName[sib], st)
				continue
			}
		}
		out = append(out, mf)
	}
	return out
}

func setCreatedFrom(gauges, sib *dto.MetricFamily, st dto.MetricType) {
	byLabels := make(map[string]*dto.Metric, len(sib.GetMetric()))
	for _, m := range sib.GetMetric() {
		byLabels[dtoLabelsKey(m)] = m
	}
	for _, g := range gauges.GetMetric() {
		v := g.GetGauge().GetValue()
		if g.Untyped != nil {
			v = g.GetUntyped().GetValue()
		}
		m := byLabels[dtoLabelsKey(g)]
		if m == nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		ts := secondsToTimestamp(v)
		switch st {
		case dto.MetricType_COUNTER:
			if m.Counter != nil && m.Counter.CreatedTimestamp == nil {
				m.Counter.CreatedTimestamp = ts
			}
		case dto.MetricType_HISTOGRAM:
			if m.Histogram != nil && m.Histogram.CreatedTimestamp == nil {
				m.Histogram.CreatedTimestamp = ts
			}
		case dto.MetricType_SUMMARY:
			if m.Summary != nil && m.Summary.CreatedTimestamp == nil {
				m.Summary.CreatedTimestamp = ts
			}
		}
	}
}

// dtoLabelsKey identifies a pushed metric by its labels, in any order.
func dtoLabelsKey(m *dto.Metric) string {
	ls := make([]labelPair, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		ls = append(ls, labelPair{l.GetName(), l.GetValue()})
	}
	slices.SortFunc(ls, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	return labelsKey(ls)
}
