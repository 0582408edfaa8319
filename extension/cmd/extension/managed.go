package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus-lambda/prometheus-lambda/dispatcher"
	"github.com/prometheus-lambda/prometheus-lambda/extension"
	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// Lambda Managed Instances (lambda-managed-instances-execution-environment):
// external extensions may register for SHUTDOWN only, invocations run
// concurrently and the environment is never frozen between them. The
// extension then dispatches from a background loop instead of at INVOKEs.

// initTypeManagedInstances is AWS_LAMBDA_INITIALIZATION_TYPE on Lambda
// Managed Instances (also platform.initStart's initializationType).
const initTypeManagedInstances = telemetryapi.InitLambdaManagedInstances

// register registers the extension for INVOKE and SHUTDOWN and reports
// whether it runs on Lambda Managed Instances, where it registered for
// SHUTDOWN only. It registers for SHUTDOWN only at once when
// AWS_LAMBDA_INITIALIZATION_TYPE says lambda-managed-instances, and also
// when the Extensions API refuses INVOKE: any 4xx answer to the first
// registration (the docs name no error type for it) is retried once with
// SHUTDOWN alone. A refused registration leaves the extension
// unregistered, so the second one is allowed.
func register(ctx context.Context, client *extension.Client, name string, getenv func(string) string, logger *slog.Logger) (*extension.RegisterResponse, bool, error) {
	if getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == initTypeManagedInstances {
		reg, err := client.Register(ctx, name, extension.Shutdown)
		return reg, true, err
	}
	reg, err := client.Register(ctx, name, extension.Invoke, extension.Shutdown)
	var apiErr *extension.APIError
	if err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode < 400 || apiErr.StatusCode > 499 {
		return reg, false, err
	}
	logger.Info("registration for INVOKE refused; registering for SHUTDOWN only (Lambda Managed Instances)", "err", err)
	reg, err2 := client.Register(ctx, name, extension.Shutdown)
	if err2 != nil {
		return nil, false, errors.Join(err, fmt.Errorf("retry for SHUTDOWN only: %w", err2))
	}
	return reg, true, nil
}

// schemaVersion is the Telemetry API schema to subscribe with: 2025-01-29
// is required on Lambda Managed Instances; elsewhere the extension keeps
// 2022-12-13, whose event shapes it was built against.
func schemaVersion(managed bool) string {
	if managed {
		return telemetryapi.SchemaVersionManagedInstances
	}
	return telemetryapi.SchemaVersion
}

// runManaged is the event loop on Lambda Managed Instances: d dispatches in
// the background (every cfg.DispatchInterval, or once DISPATCH_MIN_BATCH_SIZE
// events are pending) while the extension waits for SHUTDOWN; then the loop
// stops, the extension waits for telemetry to go quiet (100 ms after the
// last batch, within the budget) and makes the final push.
func runManaged(ctx context.Context, client *extension.Client, d *dispatcher.Dispatcher, metrics *dispatcher.Metrics,
	listener *telemetryapi.Listener, telemetry bool, cfg config, logger *slog.Logger) int {
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		d.Run(loopCtx, cfg.DispatchInterval)
	}()
	stop := func() {
		stopLoop()
		<-loopDone
	}
	for {
		ev, err := client.NextEvent(ctx)
		if err != nil {
			stop()
			logger.Error("next event", "err", err)
			return 1
		}
		if ev.EventType != extension.Shutdown {
			logger.Warn("unexpected event on Lambda Managed Instances; ignored", "type", ev.EventType)
			continue
		}
		stop()
		logger.Debug("shutdown", "reason", ev.ShutdownReason)
		metrics.RecordShutdown(ev.ShutdownReason)
		d.ShutdownQuiet(ctx, ev.Deadline(), telemetry)
		if telemetry {
			shutdownListener(listener, ev.Deadline())
		}
		return 0
	}
}
