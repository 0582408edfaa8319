package gateway

// Windowed statistics: clear modes such as mean5m or p99_5m expose a
// statistic of the values pushed for a series within a sliding window. The
// grammar, the estimators and the accuracy are documented in doc.go
// ("Windowed statistics").

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
)

const (
	// windowExactValues is how many values a window keeps raw. Statistics are
	// exact while a window holds at most this many values; older values
	// beyond it are folded into time slices.
	windowExactValues = 10_000
	// windowSlices is the number of time slices per window length that values
	// beyond windowExactValues are summarized in: they leave the window with
	// a granularity of length/windowSlices.
	windowSlices = 60
	// windowMinRing is the smallest raw ring allocated.
	windowMinRing = 4
	// sketchAlpha is the relative accuracy of the percentile sketches.
	sketchAlpha = 0.01
	// sketchMaxBins is the most bins a sketch keeps per sign; beyond, its
	// lowest bins are collapsed.
	sketchMaxBins = 1024
)

// windowSpec is a parsed windowed clear mode (internal/clearmode's grammar).
type windowSpec = clearmode.Window

// The statistics a window exposes.
const (
	statMean     = clearmode.Mean
	statSum      = clearmode.Sum
	statMin      = clearmode.Min
	statMax      = clearmode.Max
	statCount    = clearmode.Count
	statQuantile = clearmode.Quantile // median and p<N>
)

// checkWindowed rejects a windowed clear mode on a type other than gauge and
// untyped, and values that cannot enter a window.
func checkWindowed(typ dto.MetricType, value float64, mode string) error {
	if typ != dto.MetricType_GAUGE && typ != dto.MetricType_UNTYPED {
		return fmt.Errorf("windowed clearmode %q applies to gauge and untyped samples, not to a %s (a statistic of pushed values is not a %s: push it as a gauge)",
			mode, typeName(typ), typeName(typ))
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return fmt.Errorf("windowed clearmode %q: value %v cannot enter a window (must be finite)", mode, value)
	}
	return nil
}

// window holds the values pushed for a windowed series: the newest
// windowExactValues raw, older ones folded into time slices, both oldest
// first. A pushed series carries a window holding just its pushed value.
//
// Pushes change a window under the store's write lock; Gather evicts aged-out
// values under the read lock, so mu serializes concurrent gathers.
type window struct {
	spec windowSpec

	mu     sync.Mutex
	last   int64         // newest timestamp (Unix ns); later ones are never older
	ring   []point       // raw values, a ring of len(ring) slots
	head   int           // index of the oldest raw value
	n      int           // raw values held
	slices []windowSlice // summaries of values older than the raw ones
}

type point struct {
	t int64 // Unix ns
	v float64
}

// windowSlice summarizes the values whose time t has floor(t/width) == key.
type windowSlice struct {
	key, newest   int64 // newest: time of its newest value
	count         uint64
	sum, min, max float64
	sk            *ddsketch.DDSketch // percentile modes only
}

func newWindow(spec windowSpec) *window {
	return &window{spec: spec, last: math.MinInt64}
}

// stampWindows makes now the time of every pushed windowed value. Push calls
// it under the lock once the push is checked, before applying it.
func stampWindows(pushed []*pushFamily, now time.Time) {
	t := now.UnixNano()
	for _, pf := range pushed {
		for _, se := range pf.series {
			if se.win != nil {
				se.win.add(t, se.value)
			}
		}
	}
}

// mergeWindow merges src into dst when either is windowed and reports
// whether it did. With the same window spec the pushed value enters dst's
// window. Any other change of mode (to, from or between windowed modes)
// restarts the series from the push, as if it were new: the window and the
// stored value are dropped.
func mergeWindow(dst, src *series) bool {
	if dst.win == nil && src.win == nil {
		return false
	}
	if dst.win != nil && src.win != nil && dst.win.spec == src.win.spec {
		dst.mode = src.mode
		dst.value = src.value
		dst.win.add(src.win.last, src.value)
		return true
	}
	*dst = *src
	return true
}

// exposed returns se as Gather shows it at now: se itself unless windowed;
// for a windowed series a copy holding the window's statistic, or nil when
// the window is empty.
func exposed(se *series, now time.Time) *series {
	if se.win == nil {
		return se
	}
	v, ok := se.win.stat(now.UnixNano())
	if !ok {
		return nil
	}
	cp := *se
	cp.value, cp.win = v, nil
	return &cp
}

// add appends the value v pushed at t (Unix ns), evicting aged-out values.
// A t older than the newest value's (a clock stepping back) is taken as the
// newest's, so values stay in time order.
func (w *window) add(t int64, v float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t = max(t, w.last)
	w.last = t
	w.evict(t)
	if w.n == len(w.ring) {
		if len(w.ring) < windowExactValues {
			w.resize(min(max(2*len(w.ring), windowMinRing), windowExactValues))
		} else {
			w.fold()
		}
	}
	w.ring[(w.head+w.n)%len(w.ring)] = point{t, v}
	w.n++
}

