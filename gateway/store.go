package gateway

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// Store holds pushed metrics by group and merges pushes by clear mode.
// Implementations are safe for concurrent use.
type Store interface {
	// Push merges families into the group identified by groupLabels (empty
	// for the root group). With replaceGroup (HTTP PUT) the group's families
	// that are not pushed are dropped first; pushed families are merged by
	// clear mode either way. A push is applied whole or not at all: on a
	// *ValidationError nothing changed.
	Push(ctx context.Context, groupLabels map[string]string, families []fam.Family, replaceGroup bool) error
	// Delete removes the group identified by groupLabels, if it exists.
	Delete(groupLabels map[string]string)
	// RecordFailure notes a rejected or failed push into the group identified
	// by groupLabels at the store's clock, for push_failure_time_seconds. A
	// group that does not exist is created to hold it (as in the
	// Pushgateway).
	RecordFailure(groupLabels map[string]string)
	// Groups returns a snapshot of every group, sorted by grouping labels.
	Groups() []GroupSnapshot
	// Wipe removes every group.
	Wipe()
	// Gather returns every group's series, one MetricFamily per name with the
	// series of all groups, families sorted by name and metrics by labels.
	prometheus.Gatherer
}

// MemoryStore is a Store kept in memory.
//
// The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	now func() time.Time // the clock; injectable so tests drive time

	mu     sync.RWMutex
	groups map[string]*group     // by labelsKey of the grouping labels
	names  map[string]*nameEntry // family name → type, HELP, holders

	ttl    time.Duration // expiry; 0 = off (see expiry.go)
	oldest int64         // lower bound of the push times expiry looks at, unix ns; 0 = none
}

// StoreOptions configures a MemoryStore. The zero value is usable.
type StoreOptions struct {
	// Now is the clock (windowed statistics, push times, expiry). Nil means
	// time.Now; tests inject a fake clock.
	Now func() time.Time
	// TTL, when positive, removes series not pushed for longer than TTL, and
	// groups left without series (see Sweep). 0 keeps everything.
	TTL time.Duration
}

// group is the set of families pushed under one grouping key.
type group struct {
	labels   []labelPair // sorted; none for the root group
	families map[string]*family
	// Unix nanoseconds, 0 = none: last successful and failed push, and a
	// lower bound of the push times that keep the group alive (expiry).
	pushed, failed, oldest int64
}

// family is one family's series within a group, by labelsKey of the full
// label set.
type family struct {
	series map[string]*series
}

// nameEntry is the store-wide view of a family name: its type, the latest
// pushed HELP and the groups holding it. It makes type and suffix clash checks
// O(1) and lets Gather merge a name across groups without scanning them all.
type nameEntry struct {
	typ     dto.MetricType
	help    string
	holders map[*group]*family
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts StoreOptions) *MemoryStore {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, groups: map[string]*group{}, names: map[string]*nameEntry{}, ttl: opts.TTL}
}

// Push implements Store. Families are validated without the lock, then
// checked against the stored state under the lock, then applied; applying
// cannot fail, so a rejected push leaves the store untouched.
func (s *MemoryStore) Push(ctx context.Context, groupLabels map[string]string, families []fam.Family, replaceGroup bool) error {
	glabels := sortedLabels(groupLabels)
	pushed, err := preparePush(glabels, families)
	if err != nil {
		return err
	}
	if err := checkPushTimeNames(pushed); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("push abandoned: %w", err)
	}
	gkey := labelsKey(glabels)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	// Expired series are neither checked against nor merged into.
	s.sweepLocked(now)
	g := s.groups[gkey] // nil when the group is new
	if err := s.check(g, glabels, pushed); err != nil {
		return err
	}
	if g == nil {
		if len(pushed) == 0 {
			return nil // Nothing to store; an empty group is not kept.
		}
		g = &group{labels: glabels, families: make(map[string]*family, len(pushed))}
		s.groups[gkey] = g
	}
	stampWindows(pushed, now) // the time windowed values enter their window
	// Created times: first stored, or the pusher's (created.go).
	stampCreated(g, pushed, now)
	s.apply(g, pushed, replaceGroup)
	s.touch(g, pushed, now)
	if len(g.families) == 0 {
		delete(s.groups, gkey)
	}
	return nil
}

