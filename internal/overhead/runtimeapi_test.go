package overhead

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runtimeAPI is the least of the Lambda runtime API an extension needs:
// register, the Telemetry API subscription and /event/next, answered at
// once, with timestamps taken where the service would see the calls. Unlike
// internal/lambdaemu it checks nothing and keeps nothing per invocation, so
// that it costs little next to what it measures. One serves one process.
type runtimeAPI struct {
	srv  *http.Server
	addr string // host:port, the AWS_LAMBDA_RUNTIME_API

	// arrived gets the time of every GET /event/next as its handler starts.
	arrived chan time.Time
	// handed gets the time right before an event handed out is written.
	handed chan time.Time
	events chan []byte // what the next /event/next answers

	registered atomic.Int64 // UnixNano of the registration, 0 before

	mu          sync.Mutex
	listenerURI string // the subscription's destination
	subscribed  bool
}

func newRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &runtimeAPI{
		addr:    ln.Addr().String(),
		arrived: make(chan time.Time, 1),
		handed:  make(chan time.Time, 1),
		events:  make(chan []byte),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2020-01-01/extension/register", a.register)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", a.next)
	mux.HandleFunc("PUT /2022-07-01/telemetry", a.subscribe)
	mux.HandleFunc("POST /2020-01-01/extension/init/error", a.reportError)
	mux.HandleFunc("POST /2020-01-01/extension/exit/error", a.reportError)
	a.srv = &http.Server{Handler: mux}
	go a.srv.Serve(ln)
	return a, nil
}

// Close stops the server; a pending /event/next is abandoned.
func (a *runtimeAPI) Close() { a.srv.Close() }

func (a *runtimeAPI) register(w http.ResponseWriter, r *http.Request) {
	a.registered.Store(time.Now().UnixNano())
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Lambda-Extension-Identifier", "overhead-bench-extension-id")
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"functionName":"overhead-bench","functionVersion":"$LATEST","handler":"index.handler"}`)
}

func (a *runtimeAPI) subscribe(w http.ResponseWriter, r *http.Request) {
	var s struct {
		Destination struct {
			URI string `json:"URI"`
		} `json:"destination"`
	}
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil || s.Destination.URI == "" {
		http.Error(w, `{"errorMessage":"bad subscription","errorType":"ValidationError"}`, http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.listenerURI, a.subscribed = s.Destination.URI, true
	a.mu.Unlock()
	io.WriteString(w, "OK")
}

func (a *runtimeAPI) reportError(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func (a *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	select {
	case a.arrived <- time.Now():
	case <-r.Context().Done():
		return
	}
	select {
	case ev := <-a.events:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(ev)))
		a.handed <- time.Now()
		w.Write(ev)
	case <-r.Context().Done():
	}
}

// ListenerURI returns the subscribed destination, "" without a subscription.
func (a *runtimeAPI) ListenerURI() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listenerURI
}

// awaitNext waits for the extension's next GET /event/next, at most d.
func (a *runtimeAPI) awaitNext(d time.Duration, exited <-chan struct{}) (time.Time, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case at := <-a.arrived:
		return at, nil
	case <-exited:
		return time.Time{}, errors.New("the extension exited instead of calling /event/next")
	case <-t.C:
		return time.Time{}, fmt.Errorf("no /event/next within %v", d)
	}
}

// handOut answers the pending /event/next with ev and returns the time
// right before the answer was written.
func (a *runtimeAPI) handOut(ev []byte, exited <-chan struct{}) (time.Time, error) {
	select {
	case a.events <- ev:
		return <-a.handed, nil
	case <-exited:
		return time.Time{}, errors.New("the extension exited")
	case <-time.After(5 * time.Second):
		return time.Time{}, errors.New("nobody waiting in /event/next for 5s")
	}
}

func invokeEvent(requestID string) []byte {
	return fmt.Appendf(nil, `{"eventType":"INVOKE","deadlineMs":%d,"requestId":%q,"invokedFunctionArn":"arn:aws:lambda:eu-west-1:123456789012:function:overhead-bench","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-6720c2b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"}}`,
		time.Now().Add(3*time.Second).UnixMilli(), requestID)
}

func shutdownEvent(timeout time.Duration) []byte {
	return fmt.Appendf(nil, `{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":%d}`, time.Now().Add(timeout).UnixMilli())
}

