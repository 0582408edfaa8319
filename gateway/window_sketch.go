package gateway

import "math"

// sketch is a quantile sketch with relative accuracy sketchAlpha, after
// DDSketch (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable quantile
// sketch with relative-error guarantees", VLDB 2019): a value v ≠ 0 counts in
// bin i = ⌈log_γ |v|⌉ of its sign, γ = (1+α)/(1-α), and is read back as
// 2γ^i/(γ+1), within α·|v| of v. Zeros are counted apart. Each sign keeps at
// most sketchMaxBins consecutive bins; values of smaller magnitude than the
// lowest kept bin are counted in it (so accuracy holds for magnitudes within a
// factor γ^(sketchMaxBins-1) ≈ 7.7·10^8 of the largest of the same sign).
//
// The zero value is an empty sketch.
type sketch struct {
	zero     uint64
	pos, neg binStore // neg holds |v| of negative values
}

const (
	sketchAlpha   = 0.01
	sketchMaxBins = 1024
)

var (
	sketchGamma    = (1 + sketchAlpha) / (1 - sketchAlpha)
	sketchLogGamma = math.Log(sketchGamma)
)

// add counts v, which must be finite.
func (s *sketch) add(v float64) {
	switch {
	case v > 0:
		s.pos.add(binIndex(v), 1)
	case v < 0:
		s.neg.add(binIndex(-v), 1)
	default:
		s.zero++
	}
}

// merge adds o's counts to s.
func (s *sketch) merge(o *sketch) {
	s.zero += o.zero
	s.pos.merge(&o.pos)
	s.neg.merge(&o.neg)
}

func (s *sketch) count() uint64 { return s.zero + s.pos.total() + s.neg.total() }

// valueAt returns the estimate of the value of rank r (0-based, in ascending
// order); r must be below s.count().
func (s *sketch) valueAt(r uint64) float64 {
	for i := len(s.neg.counts) - 1; i >= 0; i-- {
		c := s.neg.counts[i]
		if r < c {
			return -binValue(s.neg.offset + int32(i))
		}
		r -= c
	}
	if r < s.zero {
		return 0
	}
	r -= s.zero
	for i, c := range s.pos.counts {
		if r < c {
			return binValue(s.pos.offset + int32(i))
		}
		r -= c
	}
	// Not reached when r < s.count(); the largest bin is the best answer.
	if n := len(s.pos.counts); n > 0 {
		return binValue(s.pos.offset + int32(n-1))
	}
	return 0
}

// binIndex is the bin of a magnitude m > 0: γ^(i-1) < m ≤ γ^i.
func binIndex(m float64) int32 {
	return int32(math.Ceil(math.Log(m) / sketchLogGamma))
}

// binValue is the value a bin stands for, within α of any value in it.
func binValue(i int32) float64 {
	return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1)
}

// binStore counts values by bin index in a dense array of at most
// sketchMaxBins consecutive bins starting at offset, collapsing the lowest
// bins when the range would grow beyond that.
type binStore struct {
	offset int32
	counts []uint64
}

func (b *binStore) add(i int32, c uint64) {
	if len(b.counts) == 0 {
		b.offset = i
		b.counts = append(b.counts, c)
		return
	}
	lo, hi := b.offset, b.offset+int32(len(b.counts))-1
	if i >= lo && i <= hi {
		b.counts[i-lo] += c
		return
	}
	nlo, nhi := min(lo, i), max(hi, i)
	if nhi-nlo+1 > sketchMaxBins {
		nlo = nhi - sketchMaxBins + 1
	}
	i = max(i, nlo) // below the kept range: counted in its lowest bin
	if nlo != lo || nhi != hi {
		counts := make([]uint64, nhi-nlo+1)
		for j, cnt := range b.counts {
			counts[max(lo+int32(j), nlo)-nlo] += cnt
		}
		b.offset, b.counts = nlo, counts
	}
	b.counts[i-nlo] += c
}

func (b *binStore) merge(o *binStore) {
	if len(o.counts) == 0 {
		return
	}
	// Extend to both ends first, so the range is rebuilt at most twice.
	b.add(o.offset+int32(len(o.counts))-1, 0)
	b.add(o.offset, 0)
	for j, c := range o.counts {
		if c > 0 {
			b.add(o.offset+int32(j), c)
		}
	}
}

func (b *binStore) total() uint64 {
	var t uint64
	for _, c := range b.counts {
		t += c
	}
	return t
}
