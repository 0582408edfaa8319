package e2e

// No loss, no double count: a gateway that fails, hangs, or applies a push
// and loses its answer for a stretch of invocations, then recovers; batches
// reordered and redelivered by the Telemetry API; a gateway hanging at
// SHUTDOWN. In every case that ends with a working gateway, the scrape's
// totals equal the invocations exactly.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

// proxyMode is how the flaky gateway treats a push.
type proxyMode int32

const (
	pass proxyMode = iota // forward, answer as the gateway did
	fail                  // answer 500, do not forward
	hang                  // never answer, do not forward: the client times out
	lose                  // forward (applied), then close the connection without an answer
	late                  // forward (applied), then hold the answer until the client times out
)

func (m proxyMode) String() string {
	return [...]string{"pass", "fail", "hang", "lose", "late"}[m]
}

// flakyGateway is a proxy in front of the real gateway that misbehaves on
// pushes as its mode says; other requests pass.
type flakyGateway struct {
	target string
	mode   atomic.Int32
	client *http.Client
	done   chan struct{} // closed at cleanup: held requests end

	mu     sync.Mutex
	counts map[proxyMode]int
	keys   map[string]int // attempts per Idempotency-Key
	noKey  int
}

func newFlakyGateway(t *testing.T, target string) (*flakyGateway, string) {
	t.Helper()
	f := &flakyGateway{target: target, client: &http.Client{Timeout: 10 * time.Second}, done: make(chan struct{}),
		counts: map[proxyMode]int{}, keys: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		close(f.done)
		srv.Close()
	})
	return f, srv.URL
}

func (f *flakyGateway) set(m proxyMode) { f.mode.Store(int32(m)) }

