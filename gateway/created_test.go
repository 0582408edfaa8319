package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// newClockGateway is a test gateway whose store and idempotency cache use
// clock.
func newClockGateway(t *testing.T, clock *fakeClock, idem gateway.IdempotencyOptions) *testGateway {
	t.Helper()
	store := gateway.NewMemoryStore(gateway.StoreOptions{Now: clock.Now})
	idem.Now = clock.Now
	gw, err := gateway.New(store, gateway.Options{Idempotency: idem})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &testGateway{t: t, srv: srv, store: store}
}

// createdOf returns the created timestamp of the stored metric of family
// name with the given job label, zero if none.
func createdOf(t *testing.T, s *gateway.MemoryStore, name, job string) time.Time {
	t.Helper()
	mfs, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelMap(m)["job"] != job {
				continue
			}
			var ts *timestamppb.Timestamp
			switch {
			case m.Counter != nil:
				ts = m.Counter.GetCreatedTimestamp()
			case m.Histogram != nil:
				ts = m.Histogram.GetCreatedTimestamp()
			case m.Summary != nil:
				ts = m.Summary.GetCreatedTimestamp()
			}
			if ts == nil {
				return time.Time{}
			}
			return ts.AsTime()
		}
	}
	t.Fatalf("no %s{job=%q} stored", name, job)
	return time.Time{}
}

func counterWithCreated(name string, v float64, created time.Time, labels ...string) family.Family {
	m := family.Metric{Value: v, Created: created}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Labels = append(m.Labels, family.Label{Name: labels[i], Value: labels[i+1]})
	}
	return family.Family{Name: name, Type: family.Counter, Metrics: []family.Metric{m}}
}

// An aggregated series' created time is when the gateway first stored it,
// whatever the pushers' created timestamps; later aggregates keep it.
func TestCreatedFirstSeen(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := gateway.NewMemoryStore(gateway.StoreOptions{Now: clock.Now})
	ctx := context.Background()
	job := map[string]string{"job": "j"}
	first := clock.Now()
	pusherStart := first.Add(-time.Hour)

	if err := s.Push(ctx, job, []family.Family{counterWithCreated("c_total", 1, pusherStart)}, false); err != nil {
		t.Fatal(err)
	}
	if got := createdOf(t, s, "c_total", "j"); !got.Equal(first) {
		t.Errorf("created after the first push = %v, want the gateway's time %v", got, first)
	}
	clock.Add(time.Minute)
	if err := s.Push(ctx, job, []family.Family{counterWithCreated("c_total", 2, clock.Now().Add(-time.Second))}, false); err != nil {
		t.Fatal(err)
	}
	if got := createdOf(t, s, "c_total", "j"); !got.Equal(first) {
		t.Errorf("created after a second aggregate = %v, want still %v", got, first)
	}

	// Replace takes the pusher's created timestamp; without one it keeps
	// the first-seen time.
	if err := s.Push(ctx, job, []family.Family{counterWithCreated("r_total", 5, pusherStart, "clearmode", "replace")}, false); err != nil {
		t.Fatal(err)
	}
	if got := createdOf(t, s, "r_total", "j"); !got.Equal(pusherStart) {
		t.Errorf("replaced series created = %v, want the pushed %v", got, pusherStart)
	}
	text := func(body string) []family.Family {
		fams, err := gateway.DecodeBody(strings.NewReader(body), http.Header{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fams
	}
	clock.Add(time.Minute)
	if err := s.Push(ctx, job, text("# TYPE n_total counter\nn_total{clearmode=\"replace\"} 1\n"), false); err != nil {
		t.Fatal(err)
	}
	nFirst := clock.Now()
	clock.Add(time.Minute)
	if err := s.Push(ctx, job, text("# TYPE n_total counter\nn_total{clearmode=\"replace\"} 3\n"), false); err != nil {
		t.Fatal(err)
	}
	if got := createdOf(t, s, "n_total", "j"); !got.Equal(nFirst) {
		t.Errorf("replaced series without a pushed created = %v, want first seen %v", got, nFirst)
	}

	// Histograms and summaries too; gauges have none.
	if err := s.Push(ctx, job, text("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# TYPE sm summary\nsm_sum 1\nsm_count 1\n# TYPE g gauge\ng 1\n"), false); err != nil {
		t.Fatal(err)
	}
	hFirst := clock.Now()
	clock.Add(time.Minute)
	if err := s.Push(ctx, job, text("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# TYPE sm summary\nsm_sum 1\nsm_count 1\n"), false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"h", "sm"} {
		if got := createdOf(t, s, name, "j"); !got.Equal(hFirst) {
			t.Errorf("%s created = %v, want %v", name, got, hFirst)
		}
	}
	if got := createdOf(t, s, "g", "j"); !got.IsZero() {
		t.Errorf("gauge has created %v", got)
	}

	// A deleted series starts afresh.
	s.Delete(context.Background(), job)
	clock.Add(time.Minute)
	if err := s.Push(ctx, job, []family.Family{counterWithCreated("c_total", 1, pusherStart)}, false); err != nil {
		t.Fatal(err)
	}
	if got := createdOf(t, s, "c_total", "j"); !got.Equal(clock.Now()) {
		t.Errorf("created after delete and push = %v, want %v", got, clock.Now())
	}
}

// OpenMetrics scrapes show the created time as a _created sample.
func TestCreatedInOpenMetricsScrape(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newClockGateway(t, clock, gateway.IdempotencyOptions{})
	body := "# TYPE c counter\nc_total 1\nc_created 1000\n# EOF\n"
	for range 2 {
		if code, resp := g.do(http.MethodPost, "/metrics/job/j", []byte(body), omHeader); code != http.StatusOK {
			t.Fatalf("push: %d %s", code, resp)
		}
		clock.Add(time.Hour)
	}
	code, scrape := g.do(http.MethodGet, "/metrics", nil, http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}})
	if code != http.StatusOK {
		t.Fatalf("scrape: %d", code)
	}
	created := float64(clock.Now().Add(-2 * time.Hour).Unix())
	var gotTotal, gotCreated string
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, `c_total{job="j"} `); ok {
			gotTotal = v
		}
		if v, ok := strings.CutPrefix(line, `c_created{job="j"} `); ok {
			gotCreated = v
		}
	}
	if gotTotal != "2.0" && gotTotal != "2" {
		t.Errorf("c_total = %q, want 2", gotTotal)
	}
	if f, err := strconv.ParseFloat(gotCreated, 64); err != nil || f != created {
		t.Errorf("c_created = %q, want %v (the first push)\n%s", gotCreated, created, scrape)
	}
}

