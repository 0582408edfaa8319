package gateway

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Exactly-once pushes.
//
// A push (PUT or POST) may carry an Idempotency-Key header, as in the IETF
// draft "The Idempotency-Key HTTP Header Field"
// (draft-ietf-httpapi-idempotency-key-header): a quoted structured-field
// string ("8e03978e-…") or, leniently, a bare token of visible ASCII, at most
// 255 characters. The gateway remembers the answer to the first request with
// a key and answers a repeat with the same key and the same request (method,
// grouping path, Content-Type, Content-Encoding and body bytes) with that
// answer, adding the header Idempotent-Replayed: true, without applying the
// body again. So a client that retries after a timeout or a broken connection
// never counts twice, whether or not the first attempt got through.
//
//   - The key is global to the gateway, not per group. Reused with a
//     different request it answers 422 Unprocessable Content (nothing
//     applied, nothing remembered for that request).
//   - While the first request with a key is being applied, a repeat waits
//     for it (or until the repeat's client goes away) and then gets its
//     answer; the draft suggests 409 instead, but the key is reserved only
//     once the whole body has arrived, so the wait is the time to decode and
//     apply a push, and the answer a retrying client wants is the first one.
//   - Answers are remembered when they are deterministic: 2xx, and 4xx for
//     the body's or the path's content (a repeat of a rejected push is
//     rejected again without being parsed). 5xx answers are not remembered:
//     nothing was applied, and the retry is applied anew. Neither are
//     failures to read the body (413 too large, a broken upload) nor
//     answers larger than 64 KiB.
//   - An answer is remembered for the retention window (Options.Idempotency,
//     default 10 minutes, flag --push.idempotency-retention) after it was
//     given, and at most MaxKeys answers are kept (default 100000, flag
//     --push.idempotency-max-keys): beyond that the oldest are forgotten
//     early, so a retry of a forgotten push is applied again. Retries must
//     come within the window; the gauge gateway_idempotency_keys shows how
//     many answers are remembered and gateway_idempotent_replays_total how
//     many repeats were answered from memory.
//   - Without persistence keys live in memory: a restarted gateway has
//     forgotten them (and the pushed metrics too). With --persistence.dir
//     the keys of applied pushes are journaled with them and restored
//     (restore below).
//
// Go's net/http client treats a request with an Idempotency-Key (or
// X-Idempotency-Key) header as idempotent and replays it by itself when a
// reused keep-alive connection breaks before the answer; with the key the
// gateway turns that replay into a harmless repeat. Only Idempotency-Key is
// recognised.

// IdempotencyKeyHeader is the request header carrying a push's idempotency
// key.
const IdempotencyKeyHeader = "Idempotency-Key"

// Defaults of IdempotencyOptions.
const (
	DefaultIdempotencyRetention = 10 * time.Minute
	DefaultIdempotencyMaxKeys   = 100_000
)

const (
	maxIdempotencyKeyLen   = 255
	maxRememberedBodyBytes = 64 << 10
	replayedHeader         = "Idempotent-Replayed"
)

// IdempotencyOptions configures how long and how many push answers are
// remembered by idempotency key. The zero value is usable.
type IdempotencyOptions struct {
	// Retention is how long an answer is remembered after it was given. 0
	// means DefaultIdempotencyRetention; negative turns idempotency keys off
	// (the header is ignored and every request applied).
	Retention time.Duration
	// MaxKeys bounds the answers remembered; the oldest are forgotten first.
	// ≤ 0 means DefaultIdempotencyMaxKeys.
	MaxKeys int
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
}

// errKeyReused is a key seen with a different request.
var errKeyReused = errors.New("idempotency key already used for a different request (method, path, Content-Type, Content-Encoding or body differ)")

// idemEntry is one key: in flight until done is closed, then recorded (an
// answer to replay) or gone from the cache. Its answer fields do not change
// once recorded.
type idemEntry struct {
	key  string
	fp   [sha256.Size]byte
	done chan struct{}

	recorded    bool
	code        int
	contentType string
	body        []byte
	expires     time.Time
	elem        *list.Element // in idempotencyCache.order once recorded
}

// idempotencyCache remembers answers by key.
type idempotencyCache struct {
	retention time.Duration
	maxKeys   int
	now       func() time.Time

	mu      sync.Mutex
	entries map[string]*idemEntry // in flight and recorded
	order   *list.List            // recorded entries, oldest answer first

	waiting atomic.Int32 // repeats waiting for an in-flight first request
}

