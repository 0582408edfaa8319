// Command gateway runs the aggregating Prometheus push gateway: pushes are
// merged by each sample's clearmode label and served on /metrics.
//
// Flags: --web.listen-address (default :9091, repeatable),
// --web.config.file (exporter-toolkit web configuration: TLS, bcrypt basic
// auth), --web.auth-scrape (default true: reads need credentials too; pushes
// always do, health checks never), --basic-auth-file (Gravel Gateway's: one
// bcrypt password hash per line), --web.systemd-socket (Linux),
// --web.enable-admin-api (PUT /api/v1/admin/wipe), --web.enable-lifecycle
// (PUT|POST /-/quit), --push.max-body-bytes, --push.max-samples,
// --push.max-label-name-length, --push.max-label-value-length,
// --push.max-labels-per-series, --storage.max-series,
// --storage.max-series-per-group, --push.ttl (expire series not pushed for
// that long; 0 = never), --log.level, --log.format.
//
// --push.idempotency-retention (default 10m; 0 ignores Idempotency-Key
// headers) and --push.idempotency-max-keys (default 100000) bound the push
// answers remembered for retries.
//
// --persistence.dir makes pushes durable: every change is journaled to a
// write-ahead log there, fsync'd before a push is answered 2xx, and the state
// snapshotted every --persistence.snapshot-interval (default 5m) or after
// --persistence.snapshot-wal-bytes of log (default 256 MiB), and at shutdown.
// Unset, the gateway keeps everything in memory. --persistence.no-fsync
// (unsafe, for benchmarks) skips the fsyncs.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// shutdownTimeout bounds how long in-flight requests may finish after a
// termination signal.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string) error {
	app := kingpin.New("gateway", "Aggregating Prometheus push gateway: merges pushes by each sample's clearmode label.")
	app.HelpFlag.Short('h')
	webConfig := kingpinflag.AddFlags(app, ":9091")
	authScrape := app.Flag("web.auth-scrape", "With basic auth configured, also ask reads (GET /metrics, the status page, /api/v1/metrics and /api/v1/status) for credentials. Pushes always need them; /-/healthy and /-/ready never do. --no-web.auth-scrape opens reads.").
		Default("true").Bool()
	basicAuthFile := app.Flag("basic-auth-file", "Gravel Gateway's basic-auth file: one bcrypt hash of a password per line; accepted with any user name, or as the raw password (Authorization: Basic <password>).").
		Default("").String()
	maxBody := app.Flag("push.max-body-bytes", "Largest push body accepted, after decompression (413 beyond).").
		Default(fmt.Sprint(gateway.DefaultMaxBodyBytes)).Int64()
	maxSamples := app.Flag("push.max-samples", "Most samples in one push (413 beyond; 0: no limit).").
		Default(fmt.Sprint(gateway.DefaultMaxSamples)).Int()
	maxNameLen := app.Flag("push.max-label-name-length", "Longest label name in a push, in bytes (400 beyond; 0: no limit).").
		Default(fmt.Sprint(gateway.DefaultMaxLabelNameLength)).Int()
	maxValueLen := app.Flag("push.max-label-value-length", "Longest label value in a push, grouping labels included, in bytes (400 beyond; 0: no limit).").
		Default(fmt.Sprint(gateway.DefaultMaxLabelValueLength)).Int()
	maxLabels := app.Flag("push.max-labels-per-series", "Most labels of a pushed series, grouping labels included (400 beyond; 0: no limit).").
		Default(fmt.Sprint(gateway.DefaultMaxLabelsPerSeries)).Int()
	maxSeries := app.Flag("storage.max-series", "Most series held in all groups together; a push that would exceed it answers 429 (0: no limit).").
		Default("0").Int()
	maxSeriesPerGroup := app.Flag("storage.max-series-per-group", "Most series held in one group; a push that would exceed it answers 429 (0: no limit).").
		Default("0").Int()
	ttl := app.Flag("push.ttl", "Expire series not pushed for longer than this, and groups left without series (0: never).").
		Default("0s").Duration()
	adminAPI := app.Flag("web.enable-admin-api", "Enable the admin API: PUT /api/v1/admin/wipe deletes every group.").Bool()
	lifecycle := app.Flag("web.enable-lifecycle", "Enable shutdown via HTTP: PUT or POST /-/quit.").Bool()
	idemRetention := app.Flag("push.idempotency-retention", "How long the answer to a push with an Idempotency-Key is remembered, so a retry with that key is not applied again (0: keys ignored).").
		Default(gateway.DefaultIdempotencyRetention.String()).Duration()
	idemMaxKeys := app.Flag("push.idempotency-max-keys", "Most push answers remembered by Idempotency-Key; beyond, the oldest are forgotten early.").
		Default(fmt.Sprint(gateway.DefaultIdempotencyMaxKeys)).Int()
	persistDir := app.Flag("persistence.dir", "Directory for the write-ahead log and snapshots: every push answered 2xx, and its Idempotency-Key, survives a crash and a restart. Empty: in memory only.").
		Default("").String()
	snapInterval := app.Flag("persistence.snapshot-interval", "How often the state is snapshotted (and the log before the previous snapshot deleted), with --persistence.dir.").
		Default(gateway.DefaultSnapshotInterval.String()).Duration()
	snapWALBytes := app.Flag("persistence.snapshot-wal-bytes", "Snapshot sooner once this many bytes of log were written since the last snapshot.").
		Default(fmt.Sprint(gateway.DefaultSnapshotWALBytes)).Int64()
	noFsync := app.Flag("persistence.no-fsync", "UNSAFE, for benchmarks: do not fsync the log; pushes then survive a process crash but not an OS crash or power loss.").
		Bool()
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	if _, err := app.Parse(args); err != nil {
		return err
	}
	logger := promslog.New(logConfig)
	if *ttl < 0 {
		return fmt.Errorf("--push.ttl must not be negative, got %v", *ttl)
	}
	for name, v := range map[string]int{
		"push.max-samples": *maxSamples, "push.max-label-name-length": *maxNameLen,
		"push.max-label-value-length": *maxValueLen, "push.max-labels-per-series": *maxLabels,
		"storage.max-series": *maxSeries, "storage.max-series-per-group": *maxSeriesPerGroup,
	} {
		if v < 0 {
			return fmt.Errorf("--%s must not be negative, got %d", name, v)
		}
	}
	if *maxBody <= 0 {
		return fmt.Errorf("--push.max-body-bytes must be positive, got %d", *maxBody)
	}
	noLimitIfZero := func(v int) int {
		if v == 0 {
			return -1 // gateway.Limits: negative is no limit, 0 the default.
		}
		return v
	}
	limits := gateway.Limits{
		MaxSamples:          noLimitIfZero(*maxSamples),
		MaxLabelNameLength:  noLimitIfZero(*maxNameLen),
		MaxLabelValueLength: noLimitIfZero(*maxValueLen),
		MaxLabelsPerSeries:  noLimitIfZero(*maxLabels),
	}
	idem := gateway.IdempotencyOptions{Retention: *idemRetention, MaxKeys: *idemMaxKeys}
	switch {
	case *idemRetention < 0 || *idemMaxKeys <= 0:
		return fmt.Errorf("--push.idempotency-retention must not be negative and --push.idempotency-max-keys must be positive, got %v and %d", *idemRetention, *idemMaxKeys)
	case *idemRetention == 0:
		idem.Retention = -1 // off
	}

	// Credentials: checked by the gateway per path, not by exporter-toolkit
	// (auth.go), which gets a copy of the web config without them.
	tmp, err := os.MkdirTemp("", "gateway-web-config-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	auth, err := newAuthFiles(*webConfig.WebConfigFile, *basicAuthFile, tmp, logger)
	if err != nil {
		return err
	}
	derived := auth.DerivedWebConfig()
	toolkitFlags := *webConfig
	toolkitFlags.WebConfigFile = &derived

	eff := limits.Effective()
	current, _ := auth.Current()
	authOn := current.Enabled()
	logger.Info("starting gateway",
		"basic_auth", authOn, "auth_scrape", *authScrape,
		"max_body_bytes", *maxBody, "max_samples", eff.MaxSamples,
		"max_label_name_length", eff.MaxLabelNameLength, "max_label_value_length", eff.MaxLabelValueLength,
		"max_labels_per_series", eff.MaxLabelsPerSeries,
		"max_series", *maxSeries, "max_series_per_group", *maxSeriesPerGroup,
		"ttl", *ttl, "idempotency_retention", *idemRetention, "idempotency_max_keys", *idemMaxKeys,
		"persistence_dir", *persistDir, "persistence_no_fsync", *noFsync)

	storeOpts := gateway.StoreOptions{TTL: *ttl, MaxSeries: *maxSeries, MaxSeriesPerGroup: *maxSeriesPerGroup,
		IdempotencyRetention: idem.Retention, IdempotencyMaxKeys: idem.MaxKeys}
	var store *gateway.MemoryStore
	var persist *gateway.Persistence
	if *persistDir == "" {
		store = gateway.NewMemoryStore(storeOpts)
	} else {
		if *snapInterval <= 0 || *snapWALBytes <= 0 {
			return fmt.Errorf("--persistence.snapshot-interval and --persistence.snapshot-wal-bytes must be positive")
		}
		store, persist, err = gateway.OpenPersistentStore(storeOpts, gateway.PersistenceOptions{
			Dir: *persistDir, SnapshotInterval: *snapInterval, SnapshotWALBytes: *snapWALBytes,
			NoSync: *noFsync, Logger: logger,
		})
		if err != nil {
			return err
		}
		defer func() {
			if err := persist.Close(); err != nil {
				logger.Error("closing persistence", "err", err)
			}
		}()
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go store.Run(sweepCtx)
	if persist != nil {
		go persist.Run(sweepCtx)
	}
	quit := make(chan struct{})
	gw, err := gateway.New(store, gateway.Options{
		Logger:          logger,
		MaxBodyBytes:    *maxBody,
		Flags:           flagValues(app),
		EnableAdminAPI:  *adminAPI,
		EnableLifecycle: *lifecycle,
		Quit:            func() { close(quit) }, // Called at most once.
		Idempotency:     idem,
		Limits:          limits,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           gateway.RequireAuth(gw, auth.Current, gateway.AuthOptions{Scrape: *authScrape, Logger: logger}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(srv, &toolkitFlags, logger) }()

	select {
	case err := <-served:
		return err // Never http.ErrServerClosed: Shutdown was not called.
	case <-ctx.Done():
	case <-quit:
		logger.Info("termination requested via /-/quit")
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// flagValues returns every flag's value by name for /api/v1/status, as the
// Pushgateway does (kingpin's own help and completion flags left out).
func flagValues(app *kingpin.Application) map[string]string {
	boilerplate := kingpin.New("", "")
	out := map[string]string{}
	for _, f := range app.Model().Flags {
		if boilerplate.GetFlag(f.Name) == nil {
			out[f.Name] = f.Value.String()
		}
	}
	return out
}
