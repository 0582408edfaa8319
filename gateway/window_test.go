package gateway

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/prometheus-lambda/prometheus-lambda/internal/clearmode"
	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// testData: sorted 1 1 2 3 4 5 6 9.
var testData = []float64{3, 1, 4, 1, 5, 9, 2, 6}

func TestWindowStatisticsExact(t *testing.T) {
	tests := []struct {
		mode string
		want float64
	}{
		{"count5m", 8},
		{"sum5m", 31},
		{"mean5m", 31.0 / 8},
		{"min5m", 1},
		{"max5m", 9},
		{"median5m", 3.5}, // h = 3.5: 3 + 0.5·(4-3)
		{"p50_5m", 3.5},
		{"p0_5m", 1},
		{"p100_5m", 9},
		{"p25_5m", 1.75},    // h = 1.75: 1 + 0.75·(2-1)
		{"p90_5m", 6.9},     // h = 6.3: 6 + 0.3·(9-6)
		{"p99.9_5m", 8.979}, // h = 6.993: 6 + 0.993·3
		{"p12.5_5m", 1.0},   // h = 0.875: 1 + 0.875·(1-1)
		{"p75_5m", 5.25},    // h = 5.25: 5 + 0.25·(6-5)
	}
	t0 := time.Unix(1_700_000_000, 0).UnixNano()
	for _, tc := range tests {
		_, spec, err := clearmode.Parse(tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		w := newWindow(*spec)
		for i, v := range testData {
			w.add(t0+int64(i)*int64(time.Second), v)
		}
		got, ok := w.stat(t0 + 10*int64(time.Second))
		if !ok || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s over %v = %v, %v; want %v", tc.mode, testData, got, ok, tc.want)
		}
	}
}

// A single value and negative values.
func TestWindowStatisticsEdgeCases(t *testing.T) {
	w := newWindow(windowSpec{Stat: statQuantile, Q: 0.99, Length: time.Minute})
	w.add(0, -7)
	if got, ok := w.stat(1); !ok || got != -7 {
		t.Errorf("p99 of one value = %v, %v; want -7", got, ok)
	}
	w.add(1, -1)
	if got, _ := w.stat(2); math.Abs(got-(-1.06)) > 1e-12 { // -7 + 0.99·6
		t.Errorf("p99 of {-7, -1} = %v, want -1.06", got)
	}
	m := newWindow(windowSpec{Stat: statMean, Q: 0, Length: time.Minute})
	if _, ok := m.stat(0); ok {
		t.Error("an empty window has a statistic")
	}
}

// Values leave exactly when they age out: a value pushed at t is in the
// window at now iff now-length < t, i.e. during [t, t+length).
func TestWindowSlidingEviction(t *testing.T) {
	const L = int64(5 * time.Minute)
	w := newWindow(windowSpec{Stat: statSum, Q: 0, Length: 5 * time.Minute})
	w.add(0, 1)
	w.add(int64(time.Minute), 10)
	w.add(int64(2*time.Minute), 100)
	for _, tc := range []struct {
		at   int64
		want float64
	}{
		{0, 111}, // the clock stepped back: nothing leaves
		{L - 1, 111},
		{L, 110},
		{L + int64(time.Minute) - 1, 110},
		{L + int64(time.Minute), 100},
		{L + int64(2*time.Minute) - 1, 100},
	} {
		if got, ok := w.stat(tc.at); !ok || got != tc.want {
			t.Errorf("sum at %v = %v, %v; want %v", time.Duration(tc.at), got, ok, tc.want)
		}
	}
	if got, ok := w.stat(L + int64(2*time.Minute)); ok {
		t.Errorf("sum after the last value aged out = %v, want an empty window", got)
	}
	if w.ring != nil || w.n != 0 {
		t.Errorf("an emptied window keeps its ring (%d slots, %d values)", len(w.ring), w.n)
	}
	// Pushing again starts from the new value only.
	w.add(L+int64(3*time.Minute), 5)
	if got, _ := w.stat(L + int64(3*time.Minute)); got != 5 {
		t.Errorf("sum after a new push = %v, want 5", got)
	}
}

