package dispatcher

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
)

// IdempotencyKeyHeader carries a batch's key on every attempt to push it.
const IdempotencyKeyHeader = "Idempotency-Key"

// GatewayIdempotencyRetention is how long the gateway remembers the answer
// to a push by its Idempotency-Key by default (--push.idempotency-retention):
// a batch retried within it after its first attempt is applied at most once.
const GatewayIdempotencyRetention = 10 * time.Minute

// CredentialsFunc returns basic-auth credentials for a push.
type CredentialsFunc func(ctx context.Context) (username, password string, err error)

// Pusher pushes what changed in a Gatherer since its last acknowledged push,
// with client_golang's push package as a POST (Add) to
// <url>/metrics/job/<job>, protobuf-delimited, each push carrying an
// Idempotency-Key header.
//
// Exactly once. The deltas of a push form a batch: a fresh random key, the
// families, and the snapshot to acknowledge once the gateway accepts them.
// Until then the batch is in flight and every later push first re-sends
// that very batch, same key and same families (same bytes), so the gateway
// applies it once even when an earlier attempt was applied but its answer
// lost; only then are the increments since computed, as the next batch. A
// batch that certainly never reached the gateway (dial errors, no
// credentials) is rebuilt instead, with everything since the acknowledged
// snapshot. Increments that arrive meanwhile wait in the cumulative
// registry, so memory stays bounded by the number of series — one batch in
// flight and the acknowledged snapshot — however long the gateway is down.
//
// Answers. 2xx acknowledges the batch. 5xx, 401, 403, 407, 408, 409, 425,
// 429 and transport errors (timeouts, broken connections) leave it in
// flight. Any other 4xx means the gateway rejected the batch for what it is
// (400: invalid body; 404, 413, 415…) and would reject it forever: the batch
// is dropped, its increments lost, and Push returns an *ErrBatchDropped. A
// 422 means the gateway answered this key before for a request that
// differs: only an earlier attempt of this batch can have used the key, so
// that attempt was applied or rejected then and the batch is settled
// (dropped, reported as *ErrBatchDropped) rather than re-sent under a new
// key, which could count it twice.
//
// Not safe for concurrent use; Stats may be read concurrently.
type Pusher struct {
	url         string
	job         string
	gatherer    prometheus.Gatherer
	client      push.HTTPDoer
	credentials CredentialsFunc
	acked       snapshot
	inflight    *batch
	now         func() time.Time
	newKey      func() string
	stats       pushCounters
}

// batch is one push's content, kept identical across its attempts.
type batch struct {
	key      string
	families []*dto.MetricFamily
	next     snapshot  // acknowledged once the gateway accepts the batch
	created  time.Time // built
	sent     time.Time // first attempt that may have reached the gateway; zero if none may have
	attempts int
}

// PushStats counts what a Pusher did.
type PushStats struct {
	Attempts     int64 // HTTP pushes tried
	Failures     int64 // attempts that failed and left their batch in flight
	Acknowledged int64 // batches the gateway accepted
	Replayed     int64 // of those, accepted as a replay of an earlier attempt (Idempotent-Replayed)
	Dropped      int64 // batches dropped on a definitive rejection (4xx other than the retried ones)
	Rebuilt      int64 // batches that never reached the gateway, rebuilt with newer increments
}

type pushCounters struct {
	attempts, failures, acknowledged, replayed, dropped, rebuilt atomic.Int64
}

// ErrBatchDropped is returned by Push when the gateway rejected a batch
// definitively: its increments are gone and the next push carries only
// later ones.
type ErrBatchDropped struct {
	Key    string
	Status int
	Err    error
}

func (e *ErrBatchDropped) Error() string {
	return fmt.Sprintf("batch %s rejected with status %d and dropped: %v", e.Key, e.Status, e.Err)
}

func (e *ErrBatchDropped) Unwrap() error { return e.Err }

// NewPusher returns a Pusher of g's metrics to the gateway at url under the
// grouping key job=<job>. client may be nil (http.DefaultClient; the caller
// bounds each push with its context); credentials may be nil (no auth).
func NewPusher(url, job string, g prometheus.Gatherer, client push.HTTPDoer, credentials CredentialsFunc) *Pusher {
	if client == nil {
		client = http.DefaultClient
	}
	return &Pusher{url: url, job: job, gatherer: g, client: client, credentials: credentials, acked: snapshot{},
		now: time.Now, newKey: rand.Text}
}