// Python's text format writes X_created gauges beside X_total counters and
// histograms and summaries X. They are not stored as gauges: their values
// become the created timestamps of the sibling series.
func TestPythonCreatedGauges(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newClockGateway(t, clock, gateway.IdempotencyOptions{})
	if code, resp := g.do(http.MethodPost, "/metrics/job/py", readFixture(t, "python-client-0.16.txt"), nil); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, resp)
	}
	fams := g.scrapeFamilies()
	for _, name := range []string{"orders_processed_created", "payment_latency_seconds_created", "request_size_bytes_created"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s stored as a family", name)
		}
	}
	// Aggregated: the gateway's own first-seen time, not Python's.
	if got := createdOf(t, g.store, "orders_processed_total", "py"); !got.Equal(clock.Now()) {
		t.Errorf("orders_processed_total created = %v, want first seen %v", got, clock.Now())
	}

	// Under replace the pusher's created time (from the gauge) is kept.
	body := `# TYPE jobs_total counter
jobs_total{clearmode="replace",kind="a"} 4
# TYPE jobs_created gauge
jobs_created{clearmode="replace",kind="a"} 1.5e+09
`
	g.push(http.MethodPost, "/metrics/job/py", body, http.StatusOK)
	if got := createdOf(t, g.store, "jobs_total", "py"); !got.Equal(time.Unix(1.5e9, 0)) {
		t.Errorf("jobs_total created = %v, want 1.5e9 from the gauge", got)
	}

	// A gauge X_created without its sibling in the push is a plain gauge...
	g.push(http.MethodPost, "/metrics/job/other", "# TYPE lone_created gauge\nlone_created 5\n", http.StatusOK)
	// ...but one that would collide with a stored counter's _created sample
	// is rejected, as is the counter over a stored X_created gauge.
	resp := g.push(http.MethodPost, "/metrics/job/other", "# TYPE jobs_created gauge\njobs_created 5\n", http.StatusBadRequest)
	if !strings.Contains(resp, "_created") {
		t.Errorf("clash answer %q does not explain", resp)
	}
	g.push(http.MethodPost, "/metrics/job/other", "# TYPE lone_total counter\nlone_total 1\n", http.StatusBadRequest)
	if got := g.scrape()[`lone_created{job="other"}`]; got != 5 {
		t.Errorf("lone_created = %v, want 5", got)
	}
}
