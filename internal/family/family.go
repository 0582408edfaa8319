// Package family is the Prometheus data model as plain Go values — metric
// families whose metrics are label sets with a value, a histogram or a
// summary — and its protobuf-delimited wire encoding, the push format of
// client_golang and the Pushgateway (io.prometheus.client.MetricFamily,
// https://github.com/prometheus/client_model/blob/master/io/prometheus/client/metrics.proto).
//
// It stands in for the generated client_model types so that the Lambda
// extension can read and write pushes without linking the protobuf runtime,
// which alone was a fifth of the layer binary: the codec is written with
// google.golang.org/protobuf/encoding/protowire, a leaf package.
//
// Fields the extension and the gateway do not use are not represented:
// exemplars, native-histogram buckets, units. The decoder skips them.
package family

import (
	"time"
)

// Type is a metric family's type, numbered as io.prometheus.client.MetricType.
type Type int32

// The metric types.
const (
	Counter        Type = 0
	Gauge          Type = 1
	Summary        Type = 2
	Untyped        Type = 3
	Histogram      Type = 4
	GaugeHistogram Type = 5
)

// String returns the type as the text exposition format spells it
// ("counter", "gauge", "summary", "untyped", "histogram",
// "gaugehistogram"), or "type(N)" for an unknown number.
func (t Type) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Summary:
		return "summary"
	case Untyped:
		return "untyped"
	case Histogram:
		return "histogram"
	case GaugeHistogram:
		return "gaugehistogram"
	}
	return "type(" + itoa(int64(t)) + ")"
}

// Family is a metric family: metrics sharing a name, a type and a help text.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Metrics []Metric
}

// Label is one label pair of a metric.
type Label struct {
	Name, Value string
}

// Metric is one series of a family (or, for histograms and summaries, the
// group of series one label set makes). Which fields apply depends on the
// family's type:
//
//   - Counter, Gauge, Untyped: Value.
//   - Histogram, GaugeHistogram: Count, Sum and Buckets.
//   - Summary: Count, Sum and Quantiles.
//
// Created applies to counters, histograms and summaries.
type Metric struct {
	Labels []Label

	Value float64 // counter, gauge or untyped value

	// Count is the sample count of a histogram or summary. It is a float
	// because gauge histograms and float histograms may carry fractional
	// counts; counts up to 2^53 are exact.
	Count float64
	Sum   float64 // sum of observations of a histogram or summary

	Buckets   []Bucket   // histogram buckets, as given (cumulative, ascending upper bounds when valid)
	Quantiles []Quantile // summary quantiles, as given

	// Created is when a counter, histogram or summary started counting; the
	// zero Time when unknown.
	Created time.Time

	// TimestampMs is the sample timestamp in Unix milliseconds, valid when
	// HasTimestamp is true. Pushes must not carry one; it is kept so that
	// the receiver can say so.
	TimestampMs  int64
	HasTimestamp bool
}

// Bucket is one cumulative histogram bucket: Count observations ≤ UpperBound.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Quantile is one summary quantile: the φ-quantile Quantile has value Value.
type Quantile struct {
	Quantile, Value float64
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