func newIdempotencyCache(opts IdempotencyOptions) *idempotencyCache {
	if opts.Retention < 0 {
		return nil
	}
	c := &idempotencyCache{retention: opts.Retention, maxKeys: opts.MaxKeys, now: opts.Now,
		entries: map[string]*idemEntry{}, order: list.New()}
	if c.retention == 0 {
		c.retention = DefaultIdempotencyRetention
	}
	if c.maxKeys <= 0 {
		c.maxKeys = DefaultIdempotencyMaxKeys
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// begin looks key up. It returns the entry to replay when the same request
// was answered; otherwise the new in-flight entry, which the caller owns and
// must pass to finish. A repeat of an in-flight request waits for it.
func (c *idempotencyCache) begin(ctx context.Context, key string, fp [sha256.Size]byte) (owned, replay *idemEntry, err error) {
	for {
		c.mu.Lock()
		c.purgeLocked()
		e := c.entries[key]
		if e == nil {
			e = &idemEntry{key: key, fp: fp, done: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			return e, nil, nil
		}
		if e.fp != fp {
			c.mu.Unlock()
			return nil, nil, errKeyReused
		}
		if e.recorded {
			c.mu.Unlock()
			return nil, e, nil
		}
		done := e.done
		c.mu.Unlock()
		c.waiting.Add(1)
		select {
		case <-done: // Recorded, or forgotten: look again.
			c.waiting.Add(-1)
		case <-ctx.Done():
			c.waiting.Add(-1)
			return nil, nil, ctx.Err()
		}
	}
}

// finish records the answer of the owned entry e when it is deterministic
// (code < 500) and small enough, else forgets the key; then wakes waiters.
// code 0 means the request ended without an answer (forgotten).
func (c *idempotencyCache) finish(e *idemEntry, code int, contentType string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(e.done)
	if code <= 0 || code >= 500 || len(body) > maxRememberedBodyBytes {
		if c.entries[e.key] == e {
			delete(c.entries, e.key)
		}
		return
	}
	e.recorded, e.code, e.contentType, e.body = true, code, contentType, bytes.Clone(body)
	e.expires = c.now().Add(c.retention)
	e.elem = c.order.PushBack(e)
	for c.order.Len() > c.maxKeys {
		c.removeLocked(c.order.Front().Value.(*idemEntry))
	}
}

// purgeLocked forgets answers whose retention has passed.
func (c *idempotencyCache) purgeLocked() {
	now := c.now()
	for f := c.order.Front(); f != nil; f = c.order.Front() {
		e := f.Value.(*idemEntry)
		if now.Before(e.expires) {
			return
		}
		c.removeLocked(e)
	}
}

func (c *idempotencyCache) removeLocked(e *idemEntry) {
	c.order.Remove(e.elem)
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

// len returns the number of answers remembered.
func (c *idempotencyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.purgeLocked()
	return c.order.Len()
}

// idempotency is the gateway's idempotency state.
type idempotency struct {
	cache   *idempotencyCache
	replays prometheus.Counter
}

// initIdempotency sets up idempotency keys per opts and registers their
// metrics in reg (also when keys are off, so the metric names stay
// reserved).
func (g *Gateway) initIdempotency(reg prometheus.Registerer, opts IdempotencyOptions, store Store) error {
	cache := newIdempotencyCache(opts)
	idem := &idempotency{cache: cache, replays: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gateway_idempotent_replays_total",
		Help: "Pushes answered from memory because their Idempotency-Key and request repeated an answered push.",
	})}
	keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_idempotency_keys",
		Help: "Push answers remembered by Idempotency-Key.",
	}, func() float64 {
		if cache == nil {
			return 0
		}
		return float64(cache.len())
	})
	for _, c := range []prometheus.Collector{idem.replays, keys} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	g.idem = idem
	if ks, ok := store.(interface{ journaledKeys() []journalKey }); ok && cache != nil {
		cache.restore(ks.journaledKeys())
	}
	return nil
}

// restore remembers the 2xx answers of the pushes a persisting store
// journaled (keys restored from its snapshot and log), oldest first: a push
// is journaled only once it passed every check, so its answer was 200 with
// an empty body, unless persisting it failed (503, then the push is in the
// log only if it reached the disk after all: applied, so 200 is right).
// Answers other than 2xx are not persisted: a rejected push changed nothing,
// so applying its retry after a restart counts it at most once; the retry is
// merely checked again. Each answer expires the retention after the push was
// applied (live, after it was answered: a few milliseconds later).
func (c *idempotencyCache) restore(keys []journalKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if old := c.entries[k.key]; old != nil {
			c.removeLocked(old)
		}
		e := &idemEntry{key: k.key, fp: k.fp, done: make(chan struct{}), recorded: true, code: http.StatusOK,
			expires: time.Unix(0, k.ns).Add(c.retention)}
		close(e.done)
		c.entries[k.key] = e
		e.elem = c.order.PushBack(e)
		for c.order.Len() > c.maxKeys {
			c.removeLocked(c.order.Front().Value.(*idemEntry))
		}
	}
	c.purgeLocked()
}

