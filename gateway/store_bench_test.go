package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// Benchmarks of the store: parsing a push, merging it, scraping and memory.
//
//	go test -run '^$' -bench 'Parse|Push|Merge|Scrape1M|StoreMemory1M' -benchmem ./gateway/

// lambdaBody is a Lambda-shaped protobuf push (what the extension sends
// after five invocations): counters by status and error type, four
// histograms, a gauge and an info family; 68 samples in exposition.
func lambdaBody(tb testing.TB) ([]byte, http.Header) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	f := prometheus.WrapRegistererWith(prometheus.Labels{"function_name": "checkout-api", "function_version": "$LATEST", "region": "eu-west-1"}, reg)
	inv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aws_lambda_invocations_total", Help: "Invocations."}, []string{"status"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aws_lambda_errors_total", Help: "Errors."}, []string{"error_type"})
	cold := prometheus.NewCounter(prometheus.CounterOpts{Name: "aws_lambda_cold_starts_total", Help: "Cold starts."})
	durB := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	memB := prometheus.ExponentialBuckets(64<<20, 2, 8)
	h := func(n string, b []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: n, Help: n, Buckets: b})
	}
	dur, billed, mem, initD := h("aws_lambda_duration_seconds", durB), h("aws_lambda_billed_duration_seconds", durB), h("aws_lambda_max_memory_used_bytes", memB), h("aws_lambda_init_duration_seconds", durB)
	size := prometheus.NewGauge(prometheus.GaugeOpts{Name: "aws_lambda_memory_size_bytes", Help: "Memory size."})
	for _, c := range []prometheus.Collector{inv, errs, cold, dur, billed, mem, initD, size} {
		f.MustRegister(c)
	}
	for i, ms := range []float64{412, 38, 41, 1250, 35} {
		st := "success"
		if i == 3 {
			st = "error"
			errs.WithLabelValues("Runtime.ExitError").Inc()
		}
		inv.WithLabelValues(st).Inc()
		dur.Observe(ms / 1000)
		billed.Observe((ms + 1) / 1000)
		mem.Observe(float64(96+i*3) * (1 << 20))
	}
	cold.Inc()
	initD.Observe(0.287)
	size.Set(512 << 20)
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if mf.GetName() == "aws_lambda_memory_size_bytes" {
			for _, m := range mf.Metric {
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(ClearModeLabel), Value: proto.String("replace")})
			}
		}
		if err := enc.Encode(mf); err != nil {
			tb.Fatal(err)
		}
	}
	hd := http.Header{"Content-Type": {string(expfmt.NewFormat(expfmt.TypeProtoDelim))}}
	return buf.Bytes(), hd
}

func lambdaFamilies(tb testing.TB) []fam.Family {
	body, hd := lambdaBody(tb)
	fams, err := DecodeBody(bytes.NewReader(body), hd, DefaultMaxBodyBytes)
	if err != nil {
		tb.Fatal(err)
	}
	return fams
}

func BenchmarkParse(b *testing.B) {
	body, hd := lambdaBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBody(bytes.NewReader(body), hd, DefaultMaxBodyBytes); err != nil {
			b.Fatal(err)
		}
	}
}

func groupLabels(i int) map[string]string {
	return map[string]string{"job": "checkout-api", "instance": fmt.Sprintf("i-%08x", i)}
}

// BenchmarkPush: one Lambda-shaped POST (already decoded) into one of n
// stored groups, in parallel (the lock is part of what is measured).
func BenchmarkPush(b *testing.B) {
	fams := lambdaFamilies(b)
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			s := NewMemoryStore(StoreOptions{})
			groups := make([]map[string]string, n)
			for i := range groups {
				groups[i] = groupLabels(i)
				if err := s.Push(context.Background(), groups[i], fams, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(time.Now().UnixNano())
				for pb.Next() {
					i++
					if err := s.Push(context.Background(), groups[(i&0x7fffffff)%n], fams, false); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMerge: the merge of one pushed series into a stored one, by kind.
func BenchmarkMerge(b *testing.B) {
	hist := func() *series {
		d := &distribution{count: 5, sum: 1.7}
		for _, ub := range []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5} {
			d.buckets = append(d.buckets, bucket{ub, 3})
		}
		return &series{dist: d, mode: ClearModeAggregate}
	}
	b.Run("counter", func(b *testing.B) {
		dst, src := &series{value: 1}, &series{value: 1, mode: ClearModeAggregate}
		for b.Loop() {
			merge(dst, src)
		}
	})
	b.Run("histogram", func(b *testing.B) {
		dst, src := hist(), hist()
		for b.Loop() {
			merge(dst, src)
		}
	})
}

// fillStore stores 10,000 groups × 100 series (10 families of 10 counter
// or gauge series) with Lambda-ish labels: job and instance grouping labels,
// pushed function_version, region and status.
func fillStore(tb testing.TB, s *MemoryStore) int {
	tb.Helper()
	const groups, families, perFamily = 10_000, 10, 10
	fams := make([]fam.Family, families)
	for i := range fams {
		typ := fam.Counter
		name := fmt.Sprintf("app_requests_%d_total", i)
		if i%2 == 1 {
			typ, name = fam.Gauge, fmt.Sprintf("app_inflight_%d", i)
		}
		fams[i] = fam.Family{Name: name, Type: typ, Help: "Benchmark family."}
		for j := range perFamily {
			fams[i].Metrics = append(fams[i].Metrics, fam.Metric{Value: float64(j), Labels: []fam.Label{
				{Name: "function_version", Value: "42"},
				{Name: "region", Value: "eu-west-1"},
				{Name: "status", Value: fmt.Sprintf("%d", 200+j)},
			}})
		}
	}
	for g := range groups {
		if err := s.Push(context.Background(), groupLabels(g), fams, false); err != nil {
			tb.Fatal(err)
		}
	}
	return groups * families * perFamily
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkStoreMemory1M: heap in use per stored series, 1,000,000 series.
func BenchmarkStoreMemory1M(b *testing.B) {
	for b.Loop() {
		before := heapInuse()
		s := NewMemoryStore(StoreOptions{})
		n := fillStore(b, s)
		after := heapInuse()
		b.ReportMetric(float64(after-before)/float64(n), "bytes/series")
		runtime.KeepAlive(s)
	}
}

// BenchmarkScrape1M: one text-format scrape of 1,000,000 stored series.
func BenchmarkScrape1M(b *testing.B) {
	s := NewMemoryStore(StoreOptions{})
	before := heapInuse()
	n := fillStore(b, s)
	b.ReportMetric(float64(heapInuse()-before)/float64(n), "bytes/series")
	gw, err := New(s, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, accept := range []string{"text/plain", "application/openmetrics-text; version=1.0.0"} {
		b.Run(strings.Fields(accept)[0], func(b *testing.B) {
			var size int
			start := time.Now()
			for b.Loop() {
				w := &countingWriter{h: http.Header{}}
				r, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
				r.Header.Set("Accept", accept)
				gw.ServeHTTP(w, r)
				size = w.n
			}
			b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "seconds/scrape")
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}

// countingWriter is a ResponseWriter that only counts.
type countingWriter struct {
	h    http.Header
	n    int
	code int
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
