package dispatcher

import "sync"

// recentIDs is a bounded set of the most recently added ids (a ring buffer
// over a map), used to drop redelivered telemetry: Lambda redelivers within
// seconds, so remembering the last few ids is enough. Each id carries a flag
// its user may set (Metrics: "the batch carrying this report is recorded").
// Safe for concurrent use.
type recentIDs struct {
	mu    sync.Mutex
	flags map[string]bool
	order []string // ring buffer over flags, oldest at next
	next  int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{flags: make(map[string]bool, n), order: make([]string, n)}
}

// add remembers id, flag unset, forgetting the oldest id when full, and
// reports whether id was new.
func (r *recentIDs) add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.flags[id]; dup {
		return false
	}
	if old := r.order[r.next]; old != "" {
		delete(r.flags, old)
	}
	r.order[r.next] = id
	r.next = (r.next + 1) % len(r.order)
	r.flags[id] = false
	return true
}

// setFlag sets the flag of id, if id is still remembered.
func (r *recentIDs) setFlag(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.flags[id]; ok {
		r.flags[id] = true
	}
}

// flagged reports whether id is remembered with its flag set.
func (r *recentIDs) flagged(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flags[id]
}

// len reports how many ids are remembered.
func (r *recentIDs) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flags)
}
