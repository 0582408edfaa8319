package compat

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
)

// pushedGo returns the collectors of the four metrics every client pushes
// (see flavour), named with prefix; kinds selects them (none: all four).
func pushedGo(prefix string, kinds ...string) []prometheus.Collector {
	want := func(k string) bool {
		if len(kinds) == 0 {
			return true
		}
		for _, x := range kinds {
			if x == k {
				return true
			}
		}
		return false
	}
	var cs []prometheus.Collector
	if want("counter") {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "requests_total", Help: "Requests handled."}, []string{"code"})
		c.WithLabelValues("200").Add(3)
		c.WithLabelValues("500").Add(1)
		cs = append(cs, c)
	}
	if want("gauge") {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "temperature_celsius", Help: "Temperature."})
		g.Set(21.5)
		cs = append(cs, g)
	}
	if want("histogram") {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: prefix + "latency_seconds", Help: "Latency.", Buckets: []float64{0.3, 1}})
		for _, v := range []float64{0.25, 0.5, 2} {
			h.Observe(v)
		}
		cs = append(cs, h)
	}
	if want("summary") {
		// One observation: every quantile is exactly that value.
		s := prometheus.NewSummary(prometheus.SummaryOpts{Name: prefix + "payload_bytes", Help: "Payload size.", Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01}})
		s.Observe(200)
		cs = append(cs, s)
	}
	return cs
}

// testClientGolang: client_golang's push.Pusher Add (POST), Push (PUT) and
// Delete, in its default protobuf format or in the text format, with a
// grouping value containing '/' and an empty one (both go as @base64).
func testClientGolang(t *testing.T, g *gateway, text bool) {
	job, fl := "compat-go-protobuf", flavour{prefix: "compat_go_proto_", quantiles: true}
	if text {
		job, fl = "compat-go-text", flavour{prefix: "compat_go_text_", quantiles: true}
	}
	pusher := func(path string, kinds ...string) *push.Pusher {
		p := push.New(g.url, job).Grouping("path", path).Grouping("shard", "")
		for _, c := range pushedGo(fl.prefix, kinds...) {
			p.Collector(c)
		}
		if text {
			p.Format(expfmt.NewFormat(expfmt.TypeTextPlain))
		}
		return p
	}
	orders := `job="` + job + `",path="/api/orders"`
	health := `job="` + job + `",path="/healthz"`
	keep := withPrefix(fl.prefix)
	step := func(name string, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.checkScrape(t, name, keep, groups(t, want...))
	}

	step("Add", pusher("/api/orders").Add(),
		fl.expected(orders, pushes{1, 1, 1, 1}))
	step("Add again: aggregated, gauge replaced", pusher("/api/orders").Add(),
		fl.expected(orders, pushes{2, 1, 2, 2}))
	step("Push (PUT) of the counter: the group keeps only its families", pusher("/api/orders", "counter").Push(),
		fl.expected(orders, pushes{counter: 3}))
	step("Add into a second group", pusher("/healthz", "gauge").Add(),
		fl.expected(orders, pushes{counter: 3}), fl.expected(health, pushes{gauge: 1}))
	step("Delete of the second group", pusher("/healthz").Delete(),
		fl.expected(orders, pushes{counter: 3}))
}

// testClientGolangBasicAuth: Pusher.BasicAuth against a gateway demanding
// basic auth; without credentials the push fails with 401 and changes
// nothing.
func testClientGolangBasicAuth(t *testing.T, g *gateway) {
	const job = "compat-go-auth"
	fl := flavour{prefix: "compat_go_auth_", quantiles: true}
	pusher := func(instance string, auth bool, kinds ...string) *push.Pusher {
		p := push.New(g.url, job).Grouping("instance", instance)
		for _, c := range pushedGo(fl.prefix, kinds...) {
			p.Collector(c)
		}
		if auth {
			p.BasicAuth(g.user, g.password)
		}
		return p
	}
	fn1 := `instance="fn-1",job="compat-go-auth"`
	fn2 := `instance="fn-2",job="compat-go-auth"`
	keep := withPrefix(fl.prefix)
	step := func(name string, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.checkScrape(t, name, keep, groups(t, want...))
	}
	refused := func(name string, err error, want ...string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: want status code 401, got %v", name, err)
		}
		g.checkScrape(t, name+" changes nothing", keep, groups(t, want...))
	}

	step("Add with BasicAuth", pusher("fn-1", true).Add(),
		fl.expected(fn1, pushes{1, 1, 1, 1}))
	refused("Add without credentials", pusher("fn-1", false).Add(),
		fl.expected(fn1, pushes{1, 1, 1, 1}))
	step("Push (PUT) of the counter with BasicAuth", pusher("fn-1", true, "counter").Push(),
		fl.expected(fn1, pushes{counter: 2}))
	step("Add into a second group with BasicAuth", pusher("fn-2", true, "gauge").Add(),
		fl.expected(fn1, pushes{counter: 2}), fl.expected(fn2, pushes{gauge: 1}))
	refused("Delete without credentials", pusher("fn-2", false).Delete(),
		fl.expected(fn1, pushes{counter: 2}), fl.expected(fn2, pushes{gauge: 1}))
	step("Delete with BasicAuth", pusher("fn-2", true).Delete(),
		fl.expected(fn1, pushes{counter: 2}))
}