func requestID(k int) string { return fmt.Sprintf("8f5e7c1a-0000-4000-8000-%012d", k) }

// telemetryBatch is what Lambda POSTs around invocation k: the previous
// invocation's platform.report (the first one's carries initDurationMs),
// then platform.start, a function log line and platform.runtimeDone of k.
// Every batch differs, as real ones do (the listener drops identical bodies
// as redeliveries).
func telemetryBatch(k int, epoch time.Time) []byte {
	ts := func(ms int) string {
		return epoch.Add(time.Duration(ms) * time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	at := 100 * k
	var b []byte
	b = append(b, '[')
	if k > 0 {
		init := ""
		if k == 1 {
			init = `,"initDurationMs":178.43`
		}
		b = fmt.Appendf(b, `{"time":%q,"type":"platform.report","record":{"requestId":%q,"status":"success","metrics":{"durationMs":%d.55,"billedDurationMs":%d,"memorySizeMB":512,"maxMemoryUsedMB":%d%s},"tracing":{"spanId":"54565fb41ac79632","type":"X-Amzn-Trace-Id","value":"Root=1-6720c2b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"},"spans":[{"name":"responseLatency","start":%q,"durationMs":19.5},{"name":"responseDuration","start":%q,"durationMs":0.3}]}},`,
			ts(at-60), requestID(k-1), 20+k%30, 21+k%30, 80+k%16, init, ts(at-99), ts(at-80))
	}
	b = fmt.Appendf(b, `{"time":%q,"type":"platform.start","record":{"requestId":%q,"version":"$LATEST"}},`, ts(at), requestID(k))
	b = fmt.Appendf(b, `{"time":%q,"type":"function","record":{"timestamp":%q,"level":"INFO","requestId":%q,"message":"processing order %d"}},`, ts(at+10), ts(at+10), requestID(k), k)
	b = fmt.Appendf(b, `{"time":%q,"type":"platform.runtimeDone","record":{"requestId":%q,"status":"success","metrics":{"durationMs":%d.7,"producedBytes":42}}}]`, ts(at+40), requestID(k), 20+k%30)
	return b
}

// deliver POSTs a telemetry batch to the listener and waits for its answer.
func deliver(client *http.Client, uri string, batch []byte) error {
	resp, err := client.Post(uri, "application/json", bytes.NewReader(batch))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listener answered %s", resp.Status)
	}
	return nil
}

// gatewayStub accepts pushes at once: 200 after reading the body.
type gatewayStub struct {
	srv    *http.Server
	url    string
	pushes atomic.Int64
	bytes  atomic.Int64
}

func newGatewayStub() (*gatewayStub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gatewayStub{url: "http://" + ln.Addr().String()}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/metrics/job/") {
			g.pushes.Add(1)
			g.bytes.Add(n)
		}
		w.WriteHeader(http.StatusOK)
	})}
	go g.srv.Serve(ln)
	return g, nil
}

func (g *gatewayStub) Close() { g.srv.Close() }

// process is a running extension.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's, once exited is closed
	output *tailBuffer
}

// startExtension starts the binary with env (nothing else of the
// caller's environment) and returns the time right before the start.
func startExtension(binary string, env []string) (*process, time.Time, error) {
	p := &process{cmd: exec.Command(binary), exited: make(chan struct{}), output: &tailBuffer{max: 16 << 10}}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, start, err
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	return p, start, nil
}

// wait waits up to d for the exit and kills the process after that.
func (p *process) wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("still running %v after SHUTDOWN; killed", d)
	}
}

// kill ends the process if it is still running.
func (p *process) kill() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// memory is a process's resident memory, from /proc/<pid>/status (Linux).
type memory struct {
	RSS  int64 // VmRSS, bytes
	HWM  int64 // VmHWM: the peak of RSS
	Anon int64 // RssAnon: RSS less the mapped files (the binary) and shared memory
}

