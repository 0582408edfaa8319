package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// Options configures a Gateway. The zero value is usable.
type Options struct {
	// Registry receives the gateway's own metrics (gateway_pushes_total and
	// the scrape handler's promhttp_* metrics) and is served with the pushed
	// metrics. Nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Logger receives rejected pushes (debug) and server-side errors. Nil
	// discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds a push body, before and after decompression; larger
	// pushes get 413. ≤ 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Flags are the command-line flags by name, shown by /api/v1/status and
	// the status page.
	Flags map[string]string
	// EnableAdminAPI serves PUT /api/v1/admin/wipe (404 otherwise).
	EnableAdminAPI bool
	// EnableLifecycle serves PUT and POST /-/quit, which call Quit once
	// (403 otherwise).
	EnableLifecycle bool
	// Quit asks the server to shut down gracefully; it must not block on the
	// request that calls it.
	Quit func()
	// Idempotency configures how long and how many answers to pushes with an
	// Idempotency-Key header are remembered (idempotency.go).
	Idempotency IdempotencyOptions
	// Limits bounds each push (limits.go); the zero value applies the
	// defaults.
	Limits Limits
}

// Gateway is the HTTP API of the aggregating push gateway, compatible with
// the Prometheus Pushgateway's push API:
//
//	PUT|POST    /metrics/job/<job>{/<label>/<value>}  push into a group (200)
//	PUT|POST    /metrics                              push into the root group (200)
//	DELETE      /metrics/job/<job>{/<label>/<value>}  delete a group (202)
//	DELETE      /metrics                              delete the root group (202)
//	GET         /metrics                              scrape: pushed and own metrics
//	GET         /-/healthy, /-/ready                  200
//	GET         /, /status                            HTML status page of the groups
//	GET         /api/v1/metrics, /api/v1/status       the Pushgateway's JSON API
//	PUT         /api/v1/admin/wipe                    delete every group (202; with EnableAdminAPI, else 404)
//	PUT|POST    /-/quit                               graceful shutdown (200; with EnableLifecycle, else 403)
//
// A rejected push answers 400 (invalid content), 413 (too large) or 415
// (unsupported Content-Type or Content-Encoding) with the reason in the body.
// A push with an Idempotency-Key header already answered is answered the same
// without being applied again; reusing the key for a different request
// answers 422 (idempotency.go).
type Gateway struct {
	store    Store
	logger   *slog.Logger
	maxBody  int64
	pushes   *prometheus.CounterVec
	reserved map[string]*dto.MetricFamily // own families, by name
	scrape   http.Handler
	// fastScrape serves text and OpenMetrics scrapes of a *MemoryStore
	// (expose.go); nil for other stores.
	fastScrape *exposer

	flags     map[string]string // for /api/v1/status and the status page
	started   time.Time
	adminAPI  bool
	lifecycle bool
	quit      func()
	quitOnce  sync.Once

	idem *idempotency // Idempotency-Key answers (idempotency.go)

	limits Limits      // effective per-push limits (limits.go)
	self   selfMetrics // push latency, limit rejections, store size (metrics.go)
}

// Results counted by gateway_pushes_total.
const (
	resultSuccess  = "success"
	resultRejected = "rejected" // 4xx: the push's fault
	resultError    = "error"    // 5xx
)

// New returns a Gateway serving store. It fails if the gateway's own metrics
// cannot be registered in opts.Registry.
func New(store Store, opts Options) (*Gateway, error) {
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxBody := opts.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_pushes_total",
		Help: "Push and delete requests handled, by HTTP method and result (success, rejected: 4xx, error: 5xx).",
	}, []string{"method", "result"})
	if err := reg.Register(pushes); err != nil {
		return nil, fmt.Errorf("registering gateway metrics: %w", err)
	}
	for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
		for _, r := range []string{resultSuccess, resultRejected, resultError} {
			pushes.WithLabelValues(m, r)
		}
	}
	g := &Gateway{store: store, logger: logger, maxBody: maxBody, pushes: pushes}
	g.flags, g.started, g.adminAPI, g.lifecycle, g.quit = opts.Flags, time.Now(), opts.EnableAdminAPI, opts.EnableLifecycle, opts.Quit
	if err := g.initIdempotency(reg, opts.Idempotency, store); err != nil {
		return nil, err
	}
	g.limits = opts.Limits.Effective()
	if err := g.initSelfMetrics(reg, store); err != nil {
		return nil, err
	}

	// Pushed families are served next to the gateway's own; Gatherers rejects
	// a name whose HELP differs between the two, so the gateway's HELP is
	// used for such names (and pushes of a different type are rejected).
	withOwnHelp := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := store.Gather()
		for _, mf := range mfs {
			if own := g.reserved[mf.GetName()]; own != nil {
				mf.Help = own.Help
			}
		}
		return mfs, err
	})
	handler := promhttp.HandlerFor(prometheus.Gatherers{reg, withOwnHelp}, promhttp.HandlerOpts{
		ErrorLog:          promLogger{logger},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,

		// Counters, histograms and summaries carry created timestamps
		// (created.go): OpenMetrics scrapes show them as _created samples.
		EnableOpenMetricsTextCreatedSamples: true,
	})
	if ms, ok := store.(*MemoryStore); ok {
		// Text and OpenMetrics scrapes straight from the store (expose.go).
		g.fastScrape = newExposer(ms, reg, handler, promLogger{logger})
		handler = g.fastScrape
	}
	g.scrape = promhttp.InstrumentMetricHandler(reg, handler)

	own, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering gateway metrics: %w", err)
	}
	g.reserved = make(map[string]*dto.MetricFamily, len(own))
	for _, mf := range own {
		g.reserved[mf.GetName()] = mf
	}
	return g, nil
}

