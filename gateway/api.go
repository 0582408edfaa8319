package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The Pushgateway's API v1 (api/v1 in its source) and its admin and
// lifecycle endpoints, with the same JSON shapes and status codes.

// apiResponse is the envelope of every /api/v1 answer.
type apiResponse struct {
	Status string `json:"status"`
	Data   any    `json:"data,omitempty"`
}

// apiFamily is one family of a group in /api/v1/metrics.
type apiFamily struct {
	TimeStamp time.Time   `json:"time_stamp"`
	Type      string      `json:"type"`
	Help      string      `json:"help,omitempty"`
	Metrics   []apiMetric `json:"metrics"`
}

// apiMetric is one series: labels plus "value" (counter, gauge, untyped) or
// "count", "sum" and "buckets" (histogram) or "quantiles" (summary), every
// number as a string formatted as Go's fmt.Sprint does.
type apiMetric map[string]any

// apiStatus is the data of /api/v1/status.
type apiStatus struct {
	Flags     map[string]string `json:"flags"`
	StartTime time.Time         `json:"start_time"`
	BuildInfo map[string]string `json:"build_information"`
}

// corsHeaders are set on /api/v1 answers, as the Pushgateway does.
var corsHeaders = map[string]string{
	"Access-Control-Allow-Headers":  "Accept, Authorization, Content-Type, Origin",
	"Access-Control-Allow-Methods":  "GET, POST, DELETE, OPTIONS",
	"Access-Control-Allow-Origin":   "*",
	"Access-Control-Expose-Headers": "Date",
	"Cache-Control":                 "no-cache, no-store, must-revalidate",
}