// A clock stepping back does not reorder values: an older time counts as the
// newest value's.
func TestWindowClockStepsBack(t *testing.T) {
	w := newWindow(windowSpec{Stat: statCount, Q: 0, Length: time.Minute})
	w.add(int64(time.Minute), 1)
	w.add(0, 2) // taken as pushed at 1m
	if got, _ := w.stat(int64(2*time.Minute) - 1); got != 2 {
		t.Errorf("count = %v, want 2", got)
	}
	if _, ok := w.stat(int64(2 * time.Minute)); ok {
		t.Error("values outlived their window")
	}
}

func TestSelectK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func(i, n int) float64{
		"random":     func(int, int) float64 { return r.NormFloat64() },
		"sorted":     func(i, _ int) float64 { return float64(i) },
		"reversed":   func(i, n int) float64 { return float64(n - i) },
		"few values": func(int, int) float64 { return float64(r.IntN(3)) },
		"organ pipe": func(i, n int) float64 { return float64(min(i, n-i)) },
	}
	for name, gen := range gens {
		for _, n := range []int{1, 2, 3, 10, 1001} {
			xs := make([]float64, n)
			for i := range xs {
				xs[i] = gen(i, n)
			}
			sorted := slices.Sorted(slices.Values(xs))
			for _, k := range []int{0, n / 3, n / 2, n - 1} {
				a := slices.Clone(xs)
				if got := selectK(a, k); got != sorted[k] {
					t.Fatalf("%s n=%d: selectK(k=%d) = %v, want %v", name, n, k, got, sorted[k])
				}
				if slices.Max(a[:k+1]) != a[k] || slices.Min(a[k:]) != a[k] {
					t.Fatalf("%s n=%d k=%d: not partitioned around a[k]", name, n, k)
				}
			}
		}
	}
}

// exactQuantile is the reference estimator: numpy's default "linear" method.
func exactQuantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	h := q * float64(len(s)-1)
	k := int(math.Floor(h))
	if k+1 >= len(s) {
		return s[k]
	}
	return s[k] + (h-float64(k))*(s[k+1]-s[k])
}

// Up to windowExactValues values a window is exact, percentiles included.
func TestWindowExactUpToCap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w := newWindow(windowSpec{Stat: statQuantile, Q: 0.99, Length: time.Hour})
	xs := make([]float64, windowExactValues)
	for i := range xs {
		xs[i] = math.Exp(r.NormFloat64())
		w.add(int64(i), xs[i])
	}
	if len(w.slices) != 0 {
		t.Fatalf("%d values made %d slices", len(xs), len(w.slices))
	}
	got, _ := w.stat(int64(len(xs)))
	if want := exactQuantile(xs, 0.99); got != want {
		t.Errorf("p99 of %d values = %v, want exactly %v", len(xs), got, want)
	}
}

// Beyond windowExactValues memory stays bounded and every statistic stays
// within its documented accuracy.
func TestWindowBoundedBeyondCap(t *testing.T) {
	const (
		pushes = 100_000
		length = 5 * time.Minute
		step   = int64(time.Millisecond) // 100,000 pushes in 100s: all in the window
	)
	dists := map[string]func(r *rand.Rand) float64{
		"lognormal":  func(r *rand.Rand) float64 { return math.Exp(2 * r.NormFloat64()) },
		"uniform":    func(r *rand.Rand) float64 { return r.Float64() * 1000 },
		"mixed sign": func(r *rand.Rand) float64 { return math.Round(r.NormFloat64()*100) / 10 },
		"negative":   func(r *rand.Rand) float64 { return -1 - r.ExpFloat64()*50 },
	}
	for name, dist := range dists {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			ws := map[clearmode.Stat]*window{}
			for _, st := range []clearmode.Stat{statMean, statSum, statMin, statMax, statCount} {
				ws[st] = newWindow(windowSpec{Stat: st, Q: 0.99, Length: length})
			}
			qs := []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1}
			pw := map[float64]*window{}
			all := []*window{}
			for _, q := range qs {
				pw[q] = newWindow(windowSpec{Stat: statQuantile, Q: q, Length: length})
				all = append(all, pw[q])
			}
			for _, w := range ws {
				all = append(all, w)
			}
			vals := make([]float64, pushes)
			for i := range vals {
				vals[i] = dist(r)
				for _, w := range all {
					w.add(int64(i)*step, vals[i])
				}
				if i%997 == 0 {
					for _, w := range all {
						checkBounded(t, w)
					}
				}
			}
			for _, w := range all {
				checkBounded(t, w)
			}
			now := int64(pushes) * step
			stat := func(w *window) float64 {
				v, ok := w.stat(now)
				if !ok {
					t.Fatal("empty window")
				}
				return v
			}
			sum := 0.0
			for _, v := range vals {
				sum += v
			}
			if got := stat(ws[statCount]); got != pushes {
				t.Errorf("count = %v, want %d", got, pushes)
			}
			if got := stat(ws[statSum]); math.Abs(got-sum) > 1e-9*math.Abs(sum)+1e-9 {
				t.Errorf("sum = %v, want %v", got, sum)
			}
			if got := stat(ws[statMean]); math.Abs(got-sum/pushes) > 1e-9*math.Abs(sum/pushes)+1e-9 {
				t.Errorf("mean = %v, want %v", got, sum/pushes)
			}
			if got := stat(ws[statMin]); got != slices.Min(vals) {
				t.Errorf("min = %v, want %v", got, slices.Min(vals))
			}
			if got := stat(ws[statMax]); got != slices.Max(vals) {
				t.Errorf("max = %v, want %v", got, slices.Max(vals))
			}
			for _, q := range qs {
				got, want := stat(pw[q]), exactQuantile(vals, q)
				if math.Abs(got-want) > sketchAlpha*math.Abs(want)+1e-12 {
					t.Errorf("p%v = %v, want %v within %v%%", 100*q, got, want, 100*sketchAlpha)
				}
			}
		})
	}
}

