package dispatcher

import (
	"bytes"
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

// recordingGateway decodes every push it accepts; fail makes it answer
// status (default 500) without applying the push. It remembers keys as the
// real gateway does: a repeat of an accepted push (same key, same body) is
// answered 200 with Idempotent-Replayed and not applied again, the key with
// another body 422. Every request, applied or not, is logged in requests.
type recordingGateway struct {
	mu       sync.Mutex
	fail     bool
	status   int               // answer when failing; 0 means 500
	lose     bool              // apply the push, then break the connection without an answer
	hang     chan struct{}     // when set, every request waits for it to close (or the client to go)
	answered map[string]string // key → body of the accepted push
	requests []request
	pushes   []map[string]*dto.MetricFamily // applied pushes
	paths    []string
	auth     []string
}

type request struct{ key, body string }

func (g *recordingGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	hang := g.hang
	g.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	g.requests = append(g.requests, request{key, string(raw)})
	if g.fail {
		status := g.status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		http.Error(w, "injected failure", status)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "want POST (push.Add)", http.StatusMethodNotAllowed)
		return
	}
	if body, seen := g.answered[key]; seen && key != "" {
		if body != string(raw) {
			http.Error(w, "key reused", http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		return
	}
	dec := expfmt.NewDecoder(bytes.NewReader(raw), expfmt.ResponseFormat(r.Header))
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
	if key != "" {
		if g.answered == nil {
			g.answered = map[string]string{}
		}
		g.answered[key] = string(raw)
	}
	if g.lose {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

func (g *recordingGateway) set(f func(g *recordingGateway)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

// sum adds up the applied pushes' values of a counter family.
func (g *recordingGateway) sum(name string) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	total := 0.0
	for _, p := range g.pushes {
		if mf := p[name]; mf != nil {
			for _, m := range mf.Metric {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func (g *recordingGateway) requestLog() []request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]request(nil), g.requests...)
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
	p := NewPusher(srv.URL, "orders-api", promGatherer(reg), nil, nil)
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

	// The gateway fails: the batch must survive, as it was, to the next push,
	// and the increments since travel after it in a batch of their own.
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
	if gw.count() != 3 {
		t.Fatalf("applied pushes = %d, want 3 (first, the failed batch re-sent, the new increments)", gw.count())
	}
	second := gw.pushes[1]
	if got := second["things_total"].Metric[0].GetCounter().GetValue(); got != 2 {
		t.Fatalf("re-sent batch carried counter %v, want the 2 it carried when it failed", got)
	}
	hist := second["latency_seconds"].Metric[0].GetHistogram()
	if hist.GetSampleCount() != 1 || hist.GetSampleSum() != 0.5 {
		t.Fatalf("histogram delta = count %d sum %v, want 1 and 0.5", hist.GetSampleCount(), hist.GetSampleSum())
	}
	if b := hist.Bucket; b[0].GetCumulativeCount() != 0 || b[1].GetCumulativeCount() != 1 {
		t.Fatalf("histogram bucket deltas = %v", b)
	}
	if got := gw.last(t)["things_total"].Metric[0].GetCounter().GetValue(); got != 1 {
		t.Fatalf("push after the re-sent batch carried counter %v, want the 1 added since", got)
	}
	if got := gw.sum("things_total"); got != 6 {
		t.Fatalf("the gateway summed %v, want 6", got)
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
	p := NewPusher(srv.URL, "fn", promGatherer(reg), nil, creds)
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
