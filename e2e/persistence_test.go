package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
)

// persistPush is one push: its key and body, re-sent as they are until
// acknowledged.
type persistPush struct {
	key  string
	body []byte
	inc  int // counter increment; also the one histogram observation's value
}

func newPersistPush(pusher, inc int) persistPush {
	var k [16]byte
	rand.Read(k[:])
	body := fmt.Sprintf(`# TYPE persist_ops_total counter
persist_ops_total{pusher="%d"} %d
# TYPE persist_all_total counter
persist_all_total %d
# TYPE persist_latency histogram
persist_latency_bucket{le="2"} %d
persist_latency_bucket{le="+Inf"} 1
persist_latency_sum %d
persist_latency_count 1
`, pusher, inc, inc, b2i(inc <= 2), inc)
	return persistPush{key: fmt.Sprintf("%x", k), body: []byte(body), inc: inc}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// send POSTs p once to the gateway at base and returns the status (0 on a
// transport error) and the Idempotent-Replayed header.
func (p persistPush) send(ctx context.Context, client *http.Client, base string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/metrics/job/persist", bytes.NewReader(p.body))
	if err != nil {
		return 0, ""
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4")
	req.Header.Set("Idempotency-Key", p.key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, ""
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed")
}

// Every push answered 2xx survives SIGKILL and a restart, exactly once:
// 16 pushers push counter and histogram increments with an Idempotency-Key
// each, retrying the same push until acknowledged, while the gateway is
// killed twice at random moments and restarted on the same directory. The
// totals equal the acknowledged increments: none lost (durable before the
// answer), none counted twice (a push applied before the kill whose answer
// was lost is recognised by its key, restored from the log, on retry).
func TestPersistenceSurvivesSIGKILL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	logs := &harness.LogBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs)
		}
	}()
	start := func() *harness.Gateway {
		t.Helper()
		gw, err := harness.StartGateway(ctx, gatewayBin, logs, "--persistence.dir="+dir, "--persistence.snapshot-interval=700ms")
		if err != nil {
			t.Fatal(err)
		}
		return gw
	}
	gw := start()
	var url atomic.Pointer[string]
	url.Store(&gw.URL)

	const pushers = 16
	acked := make([][]persistPush, pushers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var unexpected atomic.Value
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: pushers}}
	for i := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(i), 99))
			for !stop.Load() && ctx.Err() == nil {
				p := newPersistPush(i, 1+r.IntN(5))
				for ctx.Err() == nil { // until acknowledged
					code, _ := p.send(ctx, client, *url.Load())
					if code >= 200 && code < 300 {
						acked[i] = append(acked[i], p)
						break
					}
					if code != 0 && code != http.StatusServiceUnavailable {
						unexpected.Store(fmt.Sprintf("pusher %d: answer %d", i, code))
					}
					time.Sleep(10 * time.Millisecond) // down: retry the same push
				}
			}
		}()
	}
	for kill := range 2 {
		time.Sleep(time.Duration(300+mrand.IntN(1500)) * time.Millisecond)
		gw.Kill()
		t.Logf("SIGKILL %d", kill+1)
		gw = start()
		url.Store(&gw.URL)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if v := unexpected.Load(); v != nil {
		t.Fatal(v)
	}
	if ctx.Err() != nil {
		t.Fatal("timed out")
	}
	want := map[string]float64{}
	total, n, small := 0, 0, 0
	for i, ps := range acked {
		sum := 0
		for _, p := range ps {
			sum += p.inc
			small += b2i(p.inc <= 2)
		}
		want[fmt.Sprintf(`persist_ops_total{job="persist",pusher="%d"}`, i)] = float64(sum)
		total += sum
		n += len(ps)
	}
	want[`persist_all_total{job="persist"}`] = float64(total)
	want[`persist_latency_count{job="persist"}`] = float64(n)
	want[`persist_latency_sum{job="persist"}`] = float64(total)
	want[`persist_latency_bucket{job="persist",le="2"}`] = float64(small)
	want[`persist_latency_bucket{job="persist",le="+Inf"}`] = float64(n)
	t.Logf("%d pushes acknowledged", n)

	check := func(when string) {
		t.Helper()
		got := scrapePersist(t, ctx, gw.URL)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v (the acknowledged pushes)", when, k, got[k], v)
			}
		}
	}
	check("after two SIGKILLs")

	// Once more, with nothing in flight: keys survive a crash too.
	gw.Kill()
	gw = start()
	check("after a third SIGKILL")
	for i := range pushers {
		if len(acked[i]) == 0 {
			continue
		}
		p := acked[i][mrand.IntN(len(acked[i]))]
		code, replayed := p.send(ctx, client, gw.URL)
		if code != http.StatusOK || replayed != "true" {
			t.Fatalf("re-sending an acknowledged push after a restart: %d, Idempotent-Replayed %q; want 200, true", code, replayed)
		}
	}
	check("after re-sending acknowledged pushes")

	// A graceful restart goes through the final snapshot.
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	gw = start()
	defer gw.Stop()
	check("after a graceful restart")
	if !strings.Contains(logs.String(), "replayed_records=0") {
		t.Error("the restart after a graceful stop replayed the log: no final snapshot")
	}
}

// scrapePersist returns the persist_* samples by series.
func scrapePersist(t *testing.T, ctx context.Context, base string) map[string]float64 {
	t.Helper()
	fams, _, err := harness.Scrape(ctx, base, "", "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range fams {
		if !strings.HasPrefix(name, "persist_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			id := func(n string, extra ...string) string {
				return n + "{" + strings.Join(append(append([]string(nil), ls...), extra...), ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[id(name)] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				h := m.GetHistogram()
				out[id(name+"_count")] = float64(h.GetSampleCount())
				out[id(name+"_sum")] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[id(name+"_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
				out[id(name+"_bucket", `le="+Inf"`)] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}