// idempotentPush serves a push that carries an Idempotency-Key header and
// reports true; without the header (or with keys off) it does nothing and
// reports false.
func (g *Gateway) idempotentPush(w http.ResponseWriter, r *http.Request, grouping string) bool {
	values := r.Header.Values(IdempotencyKeyHeader)
	if len(values) == 0 || g.idem == nil || g.idem.cache == nil {
		return false
	}
	key, err := parseIdempotencyKey(values)
	if err != nil {
		g.reject(w, r, http.StatusBadRequest, err)
		return true
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("push body larger than %d bytes", mbe.Limit))
		} else {
			g.reject(w, r, http.StatusBadRequest, fmt.Errorf("reading push body: %w", err))
		}
		return true
	}
	fp := requestFingerprint(r, raw)

	owned, replay, err := g.idem.cache.begin(r.Context(), key, fp)
	switch {
	case errors.Is(err, errKeyReused):
		g.reject(w, r, http.StatusUnprocessableEntity, fmt.Errorf("%s %q: %w", IdempotencyKeyHeader, key, err))
		return true
	case err != nil: // The client went away while waiting.
		http.Error(w, "abandoned while waiting for the first request with this idempotency key", http.StatusServiceUnavailable)
		return true
	case replay != nil:
		g.idem.replays.Inc()
		h := w.Header()
		if replay.contentType != "" {
			h.Set("Content-Type", replay.contentType)
			h.Set("X-Content-Type-Options", "nosniff")
		}
		h.Set(replayedHeader, "true")
		w.WriteHeader(replay.code)
		_, _ = w.Write(replay.body)
		return true
	}

	rec := &answerRecorder{ResponseWriter: w}
	defer func() { // Also on a panic: never leave the key in flight.
		g.idem.cache.finish(owned, rec.code, rec.Header().Get("Content-Type"), rec.body.Bytes())
	}()
	// The key goes with the push into the store's journal, so that its
	// answer survives a restart (journal.go).
	inner := r.Clone(WithPushMeta(r.Context(), PushMeta{IdempotencyKey: key, Fingerprint: fp}))
	inner.Header.Del(IdempotencyKeyHeader)
	inner.Body = io.NopCloser(bytes.NewReader(raw))
	inner.ContentLength = int64(len(raw))
	g.handlePush(rec, inner, grouping)
	if rec.code == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	return true
}

// parseIdempotencyKey reads the key from the header's values: one value, a
// structured-field string or a bare token of visible ASCII.
func parseIdempotencyKey(values []string) (string, error) {
	if len(values) != 1 {
		return "", fmt.Errorf("%s given %d times", IdempotencyKeyHeader, len(values))
	}
	v := strings.TrimSpace(values[0])
	key := v
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		closed := false
		for i := 1; i < len(v); i++ {
			switch ch := v[i]; {
			case ch == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\'):
				b.WriteByte(v[i+1])
				i++
			case ch == '"' && i == len(v)-1:
				closed = true
			case ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\':
				return "", fmt.Errorf("%s %s: invalid structured-field string", IdempotencyKeyHeader, v)
			default:
				b.WriteByte(ch)
			}
		}
		if !closed {
			return "", fmt.Errorf("%s %s: unterminated string", IdempotencyKeyHeader, v)
		}
		key = b.String()
	} else {
		for i := 0; i < len(v); i++ {
			if v[i] <= 0x20 || v[i] > 0x7e {
				return "", fmt.Errorf("%s %q: want a quoted string or a token of visible ASCII", IdempotencyKeyHeader, v)
			}
		}
	}
	switch {
	case key == "":
		return "", fmt.Errorf("%s is empty", IdempotencyKeyHeader)
	case len(key) > maxIdempotencyKeyLen:
		return "", fmt.Errorf("%s longer than %d characters", IdempotencyKeyHeader, maxIdempotencyKeyLen)
	}
	return key, nil
}

// requestFingerprint identifies what a push asks for.
func requestFingerprint(r *http.Request, body []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding")} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	h.Write(body)
	var fp [sha256.Size]byte
	h.Sum(fp[:0])
	return fp
}

// answerRecorder passes a response through and keeps its status and body.
type answerRecorder struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (a *answerRecorder) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answerRecorder) Write(p []byte) (int, error) {
	if a.code == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.body.Len() <= maxRememberedBodyBytes {
		a.body.Write(p)
	}
	return a.ResponseWriter.Write(p)
}
