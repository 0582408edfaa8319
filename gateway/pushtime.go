package gateway

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Per-group push bookkeeping, exposed as the Pushgateway does: one gauge
// sample per group, labelled with the group's grouping labels.
const (
	PushTimeMetric        = "push_time_seconds"
	PushFailureTimeMetric = "push_failure_time_seconds"

	pushTimeHelp        = "Last Unix time when changing this group in the Pushgateway succeeded."
	pushFailureTimeHelp = "Last Unix time when changing this group in the Pushgateway failed."
)

// GroupSnapshot is a copy of one group's state, for the JSON API and the
// status page.
type GroupSnapshot struct {
	Labels      map[string]string // grouping labels; empty for the root group
	LastPush    time.Time         // last successful push; zero if none
	LastFailure time.Time         // last failed push; zero if none
	Families    []FamilySnapshot  // sorted by name; push time gauges not included
}

// LastPushSuccessful reports whether the group's last push succeeded: no
// failure is recorded later than the last success (the Pushgateway's rule).
func (g GroupSnapshot) LastPushSuccessful() bool { return !g.LastFailure.After(g.LastPush) }

// FamilySnapshot is one family of a group.
type FamilySnapshot struct {
	Family   *dto.MetricFamily // the group's series of the family, sorted by labels
	LastPush time.Time         // latest push that touched any of these series
}

// checkPushTimeNames rejects pushed families named like the per-group push
// time gauges: the gateway owns those names. (The Pushgateway silently
// overwrites them; a 400 naming the metric is clearer.)
func checkPushTimeNames(pushed []*pushFamily) error {
	for _, pf := range pushed {
		if pf.name == PushTimeMetric || pf.name == PushFailureTimeMetric {
			return &ValidationError{Metric: pf.name, Reason: "name is reserved for the gateway's per-group push time gauge"}
		}
	}
	return nil
}

// touch records a successful push into g at now (the pushed series were
// stamped by apply). Called under the write lock after apply.
func (s *MemoryStore) touch(g *group, now time.Time) {
	ns := now.UnixNano()
	g.pushed = ns
	g.oldest = minTime(g.oldest, ns)
	s.oldest = minTime(s.oldest, ns)
}

// RecordFailure implements Store. Like the Pushgateway, a failure into a
// group that does not exist creates it, with only its push time gauges.
func (s *MemoryStore) RecordFailure(groupLabels map[string]string) {
	glabels := sortedLabels(groupLabels)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now) // as every change does, so that replay matches
	// Not waited for: no answer depends on it being durable. Unjournaled,
	// it is not applied either, so that the log stays the apply order.
	if _, err := s.appendLocked(encodeSimple(recFailure, glabels), now); err != nil {
		return
	}
	s.recordFailureLocked(glabels, now)
}

func (s *MemoryStore) recordFailureLocked(glabels []labelPair, now time.Time) {
	gkey := labelsKey(glabels)
	ns := now.UnixNano()
	g := s.groups[gkey]
	if g == nil {
		g = &group{labels: glabels, families: map[string]*family{}}
		s.addGroup(gkey, g)
	}
	g.failed = ns
	if len(g.families) == 0 {
		// A group without series lives by its failure time (expiry).
		g.oldest = minTime(g.oldest, ns)
		s.oldest = minTime(s.oldest, ns)
	}
}

// Wipe implements Store.
func (s *MemoryStore) Wipe(ctx context.Context) error {
	s.mu.Lock()
	seq, err := s.appendLocked(encodeSimple(recWipe, nil), s.now())
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.wipeLocked()
	s.mu.Unlock()
	return s.sync(ctx, seq)
}

func (s *MemoryStore) wipeLocked() {
	s.groups = map[string]*group{}
	s.names = map[string]*nameEntry{}
	s.order = nil
	s.index, s.overflow = map[uint64]*group{}, map[uint64][]*group{}
	s.nseries = 0
	s.oldest = 0
}

