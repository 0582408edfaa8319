// Package extension is a client for the AWS Lambda Extensions API, which an
// external extension uses to register, wait for INVOKE and SHUTDOWN events and
// report fatal errors.
//
// It follows the AWS Lambda developer guide, "Extensions API"
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html).
package extension

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTP headers of the Extensions API.
const (
	headerName        = "Lambda-Extension-Name"
	headerIdentifier  = "Lambda-Extension-Identifier"
	headerErrorType   = "Lambda-Extension-Function-Error-Type"
	headerAcceptFeat  = "Lambda-Extension-Accept-Feature"
	featureAccountID  = "accountId"
	errorTypePrefix   = "Extension."
	maxResponseBytes  = 1 << 20 // events and register answers are a few hundred bytes
	maxErrorBodyBytes = 4 << 10 // enough for an AWS error document; longer bodies are cut
)

// EventType is the type of a lifecycle event an extension registers for and
// receives from NextEvent.
type EventType string

// Lifecycle events. On Lambda Managed Instances an external extension may
// register for Shutdown only.
const (
	Invoke   EventType = "INVOKE"
	Shutdown EventType = "SHUTDOWN"
)

// Shutdown reasons as the Lambda service spells them. Emulators use other
// spellings (spindown, SandboxTerminated): compare with Event.ShutdownReasonIs,
// never with ==.
const (
	ShutdownSpindown          = "SPINDOWN"
	ShutdownTimeout           = "TIMEOUT"
	ShutdownFailure           = "FAILURE"
	ShutdownSandboxTerminated = "SandboxTerminated" // sent by local runtime emulators
)

// Client talks to the Extensions API of one execution environment. Register
// must complete before the other methods are called; after that the methods
// may be called from several goroutines.
type Client struct {
	baseURL string
	http    *http.Client
	id      string
}

// NewClient returns a client for the Extensions API at runtimeAPI, the
// host:port found in the AWS_LAMBDA_RUNTIME_API environment variable; the base
// URL is http://<runtimeAPI>/2020-01-01/extension.
//
// A nil httpClient selects a client with no timeout: NextEvent blocks until
// Lambda has an event, which may take any time, and the execution environment
// may be frozen meanwhile. A caller-supplied client must not set Timeout
// either; bound calls with their context instead.
func NewClient(runtimeAPI string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{
		baseURL: "http://" + runtimeAPI + "/2020-01-01/extension",
		http:    httpClient,
	}
}

// RegisterResponse is the body Lambda answers a registration with. AccountID
// is set only when Lambda honours the accountId feature the client asks for.
type RegisterResponse struct {
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	AccountID       string `json:"accountId"`
}

// Register registers the extension for events (POST /register) and stores the
// Lambda-Extension-Identifier that every later call sends.
//
// name is sent as Lambda-Extension-Name and must be the file name of the
// extension's executable, exactly as it lies in /opt/extensions/: callers pass
// filepath.Base(os.Args[0]). Lambda refuses other names. Register fails
// without a request when name is empty or contains a slash.
//
// A non-2xx answer is returned as *APIError.
func (c *Client) Register(ctx context.Context, name string, events ...EventType) (*RegisterResponse, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("extension: register: name %q is not an executable's base name", name)
	}
	body, err := json.Marshal(struct {
		Events []EventType `json:"events"`
	}{events})
	if err != nil {
		return nil, fmt.Errorf("extension: register: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/register", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("extension: register: %w", err)
	}
	req.Header.Set(headerName, name)
	req.Header.Set(headerAcceptFeat, featureAccountID)
	req.Header.Set("Content-Type", "application/json")

	var out RegisterResponse
	resp, err := c.do(req, &out)
	if err != nil {
		return nil, fmt.Errorf("extension: register: %w", err)
	}
	id := resp.Header.Get(headerIdentifier)
	if id == "" {
		return nil, errors.New("extension: register: answer carries no " + headerIdentifier + " header")
	}
	c.id = id
	return &out, nil
}

// ExtensionID returns the identifier Lambda assigned at Register, or "" before.
func (c *Client) ExtensionID() string { return c.id }

// Tracing is the X-Ray trace context of an INVOKE event.
type Tracing struct {
	Type  string `json:"type"`  // "X-Amzn-Trace-Id"
	Value string `json:"value"` // e.g. "Root=1-…;Parent=…;Sampled=1"
}

