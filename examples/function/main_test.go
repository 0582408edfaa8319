package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/dispatcher"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

var labels = dispatcher.Labels{FunctionName: "example", FunctionVersion: "$LATEST", Region: "eu-west-1"}

// extensionStub serves the extension's own local push endpoint on
// 127.0.0.1 and records the methods it was asked with.
type extensionStub struct {
	*dispatcher.LocalPush
	mu      sync.Mutex
	methods []string
}

func newExtensionStub(t *testing.T) (*extensionStub, string) {
	stub := &extensionStub{LocalPush: dispatcher.NewLocalPush(labels)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stub.mu.Lock()
		stub.methods = append(stub.methods, r.Method+" "+r.URL.Path)
		stub.mu.Unlock()
		stub.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return stub, srv.URL
}

// find returns the series of family name whose labels include want.
func find(fams []family.Family, name string, want map[string]string) (family.Metric, bool) {
	for _, f := range fams {
		if f.Name != name {
			continue
		}
	series:
		for _, m := range f.Metrics {
			for k, v := range want {
				if !slices.Contains(m.Labels, family.Label{Name: k, Value: v}) {
					continue series
				}
			}
			return m, true
		}
	}
	return family.Metric{}, false
}

func TestHandlerEmitsEMFAndPushes(t *testing.T) {
	stub, url := newExtensionStub(t)
	var out bytes.Buffer
	a := newApp(&out, url)
	clock := time.Date(2026, 11, 2, 10, 0, 5, 0, time.UTC)
	a.now = func() time.Time { clock = clock.Add(25 * time.Millisecond); return clock }

	for _, o := range []Order{{ID: "o-1", Items: 3}, {ID: "o-2", Items: 7, Service: "returns"}} {
		r, err := a.handle(context.Background(), o)
		if err != nil || r.ID != o.ID || r.Items != o.Items {
			t.Fatalf("handle(%+v) = %+v, %v", o, r, err)
		}
	}

	// EMF: one line per invocation, which the extension's parser records.
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout has %d lines, want 2 EMF lines:\n%s", len(lines), out.String())
	}
	m := dispatcher.NewMetrics(labels, dispatcher.Histogram)
	for _, line := range lines {
		record, _ := json.Marshal(line + "\n")
		if n := m.Record([]telemetryapi.Event{{Type: telemetryapi.TypeFunction, Record: record}}); n != 1 {
			t.Fatalf("Record counted %d events, want 1", n)
		}
	}
	for _, f := range m.Gatherer().Gather() {
		if strings.HasPrefix(f.Name, "aws_lambda_emf_") {
			for _, s := range f.Metrics {
				if s.Value != 0 {
					t.Errorf("%s %v = %v: the EMF line was refused", f.Name, s.Labels, s.Value)
				}
			}
		}
	}
	custom := m.CustomGatherer().Gather()
	for _, service := range []string{"checkout", "returns"} {
		want := map[string]string{"namespace": "PrometheusLambdaExample", "service": service, "function_name": "example"}
		if s, ok := find(custom, "orders_placed_total", want); !ok || s.Value != 1 {
			t.Errorf("orders_placed_total%v = %+v (found %v), want 1", want, s, ok)
		}
		if s, ok := find(custom, "processing_time_seconds", want); !ok || s.Count != 1 || s.Sum != 0.025 {
			t.Errorf("processing_time_seconds%v: count %v, sum %v (found %v); want 1, 0.025", want, s.Count, s.Sum, ok)
		}
	}

	// Local pushes: POST (push.Add) of the registry after each invocation.
	wantMethods := []string{"POST /metrics/job/" + pushJob, "POST /metrics/job/" + pushJob}
	if !slices.Equal(stub.methods, wantMethods) {
		t.Errorf("pushes %q, want %q", stub.methods, wantMethods)
	}
	pushed := stub.Gather()
	for service, want := range map[string]float64{"checkout": 1, "returns": 1} {
		l := map[string]string{"service": service, "exported_job": pushJob, "function_name": "example"}
		if s, ok := find(pushed, "example_orders_total", l); !ok || s.Value != want {
			t.Errorf("example_orders_total%v = %v (found %v), want %v", l, s.Value, ok, want)
		}
	}
	if s, ok := find(pushed, "example_order_items", nil); !ok || s.Count != 2 || s.Sum != 10 {
		t.Errorf("example_order_items: count %v, sum %v (found %v); want 2, 10", s.Count, s.Sum, ok)
	}
}

func TestHandlerSurvivesAFailedPush(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	var out bytes.Buffer
	a := newApp(&out, url)
	if _, err := a.handle(context.Background(), Order{ID: "o-1", Items: 1}); err != nil {
		t.Fatalf("handle: %v; a failed push must not fail the invocation", err)
	}
	if !strings.Contains(out.String(), `"OrdersPlaced":1`) {
		t.Errorf("no EMF line: %q", out.String())
	}
}

func TestHandlerRejectsAnEmptyOrder(t *testing.T) {
	var out bytes.Buffer
	if _, err := newApp(&out, "").handle(context.Background(), Order{ID: "o-1"}); err == nil {
		t.Fatal("no error for an order without items")
	}
	if out.Len() != 0 {
		t.Errorf("metrics written for a rejected order: %q", out.String())
	}
}

func TestLocalPushURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:9091",
		"off":            "",
		"127.0.0.1:9191": "http://127.0.0.1:9191",
	} {
		if got := localPushURL(addr); got != want {
			t.Errorf("localPushURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