func (p *process) memory() (memory, error) { return readMemory(p.cmd.Process.Pid) }

func readMemory(pid int) (memory, error) {
	var m memory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	fields := map[string]*int64{"VmRSS": &m.RSS, "VmHWM": &m.HWM, "RssAnon": &m.Anon}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, _ := strings.Cut(line, ":")
		if f := fields[name]; f != nil {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				return m, fmt.Errorf("%s: %q", name, value)
			}
			*f = kb << 10
		}
	}
	if m.RSS == 0 || m.HWM == 0 || m.Anon == 0 {
		return m, errors.New("no VmRSS, VmHWM or RssAnon in /proc/<pid>/status")
	}
	return m, nil
}

// tailBuffer keeps the last max bytes written (the process output, shown
// when a benchmark fails).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// environment is one execution environment under measurement: the runtime
// API, the extension process and, once it subscribed, its listener.
type environment struct {
	api       *runtimeAPI
	proc      *process
	telemetry *http.Client
	epoch     time.Time
	invoked   int
}

// startEnvironment starts the extension and waits for its first
// /event/next; it returns the times from the start to the registration and
// to that call.
func startEnvironment(ctx context.Context, binary string, env []string) (*environment, time.Duration, time.Duration, error) {
	api, err := newRuntimeAPI()
	if err != nil {
		return nil, 0, 0, err
	}
	proc, start, err := startExtension(binary, append([]string{"AWS_LAMBDA_RUNTIME_API=" + api.addr}, env...))
	if err != nil {
		api.Close()
		return nil, 0, 0, err
	}
	e := &environment{api: api, proc: proc, epoch: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		telemetry: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
	first, err := api.awaitNext(10*time.Second, proc.exited)
	if err != nil {
		e.close()
		return nil, 0, 0, fmt.Errorf("init: %w\n%s", err, proc.output)
	}
	reg := time.Duration(api.registered.Load() - start.UnixNano())
	return e, reg, first.Sub(start), nil
}

// invoke delivers invocation k's telemetry batch, then hands out its INVOKE
// and returns the time until the extension's next /event/next.
func (e *environment) invoke() (time.Duration, error) {
	k := e.invoked
	if uri := e.api.ListenerURI(); uri != "" {
		if err := deliver(e.telemetry, uri, telemetryBatch(k, e.epoch)); err != nil {
			return 0, fmt.Errorf("telemetry batch %d: %w", k, err)
		}
	}
	handed, err := e.api.handOut(invokeEvent(requestID(k)), e.proc.exited)
	if err != nil {
		return 0, fmt.Errorf("INVOKE %d: %w", k, err)
	}
	back, err := e.api.awaitNext(5*time.Second, e.proc.exited)
	if err != nil {
		return 0, fmt.Errorf("INVOKE %d: %w", k, err)
	}
	e.invoked++
	return back.Sub(handed), nil
}

// shutdown hands out SHUTDOWN, delivers the last invocation's report (so
// the extension need not wait for it) and waits for a clean exit.
func (e *environment) shutdown() error {
	defer e.close()
	const budget = 2 * time.Second
	if _, err := e.api.handOut(shutdownEvent(budget), e.proc.exited); err != nil {
		return fmt.Errorf("SHUTDOWN: %w\n%s", err, e.proc.output)
	}
	if uri := e.api.ListenerURI(); uri != "" && e.invoked > 0 {
		last := telemetryBatch(e.invoked, e.epoch)
		// Only the report: cut the batch after its first event.
		if i := bytes.Index(last, []byte(`},{"time"`)); i > 0 {
			last = append(last[:i+1:i+1], ']')
		}
		_ = deliver(e.telemetry, uri, last) // the listener may already be closing
	}
	if err := e.proc.wait(budget); err != nil {
		return fmt.Errorf("exit after SHUTDOWN: %w\n%s", err, e.proc.output)
	}
	return nil
}

func (e *environment) close() {
	e.proc.kill()
	e.api.Close()
	e.telemetry.CloseIdleConnections()
}
