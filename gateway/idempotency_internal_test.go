package gateway

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// blockingStore holds the first Push until release is closed.
type blockingStore struct {
	*MemoryStore
	entered chan struct{} // closed when the first Push is waiting
	release chan struct{}
	mu      sync.Mutex
	pushes  int
}

func (s *blockingStore) Push(ctx context.Context, labels map[string]string, fams []fam.Family, replace bool) error {
	s.mu.Lock()
	s.pushes++
	first := s.pushes == 1
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return s.MemoryStore.Push(ctx, labels, fams, replace)
}

// A repeat sent while the first request with its key is being applied waits
// for it and gets its answer; the body is applied once.
func TestIdempotencyConcurrentRepeatWaits(t *testing.T) {
	store := &blockingStore{MemoryStore: NewMemoryStore(StoreOptions{}), entered: make(chan struct{}), release: make(chan struct{})}
	gw, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	type answer struct {
		code     int
		replayed bool
	}
	send := func() answer {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/metrics/job/j", strings.NewReader("# TYPE c_total counter\nc_total 1\n"))
		req.Header.Set(IdempotencyKeyHeader, `"same"`)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return answer{}
		}
		resp.Body.Close()
		return answer{resp.StatusCode, resp.Header.Get(replayedHeader) == "true"}
	}
	answers := make(chan answer, 2)
	go func() { answers <- send() }()
	<-store.entered // The first request is being applied.
	go func() { answers <- send() }()
	for gw.idem.cache.waiting.Load() != 1 { // The repeat is waiting for it.
		time.Sleep(time.Millisecond)
	}
	close(store.release)
	a, b := <-answers, <-answers
	if a.code != http.StatusOK || b.code != http.StatusOK || a.replayed == b.replayed {
		t.Errorf("answers %+v and %+v, want two 200s, one replayed", a, b)
	}
	if store.pushes != 1 {
		t.Errorf("store pushes = %d, want 1", store.pushes)
	}
	mfs, _ := store.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "c_total" && mf.GetMetric()[0].GetCounter().GetValue() != 1 {
			t.Errorf("c_total = %v, want 1", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
}

func TestIdempotencyCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newIdempotencyCache(IdempotencyOptions{Retention: time.Minute, MaxKeys: 2, Now: func() time.Time { return now }})
	ctx := context.Background()
	fp := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

	e, replay, err := c.begin(ctx, "a", fp("x"))
	if e == nil || replay != nil || err != nil {
		t.Fatalf("first begin: %v %v %v", e, replay, err)
	}
	if _, _, err := c.begin(ctx, "a", fp("y")); err != errKeyReused {
		t.Errorf("in-flight key, other request: %v, want errKeyReused", err)
	}
	c.finish(e, http.StatusServiceUnavailable, "", nil)
	if c.len() != 0 {
		t.Errorf("5xx remembered")
	}
	e, _, _ = c.begin(ctx, "a", fp("x")) // forgotten: owned again
	if e == nil {
		t.Fatal("key not free after a 5xx")
	}
	c.finish(e, http.StatusBadRequest, "text/plain", []byte("no"))
	if _, r, _ := c.begin(ctx, "a", fp("x")); r == nil || r.code != http.StatusBadRequest || string(r.body) != "no" {
		t.Errorf("replay %+v, want the 400", r)
	}
	big, _, _ := c.begin(ctx, "big", fp("x"))
	c.finish(big, http.StatusBadRequest, "", make([]byte, maxRememberedBodyBytes+1))
	if c.len() != 1 {
		t.Errorf("oversized answer remembered (%d answers)", c.len())
	}
	for _, k := range []string{"b", "c"} {
		e, _, _ := c.begin(ctx, k, fp("x"))
		c.finish(e, http.StatusOK, "", nil)
		now = now.Add(time.Second)
	}
	if _, r, _ := c.begin(ctx, "a", fp("x")); r != nil {
		t.Error("oldest answer kept beyond MaxKeys")
	} else {
		c.finish(c.entries["a"], 0, "", nil) // give the reservation back
	}
	if c.len() != 2 {
		t.Errorf("%d answers, want 2", c.len())
	}
	now = now.Add(time.Minute)
	if c.len() != 0 || len(c.entries) != 0 {
		t.Errorf("after the window: %d answers, %d entries", c.len(), len(c.entries))
	}
}

func TestParseIdempotencyKey(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:           "abc",
		`abc`:             "abc",
		` "a\"b\\c" `:     `a"b\c`,
		`8e03978e-40d5`:   "8e03978e-40d5",
		`"with space ok"`: "with space ok",
	} {
		if got, err := parseIdempotencyKey([]string{in}); err != nil || got != want {
			t.Errorf("parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{``, `""`, `"a`, `"a"b"`, `"a\x"`, "a b", "é", strings.Repeat("k", 256)} {
		if got, err := parseIdempotencyKey([]string{in}); err == nil {
			t.Errorf("parse(%q) = %q, want an error", in, got)
		}
	}
}
