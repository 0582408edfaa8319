package dispatcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// IdempotencyKeyHeader carries a batch's key on every attempt to push it.
const IdempotencyKeyHeader = "Idempotency-Key"

// GatewayIdempotencyRetention is how long the gateway remembers the answer
// to a push by its Idempotency-Key by default (--push.idempotency-retention):
// a batch retried within it after its first attempt is applied at most once.
const GatewayIdempotencyRetention = 10 * time.Minute

// CredentialsFunc returns basic-auth credentials for a push.
type CredentialsFunc func(ctx context.Context) (username, password string, err error)

// HTTPDoer sends HTTP requests; *http.Client is one.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// Pusher pushes what changed in a Gatherer since its last acknowledged push
// as a POST to <url>/metrics/job/<job> (the Pushgateway's "add", built as
// client_golang's push.Add builds it: a job containing "/" goes as
// job@base64), protobuf-delimited, each push carrying an Idempotency-Key
// header.
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
	gateway     string // the gateway's base URL, as given
	job         string
	url         string // the push URL: <gateway>/metrics/job/<job>
	gatherer    Gatherer
	client      HTTPDoer
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
	body     []byte    // the families, protobuf-delimited: the same bytes on every attempt
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

// NewPusher returns a Pusher of g's metrics to the gateway at gateway (a
// base URL; "http://" is assumed without a scheme) under the grouping key
// job=<job>. client may be nil (http.DefaultClient; the caller bounds each
// push with its context); credentials may be nil (no auth).
func NewPusher(gateway, job string, g Gatherer, client HTTPDoer, credentials CredentialsFunc) *Pusher {
	if client == nil {
		client = http.DefaultClient
	}
	return &Pusher{gateway: gateway, job: job, url: pushURL(gateway, job), gatherer: g, client: client, credentials: credentials, acked: snapshot{},
		now: time.Now, newKey: rand.Text}
}

// pushURL returns <gateway>/metrics/job/<job> as client_golang's push
// package builds it: "http://" added when gateway has no scheme, a trailing
// "/" dropped, the job query-escaped, or base64url-encoded under job@base64
// when it contains "/".
func pushURL(gateway, job string) string {
	if !strings.Contains(gateway, "://") {
		gateway = "http://" + gateway
	}
	gateway = strings.TrimSuffix(gateway, "/")
	if strings.Contains(job, "/") {
		return gateway + "/metrics/job@base64/" + base64.RawURLEncoding.EncodeToString([]byte(job))
	}
	return gateway + "/metrics/job/" + url.QueryEscape(job)
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
	fams, next := deltas(p.gatherer.Gather(), p.acked)
	if len(fams) == 0 {
		p.acked = next // gauges only, or nothing
		return acked, nil
	}
	var body []byte
	for i := range fams {
		body = family.AppendDelimited(body, &fams[i])
	}
	p.inflight = &batch{key: p.newKey(), body: body, next: next, created: p.now()}
	if err := p.send(ctx, p.inflight); err != nil {
		return acked, err
	}
	return true, nil
}

// send makes one attempt to push b, which is p.inflight, and settles it on
// an acknowledgement or a definitive rejection.
func (p *Pusher) send(ctx context.Context, b *batch) error {
	if p.job == "" {
		return errJobEmpty // as client_golang's push; nothing sent
	}
	var user, pass string
	if p.credentials != nil {
		var err error
		if user, pass, err = p.credentials(ctx); err != nil {
			return &credentialsError{err} // nothing sent
		}
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(b.body))
	if err != nil {
		return fmt.Errorf("push to %s: %w", p.gateway, err) // an invalid URL: nothing sent
	}
	if p.credentials != nil {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set(IdempotencyKeyHeader, b.key)
	req.Header.Set("Content-Type", family.ContentType)
	b.attempts++
	p.stats.attempts.Add(1)
	status, replayed, err := p.do(req)
	if err == nil {
		p.settle(b)
		p.stats.acknowledged.Add(1)
		if replayed {
			p.stats.replayed.Add(1)
		}
		return nil
	}
	err = fmt.Errorf("push to %s (Idempotency-Key %s, attempt %d): %w", p.gateway, b.key, b.attempts, err)
	if status != 0 && dropOn(status) {
		p.settle(b)
		p.stats.dropped.Add(1)
		return &ErrBatchDropped{Key: b.key, Status: status, Err: err}
	}
	p.stats.failures.Add(1)
	if b.sent.IsZero() && (status != 0 || wrote.Load() || !unsent(err)) {
		b.sent = p.now()
	}
	return err
}

var errJobEmpty = errors.New("job name is empty")

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

// do sends req and returns the answer's status (0 without one), whether
// the gateway replayed it from its idempotency memory, and, unless the
// status is 200 or 202 (what client_golang's push accepts), an error: the
// transport's, or one quoting the answer's body.
func (p *Pusher) do(req *http.Request) (status int, replayed bool, err error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	status, replayed = resp.StatusCode, resp.Header.Get("Idempotent-Replayed") == "true"
	if status != http.StatusOK && status != http.StatusAccepted {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // for the error message only
		return status, replayed, fmt.Errorf("unexpected status code %d while pushing to %s: %s", status, p.url, body)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	return status, replayed, nil
}