// check validates pushed families against the stored state without changing
// it. g is the target group, nil if it does not exist yet.
func (s *MemoryStore) check(g *group, glabels []labelPair, pushed []*pushFamily) error {
	pushedTypes := make(map[string]dto.MetricType, len(pushed))
	for _, pf := range pushed {
		pushedTypes[pf.name] = pf.typ
	}
	typeOf := func(name string) (dto.MetricType, bool) {
		if t, ok := pushedTypes[name]; ok {
			return t, true
		}
		if e := s.names[name]; e != nil {
			return e.typ, true
		}
		return 0, false
	}
	for _, pf := range pushed {
		e := s.names[pf.name]
		if e != nil && e.typ != pf.typ {
			return &ValidationError{Metric: pf.name, Reason: fmt.Sprintf("type %s clashes with the stored type %s", typeName(pf.typ), typeName(e.typ))}
		}
		if e == nil {
			// A new name: it must not collide with the series names a stored
			// or pushed histogram or summary exposes, nor the other way round.
			if err := suffixClash(pf.name, pf.typ, typeOf); err != nil {
				return err
			}
			continue
		}
		if err := seriesClash(e, g, glabels, pf); err != nil {
			return err
		}
	}
	return nil
}

// exposedSuffixes are the sample names a histogram or summary x exposes
// besides x itself.
var exposedSuffixes = [...]string{"_bucket", "_count", "_sum"}

func suffixClash(name string, typ dto.MetricType, typeOf func(string) (dto.MetricType, bool)) error {
	for _, suf := range exposedSuffixes {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if bt, ok := typeOf(base); ok && exposes(bt, suf) {
				return &ValidationError{Metric: name, Reason: fmt.Sprintf("name collides with the %s series of %s %s", suf, typeName(bt), base)}
			}
		}
		if exposes(typ, suf) {
			if _, ok := typeOf(name + suf); ok {
				return &ValidationError{Metric: name, Reason: fmt.Sprintf("%s would expose %s%s, which is already a metric family", typeName(typ), name, suf)}
			}
		}
	}
	return createdClash(name, typ, typeOf) // the OpenMetrics _created series (created.go)
}

func exposes(t dto.MetricType, suffix string) bool {
	switch {
	case isHistogram(t):
		return true
	case t == dto.MetricType_SUMMARY:
		return suffix != "_bucket"
	}
	return false
}

// seriesClash rejects a pushed series equal (same name, same full label set)
// to a series stored in another group: the scrape would expose it twice.
// Only groups whose grouping labels agree with the target group's can hold
// such a series, so most pushes check no other group at all.
func seriesClash(e *nameEntry, g *group, glabels []labelPair, pf *pushFamily) error {
	for h, hf := range e.holders {
		if h == g || !agree(h.labels, glabels) {
			continue
		}
		for i, key := range pf.keys {
			if _, ok := hf.series[key]; ok {
				return &ValidationError{
					Metric: pf.name + labelString(pf.series[i].labels),
					Reason: fmt.Sprintf("series already pushed to group %s", labelString(h.labels)),
				}
			}
		}
	}
	return nil
}

// agree reports whether two sorted label sets have equal values for the names
// they share.
func agree(a, b []labelPair) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i].name, b[j].name); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			if a[i].value != b[j].value {
				return false
			}
			i++
			j++
		}
	}
	return true
}

// apply merges checked families into g. It must not fail.
func (s *MemoryStore) apply(g *group, pushed []*pushFamily, replaceGroup bool) {
	if replaceGroup {
		keep := make(map[string]bool, len(pushed))
		for _, pf := range pushed {
			keep[pf.name] = true
		}
		for name := range g.families {
			if !keep[name] {
				s.dropFamily(g, name)
			}
		}
	}
	for _, pf := range pushed {
		e := s.names[pf.name]
		if e == nil {
			e = &nameEntry{typ: pf.typ, holders: map[*group]*family{}}
			s.names[pf.name] = e
		}
		if pf.help != "" {
			e.help = pf.help // The latest pushed HELP wins store-wide.
		}
		f := g.families[pf.name]
		if f == nil || pf.familyMode {
			// Family mode: the pushed samples become the family.
			f = &family{series: make(map[string]*series, len(pf.series))}
			g.families[pf.name] = f
			e.holders[g] = f
		}
		for i, key := range pf.keys {
			if cur := f.series[key]; cur != nil {
				merge(cur, pf.series[i])
			} else {
				f.series[key] = pf.series[i]
			}
		}
	}
}

