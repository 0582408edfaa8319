package dispatcher

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// localPushRig is a LocalPush behind its HTTP handler, with the acknowledged
// snapshot of a Pusher whose every push succeeds.
type localPushRig struct {
	t     *testing.T
	lp    *LocalPush
	srv   *httptest.Server
	acked snapshot
}

func newLocalPushRig(t *testing.T) *localPushRig {
	lp := NewLocalPush(Labels{FunctionName: "fn", FunctionVersion: "$LATEST", Region: "eu-west-1"})
	srv := httptest.NewServer(lp)
	t.Cleanup(srv.Close)
	return &localPushRig{t: t, lp: lp, srv: srv, acked: snapshot{}}
}

// push sends body (text format unless contentType says otherwise) and
// returns the status and answer.
func (r *localPushRig) push(method, path, contentType string, body []byte) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func (r *localPushRig) mustPush(method, path, text string) {
	r.t.Helper()
	if code, msg := r.push(method, path, "", []byte(text)); code/100 != 2 {
		r.t.Fatalf("%s %s: %d %s", method, path, code, msg)
	}
}

// batch gathers, computes the deltas and acknowledges them.
func (r *localPushRig) batch() map[string]*dto.MetricFamily {
	r.t.Helper()
	out, next := deltas(r.lp.Gather(), r.acked)
	r.acked = next
	m := map[string]*dto.MetricFamily{}
	for _, mf := range toDTO(out) {
		m[mf.GetName()] = mf
	}
	return m
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func protoBody(t *testing.T, fams ...*dto.MetricFamily) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, mf := range fams {
		if _, err := protodelim.MarshalTo(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

const protoType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

func TestLocalPushCounterDeltas(t *testing.T) {
	r := newLocalPushRig(t)
	want := []float64{1, 2, 3}
	for i, v := range []float64{1, 3, 6} {
		r.mustPush(http.MethodPost, "/metrics/job/orders", fmt.Sprintf("# TYPE orders_total counter\norders_total{kind=\"a\"} %v\n", v))
		b := r.batch()
		mf := b["orders_total"]
		if mf == nil || len(mf.Metric) != 1 {
			t.Fatalf("push %d: batch %v", i, b)
		}
		if got := mf.Metric[0].GetCounter().GetValue(); got != want[i] {
			t.Errorf("push %d: increment %v, want %v", i, got, want[i])
		}
		l := labelsOf(mf.Metric[0])
		wantLabels := map[string]string{"kind": "a", "exported_job": "orders", "function_name": "fn",
			"function_version": "$LATEST", "region": "eu-west-1", "clearmode": "aggregate"}
		if fmt.Sprint(l) != fmt.Sprint(wantLabels) {
			t.Errorf("labels %v, want %v", l, wantLabels)
		}
	}
	if b := r.batch(); len(b) != 0 {
		t.Errorf("nothing pushed, batch %v", b)
	}
	// A drop is a reset: the new value is the increment.
	r.mustPush(http.MethodPost, "/metrics/job/orders", "# TYPE orders_total counter\norders_total{kind=\"a\"} 2\n")
	if got := r.batch()["orders_total"].Metric[0].GetCounter().GetValue(); got != 2 {
		t.Errorf("after a drop: increment %v, want 2", got)
	}
}

func TestLocalPushCreatedTimestampReset(t *testing.T) {
	r := newLocalPushRig(t)
	counter := func(v float64, created time.Time) []byte {
		return protoBody(t, &dto.MetricFamily{Name: proto.String("jobs_total"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(v), CreatedTimestamp: timestamppb.New(created)}}}})
	}
	t1 := time.Unix(1700000000, 0)
	for _, step := range []struct {
		v       float64
		created time.Time
		want    float64
	}{{5, t1, 5}, {8, t1, 3}, {9, t1.Add(time.Minute), 9}, {10, t1.Add(time.Minute), 1}} {
		if code, msg := r.push(http.MethodPut, "/metrics/job/x", protoType, counter(step.v, step.created)); code != 200 {
			t.Fatalf("push: %d %s", code, msg)
		}
		if got := r.batch()["jobs_total"].Metric[0].GetCounter().GetValue(); got != step.want {
			t.Errorf("push %v created %v: increment %v, want %v", step.v, step.created, got, step.want)
		}
	}
}

func TestLocalPushHistogramSummaryGauge(t *testing.T) {
	r := newLocalPushRig(t)
	body := func(n int) string {
		return fmt.Sprintf(`# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} %d
lat_seconds_bucket{le="+Inf"} %d
lat_seconds_sum %d
lat_seconds_count %d
# TYPE size_bytes summary
size_bytes{quantile="0.5"} 10
size_bytes_sum %d
size_bytes_count %d
# TYPE queue_depth gauge
queue_depth %d
`, n, 2*n, 3*n, 2*n, 4*n, n, n)
	}
	r.mustPush(http.MethodPut, "/metrics/job/j", body(1))
	r.batch()
	r.mustPush(http.MethodPut, "/metrics/job/j", body(3))
	b := r.batch()
	h := b["lat_seconds"].Metric[0].GetHistogram()
	if h.GetSampleCount() != 4 || h.GetSampleSum() != 6 || h.Bucket[0].GetCumulativeCount() != 2 {
		t.Errorf("histogram delta %v, want count 4 sum 6 le=0.1 2", h)
	}
	s := b["size_bytes"].Metric[0].GetSummary()
	if s.GetSampleCount() != 2 || s.GetSampleSum() != 8 || len(s.Quantile) != 0 {
		t.Errorf("summary delta %v, want count 2 sum 8", s)
	}
	g := b["queue_depth"].Metric[0]
	if g.GetGauge().GetValue() != 3 || labelsOf(g)["clearmode"] != "replace" {
		t.Errorf("gauge %v, want 3 with clearmode replace", g)
	}
}

func TestLocalPushClearmodePassThrough(t *testing.T) {
	r := newLocalPushRig(t)
	r.mustPush(http.MethodPost, "/metrics/job/j", `# TYPE temp gauge
temp{clear_mode="mean5m"} 21
# TYPE hits_total counter
hits_total{clearmode="aggregate"} 4
`)
	b := r.batch()
	tl := labelsOf(b["temp"].Metric[0])
	if tl["clear_mode"] != "mean5m" || tl["clearmode"] != "" {
		t.Errorf("gauge labels %v, want clear_mode=mean5m only", tl)
	}
	hits := b["hits_total"].Metric[0]
	n := 0
	for _, l := range hits.Label {
		if l.GetName() == "clearmode" {
			n++
		}
	}
	if n != 1 || hits.GetCounter().GetValue() != 4 {
		t.Errorf("counter %v: want one clearmode label and 4", hits)
	}
	// The same series without the label is still the same series.
	r.mustPush(http.MethodPost, "/metrics/job/j", "# TYPE hits_total counter\nhits_total 6\n")
	if got := r.batch()["hits_total"].Metric[0].GetCounter().GetValue(); got != 2 {
		t.Errorf("increment %v, want 2", got)
	}
}

func TestLocalPushPutPostDelete(t *testing.T) {
	r := newLocalPushRig(t)
	r.mustPush(http.MethodPut, "/metrics/job/j", "# TYPE a_total counter\na_total 5\n# TYPE g gauge\ng 1\n")
	r.batch()
	// POST replaces only the families it pushes: g stays.
	r.mustPush(http.MethodPost, "/metrics/job/j", "# TYPE a_total counter\na_total 6\n")
	if b := r.batch(); b["g"] == nil || b["a_total"].Metric[0].GetCounter().GetValue() != 1 {
		t.Errorf("after POST: batch %v, want a_total 1 and g", b)
	}
	// PUT replaces the group: g goes, a_total keeps its value.
	r.mustPush(http.MethodPut, "/metrics/job/j", "# TYPE b_total counter\nb_total 2\n")
	b := r.batch()
	if b["g"] != nil || b["a_total"] != nil || b["b_total"].Metric[0].GetCounter().GetValue() != 2 {
		t.Errorf("after PUT: batch %v, want only b_total 2", b)
	}
	// DELETE: nothing counted twice, nothing lost; a later push continues.
	if code, msg := r.push(http.MethodDelete, "/metrics/job/j", "", nil); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", code, msg)
	}
	if b := r.batch(); len(b) != 0 {
		t.Errorf("after DELETE: batch %v, want none", b)
	}
	r.mustPush(http.MethodPost, "/metrics/job/j", "# TYPE a_total counter\na_total 7\n")
	if got := r.batch()["a_total"].Metric[0].GetCounter().GetValue(); got != 1 {
		t.Errorf("after DELETE and a push: increment %v, want 1", got)
	}
	// Another group is another series (its grouping labels).
	r.mustPush(http.MethodPost, "/metrics/job/j/shard/2", "# TYPE a_total counter\na_total 7\n")
	b = r.batch()
	if mf := b["a_total"]; mf == nil || len(mf.Metric) != 1 || labelsOf(mf.Metric[0])["shard"] != "2" || mf.Metric[0].GetCounter().GetValue() != 7 {
		t.Errorf("second group: batch %v", b)
	}
}

