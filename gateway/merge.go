package gateway

import (
	"math"
	"time"
)

// series is the stored state of one series: its identity (pushed labels;
// the family name and grouping labels are its family's and group's) and its
// value. Scalar types (counter, gauge, untyped) use value; histograms, gauge
// histograms and summaries use dist. Windowed clear modes hang their window
// of values off this struct (win, nil otherwise; value is then the latest
// pushed value), which is why the merge functions take the whole series
// rather than bare values.
//
// It is kept small (64 bytes) because a store holds millions: plain data
// only, no maps, no closures, so a snapshot can copy it as it is.
type series struct {
	// key is the pushed labels, grouping labels and the clear mode label
	// excluded, encoded by labelsKey (grouping.go): the series' key in its
	// family and its label storage at once.
	key    string
	value  float64
	pushed int64 // unix nanoseconds of the latest push mentioning it (expiry)
	// created is the series' created time (created.go): unix seconds and
	// nanoseconds + 1; createdNsec 0 means none (types without, or unset).
	created     int64
	createdNsec int32
	mode        ClearMode // mode of the latest push of this series
	dist        *distribution
	// win holds a windowed clear mode's values (window.go); nil otherwise.
	win *window
}

// createdTime returns se's created time, the zero time if none.
func (se *series) createdTime() time.Time {
	if se.createdNsec == 0 {
		return time.Time{}
	}
	return time.Unix(se.created, int64(se.createdNsec-1)).UTC()
}

// setCreated sets se's created time; the zero time clears it.
func (se *series) setCreated(t time.Time) {
	if t.IsZero() {
		se.created, se.createdNsec = 0, 0
		return
	}
	se.created, se.createdNsec = t.Unix(), int32(t.Nanosecond())+1
}

// distribution is the value of a histogram or summary.
type distribution struct {
	count, sum float64
	// buckets holds a histogram's classic buckets in ascending order of
	// upper bound with cumulative counts; the +Inf bucket is implied by count.
	buckets []bucket
	// quantiles holds a summary's quantiles as last pushed.
	quantiles []quantile
}

type bucket struct{ upperBound, count float64 }

type quantile struct{ quantile, value float64 }

// merge folds the pushed series src into the stored series dst according to
// src's clear mode. It cannot fail: every check happened when the push was
// validated. src is owned by the push and may be taken over by dst.
func merge(dst, src *series) {
	dst.created, dst.createdNsec = src.created, src.createdNsec // set by stampCreated (created.go)
	if mergeWindow(dst, src) {
		return // Windowed, or a change to or from windowed (window.go).
	}
	dst.mode = src.mode
	if src.mode != ClearModeAggregate {
		// Replace and family: the whole value, all buckets and quantiles.
		dst.value, dst.dist = src.value, src.dist
		return
	}
	if src.dist == nil {
		dst.value += src.value
		return
	}
	d, s := dst.dist, src.dist
	d.count += s.count
	d.sum += s.sum
	d.buckets = addBuckets(d.buckets, s.buckets)
	// Quantiles of two summaries cannot be combined: the latest push's win
	// (none if it has none, rather than keeping stale ones).
	d.quantiles = s.quantiles
}

// addBuckets adds two cumulative bucket layouts and returns the result, reusing
// a when both layouts have the same upper bounds (plain addition).
//
// When the layouts differ the result has the union of both sets of upper
// bounds. At each bound b, a side contributes its cumulative count at its own
// largest bound ≤ b (0 when it has none). This is exact at bounds both sides
// share, never counts an observation below a bound it may lie above, and
// keeps the result cumulative (non-decreasing), so it stays a valid histogram:
// at a bound only one side has, the other side's observations between its
// previous bound and b are counted in a later bucket (a lower estimate).
func addBuckets(a, b []bucket) []bucket {
	if sameBounds(a, b) {
		for i := range a {
			a[i].count += b[i].count
		}
		return a
	}
	out := make([]bucket, 0, len(a)+len(b))
	var i, j int
	var ca, cb float64 // each side's cumulative count at its largest bound ≤ current
	for i < len(a) || j < len(b) {
		var ub float64
		switch {
		case j == len(b) || (i < len(a) && a[i].upperBound < b[j].upperBound):
			ub, ca = a[i].upperBound, a[i].count
			i++
		case i == len(a) || b[j].upperBound < a[i].upperBound:
			ub, cb = b[j].upperBound, b[j].count
			j++
		default: // shared bound
			ub, ca, cb = a[i].upperBound, a[i].count, b[j].count
			i++
			j++
		}
		out = append(out, bucket{upperBound: ub, count: ca + cb})
	}
	return out
}

func sameBounds(a, b []bucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].upperBound != b[i].upperBound {
			return false
		}
	}
	return true
}

// integral reports whether every count of d can be exposed as an integer,
// which is how client libraries expose classic histograms.
func (d *distribution) integral() bool {
	const maxExact = 1 << 53
	ok := func(f float64) bool { return f >= 0 && f <= maxExact && f == math.Trunc(f) }
	if !ok(d.count) {
		return false
	}
	for _, b := range d.buckets {
		if !ok(b.count) {
			return false
		}
	}
	return true
}
