package telemetryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const fixturePath = "../testdata/cold-start-four-invocations.json"

type fixture struct {
	Batches []json.RawMessage `json:"batches"`
}

func loadFixture(t testing.TB) fixture {
	t.Helper()
	data, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", fixturePath, err)
	}
	if len(f.Batches) == 0 {
		t.Fatalf("%s: no batches", fixturePath)
	}
	return f
}

// fixtureEvents decodes every batch of the fixture, in order.
func fixtureEvents(t testing.TB) []Event {
	t.Helper()
	var all []Event
	for i, b := range loadFixture(t).Batches {
		events, err := decodeBatch(b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		all = append(all, events...)
	}
	return all
}

// collector records the batches handed to it.
type collector struct {
	mu      sync.Mutex
	batches [][]Event
}

func (c *collector) handle(_ context.Context, events []Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, events)
}

func (c *collector) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.batches)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startListener(t *testing.T, address string) (*Listener, *collector) {
	t.Helper()
	c := &collector{}
	l := NewListener(address, c.handle, testLogger(t))
	if err := l.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return l, c
}

func post(t *testing.T, uri string, body io.Reader) int {
	t.Helper()
	resp, err := http.Post(uri, "application/json", body)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestListenerDecodesFixtureBatches(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	f := loadFixture(t)
	for i, b := range f.Batches {
		if code := post(t, l.URI(), bytes.NewReader(b)); code != http.StatusOK {
			t.Fatalf("batch %d: status %d, want 200", i, code)
		}
	}
	if len(c.batches) != len(f.Batches) {
		t.Fatalf("handle called %d times, want %d", len(c.batches), len(f.Batches))
	}
	for i, b := range f.Batches {
		var want []struct {
			Time   string
			Type   string
			Record json.RawMessage
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got := c.batches[i]
		if len(got) != len(want) {
			t.Fatalf("batch %d: %d events, want %d", i, len(got), len(want))
		}
		for j := range want {
			wantTime, _ := time.Parse(time.RFC3339Nano, want[j].Time)
			if got[j].Type != want[j].Type || !got[j].Time.Equal(wantTime) || got[j].Time.IsZero() {
				t.Errorf("batch %d event %d = %s %v, want %s %s", i, j, got[j].Type, got[j].Time, want[j].Type, want[j].Time)
			}
			if !bytes.Equal(got[j].Record, want[j].Record) {
				t.Errorf("batch %d event %d record = %s, want %s", i, j, got[j].Record, want[j].Record)
			}
		}
	}
	first := c.batches[0][0]
	if first.Type != TypePlatformInitStart || !first.Time.Equal(time.Date(2026, 11, 2, 10, 0, 0, 12e6, time.UTC)) {
		t.Errorf("first event = %s at %v", first.Type, first.Time)
	}
}

func TestListenerDropsRedelivery(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	f := loadFixture(t)
	for _, b := range []json.RawMessage{f.Batches[1], f.Batches[1], f.Batches[2], f.Batches[1]} {
		if code := post(t, l.URI(), bytes.NewReader(b)); code != http.StatusOK {
			t.Fatalf("status %d, want 200 (a redelivery is acknowledged)", code)
		}
	}
	if c.calls() != 2 {
		t.Fatalf("handle called %d times, want 2 (batch 1 once, batch 2 once)", c.calls())
	}
	if c.batches[0][0].Type != TypePlatformReport || c.batches[1][0].Record == nil ||
		!bytes.Contains(c.batches[1][0].Record, []byte("3da1f2dc-3222-475e-9205-e2e6c6318895")) {
		t.Errorf("handled the wrong batches: %+v", c.batches)
	}
}

func TestListenerForgetsOldBatches(t *testing.T) {
	// Past the memory of recentBatches, an old body is new again.
	c := &collector{}
	l := NewListener("127.0.0.1:0", c.handle, nil)
	body := func(i int) string {
		return `[{"time":"2026-11-02T10:00:00Z","type":"function","record":"line ` + strconv.Itoa(i) + `"}]`
	}
	for i := 0; i <= recentBatches; i++ {
		serve(l, body(i))
	}
	serve(l, body(0))
	if got := c.calls(); got != recentBatches+2 {
		t.Fatalf("handle called %d times, want %d", got, recentBatches+2)
	}
	serve(l, body(recentBatches)) // still remembered
	if got := c.calls(); got != recentBatches+2 {
		t.Fatalf("recent batch handled again: %d calls", got)
	}
}

// serve drives ServeHTTP without a network.
func serve(l *Listener, body string) int {
	w := &discardResponse{}
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	l.ServeHTTP(w, r)
	return w.status()
}

func TestListenerKeepsDuplicateEventsInBatch(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	ev := `{"time":"2026-11-02T10:00:05.010Z","type":"function","record":"retrying\n"}`
	if code := post(t, l.URI(), strings.NewReader("["+ev+","+ev+"]")); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if c.calls() != 1 || len(c.batches[0]) != 2 {
		t.Fatalf("batches = %+v, want one batch of 2 events", c.batches)
	}
}

func TestListenerRejectsMalformed(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	for _, body := range []string{
		`[{"time":"2026-11-02T10:00:00Z","type":"function","record":"x"`,
		`{"time":"2026-11-02T10:00:00Z","type":"function","record":"x"}`,
		`[{"time":"2026-11-02T10:00:00Z","type":42,"record":"x"}]`,
		`not json`,
	} {
		if code := post(t, l.URI(), strings.NewReader(body)); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", body, code)
		}
	}
	if c.calls() != 0 {
		t.Errorf("handle called %d times for malformed bodies", c.calls())
	}
}

func TestListenerEmptyBatch(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	for _, body := range []string{"[]", "null"} {
		if code := post(t, l.URI(), strings.NewReader(body)); code != http.StatusOK {
			t.Errorf("%s: status %d, want 200", body, code)
		}
	}
	if c.calls() != 0 {
		t.Errorf("handle called for an empty batch")
	}
}

func TestListenerLenientEventTime(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	body := `[{"time":"yesterday","type":"function","record":"a"},{"time":"2026-11-02T10:00:00Z","type":"function","record":"b"}]`
	if code := post(t, l.URI(), strings.NewReader(body)); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	got := c.batches[0]
	if !got[0].Time.IsZero() || !got[1].Time.Equal(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("times = %v, %v; want zero, 10:00:00", got[0].Time, got[1].Time)
	}
}

func TestListenerRejectsOversize(t *testing.T) {
	l, c := startListener(t, "127.0.0.1:0")
	big := bytes.Repeat([]byte(" "), MaxBatchBytes+1) // whitespace: valid JSON framing aside, only its size matters
	// With a Content-Length the listener refuses before reading.
	if code := post(t, l.URI(), bytes.NewReader(big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("sized body: status %d, want 413", code)
	}
	// Chunked, the size shows while reading.
	if code := post(t, l.URI(), io.MultiReader(bytes.NewReader(big))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body: status %d, want 413", code)
	}
	if c.calls() != 0 {
		t.Errorf("handle called for an oversize body")
	}
	// A body of exactly the limit is read and judged on its content.
	exact := append([]byte("[]"), bytes.Repeat([]byte(" "), MaxBatchBytes-2)...)
	if code := post(t, l.URI(), io.MultiReader(bytes.NewReader(exact))); code != http.StatusOK {
		t.Errorf("body at the limit: status %d, want 200", code)
	}
}

func TestListenerMethodNotAllowed(t *testing.T) {
	l, _ := startListener(t, "127.0.0.1:0")
	resp, err := http.Get(l.URI())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestListenerURIKeepsConfiguredHost(t *testing.T) {
	l, c := startListener(t, "localhost:0")
	uri := l.URI()
	port := l.srvPort(t)
	if want := "http://localhost:" + strconv.Itoa(port) + "/"; uri != want {
		t.Fatalf("URI = %q, want %q", uri, want)
	}
	if code := post(t, uri, strings.NewReader(`[{"time":"2026-11-02T10:00:00Z","type":"function","record":"x"}]`)); code != 200 {
		t.Fatalf("POST to URI: status %d", code)
	}
	if c.calls() != 1 {
		t.Fatalf("handle not called through URI")
	}
}

// srvPort returns the port the listener's server is bound to.
func (l *Listener) srvPort(t *testing.T) int {
	t.Helper()
	u := strings.TrimSuffix(strings.TrimPrefix(l.URI(), "http://"), "/")
	_, p, err := net.SplitHostPort(u)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	if port == 0 {
		t.Fatalf("URI %q has no bound port", l.URI())
	}
	return port
}

func TestDestinationURI(t *testing.T) {
	for _, tc := range []struct {
		host string
		want string
	}{
		{"sandbox.localdomain", "http://sandbox.localdomain:4243/"},
		{"localhost", "http://localhost:4243/"},
		{"127.0.0.1", "http://127.0.0.1:4243/"},
		{"::1", "http://[::1]:4243/"},
		{"", "http://sandbox.localdomain:4243/"},
		{"0.0.0.0", "http://sandbox.localdomain:4243/"},
		{"::", "http://sandbox.localdomain:4243/"},
	} {
		if got := destinationURI(tc.host, 4243); got != tc.want {
			t.Errorf("destinationURI(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestListenerLifecycle(t *testing.T) {
	l := NewListener("127.0.0.1:0", func(context.Context, []Event) {}, nil)
	if l.URI() != "" {
		t.Errorf("URI before Start = %q", l.URI())
	}
	if err := l.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	uri := l.URI()
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Post(uri, "application/json", strings.NewReader("[]")); err == nil {
		resp.Body.Close()
		t.Error("listener still answers after Shutdown")
	}
}

func TestListenerStartBadAddress(t *testing.T) {
	if err := NewListener("no-port", nil, nil).Start(); err == nil {
		t.Error("Start with an address without port succeeded")
	}
}

// discardResponse is a minimal http.ResponseWriter for tests and benchmarks.
type discardResponse struct {
	h    http.Header
	code int
}

func (d *discardResponse) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardResponse) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(b), nil
}
func (d *discardResponse) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *discardResponse) status() int {
	if d.code == 0 {
		return http.StatusOK
	}
	return d.code
}
