// Package dispatcher turns Lambda Telemetry API events into Prometheus
// metrics, batches them, and pushes their deltas to an aggregating gateway.
//
// Each execution environment keeps cumulative metrics (Metrics) and pushes
// only what changed since its last acknowledged push (Pusher), labelled
// clearmode="aggregate" (gauges: "replace"), under the grouping key
// job=<function name>; the gateway sums the increments of every
// environment of a function into one group. Every push carries an
// Idempotency-Key, and a batch that failed is re-sent as it was, with its
// key, until the gateway acknowledges it (see Pusher): no increment is lost
// or counted twice while the gateway comes back before the environment
// shuts down.
//
// The function's own metrics (EMF, local push) travel in pushes of their
// own, by a second Pusher (Config.CustomPusher) to the same grouping key:
// the gateway applies a push whole or not at all, and rejects one carrying
// a name another job stores with another type, so a custom metric it
// refuses must not take the platform metrics along. Each Pusher has its
// own batch in flight, its own pending count and its own retry backoff; a
// dispatch drives the platform Pusher first, then the custom one with the
// time left.
//
// Timing follows the Lambda execution environment lifecycle
// (docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):
// the environment freezes once every extension calls /event/next, so a
// dispatch happens at an INVOKE, before that call, when enough events have
// accumulated, and at SHUTDOWN always, after a short wait for the last
// invocation's platform.report. A dispatch retries failed pushes with
// exponential backoff within its budget (PushTimeout at an INVOKE, the
// SHUTDOWN deadline less a margin at SHUTDOWN); after a failed dispatch
// INVOKEs do not push that Pusher's metrics until a backoff (RetryBackoff,
// doubling per failed dispatch up to MaxRetryBackoff) has passed, so a dead
// gateway neither delays every invocation nor gets hammered. SHUTDOWN
// always tries.
package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
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
	// DefaultPushTimeout bounds a dispatch at an INVOKE, retries included:
	// it delays the extension's /event/next and may be billed.
	DefaultPushTimeout = time.Second
	// DefaultReportWait bounds the wait at SHUTDOWN for the last
	// platform.report, which Lambda usually sends within milliseconds.
	DefaultReportWait = 500 * time.Millisecond
	// DefaultRetryBackoff is how long INVOKEs skip pushing after a failed
	// dispatch; it doubles with each further failed dispatch.
	DefaultRetryBackoff = time.Second
	// MaxRetryBackoff caps the doubling of RetryBackoff (unless RetryBackoff
	// itself is longer).
	MaxRetryBackoff = time.Minute
	// shutdownMargin is left after the final push to exit before Lambda's
	// SIGKILL at the SHUTDOWN deadline.
	shutdownMargin = 100 * time.Millisecond
	// awaitedInvocations is how many of the last INVOKEs' platform.report
	// SHUTDOWN waits for: the last one's comes only then, and an earlier
	// one's may come late when Lambda redelivers or reorders batches.
	awaitedInvocations = 8
	// attemptBackoff is the wait after a dispatch's first failed attempt,
	// doubled after each further one (with jitter), within the dispatch.
	attemptBackoff = 50 * time.Millisecond
)

// Config configures a Dispatcher.
type Config struct {
	Metrics *Metrics
	// Pusher pushes the platform metrics (Metrics.Gatherer); required.
	Pusher *Pusher
	// CustomPusher pushes the function's own metrics (Metrics.CustomGatherer,
	// combined with the local push endpoint's: CombineGatherers) in pushes
	// of their own; nil means none are pushed.
	CustomPusher *Pusher
	MinBatchSize int           // events counted before an INVOKE dispatches; ≤ 0 means DefaultMinBatchSize
	PushTimeout  time.Duration // bound of a dispatch at an INVOKE; ≤ 0 means DefaultPushTimeout
	ReportWait   time.Duration // ≤ 0 means DefaultReportWait
	RetryBackoff time.Duration // INVOKEs skip pushing this long after a failed dispatch, doubling; ≤ 0 means DefaultRetryBackoff
	Logger       *slog.Logger  // nil means slog.Default()
}

// Dispatcher decides when to push. HandleEvents may be called concurrently
// with the others; Invoke and Shutdown are called from the extension's event
// loop, one at a time.
type Dispatcher struct {
	cfg       Config
	lanes     []*lane       // the platform Pusher's, then the custom one's if any
	lastBatch atomic.Int64  // Unix nanoseconds of the last HandleEvents; see background.go
	kick      chan struct{} // signalled when a lane's pending reaches MinBatchSize; read by Run
	recent    []string      // requestIds of the last awaitedInvocations INVOKEs, oldest first
}