// serveAPI routes /api/v1/…: GET metrics and status, OPTIONS anything, and
// PUT admin/wipe when the admin API is enabled (404 otherwise, as the
// Pushgateway, which does not register the route).
func (g *Gateway) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	endpoint := strings.TrimPrefix(path, "/api/v1")
	if endpoint == "/admin/wipe" {
		g.serveWipe(w, r)
		return
	}
	for h, v := range corsHeaders {
		w.Header().Set(h, v)
	}
	if r.Method == http.MethodOptions {
		return
	}
	switch endpoint {
	case "/metrics", "/status":
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD, OPTIONS")
		return
	}
	var data any
	if endpoint == "/metrics" {
		data = g.apiMetrics()
	} else {
		data = apiStatus{Flags: g.flags, StartTime: g.started, BuildInfo: buildInfo()}
	}
	b, err := json.Marshal(apiResponse{Status: "success", Data: data})
	if err != nil {
		g.logger.Error("encoding API answer", "path", path, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// apiMetrics renders every group: its grouping labels, whether its last push
// succeeded, each family by name, and the push time gauges.
func (g *Gateway) apiMetrics() []map[string]any {
	groups := g.store.Groups()
	out := make([]map[string]any, 0, len(groups))
	for _, gs := range groups {
		m := make(map[string]any, len(gs.Families)+4)
		for _, fs := range gs.Families {
			mf := fs.Family
			help := mf.GetHelp()
			if own := g.reserved[mf.GetName()]; own != nil {
				help = own.GetHelp() // As scraped: the gateway's HELP wins.
			}
			m[mf.GetName()] = apiFamily{TimeStamp: fs.LastPush, Type: mf.GetType().String(), Help: help, Metrics: apiMetrics(mf)}
		}
		// The group's last change stamps both push time gauges.
		changed := gs.LastPush
		if gs.LastFailure.After(changed) {
			changed = gs.LastFailure
		}
		m[PushTimeMetric] = timeFamily(gs, pushTimeHelp, gs.LastPush, changed)
		m[PushFailureTimeMetric] = timeFamily(gs, pushFailureTimeHelp, gs.LastFailure, changed)
		// Set last so that a family named like these keys cannot hide them.
		m["labels"] = gs.Labels
		m["last_push_successful"] = gs.LastPushSuccessful()
		out = append(out, m)
	}
	return out
}

func timeFamily(gs GroupSnapshot, help string, at, changed time.Time) apiFamily {
	v := 0.0
	if !at.IsZero() {
		v = float64(at.UnixNano()) / 1e9
	}
	labels := make(map[string]string, len(gs.Labels))
	for k, x := range gs.Labels {
		labels[k] = x
	}
	return apiFamily{
		TimeStamp: changed,
		Type:      dto.MetricType_GAUGE.String(),
		Help:      help,
		Metrics:   []apiMetric{{"labels": labels, "value": fmt.Sprint(v)}},
	}
}

// apiMetrics renders mf's series as the Pushgateway's API does. Gauge
// histograms are rendered like histograms (the Pushgateway renders them as
// a value of 0).
func apiMetrics(mf *dto.MetricFamily) []apiMetric {
	out := make([]apiMetric, len(mf.GetMetric()))
	for i, m := range mf.GetMetric() {
		labels := make(map[string]string, len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		am := apiMetric{"labels": labels}
		switch mf.GetType() {
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			q := make(map[string]string, len(s.GetQuantile()))
			for _, x := range s.GetQuantile() {
				q[fmt.Sprint(x.GetQuantile())] = fmt.Sprint(x.GetValue())
			}
			am["quantiles"] = q
			am["count"] = fmt.Sprint(s.GetSampleCount())
			am["sum"] = fmt.Sprint(s.GetSampleSum())
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			b := make(map[string]string, len(h.GetBucket()))
			for _, x := range h.GetBucket() {
				if c := x.GetCumulativeCountFloat(); c > 0 {
					b[fmt.Sprint(x.GetUpperBound())] = fmt.Sprint(c)
				} else {
					b[fmt.Sprint(x.GetUpperBound())] = fmt.Sprint(x.GetCumulativeCount())
				}
			}
			am["buckets"] = b
			if c := h.GetSampleCountFloat(); c > 0 {
				am["count"] = fmt.Sprint(c)
			} else {
				am["count"] = fmt.Sprint(h.GetSampleCount())
			}
			am["sum"] = fmt.Sprint(h.GetSampleSum())
		case dto.MetricType_COUNTER:
			am["value"] = fmt.Sprint(m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			am["value"] = fmt.Sprint(m.GetGauge().GetValue())
		default:
			am["value"] = fmt.Sprint(m.GetUntyped().GetValue())
		}
		out[i] = am
	}
	return out
}

// serveWipe serves PUT /api/v1/admin/wipe: 202, every group removed.
func (g *Gateway) serveWipe(w http.ResponseWriter, r *http.Request) {
	if !g.adminAPI {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPut {
		methodNotAllowed(w, "PUT")
		return
	}
	if err := g.store.Wipe(r.Context()); err != nil {
		g.logger.Error("wipe not persisted", "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	g.logger.Info("metric store wiped", "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusAccepted)
}

// serveQuit serves /-/quit as the Pushgateway: PUT or POST ask for a
// graceful shutdown (200) when the lifecycle API is enabled, else 403; other
// methods 405.
func (g *Gateway) serveQuit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		w.Header().Set("Allow", "PUT, POST")
		http.Error(w, "Only POST or PUT requests allowed.", http.StatusMethodNotAllowed)
		return
	}
	if !g.lifecycle || g.quit == nil {
		http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
		return
	}
	g.logger.Warn("termination requested via web service", "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("Requesting termination... Goodbye!\n"))
	g.quitOnce.Do(g.quit)
}

// buildInfo is the Pushgateway's build_information, from the binary's
// embedded build information.
var buildInfo = sync.OnceValue(func() map[string]string {
	info := map[string]string{
		"version": "", "revision": "", "branch": "", "buildUser": "", "buildDate": "",
		"goVersion": runtime.Version(),
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info["version"] = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info["revision"] = s.Value
		case "vcs.time":
			info["buildDate"] = s.Value
		}
	}
	return info
})
