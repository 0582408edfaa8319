package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// counterPusher is a Pusher of one counter vector with a few series.
func counterPusher(t *testing.T, url string, client *http.Client) (*Pusher, *prometheus.CounterVec) {
	if client == nil {
		client = http.DefaultClient
	}
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "things_total", Help: "Things."}, []string{"kind"})
	reg.MustRegister(c)
	return NewPusher(url, "fn", promGatherer(reg), client, nil), c
}

func TestPusherRetriesTheSameBatchWithItsKey(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	p, c := counterPusher(t, srv.URL, nil)
	ctx := context.Background()

	c.WithLabelValues("a").Add(2)
	gw.setFail(true)
	for range 3 {
		if _, err := p.Push(ctx); err == nil {
			t.Fatal("push to a failing gateway reported success")
		}
		c.WithLabelValues("a").Inc() // increments keep coming meanwhile
	}
	gw.setFail(false)
	if _, err := p.Push(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := gw.requestLog()
	if len(reqs) != 5 {
		t.Fatalf("requests = %d, want 3 failed attempts, the batch re-sent, then the new increments", len(reqs))
	}
	for i := 1; i < 4; i++ {
		if reqs[i].key != reqs[0].key || reqs[i].body != reqs[0].body {
			t.Fatalf("attempt %d sent key %q and %d bytes, want the first attempt's key %q and bytes", i+1, reqs[i].key, len(reqs[i].body), reqs[0].key)
		}
	}
	if reqs[4].key == reqs[0].key || reqs[4].key == "" || len(reqs[0].key) < 26 {
		t.Fatalf("keys %q then %q: want a fresh random key per batch", reqs[0].key, reqs[4].key)
	}
	if got := gw.sum("things_total"); got != 5 {
		t.Fatalf("the gateway summed %v, want 5", got)
	}
	if _, _, _, ok := p.InFlight(); ok {
		t.Fatal("a batch is still in flight after its acknowledgement")
	}
	if s := p.Stats(); s.Attempts != 5 || s.Failures != 3 || s.Acknowledged != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// The first attempt is applied but its answer lost; the retry with the same
// key is replayed by the gateway, not applied again.
func TestPusherLostAnswerIsNotCountedTwice(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	// No keep-alive: net/http would itself replay the request on a reused
	// connection; here the Pusher's own retry is under test.
	p, c := counterPusher(t, srv.URL, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}})
	ctx := context.Background()

	c.WithLabelValues("a").Add(3)
	gw.set(func(g *recordingGateway) { g.lose = true })
	if _, err := p.Push(ctx); err == nil {
		t.Fatal("push without an answer reported success")
	}
	gw.set(func(g *recordingGateway) { g.lose = false })
	c.WithLabelValues("a").Add(4)
	if _, err := p.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gw.sum("things_total"); got != 7 {
		t.Fatalf("the gateway summed %v, want 7: the lost answer's batch counted %v times", got, (got-4)/3)
	}
	if s := p.Stats(); s.Replayed != 1 {
		t.Fatalf("stats %+v, want one replayed acknowledgement", s)
	}
}

func TestPusherDropsARejectedBatch(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			gw := &recordingGateway{}
			srv := httptest.NewServer(gw)
			defer srv.Close()
			p, c := counterPusher(t, srv.URL, nil)
			ctx := context.Background()

			c.WithLabelValues("a").Add(2)
			gw.set(func(g *recordingGateway) { g.fail, g.status = true, status })
			_, err := p.Push(ctx)
			var dropped *ErrBatchDropped
			if !errors.As(err, &dropped) || dropped.Status != status {
				t.Fatalf("err = %v, want an ErrBatchDropped with status %d", err, status)
			}
			if _, _, _, ok := p.InFlight(); ok {
				t.Fatal("a rejected batch is still in flight")
			}
			gw.setFail(false)
			c.WithLabelValues("a").Add(5)
			if _, err := p.Push(ctx); err != nil {
				t.Fatal(err)
			}
			reqs := gw.requestLog()
			if len(reqs) != 2 || reqs[1].key == reqs[0].key {
				t.Fatalf("requests %v: want the rejected batch once, then a new batch with a new key", reqs)
			}
			if got := gw.sum("things_total"); got != 5 {
				t.Fatalf("the gateway summed %v, want only the 5 after the rejected batch", got)
			}
			if s := p.Stats(); s.Dropped != 1 {
				t.Fatalf("stats %+v, want one dropped batch", s)
			}
		})
	}
}

