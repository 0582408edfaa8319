package extension

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testID = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"

// fakeAPI is an Extensions API on 127.0.0.1 that records every request.
type fakeAPI struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recorded
	// answer writes the answer to one request.
	answer func(w http.ResponseWriter, r *http.Request)
}

type recorded struct {
	method, path string
	header       http.Header
	body         string
}

func newFakeAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*fakeAPI, *Client) {
	t.Helper()
	f := &fakeAPI{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), string(body)})
		f.mu.Unlock()
		f.answer(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f, NewClient(strings.TrimPrefix(f.srv.URL, "http://"), nil)
}

func (f *fakeAPI) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		f.t.Fatal("no request reached the server")
	}
	return f.reqs[len(f.reqs)-1]
}

// lambdaAnswers mimics the Lambda service for the happy path.
func lambdaAnswers(event string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/2020-01-01/extension/register":
			w.Header().Set("Lambda-Extension-Identifier", testID)
			_, _ = io.WriteString(w, `{"functionName":"orders-api","functionVersion":"$LATEST","handler":"bootstrap","accountId":"123456789012"}`)
		case "/2020-01-01/extension/event/next":
			w.Header().Set("Lambda-Extension-Event-Identifier", "ev-1")
			_, _ = io.WriteString(w, event)
		case "/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"status":"OK"}`)
		default:
			http.NotFound(w, r)
		}
	}
}

func register(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Register(context.Background(), "prometheus-lambda", Invoke, Shutdown); err != nil {
		t.Fatalf("Register: %v", err)
	}
}

func TestRegister(t *testing.T) {
	f, c := newFakeAPI(t, lambdaAnswers(""))
	if c.ExtensionID() != "" {
		t.Fatalf("ExtensionID before Register = %q, want empty", c.ExtensionID())
	}
	resp, err := c.Register(context.Background(), "prometheus-lambda", Invoke, Shutdown)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	want := RegisterResponse{FunctionName: "orders-api", FunctionVersion: "$LATEST", Handler: "bootstrap", AccountID: "123456789012"}
	if *resp != want {
		t.Errorf("response = %+v, want %+v", *resp, want)
	}
	if got := c.ExtensionID(); got != testID {
		t.Errorf("ExtensionID = %q, want %q", got, testID)
	}
	r := f.last()
	if r.method != http.MethodPost || r.path != "/2020-01-01/extension/register" {
		t.Errorf("request = %s %s, want POST /2020-01-01/extension/register", r.method, r.path)
	}
	if got := r.header.Get("Lambda-Extension-Name"); got != "prometheus-lambda" {
		t.Errorf("Lambda-Extension-Name = %q", got)
	}
	if got := r.header.Get("Lambda-Extension-Accept-Feature"); got != "accountId" {
		t.Errorf("Lambda-Extension-Accept-Feature = %q", got)
	}
	var body struct{ Events []string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if strings.Join(body.Events, ",") != "INVOKE,SHUTDOWN" {
		t.Errorf("body = %s, want events INVOKE,SHUTDOWN", r.body)
	}
}

func TestRegisterRejectsPathAsName(t *testing.T) {
	f, c := newFakeAPI(t, lambdaAnswers(""))
	for _, name := range []string{"", "/opt/extensions/prometheus-lambda"} {
		if _, err := c.Register(context.Background(), name, Invoke); err == nil {
			t.Errorf("Register(%q) succeeded, want an error", name)
		}
	}
	if len(f.reqs) != 0 {
		t.Errorf("%d requests sent, want none", len(f.reqs))
	}
}

func TestRegisterWithoutIdentifier(t *testing.T) {
	_, c := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"functionName":"f"}`)
	})
	if _, err := c.Register(context.Background(), "x", Invoke); err == nil {
		t.Fatal("Register succeeded without an identifier header")
	}
}

func TestRegisterForbidden(t *testing.T) {
	_, c := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errorMessage":"Extension name does not match a file in /opt/extensions","errorType":"Extension.Unknown"}`)
	})
	_, err := c.Register(context.Background(), "x", Invoke)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	want := APIError{StatusCode: 403, ErrorType: "Extension.Unknown", Message: "Extension name does not match a file in /opt/extensions"}
	if *apiErr != want {
		t.Errorf("APIError = %+v, want %+v", *apiErr, want)
	}
	for _, part := range []string{"403", "Forbidden", "Extension.Unknown", "does not match"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
}

func TestAPIErrorPlainBody(t *testing.T) {
	_, c := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream broke", http.StatusInternalServerError)
	})
	_, err := c.NextEvent(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if apiErr.StatusCode != 500 || apiErr.ErrorType != "" || apiErr.Message != "upstream broke" {
		t.Errorf("APIError = %+v", *apiErr)
	}
}

func TestNextEventInvoke(t *testing.T) {
	f, c := newFakeAPI(t, lambdaAnswers(`{
		"eventType": "INVOKE",
		"deadlineMs": 1793613600312,
		"requestId": "3da1f2dc-3222-475e-9205-e2e6c6318895",
		"invokedFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
		"tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"}
	}`))
	register(t, c)
	ev, err := c.NextEvent(context.Background())
	if err != nil {
		t.Fatalf("NextEvent: %v", err)
	}
	r := f.last()
	if r.method != http.MethodGet || r.path != "/2020-01-01/extension/event/next" {
		t.Errorf("request = %s %s", r.method, r.path)
	}
	if got := r.header.Get("Lambda-Extension-Identifier"); got != testID {
		t.Errorf("identifier = %q, want %q", got, testID)
	}
	want := Event{
		EventType:          Invoke,
		DeadlineMs:         1793613600312,
		RequestID:          "3da1f2dc-3222-475e-9205-e2e6c6318895",
		InvokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
		Tracing:            Tracing{Type: "X-Amzn-Trace-Id", Value: "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"},
	}
	if *ev != want {
		t.Errorf("event = %+v\nwant    %+v", *ev, want)
	}
	if got := ev.Deadline(); !got.Equal(time.UnixMilli(1793613600312)) {
		t.Errorf("Deadline = %v", got)
	}
}

