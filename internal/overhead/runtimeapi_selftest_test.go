package overhead

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/extension"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// TestRuntimeAPI plays the extension's side in-process (the extension and
// telemetryapi packages' clients and listener) against the fake runtime API
// and the telemetry batches the benchmarks send; it builds no binary.
func TestRuntimeAPI(t *testing.T) {
	api, err := newRuntimeAPI()
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()

	var mu sync.Mutex
	var types []string
	listener := telemetryapi.NewListener("127.0.0.1:0", func(_ context.Context, events []telemetryapi.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if _, err := e.DecodeRecord(); err != nil {
				t.Errorf("%s: %v", e.Type, err)
			}
			types = append(types, e.Type)
		}
	}, nil)
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer listener.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan []extension.EventType, 1)
	go func() { // the extension
		var seen []extension.EventType
		defer func() { got <- seen }()
		c := extension.NewClient(api.addr, nil)
		reg, err := c.Register(ctx, "ext", extension.Invoke, extension.Shutdown)
		if err != nil || reg.FunctionName != "overhead-bench" {
			t.Errorf("register: %+v, %v", reg, err)
			return
		}
		if err := telemetryapi.Subscribe(ctx, nil, api.addr, c.ExtensionID(), telemetryapi.NewSubscription(listener.URI(), telemetryapi.TypesPlatform)); err != nil {
			t.Errorf("subscribe: %v", err)
			return
		}
		for {
			ev, err := c.NextEvent(ctx)
			if err != nil {
				t.Errorf("next: %v", err)
				return
			}
			seen = append(seen, ev.EventType)
			if ev.EventType == extension.Shutdown {
				return
			}
		}
	}()

	never := make(chan struct{})
	if _, err := api.awaitNext(5*time.Second, never); err != nil {
		t.Fatal(err)
	}
	if api.ListenerURI() != listener.URI() || api.registered.Load() == 0 {
		t.Fatalf("subscribed %q, registered at %d", api.ListenerURI(), api.registered.Load())
	}
	client := &http.Client{}
	epoch := time.Now()
	for k := range 3 {
		if err := deliver(client, api.ListenerURI(), telemetryBatch(k, epoch)); err != nil {
			t.Fatal(err)
		}
		handed, err := api.handOut(invokeEvent(requestID(k)), never)
		if err != nil {
			t.Fatal(err)
		}
		back, err := api.awaitNext(5*time.Second, never)
		if err != nil {
			t.Fatal(err)
		}
		if back.Before(handed) {
			t.Fatalf("next at %v before INVOKE handed out at %v", back, handed)
		}
	}
	if _, err := api.handOut(shutdownEvent(time.Second), never); err != nil {
		t.Fatal(err)
	}
	if seen := <-got; !slices.Equal(seen, []extension.EventType{extension.Invoke, extension.Invoke, extension.Invoke, extension.Shutdown}) {
		t.Fatalf("extension saw %v", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"platform.start", "function", "platform.runtimeDone"}
	for range 2 {
		want = append(want, "platform.report", "platform.start", "function", "platform.runtimeDone")
	}
	if !slices.Equal(types, want) {
		t.Fatalf("listener got %v, want %v", types, want)
	}
}

func TestTelemetryBatchesDiffer(t *testing.T) {
	epoch := time.Now()
	a, b := telemetryBatch(5, epoch), telemetryBatch(6, epoch)
	if string(a) == string(b) {
		t.Fatal("two invocations' batches are identical: the listener would drop the second as a redelivery")
	}
	var v []map[string]any
	if err := json.Unmarshal(a, &v); err != nil || len(v) != 4 {
		t.Fatalf("batch: %d events, %v", len(v), err)
	}
}

func TestProcessMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	m, err := readMemory(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS || m.Anon > m.RSS {
		t.Fatalf("readMemory = %+v, %v", m, err)
	}
}
