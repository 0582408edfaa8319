package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// failingJournal fails as configured; like internal/wal's Log, a failure
// is sticky and makes Ready report it.
type failingJournal struct {
	mu               sync.Mutex
	seq              uint64
	failAppend       bool
	failSync, failed bool
}

var errDisk = errors.New("fdatasync: input/output error")

func (j *failingJournal) Append([]byte) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failAppend || j.failed {
		j.failed = true
		return 0, errDisk
	}
	j.seq++
	return j.seq, nil
}

func (j *failingJournal) Sync(context.Context, uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failSync || j.failed {
		j.failed = true
		return errDisk
	}
	return nil
}

func (j *failingJournal) Ready() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failed {
		return errDisk
	}
	return nil
}

// TestJournalFailureRefusesWrites: once the journal cannot make a change
// durable, the push is answered 503 (never 2xx), every later write too, and
// /-/ready fails so that a load balancer stops sending pushes; a failed
// append changes nothing.
func TestJournalFailureRefusesWrites(t *testing.T) {
	for _, c := range []struct {
		name            string
		j               *failingJournal
		appliedInMemory bool
	}{
		{"append fails", &failingJournal{}, false},
		{"sync fails", &failingJournal{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := NewMemoryStore(StoreOptions{})
			store.journal = c.j
			g, err := New(store, Options{Registry: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			do := func(method, path, body string) (int, string) {
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, httptest.NewRequest(method, "http://127.0.0.1"+path, strings.NewReader(body)))
				b, _ := io.ReadAll(rec.Result().Body)
				return rec.Code, string(b)
			}
			if code, _ := do(http.MethodGet, "/-/ready", ""); code != http.StatusOK {
				t.Fatalf("/-/ready before the failure: %d", code)
			}
			if code, body := do(http.MethodPost, "/metrics/job/seed", "# TYPE seed gauge\nseed 1\n"); code != http.StatusOK {
				t.Fatalf("push before the failure: %d %q", code, body)
			}
			c.j.mu.Lock()
			c.j.failAppend, c.j.failSync = c.name == "append fails", c.name == "sync fails"
			c.j.mu.Unlock()
			code, body := do(http.MethodPost, "/metrics/job/a", "# TYPE hits_total counter\nhits_total 1\n")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "input/output error") {
				t.Errorf("push: %d %q, want 503 naming the journal error", code, body)
			}
			if _, scrape := do(http.MethodGet, "/metrics", ""); strings.Contains(scrape, "hits_total") != c.appliedInMemory {
				t.Errorf("hits_total in the scrape: %v, want %v:\n%s", !c.appliedInMemory, c.appliedInMemory, scrape)
			}
			if code, _ := do(http.MethodPost, "/metrics/job/b", "# TYPE other_total counter\nother_total 1\n"); code != http.StatusServiceUnavailable {
				t.Errorf("a later push: %d, want 503 (the failure is sticky)", code)
			}
			if code, _ := do(http.MethodDelete, "/metrics/job/seed", ""); code != http.StatusServiceUnavailable {
				t.Errorf("a later delete: %d, want 503", code)
			}
			if code, _ := do(http.MethodGet, "/-/ready", ""); code != http.StatusServiceUnavailable {
				t.Errorf("/-/ready after the failure: %d, want 503", code)
			}
			if code, _ := do(http.MethodGet, "/-/healthy", ""); code != http.StatusOK {
				t.Errorf("/-/healthy after the failure: %d, want 200 (the process is alive; scrapes still work)", code)
			}
		})
	}
}
