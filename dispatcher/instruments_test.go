package dispatcher

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// exposition renders families in the text format, created timestamps left
// out (they differ between two registries by construction).
func exposition(t *testing.T, mfs []*dto.MetricFamily) string {
	t.Helper()
	var b bytes.Buffer
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if m.Counter != nil {
				m.Counter.CreatedTimestamp = nil
			}
			if m.Histogram != nil {
				m.Histogram.CreatedTimestamp = nil
			}
			if m.Summary != nil {
				m.Summary.CreatedTimestamp = nil
			}
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// The instruments gather what client_golang's gather for the same
// definitions and the same recording: names, help, types, labels (constant
// ones included, sorted), metric order, bucket counts, counts and sums.
func TestInstrumentsMatchClientGolang(t *testing.T) {
	consts := []family.Label{{Name: "function_name", Value: "fn"}, {Name: "region", Value: "eu-west-1"}, {Name: "function_version", Value: "$LATEST"}}
	ours := newRegistry(consts...)
	theirs := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"function_name": "fn", "region": "eu-west-1", "function_version": "$LATEST"}, theirs)

	buckets := []float64{0.1, 0.5, 1, 10}
	c := ours.counter("c_total", "A counter.")
	pc := prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "A counter."})
	cv := ours.counterVec("cv_total", "A counter vector.", "b_label", "a_label")
	pcv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cv_total", Help: "A counter vector."}, []string{"b_label", "a_label"})
	g := ours.gauge("g_bytes", "A gauge.")
	pg := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g_bytes", Help: "A gauge."})
	h := ours.distribution(Histogram, "h_seconds", "A histogram.", buckets)
	ph := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "A histogram.", Buckets: buckets})
	hv := ours.distributionVec(Histogram, "hv_seconds", "A histogram vector.", buckets, "phase")
	phv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hv_seconds", Help: "A histogram vector.", Buckets: buckets}, []string{"phase"})
	s := ours.distribution(Summary, "s_seconds", "A summary.", buckets)
	ps := prometheus.NewSummary(prometheus.SummaryOpts{Name: "s_seconds", Help: "A summary."})
	sv := ours.distributionVec(Summary, "sv_seconds", "A summary vector.", buckets, "phase")
	psv := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "sv_seconds", Help: "A summary vector."}, []string{"phase"})
	ours.counterVec("unused_total", "Never used: not gathered.", "x")
	punused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unused_total", Help: "Never used: not gathered."}, []string{"x"})
	wrapped.MustRegister(pc, pcv, pg, ph, phv, ps, psv, punused)

	c.Add(2.5)
	pc.Add(2.5)
	c.Inc()
	pc.Inc()
	for _, lv := range [][2]string{{"z", "a"}, {"a", "z"}, {"m", "m"}, {"a", "z"}, {"", "x"}} {
		cv.with(lv[0], lv[1]).Inc()
		pcv.WithLabelValues(lv[0], lv[1]).Inc()
	}
	g.Set(-3)
	pg.Set(-3)
	for _, v := range []float64{0, 0.1, 0.10001, 0.5, 1, 9.99, 10, 11, math.Inf(1), -1} {
		h.Observe(v)
		ph.Observe(v)
		s.Observe(v)
		ps.Observe(v)
	}
	for _, phase := range []string{"invoke", "init", "invoke"} {
		hv.with(phase).Observe(0.3)
		phv.WithLabelValues(phase).Observe(0.3)
		sv.with(phase).Observe(0.3)
		psv.WithLabelValues(phase).Observe(0.3)
	}

	want, err := theirs.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := gatherDTO(ours)
	if g, w := exposition(t, got), exposition(t, want); g != w {
		t.Errorf("gathered\n%s\nclient_golang gathers\n%s", g, w)
	}
}

// Counters, histograms and summaries carry the time their series was made;
// gauges none.
func TestInstrumentsCreated(t *testing.T) {
	r := newRegistry()
	before := time.Now()
	r.counter("c_total", "C.")
	cv := r.counterVec("cv_total", "CV.", "x")
	r.gauge("g", "G.")
	r.distribution(Histogram, "h", "H.", []float64{1})
	r.distribution(Summary, "s", "S.", nil)
	time.Sleep(time.Millisecond)
	mid := time.Now()
	cv.with("a").Inc()
	for _, f := range r.Gather() {
		m := f.Metrics[0]
		switch {
		case f.Type == family.Gauge:
			if !m.Created.IsZero() {
				t.Errorf("%s: created %v, want none", f.Name, m.Created)
			}
		case f.Name == "cv_total":
			if m.Created.Before(mid) {
				t.Errorf("%s: created %v, before its first use at %v", f.Name, m.Created, mid)
			}
		default:
			if m.Created.Before(before) || !m.Created.Before(mid) {
				t.Errorf("%s: created %v, want at registration (%v…%v)", f.Name, m.Created, before, mid)
			}
		}
	}
}

// What Gather returned does not change as recording goes on.
func TestGatherCopiesValues(t *testing.T) {
	r := newRegistry(family.Label{Name: "function_name", Value: "fn"})
	c := r.counter("c_total", "C.")
	h := r.distribution(Histogram, "h", "H.", []float64{1, 2})
	c.Inc()
	h.Observe(1.5)
	first := r.Gather()
	c.Inc()
	h.Observe(0.5)
	if v := first[0].Metrics[0].Value; v != 1 {
		t.Errorf("gathered counter changed to %v", v)
	}
	if m := first[1].Metrics[0]; m.Count != 1 || m.Buckets[0].Count != 0 || m.Buckets[1].Count != 1 {
		t.Errorf("gathered histogram changed to %+v", m)
	}
}

// Recording goes on while gathering (the listener records while the
// dispatcher pushes): every gathered histogram is consistent and values
// only grow. Run with -race.
func TestRecordWhileGathering(t *testing.T) {
	m := newTestMetrics()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.Record([]telemetryapi.Event{reportEvent(fmt.Sprint("req-", i), "success")})
		}
	}()
	last := map[string]float64{}
	for range 200 {
		for _, f := range m.Gatherer().Gather() {
			for _, mt := range f.Metrics {
				if f.Type == family.Histogram {
					for _, b := range mt.Buckets {
						if b.Count > mt.Count {
							t.Fatalf("%s: bucket le=%v has %v of %v observations", f.Name, b.UpperBound, b.Count, mt.Count)
						}
					}
				}
				k := seriesKey(f.Name, mt.Labels)
				v := mt.Value + mt.Count
				if v < last[k] {
					t.Fatalf("%s went down from %v to %v", k, last[k], v)
				}
				last[k] = v
			}
		}
	}
	close(stop)
	wg.Wait()
}
