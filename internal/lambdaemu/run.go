// Package lambdaemu runs a Lambda extension binary through the life of one
// execution environment without AWS: init, a scenario's invocations, and
// shutdown. It is used by the end-to-end tests and by `make demo`.
//
// It serves, on 127.0.0.1 only, the parts of the runtime API an external
// extension talks to, following the AWS Lambda developer guide:
//
//   - Extensions API ("Extensions API", runtimes-extensions-api):
//     POST /2020-01-01/extension/register, GET /event/next, POST /init/error,
//     POST /exit/error; errors are 403 with {"errorMessage","errorType"}.
//   - Telemetry API subscription ("Telemetry API reference"):
//     PUT /2022-07-01/telemetry, answered 200, 400 on a validation error, or
//     202 Telemetry.NotSupported when configured so.
//
// Telemetry is not generated: the scenario's recorded batches are POSTed
// verbatim to the subscribed listener, one per invocation, the rest during
// shutdown, in the file's order unless Config.Order reorders or repeats
// them. Types are not filtered by the subscription: scenarios are assumed to
// match what the extension subscribes to.
//
// Typical use, from a test:
//
//	sc, err := lambdaemu.LoadScenario("testdata/cold-start-four-invocations.json")
//	// handle err
//	res, err := lambdaemu.Run(ctx, lambdaemu.Config{
//		ExtensionPath: "bin/prometheus-telemetry-extension",
//		Scenario:      sc,
//		Env:           []string{"GATEWAY=http://127.0.0.1:9091", "TELEMETRY_LISTENER_ADDRESS=127.0.0.1:0"},
//	})
package lambdaemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors Run wraps; test them with errors.Is.
var (
	// ErrInitFailed: the extension did not register and reach /event/next
	// within Config.InitTimeout, exited before, or called /init/error.
	ErrInitFailed = errors.New("extension init failed")
	// ErrExtensionExited: the extension exited while an invocation ran.
	ErrExtensionExited = errors.New("extension exited during an invocation")
	// ErrInvokeTimeout: the extension did not call /event/next again by the
	// INVOKE event's deadlineMs.
	ErrInvokeTimeout = errors.New("extension did not call /event/next before the invoke deadline")
	// ErrShutdownOverrun: the extension was still running at the SHUTDOWN
	// event's deadlineMs and was killed.
	ErrShutdownOverrun = errors.New("extension overran the shutdown deadline")
	// ErrExitStatus: the extension exited with a non-zero status after SHUTDOWN.
	ErrExitStatus = errors.New("extension exited with a non-zero status")
	// ErrExitError: the extension called /exit/error.
	ErrExitError = errors.New("extension reported an exit error")
)

