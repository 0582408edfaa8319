package lambdaemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
)

const scenarioPath = "../../testdata/cold-start-four-invocations.json"

const extName = "fake-telemetry-ext"

// setup returns a Config running the fake extension through the bundled
// scenario, and the path of the file the extension records into.
func setup(t *testing.T, env ...string) (Config, string) {
	t.Helper()
	sc, err := LoadScenario(scenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "records.jsonl")
	logs := &harness.LogBuffer{}
	t.Cleanup(func() { // LAMBDAEMU_DEBUG=1 shows it for passing tests too
		if t.Failed() || os.Getenv("LAMBDAEMU_DEBUG") != "" {
			t.Logf("emulator log and extension output:\n%s", logs.String())
		}
	})
	return Config{
		ExtensionPath: fakeExtension(t, extName),
		// GORACE: a -race build otherwise sleeps 1s before exiting.
		Env:      append([]string{"LAMBDAEMU_FAKEEXT=1", "FAKEEXT_OUT=" + out, "GORACE=atexit_sleep_ms=0"}, env...),
		Scenario: sc,
		Stdout:   logs,
		Stderr:   logs,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, out
}

// run calls Run bounded by a generous timeout, so a broken emulator fails
// the test instead of hanging it.
func run(t *testing.T, cfg Config) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, cfg)
}

type lifecycleEvent struct {
	EventType          string `json:"eventType"`
	DeadlineMs         int64  `json:"deadlineMs"`
	RequestID          string `json:"requestId"`
	InvokedFunctionArn string `json:"invokedFunctionArn"`
	ShutdownReason     string `json:"shutdownReason"`
	Tracing            struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tracing"`
}

func events(t *testing.T, recs []record) []lifecycleEvent {
	t.Helper()
	var out []lifecycleEvent
	for _, r := range ofKind(recs, "event") {
		var ev lifecycleEvent
		if err := json.Unmarshal(r.Event, &ev); err != nil {
			t.Fatalf("event %s: %v", r.Event, err)
		}
		out = append(out, ev)
	}
	return out
}

func errorType(t *testing.T, body string) string {
	t.Helper()
	var e struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.ErrorMessage == "" {
		t.Fatalf("not an AWS error body: %q (%v)", body, err)
	}
	return e.ErrorType
}

