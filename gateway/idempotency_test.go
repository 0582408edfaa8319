package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// idemDo sends a request with an Idempotency-Key (none when key is "") and
// returns status, body and whether the answer was replayed.
func idemDo(t *testing.T, g *testGateway, method, path, body, key string) (int, string, bool) {
	t.Helper()
	req, err := http.NewRequest(method, g.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(gateway.IdempotencyKeyHeader, key)
	}
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Idempotent-Replayed") == "true"
}

// ownValue returns the value of the gateway's own unlabelled metric name.
func ownValue(t *testing.T, g *testGateway, name string) float64 {
	t.Helper()
	mf := g.scrapeFamilies()[name]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("no %s in the scrape", name)
	}
	m := mf.GetMetric()[0]
	return m.GetGauge().GetValue() + m.GetCounter().GetValue()
}

const oneCount = "# TYPE c_total counter\nc_total 1\n"

// A repeated key with the same request gets the first answer and is not
// applied again.
func TestIdempotentRepeat(t *testing.T) {
	g := newClockGateway(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), gateway.IdempotencyOptions{})
	code, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, `"k1"`)
	if code != http.StatusOK || replayed {
		t.Fatalf("first push: %d replayed=%v", code, replayed)
	}
	for _, key := range []string{`"k1"`, "k1"} { // a bare token is the same key
		code, _, replayed = idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, key)
		if code != http.StatusOK || !replayed {
			t.Errorf("repeat with %s: %d replayed=%v, want 200 replayed", key, code, replayed)
		}
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 1})

	// Without a key, or with another key, the same body counts again.
	idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "")
	idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k2")
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 3})
	if n := ownValue(t, g, "gateway_idempotency_keys"); n != 2 {
		t.Errorf("gateway_idempotency_keys = %v, want 2", n)
	}
	if n := ownValue(t, g, "gateway_idempotent_replays_total"); n != 2 {
		t.Errorf("gateway_idempotent_replays_total = %v, want 2", n)
	}
}

// A rejected push is deterministic: its answer is remembered and repeated.
func TestIdempotentRejectionRemembered(t *testing.T) {
	g := newClockGateway(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), gateway.IdempotencyOptions{})
	bad := "# TYPE c_total counter\nc_total -1\n"
	code1, body1, _ := idemDo(t, g, http.MethodPost, "/metrics/job/j", bad, "k")
	code2, body2, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", bad, "k")
	if code1 != http.StatusBadRequest || code2 != code1 || body2 != body1 || !replayed {
		t.Errorf("first %d %q, repeat %d %q replayed=%v; want the same 400 replayed", code1, body1, code2, body2, replayed)
	}
}

// A key reused with a different request answers 422 and applies nothing.
func TestIdempotencyKeyReusedDifferently(t *testing.T) {
	g := newClockGateway(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), gateway.IdempotencyOptions{})
	idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k")
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/metrics/job/j", "# TYPE c_total counter\nc_total 5\n"}, // other body
		{http.MethodPut, "/metrics/job/j", oneCount},                               // other method
		{http.MethodPost, "/metrics/job/other", oneCount},                          // other group
	} {
		code, body, _ := idemDo(t, g, tc.method, tc.path, tc.body, "k")
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "different request") {
			t.Errorf("%s %s %q: %d %q, want 422", tc.method, tc.path, tc.body, code, body)
		}
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 1})
	// The original request still replays.
	if code, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); code != http.StatusOK || !replayed {
		t.Errorf("original repeat: %d replayed=%v", code, replayed)
	}
}

// Answers are forgotten after the retention window (fake clock).
func TestIdempotencyRetention(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newClockGateway(t, clock, gateway.IdempotencyOptions{Retention: time.Minute})
	idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k")
	clock.Add(59 * time.Second)
	if _, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); !replayed {
		t.Error("repeat within the window was not replayed")
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 1})
	clock.Add(2 * time.Second)
	if n := ownValue(t, g, "gateway_idempotency_keys"); n != 0 {
		t.Errorf("gateway_idempotency_keys after the window = %v, want 0", n)
	}
	if code, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); code != http.StatusOK || replayed {
		t.Errorf("repeat after the window: %d replayed=%v, want applied", code, replayed)
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 2})
}

