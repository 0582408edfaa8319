package dispatcher

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// recordingGateway decodes every push it accepts; fail makes it answer 500.
type recordingGateway struct {
	mu     sync.Mutex
	fail   bool
	pushes []map[string]*dto.MetricFamily
	paths  []string
	auth   []string
}

func (g *recordingGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail {
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "want POST (push.Add)", http.StatusMethodNotAllowed)
		return
	}
	dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
	push := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		push[mf.GetName()] = mf
	}
	user, pass, _ := r.BasicAuth()
	g.pushes = append(g.pushes, push)
	g.paths = append(g.paths, r.URL.Path)
	g.auth = append(g.auth, user+":"+pass)
}

func (g *recordingGateway) setFail(fail bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = fail
}

func (g *recordingGateway) last(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pushes) == 0 {
		t.Fatal("no push arrived")
	}
	return g.pushes[len(g.pushes)-1]
}

func (g *recordingGateway) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pushes)
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestPusherSendsIncrementsAndKeepsThemOnFailure(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "things_total", Help: "Things."})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "size_bytes", Help: "Size."})
	reg.MustRegister(c, h, g)
	p := NewPusher(srv.URL, "orders-api", reg, nil, nil)
	ctx := context.Background()

	c.Add(3)
	h.Observe(0.05)
	g.Set(512)
	if pushed, err := p.Push(ctx); err != nil || !pushed {
		t.Fatalf("first push: pushed=%v err=%v", pushed, err)
	}
	first := gw.last(t)
	if got := first["things_total"].Metric[0].GetCounter().GetValue(); got != 3 {
		t.Fatalf("first push counter = %v, want 3", got)
	}
	if got := labelValue(first["things_total"].Metric[0], ClearmodeLabel); got != "aggregate" {
		t.Fatalf("counter clearmode = %q, want aggregate", got)
	}
	if got := labelValue(first["size_bytes"].Metric[0], ClearmodeLabel); got != "replace" {
		t.Fatalf("gauge clearmode = %q, want replace", got)
	}
	if got := gw.paths[0]; got != "/metrics/job/orders-api" {
		t.Fatalf("push path = %q", got)
	}

	// The gateway fails: the increment must survive to the next push.
	c.Add(2)
	h.Observe(0.5)
	gw.setFail(true)
	if _, err := p.Push(ctx); err == nil {
		t.Fatal("push to a failing gateway reported success")
	}
	gw.setFail(false)
	c.Add(1)
	if _, err := p.Push(ctx); err != nil {
		t.Fatal(err)
	}
	third := gw.last(t)
	if got := third["things_total"].Metric[0].GetCounter().GetValue(); got != 3 {
		t.Fatalf("push after a failure carried counter %v, want 3 (2 kept + 1 new)", got)
	}
	hist := third["latency_seconds"].Metric[0].GetHistogram()
	if hist.GetSampleCount() != 1 || hist.GetSampleSum() != 0.5 {
		t.Fatalf("histogram delta = count %d sum %v, want 1 and 0.5", hist.GetSampleCount(), hist.GetSampleSum())
	}
	if b := hist.Bucket; b[0].GetCumulativeCount() != 0 || b[1].GetCumulativeCount() != 1 {
		t.Fatalf("histogram bucket deltas = %v", b)
	}

	// Nothing changed: nothing is sent.
	before := gw.count()
	if pushed, err := p.Push(ctx); err != nil || pushed {
		t.Fatalf("idle push: pushed=%v err=%v", pushed, err)
	}
	if gw.count() != before {
		t.Fatal("an idle push reached the gateway")
	}
}

func TestPusherBasicAuthAndCredentialErrors(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "things_total", Help: "Things."})
	reg.MustRegister(c)

	fail := true
	creds := func(context.Context) (string, string, error) {
		if fail {
			return "", "", errors.New("secret unreadable")
		}
		return "lambda", "s3cr3t", nil
	}
	p := NewPusher(srv.URL, "fn", reg, nil, creds)
	c.Inc()
	if _, err := p.Push(context.Background()); err == nil {
		t.Fatal("push without credentials reported success")
	}
	if gw.count() != 0 {
		t.Fatal("a push went out without credentials")
	}
	fail = false
	if _, err := p.Push(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gw.last(t)["things_total"].Metric[0].GetCounter().GetValue(); got != 1 {
		t.Fatalf("counter = %v, want 1", got)
	}
	if gw.auth[0] != "lambda:s3cr3t" {
		t.Fatalf("basic auth = %q", gw.auth[0])
	}
}
