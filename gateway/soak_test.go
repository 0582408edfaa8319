package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// TestSoakExactlyOnce runs many pushers against a real HTTP server while
// their connections fail: requests cancelled at random moments, connections
// closed mid-body by the transport, keep-alive connections dropped. Each
// pusher retries a push with the same Idempotency-Key until an answer
// arrives. Meanwhile scrapers read /metrics (text and OpenMetrics) and
// /api/v1/metrics, and deleters DELETE a set of groups of their own. At the
// end the totals of the other groups must equal exactly the increments whose
// pushes were answered 2xx: nothing lost, nothing counted twice.
//
// The assertions do not depend on timing: whatever the interleaving, every
// acknowledged push is counted once, and no push is acknowledged that was
// not applied.
func TestSoakExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	pushers, pushFor := 32, 15*time.Second
	if raceEnabled() {
		pushers, pushFor = 12, 10*time.Second
	}
	const (
		keptGroups    = 6 // job="soak", shard=0..5: asserted
		deletedGroups = 3 // job="soakdel", shard=0..2: deleted concurrently
	)
	start := time.Now()

	store := gateway.NewMemoryStore(gateway.StoreOptions{})
	gw, err := gateway.New(store, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	stopPushing := time.Now().Add(pushFor)
	var faults faultStats

	// acked[g][p] are the increments pusher p got a 2xx for in kept group g.
	type tally struct {
		ops, count, le025, le1 int64
		sum                    float64
		pushes, maxAttempts    int
	}
	acked := make([][]tally, keptGroups)
	for g := range acked {
		acked[g] = make([]tally, pushers)
	}
	pusherErrs := make([]error, pushers)

	var wg sync.WaitGroup
	for p := 0; p < pushers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 42))
			flaky := newFlakyClient(rand.New(rand.NewPCG(uint64(p), 99)), &faults) // its own rng: dials run on transport goroutines
			steady := &http.Client{Timeout: 30 * time.Second}
			defer flaky.CloseIdleConnections()
			for n := 0; time.Now().Before(stopPushing); n++ {
				kept := rng.IntN(4) != 0 // a quarter go to the deleted groups
				var path string
				g := 0
				if kept {
					g = rng.IntN(keptGroups)
					path = fmt.Sprintf("/metrics/job/soak/shard/%d", g)
				} else {
					path = fmt.Sprintf("/metrics/job/soakdel/shard/%d", rng.IntN(deletedGroups))
				}
				inc := int64(1 + rng.IntN(5))
				obs := []float64{0.125, 0.5, 4} // dyadic: sums are exact in any order
				var o [3]int64
				for i := range o {
					o[i] = int64(rng.IntN(3))
				}
				count := o[0] + o[1] + o[2]
				sum := float64(o[0])*obs[0] + float64(o[1])*obs[1] + float64(o[2])*obs[2]
				body := fmt.Sprintf(`# TYPE soak_ops_total counter
soak_ops_total{pusher="%[1]d"} %[2]d
# TYPE soak_latency_seconds histogram
soak_latency_seconds_bucket{pusher="%[1]d",le="0.25"} %[3]d
soak_latency_seconds_bucket{pusher="%[1]d",le="1"} %[4]d
soak_latency_seconds_bucket{pusher="%[1]d",le="+Inf"} %[5]d
soak_latency_seconds_sum{pusher="%[1]d"} %[6]v
soak_latency_seconds_count{pusher="%[1]d"} %[5]d
`, p, inc, o[0], o[0]+o[1], count, sum)
				method := http.MethodPost
				if rng.IntN(3) == 0 {
					method = http.MethodPut // both families always pushed: the same effect
				}
				key := fmt.Sprintf("soak-%d-%d", p, n)
				code, answer, attempts := pushUntilAnswered(srv.URL+path, method, key, []byte(body), flaky, steady, rng)
				switch {
				case code >= 200 && code < 300:
					if kept {
						a := &acked[g][p]
						a.ops += inc
						a.count += count
						a.le025 += o[0]
						a.le1 += o[0] + o[1]
						a.sum += sum
						a.pushes++
						a.maxAttempts = max(a.maxAttempts, attempts)
					}
				default:
					pusherErrs[p] = fmt.Errorf("push %s %s (key %s): %d %s", method, path, key, code, answer)
					return
				}
			}
		}()
	}

	// Scrapers, API readers and deleters run until the pushers are done.
	done := make(chan struct{})
	var bg sync.WaitGroup
	bgErrs := make(chan error, 64)
	report := func(err error) {
		select {
		case bgErrs <- err:
		default:
		}
	}
	var scrapes, apiReads, deletes atomic.Int64
	for i := 0; i < 2; i++ {
		openMetrics := i == 1
		bg.Add(1)
		go func() {
			defer bg.Done()
			last := map[string]float64{} // counters only go up in kept groups
			for {
				select {
				case <-done:
					return
				default:
				}
				body, err := scrapeSoak(srv.URL, openMetrics)
				if err != nil {
					report(err)
					return
				}
				scrapes.Add(1)
				if openMetrics {
					continue
				}
				fams, err := parseText(strings.NewReader(body))
				if err != nil {
					report(fmt.Errorf("scrape does not parse: %w", err))
					return
				}
				for id, v := range soakSamples(t, fams, "soak") {
					if v < last[id] {
						report(fmt.Errorf("%s went down from %v to %v", id, last[id], v))
						return
					}
					last[id] = v
				}
			}
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			resp, err := http.Get(srv.URL + "/api/v1/metrics")
			if err != nil {
				report(err)
				return
			}
			var v struct {
				Status string `json:"status"`
			}
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || v.Status != "success" {
				report(fmt.Errorf("GET /api/v1/metrics: %d %v", resp.StatusCode, err))
				return
			}
			apiReads.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for d := 0; d < deletedGroups; d++ {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(uint64(d), 7))
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Duration(rng.IntN(20)) * time.Millisecond):
				}
				req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/metrics/job/soakdel/shard/%d", srv.URL, d), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					report(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					report(fmt.Errorf("DELETE: %d", resp.StatusCode))
					return
				}
				deletes.Add(1)
			}
		}()
	}

	wg.Wait()
	close(done)
	bg.Wait()
	close(bgErrs)
	for err := range bgErrs {
		t.Error(err)
	}
	for p, err := range pusherErrs {
		if err != nil {
			t.Errorf("pusher %d: %v", p, err)
		}
	}

	// The final state of the kept groups: exactly the acknowledged pushes.
	want := map[string]float64{}
	var ackedPushes, maxAttempts int
	for g := range acked {
		for p, a := range acked[g] {
			if a.pushes == 0 {
				continue // the series does not exist
			}
			ackedPushes += a.pushes
			maxAttempts = max(maxAttempts, a.maxAttempts)
			ls := fmt.Sprintf(`job="soak",pusher="%d",shard="%d"`, p, g)
			want[fmt.Sprintf("soak_ops_total{%s}", ls)] = float64(a.ops)
			want[fmt.Sprintf("soak_latency_seconds_count{%s}", ls)] = float64(a.count)
			want[fmt.Sprintf("soak_latency_seconds_sum{%s}", ls)] = a.sum
			want[fmt.Sprintf(`soak_latency_seconds_bucket{job="soak",le="0.25",pusher="%d",shard="%d"}`, p, g)] = float64(a.le025)
			want[fmt.Sprintf(`soak_latency_seconds_bucket{job="soak",le="1",pusher="%d",shard="%d"}`, p, g)] = float64(a.le1)
			want[fmt.Sprintf(`soak_latency_seconds_bucket{job="soak",le="+Inf",pusher="%d",shard="%d"}`, p, g)] = float64(a.count)
		}
	}
	body, err := scrapeSoak(srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := parseText(strings.NewReader(body))
	if err != nil {
		t.Fatalf("final scrape: %v", err)
	}
	assertSamples(t, soakSamples(t, fams, "soak"), want)

	t.Logf("%d pushers for %v: %d pushes acknowledged into kept groups (at most %d attempts for one); faults injected: %d cancelled, %d cut mid-body, %d connections dropped, %d transport errors; %d scrapes, %d API reads, %d deletes; %v in all",
		pushers, pushFor, ackedPushes, maxAttempts, faults.cancelled.Load(), faults.cutBody.Load(), faults.dropped.Load(), faults.transportErrs.Load(),
		scrapes.Load(), apiReads.Load(), deletes.Load(), time.Since(start).Round(100*time.Millisecond))
	if faults.transportErrs.Load() == 0 || faults.cancelled.Load() == 0 || faults.cutBody.Load() == 0 {
		t.Errorf("the faults were not exercised: %d transport errors, %d cancellations, %d cut bodies",
			faults.transportErrs.Load(), faults.cancelled.Load(), faults.cutBody.Load())
	}
	if ackedPushes == 0 {
		t.Error("no push acknowledged")
	}
}