func TestLocalPushInvalid(t *testing.T) {
	r := newLocalPushRig(t)
	for _, c := range []struct {
		name, method, path, ctype string
		body                      []byte
		code                      int
	}{
		{"timestamp", "POST", "/metrics/job/j", "", []byte("x_total 1 1700000000000\n"), 400},
		{"syntax", "POST", "/metrics/job/j", "", []byte("x_total{ 1\n"), 400},
		{"reserved name", "POST", "/metrics/job/j", "", []byte("aws_lambda_x_total 1\n"), 400},
		{"counter replace", "POST", "/metrics/job/j", "", []byte("# TYPE x_total counter\nx_total{clearmode=\"replace\"} 1\n"), 400},
		{"gauge aggregate", "POST", "/metrics/job/j", "", []byte("# TYPE g gauge\ng{clearmode=\"sum\"} 1\n"), 400},
		{"unknown clearmode", "POST", "/metrics/job/j", "", []byte("# TYPE g gauge\ng{clearmode=\"bogus\"} 1\n"), 400},
		{"negative counter", "POST", "/metrics/job/j", protoType, protoBody(t, &dto.MetricFamily{Name: proto.String("n_total"),
			Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(-1)}}}}), 400},
		{"invalid name", "POST", "/metrics/job/j", protoType, protoBody(t, &dto.MetricFamily{Name: proto.String(""),
			Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}), 400},
		{"proto timestamp", "POST", "/metrics/job/j", protoType, protoBody(t, &dto.MetricFamily{Name: proto.String("g"),
			Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(1)}}}), 400},
		{"no job", "POST", "/metrics/instance/x", "", []byte("g 1\n"), 400},
		{"clearmode grouping", "POST", "/metrics/job/j/clearmode/x", "", []byte("g 1\n"), 400},
		{"bad gzip", "POST", "/metrics/job/j", "", nil, 400},
		{"media type", "POST", "/metrics/job/j", "application/vnd.google.protobuf; encoding=text", []byte("g 1\n"), 415},
		{"method", "GET", "/metrics/job/j", "", nil, 405},
	} {
		req, _ := http.NewRequest(c.method, r.srv.URL+c.path, bytes.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		if c.name == "bad gzip" {
			req.Header.Set("Content-Encoding", "gzip")
			req.Body = http.NoBody
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.code)
		}
	}
	if fams, _ := gatherDTO(r.lp); len(fams) != 0 {
		t.Errorf("rejected pushes stored %v", fams)
	}
	// The Go runtime families of a default registry are ignored, not rejected.
	r.mustPush(http.MethodPost, "/metrics/job/j", "go_goroutines 7\nprocess_open_fds 3\n# TYPE ok_total counter\nok_total 1\n")
	if fams, _ := gatherDTO(r.lp); len(fams) != 1 || fams[0].GetName() != "ok_total" {
		t.Errorf("stored %v, want ok_total only", fams)
	}
}