// evict drops the values that are out of the window at now: a value pushed
// at t is in the window while now-length < t, so it leaves at t+length
// exactly. A slice leaves when its newest value does. The raw ring shrinks
// when mostly empty, so a burst does not hold memory forever.
func (w *window) evict(now int64) {
	cutoff := now - int64(w.spec.Length)
	for w.n > 0 && w.ring[w.head].t <= cutoff {
		w.head = (w.head + 1) % len(w.ring)
		w.n--
	}
	drop := 0
	for drop < len(w.slices) && w.slices[drop].newest <= cutoff {
		drop++
	}
	if drop > 0 {
		w.slices = slices.Delete(w.slices, 0, drop)
	}
	switch {
	case w.n == 0 && len(w.slices) == 0:
		w.ring, w.head = nil, 0
	case len(w.ring) > 64 && w.n <= len(w.ring)/4:
		w.resize(len(w.ring) / 2)
	}
}

// resize moves the raw values into a ring of size slots, oldest first.
func (w *window) resize(size int) {
	ring := make([]point, size)
	for i := range w.n {
		ring[i] = w.ring[(w.head+i)%len(w.ring)]
	}
	w.ring, w.head = ring, 0
}

// sliceWidth is the time span of a slice: length/windowSlices rounded up, so
// a window overlaps at most windowSlices+1 slices.
func (w *window) sliceWidth() int64 {
	l := int64(w.spec.Length)
	return (l + windowSlices - 1) / windowSlices
}

// fold moves the oldest raw value into its time slice.
func (w *window) fold() {
	p := w.ring[w.head]
	w.head = (w.head + 1) % len(w.ring)
	w.n--
	width := w.sliceWidth()
	key := p.t / width
	if p.t%width < 0 {
		key-- // floor division for times before 1970
	}
	if k := len(w.slices); k == 0 || w.slices[k-1].key != key {
		sl := windowSlice{key: key, min: p.v, max: p.v}
		if w.spec.Stat == statQuantile {
			sl.sk = newSketch()
		}
		w.slices = append(w.slices, sl)
	}
	sl := &w.slices[len(w.slices)-1]
	sl.newest = p.t
	sl.count++
	sl.sum += p.v
	sl.min = min(sl.min, p.v)
	sl.max = max(sl.max, p.v)
	if sl.sk != nil {
		sketchAdd(sl.sk, p.v)
	}
}

// segments returns the raw values, oldest first, as the ring's two segments.
func (w *window) segments() [2][]point {
	if end := w.head + w.n; end <= len(w.ring) {
		return [2][]point{w.ring[w.head:end], nil}
	}
	return [2][]point{w.ring[w.head:], w.ring[:w.head+w.n-len(w.ring)]}
}

// each calls f for every raw value, oldest first.
func (w *window) each(f func(v float64)) {
	for _, seg := range w.segments() {
		for _, p := range seg {
			f(p.v)
		}
	}
}