func TestNextEventShutdown(t *testing.T) {
	_, c := newFakeAPI(t, lambdaAnswers(`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1793613602000}`))
	register(t, c)
	ev, err := c.NextEvent(context.Background())
	if err != nil {
		t.Fatalf("NextEvent: %v", err)
	}
	if ev.EventType != Shutdown || ev.DeadlineMs != 1793613602000 {
		t.Errorf("event = %+v", *ev)
	}
	if !ev.ShutdownReasonIs(ShutdownSpindown) {
		t.Errorf("ShutdownReasonIs(%q) = false for %q", ShutdownSpindown, ev.ShutdownReason)
	}
	if ev.ShutdownReasonIs(ShutdownTimeout) || ev.ShutdownReasonIs(ShutdownFailure) {
		t.Errorf("reason %q matched another reason", ev.ShutdownReason)
	}
}

func TestShutdownReasonIs(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		match     bool
	}{
		{"SPINDOWN", ShutdownSpindown, true},
		{"timeout", ShutdownTimeout, true},
		{"Failure", ShutdownFailure, true},
		{"SandboxTerminated", ShutdownSandboxTerminated, true},
		{"SANDBOXTERMINATED", ShutdownSandboxTerminated, true},
		{"SPINDOWN", ShutdownTimeout, false},
		{"", ShutdownSpindown, false},
	} {
		e := Event{ShutdownReason: tc.got}
		if e.ShutdownReasonIs(tc.want) != tc.match {
			t.Errorf("Event{%q}.ShutdownReasonIs(%q) = %v", tc.got, tc.want, !tc.match)
		}
	}
}

func TestDeadlineUnset(t *testing.T) {
	if d := (&Event{}).Deadline(); !d.IsZero() {
		t.Errorf("Deadline of an event without deadlineMs = %v, want zero", d)
	}
}

func TestErrorReports(t *testing.T) {
	cause := errors.New(`config: "PROM_LAMBDA_URL" is not a URL`)
	for _, tc := range []struct {
		path string
		call func(*Client) error
	}{
		{"/2020-01-01/extension/init/error", func(c *Client) error {
			return c.InitError(context.Background(), "Extension.ConfigInvalid", cause)
		}},
		{"/2020-01-01/extension/exit/error", func(c *Client) error {
			// The prefix is added when the caller leaves it out.
			return c.ExitError(context.Background(), "ConfigInvalid", cause)
		}},
	} {
		f, c := newFakeAPI(t, lambdaAnswers(""))
		register(t, c)
		if err := tc.call(c); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		r := f.last()
		if r.method != http.MethodPost || r.path != tc.path {
			t.Errorf("request = %s %s, want POST %s", r.method, r.path, tc.path)
		}
		if got := r.header.Get("Lambda-Extension-Identifier"); got != testID {
			t.Errorf("%s: identifier = %q", tc.path, got)
		}
		if got := r.header.Get("Lambda-Extension-Function-Error-Type"); got != "Extension.ConfigInvalid" {
			t.Errorf("%s: error type header = %q", tc.path, got)
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatalf("%s: body %q: %v", tc.path, r.body, err)
		}
		if body["errorType"] != "Extension.ConfigInvalid" || body["errorMessage"] != cause.Error() || len(body) != 2 {
			t.Errorf("%s: body = %v", tc.path, body)
		}
	}
}

func TestExitErrorRejected(t *testing.T) {
	_, c := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errorMessage":"missing header","errorType":"InvalidRequest"}`)
	})
	err := c.ExitError(context.Background(), "Extension.Crash", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.ErrorType != "InvalidRequest" {
		t.Fatalf("err = %v, want *APIError 400 InvalidRequest", err)
	}
}

func TestNewClientHasNoTimeout(t *testing.T) {
	if c := NewClient("127.0.0.1:9001", nil); c.http.Timeout != 0 {
		t.Errorf("default client timeout = %v, want none", c.http.Timeout)
	}
}

// NextEvent must wait for as long as the server does: the server holds the
// answer until the test releases it, so the call cannot have returned before.
func TestNextEventBlocksUntilAnswered(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	_, c := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/2020-01-01/extension/event/next" {
			lambdaAnswers("")(w, r)
			return
		}
		arrived <- struct{}{}
		select {
		case <-release:
			_, _ = io.WriteString(w, `{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":1}`)
		case <-r.Context().Done():
		}
	})
	register(t, c)

	type result struct {
		ev  *Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := c.NextEvent(context.Background())
		done <- result{ev, err}
	}()
	<-arrived
	select {
	case r := <-done:
		t.Fatalf("NextEvent returned before the server answered: %+v", r)
	default:
	}
	close(release)
	r := <-done
	if r.err != nil || r.ev.EventType != Shutdown {
		t.Fatalf("NextEvent = %+v, %v", r.ev, r.err)
	}
}

func TestNextEventCancelled(t *testing.T) {
	arrived := make(chan struct{}, 1)
	_, c := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.NextEvent(ctx)
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