func TestPusherKeepsABatchOnAuthAndTransientErrors(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			gw := &recordingGateway{}
			srv := httptest.NewServer(gw)
			defer srv.Close()
			p, c := counterPusher(t, srv.URL, nil)
			c.WithLabelValues("a").Add(2)
			gw.set(func(g *recordingGateway) { g.fail, g.status = true, status })
			_, err := p.Push(context.Background())
			var dropped *ErrBatchDropped
			if err == nil || errors.As(err, &dropped) {
				t.Fatalf("err = %v, want a failure that keeps the batch", err)
			}
			gw.setFail(false)
			if _, err := p.Push(context.Background()); err != nil {
				t.Fatal(err)
			}
			reqs := gw.requestLog()
			if len(reqs) != 2 || reqs[1].key != reqs[0].key || reqs[1].body != reqs[0].body {
				t.Fatalf("requests %v: want the same batch twice", reqs)
			}
			if got := gw.sum("things_total"); got != 2 {
				t.Fatalf("the gateway summed %v, want 2", got)
			}
		})
	}
}

// dialFailures fails the first n requests as a refused connection would,
// before anything is sent.
type dialFailures struct {
	n     atomic.Int32
	inner *http.Client
}

func (d *dialFailures) Do(r *http.Request) (*http.Response, error) {
	if d.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return d.inner.Do(r)
}

// A batch that never reached the gateway is rebuilt with everything since:
// one push after the outage, not two.
func TestPusherRebuildsABatchThatWasNeverSent(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	doer := &dialFailures{inner: http.DefaultClient}
	doer.n.Store(3)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "things_total", Help: "Things."})
	reg.MustRegister(c)
	p := NewPusher(srv.URL, "fn", promGatherer(reg), doer, nil)
	for range 3 {
		c.Inc()
		if _, err := p.Push(context.Background()); err == nil {
			t.Fatal("push with a refused connection reported success")
		}
	}
	c.Inc()
	if _, err := p.Push(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gw.count() != 1 || gw.sum("things_total") != 4 {
		t.Fatalf("pushes = %d summing %v, want one push of 4", gw.count(), gw.sum("things_total"))
	}
	if s := p.Stats(); s.Rebuilt != 3 {
		t.Fatalf("stats %+v, want 3 rebuilt batches", s)
	}
}

// Memory stays bounded however many dispatches fail: one batch in flight,
// at most one sample per series, and the acknowledged snapshot.
func TestPusherStateIsBoundedDuringAnOutage(t *testing.T) {
	for name, unreachable := range map[string]bool{"failing gateway": false, "refused connections": true} {
		t.Run(name, func(t *testing.T) {
			gw := &recordingGateway{}
			srv := httptest.NewServer(gw)
			defer srv.Close()
			doer := &dialFailures{inner: http.DefaultClient}
			if unreachable {
				doer.n.Store(1000)
			} else {
				gw.setFail(true)
			}
			reg := prometheus.NewRegistry()
			c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "things_total", Help: "Things."}, []string{"kind"})
			reg.MustRegister(c)
			p := NewPusher(srv.URL, "fn", promGatherer(reg), doer, nil)
			kinds := []string{"a", "b", "c"}
			var firstKey string
			for i := range 1000 {
				c.WithLabelValues(kinds[i%len(kinds)]).Inc()
				if _, err := p.Push(context.Background()); err == nil {
					t.Fatal("push during the outage reported success")
				}
				key, _, _, ok := p.InFlight()
				if !ok {
					t.Fatal("no batch in flight after a failure")
				}
				if i == 0 {
					firstKey = key
				}
				if !unreachable && key != firstKey {
					t.Fatalf("push %d: in-flight key changed from %q to %q while the batch may have been applied", i, firstKey, key)
				}
				samples := 0
				for _, mf := range fromWire(p.inflight.body) {
					samples += len(mf.Metrics)
				}
				if samples > len(kinds) || len(p.inflight.next) > len(kinds) || len(p.acked) > len(kinds) {
					t.Fatalf("push %d: %d samples in flight, snapshots of %d and %d series; want at most %d each",
						i, samples, len(p.inflight.next), len(p.acked), len(kinds))
				}
			}
			gw.setFail(false)
			doer.n.Store(0)
			if _, err := p.Push(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := gw.sum("things_total"); got != 1000 {
				t.Fatalf("after the outage the gateway summed %v, want exactly 1000", got)
			}
		})
	}
}

