package gateway

import (
	"fmt"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// Created timestamps.
//
// A counter, histogram or summary series stored by the gateway has a created
// time, exposed as the created timestamp of the scraped metric (the
// OpenMetrics _created sample, the protobuf created_timestamp field), so that
// Prometheus's created-timestamp handling sees when the stored series started
// counting from zero:
//
//   - A series merged by aggregate is the gateway's own sum: its created time
//     is when the gateway first stored it, whatever the pushers send. Later
//     aggregates leave it alone (the sum never restarts while stored).
//   - A series merged by replace or family holds the pusher's value, so it
//     takes the pusher's created timestamp when the push carries one, and
//     keeps the time the gateway first stored it otherwise.
//   - A series dropped (PUT without its family, DELETE, family mode, expiry)
//     starts afresh when pushed again.
//
// Gauge histograms, gauges and untyped series have no created time.
//
// Python's client writes each counter's, histogram's and summary's created
// time in the text format as a separate gauge family X_created beside
// counter X_total or histogram or summary X. Stored as gauges, they would be
// the last pusher's start time next to a sum of many pushers (or, summed,
// nonsense), and they clash with the _created samples the gateway exposes in
// OpenMetrics. DecodeBody therefore drops such a gauge family when its
// sibling is in the same push, taking its values as the sibling series'
// created timestamps (which then count as above). Separately pushed, a family
// whose name a stored family's _created sample would take is rejected, like
// the _bucket/_count/_sum collisions.

// pushedCreated returns the created timestamp m carries for type typ, zero if
// none (or not a valid time: before year 1 or after 9999, as a protobuf
// Timestamp).
func pushedCreated(typ dto.MetricType, m *fam.Metric) time.Time {
	if !hasCreated(typ) || m.Created.IsZero() {
		return time.Time{}
	}
	if y := m.Created.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}
	}
	return m.Created.UTC()
}

// hasCreated reports whether series of type t have a created time.
func hasCreated(t dto.MetricType) bool {
	return t == dto.MetricType_COUNTER || t == dto.MetricType_HISTOGRAM || t == dto.MetricType_SUMMARY
}

// stampCreated sets each pushed series' created field to the created time it
// will have once applied to g (see above). Before, it holds the pushed
// created timestamp, if any. It must run under the store's lock, just before
// apply.
func stampCreated(g *group, pushed []*pushFamily, now time.Time) {
	for _, pf := range pushed {
		if !hasCreated(pf.typ) {
			continue
		}
		var old *family
		if g != nil {
			old = g.families[pf.name]
		}
		for _, src := range pf.series {
			var prev *series
			if old != nil {
				prev = old.get(src.key)
			}
			switch {
			case src.mode != ClearModeAggregate && src.createdNsec != 0:
				// The pusher's value, the pusher's start.
			case prev != nil && prev.createdNsec != 0:
				src.created, src.createdNsec = prev.created, prev.createdNsec
			default:
				src.setCreated(now)
			}
		}
	}
}

// exposeCreated sets the created timestamp of m, rendered from se of type
// typ.
func exposeCreated(m *dto.Metric, typ dto.MetricType, se *series) {
	if se.createdNsec == 0 {
		return
	}
	ts := timestamppb.New(se.createdTime())
	switch typ {
	case dto.MetricType_COUNTER:
		if m.Counter != nil {
			m.Counter.CreatedTimestamp = ts
		}
	case dto.MetricType_HISTOGRAM:
		if m.Histogram != nil {
			m.Histogram.CreatedTimestamp = ts
		}
	case dto.MetricType_SUMMARY:
		if m.Summary != nil {
			m.Summary.CreatedTimestamp = ts
		}
	}
}

// createdName is the name of the _created sample a family exposes in
// OpenMetrics, "" if none.
func createdName(name string, typ dto.MetricType) string {
	if !hasCreated(typ) {
		return ""
	}
	return strings.TrimSuffix(name, "_total") + "_created"
}

// createdClash rejects a new family name that would collide, in an
// OpenMetrics scrape, with the _created sample of another family, or the
// other way round.
func createdClash(name string, typ dto.MetricType, typeOf func(string) (dto.MetricType, bool)) error {
	famTypeOf := func(n string) (fam.Type, bool) {
		t, ok := typeOf(n)
		return fam.Type(t), ok
	}
	if sib, st, ok := pushbody.CreatedSibling(name, famTypeOf); ok && sib != name {
		return &ValidationError{Metric: name, Reason: fmt.Sprintf("name collides with the _created series of %s %s", typeName(dto.MetricType(st)), sib)}
	}
	if cn := createdName(name, typ); cn != "" && cn != name {
		if _, ok := typeOf(cn); ok {
			return &ValidationError{Metric: name, Reason: fmt.Sprintf("%s would expose %s, which is already a metric family", typeName(typ), cn)}
		}
	}
	return nil
}