// Config says what to run and how. Zero durations take their defaults.
type Config struct {
	// ExtensionPath is the extension executable. Like Lambda, which starts
	// every file in /opt/extensions, the emulator requires the extension to
	// register under the executable's file name (its basename).
	ExtensionPath string
	// Env is extra environment for the extension, "KEY=value" entries that win
	// over the emulator's own. Nothing else of the caller's environment is
	// passed on except PATH: credentials, endpoints and the like must be given
	// here explicitly. GORACE is atexit_sleep_ms=0 unless set here, so a
	// -race build exits as promptly as a Lambda binary.
	Env      []string
	Scenario *Scenario
	// Region is AWS_REGION and AWS_DEFAULT_REGION; default "eu-west-1".
	Region string
	// FunctionTimeout sets each INVOKE's deadlineMs (now + FunctionTimeout)
	// and bounds how long the extension may take to call /event/next again;
	// default 3s.
	FunctionTimeout time.Duration
	// InitTimeout bounds register, the optional subscription and the first
	// /event/next; default 10s, Lambda's on-demand init limit.
	InitTimeout time.Duration
	// ShutdownTimeout sets the SHUTDOWN deadlineMs; the extension must have
	// exited by then or it is killed (SIGKILL); default 2s, Lambda's budget
	// with one external extension.
	ShutdownTimeout time.Duration
	// Redeliver lists batch indexes that are POSTed a second time right after
	// each successful delivery, as Lambda does when an acknowledgement is
	// lost.
	Redeliver []int
	// Order is the sequence of batch POSTs by batch index; nil means every
	// batch once, in order. Slot k of Order is delivered during invocation k,
	// the slots beyond the invocations during shutdown. An index may appear
	// more than once (a late redelivery) or not at all. For example, with
	// four invocations and five batches, {1, 0, 2, 4, 3, 2} delivers batch 1
	// before batch 0, batch 4 during the last invocation, then at shutdown
	// batch 3 and batch 2 again. Reordered builds adjacent swaps.
	Order []int
	// BeforeInvoke, when set, is called with k (from 0) before invocation k
	// starts, and with len(Scenario.Invocations) before SHUTDOWN; tests use
	// it to change the world between invocations.
	BeforeInvoke func(k int)
	// ManagedInstances emulates Lambda Managed Instances: /register with
	// INVOKE is refused (403 Extension.InvalidEventType; the extension stays
	// unregistered and may register again for SHUTDOWN only), the
	// subscription must use schema 2025-01-29 (400 otherwise), and
	// AWS_LAMBDA_INITIALIZATION_TYPE is lambda-managed-instances. No INVOKE
	// is handed out: slot k of Order is delivered at step k, BatchInterval
	// apart, while the extension waits in /event/next; then SHUTDOWN.
	// BeforeInvoke is still called before each step and before SHUTDOWN.
	ManagedInstances bool
	// BatchInterval is the pause after each step's delivery in
	// ManagedInstances mode; default 50ms.
	BatchInterval time.Duration
	// TelemetryNotSupported answers the subscription 202 Telemetry.NotSupported,
	// as the Runtime Interface Emulator and SAM local do; nothing is delivered.
	TelemetryNotSupported bool
	// Stdout and Stderr receive the extension's output; nil discards it.
	Stdout, Stderr io.Writer
	// Logger receives the emulator's own log; nil discards it.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.ExtensionPath == "" {
		return c, errors.New("lambdaemu: Config.ExtensionPath is empty")
	}
	if c.Scenario == nil {
		return c, errors.New("lambdaemu: Config.Scenario is nil")
	}
	if err := c.Scenario.validate(); err != nil {
		return c, fmt.Errorf("lambdaemu: scenario: %w", err)
	}
	for _, i := range c.Redeliver {
		if i < 0 || i >= len(c.Scenario.Batches) {
			return c, fmt.Errorf("lambdaemu: Config.Redeliver: no batch %d (scenario has %d)", i, len(c.Scenario.Batches))
		}
	}
	for _, i := range c.Order {
		if i < 0 || i >= len(c.Scenario.Batches) {
			return c, fmt.Errorf("lambdaemu: Config.Order: no batch %d (scenario has %d)", i, len(c.Scenario.Batches))
		}
	}
	if c.Order == nil {
		c.Order = make([]int, len(c.Scenario.Batches))
		for i := range c.Order {
			c.Order[i] = i
		}
	}
	if c.Region == "" {
		c.Region = "eu-west-1"
	}
	if c.FunctionTimeout <= 0 {
		c.FunctionTimeout = 3 * time.Second
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 2 * time.Second
	}
	if c.BatchInterval <= 0 {
		c.BatchInterval = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Result is what happened. Run returns it whenever the extension was
// started, also together with an error.
type Result struct {
	// ExtensionName is the name the extension registered with; "" if it
	// never registered.
	ExtensionName string
	// Events are the event types it registered for (INVOKE, SHUTDOWN).
	Events []string
	// Subscription is the body of the Telemetry API subscription that was
	// accepted (200) or declined as not supported (202); nil if none was.
	Subscription json.RawMessage
	// SubscribeStatus is 200, 202, or 0 without such a subscription.
	SubscribeStatus int
	// Delivered counts successful batch POSTs, redeliveries included.
	Delivered int
	// Failed counts batches given up on: every retry failed, or the
	// environment ended first.
	Failed int
	// Skipped counts batches not delivered because nothing was subscribed.
	Skipped int
	// Retries counts failed POST attempts, retried or not.
	Retries int
	// ExitCode is the extension's exit status; -1 if it was killed by a signal.
	ExitCode int
	// InitErrors and ExitErrors are the Lambda-Extension-Function-Error-Type
	// values of /init/error and /exit/error calls.
	InitErrors, ExitErrors []string
	// RegisterRefused counts registrations refused for asking for INVOKE
	// (ManagedInstances).
	RegisterRefused int
	// ShutdownDuration runs from handing out SHUTDOWN to the process's exit
	// (or its kill); zero if SHUTDOWN was never handed out.
	ShutdownDuration time.Duration
}

// Run emulates one execution environment for cfg.Scenario:
//
//  1. Init: starts the extension (environment as documented on Config.Env
//     plus AWS_LAMBDA_RUNTIME_API, AWS_REGION, AWS_DEFAULT_REGION,
//     AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION,
//     AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_INITIALIZATION_TYPE=on-demand, or
//     lambda-managed-instances with Config.ManagedInstances)
//     and waits for register and the first /event/next.
//  2. Invoke, for each invocation k: hands out INVOKE, POSTs batch k (slot
//     k of Config.Order) to the subscribed listener meanwhile, and goes on
//     only once both the delivery is over and the extension is back in
//     /event/next (the environment freezes then in Lambda). An extension
//     registered without INVOKE gets only the deliveries.
//  3. Shutdown: hands out SHUTDOWN (reason "spindown"), POSTs the remaining
//     batches (slots), and waits for the process to exit by the deadline.
//     Further /event/next calls are never answered. An extension registered
//     without SHUTDOWN is killed once the batches are out.
//
// Errors wrap the Err* variables of this package; a cancelled ctx kills the
// extension and returns ctx.Err() wrapped. Delivery failures are retried,
// logged and counted in Result, never returned.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fn := cfg.Scenario.function()
	a := newAPI(filepath.Base(cfg.ExtensionPath), fn, cfg.TelemetryNotSupported, cfg.Logger)
	a.managedInstances = cfg.ManagedInstances

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdaemu: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second, // no WriteTimeout: /event/next blocks
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		a.close() // releases parked /event/next handlers before the server closes
		_ = srv.Close()
	}()

	// Not exec.CommandContext: ctx cancellation is handled in run, which also
	// kills the process group.
	cmd := exec.Command(cfg.ExtensionPath)
	cmd.Env = childEnv(cfg, fn, ln.Addr().String())
	cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr
	cmd.WaitDelay = time.Second // a grandchild holding the output pipes must not stall Wait
	p, err := startProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("lambdaemu: start extension: %w", err)
	}
	cfg.Logger.Info("extension started", "path", cfg.ExtensionPath, "pid", cmd.Process.Pid, "runtimeAPI", ln.Addr().String())

	e := &emulator{cfg: cfg, fn: fn, api: a, proc: p, deliverer: newDeliverer(cfg.Logger), res: &Result{}}
	defer e.deliverer.close()
	err = e.run(ctx)
	p.kill() // no-op when it exited already
	e.finish()
	return e.res, err
}