func TestDispatcherRetriesWithinADispatch(t *testing.T) {
	gw := &recordingGateway{}
	ff := &failFirst{next: gw}
	ff.n.Store(2)
	srv := httptest.NewServer(ff)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), MinBatchSize: 1, PushTimeout: 5 * time.Second})
	d.HandleEvents(context.Background(), []telemetryapi.Event{reportEvent("r1", "success")})
	d.Invoke(context.Background(), "r2")
	if gw.count() != 1 || d.Pending() != 0 {
		t.Fatalf("pushes = %d, pending = %d; want the third attempt of the dispatch to deliver", gw.count(), d.Pending())
	}
	if reqs := gw.requestLog(); len(reqs) != 1 {
		t.Fatalf("gateway saw %d requests", len(reqs))
	}
}

// failFirst answers the first n requests 503, then passes them on.
type failFirst struct {
	n    atomic.Int32
	next http.Handler
}

func (f *failFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.n.Add(-1) >= 0 {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

func TestDispatcherInvokeIsBoundedByPushTimeoutAndBacksOff(t *testing.T) {
	gw := &recordingGateway{hang: make(chan struct{})}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer close(gw.hang)
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), MinBatchSize: 1,
		PushTimeout: 200 * time.Millisecond, RetryBackoff: 300 * time.Millisecond})
	ctx := context.Background()
	d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("r1", "success")})

	start := time.Now()
	d.Invoke(ctx, "r2")
	if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("an INVOKE with a hanging gateway took %s, want about PushTimeout (200ms)", took)
	}
	attempts := d.cfg.Pusher.Stats().Attempts
	d.Invoke(ctx, "r3")
	if d.cfg.Pusher.Stats().Attempts != attempts {
		t.Fatal("the INVOKE right after a failed dispatch tried again")
	}
	time.Sleep(400 * time.Millisecond) // past the backoff (300ms ± 25%)
	d.Invoke(ctx, "r4")
	if d.cfg.Pusher.Stats().Attempts == attempts {
		t.Fatal("no retry once the backoff had passed")
	}
}

func TestDispatcherShutdownBeatsAHangingGateway(t *testing.T) {
	gw := &recordingGateway{hang: make(chan struct{})}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer close(gw.hang)
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), RetryBackoff: time.Hour})
	ctx := context.Background()
	d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("r1", "success")})
	d.Invoke(ctx, "r1")
	// A failed dispatch sets a long backoff; SHUTDOWN tries regardless.
	d.lanes[0].failures, d.lanes[0].retryAt = 3, time.Now().Add(time.Hour)
	deadline := time.Now().Add(600 * time.Millisecond)
	if d.Shutdown(ctx, deadline, true) {
		t.Fatal("shutdown reported success against a hanging gateway")
	}
	if late := time.Since(deadline); late >= 0 {
		t.Fatalf("Shutdown returned %s after the deadline", late)
	}
	if d.cfg.Pusher.Stats().Attempts == 0 {
		t.Fatal("shutdown did not try to push")
	}
}

// A batch reordered past SHUTDOWN carries an earlier invocation's report:
// the final push waits for it too.
func TestDispatcherShutdownWaitsForEarlierReportsDeliveredLate(t *testing.T) {
	gw := &recordingGateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	m := newTestMetrics()
	d := New(Config{Metrics: m, Pusher: NewPusher(srv.URL, "fn", m.Gatherer(), nil, nil), ReportWait: time.Minute})
	ctx := context.Background()
	d.Invoke(ctx, "a")
	d.Invoke(ctx, "b")
	d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("b", "success")})
	go func() {
		time.Sleep(20 * time.Millisecond)
		d.HandleEvents(ctx, []telemetryapi.Event{reportEvent("a", "error")})
	}()
	if !d.Shutdown(ctx, time.Now().Add(10*time.Second), true) {
		t.Fatal("shutdown push failed")
	}
	if got := gw.sum("aws_lambda_invocations_total"); got != 2 {
		t.Fatalf("pushed %v invocations, want both", got)
	}
}
