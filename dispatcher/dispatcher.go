// Package dispatcher turns Lambda Telemetry API events into Prometheus
// metrics, batches them, and pushes their deltas to an aggregating gateway.
//
// Each execution environment keeps cumulative metrics (Metrics) and pushes
// only what changed since its last acknowledged push (Pusher), labelled
// clearmode="aggregate" (gauges: "replace"), under the grouping key
// job=<function name>; the gateway sums the increments of every
// environment of a function into one group.
//
// Timing follows the Lambda execution environment lifecycle
// (docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):
// the environment freezes once every extension calls /event/next, so a
// dispatch happens at an INVOKE, before that call, when enough events have
// accumulated, and at SHUTDOWN always, after a short wait for the last
// invocation's platform.report.
package dispatcher

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// Defaults of Config.
const (
	// DefaultMinBatchSize is DISPATCH_MIN_BATCH_SIZE's default: an invocation
	// yields three to five platform events, so about every other invocation
	// pushes — fresh data without a push per invocation.
	DefaultMinBatchSize = 10
	// DefaultPushTimeout bounds a push at an INVOKE, which delays the
	// extension's /event/next and may be billed.
	DefaultPushTimeout = time.Second
	// DefaultReportWait bounds the wait at SHUTDOWN for the last
	// platform.report, which Lambda usually sends within milliseconds.
	DefaultReportWait = 500 * time.Millisecond
	// shutdownMargin is left after the final push to exit before Lambda's
	// SIGKILL at the SHUTDOWN deadline.
	shutdownMargin = 100 * time.Millisecond
)

// Config configures a Dispatcher.
type Config struct {
	Metrics      *Metrics
	Pusher       *Pusher
	MinBatchSize int           // events counted before an INVOKE dispatches; ≤ 0 means DefaultMinBatchSize
	PushTimeout  time.Duration // ≤ 0 means DefaultPushTimeout
	ReportWait   time.Duration // ≤ 0 means DefaultReportWait
	Logger       *slog.Logger  // nil means slog.Default()
}

// Dispatcher decides when to push. HandleEvents may be called concurrently
// with the others; Invoke and Shutdown are called from the extension's event
// loop, one at a time.
type Dispatcher struct {
	cfg         Config
	pending     atomic.Int64 // events counted since the last successful push
	lastRequest string       // requestId of the last INVOKE
}

// New returns a Dispatcher; cfg.Metrics and cfg.Pusher are required.
func New(cfg Config) *Dispatcher {
	if cfg.MinBatchSize <= 0 {
		cfg.MinBatchSize = DefaultMinBatchSize
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = DefaultPushTimeout
	}
	if cfg.ReportWait <= 0 {
		cfg.ReportWait = DefaultReportWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Dispatcher{cfg: cfg}
}

// HandleEvents records a batch from the Telemetry API listener.
func (d *Dispatcher) HandleEvents(_ context.Context, events []telemetryapi.Event) {
	d.pending.Add(int64(d.cfg.Metrics.Record(events)))
}

// Pending reports the events counted since the last successful push.
func (d *Dispatcher) Pending() int64 { return d.pending.Load() }

// Invoke handles an INVOKE event: it pushes when at least MinBatchSize
// events are pending, bounded by PushTimeout. A failed push is logged and
// its increments wait for the next dispatch; it never fails the invocation.
func (d *Dispatcher) Invoke(ctx context.Context, requestID string) {
	d.lastRequest = requestID
	if d.pending.Load() < int64(d.cfg.MinBatchSize) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
	defer cancel()
	d.dispatch(ctx, "invoke")
}

// Shutdown handles a SHUTDOWN event: when awaitReport is set it waits for
// the last invocation's platform.report (at most ReportWait and half the
// time left), then pushes everything pending, finishing shutdownMargin
// before the deadline. It returns whether everything was delivered.
func (d *Dispatcher) Shutdown(ctx context.Context, deadline time.Time, awaitReport bool) bool {
	if awaitReport && d.lastRequest != "" {
		wait := min(d.cfg.ReportWait, time.Until(deadline)/2)
		timer := time.NewTimer(wait)
		select {
		case <-d.cfg.Metrics.ReportArrived(d.lastRequest):
		case <-timer.C:
			d.cfg.Logger.Warn("last platform.report did not arrive before shutdown", "requestId", d.lastRequest, "waited", wait)
		case <-ctx.Done():
		}
		timer.Stop()
	}
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(-shutdownMargin))
	defer cancel()
	return d.dispatch(ctx, "shutdown")
}

func (d *Dispatcher) dispatch(ctx context.Context, reason string) bool {
	n := d.pending.Load()
	start := time.Now()
	pushed, err := d.cfg.Pusher.Push(ctx)
	if err != nil {
		d.cfg.Logger.Error("push failed; increments kept for the next dispatch", "reason", reason, "err", err)
		return false
	}
	d.pending.Add(-n)
	if pushed {
		d.cfg.Logger.Debug("pushed", "reason", reason, "events", n, "took", time.Since(start))
	}
	return true
}
