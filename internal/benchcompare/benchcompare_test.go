package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func decode(t *testing.T, b *Body) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(b.Bytes), expfmt.ResponseFormat(http.Header{"Content-Type": {b.ContentType}}))
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return mfs
		}
		if err != nil {
			t.Fatalf("decoding the %s body: %v", b.Format, err)
		}
		mfs = append(mfs, mf)
	}
}

func TestBodyIsLambdaShaped(t *testing.T) {
	for _, format := range []string{"protobuf", "text"} {
		t.Run(format, func(t *testing.T) {
			b, err := BuildBody(format, "fn")
			if err != nil {
				t.Fatal(err)
			}
			mfs := decode(t, b)
			types := map[dto.MetricType]int{}
			samples := 0
			for _, mf := range mfs {
				types[mf.GetType()]++
				// Count what a scrape would show, independently of countSamples.
				vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, mf)
				if err != nil {
					t.Fatal(err)
				}
				samples += len(vec)
				for _, m := range mf.Metric {
					modes := 0
					for _, l := range m.Label {
						if l.GetName() == clearmodeLabel {
							modes++
						}
					}
					if modes != 1 {
						t.Errorf("%s: %d clearmode labels, want 1 (the extension labels every sample)", mf.GetName(), modes)
					}
				}
			}
			if len(mfs) != b.Families || samples != b.Samples {
				t.Errorf("decoded %d families and %d samples, the body claims %d and %d", len(mfs), samples, b.Families, b.Samples)
			}
			if samples < 55 || samples > 75 {
				t.Errorf("%d samples, want about 60", samples)
			}
			if types[dto.MetricType_HISTOGRAM] != 4 || types[dto.MetricType_COUNTER] < 2 || types[dto.MetricType_GAUGE] != 2 {
				t.Errorf("family types %v: want 4 histograms, counters, a gauge and an info gauge", types)
			}
			var info *dto.MetricFamily
			for _, mf := range mfs {
				if mf.GetName() == "aws_lambda_function_info" {
					info = mf
				}
			}
			if info == nil || len(info.Metric) != 1 || info.Metric[0].GetGauge().GetValue() != 1 ||
				!hasLabel(info.Metric[0], clearmodeLabel, "family") {
				t.Errorf("info family %v: want one series of value 1 with clearmode=family", info)
			}
		})
	}
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestRunLoadCounts runs the load generator against an in-process server
// that answers every fifth push 500 and checks that every request the
// server answered is counted once, as a push or as an error.
func TestRunLoadCounts(t *testing.T) {
	b, err := BuildBody("protobuf", "fn")
	if err != nil {
		t.Fatal(err)
	}
	var handled, failed atomic.Int64
	var mu sync.Mutex
	paths := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || !bytes.Equal(got, b.Bytes) || r.Header.Get("Content-Type") != b.ContentType {
			t.Errorf("got %s %s (%s) with a %d-byte body, want POST of the %d-byte body", r.Method, r.URL.Path, r.Header.Get("Content-Type"), len(got), len(b.Bytes))
		}
		mu.Lock()
		paths[r.URL.Path]++
		mu.Unlock()
		if handled.Add(1)%5 == 0 {
			failed.Add(1)
			http.Error(w, "no room", http.StatusInternalServerError)
			return
		}
	}))
	defer srv.Close()

	cfg := LoadConfig{
		BaseURL:     srv.URL,
		Paths:       groupingPaths("fn", 10),
		Body:        b,
		Concurrency: 4,
		Duration:    300 * time.Millisecond,
		Pace:        func() { time.Sleep(time.Millisecond) }, // keep the race detector's share of the CPU small
	}
	st, err := RunLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pushes == 0 || st.Errors == 0 {
		t.Fatalf("pushes %d, errors %d: want both", st.Pushes, st.Errors)
	}
	if int64(st.Pushes) != handled.Load()-failed.Load() || int64(st.Errors) != failed.Load() {
		t.Errorf("counted %d pushes and %d errors; the server answered %d with 2xx and %d with 500", st.Pushes, st.Errors, handled.Load()-failed.Load(), failed.Load())
	}
	if st.WarmupErrors != 0 {
		t.Errorf("%d warm-up errors without a warm-up", st.WarmupErrors)
	}
	if len(st.ErrorSamples) != 1 || st.ErrorSamples["500 no room"] != st.Errors {
		t.Errorf("error samples %v, want 500 no room × %d", st.ErrorSamples, st.Errors)
	}
	if st.Elapsed < cfg.Duration || st.PushesPerSec != float64(st.Pushes)/st.Elapsed.Seconds() {
		t.Errorf("elapsed %v, %.1f pushes/s for %d pushes", st.Elapsed, st.PushesPerSec, st.Pushes)
	}
	if !(0 < st.P50 && st.P50 <= st.P90 && st.P90 <= st.P99 && st.P99 <= st.Max) {
		t.Errorf("latencies p50 %v p90 %v p99 %v max %v: want 0 < p50 ≤ p90 ≤ p99 ≤ max", st.P50, st.P90, st.P99, st.Max)
	}
	if len(paths) != 10 {
		t.Errorf("pushed to %d grouping paths, want all 10", len(paths))
	}
	for p := range paths {
		if !strings.HasPrefix(p, "/metrics/job/fn/instance/") {
			t.Errorf("path %q", p)
		}
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.9: 90, 0.99: 99, 1: 100, 0: 1} {
		if got := quantile(d, q); got != want {
			t.Errorf("quantile(1..100, %v) = %v, want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing")
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"--concurrency", "1, 8,32", "--gateway-args", "--push.ttl=1h --log.level=warn", "--rounds", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.concurrency) != 3 || o.concurrency[2] != 32 || len(o.gatewayArgs) != 2 || o.rounds != 3 || o.format != "protobuf" || o.duration != 10*time.Second {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"--concurrency", "0"}, {"--format", "json"}, {"--rounds", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
