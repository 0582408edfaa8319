package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// storeSize reports the groups and names a store holds, swept or not.
func storeSize(s *MemoryStore) (groups, names int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.groups), len(s.names)
}

func gaugeFamily(name string, v float64) fam.Family {
	return fam.Family{Name: name, Type: fam.Gauge, Metrics: []fam.Metric{{Value: v}}}
}

// TestSweepFreesMemory: Sweep removes expired series, the names they held
// and emptied groups from the store itself, not just from the scrape, and
// leaves live ones.
func TestSweepFreesMemory(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	s := NewMemoryStore(StoreOptions{Now: clock, TTL: time.Minute})
	ctx := context.Background()
	if err := s.Push(ctx, map[string]string{"job": "old"}, []fam.Family{gaugeFamily("a", 1)}, false); err != nil {
		t.Fatal(err)
	}
	advance(30 * time.Second)
	if err := s.Push(ctx, map[string]string{"job": "new"}, []fam.Family{gaugeFamily("b", 1)}, false); err != nil {
		t.Fatal(err)
	}
	s.Sweep()
	if g, n := storeSize(s); g != 2 || n != 2 {
		t.Fatalf("before the TTL: %d groups, %d names, want 2, 2", g, n)
	}
	advance(31 * time.Second)
	s.Sweep()
	if g, n := storeSize(s); g != 1 || n != 1 {
		t.Errorf("after the first TTL: %d groups, %d names, want 1, 1", g, n)
	}
	if s.oldest != now.Add(-31*time.Second).UnixNano() {
		t.Errorf("oldest lower bound %d, want the live series' push time", s.oldest)
	}
}

// TestRunSweepsPeriodically: Run sweeps on its own, with nothing reading the
// store (waits for it; no timing assertion).
func TestRunSweepsPeriodically(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := NewMemoryStore(StoreOptions{Now: clock, TTL: time.Second})
	if err := s.Push(context.Background(), map[string]string{"job": "j"}, []fam.Family{gaugeFamily("a", 1)}, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if g, _ := storeSize(s); g == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep the expired group")
		}
	}
}

func TestSweepInterval(t *testing.T) {
	for _, tc := range []struct{ ttl, want time.Duration }{
		{time.Second, 100 * time.Millisecond},
		{10 * time.Millisecond, 50 * time.Millisecond},
		{time.Hour, time.Minute},
		{5 * time.Minute, 30 * time.Second},
	} {
		if got := sweepInterval(tc.ttl); got != tc.want {
			t.Errorf("sweepInterval(%v) = %v, want %v", tc.ttl, got, tc.want)
		}
	}
}