func TestLocalPushSeriesLimit(t *testing.T) {
	r := newLocalPushRig(t)
	var b strings.Builder
	b.WriteString("# TYPE many_total counter\n")
	for i := range LocalPushSeriesLimit {
		fmt.Fprintf(&b, "many_total{i=\"%d\"} 1\n", i)
	}
	r.mustPush(http.MethodPut, "/metrics/job/j", b.String())
	if code, msg := r.push(http.MethodPost, "/metrics/job/other", "", []byte("one_more_total 1\n")); code != 400 || !strings.Contains(msg, "series limit") {
		t.Errorf("beyond the limit: %d %s, want 400 series limit", code, msg)
	}
	// Re-pushing the same series within the limit is fine.
	r.mustPush(http.MethodPut, "/metrics/job/j", b.String())
}

func TestCombineGatherersPrefersPlatform(t *testing.T) {
	m := NewMetrics(Labels{FunctionName: "fn"}, Histogram)
	lp := NewLocalPush(Labels{FunctionName: "fn"})
	if err := lp.Push(map[string]string{"job": "j"}, mustText(t, "# TYPE mine_total counter\nmine_total 1\n"), false); err != nil {
		t.Fatal(err)
	}
	fams, err := gatherDTO(CombineGatherers(m.Gatherer(), lp))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range fams {
		found = found || mf.GetName() == "mine_total"
	}
	if !found {
		t.Errorf("mine_total not gathered")
	}
}

func mustText(t *testing.T, s string) []family.Family {
	t.Helper()
	fams, err := pushbody.DecodeBody(strings.NewReader(s), http.Header{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// The local endpoint accepts exactly the clear modes the gateway would:
// anything it let through and the gateway rejected would cost the whole
// custom batch.
func TestLocalPushClearmodeFollowsTheGatewayGrammar(t *testing.T) {
	for _, tc := range []struct {
		typ  family.Type
		mode string
		ok   bool
	}{
		{family.Gauge, "replace", true},
		{family.Gauge, "info", true},
		{family.Gauge, "mean5m", true},
		{family.Gauge, "p99.9_1h", true},
		{family.Gauge, "p101_5m", false}, // percentile above 100
		{family.Gauge, "mean8d", false},  // window beyond 7d
		{family.Gauge, "p995m", false},   // percentile without "_"
		{family.Gauge, "aggregate", false},
		{family.Counter, "sum", true},
		{family.Counter, "replace", false},
		{family.Histogram, "mean5m", false},
	} {
		err := checkClearmode(tc.typ, tc.mode)
		if (err == nil) != tc.ok {
			t.Errorf("checkClearmode(%s, %q) = %v, want ok=%v", tc.typ, tc.mode, err, tc.ok)
		}
	}
}
