package gateway

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
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
	// Delete removes the group identified by groupLabels, if it exists. An
	// error (ErrNotDurable) means the deletion may not survive a restart.
	Delete(ctx context.Context, groupLabels map[string]string) error
	// RecordFailure notes a rejected or failed push into the group identified
	// by groupLabels at the store's clock, for push_failure_time_seconds. A
	// group that does not exist is created to hold it (as in the
	// Pushgateway).
	RecordFailure(groupLabels map[string]string)
	// Groups returns a snapshot of every group, sorted by grouping labels.
	Groups() []GroupSnapshot
	// Wipe removes every group. An error (ErrNotDurable) means the wipe may
	// not survive a restart.
	Wipe(ctx context.Context) error
	// Gather returns every group's series, one MetricFamily per name with the
	// series of all groups, families sorted by name and metrics by labels.
	prometheus.Gatherer
}

// MemoryStore is a Store kept in memory.
//
// State, all under mu: groups by grouping key, each holding its families,
// each a slice of series sorted by encoded pushed labels; names, the
// store-wide view of each family name; index, the clash index from series
// identity hash to owning group; order, the groups sorted by labels; and the
// counts Stats reports. Every structure is plain data (no closures or
// goroutines), so it can be snapshotted and rebuilt.
//
// The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	now func() time.Time // the clock; injectable so tests drive time

	mu     sync.RWMutex
	groups map[string]*group     // by labelsKey of the grouping labels
	names  map[string]*nameEntry // family name → type, HELP, holders
	order  []*group              // every group, sorted by labels (exposition order)
	// index maps identityHash of every stored series to the group holding
	// it; overflow holds further groups for hashes that collide (rare), so
	// the cross-group clash check is O(pushed series).
	index    map[uint64]*group
	overflow map[uint64][]*group
	nseries  int // stored series

	ttl    time.Duration // expiry; 0 = off (see expiry.go)
	oldest int64         // lower bound of the push times expiry looks at, unix ns; 0 = none

	maxSeries, maxSeriesPerGroup int // 0 = unlimited

	// Persistence (journal.go, persist.go): every change is appended to
	// journal under mu; lastSeq is the last record appended, keys the
	// idempotency keys of the journaled pushes. journal is nil in memory.
	journal Journal
	lastSeq uint64
	keys    journalKeys
}

// StoreOptions configures a MemoryStore. The zero value is usable.
type StoreOptions struct {
	// Now is the clock (windowed statistics, push times, expiry). Nil means
	// time.Now; tests inject a fake clock.
	Now func() time.Time
	// TTL, when positive, removes series not pushed for longer than TTL, and
	// groups left without series (see Sweep). 0 keeps everything.
	TTL time.Duration
	// MaxSeries bounds the series stored in all groups together; a push that
	// would exceed it is rejected whole with a *LimitError. 0 = unlimited.
	MaxSeries int
	// MaxSeriesPerGroup bounds the series of one group likewise. 0 =
	// unlimited.
	MaxSeriesPerGroup int
	// IdempotencyRetention and IdempotencyMaxKeys bound the idempotency keys
	// a persisting store journals and snapshots (as IdempotencyOptions bound
	// the gateway's answers; 0 means their defaults, negative retention
	// none).
	IdempotencyRetention time.Duration
	IdempotencyMaxKeys   int
}

// StoreStats are a store's sizes, maintained as it changes (O(1) to read).
type StoreStats struct {
	Groups int // groups, including those holding only a failure time
	Series int // stored series (a histogram or summary series counts once)
}

// LimitError is a push rejected because applying it would exceed a series
// limit (StoreOptions.MaxSeries or MaxSeriesPerGroup); nothing changed. The
// HTTP API answers 429.
type LimitError struct {
	Limit string // "max_series" or "max_series_per_group"
	Max   int    // the limit
	Would int    // the count the push would have led to
}

func (e *LimitError) Error() string {
	return "push rejected: it would store " + strconv.Itoa(e.Would) + " series, over the limit " +
		e.Limit + "=" + strconv.Itoa(e.Max)
}

// group is the set of families pushed under one grouping key.
type group struct {
	labels   []labelPair // sorted; none for the root group
	families map[string]*family
	// Unix nanoseconds, 0 = none: last successful and failed push, and a
	// lower bound of the push times that keep the group alive (expiry).
	pushed, failed, oldest int64
	nseries                int // series in all its families
}