// ServeHTTP routes requests. It does not use http.ServeMux, whose path
// cleaning would redirect grouping paths with empty segments.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case path == "/metrics":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			g.scrape.ServeHTTP(w, r)
		case http.MethodPut, http.MethodPost:
			g.servePush(w, r, "")
		case http.MethodDelete:
			g.handleDelete(w, r, "")
		default:
			methodNotAllowed(w, "GET, HEAD, PUT, POST, DELETE")
		}
	case strings.HasPrefix(path, "/metrics/"):
		grouping := strings.TrimPrefix(path, "/metrics")
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			g.servePush(w, r, grouping)
		case http.MethodDelete:
			g.handleDelete(w, r, grouping)
		default:
			methodNotAllowed(w, "PUT, POST, DELETE")
		}
	case path == "/-/healthy" || path == "/-/ready":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		if rs, ok := g.store.(interface{ Ready() error }); ok && path == "/-/ready" {
			if err := rs.Ready(); err != nil { // persistence failed (persist.go)
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK\n"))
	case path == "/" || path == "/status":
		g.serveStatus(w, r)
	case strings.HasPrefix(path, "/api/v1/"):
		g.serveAPI(w, r, path)
	case path == "/-/quit":
		g.serveQuit(w, r)
	default:
		http.NotFound(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// handlePush serves PUT (replace the group's set of families) and POST
// (touch only the pushed families) into the group encoded in grouping.
func (g *Gateway) handlePush(w http.ResponseWriter, r *http.Request, grouping string) {
	if g.idempotentPush(w, r, grouping) {
		return // It had an Idempotency-Key (idempotency.go).
	}
	labels, err := ParseGroupingPath(grouping)
	if err != nil {
		g.reject(w, r, http.StatusBadRequest, err)
		return
	}
	body := http.MaxBytesReader(w, r.Body, g.maxBody)
	fams, err := DecodeBody(body, r.Header, g.maxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			g.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("push body larger than %d bytes", mbe.Limit))
		case errors.Is(err, ErrUnsupportedMediaType):
			g.reject(w, r, http.StatusUnsupportedMediaType, err)
		default:
			g.reject(w, r, http.StatusBadRequest, err)
		}
		return
	}
	if err := g.checkOwnNames(fams, len(labels) == 0); err != nil {
		g.reject(w, r, http.StatusBadRequest, err)
		return
	}
	if err := g.limits.Check(labels, fams); err != nil {
		g.reject(w, r, err.(*PushLimitError).Status, err)
		return
	}
	if err := g.store.Push(r.Context(), labels, fams, r.Method == http.MethodPut); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			g.reject(w, r, http.StatusBadRequest, err)
			return
		}
		var le *LimitError // a store series limit: 429, nothing applied
		if errors.As(err, &le) {
			g.reject(w, r, http.StatusTooManyRequests, err)
			return
		}
		g.fail(w, r, err)
		return
	}
	g.pushes.WithLabelValues(r.Method, resultSuccess).Inc()
	w.WriteHeader(http.StatusOK)
}

// checkOwnNames rejects pushed families that would clash with the gateway's
// own metrics by type or by histogram/summary series names, and, in the root
// group (no grouping labels, like the gateway's own series), any family of
// one of the gateway's own names: its series could equal the gateway's.
func (g *Gateway) checkOwnNames(fams []fam.Family, rootGroup bool) error {
	ownType := func(name string) (dto.MetricType, bool) {
		if mf := g.reserved[name]; mf != nil {
			return mf.GetType(), true
		}
		return 0, false
	}
	for i := range fams {
		name, typ := fams[i].Name, dto.MetricType(fams[i].Type)
		if t, ok := ownType(name); ok {
			if t != typ {
				return &ValidationError{Metric: name, Reason: fmt.Sprintf("type %s clashes with the gateway's own %s of that name", typeName(typ), typeName(t))}
			}
			if rootGroup {
				return &ValidationError{Metric: name, Reason: "the gateway exposes this metric itself; push it under a job, not to the root group"}
			}
			continue
		}
		if err := suffixClash(name, typ, ownType); err != nil {
			return fmt.Errorf("with the gateway's own metrics: %w", err)
		}
	}
	return nil
}

// handleDelete serves DELETE: the group goes away; a missing group is fine.
func (g *Gateway) handleDelete(w http.ResponseWriter, r *http.Request, grouping string) {
	labels, err := ParseGroupingPath(grouping)
	if err != nil {
		g.reject(w, r, http.StatusBadRequest, err)
		return
	}
	if err := g.store.Delete(r.Context(), labels); err != nil {
		g.fail(w, r, err) // 503: not durable (journal.go)
		return
	}
	g.pushes.WithLabelValues(r.Method, resultSuccess).Inc()
	w.WriteHeader(http.StatusAccepted)
}

func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, code int, err error) {
	g.recordPushFailure(r)
	g.pushes.WithLabelValues(r.Method, resultRejected).Inc()
	g.countLimitRejection(code, err)
	g.logger.Debug("push rejected", "method", r.Method, "path", r.URL.EscapedPath(), "remote", r.RemoteAddr, "status", code, "err", err)
	http.Error(w, err.Error(), code)
}

func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	g.recordPushFailure(r)
	g.pushes.WithLabelValues(r.Method, resultError).Inc()
	g.logger.Error("push failed", "method", r.Method, "path", r.URL.EscapedPath(), "remote", r.RemoteAddr, "err", err)
	code := http.StatusInternalServerError
	if errors.Is(err, ErrNotDurable) {
		code = http.StatusServiceUnavailable // persistence failed (journal.go)
	}
	http.Error(w, err.Error(), code)
}

// promLogger adapts slog to promhttp's error log.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Error("scrape", "err", fmt.Sprint(v...)) }
