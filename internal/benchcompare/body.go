package main

import (
	"bytes"
	"fmt"
	"math"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// The extension's bucket layouts (dispatcher/metrics.go).
const bytesPerMB = 1 << 20

var (
	durationBuckets     = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900}
	initDurationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	memoryBuckets       = []float64{32 * bytesPerMB, 64 * bytesPerMB, 128 * bytesPerMB, 256 * bytesPerMB, 512 * bytesPerMB,
		1024 * bytesPerMB, 2048 * bytesPerMB, 4096 * bytesPerMB, 8192 * bytesPerMB, 10240 * bytesPerMB}
)

// clearmodeLabel is the label the extension puts on every pushed sample.
const clearmodeLabel = "clearmode"

// Body is one encoded push and what it holds.
type Body struct {
	Bytes       []byte
	ContentType string
	Format      string // "protobuf" or "text"
	Families    int
	Samples     int // exposition samples: each bucket, _sum and _count count one
}

// lambdaFamilies returns what one Lambda environment pushes after a handful
// of invocations, the way the extension builds it: its families gathered
// from a client_golang registry with function_name, function_version and
// region on every series, each sample labelled with its clearmode
// (aggregate for increments, replace for the gauge), plus an info family
// pushed with clearmode="family" (the latest push's label sets are the
// family in that group).
func lambdaFamilies(function string) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewRegistry()
	f := prometheus.WrapRegistererWith(prometheus.Labels{
		"function_name":    function,
		"function_version": "$LATEST",
		"region":           "eu-west-1",
	}, reg)
	invocations := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aws_lambda_invocations_total", Help: "Invocations by platform.report status (success, error, failure, timeout)."}, []string{"status"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aws_lambda_errors_total", Help: "Invocations that did not succeed, by platform.report errorType."}, []string{"error_type"})
	coldStarts := prometheus.NewCounter(prometheus.CounterOpts{Name: "aws_lambda_cold_starts_total", Help: "Invocations that paid for an init phase (platform.report carrying initDurationMs)."})
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	duration := hist("aws_lambda_duration_seconds", "Invocation duration (platform.report durationMs).", durationBuckets)
	billed := hist("aws_lambda_billed_duration_seconds", "Billed invocation duration (platform.report billedDurationMs).", durationBuckets)
	maxMem := hist("aws_lambda_max_memory_used_bytes", "Peak memory used by the execution environment during an invocation (platform.report maxMemoryUsedMB).", memoryBuckets)
	initDur := hist("aws_lambda_init_duration_seconds", "Init phase duration of cold starts (platform.report initDurationMs).", initDurationBuckets)
	memSize := prometheus.NewGauge(prometheus.GaugeOpts{Name: "aws_lambda_memory_size_bytes", Help: "Memory configured for the function (platform.report memorySizeMB)."})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aws_lambda_function_info", Help: "The function's runtime and architecture."}, []string{"runtime", "architecture", clearmodeLabel})
	for _, c := range []prometheus.Collector{invocations, errs, coldStarts, duration, billed, maxMem, initDur, memSize, info} {
		if err := f.Register(c); err != nil {
			return nil, err
		}
	}

	// Five invocations since the last push: one cold start, one error.
	for i, ms := range []float64{412, 38, 41, 1250, 35} {
		status := "success"
		if i == 3 {
			status = "error"
			errs.WithLabelValues("Runtime.ExitError").Inc()
		}
		invocations.WithLabelValues(status).Inc()
		duration.Observe(ms / 1000)
		billed.Observe(float64(int(ms)+1) / 1000)
		maxMem.Observe(float64(96+i*3) * bytesPerMB)
	}
	coldStarts.Inc()
	initDur.Observe(0.287)
	memSize.Set(512 * bytesPerMB)
	info.WithLabelValues("python3.13", "arm64", "family").Set(1)

	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		mode := "aggregate"
		switch mf.GetName() {
		case "aws_lambda_memory_size_bytes":
			mode = "replace"
		case "aws_lambda_function_info":
			continue // carries clearmode="family" already
		}
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(clearmodeLabel), Value: proto.String(mode)})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
	}
	return mfs, nil
}

// BuildBody encodes the Lambda-shaped push in format "protobuf" (delimited,
// what the extension and client_golang's push send) or "text" (0.0.4).
func BuildBody(format, function string) (*Body, error) {
	var fmtType expfmt.Format
	var contentType string
	switch format {
	case "protobuf":
		fmtType = expfmt.NewFormat(expfmt.TypeProtoDelim)
		contentType = string(fmtType)
	case "text":
		fmtType = expfmt.NewFormat(expfmt.TypeTextPlain)
		contentType = "text/plain; version=0.0.4; charset=utf-8"
	default:
		return nil, fmt.Errorf("unknown --format %q (protobuf or text)", format)
	}
	mfs, err := lambdaFamilies(function)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, fmtType)
	samples := 0
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
		samples += countSamples(mf)
	}
	return &Body{Bytes: buf.Bytes(), ContentType: contentType, Format: format, Families: len(mfs), Samples: samples}, nil
}

// countSamples counts a family's exposition samples: one per counter, gauge
// or untyped series; buckets (with +Inf), _sum and _count for histograms;
// quantiles, _sum and _count for summaries.
func countSamples(mf *dto.MetricFamily) int {
	n := 0
	for _, m := range mf.Metric {
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			n += 2 + len(m.GetHistogram().GetBucket())
			if b := m.GetHistogram().GetBucket(); len(b) == 0 || !isInf(b[len(b)-1].GetUpperBound()) {
				n++ // the implicit +Inf bucket
			}
		case dto.MetricType_SUMMARY:
			n += 2 + len(m.GetSummary().GetQuantile())
		default:
			n++
		}
	}
	return n
}

func isInf(f float64) bool { return math.IsInf(f, +1) }