// family is one family's series within a group, sorted by key (the encoded
// pushed labels): lookups are binary searches, the exposition order needs no
// sort, and there is no per-family map.
type family struct {
	series []*series
}

// find returns the index of key in f.series, or where it would go.
func (f *family) find(key string) (int, bool) {
	return slices.BinarySearchFunc(f.series, key, func(se *series, k string) int { return strings.Compare(se.key, k) })
}

// get returns the series with key, nil if none.
func (f *family) get(key string) *series {
	if i, ok := f.find(key); ok {
		return f.series[i]
	}
	return nil
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
	keys := journalKeys{retention: opts.IdempotencyRetention, maxKeys: opts.IdempotencyMaxKeys}
	if keys.retention == 0 {
		keys.retention = DefaultIdempotencyRetention
	}
	if keys.maxKeys <= 0 {
		keys.maxKeys = DefaultIdempotencyMaxKeys
	}
	return &MemoryStore{
		now: now, groups: map[string]*group{}, names: map[string]*nameEntry{},
		index: map[uint64]*group{}, overflow: map[uint64][]*group{},
		ttl: opts.TTL, maxSeries: max(opts.MaxSeries, 0), maxSeriesPerGroup: max(opts.MaxSeriesPerGroup, 0),
		keys: keys,
	}
}

// Stats returns the store's group and series counts.
func (s *MemoryStore) Stats() StoreStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return StoreStats{Groups: len(s.groups), Series: s.nseries}
}

// Push implements Store. Families are validated without the lock, then
// checked against the stored state under the lock, then applied; applying
// cannot fail, so a rejected push leaves the store untouched. Errors are
// *ValidationError (content) or *LimitError (series limits).
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
	meta, hasMeta := pushMetaFrom(ctx)
	var rec []byte
	if s.journal != nil {
		rec = encodePush(glabels, families, replaceGroup, meta, hasMeta) // outside the lock
	}

	s.mu.Lock()
	now := s.now()
	if err := s.pushLocked(gkey, glabels, pushed, replaceGroup, now, false); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.journal == nil {
		s.mu.Unlock()
		return nil
	}
	// pushLocked checked the push and left applying it to us: journal it
	// first, so the log order is the apply order and nothing unlogged is
	// applied.
	seq, err := s.appendLocked(rec, now)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if hasMeta {
		s.keys.add(meta, now.UnixNano())
	}
	s.applyPush(gkey, glabels, pushed, replaceGroup, now)
	s.mu.Unlock()
	return s.sync(ctx, seq)
}

// pushLocked sweeps at now and checks the push against the state (limits
// too, unless replaying). With a journal and not replaying it stops there:
// the caller journals the push, then applies it with applyPush. Otherwise it
// applies it.
func (s *MemoryStore) pushLocked(gkey string, glabels []labelPair, pushed []*pushFamily, replaceGroup bool, now time.Time, replay bool) error {
	// Expired series are neither checked against nor merged into.
	s.sweepLocked(now)
	if err := s.check(s.groups[gkey], glabels, pushed, replaceGroup, !replay); err != nil {
		return err
	}
	if s.journal != nil && !replay {
		return nil
	}
	s.applyPush(gkey, glabels, pushed, replaceGroup, now)
	return nil
}

// applyPush applies a checked push at now. It cannot fail.
func (s *MemoryStore) applyPush(gkey string, glabels []labelPair, pushed []*pushFamily, replaceGroup bool, now time.Time) {
	g := s.groups[gkey] // nil when the group is new
	if g == nil {
		if len(pushed) == 0 {
			return // Nothing to store; an empty group is not kept.
		}
		g = &group{labels: glabels, families: make(map[string]*family, len(pushed))}
		s.addGroup(gkey, g)
	}
	stampWindows(pushed, now) // the time windowed values enter their window
	// Created times: first stored, or the pusher's (created.go).
	stampCreated(g, pushed, now)
	s.apply(g, pushed, replaceGroup, now.UnixNano())
	s.touch(g, now)
	if len(g.families) == 0 {
		s.removeGroup(gkey, g)
	}
}

// appendLocked journals rec at now, under the write lock. Without a journal
// it does nothing.
func (s *MemoryStore) appendLocked(rec []byte, now time.Time) (uint64, error) {
	if s.journal == nil {
		return 0, nil
	}
	setRecordTime(rec, now)
	seq, err := s.journal.Append(rec)
	if err != nil {
		return 0, notDurable(err)
	}
	s.lastSeq = seq
	return seq, nil
}

