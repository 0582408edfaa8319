package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// A pushed label that is also a grouping label takes the grouping label's
// value, as in the Pushgateway ("will be overwritten to match the labels
// defined by the URL path"): the push is accepted and the series is the
// group's. Two pushed series that differ only there become one series twice:
// 400, like any series pushed twice.
func TestGroupingLabelCollision(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/j/instance/i", "# TYPE c_total counter\nc_total{job=\"other\",instance=\"x\"} 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/j/instance/i", "# TYPE c_total counter\nc_total{job=\"third\"} 2\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`c_total{instance="i",job="j"}`: 3})

	body := g.push(http.MethodPost, "/metrics/job/j/instance/i",
		"# TYPE c_total counter\nc_total{instance=\"a\"} 1\nc_total{instance=\"b\"} 1\n", http.StatusBadRequest)
	if !strings.Contains(body, "c_total") || !strings.Contains(body, "twice") {
		t.Errorf("answer %q does not name the series pushed twice", body)
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{instance="i",job="j"}`: 3})

	// The root group has no grouping labels: pushed job labels stay.
	g.push(http.MethodPost, "/metrics", "# TYPE r_total counter\nr_total{job=\"a\"} 1\nr_total{job=\"b\"} 1\n", http.StatusOK)
	got := g.scrape()
	if got[`r_total{job="a"}`] != 1 || got[`r_total{job="b"}`] != 1 {
		t.Errorf("root group series: %v", got)
	}
}

// The same name with another type in another group answers 400 naming both
// types, in every input format.
func TestTypeClashReason(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE m_total counter\nm_total 1\n", http.StatusOK)
	body := g.push(http.MethodPost, "/metrics/job/b", "# TYPE m_total gauge\nm_total 1\n", http.StatusBadRequest)
	if !strings.Contains(body, "metric m_total") || !strings.Contains(body, "gauge") || !strings.Contains(body, "counter") {
		t.Errorf("answer %q does not give the reason", body)
	}
	code, body := g.do(http.MethodPost, "/metrics/job/b", []byte("# TYPE m_total gauge\nm_total 1\n# EOF\n"), omHeader)
	if code != http.StatusBadRequest || !strings.Contains(body, "clashes") {
		t.Errorf("OpenMetrics: %d %q, want 400 clash", code, body)
	}
	assertSamples(t, g.scrape(), map[string]float64{`m_total{job="a"}`: 1})
}

// HELP is one per name across groups: the latest non-empty pushed HELP wins.
func TestConflictingHelpLatestWins(t *testing.T) {
	g := newTestGateway(t)
	help := func() string {
		t.Helper()
		return g.scrapeFamilies()["m"].GetHelp()
	}
	g.push(http.MethodPost, "/metrics/job/a", "# HELP m first\n# TYPE m gauge\nm 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/b", "# HELP m second\n# TYPE m gauge\nm 2\n", http.StatusOK)
	if h := help(); h != "second" {
		t.Errorf("HELP %q, want second", h)
	}
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE m gauge\nm 3\n", http.StatusOK) // no HELP: kept
	if h := help(); h != "second" {
		t.Errorf("HELP after a push without HELP %q, want second", h)
	}
	code, body := g.do(http.MethodPost, "/metrics/job/c", []byte("# TYPE m gauge\n# HELP m third\nm 4\n# EOF\n"), omHeader)
	if code != http.StatusOK {
		t.Fatalf("OpenMetrics push: %d %s", code, body)
	}
	if h := help(); h != "third" {
		t.Errorf("HELP %q, want third (OpenMetrics push to a third group)", h)
	}
}

// A family pushed without HELP still gets a HELP line, so the exposition
// passes promtool check metrics; a later HELP replaces the default.
func TestMissingHelpGetsADefault(t *testing.T) {
	g := newTestGateway(t)
	g.push(http.MethodPost, "/metrics/job/a", "# TYPE value_total counter\nvalue_total 1\nvalue2 1\n", http.StatusOK)
	fams := g.scrapeFamilies()
	for _, name := range []string{"value_total", "value2"} {
		if got := fams[name].GetHelp(); got != "Pushed to the gateway without HELP." {
			t.Errorf("HELP of %s = %q, want the default", name, got)
		}
	}
	g.push(http.MethodPost, "/metrics/job/a", "# HELP value2 Documented at last.\nvalue2 1\n", http.StatusOK)
	if got := g.scrapeFamilies()["value2"].GetHelp(); got != "Documented at last." {
		t.Errorf("HELP of value2 = %q after a push with HELP", got)
	}
}

// Gathered families must not point into the store: promhttp encodes them
// after Gather has released the lock, while pushes go on changing the store
// (here a family's HELP). Under the race detector a shared pointer fails this.
func TestGatherDoesNotShareStoreState(t *testing.T) {
	s := gateway.NewMemoryStore(gateway.StoreOptions{})
	ctx := context.Background()
	fams := func(help string) []family.Family {
		return []family.Family{{
			Name: "jobs_total", Help: help, Type: family.Counter,
			Metrics: []family.Metric{{Value: 1}},
		}}
	}
	if err := s.Push(ctx, map[string]string{"job": "a"}, fams("first"), false); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if err := s.Push(ctx, map[string]string{"job": "a"}, fams(fmt.Sprint("help ", i)), false); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		mfs, err := s.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetHelp() == "" || mf.GetName() == "" {
				t.Fatalf("gathered family without name or HELP: %v", mf)
			}
		}
		select {
		case <-done:
			return
		default:
		}
	}
}