func TestRunDeliversScenario(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_WAIT_BATCHES=6")
	cfg.Redeliver = []int{1}
	// Long enough that "the deadline lies ahead" holds on any machine.
	cfg.FunctionTimeout = time.Minute
	sc := cfg.Scenario

	start := time.Now()
	res, err := run(t, cfg)
	end := time.Now()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExtensionName != extName || !slices.Equal(res.Events, []string{"INVOKE", "SHUTDOWN"}) {
		t.Errorf("registered %q for %v, want %q for [INVOKE SHUTDOWN]", res.ExtensionName, res.Events, extName)
	}
	if res.SubscribeStatus != 200 || !json.Valid(res.Subscription) {
		t.Errorf("subscription %d %s", res.SubscribeStatus, res.Subscription)
	}
	if res.Delivered != 6 || res.Failed != 0 || res.Skipped != 0 || res.Retries != 0 {
		t.Errorf("delivered %d, failed %d, skipped %d, retries %d; want 6 (5 batches, one twice), 0, 0, 0",
			res.Delivered, res.Failed, res.Skipped, res.Retries)
	}
	if res.ExitCode != 0 || res.ShutdownDuration <= 0 {
		t.Errorf("exit code %d, shutdown took %s", res.ExitCode, res.ShutdownDuration)
	}

	recs := readRecords(t, out)
	reg := ofKind(recs, "register")
	if len(reg) != 1 || reg[0].Status != 200 {
		t.Fatalf("register: %+v", reg)
	}
	var regBody map[string]string
	if err := json.Unmarshal([]byte(reg[0].Body), &regBody); err != nil ||
		regBody["functionName"] != "orders-api" || regBody["functionVersion"] != "$LATEST" || regBody["handler"] == "" {
		t.Errorf("register body %s", reg[0].Body)
	}
	if sub := ofKind(recs, "subscribe"); len(sub) != 1 || sub[0].Status != 200 {
		t.Errorf("subscribe: %+v", sub)
	}

	evs := events(t, recs)
	if len(evs) != len(sc.Invocations)+1 {
		t.Fatalf("got %d events, want %d INVOKEs and a SHUTDOWN: %+v", len(evs), len(sc.Invocations), evs)
	}
	evRecs := ofKind(recs, "event")
	// Batches delivered before event k was handed out: the environment only
	// moves on once delivery is over.
	before := 0
	for k, inv := range sc.Invocations {
		ev := evs[k]
		if ev.EventType != "INVOKE" || ev.RequestID != inv.RequestID {
			t.Errorf("event %d: %s %s, want INVOKE %s", k, ev.EventType, ev.RequestID, inv.RequestID)
		}
		if lo, hi := start.Add(cfg.FunctionTimeout).UnixMilli(), end.Add(cfg.FunctionTimeout).UnixMilli(); ev.DeadlineMs < lo || ev.DeadlineMs > hi {
			t.Errorf("event %d: deadlineMs %d outside [%d, %d]", k, ev.DeadlineMs, lo, hi)
		}
		if ev.DeadlineMs <= evRecs[k].ReceivedMs {
			t.Errorf("event %d: deadlineMs %d not after its arrival %d", k, ev.DeadlineMs, evRecs[k].ReceivedMs)
		}
		if ev.InvokedFunctionArn != "arn:aws:lambda:eu-west-1:123456789012:function:orders-api" {
			t.Errorf("event %d: invokedFunctionArn %q", k, ev.InvokedFunctionArn)
		}
		if ev.Tracing.Type != "X-Amzn-Trace-Id" || !strings.HasPrefix(ev.Tracing.Value, "Root=1-") {
			t.Errorf("event %d: tracing %+v", k, ev.Tracing)
		}
		if evRecs[k].Batches < before {
			t.Errorf("INVOKE %d arrived after %d batches, want at least %d", k, evRecs[k].Batches, before)
		}
		before++
		if k == 1 {
			before++ // redelivered
		}
	}
	shut := evs[len(evs)-1]
	if shut.EventType != "SHUTDOWN" || shut.ShutdownReason != "spindown" {
		t.Errorf("last event %+v, want SHUTDOWN spindown", shut)
	}
	if lo, hi := start.Add(2*time.Second).UnixMilli(), end.Add(2*time.Second).UnixMilli(); shut.DeadlineMs < lo || shut.DeadlineMs > hi {
		t.Errorf("SHUTDOWN deadlineMs %d outside [%d, %d]", shut.DeadlineMs, lo, hi)
	}
	if r := evRecs[len(evRecs)-1]; r.Batches < before {
		t.Errorf("SHUTDOWN arrived after %d batches, want at least %d", r.Batches, before)
	}

	batches := ofKind(recs, "batch")
	want := [][]byte{sc.Batches[0], sc.Batches[1], sc.Batches[1], sc.Batches[2], sc.Batches[3], sc.Batches[4]}
	if len(batches) != len(want) {
		t.Fatalf("listener got %d batches, want %d", len(batches), len(want))
	}
	for i, b := range batches {
		if !bytes.Equal([]byte(b.Body), want[i]) {
			t.Errorf("POST %d is not the scenario batch verbatim:\n%s", i, b.Body)
		}
		// Host header keeps the name Lambda uses; the body is JSON.
		if !strings.HasPrefix(b.Host, sandboxHost+":") || !strings.HasSuffix(b.Host, " application/json") {
			t.Errorf("POST %d: Host and Content-Type %q", i, b.Host)
		}
	}
}