// sync waits until record seq is durable; seq 0 (nothing journaled: a change
// that changed nothing) waits for the last record appended, which the change
// may have observed.
func (s *MemoryStore) sync(ctx context.Context, seq uint64) error {
	if s.journal == nil {
		return nil
	}
	if seq == 0 {
		s.mu.RLock()
		seq = s.lastSeq
		s.mu.RUnlock()
		if seq == 0 {
			return nil
		}
	}
	if err := s.journal.Sync(ctx, seq); err != nil {
		return notDurable(err)
	}
	return nil
}

// addGroup stores the new group g under gkey, keeping order sorted.
func (s *MemoryStore) addGroup(gkey string, g *group) {
	s.groups[gkey] = g
	i, _ := slices.BinarySearchFunc(s.order, g, func(a, b *group) int { return compareLabels(a.labels, b.labels) })
	s.order = slices.Insert(s.order, i, g)
}

// removeGroup removes g, stored under gkey, with its series.
func (s *MemoryStore) removeGroup(gkey string, g *group) {
	for name := range g.families {
		s.dropFamily(g, name)
	}
	delete(s.groups, gkey)
	if i, ok := slices.BinarySearchFunc(s.order, g, func(a, b *group) int { return compareLabels(a.labels, b.labels) }); ok {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// check validates pushed families against the stored state without changing
// it. g is the target group, nil if it does not exist yet.
func (s *MemoryStore) check(g *group, glabels []labelPair, pushed []*pushFamily, replaceGroup, limits bool) error {
	typeOf := func(name string) (dto.MetricType, bool) {
		for _, pf := range pushed { // a handful of families: no map
			if pf.name == name {
				return pf.typ, true
			}
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
		if err := s.seriesClash(g, glabels, pf); err != nil {
			return err
		}
	}
	if !limits {
		return nil
	}
	return s.checkLimits(g, pushed, replaceGroup)
}

// checkLimits rejects a push that would leave more series than a limit
// allows, counting what the push adds and what it drops (PUT, family mode).
func (s *MemoryStore) checkLimits(g *group, pushed []*pushFamily, replaceGroup bool) error {
	if s.maxSeries == 0 && s.maxSeriesPerGroup == 0 {
		return nil
	}
	before, after := 0, 0
	if g != nil {
		before = g.nseries
		if !replaceGroup {
			after = g.nseries
		}
	}
	for _, pf := range pushed {
		var f *family
		if g != nil {
			f = g.families[pf.name]
		}
		if f != nil && !replaceGroup {
			after -= len(f.series)
		}
		n := len(pf.series)
		if f != nil && !pf.familyMode {
			n = len(f.series)
			for _, se := range pf.series {
				if f.get(se.key) == nil {
					n++
				}
			}
		}
		after += n
	}
	if m := s.maxSeriesPerGroup; m > 0 && after > m && after > before {
		return &LimitError{Limit: "max_series_per_group", Max: m, Would: after}
	}
	if m, total := s.maxSeries, s.nseries-before+after; m > 0 && total > m && after > before {
		return &LimitError{Limit: "max_series", Max: m, Would: total}
	}
	return nil
}

// seriesClash rejects a pushed series equal (same name, same full label set)
// to a series stored in another group: the scrape would expose it twice. The
// index finds the candidate groups by identity hash; each is verified.
func (s *MemoryStore) seriesClash(g *group, glabels []labelPair, pf *pushFamily) error {
	for i, h := range pf.hashes {
		o, ok := s.index[h]
		if !ok {
			continue
		}
		if err := s.clashWith(o, g, glabels, pf, pf.series[i]); err != nil {
			return err
		}
		for _, o := range s.overflow[h] {
			if err := s.clashWith(o, g, glabels, pf, pf.series[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// clashWith reports a clash if group o, not the target g, holds se.
func (s *MemoryStore) clashWith(o, g *group, glabels []labelPair, pf *pushFamily, se *series) error {
	if o == g {
		return nil
	}
	f := o.families[pf.name]
	if f == nil {
		return nil
	}
	if k, ok := pushedKey(glabels, se.key, o.labels); !ok || f.get(k) == nil {
		return nil // a hash collision
	}
	return &ValidationError{
		Metric: pf.name + labelString(fullLabels(glabels, se.key)),
		Reason: "series already pushed to group " + labelString(o.labels),
	}
}

// indexAdd records that g holds the series of identity hash h.
func (s *MemoryStore) indexAdd(h uint64, g *group) {
	o, ok := s.index[h]
	switch {
	case !ok:
		s.index[h] = g
	case o != g && !slices.Contains(s.overflow[h], g):
		s.overflow[h] = append(s.overflow[h], g)
	}
}

// indexRemove forgets that g holds the series of identity hash h.
func (s *MemoryStore) indexRemove(h uint64, g *group) {
	more := s.overflow[h]
	if s.index[h] == g {
		if len(more) == 0 {
			delete(s.index, h)
			return
		}
		s.index[h] = more[len(more)-1]
		more = more[:len(more)-1]
	} else if i := slices.Index(more, g); i >= 0 {
		more = slices.Delete(more, i, i+1)
	}
	if len(more) == 0 {
		delete(s.overflow, h)
	} else {
		s.overflow[h] = more
	}
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
	if err := totalClash(name, typ, typeOf); err != nil {
		return err
	}
	return createdClash(name, typ, typeOf) // the OpenMetrics _created series (created.go)
}

// totalClash rejects names that become one OpenMetrics family: a counter
// x_total, or x, is family x with the sample x_total, so no other family may
// be named x, nor x_total beside a counter x.
func totalClash(name string, typ dto.MetricType, typeOf func(string) (dto.MetricType, bool)) error {
	if typ == dto.MetricType_COUNTER {
		other := name + "_total"
		if base, ok := strings.CutSuffix(name, "_total"); ok {
			other = base
		}
		if t, ok := typeOf(other); ok {
			return &ValidationError{Metric: name, Reason: fmt.Sprintf("counter would share the OpenMetrics family of %s %s", typeName(t), other)}
		}
		return nil
	}
	if t, ok := typeOf(name + "_total"); ok && t == dto.MetricType_COUNTER {
		return &ValidationError{Metric: name, Reason: fmt.Sprintf("name is the OpenMetrics family of counter %s_total", name)}
	}
	if base, ok := strings.CutSuffix(name, "_total"); ok {
		if t, ok := typeOf(base); ok && t == dto.MetricType_COUNTER {
			return &ValidationError{Metric: name, Reason: fmt.Sprintf("name is the OpenMetrics sample of counter %s", base)}
		}
	}
	return nil
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

// apply merges checked families into g, stamping merged series with push
// time ns. It must not fail.
func (s *MemoryStore) apply(g *group, pushed []*pushFamily, replaceGroup bool, ns int64) {
	if replaceGroup {
		for name := range g.families {
			if !slices.ContainsFunc(pushed, func(pf *pushFamily) bool { return pf.name == name }) {
				s.dropFamily(g, name)
			}
		}
	}
	var added []*series
	for _, pf := range pushed {
		f := g.families[pf.name]
		if f != nil && pf.familyMode {
			// Family mode: the pushed samples become the family.
			s.clearFamily(g, pf.name, f)
		}
		e := s.names[pf.name]
		if e == nil {
			e = &nameEntry{typ: pf.typ, holders: map[*group]*family{}}
			s.names[pf.name] = e
		}
		if pf.help != "" {
			e.help = pf.help // The latest pushed HELP wins store-wide.
		}
		if f == nil {
			f = &family{series: make([]*series, 0, len(pf.series))}
			g.families[pf.name] = f
			e.holders[g] = f
		}
		added = added[:0]
		for i, src := range pf.series {
			src.pushed = ns
			if cur := f.get(src.key); cur != nil {
				merge(cur, src)
				cur.pushed = ns
				continue
			}
			added = append(added, src)
			s.indexAdd(pf.hashes[i], g)
		}
		if len(added) > 0 {
			f.series = insertSorted(f.series, added)
			s.nseries += len(added)
			g.nseries += len(added)
		}
	}
}

// insertSorted merges the new series added (keys not in sorted) into sorted:
// O(len(sorted) + k log k) for k added, however many are added at once.
func insertSorted(sorted, added []*series) []*series {
	byKey := func(a, b *series) int { return strings.Compare(a.key, b.key) }
	slices.SortFunc(added, byKey)
	n := len(sorted)
	sorted = slices.Grow(sorted, len(added))[:n+len(added)]
	// Merge from the back so nothing is overwritten before it is moved.
	i, j := n-1, len(added)-1
	for k := len(sorted) - 1; j >= 0; k-- {
		if i >= 0 && sorted[i].key > added[j].key {
			sorted[k] = sorted[i]
			i--
		} else {
			sorted[k] = added[j]
			j--
		}
	}
	return sorted
}

// forget removes se, of family name in g, from the index and the counts.
func (s *MemoryStore) forget(g *group, name string, se *series) {
	s.indexRemove(identityHash(name, g.labels, se.key), g)
	s.nseries--
	g.nseries--
}

// clearFamily removes every series of f, family name of g, keeping f.
func (s *MemoryStore) clearFamily(g *group, name string, f *family) {
	for _, se := range f.series {
		s.forget(g, name, se)
	}
	clear(f.series)
	f.series = f.series[:0]
}

func (s *MemoryStore) dropFamily(g *group, name string) {
	if f := g.families[name]; f != nil {
		s.clearFamily(g, name, f)
	}
	delete(g.families, name)
	if e := s.names[name]; e != nil {
		delete(e.holders, g)
		if len(e.holders) == 0 {
			delete(s.names, name)
		}
	}
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, groupLabels map[string]string) error {
	glabels := sortedLabels(groupLabels)
	gkey := labelsKey(glabels)
	s.mu.Lock()
	now := s.now()
	s.sweepLocked(now) // as every change does, so that replay matches
	var seq uint64
	if s.groups[gkey] != nil {
		var err error
		if seq, err = s.appendLocked(encodeSimple(recDelete, glabels), now); err != nil {
			s.mu.Unlock()
			return err
		}
		s.deleteLocked(gkey)
	}
	s.mu.Unlock()
	return s.sync(ctx, seq)
}

func (s *MemoryStore) deleteLocked(gkey string) {
	if g := s.groups[gkey]; g != nil {
		s.removeGroup(gkey, g)
	}
}

// Gather implements prometheus.Gatherer: one MetricFamily per stored name
// with the series of every group (clear mode labels are never stored), HELP
// as last pushed, families sorted by name. Metrics are in exposition order:
// by group (sorted by grouping labels), then by pushed labels within the
// group, as the text scrape writes them (expose.go). Histogram counts are
// exposed as integers when they all are, else as floats. Every group adds its
// push_time_seconds and push_failure_time_seconds sample; expired series are
// swept first. It never fails.
func (s *MemoryStore) Gather() ([]*dto.MetricFamily, error) {
	s.Sweep()
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now() // windowed series expose their window's statistic at now
	out := make([]*dto.MetricFamily, 0, len(s.names))
	for _, name := range slices.Sorted(maps.Keys(s.names)) {
		e := s.names[name]
		// A copy of the HELP: the family is encoded after the lock is released,
		// while pushes may change e.help.
		help := e.help
		if help == "" {
			// Every family gets a HELP line: promtool check metrics (and
			// Prometheus's metadata API) want one, and Gravel-style bodies
			// often carry none.
			help = defaultHelp
		}
		mf := &dto.MetricFamily{Name: new(name), Type: e.typ.Enum(), Help: &help}
		for _, h := range s.holdersInOrder(e) {
			for _, se := range h.f.series {
				if se = exposed(se, now); se != nil { // nil: an empty window
					mf.Metric = append(mf.Metric, toMetric(e.typ, h.g.labels, se))
				}
			}
		}
		if len(mf.Metric) > 0 {
			out = append(out, mf)
		}
	}
	return s.withPushTimes(out), nil
}

// holder is one group's family of a name.
type holder struct {
	g *group
	f *family
}

// holdersInOrder returns the groups holding e's name, in group order. Called
// under the lock.
func (s *MemoryStore) holdersInOrder(e *nameEntry) []holder {
	hs := make([]holder, 0, len(e.holders))
	if len(e.holders)*8 < len(s.order) {
		for g, f := range e.holders {
			hs = append(hs, holder{g, f})
		}
		slices.SortFunc(hs, func(a, b holder) int { return compareLabels(a.g.labels, b.g.labels) })
		return hs
	}
	for _, g := range s.order {
		if f := e.holders[g]; f != nil {
			hs = append(hs, holder{g, f})
		}
	}
	return hs
}

// defaultHelp is the HELP of a family pushed without one.
const defaultHelp = "Pushed to the gateway without HELP."

// toMetric renders a stored series. It copies every value, so the result
// stays valid after the lock is released.
func toMetric(typ dto.MetricType, glabels []labelPair, se *series) *dto.Metric {
	labels := fullLabels(glabels, se.key)
	m := &dto.Metric{Label: make([]*dto.LabelPair, len(labels))}
	for i, l := range labels {
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
