package telemetryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// MaxBatchBytes bounds the body of one POST. Lambda sends up to twice
// maxBytes, at most 2 MiB; the limit leaves as much again as margin. Larger
// bodies are answered 413 without being read whole.
const MaxBatchBytes = 4 << 20

// SandboxHost is the name Lambda documents for the execution environment's
// own address in destination URIs.
const SandboxHost = "sandbox.localdomain"

// recentBatches is how many batch fingerprints the listener remembers. A
// redelivery follows its failed POST after a retry backoff; with batches
// flushed every 25 ms or more, 256 batches cover several seconds of stream,
// which we assume outlasts Lambda's retries.
const recentBatches = 256

// Listener is the HTTP server Lambda POSTs telemetry batches to: JSON arrays
// of {"time","type","record"}.
//
// Delivery is at least once: when a POST fails or times out, Lambda sends the
// same batch again. The listener remembers a 64-bit fingerprint (maphash) of
// the last 256 bodies it accepted and answers an identical body 200 without
// passing it on: two genuine batches are never byte-identical, since each
// continues the stream with newly timestamped events, so an identical body
// is a redelivery. Events that are identical inside one batch are distinct
// occurrences (say, the same log line written twice in a millisecond) and are
// all passed on. A fingerprint collision, which would drop a genuine batch,
// has a probability in the order of 256/2⁶⁴ per batch.
type Listener struct {
	address string
	handle  func(ctx context.Context, events []Event)
	logger  *slog.Logger
	recent  fingerprints

	mu   sync.Mutex // guards the fields below
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
	uri  string
}

// NewListener returns a listener that will serve on address (host:port) and
// pass every accepted batch to handle. handle is called from the server's
// goroutines, possibly concurrently, and must be safe for that; it may keep
// events and their records, which the listener never reuses. A nil handle
// discards batches; a nil logger discards logs.
func NewListener(address string, handle func(ctx context.Context, events []Event), logger *slog.Logger) *Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if handle == nil {
		handle = func(context.Context, []Event) {}
	}
	return &Listener{
		address: address,
		handle:  handle,
		logger:  logger,
		recent:  fingerprints{seed: maphash.MakeSeed()},
	}
}

// Start binds the address and serves in the background, so that the port is
// known (URI) before subscribing. Port 0 picks a free port. A listener starts
// once; after Shutdown it cannot be restarted.
func (l *Listener) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil {
		return errors.New("telemetryapi: listener already started")
	}
	host, _, err := net.SplitHostPort(l.address)
	if err != nil {
		return fmt.Errorf("telemetryapi: listener address: %w", err)
	}
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return fmt.Errorf("telemetryapi: listener: %w", err)
	}
	l.uri = destinationURI(host, ln.Addr().(*net.TCPAddr).Port)
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(l.logger.Handler(), slog.LevelWarn),
	}
	l.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.logger.Error("telemetry listener stopped", "err", err)
		}
	}(l.srv, l.done)
	return nil
}

// URI returns the destination URI to subscribe with:
// "http://<host>:<port>/", where host is the one of the configured address
// (not the address it resolved to: in Lambda the configured host is
// sandbox.localdomain and the URI must keep that name) and port is the bound
// one. An empty or unspecified host (":4243", "0.0.0.0:4243") gives
// SandboxHost, the only name Lambda can reach; outside Lambda configure a
// host. It returns "" before Start.
func (l *Listener) URI() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.uri
}

// destinationURI builds the URI of a listener configured with host and
// bound to port (see URI).
func destinationURI(host string, port int) string {
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = SandboxHost
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
}

// Shutdown stops accepting batches and waits for the ones being handled, or
// until ctx is done, in which case it closes the connections and returns
// ctx's error. It returns when the serving goroutine has exited. It is a
// no-op before Start.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	srv, done := l.srv, l.done
	l.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	<-done
	if err != nil {
		return fmt.Errorf("telemetryapi: listener shutdown: %w", err)
	}
	return nil
}

// bodyPool recycles request bodies: the decoded events copy what they keep,
// so a body is garbage once decoded.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// wirePool recycles the decoding slices, which are converted to []Event.
var wirePool = sync.Pool{New: func() any { return new([]wireEvent) }}

const maxPooledBody = 1 << 20 // bodies above this are left to the GC

// ServeHTTP handles one POSTed batch; Start serves it, and it is exported so
// that the listener can be mounted in another server or driven in tests.
// Answers: 200 once handle has returned, or for a redelivered or empty batch
// (handle is not called); 400 for a body that is not a JSON array of events
// (logged); 405 for another method; 413 above MaxBatchBytes. The handle
// context is the request's, cancelled if Lambda gives up on the POST; the
// batch then counts as delivered all the same, so handle should finish
// recording it.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "telemetry listener accepts POST only", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > MaxBatchBytes {
		l.tooLarge(w, r.ContentLength)
		return
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // ReadFrom wants MinRead spare bytes before EOF
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBatchBytes+1)); err != nil {
		l.logger.Warn("telemetry batch unreadable", "err", err)
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if buf.Len() > MaxBatchBytes {
		l.tooLarge(w, int64(buf.Len()))
		return
	}
	body := buf.Bytes()

	sum := l.recent.sum(body)
	if l.recent.contains(sum) {
		l.logger.Debug("telemetry batch redelivered, dropped", "bytes", len(body))
		w.WriteHeader(http.StatusOK)
		return
	}
	events, err := decodeBatch(body)
	if err != nil {
		l.logger.Warn("telemetry batch malformed", "err", err, "bytes", len(body))
		http.Error(w, "malformed batch: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Recorded before handle runs, so that a redelivery arriving while the
	// first copy is still being handled is dropped too.
	if len(events) > 0 && l.recent.add(sum) {
		l.handle(r.Context(), events)
	}
	w.WriteHeader(http.StatusOK)
}

func (l *Listener) tooLarge(w http.ResponseWriter, size int64) {
	l.logger.Warn("telemetry batch too large", "bytes", size, "limit", MaxBatchBytes)
	http.Error(w, "batch exceeds "+strconv.Itoa(MaxBatchBytes)+" bytes", http.StatusRequestEntityTooLarge)
}

// decodeBatch decodes a JSON array of events; null decodes to no events.
func decodeBatch(body []byte) ([]Event, error) {
	wp := wirePool.Get().(*[]wireEvent)
	wire := (*wp)[:0]
	defer func() {
		clear(wire) // drop the records' references before pooling
		*wp = wire[:0]
		wirePool.Put(wp)
	}()
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, err
	}
	if len(wire) == 0 {
		return nil, nil
	}
	events := make([]Event, len(wire))
	for i := range wire {
		events[i] = wire[i].event()
	}
	return events, nil
}

// fingerprints is a ring of the most recent batch fingerprints.
type fingerprints struct {
	seed maphash.Seed

	mu   sync.Mutex
	ring [recentBatches]uint64
	n    int // entries in use
	next int // slot to overwrite next
}

func (f *fingerprints) sum(body []byte) uint64 { return maphash.Bytes(f.seed, body) }

func (f *fingerprints) contains(sum uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containsLocked(sum)
}

// containsLocked scans the ring: 256 words, cheaper than maintaining a map.
func (f *fingerprints) containsLocked(sum uint64) bool {
	for _, s := range f.ring[:f.n] {
		if s == sum {
			return true
		}
	}
	return false
}

// add records sum and reports whether it was new.
func (f *fingerprints) add(sum uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.containsLocked(sum) {
		return false
	}
	f.ring[f.next] = sum
	f.next = (f.next + 1) % recentBatches
	if f.n < recentBatches {
		f.n++
	}
	return true
}