// childEnv is the extension's whole environment: the variables Lambda sets
// for extensions, PATH, GORACE=atexit_sleep_ms=0, then cfg.Env. exec.Cmd
// keeps the last value of a duplicated key, so cfg.Env wins.
func childEnv(cfg Config, fn Function, runtimeAPI string) []string {
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_REGION=" + cfg.Region,
		"AWS_DEFAULT_REGION=" + cfg.Region,
		"AWS_LAMBDA_FUNCTION_NAME=" + fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=" + fn.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(fn.MemorySizeMB),
		"AWS_LAMBDA_INITIALIZATION_TYPE=" + initializationType(cfg),
	}
	if path, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+path)
	}
	// A -race build sleeps 1s at exit by default, which a Lambda binary
	// does not: it would count against the SHUTDOWN deadline.
	env = append(env, "GORACE=atexit_sleep_ms=0")
	return append(env, cfg.Env...)
}

// emulator drives one Run.
type emulator struct {
	cfg       Config
	fn        Function
	api       *api
	proc      *process
	deliverer *deliverer

	mu  sync.Mutex // guards res's delivery counters, written by delivery goroutines
	res *Result
}

func (e *emulator) run(ctx context.Context) error {
	w, err := e.awaitInit(ctx)
	if err != nil {
		return err
	}
	e.api.endInit()
	e.api.mu.Lock()
	events := slices.Clone(e.api.events)
	e.api.mu.Unlock()
	invoke, shutdown := slices.Contains(events, "INVOKE"), slices.Contains(events, "SHUTDOWN")
	e.cfg.Logger.Info("init done", "events", events)

	for k, inv := range e.cfg.Scenario.Invocations {
		phase := fmt.Sprintf("invocation %d (%s)", k+1, inv.RequestID)
		if e.cfg.BeforeInvoke != nil {
			e.cfg.BeforeInvoke(k)
		}
		deadline := time.Now().Add(e.cfg.FunctionTimeout)
		if invoke {
			w.reply <- e.invokeEvent(inv, deadline)
		}
		var slot []int
		if k < len(e.cfg.Order) {
			slot = e.cfg.Order[k : k+1]
		}
		delivered := e.deliverAsync(ctx, slot)
		if invoke {
			w, err = e.awaitNext(ctx, deadline, phase)
		}
		<-delivered // on error the process is gone, which ends retries
		if err != nil {
			return err
		}
		if e.cfg.ManagedInstances && !invoke {
			if err := e.pause(ctx, phase); err != nil {
				return err
			}
		}
		e.cfg.Logger.Debug("invocation done", "n", k+1, "requestId", inv.RequestID)
	}
	return e.shutdown(ctx, w, shutdown)
}