// withPushTimes adds the push_time_seconds and push_failure_time_seconds
// families (one sample per group) to out, which is sorted by name, and keeps
// it sorted. Called under the read lock.
func (s *MemoryStore) withPushTimes(out []*dto.MetricFamily) []*dto.MetricFamily {
	if len(s.groups) == 0 {
		return out
	}
	groups := s.order
	ok := &dto.MetricFamily{Name: new(PushTimeMetric), Help: new(pushTimeHelp), Type: dto.MetricType_GAUGE.Enum()}
	failed := &dto.MetricFamily{Name: new(PushFailureTimeMetric), Help: new(pushFailureTimeHelp), Type: dto.MetricType_GAUGE.Enum()}
	for _, g := range groups {
		ok.Metric = append(ok.Metric, timeGauge(g.labels, g.pushed))
		failed.Metric = append(failed.Metric, timeGauge(g.labels, g.failed))
	}
	out = append(out, ok, failed)
	slices.SortStableFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

func timeGauge(labels []labelPair, ns int64) *dto.Metric {
	m := &dto.Metric{Label: make([]*dto.LabelPair, len(labels)), Gauge: &dto.Gauge{Value: new(unixSeconds(ns))}}
	for i, l := range labels {
		m.Label[i] = &dto.LabelPair{Name: new(l.name), Value: new(l.value)}
	}
	return m
}

// unixSeconds converts unix nanoseconds to the gauge value, 0 for none.
func unixSeconds(ns int64) float64 {
	if ns == 0 {
		return 0
	}
	return float64(ns) / 1e9
}

// timeOf converts unix nanoseconds to a time, the zero time for none.
func timeOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// minTime returns the smaller of two unix-nano times, 0 meaning none.
func minTime(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// Groups implements Store: every group, sorted by grouping labels, with its
// live series (expired ones are swept first).
func (s *MemoryStore) Groups() []GroupSnapshot {
	s.Sweep()
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	groups := s.order
	out := make([]GroupSnapshot, 0, len(groups))
	for _, g := range groups {
		gs := GroupSnapshot{
			Labels:      make(map[string]string, len(g.labels)),
			LastPush:    timeOf(g.pushed),
			LastFailure: timeOf(g.failed),
			Families:    make([]FamilySnapshot, 0, len(g.families)),
		}
		for _, l := range g.labels {
			gs.Labels[l.name] = l.value
		}
		for _, name := range slices.Sorted(maps.Keys(g.families)) {
			e := s.names[name]
			if e == nil {
				continue // cannot happen: names holds every stored family
			}
			// As Gather exposes them: windowed series by their statistic now,
			// created timestamps kept.
			var last int64
			mf := &dto.MetricFamily{Name: new(name), Type: e.typ.Enum()}
			for _, se := range g.families[name].series {
				last = max(last, se.pushed)
				if x := exposed(se, now); x != nil {
					mf.Metric = append(mf.Metric, toMetric(e.typ, g.labels, x))
				}
			}
			if len(mf.Metric) == 0 {
				continue
			}
			if e.help != "" {
				mf.Help = new(e.help)
			}
			gs.Families = append(gs.Families, FamilySnapshot{Family: mf, LastPush: timeOf(last)})
		}
		out = append(out, gs)
	}
	return out
}

// String renders grouping labels for logs and the status page: {job="x"}.
func (g GroupSnapshot) String() string {
	return labelString(sortedLabels(g.Labels))
}

// recordPushFailure records a failed PUT or POST into the group of r's
// path, if the path names a valid group: every answer other than 2xx to a
// push (400, 413, 415, 5xx) counts, parse errors included.
func (g *Gateway) recordPushFailure(r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		return
	}
	grouping, ok := strings.CutPrefix(r.URL.EscapedPath(), "/metrics")
	if !ok || (grouping != "" && !strings.HasPrefix(grouping, "/")) {
		return
	}
	labels, err := ParseGroupingPath(grouping)
	if err != nil {
		return
	}
	g.store.RecordFailure(labels)
}