func (s *MemoryStore) dropFamily(g *group, name string) {
	delete(g.families, name)
	if e := s.names[name]; e != nil {
		delete(e.holders, g)
		if len(e.holders) == 0 {
			delete(s.names, name)
		}
	}
}

// Delete implements Store.
func (s *MemoryStore) Delete(groupLabels map[string]string) {
	gkey := labelsKey(sortedLabels(groupLabels))
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[gkey]
	if g == nil {
		return
	}
	for name := range g.families {
		s.dropFamily(g, name)
	}
	delete(s.groups, gkey)
}

// Gather implements prometheus.Gatherer: one MetricFamily per stored name
// with the series of every group (clear mode labels are never stored), HELP
// as last pushed, families sorted by name and metrics by label set. Histogram
// counts are exposed as integers when they all are, else as floats. Every
// group adds its push_time_seconds and push_failure_time_seconds sample;
// expired series are swept first. It never fails.
func (s *MemoryStore) Gather() ([]*dto.MetricFamily, error) {
	s.Sweep()
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now() // windowed series expose their window's statistic at now
	names := slices.Sorted(maps.Keys(s.names))
	out := make([]*dto.MetricFamily, 0, len(names))
	var all []*series
	for _, name := range names {
		e := s.names[name]
		all = all[:0]
		for _, f := range e.holders {
			for _, se := range f.series {
				if se = exposed(se, now); se != nil { // nil: an empty window
					all = append(all, se)
				}
			}
		}
		if len(all) == 0 {
			continue
		}
		slices.SortFunc(all, func(a, b *series) int { return compareLabels(a.labels, b.labels) })
		// A copy of the HELP: the family is encoded after the lock is released,
		// while pushes may change e.help.
		help := e.help
		mf := &dto.MetricFamily{Name: &name, Type: e.typ.Enum(), Help: &help, Metric: make([]*dto.Metric, len(all))}
		if help == "" {
			// Every family gets a HELP line: promtool check metrics (and
			// Prometheus's metadata API) want one, and Gravel-style bodies
			// often carry none.
			mf.Help = &defaultHelp
		}
		for i, se := range all {
			mf.Metric[i] = toMetric(e.typ, se)
		}
		out = append(out, mf)
	}
	return s.withPushTimes(out), nil
}

// defaultHelp is the HELP of a family pushed without one.
var defaultHelp = "Pushed to the gateway without HELP."

// toMetric renders a stored series. It copies every value, so the result
// stays valid after the lock is released.
func toMetric(typ dto.MetricType, se *series) *dto.Metric {
	m := &dto.Metric{Label: make([]*dto.LabelPair, len(se.labels))}
	for i, l := range se.labels {
		m.Label[i] = &dto.LabelPair{Name: &l.name, Value: &l.value}
	}
	switch typ {
	case dto.MetricType_COUNTER:
		m.Counter = &dto.Counter{Value: new(se.value)}
	case dto.MetricType_GAUGE:
		m.Gauge = &dto.Gauge{Value: new(se.value)}
	case dto.MetricType_UNTYPED:
		m.Untyped = &dto.Untyped{Value: new(se.value)}
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		d := se.dist
		h := &dto.Histogram{SampleSum: new(d.sum), Bucket: make([]*dto.Bucket, len(d.buckets))}
		integral := d.integral()
		if integral {
			h.SampleCount = new(uint64(d.count))
		} else {
			h.SampleCountFloat = new(d.count)
		}
		for i, b := range d.buckets {
			hb := &dto.Bucket{UpperBound: new(b.upperBound)}
			if integral {
				hb.CumulativeCount = new(uint64(b.count))
			} else {
				hb.CumulativeCountFloat = new(b.count)
			}
			h.Bucket[i] = hb
		}
		m.Histogram = h
	case dto.MetricType_SUMMARY:
		d := se.dist
		sm := &dto.Summary{SampleCount: new(uint64(math.Round(d.count))), SampleSum: new(d.sum), Quantile: make([]*dto.Quantile, len(d.quantiles))}
		for i, q := range d.quantiles {
			sm.Quantile[i] = &dto.Quantile{Quantile: new(q.quantile), Value: new(q.value)}
		}
		m.Summary = sm
	}
	exposeCreated(m, typ, se) // created.go
	return m
}

func typeName(t dto.MetricType) string { return strings.ToLower(t.String()) }