// awaitInit waits for the extension's first /event/next, which ends init.
func (e *emulator) awaitInit(ctx context.Context) (waiter, error) {
	timer := time.NewTimer(e.cfg.InitTimeout)
	defer timer.Stop()
	for {
		select {
		case w := <-e.api.waiting:
			return w, nil
		case <-e.api.reported:
			initErrs := e.initErrors()
			if len(initErrs) == 0 {
				continue // an /exit/error: wait for the exit itself
			}
			// Lambda resets the environment after an init error; the
			// extension gets the shutdown budget to exit.
			e.waitExit(ctx, e.cfg.ShutdownTimeout)
			return waiter{}, fmt.Errorf("%w: extension called /init/error with %s (%s)",
				ErrInitFailed, strings.Join(initErrs, ", "), e.proc.describe())
		case <-e.proc.exited:
			msg := fmt.Sprintf("extension exited before its first /event/next (%s)", e.proc.describe())
			if initErrs := e.initErrors(); len(initErrs) > 0 {
				msg += "; /init/error " + strings.Join(initErrs, ", ")
			}
			return waiter{}, fmt.Errorf("%w: %s", ErrInitFailed, msg)
		case <-timer.C:
			what := "register"
			if e.registered() {
				what = "its first /event/next"
			}
			e.proc.kill()
			return waiter{}, fmt.Errorf("%w: timed out after %s waiting for %s", ErrInitFailed, e.cfg.InitTimeout, what)
		case <-ctx.Done():
			e.proc.kill()
			return waiter{}, fmt.Errorf("lambdaemu: %w", ctx.Err())
		}
	}
}

// awaitNext waits for the extension to call /event/next again by deadline.
func (e *emulator) awaitNext(ctx context.Context, deadline time.Time, phase string) (waiter, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case w := <-e.api.waiting:
		return w, nil
	case <-e.proc.exited:
		return waiter{}, fmt.Errorf("%w: %s: %s%s", ErrExtensionExited, phase, e.proc.describe(), e.exitErrorSuffix())
	case <-timer.C:
		select {
		case w := <-e.api.waiting: // a call that raced the timer still counts
			return w, nil
		default:
		}
		e.proc.kill()
		return waiter{}, fmt.Errorf("%w: %s, function timeout %s", ErrInvokeTimeout, phase, e.cfg.FunctionTimeout)
	case <-ctx.Done():
		e.proc.kill()
		return waiter{}, fmt.Errorf("lambdaemu: %w", ctx.Err())
	}
}

func (e *emulator) shutdown(ctx context.Context, w waiter, registered bool) error {
	var rest []int
	if n := len(e.cfg.Scenario.Invocations); n < len(e.cfg.Order) {
		rest = e.cfg.Order[n:]
	}
	if e.cfg.BeforeInvoke != nil {
		e.cfg.BeforeInvoke(len(e.cfg.Scenario.Invocations))
	}
	if !registered {
		// Lambda sends SHUTDOWN only to extensions registered for it; they
		// just end with the environment.
		<-e.deliverAsync(ctx, rest)
		e.proc.kill()
		return e.exitErrorsErr()
	}

	sent := time.Now()
	deadline := sent.Add(e.cfg.ShutdownTimeout)
	w.reply <- mustJSON(map[string]any{
		"eventType":      "SHUTDOWN",
		"shutdownReason": "spindown",
		"deadlineMs":     deadline.UnixMilli(),
	})
	e.cfg.Logger.Info("SHUTDOWN handed out", "deadline", deadline)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	delivered := e.deliverAsync(dctx, rest)

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var errs []error
	select {
	case <-e.proc.exited:
	case <-timer.C:
		e.proc.kill()
		errs = append(errs, fmt.Errorf("%w (%s)", ErrShutdownOverrun, e.cfg.ShutdownTimeout))
	case <-ctx.Done():
		e.proc.kill()
		errs = append(errs, fmt.Errorf("lambdaemu: %w", ctx.Err()))
	}
	e.count(func(r *Result) { r.ShutdownDuration = e.proc.exitedAt.Sub(sent) })
	<-delivered // the process is gone: a POST under way finishes, no retries

	if len(errs) == 0 && e.proc.exitCode() != 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrExitStatus, e.proc.describe()))
	}
	if err := e.exitErrorsErr(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitExit gives the process up to d to exit, then kills it.
func (e *emulator) waitExit(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-e.proc.exited:
	case <-timer.C:
	case <-ctx.Done():
	}
	e.proc.kill()
}