func TestRunChildEnvironment(t *testing.T) {
	t.Setenv("LAMBDAEMU_CANARY", "must not leak")
	cfg, out := setup(t, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE")
	cfg.Region = "us-east-2"
	if _, err := run(t, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	envs := ofKind(readRecords(t, out), "env")
	if len(envs) != 1 {
		t.Fatalf("env records: %d", len(envs))
	}
	got := map[string]string{}
	for _, kv := range envs[0].Env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	want := map[string]string{
		"AWS_REGION":                      "us-east-2",
		"AWS_DEFAULT_REGION":              "us-east-2",
		"AWS_LAMBDA_FUNCTION_NAME":        "orders-api",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", // cfg.Env wins over the scenario's 512
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_ACCESS_KEY_ID":               "AKIDEXAMPLE",
		"PATH":                            os.Getenv("PATH"),
		"LAMBDAEMU_FAKEEXT":               "1",
		"FAKEEXT_OUT":                     out,
		"GORACE":                          "atexit_sleep_ms=0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(got["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API=%q", got["AWS_LAMBDA_RUNTIME_API"])
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "AWS_LAMBDA_RUNTIME_API" {
			t.Errorf("unexpected variable %s reached the extension", k)
		}
	}
}

func TestRunTelemetryNotSupported(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t)
	cfg.TelemetryNotSupported = true
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.SubscribeStatus != 202 || res.Delivered != 0 || res.Skipped != len(cfg.Scenario.Batches) {
		t.Errorf("status %d, delivered %d, skipped %d; want 202, 0, %d", res.SubscribeStatus, res.Delivered, res.Skipped, len(cfg.Scenario.Batches))
	}
	recs := readRecords(t, out)
	sub := ofKind(recs, "subscribe")
	if len(sub) != 1 || sub[0].Status != 202 || errorType(t, sub[0].Body) != "Telemetry.NotSupported" {
		t.Errorf("subscribe: %+v", sub)
	}
	if n := len(ofKind(recs, "batch")); n != 0 {
		t.Errorf("listener got %d batches, want none", n)
	}
	if evs := events(t, recs); len(evs) != len(cfg.Scenario.Invocations)+1 {
		t.Errorf("got %d events, want the invocations and SHUTDOWN anyway", len(evs))
	}
}

func TestRunWithoutSubscription(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_SUBSCRIBE=0")
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.SubscribeStatus != 0 || res.Subscription != nil || res.Skipped != len(cfg.Scenario.Batches) || res.Delivered != 0 {
		t.Errorf("result %+v, want every batch skipped", res)
	}
	if evs := events(t, readRecords(t, out)); len(evs) != len(cfg.Scenario.Invocations)+1 {
		t.Errorf("got %d events", len(evs))
	}
}

func TestRunRejectedSubscription(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, `FAKEEXT_SUBSCRIPTION={"schemaVersion":"2022-12-13","types":["platform"],`+
		`"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:9001"}}`)
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v (a refused subscription is the extension's business)", err)
	}
	sub := ofKind(readRecords(t, out), "subscribe")
	if len(sub) != 1 || sub[0].Status != 400 || errorType(t, sub[0].Body) != errTypeValidation || !strings.Contains(sub[0].Body, "9001") {
		t.Errorf("subscribe: %+v", sub)
	}
	if res.SubscribeStatus != 0 || res.Skipped != len(cfg.Scenario.Batches) {
		t.Errorf("status %d, skipped %d", res.SubscribeStatus, res.Skipped)
	}
}

func TestRunRetriesFailedDelivery(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_FAIL_FIRST=1", "FAKEEXT_WAIT_BATCHES=5")
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Delivered != 5 || res.Retries != 1 || res.Failed != 0 {
		t.Errorf("delivered %d, retries %d, failed %d; want 5, 1, 0", res.Delivered, res.Retries, res.Failed)
	}
	recs := readRecords(t, out)
	rejected := ofKind(recs, "batch-rejected")
	if len(rejected) != 1 || rejected[0].Body != string(cfg.Scenario.Batches[0]) {
		t.Fatalf("rejected POSTs: %d", len(rejected))
	}
	batches := ofKind(recs, "batch")
	if len(batches) != 5 {
		t.Fatalf("listener accepted %d batches, want 5", len(batches))
	}
	for i, b := range batches {
		if b.Body != string(cfg.Scenario.Batches[i]) {
			t.Errorf("accepted POST %d is not batch %d", i, i)
		}
	}
}

func TestRunShutdownOverrun(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_MODE=hang")
	cfg.ShutdownTimeout = 300 * time.Millisecond
	res, err := run(t, cfg)
	if !errors.Is(err, ErrShutdownOverrun) || !strings.Contains(err.Error(), "extension overran the shutdown deadline") {
		t.Fatalf("Run: %v, want ErrShutdownOverrun", err)
	}
	if res.ExitCode != -1 {
		t.Errorf("exit code %d, want -1 (killed)", res.ExitCode)
	}
	if res.ShutdownDuration < cfg.ShutdownTimeout {
		t.Errorf("killed after %s, before the %s deadline", res.ShutdownDuration, cfg.ShutdownTimeout)
	}
	recs := readRecords(t, out)
	if after := ofKind(recs, "after-shutdown"); len(after) != 0 {
		t.Errorf("/event/next answered after SHUTDOWN: %+v", after)
	}
	assertGone(t, recs[0].Pid)
}

