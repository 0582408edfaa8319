package family

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
)

// benchFamilies is a realistic push: 20 families — 8 counters, 4 gauges,
// 5 histograms with 16 buckets and 3 summaries — of 1 to 6 series with 1 to
// 3 labels, counters and histograms with created timestamps.
func benchFamilies() []Family {
	ct := time.Date(2025, 1, 2, 3, 4, 5, 678000000, time.UTC)
	series := func(i int) [][]Label {
		n := 1 + i%6
		out := make([][]Label, n)
		for j := range out {
			ls := []Label{{"function_name", "checkout-service"}, {"code", itoa(int64(200 + j))}, {"method", "POST"}}
			out[j] = ls[:1+(i+j)%3]
		}
		return out
	}
	var fams []Family
	add := func(name string, t Type, mk func(i, j int, ls []Label) Metric) {
		i := len(fams)
		f := Family{Name: name, Help: "Help text for " + name + ".", Type: t}
		for j, ls := range series(i) {
			f.Metrics = append(f.Metrics, mk(i, j, ls))
		}
		fams = append(fams, f)
	}
	for k := range 8 {
		add("lambda_requests_"+itoa(int64(k))+"_total", Counter, func(i, j int, ls []Label) Metric {
			return Metric{Labels: ls, Value: float64(1000*i + j), Created: ct}
		})
	}
	for k := range 4 {
		add("lambda_memory_"+itoa(int64(k))+"_bytes", Gauge, func(i, j int, ls []Label) Metric {
			return Metric{Labels: ls, Value: 1.5e8 + float64(i*j)}
		})
	}
	for k := range 5 {
		add("lambda_duration_"+itoa(int64(k))+"_seconds", Histogram, func(i, j int, ls []Label) Metric {
			m := Metric{Labels: ls, Count: 4096, Sum: 812.25, Created: ct}
			for b := range 16 {
				m.Buckets = append(m.Buckets, Bucket{UpperBound: 0.001 * math.Pow(2, float64(b)), Count: float64(256 * (b + 1))})
			}
			m.Buckets[15].UpperBound = math.Inf(1)
			return m
		})
	}
	for k := range 3 {
		add("lambda_payload_"+itoa(int64(k))+"_bytes", Summary, func(i, j int, ls []Label) Metric {
			return Metric{Labels: ls, Count: 77, Sum: 123456, Created: ct, Quantiles: []Quantile{{0.5, 1024}, {0.9, 4096}, {0.99, 16384}}}
		})
	}
	return fams
}

func BenchmarkAppendDelimited(b *testing.B) {
	fams := benchFamilies()
	var buf []byte
	for i := range fams {
		buf = AppendDelimited(buf, &fams[i])
	}
	size := int64(len(buf))
	b.Run("family", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = buf[:0]
			for i := range fams {
				buf = AppendDelimited(buf, &fams[i])
			}
		}
	})
	b.Run("protodelim-dto", func(b *testing.B) {
		mfs := make([]*dto.MetricFamily, len(fams))
		for i := range fams {
			mfs[i] = toDTO(&fams[i])
		}
		b.SetBytes(size)
		b.ReportAllocs()
		var w bytes.Buffer
		for b.Loop() {
			w.Reset()
			for _, mf := range mfs {
				if _, err := protodelim.MarshalTo(&w, mf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	fams := benchFamilies()
	var in []byte
	for i := range fams {
		in = AppendDelimited(in, &fams[i])
	}
	b.Logf("%d families, %d bytes", len(fams), len(in))
	b.Run("family", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		r := bytes.NewReader(in)
		for b.Loop() {
			r.Reset(in)
			d := NewDecoder(r)
			for {
				var f Family
				if err := d.Decode(&f); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("protodelim-dto", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		r := bytes.NewReader(in)
		for b.Loop() {
			r.Reset(in)
			br := bufio.NewReader(r)
			for {
				mf := &dto.MetricFamily{}
				if err := protodelim.UnmarshalFrom(br, mf); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