// deliverAsync POSTs the batches at indexes, in order, in a goroutine; the
// returned channel is closed when it is done.
func (e *emulator) deliverAsync(ctx context.Context, indexes []int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, i := range indexes {
			e.deliver(ctx, i)
		}
	}()
	return done
}

func (e *emulator) deliver(ctx context.Context, i int) {
	if i >= len(e.cfg.Scenario.Batches) {
		return
	}
	e.api.mu.Lock()
	dest := e.api.destination
	e.api.mu.Unlock()
	if dest == nil {
		e.count(func(r *Result) { r.Skipped++ })
		e.cfg.Logger.Debug("batch not delivered: no subscription", "batch", i)
		return
	}
	times := 1
	if slices.Contains(e.cfg.Redeliver, i) {
		times = 2
	}
	for range times {
		failures, err := e.deliverer.post(ctx, dest.String(), e.cfg.Scenario.Batches[i], e.proc.exited)
		e.count(func(r *Result) { r.Retries += failures })
		if err != nil {
			e.count(func(r *Result) { r.Failed++ })
			e.cfg.Logger.Error("batch not delivered", "batch", i, "err", err)
			return
		}
		e.count(func(r *Result) { r.Delivered++ })
		e.cfg.Logger.Debug("batch delivered", "batch", i)
	}
}

func (e *emulator) count(f func(*Result)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.res)
}

func (e *emulator) invokeEvent(inv Invocation, deadline time.Time) []byte {
	return mustJSON(map[string]any{
		"eventType":          "INVOKE",
		"deadlineMs":         deadline.UnixMilli(),
		"requestId":          inv.RequestID,
		"invokedFunctionArn": fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", e.cfg.Region, accountID, e.fn.Name),
		"tracing":            map[string]string{"type": "X-Amzn-Trace-Id", "value": traceHeader(time.Now())},
	})
}

func (e *emulator) registered() bool {
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	return e.api.id != ""
}

func (e *emulator) initErrors() []string {
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	return slices.Clone(e.api.initErrors)
}

func (e *emulator) exitErrorsErr() error {
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	if len(e.api.exitErrors) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrExitError, strings.Join(e.api.exitErrors, ", "))
}

func (e *emulator) exitErrorSuffix() string {
	if err := e.exitErrorsErr(); err != nil {
		return "; " + err.Error()
	}
	return ""
}

// finish copies the API's records into the result once the process is gone.
func (e *emulator) finish() {
	a := e.api
	a.mu.Lock()
	defer a.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if a.id != "" {
		e.res.ExtensionName = a.extensionName
		e.res.Events = slices.Clone(a.events)
	}
	e.res.Subscription = a.subscription
	e.res.SubscribeStatus = a.subscribeStatus
	e.res.InitErrors = slices.Clone(a.initErrors)
	e.res.ExitErrors = slices.Clone(a.exitErrors)
	e.res.ExitCode = e.proc.exitCode()
	e.res.RegisterRefused = a.refused
}

// initializationType is AWS_LAMBDA_INITIALIZATION_TYPE.
func initializationType(cfg Config) string {
	if cfg.ManagedInstances {
		return "lambda-managed-instances"
	}
	return "on-demand"
}

// pause waits BatchInterval between the steps of ManagedInstances mode; the
// extension runs on meanwhile (the environment is never frozen there).
func (e *emulator) pause(ctx context.Context, phase string) error {
	t := time.NewTimer(e.cfg.BatchInterval)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-e.proc.exited:
		return fmt.Errorf("%w: %s: %s%s", ErrExtensionExited, phase, e.proc.describe(), e.exitErrorSuffix())
	case <-ctx.Done():
		e.proc.kill()
		return fmt.Errorf("lambdaemu: %w", ctx.Err())
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings and numbers are marshalled
	}
	return b
}

// Reordered returns the delivery order of n batches in which, for each k
// given, batch k+1 is delivered before batch k (adjacent swaps applied in
// the order given; out-of-range ones ignored), for Config.Order.
func Reordered(n int, swaps ...int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	for _, k := range swaps {
		if k >= 0 && k+1 < n {
			order[k], order[k+1] = order[k+1], order[k]
		}
	}
	return order
}
