package pushbody

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// CreatedSibling returns the family whose created time a family named name
// would restate (X_created → counter X_total, or histogram or summary X),
// given a lookup of types by name.
func CreatedSibling(name string, typeOf func(string) (family.Type, bool)) (string, family.Type, bool) {
	base, ok := strings.CutSuffix(name, "_created")
	if !ok || base == "" {
		return "", 0, false
	}
	if t, ok := typeOf(base + "_total"); ok && t == family.Counter {
		return base + "_total", t, true
	}
	if t, ok := typeOf(base); ok && (t == family.Histogram || t == family.Summary || t == family.Counter) {
		return base, t, true
	}
	return "", 0, false
}

// foldCreatedGauges drops the gauge (or untyped) families X_created whose
// counter X_total or histogram or summary X is in fams, setting each value
// as the created time of the sibling series with the same labels (when that
// series has none yet and the value is a representable time).
func foldCreatedGauges(fams []family.Family) []family.Family {
	byName := make(map[string]int, len(fams))
	for i := range fams {
		byName[fams[i].Name] = i
	}
	typeOf := func(n string) (family.Type, bool) {
		if i, ok := byName[n]; ok {
			return fams[i].Type, true
		}
		return 0, false
	}
	drop := make([]bool, len(fams))
	for i := range fams {
		t := fams[i].Type
		if t == family.Gauge || t == family.Untyped {
			if sib, _, ok := CreatedSibling(fams[i].Name, typeOf); ok {
				setCreatedFrom(&fams[i], &fams[byName[sib]])
				drop[i] = true
			}
		}
	}
	out := fams[:0]
	for i := range fams {
		if !drop[i] {
			out = append(out, fams[i])
		}
	}
	return out
}

// setCreatedFrom sets the created times of sib's metrics (a counter,
// histogram or summary) from the values of the gauges with the same labels.
func setCreatedFrom(gauges, sib *family.Family) {
	byLabels := make(map[string]int, len(sib.Metrics))
	for i := range sib.Metrics {
		byLabels[familyLabelsKey(sib.Metrics[i].Labels)] = i
	}
	for _, g := range gauges.Metrics {
		i, ok := byLabels[familyLabelsKey(g.Labels)]
		if !ok {
			continue
		}
		m := &sib.Metrics[i]
		if !m.Created.IsZero() {
			continue
		}
		m.Created = secondsToTime(g.Value)
	}
}

// familyLabelsKey identifies a pushed metric by its labels, in any order.
func familyLabelsKey(labels []family.Label) string {
	ls := make([]labelPair, 0, len(labels))
	for _, l := range labels {
		ls = append(ls, labelPair{l.Name, l.Value})
	}
	slices.SortFunc(ls, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	return labelsKey(ls)
}

// Unix seconds of the earliest and (past) the latest time a protobuf
// Timestamp can hold: 0001-01-01 and 10000-01-01 UTC.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300800
)

// secondsToTime converts Unix seconds to a time, rounded to the nanosecond;
// the zero Time for NaN, infinities and times outside years 1 to 9999.
func secondsToTime(s float64) time.Time {
	if math.IsNaN(s) || !(s >= minTimestampSeconds && s < maxTimestampSeconds) {
		return time.Time{}
	}
	sec := math.Floor(s)
	nanos := math.Round((s - sec) * 1e9)
	if nanos >= 1e9 {
		sec++
		nanos -= 1e9
	}
	if sec >= maxTimestampSeconds {
		return time.Time{}
	}
	return time.Unix(int64(sec), int64(nanos)).UTC()
}
