package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// selfMetrics are the gateway's operational metrics beyond
// gateway_pushes_total (handler.go) and the idempotency ones
// (idempotency.go):
//
//	gateway_push_duration_seconds{method}  histogram of PUT and POST pushes, answer included
//	gateway_limit_rejections_total{limit}  pushes refused by a limit
//	gateway_groups, gateway_series         the store's size (Store.Stats)
//
// Hook for persistence: a persisting Store exposes its lag (e.g.
// gateway_persistence_lag_seconds) by implementing prometheus.Collector; it
// is registered here with the other store gauges (see initSelfMetrics).
type selfMetrics struct {
	pushDuration    *prometheus.HistogramVec
	limitRejections *prometheus.CounterVec
}

// Limits counted by gateway_limit_rejections_total beyond the per-push ones
// (limits.go): the store's series limits (429).
const (
	LimitSeries         = "series"
	LimitSeriesPerGroup = "series_per_group"
)

// statsStore is a Store that reports its size.
type statsStore interface {
	Stats() StoreStats
}

func (g *Gateway) initSelfMetrics(reg prometheus.Registerer, store Store) error {
	m := &g.self
	m.pushDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_push_duration_seconds",
		Help:    "Time to handle a PUT or POST push, from its headers to its answer, by method.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"method"})
	m.limitRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_limit_rejections_total",
		Help: "Pushes refused by a limit, by limit (body_size, samples, label_name_length, label_value_length, labels_per_series, series, series_per_group).",
	}, []string{"limit"})
	for _, meth := range []string{http.MethodPut, http.MethodPost} {
		m.pushDuration.WithLabelValues(meth)
	}
	for _, l := range []string{LimitBodySize, LimitSamples, LimitLabelNameLength, LimitLabelValueLength, LimitLabelsPerSeries, LimitSeries, LimitSeriesPerGroup} {
		m.limitRejections.WithLabelValues(l)
	}
	cs := []prometheus.Collector{m.pushDuration, m.limitRejections}
	if s, ok := store.(statsStore); ok {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gateway_groups",
				Help: "Groups (grouping keys) held by the gateway.",
			}, func() float64 { return float64(s.Stats().Groups) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gateway_series",
				Help: "Series held by the gateway, a histogram or summary counting once per label set.",
			}, func() float64 { return float64(s.Stats().Series) }),
		)
	}
	// Persistence hook: a Store that reports more about itself (a
	// persisting store's lag) registers its own collector here.
	if c, ok := store.(prometheus.Collector); ok {
		cs = append(cs, c)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	return nil
}

// servePush handles a PUT or POST push, timed by
// gateway_push_duration_seconds.
func (g *Gateway) servePush(w http.ResponseWriter, r *http.Request, grouping string) {
	start := time.Now()
	defer func() {
		g.self.pushDuration.WithLabelValues(r.Method).Observe(time.Since(start).Seconds())
	}()
	g.handlePush(w, r, grouping)
}

// countLimitRejection counts a refused push in
// gateway_limit_rejections_total when a limit refused it.
func (g *Gateway) countLimitRejection(code int, err error) {
	var ple *PushLimitError
	var sle *LimitError
	switch {
	case errors.As(err, &ple):
		g.self.limitRejections.WithLabelValues(ple.Limit).Inc()
	case errors.As(err, &sle):
		g.self.limitRejections.WithLabelValues(storeLimitName(sle)).Inc()
	case code == http.StatusRequestEntityTooLarge:
		g.self.limitRejections.WithLabelValues(LimitBodySize).Inc()
	}
}

// storeLimitName is the limit label of a store's LimitError.
func storeLimitName(e *LimitError) string {
	switch e.Limit {
	case "max_series":
		return LimitSeries
	case "max_series_per_group":
		return LimitSeriesPerGroup
	}
	return e.Limit
}