// Stats returns the Pusher's counters.
func (p *Pusher) Stats() PushStats {
	c := &p.stats
	return PushStats{Attempts: c.attempts.Load(), Failures: c.failures.Load(), Acknowledged: c.acknowledged.Load(),
		Replayed: c.replayed.Load(), Dropped: c.dropped.Load(), Rebuilt: c.rebuilt.Load()}
}

// InFlight describes the batch waiting for the gateway's acknowledgement:
// its key, how long ago an attempt first may have reached the gateway (0 if
// none may have) and the attempts so far. ok is false when none waits.
func (p *Pusher) InFlight() (key string, since time.Duration, attempts int, ok bool) {
	b := p.inflight
	if b == nil {
		return "", 0, 0, false
	}
	if !b.sent.IsZero() {
		since = p.now().Sub(b.sent)
	}
	return b.key, since, b.attempts, true
}

// Push makes one attempt to send the batch in flight, if any, then builds
// the batch of the increments since and makes one attempt to send it. It
// stops at the first failure, leaving that batch in flight for the next
// call, and reports whether any batch was acknowledged. With nothing
// changed nothing is sent.
func (p *Pusher) Push(ctx context.Context) (bool, error) {
	if b := p.inflight; b != nil && b.sent.IsZero() {
		// No attempt can have reached the gateway: rebuild it with
		// everything since the acknowledged snapshot.
		p.inflight = nil
		p.stats.rebuilt.Add(1)
	}
	acked := false
	if p.inflight != nil {
		if err := p.send(ctx, p.inflight); err != nil {
			return acked, err
		}
		acked = true
	}
	families, err := p.gatherer.Gather()
	if err != nil {
		return acked, fmt.Errorf("gather metrics: %w", err)
	}
	body, next := deltas(families, p.acked)
	if len(body) == 0 {
		p.acked = next // gauges only, or nothing
		return acked, nil
	}
	p.inflight = &batch{key: p.newKey(), families: body, next: next, created: p.now()}
	if err := p.send(ctx, p.inflight); err != nil {
		return acked, err
	}
	return true, nil
}

// send makes one attempt to push b, which is p.inflight, and settles it on
// an acknowledgement or a definitive rejection.
func (p *Pusher) send(ctx context.Context, b *batch) error {
	pusher := push.New(p.url, p.job).Gatherer(staticGatherer(b.families)).
		Header(http.Header{IdempotencyKeyHeader: {b.key}})
	if p.credentials != nil {
		user, pass, err := p.credentials(ctx)
		if err != nil {
			return &credentialsError{err} // nothing sent
		}
		pusher = pusher.BasicAuth(user, pass)
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	})
	doer := &answerDoer{inner: p.client}
	b.attempts++
	p.stats.attempts.Add(1)
	err := pusher.Client(doer).AddContext(ctx)
	if err == nil {
		p.settle(b)
		p.stats.acknowledged.Add(1)
		if doer.replayed {
			p.stats.replayed.Add(1)
		}
		return nil
	}
	err = fmt.Errorf("push to %s (Idempotency-Key %s, attempt %d): %w", p.url, b.key, b.attempts, err)
	if doer.status != 0 && dropOn(doer.status) {
		p.settle(b)
		p.stats.dropped.Add(1)
		return &ErrBatchDropped{Key: b.key, Status: doer.status, Err: err}
	}
	p.stats.failures.Add(1)
	if b.sent.IsZero() && (doer.status != 0 || wrote.Load() || !unsent(err)) {
		b.sent = p.now()
	}
	return err
}

// credentialsError is a failure to get the push's credentials.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "credentials for the push: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// settle ends b: its snapshot becomes the acknowledged one.
func (p *Pusher) settle(b *batch) {
	p.acked = b.next
	p.inflight = nil
}

// dropOn reports whether an answer with this status rejects a batch for
// good. Retried: 401, 403 and 407 (credentials may be fixed), 408, 409,
// 425 and 429 (transient), and every status outside 4xx. 422 settles the
// batch: see Pusher.
func dropOn(status int) bool {
	if status < 400 || status > 499 {
		return false
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired,
		http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
}

// unsent reports whether err proves the request never left: the
// connection could not be made (the dial failed, DNS included).
func unsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// answerDoer passes requests on and notes the answer's status and whether
// the gateway replayed it from its idempotency memory.
type answerDoer struct {
	inner    push.HTTPDoer
	status   int
	replayed bool
}

func (d *answerDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.inner.Do(req)
	if resp != nil {
		d.status = resp.StatusCode
		d.replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	}
	return resp, err
}

// staticGatherer serves a fixed set of families.
type staticGatherer []*dto.MetricFamily

func (g staticGatherer) Gather() ([]*dto.MetricFamily, error) { return g, nil }
