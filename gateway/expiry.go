package gateway

import (
	"context"
	"time"
)

// Expiry (StoreOptions.TTL > 0): a series not pushed for longer than the TTL
// is removed, so it leaves the scrape, the JSON API and the status page, and
// a later push of it starts afresh instead of merging into the old value. A
// group left without series is removed with its push time gauges; a group
// that never held series (created by a failed push) lives for the TTL after
// its last failure.
//
// Expired series are removed by Sweep, which Push, Gather and Groups call
// first, so nothing past the TTL is ever exposed or merged, and which Run
// calls periodically to free memory when nothing reads or writes. Sweeping is
// cheap when nothing is due: the store and each group keep a lower bound of
// their oldest push time, so only groups holding a due series are scanned.

// expired reports whether a push at unix-nano time ns is past the TTL at
// cutoff (= now − TTL): exactly TTL old is still live.
func expired(ns, cutoff int64) bool { return ns < cutoff }

// Sweep removes expired series and the groups they leave empty, by the
// store's clock. It does nothing without a TTL.
func (s *MemoryStore) Sweep() {
	if s.ttl <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
}

// sweepLocked is Sweep under the write lock.
func (s *MemoryStore) sweepLocked(now time.Time) {
	if s.ttl <= 0 {
		return
	}
	cutoff := now.Add(-s.ttl).UnixNano()
	if s.oldest == 0 || !expired(s.oldest, cutoff) {
		return // Nothing can be due.
	}
	var oldest int64
	for gkey, g := range s.groups {
		if g.oldest != 0 && expired(g.oldest, cutoff) {
			if s.sweepGroup(g, cutoff) {
				s.removeGroup(gkey, g)
				continue
			}
		}
		oldest = minTime(oldest, g.oldest)
	}
	s.oldest = oldest
}

// sweepGroup removes g's expired series, recomputes g.oldest and reports
// whether g is to be removed: no series left and no failure within the TTL.
func (s *MemoryStore) sweepGroup(g *group, cutoff int64) (remove bool) {
	var oldest int64
	for name, f := range g.families {
		kept := f.series[:0]
		for _, se := range f.series {
			if expired(se.pushed, cutoff) {
				s.forget(g, name, se)
				continue
			}
			oldest = minTime(oldest, se.pushed)
			kept = append(kept, se)
		}
		clear(f.series[len(kept):])
		f.series = kept
		if len(f.series) == 0 {
			s.dropFamily(g, name)
		}
	}
	if len(g.families) == 0 {
		if g.failed == 0 || expired(g.failed, cutoff) {
			return true
		}
		oldest = g.failed
	}
	g.oldest = oldest
	return false
}

// Run sweeps expired series periodically until ctx is done: every tenth of
// the TTL, at least every minute and at most every 50ms. Without a TTL it
// returns at once. Reads and pushes never see expired series either way;
// Run only frees their memory when the store is idle.
func (s *MemoryStore) Run(ctx context.Context) {
	if s.ttl <= 0 {
		return
	}
	t := time.NewTicker(sweepInterval(s.ttl))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

func sweepInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 50*time.Millisecond), time.Minute)
}