func TestRunNonZeroExit(t *testing.T) {
	t.Parallel()
	cfg, _ := setup(t, "FAKEEXT_MODE=exit1")
	res, err := run(t, cfg)
	if !errors.Is(err, ErrExitStatus) {
		t.Fatalf("Run: %v, want ErrExitStatus", err)
	}
	if res.ExitCode != 1 {
		t.Errorf("exit code %d, want 1", res.ExitCode)
	}
}

func TestRunExitError(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_MODE=exiterror")
	res, err := run(t, cfg)
	if !errors.Is(err, ErrExitError) || errors.Is(err, ErrExitStatus) || !strings.Contains(err.Error(), "Extension.Crash") {
		t.Fatalf("Run: %v, want only ErrExitError naming Extension.Crash", err)
	}
	if !slices.Equal(res.ExitErrors, []string{"Extension.Crash"}) || res.ExitCode != 0 {
		t.Errorf("exit errors %v, exit code %d", res.ExitErrors, res.ExitCode)
	}
	if r := ofKind(readRecords(t, out), "exit-error"); len(r) != 1 || r[0].Status != 202 {
		t.Errorf("/exit/error answer: %+v", r)
	}
}

func TestRunInitError(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_MODE=initerror")
	res, err := run(t, cfg)
	if !errors.Is(err, ErrInitFailed) || !strings.Contains(err.Error(), "Extension.ConfigInvalid") {
		t.Fatalf("Run: %v, want ErrInitFailed naming Extension.ConfigInvalid", err)
	}
	if !slices.Equal(res.InitErrors, []string{"Extension.ConfigInvalid"}) {
		t.Errorf("init errors %v", res.InitErrors)
	}
	if evs := ofKind(readRecords(t, out), "event"); len(evs) != 0 {
		t.Errorf("events handed out after an init error: %+v", evs)
	}
}

func TestRunWrongExtensionName(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_NAME=somebody-else")
	res, err := run(t, cfg)
	if !errors.Is(err, ErrInitFailed) {
		t.Fatalf("Run: %v, want ErrInitFailed", err)
	}
	reg := ofKind(readRecords(t, out), "register")
	if len(reg) != 1 || reg[0].Status != 403 || errorType(t, reg[0].Body) != errTypeInvalidName {
		t.Errorf("register: %+v", reg)
	}
	if res.ExtensionName != "" || res.ExitCode != 3 {
		t.Errorf("name %q, exit code %d", res.ExtensionName, res.ExitCode)
	}
}

func TestRunInitTimeout(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_MODE=stall")
	cfg.InitTimeout = 300 * time.Millisecond
	_, err := run(t, cfg)
	if !errors.Is(err, ErrInitFailed) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Run: %v, want an init timeout", err)
	}
	assertGone(t, readRecords(t, out)[0].Pid)
}

func TestRunContextCancelled(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_MODE=stall")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want context.DeadlineExceeded", err)
	}
	if recs := readRecords(t, out); len(recs) > 0 {
		assertGone(t, recs[0].Pid)
	}
}

func TestRunConfigErrors(t *testing.T) {
	t.Parallel()
	sc, err := LoadScenario(scenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"no path":        {Scenario: sc},
		"no scenario":    {ExtensionPath: "/bin/true"},
		"bad redelivery": {ExtensionPath: "/bin/true", Scenario: sc, Redeliver: []int{len(sc.Batches)}},
	} {
		if res, err := Run(context.Background(), cfg); err == nil || res != nil {
			t.Errorf("%s: Run = %v, %v; want an error and no result", name, res, err)
		}
	}
}

func TestLoadScenario(t *testing.T) {
	t.Parallel()
	sc, err := LoadScenario(scenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Function.Name != "orders-api" || sc.Function.MemorySizeMB != 512 || len(sc.Invocations) != 4 || len(sc.Batches) != 5 {
		t.Errorf("scenario %+v", sc.Function)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":        `{`,
		"no name":         `{"function":{},"invocations":[],"batches":[]}`,
		"no request id":   `{"function":{"name":"f"},"invocations":[{}],"batches":[]}`,
		"batch no array":  `{"function":{"name":"f"},"invocations":[],"batches":[{"type":"x"}]}`,
		"missing a file!": "",
	} {
		path := filepath.Join(dir, strconv.Quote(name))
		if body != "" {
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := LoadScenario(path); err == nil {
			t.Errorf("%s: LoadScenario accepted it", name)
		}
	}
}
