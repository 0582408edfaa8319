// Command gateway runs the aggregating Prometheus push gateway: pushes are
// merged by each sample's clearmode label and served on /metrics.
//
// Flags: --web.listen-address (default :9091, repeatable),
// --web.config.file (exporter-toolkit web configuration: TLS, bcrypt basic
// auth), --web.systemd-socket (Linux), --web.enable-admin-api (PUT
// /api/v1/admin/wipe), --web.enable-lifecycle (PUT|POST /-/quit),
// --push.max-body-bytes, --push.ttl (expire series not pushed for that long;
// 0 = never), --log.level, --log.format.
//
// --push.idempotency-retention (default 10m; 0 ignores Idempotency-Key
// headers) and --push.idempotency-max-keys (default 100000) bound the push
// answers remembered for retries.
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
	maxBody := app.Flag("push.max-body-bytes", "Largest push body accepted, after decompression.").
		Default(fmt.Sprint(gateway.DefaultMaxBodyBytes)).Int64()
	ttl := app.Flag("push.ttl", "Expire series not pushed for longer than this, and groups left without series (0: never).").
		Default("0s").Duration()
	adminAPI := app.Flag("web.enable-admin-api", "Enable the admin API: PUT /api/v1/admin/wipe deletes every group.").Bool()
	lifecycle := app.Flag("web.enable-lifecycle", "Enable shutdown via HTTP: PUT or POST /-/quit.").Bool()
	idemRetention := app.Flag("push.idempotency-retention", "How long the answer to a push with an Idempotency-Key is remembered, so a retry with that key is not applied again (0: keys ignored).").
		Default(gateway.DefaultIdempotencyRetention.String()).Duration()
	idemMaxKeys := app.Flag("push.idempotency-max-keys", "Most push answers remembered by Idempotency-Key; beyond, the oldest are forgotten early.").
		Default(fmt.Sprint(gateway.DefaultIdempotencyMaxKeys)).Int()
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	if _, err := app.Parse(args); err != nil {
		return err
	}
	logger := promslog.New(logConfig)
	if *ttl < 0 {
		return fmt.Errorf("--push.ttl must not be negative, got %v", *ttl)
	}
	idem := gateway.IdempotencyOptions{Retention: *idemRetention, MaxKeys: *idemMaxKeys}
	switch {
	case *idemRetention < 0 || *idemMaxKeys <= 0:
		return fmt.Errorf("--push.idempotency-retention must not be negative and --push.idempotency-max-keys must be positive, got %v and %d", *idemRetention, *idemMaxKeys)
	case *idemRetention == 0:
		idem.Retention = -1 // off
	}

	store := gateway.NewMemoryStore(gateway.StoreOptions{TTL: *ttl})
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go store.Run(sweepCtx)
	quit := make(chan struct{})
	gw, err := gateway.New(store, gateway.Options{
		Logger:          logger,
		MaxBodyBytes:    *maxBody,
		Flags:           flagValues(app),
		EnableAdminAPI:  *adminAPI,
		EnableLifecycle: *lifecycle,
		Quit:            func() { close(quit) }, // Called at most once.
		Idempotency:     idem,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(srv, webConfig, logger) }()

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