// lane is a Pusher with its own dispatch state: a failure or a dropped
// batch of one lane never delays or counts against the other.
type lane struct {
	name      string       // "platform" or "custom", in logs
	pusher    *Pusher      // owned by the event loop (or Run)
	pending   atomic.Int64 // events counted since the lane's last successful dispatch
	failures  int          // dispatches failed in a row
	retryAt   time.Time    // INVOKEs (and Run) do not push before
	warnedKey string       // in-flight batch already warned about as older than the gateway's retention
}

// due reports whether the lane should push now: at least threshold events
// are pending or a batch waits to be re-sent, and it is not backing off.
func (l *lane) due(threshold int64, now time.Time) bool {
	_, _, _, inflight := l.pusher.InFlight()
	if l.pending.Load() < threshold && !inflight {
		return false
	}
	return !now.Before(l.retryAt)
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
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dispatcher{cfg: cfg, kick: make(chan struct{}, 1)}
	d.lanes = append(d.lanes, &lane{name: "platform", pusher: cfg.Pusher})
	if cfg.CustomPusher != nil {
		d.lanes = append(d.lanes, &lane{name: "custom", pusher: cfg.CustomPusher})
	}
	return d
}

// HandleEvents records a batch from the Telemetry API listener.
func (d *Dispatcher) HandleEvents(_ context.Context, events []telemetryapi.Event) {
	n := int64(d.cfg.Metrics.Record(events))
	full := false
	for _, l := range d.lanes {
		full = l.pending.Add(n) >= int64(d.cfg.MinBatchSize) || full
	}
	d.lastBatch.Store(time.Now().UnixNano())
	if full {
		select { // wakes Run (Lambda Managed Instances); never blocks
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// Pending reports the events counted since the last successful push of the
// platform metrics.
func (d *Dispatcher) Pending() int64 { return d.lanes[0].pending.Load() }

// full reports whether a lane has MinBatchSize events pending.
func (d *Dispatcher) full() bool {
	for _, l := range d.lanes {
		if l.pending.Load() >= int64(d.cfg.MinBatchSize) {
			return true
		}
	}
	return false
}

// Invoke handles an INVOKE event: it pushes, per Pusher, when at least
// MinBatchSize events are pending or a batch waits to be re-sent, unless
// that Pusher is backing off after a failed dispatch; the dispatch, retries
// included, takes at most PushTimeout, the platform metrics first. A failed
// push is logged and its batch waits for the next dispatch; it never fails
// the invocation.
func (d *Dispatcher) Invoke(ctx context.Context, requestID string) {
	if len(d.recent) == awaitedInvocations {
		d.recent = append(d.recent[:0], d.recent[1:]...)
	}
	d.recent = append(d.recent, requestID)
	due := d.due(int64(d.cfg.MinBatchSize))
	if len(due) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
	defer cancel()
	d.dispatchLanes(ctx, "invoke", due)
}

// due returns the lanes that should push now (see lane.due), in order.
func (d *Dispatcher) due(threshold int64) []*lane {
	now := time.Now()
	var due []*lane
	for _, l := range d.lanes {
		if l.due(threshold, now) {
			due = append(due, l)
		}
	}
	return due
}

// dispatchLanes dispatches lanes one after the other within ctx, each with
// the time the earlier ones left, and returns the names of those not
// delivered whole. A lane the earlier ones left no time is not tried: its
// state stays as it was, with no backoff.
func (d *Dispatcher) dispatchLanes(ctx context.Context, reason string, lanes []*lane) (failed []string) {
	for _, l := range lanes {
		if ctx.Err() != nil {
			d.cfg.Logger.Debug("no time left to push", "metrics", l.name, "reason", reason)
			failed = append(failed, l.name)
			continue
		}
		if !d.dispatch(ctx, reason, l) {
			failed = append(failed, l.name)
		}
	}
	return failed
}

// Shutdown handles a SHUTDOWN event: when awaitReport is set it waits for
// the platform.report of the last invocations (the last one's comes only
// now; earlier ones are there unless Lambda reordered batches), at most
// ReportWait and half the time left, then pushes everything pending — the
// batch in flight first, the platform metrics with the whole budget, then
// the custom metrics with what is left — retrying until shutdownMargin
// before the deadline, also when the gateway hangs. It returns whether
// everything was delivered; what was not is lost with the environment.
func (d *Dispatcher) Shutdown(ctx context.Context, deadline time.Time, awaitReport bool) bool {
	if awaitReport && len(d.recent) > 0 {
		wait := min(d.cfg.ReportWait, time.Until(deadline)/2)
		timer := time.NewTimer(wait)
	await:
		for i, id := range d.recent {
			select {
			case <-d.cfg.Metrics.ReportArrived(id):
			case <-timer.C:
				d.cfg.Logger.Warn("platform.report of the last invocations did not arrive before shutdown", "requestIds", d.recent[i:], "waited", wait)
				break await
			case <-ctx.Done():
				break await
			}
		}
		timer.Stop()
	}
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(-shutdownMargin))
	defer cancel()
	failed := d.dispatchLanes(ctx, "shutdown", d.lanes)
	if len(failed) == 0 {
		return true
	}
	d.cfg.Logger.Error("final push failed before the shutdown deadline; the increments not acknowledged are lost with this environment",
		"metrics", failed, "pending", d.Pending())
	return false
}

// dispatch pushes l's metrics until everything pending is acknowledged,
// two batches are dropped, or ctx ends, waiting between attempts with
// exponential backoff. It reports whether everything was acknowledged. A
// failure sets l's backoff only.
func (d *Dispatcher) dispatch(ctx context.Context, reason string, l *lane) bool {
	n := l.pending.Load()
	start := time.Now()
	wait := attemptBackoff
	drops := 0
	var err error
	for attempt := 1; ; attempt++ {
		var pushed bool
		pushed, err = l.pusher.Push(ctx)
		if err == nil {
			l.pending.Add(-n)
			l.failures, l.retryAt = 0, time.Time{}
			if pushed {
				d.cfg.Logger.Debug("pushed", "metrics", l.name, "reason", reason, "events", n, "attempts", attempt, "took", time.Since(start))
			}
			return drops == 0
		}
		var dropped *ErrBatchDropped
		if errors.As(err, &dropped) {
			// Retrying it cannot help. The increments since go in a batch
			// of their own, now; if the gateway rejects that one too, with
			// the next dispatch.
			d.cfg.Logger.Error("gateway rejected a push; its increments are dropped", "metrics", l.name, "reason", reason,
				"status", dropped.Status, "dropped_batches", l.pusher.Stats().Dropped, "err", err)
			if drops++; drops < 2 {
				continue
			}
			l.pending.Add(-n)
			return false
		}
		if ctx.Err() != nil || !retryNow(err) {
			break
		}
		sleep := wait/2 + rand.N(wait) // [wait/2, 3·wait/2)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < sleep {
			break // no time left for another attempt
		}
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			break
		}
		wait *= 2
	}
	l.failures++
	backoff := min(d.cfg.RetryBackoff<<min(l.failures-1, 16), max(d.cfg.RetryBackoff, MaxRetryBackoff))
	backoff = backoff*3/4 + rand.N(backoff/2+1) // ±25%: environments of a function do not retry in step
	l.retryAt = time.Now().Add(backoff)
	key, since, attempts, inflight := l.pusher.InFlight()
	attrs := []any{"metrics", l.name, "reason", reason, "err", err, "failed_dispatches", l.failures}
	if inflight {
		attrs = append(attrs, "batch", key, "batch_attempts", attempts)
	}
	if reason != "shutdown" {
		attrs = append(attrs, "next_invoke_push_after", backoff.Round(time.Millisecond))
	}
	d.cfg.Logger.Error("push failed; the batch is kept and re-sent with its Idempotency-Key", attrs...)
	if inflight && since > GatewayIdempotencyRetention && l.warnedKey != key {
		l.warnedKey = key
		d.cfg.Logger.Warn("a batch that may have reached the gateway is still unacknowledged after the gateway's default idempotency retention; "+
			"if it was applied and the gateway forgot its key, re-sending it counts it twice", "metrics", l.name, "batch", key, "since", since.Round(time.Second))
	}
	return false
}

// retryNow reports whether a failed push is worth another attempt within
// the same dispatch. Credentials failures wait for the next dispatch (the
// loader retries then).
func retryNow(err error) bool {
	var ce *credentialsError
	return !errors.As(err, &ce)
}
