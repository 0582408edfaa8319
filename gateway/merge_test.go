package gateway

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestAddBuckets(t *testing.T) {
	b := func(pairs ...float64) []bucket {
		var out []bucket
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, bucket{pairs[i], pairs[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		a, b []bucket
		want []bucket
	}{
		{"same layout adds", b(1, 1, 2, 3), b(1, 2, 2, 2), b(1, 3, 2, 5)},
		{"disjoint interleaved", b(1, 1, 4, 3), b(2, 2, 8, 6), b(1, 1, 2, 3, 4, 5, 8, 9)},
		{"one side empty", nil, b(1, 2, 2, 2), b(1, 2, 2, 2)},
		{"both empty", nil, nil, nil},
		{"subset", b(1, 1, 2, 2, 4, 3), b(2, 5), b(1, 1, 2, 7, 4, 8)},
	}
	for _, tc := range tests {
		got := addBuckets(slices.Clone(tc.a), tc.b)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: addBuckets(%v, %v) = %v, want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
	}
}

// Random layouts: the union stays cumulative, is exact on shared bounds and
// never exceeds the summed totals.
func TestAddBucketsProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	layout := func() []bucket {
		var out []bucket
		c := 0.0
		for ub := 0.5; ub < 10; ub += 0.5 {
			if r.IntN(3) == 0 {
				c += float64(r.IntN(5))
				out = append(out, bucket{ub, c})
			}
		}
		return out
	}
	last := func(bs []bucket, ub float64) float64 {
		v := 0.0
		for _, x := range bs {
			if x.upperBound <= ub {
				v = x.count
			}
		}
		return v
	}
	for range 500 {
		a, b := layout(), layout()
		got := addBuckets(slices.Clone(a), b)
		for i, x := range got {
			if i > 0 && (x.upperBound <= got[i-1].upperBound || x.count < got[i-1].count) {
				t.Fatalf("not cumulative: %v + %v = %v", a, b, got)
			}
			if want := last(a, x.upperBound) + last(b, x.upperBound); x.count != want {
				t.Fatalf("bound %v: %v, want %v (%v + %v)", x.upperBound, x.count, want, a, b)
			}
		}
		if len(got) != len(unionBounds(a, b)) {
			t.Fatalf("bounds of %v are not the union of %v and %v", got, a, b)
		}
	}
}

func unionBounds(a, b []bucket) []float64 {
	var out []float64
	for _, x := range append(slices.Clone(a), b...) {
		out = append(out, x.upperBound)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestMergeModes(t *testing.T) {
	hist := func(count, sum float64, bs ...bucket) *series {
		return &series{mode: ClearModeAggregate, dist: &distribution{count: count, sum: sum, buckets: bs}}
	}
	dst := hist(2, 3, bucket{1, 1})
	merge(dst, hist(1, 1, bucket{1, 1}))
	if dst.dist.count != 3 || dst.dist.sum != 4 || dst.dist.buckets[0].count != 2 {
		t.Errorf("aggregate histogram: %+v", dst.dist)
	}
	src := hist(7, 7, bucket{5, 7})
	src.mode = ClearModeReplace
	merge(dst, src)
	if dst.dist != src.dist || dst.mode != ClearModeReplace {
		t.Errorf("replace did not take the pushed value: %+v", dst.dist)
	}

	sum := &series{mode: ClearModeAggregate, dist: &distribution{count: 1, sum: 1, quantiles: []quantile{{0.5, 1}}}}
	merge(sum, &series{mode: ClearModeAggregate, dist: &distribution{count: 2, sum: 5, quantiles: []quantile{{0.9, 4}}}})
	if sum.dist.count != 3 || sum.dist.sum != 6 || len(sum.dist.quantiles) != 1 || sum.dist.quantiles[0] != (quantile{0.9, 4}) {
		t.Errorf("aggregate summary: %+v", sum.dist)
	}

	scalar := &series{mode: ClearModeAggregate, value: 1}
	merge(scalar, &series{mode: ClearModeAggregate, value: math.Inf(1)})
	if !math.IsInf(scalar.value, 1) {
		t.Errorf("aggregate scalar: %v", scalar.value)
	}
}

func TestDistributionIntegral(t *testing.T) {
	if !(&distribution{count: 3, buckets: []bucket{{1, 2}}}).integral() {
		t.Error("integral counts reported as float")
	}
	if (&distribution{count: 2.5}).integral() || (&distribution{count: 3, buckets: []bucket{{1, 0.5}}}).integral() {
		t.Error("float counts reported as integral")
	}
}