// pushUntilAnswered sends the push with its key until an HTTP answer other
// than a 5xx arrives (5xx answers are not remembered by key, so the push
// was not applied and is retried). The first attempts go through the flaky
// client; from the 8th on the steady one, so every push ends.
func pushUntilAnswered(url, method, key string, body []byte, flaky, steady *http.Client, rng *rand.Rand) (code int, answer string, attempts int) {
	for attempts = 1; ; attempts++ {
		client := flaky
		if attempts >= 8 {
			client = steady
		}
		code, answer, err := tryPush(url, method, key, body, client, rng, attempts < 8)
		if err == nil && code < 500 {
			return code, answer, attempts
		}
		if attempts > 50 {
			return code, fmt.Sprintf("gave up after %d attempts: %v %s", attempts, err, answer), attempts
		}
	}
}

func tryPush(url, method, key string, body []byte, client *http.Client, rng *rand.Rand, faulty bool) (int, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rdr io.Reader = bytes.NewReader(body)
	if faulty {
		switch rng.IntN(8) {
		case 0: // cancel at a random moment
			stats(client).cancelled.Add(1)
			time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
		case 1: // the body breaks off part-way: the transport drops the connection
			stats(client).cutBody.Add(1)
			rdr = &cutReader{r: rdr, left: rng.IntN(len(body))}
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rdr)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(gateway.IdempotencyKeyHeader, `"`+key+`"`)
	if faulty && rng.IntN(10) == 0 {
		req.Close = true
	}
	resp, err := client.Do(req)
	if err != nil {
		stats(client).transportErrs.Add(1)
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		stats(client).transportErrs.Add(1)
		return 0, "", err
	}
	return resp.StatusCode, string(b), nil
}

// faultStats counts the faults injected.
type faultStats struct {
	cancelled, cutBody, dropped, transportErrs atomic.Int64
}

var faultsByClient sync.Map // *http.Client → *faultStats

func stats(c *http.Client) *faultStats {
	if s, ok := faultsByClient.Load(c); ok {
		return s.(*faultStats)
	}
	return &faultStats{} // the steady client: not counted
}

// newFlakyClient returns a client whose connections sometimes close
// themselves after a random number of written bytes (mid-request).
func newFlakyClient(rng *rand.Rand, st *faultStats) *http.Client {
	var mu sync.Mutex // dials may run concurrently
	intN := func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(n)
	}
	dialer := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil || intN(6) != 0 {
				return c, err
			}
			return &droppingConn{Conn: c, left: intN(600), st: st}, nil
		},
		MaxIdleConnsPerHost: 2,
	}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	faultsByClient.Store(c, st)
	return c
}

