// Command extension is the Lambda extension of the layer: it registers with
// the Lambda Extensions API, subscribes to the Telemetry API, turns platform
// events into Prometheus metrics and pushes their deltas to an aggregating
// push gateway (see the dispatcher package and README.md).
//
// It is installed as /opt/extensions/<name>; the name it registers under is
// its file's basename, as the Extensions API requires.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/dispatcher"
	"github.com/prometheus-lambda/prometheus-lambda/extension"
	"github.com/prometheus-lambda/prometheus-lambda/internal/authsecret"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// gcPercent is the extension's GOGC unless the environment sets one. The
// extension shares the function's memory: Go's default (100, with a 4 MiB
// minimum heap goal) would let its heap grow to twice what a live set of a
// few hundred kilobytes needs.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(context.Background(), os.Getenv, filepath.Base(os.Args[0])))
}

// run is the extension's life: init, the event loop, shutdown. It returns
// the exit code. It never fails the function over metrics: a configuration
// or telemetry problem is logged and the extension keeps answering events.
func run(ctx context.Context, getenv func(string) string, name string) int {
	cfg, cfgErr := loadConfig(getenv)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})).With("extension", name)

	// Start reading the secret now, alongside registration; only the first
	// push waits for it.
	var creds *authsecret.Loader
	if cfgErr == nil && cfg.AuthSecret != "" {
		creds = authsecret.NewLoader(ctx, func(ctx context.Context) (authsecret.Credentials, error) {
			return authsecret.Fetch(ctx, cfg.AuthSecret)
		})
	}

	runtimeAPI := getenv("AWS_LAMBDA_RUNTIME_API")
	client := extension.NewClient(runtimeAPI, nil)
	reg, managed, err := register(ctx, client, name, getenv, logger)
	if err != nil {
		logger.Error("register with the Extensions API", "err", err)
		return 1
	}
	if cfgErr != nil {
		// Breaking the user's function over a metrics setting would be worse
		// than running without metrics; the log says what to fix.
		logger.Error("invalid configuration; running without metrics", "err", cfgErr)
		return drain(ctx, client, logger)
	}

	metrics := dispatcher.NewMetrics(dispatcher.Labels{
		FunctionName:    reg.FunctionName,
		FunctionVersion: reg.FunctionVersion,
		Region:          cfg.Region,
	}, cfg.Distribution)
	metrics.SetPrices(cfg.Prices.Apply(metrics.Prices()))
	if mb, err := strconv.ParseFloat(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 64); err == nil {
		metrics.SetMemorySizeMB(mb)
	}
	var credentials dispatcher.CredentialsFunc
	if creds != nil {
		credentials = func(ctx context.Context) (string, string, error) {
			c, err := creds.Get(ctx)
			if err != nil {
				return "", "", err
			}
			return c.Username, c.Password, nil
		}
	}
	// The function's own metrics go in pushes of their own, to the same
	// group: a custom metric the gateway rejects must not take the platform
	// metrics along.
	custom := withLocalPush(getenv, metrics, reg.FunctionName, reg.FunctionVersion, cfg.Region, logger)
	httpClient := &http.Client{}
	d := dispatcher.New(dispatcher.Config{
		Metrics:      metrics,
		Pusher:       dispatcher.NewPusher(cfg.Gateway, reg.FunctionName, metrics.Gatherer(), httpClient, credentials),
		CustomPusher: dispatcher.NewPusher(cfg.Gateway, reg.FunctionName, custom, httpClient, credentials),
		MinBatchSize: cfg.MinBatchSize,
		PushTimeout:  cfg.PushTimeout,
		RetryBackoff: cfg.RetryBackoff,
		Logger:       logger,
	})

	listener := telemetryapi.NewListener(cfg.ListenerAddress, d.HandleEvents, logger)
	telemetry := subscribe(ctx, listener, runtimeAPI, client.ExtensionID(), schemaVersion(managed), logger)
	logger.Debug("ready", "function", reg.FunctionName, "version", reg.FunctionVersion, "telemetry", telemetry, "managedInstances", managed)
	if managed {
		return runManaged(ctx, client, d, metrics, listener, telemetry, cfg, logger)
	}

	for {
		ev, err := client.NextEvent(ctx)
		if err != nil {
			logger.Error("next event", "err", err)
			return 1
		}
		switch ev.EventType {
		case extension.Invoke:
			d.Invoke(ctx, ev.RequestID)
		case extension.Shutdown:
			logger.Debug("shutdown", "reason", ev.ShutdownReason)
			metrics.RecordShutdown(ev.ShutdownReason)
			d.Shutdown(ctx, ev.Deadline(), telemetry)
			if telemetry {
				shutdownListener(listener, ev.Deadline())
			}
			return 0
		}
	}
}

// subscribe starts the listener and subscribes it to platform and function
// telemetry. It reports whether telemetry will flow; without it the
// extension still answers events so the function runs unharmed.
func subscribe(ctx context.Context, l *telemetryapi.Listener, runtimeAPI, extensionID, schemaVersion string, logger *slog.Logger) bool {
	if err := l.Start(); err != nil {
		logger.Error("start the Telemetry API listener; running without telemetry", "err", err)
		return false
	}
	err := telemetryapi.Subscribe(ctx, nil, runtimeAPI, extensionID, telemetryapi.Subscription{
		SchemaVersion: schemaVersion,
		Types:         []string{telemetryapi.TypesPlatform, telemetryapi.TypesFunction},
		Buffering:     telemetryapi.DefaultBuffering,
		Destination:   telemetryapi.Destination{Protocol: "HTTP", URI: l.URI()},
	})
	if err == nil {
		return true
	}
	if errors.Is(err, telemetryapi.ErrNotSupported) {
		logger.Warn("the Telemetry API is not supported here (a local runtime?); running without platform metrics", "err", err)
	} else {
		logger.Error("subscribe to the Telemetry API; running without telemetry", "err", err)
	}
	shutdownListener(l, time.Now().Add(time.Second))
	return false
}

func shutdownListener(l *telemetryapi.Listener, deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_ = l.Shutdown(ctx)
}

// drain answers events without doing anything, until SHUTDOWN.
func drain(ctx context.Context, client *extension.Client, logger *slog.Logger) int {
	for {
		ev, err := client.NextEvent(ctx)
		if err != nil {
			logger.Error("next event", "err", err)
			return 1
		}
		if ev.EventType == extension.Shutdown {
			return 0
		}
	}
}
