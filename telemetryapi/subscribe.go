// Package telemetryapi implements the consumer side of the AWS Lambda
// Telemetry API: subscribing an extension (Subscribe), receiving the batches
// Lambda POSTs (Listener) and decoding their records (Event.DecodeRecord).
//
// It follows the AWS Lambda developer guide pages "Telemetry API",
// "Telemetry API reference" and "Telemetry API Event schema reference"
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html).
package telemetryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus-lambda/prometheus-lambda/extension"
)

// Schema versions of the event records. SchemaVersionManagedInstances is
// required on Lambda Managed Instances and backward compatible elsewhere.
const (
	SchemaVersion                 = "2022-12-13"
	SchemaVersionManagedInstances = "2025-01-29"
)

// Telemetry stream types for Subscription.Types. The same strings are the
// event types of function and extension log lines (TypeFunction,
// TypeExtension).
const (
	TypesPlatform  = "platform"
	TypesFunction  = "function"
	TypesExtension = "extension"
)

// ProtocolHTTP is the only destination protocol this package serves.
const ProtocolHTTP = "HTTP"

// Buffering bounds how long and how much Lambda buffers before a POST: it
// sends a batch when any limit is reached.
type Buffering struct {
	MaxItems  int `json:"maxItems"`  // events; 1,000..10,000
	MaxBytes  int `json:"maxBytes"`  // bytes; 262,144..1,048,576
	TimeoutMs int `json:"timeoutMs"` // milliseconds; 25..30,000
}

// DefaultBuffering flushes as soon as Lambda allows. timeoutMs is the
// minimum (25 ms) rather than AWS's default 1,000 ms because the
// platform.report of the last invocation is only generated during SHUTDOWN,
// whose whole budget is 2,000 ms: every millisecond Lambda buffers it is
// taken from the time left to push the metrics. Small, frequent batches also
// keep the listener's memory low; a POST on the loopback costs little.
// maxItems and maxBytes are the minimums, which bounds a batch at 256 KiB
// (Lambda may send up to twice maxBytes).
var DefaultBuffering = Buffering{MaxItems: 1000, MaxBytes: 256 << 10, TimeoutMs: 25}

// Destination is where Lambda POSTs the batches.
type Destination struct {
	Protocol string `json:"protocol"` // ProtocolHTTP
	// URI is the listener's URL, e.g. "http://sandbox.localdomain:4243/";
	// port 9001 is reserved by Lambda.
	URI string `json:"URI"`
}

// Subscription is the body of a subscribe request.
type Subscription struct {
	SchemaVersion string      `json:"schemaVersion"`
	Types         []string    `json:"types"` // TypesPlatform, TypesFunction, TypesExtension
	Buffering     Buffering   `json:"buffering"`
	Destination   Destination `json:"destination"`
}

// NewSubscription returns a subscription of types delivered over HTTP to uri
// with SchemaVersion and DefaultBuffering.
func NewSubscription(uri string, types ...string) Subscription {
	return Subscription{
		SchemaVersion: SchemaVersion,
		Types:         types,
		Buffering:     DefaultBuffering,
		Destination:   Destination{Protocol: ProtocolHTTP, URI: uri},
	}
}

// ErrNotSupported is returned (wrapped) by Subscribe when Lambda answers
// 202 Accepted with Telemetry.NotSupported, as local runtimes and emulators
// do: callers log it once and run on without telemetry.
var ErrNotSupported = errors.New("telemetry API not supported here")

// SubscribeError is a 4xx or 5xx answer to a subscribe request: the runtime
// API's error answer, as for the Extensions API (extension.APIError). Subscribe
// returns it wrapped; use errors.As.
type SubscribeError = extension.APIError

const maxAnswerBytes = 4 << 10

// Subscribe subscribes the extension registered as extensionID (the
// Lambda-Extension-Identifier) to the telemetry streams of s: PUT
// http://<runtimeAPI>/2022-07-01/telemetry. runtimeAPI is the host:port of
// AWS_LAMBDA_RUNTIME_API; a nil httpClient means http.DefaultClient.
//
// It returns nil on 200 OK; an error wrapping ErrNotSupported, with the
// answer's message, on 202 Accepted; *SubscribeError on any other status.
// Start the listener before subscribing: Lambda may POST at once.
func Subscribe(ctx context.Context, httpClient *http.Client, runtimeAPI, extensionID string, s Subscription) error {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("telemetryapi: subscribe: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+runtimeAPI+"/2022-07-01/telemetry", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telemetryapi: subscribe: %w", err)
	}
	req.Header.Set("Lambda-Extension-Identifier", extensionID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("telemetryapi: subscribe: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes)) // let the connection be reused

	switch {
	case resp.StatusCode == http.StatusAccepted:
		e := extension.ParseAPIError(resp.StatusCode, answer)
		detail, msg := e.ErrorType, e.Message
		if msg != "" {
			if detail != "" {
				detail += ": "
			}
			detail += msg
		}
		if detail == "" {
			return fmt.Errorf("telemetryapi: subscribe: %w", ErrNotSupported)
		}
		return fmt.Errorf("telemetryapi: subscribe: %w (%s)", ErrNotSupported, detail)
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return nil
	default:
		return fmt.Errorf("telemetryapi: subscribe: %w", extension.ParseAPIError(resp.StatusCode, answer))
	}
}
