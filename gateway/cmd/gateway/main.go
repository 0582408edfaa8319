// Command gateway runs the aggregating Prometheus push gateway: pushes are
// merged by each sample's clearmode label and served on /metrics.
//
// Flags: --web.listen-address (default :9091, repeatable),
// --web.config.file (exporter-toolkit web configuration: TLS, bcrypt basic
// auth), --web.systemd-socket (Linux), --push.max-body-bytes, --log.level,
// --log.format.
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
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	if _, err := app.Parse(args); err != nil {
		return err
	}
	logger := promslog.New(logConfig)

	gw, err := gateway.New(gateway.NewMemoryStore(gateway.StoreOptions{}), gateway.Options{Logger: logger, MaxBodyBytes: *maxBody})
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