// stat evicts the values aged out at now and returns the window's statistic,
// false when the window is empty.
func (w *window) stat(now int64) (float64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.evict(now)
	count := uint64(w.n)
	for i := range w.slices {
		count += w.slices[i].count
	}
	if count == 0 {
		return 0, false
	}
	switch w.spec.Stat {
	case statCount:
		return float64(count), true
	case statSum, statMean:
		var sum float64
		for i := range w.slices {
			sum += w.slices[i].sum
		}
		for _, seg := range w.segments() {
			for _, p := range seg {
				sum += p.v
			}
		}
		if w.spec.Stat == statMean {
			return sum / float64(count), true
		}
		return sum, true
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range w.slices {
		lo, hi = min(lo, w.slices[i].min), max(hi, w.slices[i].max)
	}
	for _, seg := range w.segments() {
		for _, p := range seg { // Values are never NaN: plain comparisons.
			if p.v < lo {
				lo = p.v
			}
			if p.v > hi {
				hi = p.v
			}
		}
	}
	switch w.spec.Stat {
	case statMin:
		return lo, true
	case statMax:
		return hi, true
	}
	if len(w.slices) == 0 {
		return w.quantileExact(), true
	}
	return w.quantileSketch(count, lo, hi), true
}

// scratch holds buffers for exact percentiles, so gathers do not allocate a
// copy of every window.
var scratch = sync.Pool{New: func() any { return new([]float64) }}

// quantileExact is the linear interpolation between closest ranks (numpy's
// default, R's type 7) over the raw values: with the n values sorted
// x[0] ≤ … ≤ x[n-1] and h = q(n-1), x[⌊h⌋] + (h-⌊h⌋)(x[⌊h⌋+1]-x[⌊h⌋]).
func (w *window) quantileExact() float64 {
	buf := scratch.Get().(*[]float64)
	defer scratch.Put(buf)
	xs := (*buf)[:0]
	w.each(func(v float64) { xs = append(xs, v) })
	*buf = xs
	return interpolate(xs, w.spec.Q)
}

// interpolate returns the q quantile of xs (reordered in place) by linear
// interpolation between closest ranks.
func interpolate(xs []float64, q float64) float64 {
	h := q * float64(len(xs)-1)
	k := int(h)
	lo := selectK(xs, k)
	if frac := h - float64(k); frac > 0 && k+1 < len(xs) {
		// selectK left xs[k+1:] ≥ xs[k]: the next rank is their minimum.
		return lo + frac*(slices.Min(xs[k+1:])-lo)
	}
	return lo
}

// selectK reorders a so that a[k] is its k-th smallest value (0-based), every
// value before it ≤ a[k] and every value after it ≥ a[k], and returns a[k]:
// quickselect with a median-of-three pivot, sorting the rest when it
// partitions badly (so it stays O(n log n) at worst). Values must not be NaN.
func selectK(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for budget := 2*bits.Len(uint(len(a))) + 4; lo < hi; budget-- {
		if budget == 0 {
			slices.Sort(a[lo : hi+1])
			break
		}
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// a[lo..j] ≤ p, a[j+1..i-1] = p, a[i..hi] ≥ p.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}

// quantileSketch estimates the q quantile over the slices and the raw values
// with the same interpolation as quantileExact, reading the ranks from one
// sketch of all of them; the result is clamped to the exact [lo, hi].
func (w *window) quantileSketch(count uint64, lo, hi float64) float64 {
	sk := newSketch()
	for i := range w.slices {
		// Cannot fail: every sketch has the same index mapping.
		_ = sk.MergeWith(w.slices[i].sk)
	}
	w.each(func(v float64) { sketchAdd(sk, v) })
	h := w.spec.Q * float64(count-1)
	k := uint64(h)
	v := sketchValueAt(sk, k)
	if frac := h - float64(k); frac > 0 && k+1 < count {
		v += frac * (sketchValueAt(sk, k+1) - v)
	}
	return min(max(v, lo), hi)
}

// newSketch returns an empty DDSketch (github.com/DataDog/sketches-go) of
// relative accuracy sketchAlpha: a value v ≠ 0 counts in the bin
// ⌊log_γ |v|⌋ of its sign, γ = (1+α)/(1−α), and is read back within α·|v| of
// v. Each sign keeps at most sketchMaxBins bins (8 bytes each), collapsing
// the lowest: values of smaller magnitude than the lowest kept bin are read
// as that bin, so accuracy holds for magnitudes within a factor
// γ^(sketchMaxBins−1) ≈ 7.7·10⁸ of the largest of the same sign.
func newSketch() *ddsketch.DDSketch {
	sk, err := ddsketch.LogCollapsingLowestDenseDDSketch(sketchAlpha, sketchMaxBins)
	if err != nil {
		panic(err) // only for an accuracy outside (0, 1)
	}
	return sk
}

// sketchAdd counts v, which must be finite, in sk. Magnitudes beyond the
// library's range (sk.MaxIndexableValue(), ≈1.27·10³⁰⁸) count as that bound.
func sketchAdd(sk *ddsketch.DDSketch, v float64) {
	m := sk.MaxIndexableValue()
	// Cannot fail: v is neither NaN nor beyond ±m.
	_ = sk.Add(min(max(v, -m), m))
}

// sketchValueAt returns sk's estimate of the value of rank k (0-based, in
// ascending order; k below the count). The library's GetValueAtQuantile(q)
// reads rank r = q·(n−1) without interpolating: for a fractional r, rank ⌊r⌋
// among zeros and positive values, rank ⌈r⌉ among negative ones. Asking for
// q = k/(n−1) can read rank k−1 (k = 15 of n = 23: q·(n−1) rounds to a hair
// below 15), so rank k is asked with a half-rank margin that rounding cannot
// cross: r = k+½ at or above the negative values, r = k−½ among them, q
// clamped to [0, 1].
func sketchValueAt(sk *ddsketch.DDSketch, k uint64) float64 {
	r := float64(k) + 0.5
	if float64(k) < sk.GetNegativeValueStore().TotalCount() {
		r = float64(k) - 0.5
	}
	q := 0.0
	if m := sk.GetCount() - 1; m > 0 {
		q = min(max(r/m, 0), 1)
	}
	// Cannot fail: q is in [0, 1] and sk holds at least k+1 values.
	v, _ := sk.GetValueAtQuantile(q)
	return v
}