func checkBounded(t *testing.T, w *window) {
	t.Helper()
	if w.n > windowExactValues || len(w.ring) > windowExactValues {
		t.Fatalf("%d raw values in %d slots, cap %d", w.n, len(w.ring), windowExactValues)
	}
	if len(w.slices) > windowSlices+1 {
		t.Fatalf("%d slices, cap %d", len(w.slices), windowSlices+1)
	}
	for _, sl := range w.slices {
		if sl.sk != nil {
			checkSketchBins(t, sl.sk)
		}
	}
}

// checkSketchBins checks that each sign of sk spans at most sketchMaxBins
// bins: its memory is bounded whatever the values.
func checkSketchBins(t *testing.T, sk *ddsketch.DDSketch) {
	t.Helper()
	for sign, st := range map[string]store.Store{"positive": sk.GetPositiveValueStore(), "negative": sk.GetNegativeValueStore()} {
		if st.IsEmpty() {
			continue
		}
		lo, _ := st.MinIndex()
		hi, _ := st.MaxIndex()
		if hi-lo+1 > sketchMaxBins {
			t.Fatalf("sketch spans %d %s bins, cap %d", hi-lo+1, sign, sketchMaxBins)
		}
	}
}

// Beyond the cap, values leave the window with slice granularity: the count
// lies between the exact count and the count over one slice width more.
func TestWindowEvictionBeyondCap(t *testing.T) {
	const (
		length = time.Minute
		step   = int64(time.Millisecond)
		pushes = 3 * 60_000 // three window lengths at 1000/s: 60,000 in a window
	)
	w := newWindow(windowSpec{Stat: statCount, Q: 0, Length: length})
	width := w.sliceWidth()
	for i := range pushes {
		w.add(int64(i)*step, 1)
		checkBounded(t, w)
	}
	last := int64(pushes-1) * step
	for _, now := range []int64{last, last + width/2, last + int64(length)/2, last + int64(length) - width - 1, last + int64(length) - 1} {
		exact := func(from int64) float64 { // values pushed at t > from
			first := max(from/step+1, 0)
			return float64(max(int64(pushes)-first, 0))
		}
		lo, hi := exact(now-int64(length)), exact(now-int64(length)-width)
		got, ok := w.stat(now)
		if !ok || got < lo || got > hi {
			t.Errorf("count at last+%v = %v, want within [%v, %v]", time.Duration(now-last), got, lo, hi)
		}
		checkBounded(t, w)
	}
	if got, ok := w.stat(last + int64(length)); ok {
		t.Errorf("count after every value aged out = %v, want an empty window", got)
	}
}

func TestSketchRelativeAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 100_000 {
		v := math.Exp(r.NormFloat64()*10) * float64(1-2*r.IntN(2))
		s := newSketch()
		sketchAdd(s, v)
		if got := sketchValueAt(s, 0); math.Abs(got-v) > (sketchAlpha+1e-12)*math.Abs(v) {
			t.Fatalf("sketch of %v reads %v", v, got)
		}
	}
	s := newSketch()
	sketchAdd(s, 0)
	if sketchValueAt(s, 0) != 0 || s.GetCount() != 1 {
		t.Errorf("zero: %v, count %v", sketchValueAt(s, 0), s.GetCount())
	}
	// The largest finite magnitudes are beyond the library's range: they
	// count as its bound, within α of it.
	s = newSketch()
	sketchAdd(s, math.MaxFloat64)
	sketchAdd(s, -math.MaxFloat64)
	bound := s.MaxIndexableValue()
	if got := sketchValueAt(s, 1); math.Abs(got-bound) > sketchAlpha*bound {
		t.Errorf("MaxFloat64 reads %v, want its bound %v", got, bound)
	}
	if got := sketchValueAt(s, 0); math.Abs(got+bound) > sketchAlpha*bound {
		t.Errorf("-MaxFloat64 reads %v, want %v", got, -bound)
	}
}

// sketchValueAt reads every rank, of either sign or zero, as the value of
// that rank: values 10% apart (several bins; 200 of them span a factor
// 1.9·10⁸, within the sketch's uncollapsed range), so a neighbouring rank
// would be off by far more than α. With n = 23 or 25, k/(n−1)·(n−1) rounds below
// k for some k, which a plain quantile k/(n−1) would read one rank low.
func TestSketchRanks(t *testing.T) {
	for _, n := range []int{1, 2, 3, 23, 25, 100, 1001, 20_000} {
		for _, mix := range []string{"positive", "negative", "mixed"} {
			r := rand.New(rand.NewPCG(uint64(n), 3))
			vals := make([]float64, n)
			for i := range vals {
				v := math.Pow(1.1, float64(i%200-100))
				if mix == "negative" || mix == "mixed" && r.IntN(2) == 0 {
					v = -v
				}
				if mix == "mixed" && i%7 == 3 {
					v = 0
				}
				vals[i] = v
			}
			s := newSketch()
			for _, v := range vals {
				sketchAdd(s, v)
			}
			slices.Sort(vals)
			for k, want := range vals {
				if got := sketchValueAt(s, uint64(k)); math.Abs(got-want) > (sketchAlpha+1e-12)*math.Abs(want) {
					t.Fatalf("%s n=%d: rank %d reads %v, want %v", mix, n, k, got, want)
				}
			}
		}
	}
}

// After 100,000 values over 600 decades (about 69,000 bins per sign
// uncollapsed) the sketch still spans at most sketchMaxBins bins per sign:
// values more than γ^(sketchMaxBins-1) below the largest of their sign are
// read as the lowest kept bin, those within stay accurate.
func TestSketchCollapse(t *testing.T) {
	const n = 50_000 // of each sign
	s := newSketch()
	vals := make([]float64, n) // ascending, 1e-300 to 1e300
	for i := range vals {
		vals[i] = math.Pow(10, -300+600*float64(i)/(n-1))
		sketchAdd(s, vals[i])
		sketchAdd(s, -vals[i])
	}
	checkSketchBins(t, s)
	if s.GetCount() != 2*n {
		t.Fatalf("count %v, want %d", s.GetCount(), 2*n)
	}
	// Ranks: -vals descending below n, vals ascending from n.
	if got := sketchValueAt(s, 2*n-1); math.Abs(got-1e300) > sketchAlpha*1e300 {
		t.Errorf("largest = %v, want 1e300", got)
	}
	if got := sketchValueAt(s, 0); math.Abs(got+1e300) > sketchAlpha*1e300 {
		t.Errorf("smallest = %v, want -1e300", got)
	}
	// 1e292 is within γ^1023 ≈ 7.7e8 of 1e300: still accurate.
	i, _ := slices.BinarySearch(vals, 1e292)
	if got := sketchValueAt(s, uint64(n+i)); math.Abs(got-vals[i]) > sketchAlpha*vals[i] {
		t.Errorf("%v reads %v", vals[i], got)
	}
	if got := sketchValueAt(s, uint64(n-1-i)); math.Abs(got+vals[i]) > sketchAlpha*vals[i] {
		t.Errorf("%v reads %v", -vals[i], got)
	}
	// 1e-300 was collapsed into the lowest kept bin, within γ^1024 of 1e300.
	if got := sketchValueAt(s, n); got < 1e290 || got > 1e292 {
		t.Errorf("collapsed 1e-300 reads %v, want the lowest kept bin, about 1.3e291", got)
	}
}

