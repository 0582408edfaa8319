// Package clearmode parses the clearmode label of pushed samples (Gravel
// Gateway's semantics, extended with windowed statistics): the one grammar
// that the gateway merges by and that the extension's local push endpoint
// checks against, so the two never disagree on what a push may carry.
//
//	clearmode  = "aggregate" | "sum" | "replace" | "family" | "info" | windowed
//	windowed   = stat [ "_" ] duration | percentile "_" duration
//	stat       = "mean" | "sum" | "min" | "max" | "median" | "count"
//	percentile = "p" number            ; 0 ≤ number ≤ 100
//	duration   = Prometheus duration   ; > 0 and ≤ 7d
package clearmode

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Label names that carry a sample's clear mode. Both spellings are accepted
// (Gravel Gateway's README writes clearmode, its author's talk clear_mode).
const (
	Label    = "clearmode"
	LabelAlt = "clear_mode"
)

// Kind is how a pushed sample merges into the stored series.
type Kind uint8

const (
	// Aggregate adds the pushed value to the stored one. Values "aggregate"
	// and "sum".
	Aggregate Kind = iota + 1
	// Replace makes the pushed value the stored one. Value "replace".
	Replace
	// Family makes the pushed samples the whole family within the group.
	// Values "family" and "info".
	Family
	// Windowed exposes a statistic of the values pushed within a sliding
	// window, such as "mean5m" or "p99_5m".
	Windowed
)

// String returns the canonical label value of k ("windowed" for Windowed).
func (k Kind) String() string {
	switch k {
	case Aggregate:
		return "aggregate"
	case Replace:
		return "replace"
	case Family:
		return "family"
	case Windowed:
		return "windowed"
	default:
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
}

// Stat is the statistic a windowed clear mode exposes.
type Stat uint8

const (
	Mean Stat = iota + 1
	Sum
	Min
	Max
	Count
	Quantile // median and p<N>
)

// MaxWindowLength is the longest window a windowed clear mode may ask for.
const MaxWindowLength = 7 * 24 * time.Hour

// Window is a parsed windowed clear mode. Windows compare with ==: "mean5m",
// "mean_5m" and "mean300s" are the same window.
type Window struct {
	Stat   Stat
	Q      float64 // Quantile: the quantile in [0, 1] (median: 0.5)
	Length time.Duration
}

// Parse parses a clear mode label value. A windowed value yields Windowed and
// its window (nil otherwise). A malformed windowed value, or any other
// unknown value, yields an error naming it.
func Parse(v string) (Kind, *Window, error) {
	switch v {
	case "aggregate", "sum":
		return Aggregate, nil, nil
	case "replace":
		return Replace, nil, nil
	case "family", "info":
		return Family, nil, nil
	}
	w, windowed, err := parseWindow(v)
	switch {
	case err != nil:
		return 0, nil, err
	case windowed:
		return Windowed, &w, nil
	}
	return 0, nil, fmt.Errorf("unknown clearmode %q (want aggregate, sum, replace, family, info, or a windowed statistic such as mean5m or p99_5m)", v)
}

// statNames are the non-percentile statistics, by label prefix.
var statNames = [...]struct {
	name string
	stat Stat
	q    float64
}{
	{"mean", Mean, 0},
	{"sum", Sum, 0},
	{"min", Min, 0},
	{"max", Max, 0},
	{"median", Quantile, 0.5},
	{"count", Count, 0},
}

var percentileRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// parseWindow parses a windowed clear mode: <stat>[_]<duration> with stat one
// of mean, sum, min, max, median, count, or p<percentile>_<duration>.
// windowed is false when v does not start like one (the caller reports an
// unknown clear mode); err names v when it starts like one but is malformed.
func parseWindow(v string) (w Window, windowed bool, err error) {
	var dur string
	if len(v) > 1 && v[0] == 'p' && v[1] >= '0' && v[1] <= '9' {
		num, d, ok := strings.Cut(v[1:], "_")
		if !ok {
			return w, true, fmt.Errorf("windowed clearmode %q: a percentile needs an underscore before the window length, as in p99_5m", v)
		}
		if !percentileRE.MatchString(num) {
			return w, true, fmt.Errorf("windowed clearmode %q: percentile %q is not a number", v, num)
		}
		// Parsing num·10⁻² gives the double nearest the quantile (0.999 for
		// 99.9), which p/100 would miss by rounding twice.
		q, err := strconv.ParseFloat(num+"e-2", 64)
		if err != nil || q > 1 {
			return w, true, fmt.Errorf("windowed clearmode %q: percentile %s is outside [0, 100]", v, num)
		}
		w, dur = Window{Stat: Quantile, Q: q}, d
	} else {
		for _, s := range statNames {
			if rest, ok := strings.CutPrefix(v, s.name); ok && rest != "" {
				w, dur, windowed = Window{Stat: s.stat, Q: s.q}, strings.TrimPrefix(rest, "_"), true
				break
			}
		}
		if !windowed {
			return w, false, nil
		}
	}
	d, err := parseDuration(dur)
	if err != nil {
		return w, true, fmt.Errorf("windowed clearmode %q: window length %q is not a Prometheus duration (such as 30s, 5m, 1h30m)", v, dur)
	}
	switch w.Length = d; {
	case w.Length <= 0:
		return w, true, fmt.Errorf("windowed clearmode %q: window length must be greater than 0", v)
	case w.Length > MaxWindowLength:
		return w, true, fmt.Errorf("windowed clearmode %q: window length %s exceeds the maximum 7d", v, dur)
	}
	return w, true, nil
}