// flakyStore fails the next `failures` pushes with a server-side error.
type flakyStore struct {
	*gateway.MemoryStore
	mu       sync.Mutex
	failures int
	pushes   int
}

func (s *flakyStore) Push(ctx context.Context, labels map[string]string, fams []family.Family, replace bool) error {
	s.mu.Lock()
	s.pushes++
	fail := s.failures > 0
	if fail {
		s.failures--
	}
	s.mu.Unlock()
	if fail {
		return errors.New("storage unavailable")
	}
	return s.MemoryStore.Push(ctx, labels, fams, replace)
}

// A 5xx answer is not remembered: the retry is applied.
func TestIdempotencyServerErrorNotRemembered(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	store := &flakyStore{MemoryStore: gateway.NewMemoryStore(gateway.StoreOptions{Now: clock.Now}), failures: 1}
	gw, err := gateway.New(store, gateway.Options{Idempotency: gateway.IdempotencyOptions{Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	g := &testGateway{t: t, srv: srv, store: store.MemoryStore}

	if code, _, _ := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); code != http.StatusInternalServerError {
		t.Fatalf("first push: %d, want 500", code)
	}
	if code, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); code != http.StatusOK || replayed {
		t.Fatalf("retry: %d replayed=%v, want applied", code, replayed)
	}
	if code, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); code != http.StatusOK || !replayed {
		t.Fatalf("second retry: %d replayed=%v, want replayed", code, replayed)
	}
	if store.pushes != 2 {
		t.Errorf("store pushes = %d, want 2", store.pushes)
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 1})
}

// At most MaxKeys answers are remembered; the oldest go first.
func TestIdempotencyBounded(t *testing.T) {
	g := newClockGateway(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), gateway.IdempotencyOptions{MaxKeys: 2})
	for _, k := range []string{"a", "b", "c"} {
		idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, k)
	}
	if n := ownValue(t, g, "gateway_idempotency_keys"); n != 2 {
		t.Errorf("gateway_idempotency_keys = %v, want 2", n)
	}
	if _, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "c"); !replayed {
		t.Error("newest key c not replayed")
	}
	if _, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "a"); replayed {
		t.Error("oldest key a still remembered beyond MaxKeys")
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 4})
}

func TestIdempotencyKeyInvalid(t *testing.T) {
	g := newClockGateway(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), gateway.IdempotencyOptions{})
	for _, key := range []string{`""`, `"unterminated`, "has space", `"` + strings.Repeat("x", 256) + `"`, "caf\u00e9"} {
		if code, body, _ := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, key); code != http.StatusBadRequest || !strings.Contains(body, "Idempotency-Key") {
			t.Errorf("key %q: %d %q, want 400", key, code, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, g.srv.URL+"/metrics/job/j", bytes.NewReader([]byte(oneCount)))
	req.Header.Add(gateway.IdempotencyKeyHeader, "a")
	req.Header.Add(gateway.IdempotencyKeyHeader, "b")
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two keys: %d, want 400", resp.StatusCode)
	}
	assertSamples(t, g.scrape(), map[string]float64{})
}

// Negative retention turns keys off: every request is applied.
func TestIdempotencyOff(t *testing.T) {
	g := newClockGateway(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), gateway.IdempotencyOptions{Retention: -1})
	for range 2 {
		if code, _, replayed := idemDo(t, g, http.MethodPost, "/metrics/job/j", oneCount, "k"); code != http.StatusOK || replayed {
			t.Fatalf("push: %d replayed=%v", code, replayed)
		}
	}
	assertSamples(t, g.scrape(), map[string]float64{`c_total{job="j"}`: 2})
}