// Memory of a pushed-then-stopped burst is released as the window empties.
func TestWindowReleasesMemory(t *testing.T) {
	w := newWindow(windowSpec{Stat: statMax, Q: 0, Length: time.Minute})
	for i := range 50_000 {
		w.add(int64(i), float64(i))
	}
	if len(w.slices) == 0 || w.n != windowExactValues {
		t.Fatalf("burst: %d raw, %d slices", w.n, len(w.slices))
	}
	w.stat(int64(time.Minute) + 50_000)
	if w.ring != nil || len(w.slices) != 0 {
		t.Errorf("an emptied window keeps %d slots and %d slices", len(w.ring), len(w.slices))
	}
}

func windowedGauge(name, mode string, v float64) fam.Family {
	return fam.Family{
		Name: name, Type: fam.Gauge,
		Metrics: []fam.Metric{{
			Labels: []fam.Label{{Name: ClearModeLabel, Value: mode}},
			Value:  v,
		}},
	}
}

// BenchmarkWindowPush pushes one windowed value per op into a store whose
// window already holds windowExactValues values (every push folds one).
func BenchmarkWindowPush(b *testing.B) {
	for _, mode := range []string{"mean5m", "p99_5m"} {
		b.Run(mode, func(b *testing.B) {
			var now int64
			s := NewMemoryStore(StoreOptions{Now: func() time.Time { return time.Unix(0, now) }})
			ctx := context.Background()
			grp := map[string]string{"job": "bench"}
			for i := range windowExactValues {
				now = int64(i) * int64(time.Millisecond)
				if err := s.Push(ctx, grp, []fam.Family{windowedGauge("w", mode, float64(i))}, false); err != nil {
					b.Fatal(err)
				}
			}
			fams := make([]fam.Family, 1024)
			for i := range fams {
				fams[i] = windowedGauge("w", mode, float64(i))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				now += int64(time.Millisecond)
				if err := s.Push(ctx, grp, fams[i%len(fams):i%len(fams)+1], false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWindowGather gathers one windowed series of windowExactValues
// values (exact) per op; the folded cases hold 10 times as many (the newest
// windowExactValues raw, the rest in slices).
func BenchmarkWindowGather(b *testing.B) {
	for _, bc := range []struct {
		mode   string
		values int
	}{{"mean5m", windowExactValues}, {"max5m", windowExactValues}, {"p99_5m", windowExactValues}, {"mean5m", 10 * windowExactValues}, {"p99_5m", 10 * windowExactValues}} {
		name, mode := bc.mode, bc.mode
		if bc.values > windowExactValues {
			name += "_folded"
		}
		b.Run(name, func(b *testing.B) {
			var now int64
			s := NewMemoryStore(StoreOptions{Now: func() time.Time { return time.Unix(0, now) }})
			r := rand.New(rand.NewPCG(1, 1))
			for i := range bc.values {
				now = int64(i) * int64(time.Millisecond)
				if err := s.Push(context.Background(), map[string]string{"job": "bench"}, []fam.Family{windowedGauge("w", mode, r.Float64())}, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Beyond windowExactValues the percentile still interpolates between the two
// neighbouring ranks: with 5,001 ones and 5,001 hundreds the median falls
// halfway between rank 5,000 (1) and rank 5,001 (100), at 50.5 — reading a
// single rank from the sketch would give about 1.
func TestWindowSketchInterpolatesBetweenRanks(t *testing.T) {
	w := newWindow(windowSpec{Stat: statQuantile, Q: 0.5, Length: time.Hour})
	const half = windowExactValues/2 + 1
	for i := range 2 * half {
		v := 1.0
		if i >= half {
			v = 100
		}
		w.add(int64(i), v)
	}
	if len(w.slices) == 0 {
		t.Fatal("no values were folded: the sketch path is not exercised")
	}
	got, ok := w.stat(int64(2 * half))
	if !ok || math.Abs(got-50.5) > 1 {
		t.Fatalf("median = %v, %v; want 50.5 (interpolated between the ranks, within the sketch's 1%%)", got, ok)
	}
}