func (f *flakyGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	isPush := (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.HasPrefix(r.URL.Path, "/metrics")
	mode := pass
	if isPush {
		mode = proxyMode(f.mode.Load())
		f.mu.Lock()
		f.counts[mode]++
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			f.keys[k]++
		} else {
			f.noKey++
		}
		f.mu.Unlock()
	}
	hold := func() {
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
	}
	switch mode {
	case fail:
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	case hang:
		hold()
		return
	}
	resp, err := f.forward(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	switch mode {
	case lose:
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	case late:
		hold()
		return
	}
	for k, vs := range resp.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// forward sends the request on to the gateway, independently of the
// client: a push forwarded is applied even when the client gives up.
func (f *flakyGateway) forward(r *http.Request, body []byte) (*answer, error) {
	req, err := http.NewRequest(r.Method, f.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Content-Type", "Content-Encoding", "Idempotency-Key", "Authorization", "Accept"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &answer{resp.StatusCode, resp.Header, b}, err
}

func (f *flakyGateway) summary() (counts map[proxyMode]int, keys, maxAttempts, noKey int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts = map[proxyMode]int{}
	for m, n := range f.counts {
		counts[m] = n
	}
	for _, n := range f.keys {
		maxAttempts = max(maxAttempts, n)
	}
	return counts, len(f.keys), maxAttempts, f.noKey
}

// syntheticScenario writes a scenario of n invocations in the bundled
// scenario's format to a temporary file and loads it: batch k carries the
// report of invocation k-1 and the start of invocation k; the last batch,
// delivered at shutdown, the last report. Every 10th invocation from the
// 8th fails with an error, every 10th from the 10th times out; the first
// is a cold start.
func syntheticScenario(t *testing.T, n int) (*lambdaemu.Scenario, map[string]float64) {
	t.Helper()
	type event struct {
		Time   string `json:"time"`
		Type   string `json:"type"`
		Record any    `json:"record"`
	}
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	at := func(k int, ms int) string {
		return start.Add(time.Duration(k)*time.Second + time.Duration(ms)*time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	}
	reqID := func(k int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", k) }
	status := func(k int) (string, string) {
		switch k % 10 {
		case 7:
			return "error", "Runtime.ExitError"
		case 9:
			return "timeout", "Sandbox.Timedout"
		}
		return "success", ""
	}
	byStatus := map[string]float64{}
	report := func(k int) event {
		st, errType := status(k)
		byStatus[st]++
		metrics := map[string]any{"durationMs": 20.5 + float64(k), "billedDurationMs": 21 + k, "memorySizeMB": 512, "maxMemoryUsedMB": 90 + k%7}
		if k == 0 {
			metrics["initDurationMs"] = 180.25
		}
		rec := map[string]any{"requestId": reqID(k), "status": st, "metrics": metrics}
		if errType != "" {
			rec["errorType"] = errType
		}
		return event{at(k, 500), "platform.report", rec}
	}
	sc := map[string]any{
		"description": fmt.Sprintf("synthetic: %d invocations", n),
		"function":    map[string]any{"name": "orders-api", "version": "$LATEST", "memorySizeMB": 512},
	}
	var invocations []map[string]string
	var batches [][]event
	for k := 0; k < n; k++ {
		invocations = append(invocations, map[string]string{"requestId": reqID(k)})
		var b []event
		if k > 0 {
			b = append(b, report(k-1))
		}
		st, errType := status(k)
		done := map[string]any{"requestId": reqID(k), "status": st, "metrics": map[string]any{"durationMs": 20.0 + float64(k), "producedBytes": 100}}
		if errType != "" {
			done["errorType"] = errType
		}
		b = append(b,
			event{at(k, 0), "platform.start", map[string]any{"requestId": reqID(k), "version": "$LATEST"}},
			event{at(k, 400), "platform.runtimeDone", done})
		batches = append(batches, b)
	}
	batches = append(batches, []event{report(n - 1)})
	sc["invocations"] = invocations
	sc["batches"] = batches
	raw, err := json.MarshalIndent(sc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "synthetic.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := lambdaemu.LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	return loaded, byStatus
}

// checkTotals asserts the scrape counts exactly the invocations by status,
// and one duration sample and one report event per invocation.
func checkTotals(t *testing.T, families map[string]*dto.MetricFamily, byStatus map[string]float64) {
	t.Helper()
	want := 0.0
	for _, n := range byStatus {
		want += n
	}
	inv := series(t, families, "aws_lambda_invocations_total", "status")
	got := 0.0
	for status, m := range inv {
		got += m.GetCounter().GetValue()
		if m.GetCounter().GetValue() != byStatus[status] {
			t.Errorf("aws_lambda_invocations_total{status=%q} = %v, want %v", status, m.GetCounter().GetValue(), byStatus[status])
		}
	}
	if got != want {
		t.Errorf("aws_lambda_invocations_total = %v in all, want exactly %v", got, want)
	}
	if c := single(t, families, "aws_lambda_duration_seconds").GetHistogram().GetSampleCount(); float64(c) != want {
		t.Errorf("duration samples = %d, want %v", c, want)
	}
	if c := single(t, families, "aws_lambda_cold_starts_total").GetCounter().GetValue(); c != 1 {
		t.Errorf("cold starts = %v, want 1", c)
	}
	events := series(t, families, "aws_lambda_telemetry_events_total", "type")
	if got := events["platform.report"].GetCounter().GetValue(); got != want {
		t.Errorf("platform.report events = %v, want %v", got, want)
	}
}

// scenarioCase is a scenario to run and how to check its scrape.
type scenarioCase struct {
	name    string
	load    func(t *testing.T) (*lambdaemu.Scenario, func(t *testing.T, families map[string]*dto.MetricFamily))
	stretch [2]int // invocations [from, to) during which the gateway misbehaves
}

var scenarioCases = []scenarioCase{
	{
		name: "bundled",
		load: func(t *testing.T) (*lambdaemu.Scenario, func(*testing.T, map[string]*dto.MetricFamily)) {
			sc, err := lambdaemu.LoadScenario(scenarioPath)
			if err != nil {
				t.Fatal(err)
			}
			return sc, func(t *testing.T, families map[string]*dto.MetricFamily) { checkScenario(t, families, sc) }
		},
		stretch: [2]int{1, 3},
	},
	{
		name: "synthetic50",
		load: func(t *testing.T) (*lambdaemu.Scenario, func(*testing.T, map[string]*dto.MetricFamily)) {
			sc, byStatus := syntheticScenario(t, 50)
			return sc, func(t *testing.T, families map[string]*dto.MetricFamily) { checkTotals(t, families, byStatus) }
		},
		stretch: [2]int{10, 30},
	},
}

// TestNoLossAcrossAGatewayOutage: the gateway fails (500), hangs, or applies
// pushes but loses (or delays past the client's timeout) their answers for a
// stretch of invocations, then recovers. Every batch is retried with its
// key: the totals are exact, neither short nor counted twice.
func TestNoLossAcrossAGatewayOutage(t *testing.T) {
	for _, mode := range []proxyMode{fail, hang, lose, late} {
		for _, c := range scenarioCases {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				p := startPipeline(t)
				sc, check := c.load(t)
				p.scenario = sc
				proxy, proxyURL := newFlakyGateway(t, p.gateway.URL)
				cfg := lambdaemu.Config{
					// Batch 2 also arrives again later, and batch 3 before its predecessor.
					Order: append(lambdaemu.Reordered(len(sc.Batches), 2), 2),
					BeforeInvoke: func(k int) {
						if k >= c.stretch[0] && k < c.stretch[1] {
							proxy.set(mode)
						} else {
							proxy.set(pass)
						}
					},
				}
				p.run(t, cfg, "GATEWAY="+proxyURL, "DISPATCH_MIN_BATCH_SIZE=1", "PUSH_TIMEOUT=150ms", "PUSH_RETRY_BACKOFF=1ms")

				counts, keys, maxAttempts, noKey := proxy.summary()
				t.Logf("pushes by mode %v; %d keys, at most %d attempts per key", counts, keys, maxAttempts)
				if counts[mode] == 0 {
					t.Fatalf("no push met the %s gateway: the test proves nothing", mode)
				}
				if noKey > 0 {
					t.Errorf("%d pushes without an Idempotency-Key", noKey)
				}
				if maxAttempts < 2 {
					t.Errorf("no batch was retried with its key")
				}
				families, _ := p.scrape(t, "", "")
				check(t, families)
				if mode == lose || mode == late {
					// The gateway applied pushes whose answers were lost: their
					// retries must have been replays.
					if replays := families["gateway_idempotent_replays_total"]; replays == nil || replays.Metric[0].GetCounter().GetValue() == 0 {
						t.Errorf("no push was answered as a replay although answers were lost")
					}
				}
				if !strings.Contains(p.logs.String(), "push failed") {
					t.Errorf("push failures were not logged")
				}
			})
		}
	}
}

// TestNoLossReorderedAndRedeliveredBatches: the Telemetry API delivers
// batches out of order and some twice, right away or later; the last
// invocation's batch comes before its predecessor's, which arrives only
// after SHUTDOWN.
func TestNoLossReorderedAndRedeliveredBatches(t *testing.T) {
	for _, c := range scenarioCases {
		t.Run(c.name, func(t *testing.T) {
			p := startPipeline(t)
			sc, check := c.load(t)
			p.scenario = sc
			n := len(sc.Batches)
			order := lambdaemu.Reordered(n, 0, 2, n-2)
			order = append(order, 1, 0, n-1) // late redeliveries, at shutdown
			// POSTs still under way when the extension exits fail, as in Lambda.
			p.run(t, lambdaemu.Config{Order: order, Redeliver: []int{1, n - 1}}, "DISPATCH_MIN_BATCH_SIZE=1")
			if !strings.Contains(p.logs.String(), "telemetry batch redelivered, dropped") {
				t.Errorf("no redelivery reached the listener")
			}
			families, _ := p.scrape(t, "", "")
			check(t, families)
		})
	}
}

// TestNoLossShutdownWithAHangingGateway: the final push cannot complete,
// and the extension still exits before the SHUTDOWN deadline.
func TestNoLossShutdownWithAHangingGateway(t *testing.T) {
	p := startPipeline(t)
	proxy, proxyURL := newFlakyGateway(t, p.gateway.URL)
	proxy.set(hang)
	const shutdownTimeout = 2 * time.Second
	res := p.run(t, lambdaemu.Config{ShutdownTimeout: shutdownTimeout},
		"GATEWAY="+proxyURL, "PUSH_TIMEOUT=100ms")
	if res.ShutdownDuration >= shutdownTimeout {
		t.Errorf("shutdown took %s, deadline %s", res.ShutdownDuration, shutdownTimeout)
	}
	if counts, _, _, _ := proxy.summary(); counts[hang] == 0 {
		t.Fatal("no push reached the hanging gateway")
	}
	if !strings.Contains(p.logs.String(), "final push failed") {
		t.Errorf("the failed final push was not logged")
	}
}

// TestNoLossInvalidGatewayURLKeepsTheFunctionRunning: a configuration error
// is logged, never reported through /init/error, which would fail the
// function's init; the extension runs on without metrics.
func TestNoLossInvalidGatewayURLKeepsTheFunctionRunning(t *testing.T) {
	p := startPipeline(t)
	res := p.run(t, lambdaemu.Config{}, "GATEWAY=gateway.internal:9091")
	if len(res.InitErrors) > 0 || len(res.ExitErrors) > 0 {
		t.Errorf("init errors %v, exit errors %v; want none", res.InitErrors, res.ExitErrors)
	}
	if logs := p.logs.String(); !strings.Contains(logs, "gateway.internal:9091") || !strings.Contains(logs, "is not an http(s) URL") {
		t.Errorf("the invalid GATEWAY was not named in the logs")
	}
}
