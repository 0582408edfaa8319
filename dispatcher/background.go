package dispatcher

import (
	"context"
	"time"
)

// Defaults of the background dispatch used where there is no INVOKE event
// (Lambda Managed Instances).
const (
	// DefaultDispatchInterval is DISPATCH_INTERVAL's default: how often Run
	// pushes what is pending.
	DefaultDispatchInterval = 10 * time.Second
	// quietPeriod is how long ShutdownQuiet waits for the Telemetry API to
	// go quiet before the final push.
	quietPeriod = 100 * time.Millisecond
)

// Run dispatches in the background until ctx ends, for execution
// environments that get no INVOKE events (Lambda Managed Instances, where
// extensions may register for SHUTDOWN only and the environment is never
// frozen): it pushes every interval when anything is pending or a batch
// waits to be re-sent, and as soon as MinBatchSize events are pending.
// Each dispatch is bounded by PushTimeout, the platform metrics first and
// the custom metrics with the time left; after a failed one Run does not
// push that Pusher's metrics before its retry backoff has passed, as
// INVOKEs do not.
//
// Run owns the Pushers while it runs: Invoke and Shutdown must not be called
// until it has returned. Cancelling ctx cuts a push under way; its batch
// stays in flight and is re-sent with its Idempotency-Key by the next
// dispatch (at SHUTDOWN, ShutdownQuiet).
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultDispatchInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		reason := "timer"
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-d.kick:
			reason = "batch"
			if !d.full() {
				continue // a dispatch since the kick took them
			}
		}
		due := d.due(1)
		if len(due) == 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
		d.dispatchLanes(pctx, reason, due)
		cancel()
	}
}

// ShutdownQuiet handles a SHUTDOWN event where no INVOKE events were
// received, so no request id is known to wait for (Lambda Managed
// Instances): when awaitQuiet is set it first waits until no telemetry
// batch has arrived for quietPeriod (100 ms), counted from the SHUTDOWN at
// the earliest, at most ReportWait and half the time left, so that reports
// Lambda was still buffering make the final push. Then it pushes as
// Shutdown does and reports whether everything was delivered. Call it once
// Run has returned.
func (d *Dispatcher) ShutdownQuiet(ctx context.Context, deadline time.Time, awaitQuiet bool) bool {
	if awaitQuiet {
		d.awaitQuiet(ctx, time.Now(), min(d.cfg.ReportWait, time.Until(deadline)/2))
	}
	return d.Shutdown(ctx, deadline, false)
}

// awaitQuiet waits until quietPeriod has passed since both since and the
// last telemetry batch, or for at most limit.
func (d *Dispatcher) awaitQuiet(ctx context.Context, since time.Time, limit time.Duration) {
	end := time.Now().Add(limit)
	for {
		last := time.Unix(0, d.lastBatch.Load())
		if last.Before(since) {
			last = since
		}
		quietAt := last.Add(quietPeriod)
		now := time.Now()
		wait := min2(quietAt, end).Sub(now)
		if wait <= 0 {
			if now.Before(quietAt) {
				d.cfg.Logger.Warn("telemetry still arriving at the shutdown push", "waited", limit)
			}
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func min2(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