// Event is one lifecycle event returned by NextEvent.
type Event struct {
	EventType EventType `json:"eventType"`
	// DeadlineMs is the Unix time in milliseconds by which the invocation
	// (INVOKE) or the shutdown (SHUTDOWN) must be finished.
	DeadlineMs         int64  `json:"deadlineMs"`
	RequestID          string `json:"requestId"`          // INVOKE only
	InvokedFunctionArn string `json:"invokedFunctionArn"` // INVOKE only
	// ShutdownReason (SHUTDOWN only) is an open string: compare it with
	// ShutdownReasonIs.
	ShutdownReason string  `json:"shutdownReason"`
	Tracing        Tracing `json:"tracing"` // INVOKE only
}

// Deadline returns DeadlineMs as a time, or the zero time when it is unset.
func (e *Event) Deadline() time.Time {
	if e.DeadlineMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.DeadlineMs)
}

// ShutdownReasonIs reports whether the event's shutdown reason is reason,
// ignoring case: Lambda sends "SPINDOWN", emulators "spindown".
func (e *Event) ShutdownReasonIs(reason string) bool {
	return strings.EqualFold(e.ShutdownReason, reason)
}

// NextEvent blocks until Lambda delivers the next event (GET /event/next).
// Calling it tells Lambda the extension has finished its work for the current
// event: the execution environment may be frozen while it waits. It returns
// when ctx is done, with ctx's error wrapped.
func (c *Client) NextEvent(ctx context.Context) (*Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/event/next", nil)
	if err != nil {
		return nil, fmt.Errorf("extension: next event: %w", err)
	}
	req.Header.Set(headerIdentifier, c.id)
	var ev Event
	if _, err := c.do(req, &ev); err != nil {
		return nil, fmt.Errorf("extension: next event: %w", err)
	}
	return &ev, nil
}

// InitError reports that the extension failed to initialise (POST
// /init/error). Lambda then fails the init phase; the extension should exit
// afterwards. See reportError for errorType and cause.
func (c *Client) InitError(ctx context.Context, errorType string, cause error) error {
	if err := c.reportError(ctx, "/init/error", errorType, cause); err != nil {
		return fmt.Errorf("extension: init error: %w", err)
	}
	return nil
}

// ExitError reports that the extension is about to exit on a failure (POST
// /exit/error); Lambda resets the execution environment.
//
// errorType is sent as Lambda-Extension-Function-Error-Type and must have the
// form Extension.<Reason> (e.g. "Extension.ConfigInvalid"); the
// "Extension." prefix is added when missing. cause's message becomes the
// errorMessage of the JSON body; cause may be nil.
func (c *Client) ExitError(ctx context.Context, errorType string, cause error) error {
	if err := c.reportError(ctx, "/exit/error", errorType, cause); err != nil {
		return fmt.Errorf("extension: exit error: %w", err)
	}
	return nil
}

func (c *Client) reportError(ctx context.Context, path, errorType string, cause error) error {
	if !strings.HasPrefix(errorType, errorTypePrefix) {
		errorType = errorTypePrefix + errorType
	}
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	body, err := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, errorType})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(headerIdentifier, c.id)
	req.Header.Set(headerErrorType, errorType)
	req.Header.Set("Content-Type", "application/json")
	_, err = c.do(req, nil)
	return err
}

// do sends req, turns a non-2xx answer into *APIError and decodes a 2xx body
// into out unless out is nil. The body is always drained and closed so the
// connection is reused.
func (c *Client) do(req *http.Request, out any) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, newAPIError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
			return resp, fmt.Errorf("decoding answer: %w", err)
		}
	}
	return resp, nil
}

// APIError is a non-2xx answer of the Lambda runtime API's Extensions API
// (and of its Telemetry API: telemetryapi.SubscribeError is this type).
// ErrorType and Message come from the AWS JSON error body
// {"errorType","errorMessage"} when there is one; otherwise Message holds the
// (possibly truncated) body text.
type APIError struct {
	StatusCode int
	ErrorType  string // e.g. "Extension.Unknown"; may be empty
	Message    string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("Lambda API answered ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.ErrorType != "" {
		b.WriteString(": " + e.ErrorType)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func newAPIError(resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	return ParseAPIError(resp.StatusCode, body)
}

// ParseAPIError builds the APIError of an answer with statusCode and body:
// errorType and errorMessage from an AWS JSON error body, or else the
// trimmed body as the message.
func ParseAPIError(statusCode int, body []byte) *APIError {
	e := &APIError{StatusCode: statusCode}
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &doc) == nil && (doc.ErrorType != "" || doc.ErrorMessage != "") {
		e.ErrorType, e.Message = doc.ErrorType, doc.ErrorMessage
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	return e
}