// droppingConn closes itself once left bytes were written.
type droppingConn struct {
	net.Conn
	mu   sync.Mutex
	left int
	st   *faultStats
}

func (c *droppingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left < 0 {
		return 0, net.ErrClosed
	}
	if len(p) <= c.left {
		c.left -= len(p)
		return c.Conn.Write(p)
	}
	n, _ := c.Conn.Write(p[:c.left])
	c.left = -1
	c.st.dropped.Add(1)
	c.Conn.Close()
	return n, errors.New("connection dropped mid-request (injected)")
}

// cutReader fails after left bytes.
type cutReader struct {
	r    io.Reader
	left int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("body cut off (injected)")
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

func scrapeSoak(base string, openMetrics bool) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	accept := "text/plain; version=0.0.4"
	if openMetrics {
		accept = "application/openmetrics-text; version=1.0.0"
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics (%s): %d %s", accept, resp.StatusCode, b)
	}
	if openMetrics && !bytes.HasSuffix(b, []byte("# EOF\n")) {
		return "", fmt.Errorf("OpenMetrics scrape without # EOF")
	}
	return string(b), nil
}

// soakSamples are the pushed samples of the groups with the given job.
func soakSamples(t *testing.T, fams map[string]*dto.MetricFamily, job string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for id, v := range pushedSamples(t, fams) {
		if strings.Contains(id, `job="`+job+`"`) {
			out[id] = v
		}
	}
	return out
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}
