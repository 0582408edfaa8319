package telemetryapi

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event types, as in the "Telemetry API Event schema reference". The set is
// open: DecodeRecord returns *UnknownRecord for any other type.
const (
	TypePlatformInitStart             = "platform.initStart"
	TypePlatformInitRuntimeDone       = "platform.initRuntimeDone"
	TypePlatformInitReport            = "platform.initReport"
	TypePlatformStart                 = "platform.start"
	TypePlatformRuntimeDone           = "platform.runtimeDone"
	TypePlatformReport                = "platform.report"
	TypePlatformRestoreStart          = "platform.restoreStart"
	TypePlatformRestoreRuntimeDone    = "platform.restoreRuntimeDone"
	TypePlatformRestoreReport         = "platform.restoreReport"
	TypePlatformExtension             = "platform.extension"
	TypePlatformTelemetrySubscription = "platform.telemetrySubscription"
	TypePlatformLogsDropped           = "platform.logsDropped"
	TypeFunction                      = "function"  // a log line of the function
	TypeExtension                     = "extension" // a log line of an extension
)

// Known values of the status fields. Status is an open string: other values
// are passed through, never rejected.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusError   = "error"
	StatusTimeout = "timeout"
)

// Known values of initializationType (an open string).
const (
	InitOnDemand               = "on-demand"
	InitProvisionedConcurrency = "provisioned-concurrency"
	InitSnapStart              = "snap-start"
	InitLambdaManagedInstances = "lambda-managed-instances"
)

// Known values of phase (an open string).
const (
	PhaseInit   = "init"
	PhaseInvoke = "invoke"
)

// Known span names (open strings).
const (
	SpanResponseLatency  = "responseLatency"
	SpanResponseDuration = "responseDuration"
	SpanRuntimeOverhead  = "runtimeOverhead"
)

// TraceContext is the X-Ray trace context of a record.
type TraceContext struct {
	SpanID string `json:"spanId"`
	Type   string `json:"type"`  // "X-Amzn-Trace-Id"
	Value  string `json:"value"` // e.g. "Root=1-…;Parent=…;Sampled=1"
}

// Span is a timed part of a phase, e.g. SpanResponseLatency.
type Span struct {
	Name string `json:"name"`
	// Start is parsed leniently by DecodeRecord: the AWS docs print starts
	// like "2022-08-02T12:01:23:521Z", read as 12:01:23.521; an unparsable
	// start is the zero time.
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"durationMs"` // milliseconds
}

// PlatformInitStart (platform.initStart) opens the init phase.
type PlatformInitStart struct {
	InitializationType string        `json:"initializationType"` // InitOnDemand, …
	Phase              string        `json:"phase"`              // PhaseInit, PhaseInvoke
	RuntimeVersion     string        `json:"runtimeVersion"`
	RuntimeVersionArn  string        `json:"runtimeVersionArn"`
	FunctionName       string        `json:"functionName"`
	FunctionVersion    string        `json:"functionVersion"`
	InstanceID         string        `json:"instanceId"`        // optional
	InstanceMaxMemory  float64       `json:"instanceMaxMemory"` // MB; optional
	Tracing            *TraceContext `json:"tracing"`
}

// PlatformInitRuntimeDone (platform.initRuntimeDone) ends the runtime's init.
type PlatformInitRuntimeDone struct {
	InitializationType string        `json:"initializationType"`
	Phase              string        `json:"phase"`
	Status             string        `json:"status"`    // StatusSuccess, …
	ErrorType          string        `json:"errorType"` // set when Status is not success
	Spans              []Span        `json:"spans"`
	Tracing            *TraceContext `json:"tracing"`
}

// InitReportMetrics are the metrics of a platform.initReport.
type InitReportMetrics struct {
	DurationMs float64 `json:"durationMs"` // milliseconds
}

// PlatformInitReport (platform.initReport) reports the whole init phase.
type PlatformInitReport struct {
	InitializationType string            `json:"initializationType"`
	Phase              string            `json:"phase"`
	Status             string            `json:"status"`
	ErrorType          string            `json:"errorType"`
	Metrics            InitReportMetrics `json:"metrics"`
	Spans              []Span            `json:"spans"`
	Tracing            *TraceContext     `json:"tracing"`
}

// PlatformStart (platform.start) opens an invocation.
type PlatformStart struct {
	RequestID string        `json:"requestId"`
	Version   string        `json:"version"` // function version; optional
	Tracing   *TraceContext `json:"tracing"`
}

// RuntimeDoneMetrics are the metrics of a platform.runtimeDone.
type RuntimeDoneMetrics struct {
	DurationMs    float64 `json:"durationMs"`    // milliseconds
	ProducedBytes int64   `json:"producedBytes"` // bytes of the response; optional
}

// PlatformRuntimeDone (platform.runtimeDone) is sent when the runtime has
// finished an invocation, before the extensions finish theirs. Lambda
// Managed Instances do not send it.
type PlatformRuntimeDone struct {
	RequestID string             `json:"requestId"`
	Status    string             `json:"status"` // StatusSuccess, StatusError, StatusTimeout, StatusFailure, …
	ErrorType string             `json:"errorType"`
	Metrics   RuntimeDoneMetrics `json:"metrics"`
	Spans     []Span             `json:"spans"` // responseLatency, responseDuration, runtimeOverhead
	Tracing   *TraceContext      `json:"tracing"`
}

// ReportMetrics are the metrics of a platform.report. On Lambda Managed
// Instances only DurationMs is set.
type ReportMetrics struct {
	DurationMs float64 `json:"durationMs"` // milliseconds
	// BilledDurationMs is an integer in the spec, decoded as a float so that
	// either encoding is accepted.
	BilledDurationMs float64 `json:"billedDurationMs"` // milliseconds
	MemorySizeMB     float64 `json:"memorySizeMB"`     // configured memory, MB
	MaxMemoryUsedMB  float64 `json:"maxMemoryUsedMB"`  // MB
	// InitDurationMs is set only on the first invocation after an
	// on-demand init (a cold start).
	InitDurationMs *float64 `json:"initDurationMs"` // milliseconds
	// RestoreDurationMs is set only on the first invocation after a
	// SnapStart restore.
	RestoreDurationMs *float64 `json:"restoreDurationMs"` // milliseconds
	// Missing flags the fields above that the decoded record left out (or
	// set to null), so that an absent figure is not taken for a zero one:
	// on Lambda Managed Instances only DurationMs is sent. A ReportMetrics
	// built in code has no flags: every field counts as present. See
	// HasBilledDuration, HasMemorySize and HasMaxMemoryUsed.
	Missing ReportFields `json:"-"`
}

// PlatformReport (platform.report) reports an invocation once the runtime
// and all extensions are done with it. It usually arrives during the next
// invocation; the last one during SHUTDOWN.
type PlatformReport struct {
	RequestID string        `json:"requestId"`
	Status    string        `json:"status"` // StatusSuccess, StatusFailure, StatusError, StatusTimeout, …
	ErrorType string        `json:"errorType"`
	Metrics   ReportMetrics `json:"metrics"`
	Spans     []Span        `json:"spans"`
	Tracing   *TraceContext `json:"tracing"`
}

// PlatformRestoreStart (platform.restoreStart) opens a SnapStart restore.
type PlatformRestoreStart struct {
	RuntimeVersion    string  `json:"runtimeVersion"`
	RuntimeVersionArn string  `json:"runtimeVersionArn"`
	FunctionName      string  `json:"functionName"`
	FunctionVersion   string  `json:"functionVersion"`
	InstanceID        string  `json:"instanceId"`
	InstanceMaxMemory float64 `json:"instanceMaxMemory"` // MB
}

// PlatformRestoreRuntimeDone (platform.restoreRuntimeDone) ends the
// runtime's part of a SnapStart restore.
type PlatformRestoreRuntimeDone struct {
	Status    string        `json:"status"`
	ErrorType string        `json:"errorType"`
	Spans     []Span        `json:"spans"`
	Tracing   *TraceContext `json:"tracing"`
}

// RestoreReportMetrics are the metrics of a platform.restoreReport.
type RestoreReportMetrics struct {
	DurationMs float64 `json:"durationMs"` // milliseconds
}

// PlatformRestoreReport (platform.restoreReport) reports a SnapStart restore.
type PlatformRestoreReport struct {
	Status    string               `json:"status"`
	ErrorType string               `json:"errorType"`
	Metrics   RestoreReportMetrics `json:"metrics"`
	Spans     []Span               `json:"spans"`
	Tracing   *TraceContext        `json:"tracing"`
}

// PlatformExtension (platform.extension) reports an extension's registration.
type PlatformExtension struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`  // e.g. "Ready"
	Events    []string `json:"events"` // e.g. INVOKE, SHUTDOWN
	ErrorType string   `json:"errorType"`
}

// PlatformTelemetrySubscription (platform.telemetrySubscription) reports an
// extension's telemetry subscription.
type PlatformTelemetrySubscription struct {
	Name  string   `json:"name"`
	State string   `json:"state"` // e.g. "Subscribed"
	Types []string `json:"types"` // TypesPlatform, TypesFunction, TypesExtension
}

// PlatformLogsDropped (platform.logsDropped) reports records Lambda dropped
// because a subscriber (this listener or another) could not keep up.
type PlatformLogsDropped struct {
	DroppedBytes   int64  `json:"droppedBytes"`
	DroppedRecords int64  `json:"droppedRecords"`
	Reason         string `json:"reason"`
}

// LogRecord is a function or extension log line. In the text log format the
// record is a string, kept in Text; in the JSON log format it is an object,
// kept whole in Object with its usual fields extracted.
type LogRecord struct {
	Text string // the line in the text format; "" in the JSON format

	Object    json.RawMessage // the object in the JSON format; nil in the text format
	Timestamp time.Time       // JSON format; zero when missing or unparsable
	Level     string          // JSON format, e.g. "INFO"
	RequestID string          // JSON format
	// Message is the message of the JSON format: the string itself, or the
	// JSON text when the logger wrote an object or another value.
	Message string
}

// IsJSON reports whether the record came in the JSON log format.
func (r *LogRecord) IsJSON() bool { return r.Object != nil }

// UnknownRecord is the record of an event type this package does not know.
// Lambda adds types over time; callers should ignore them.
type UnknownRecord struct {
	Type string
	Raw  json.RawMessage
}

// DecodeRecord decodes e.Record according to e.Type and returns a pointer:
//
//	platform.initStart             *PlatformInitStart
//	platform.initRuntimeDone       *PlatformInitRuntimeDone
//	platform.initReport            *PlatformInitReport
//	platform.start                 *PlatformStart
//	platform.runtimeDone           *PlatformRuntimeDone
//	platform.report                *PlatformReport
//	platform.restoreStart          *PlatformRestoreStart
//	platform.restoreRuntimeDone    *PlatformRestoreRuntimeDone
//	platform.restoreReport         *PlatformRestoreReport
//	platform.extension             *PlatformExtension
//	platform.telemetrySubscription *PlatformTelemetrySubscription
//	platform.logsDropped           *PlatformLogsDropped
//	function, extension            *LogRecord
//	anything else                  *UnknownRecord, nil error
//
// Unknown fields and unknown enum values are accepted; timestamps are parsed
// leniently (zero when unparsable). It fails only when the record is not
// JSON or a field has the wrong JSON kind (e.g. a string for durationMs).
// Records are decoded on demand so that callers pay only for the types they
// use.
func (e Event) DecodeRecord() (any, error) {
	switch e.Type {
	case TypeFunction, TypeExtension:
		rec, err := decodeLogRecord(e.Record)
		if err != nil {
			return nil, fmt.Errorf("telemetryapi: %s record: %w", e.Type, err)
		}
		return rec, nil
	}
	v := newRecord(e.Type)
	if v == nil {
		return &UnknownRecord{Type: e.Type, Raw: e.Record}, nil
	}
	err := json.Unmarshal(e.Record, v)
	if err == nil {
		return v, nil
	}
	// Strict decoding is the fast path; the rare record with a span start
	// that is not RFC 3339 is decoded again with the starts repaired.
	if fixed, ok := repairSpanStarts(e.Record); ok {
		v = newRecord(e.Type)
		if json.Unmarshal(fixed, v) == nil {
			return v, nil
		}
	}
	return nil, fmt.Errorf("telemetryapi: %s record: %w", e.Type, err)
}

// newRecord returns a new record of a platform event type, nil for others.
func newRecord(typ string) any {
	switch typ {
	case TypePlatformReport:
		return new(PlatformReport)
	case TypePlatformRuntimeDone:
		return new(PlatformRuntimeDone)
	case TypePlatformStart:
		return new(PlatformStart)
	case TypePlatformInitStart:
		return new(PlatformInitStart)
	case TypePlatformInitRuntimeDone:
		return new(PlatformInitRuntimeDone)
	case TypePlatformInitReport:
		return new(PlatformInitReport)
	case TypePlatformRestoreStart:
		return new(PlatformRestoreStart)
	case TypePlatformRestoreRuntimeDone:
		return new(PlatformRestoreRuntimeDone)
	case TypePlatformRestoreReport:
		return new(PlatformRestoreReport)
	case TypePlatformExtension:
		return new(PlatformExtension)
	case TypePlatformTelemetrySubscription:
		return new(PlatformTelemetrySubscription)
	case TypePlatformLogsDropped:
		return new(PlatformLogsDropped)
	}
	return nil
}

// repairSpanStarts rewrites the span starts of a record that time.Time
// cannot decode: parseable ones (see parseTimeJSON) as RFC 3339, the others
// as null, which decodes to the zero time. It reports false when there was
// nothing to repair.
func repairSpanStarts(record []byte) ([]byte, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(record, &fields) != nil {
		return nil, false
	}
	var spans []map[string]json.RawMessage
	if json.Unmarshal(fields["spans"], &spans) != nil {
		return nil, false
	}
	repaired := false
	for _, span := range spans {
		start, ok := span["start"]
		var strict time.Time
		if !ok || strict.UnmarshalJSON(start) == nil {
			continue
		}
		span["start"] = json.RawMessage("null")
		if t := parseTimeJSON(start); !t.IsZero() {
			if b, err := t.MarshalJSON(); err == nil {
				span["start"] = b
			}
		}
		repaired = true
	}
	if !repaired {
		return nil, false
	}
	var err error
	if fields["spans"], err = json.Marshal(spans); err != nil {
		return nil, false
	}
	out, err := json.Marshal(fields)
	return out, err == nil
}

func decodeLogRecord(raw json.RawMessage) (*LogRecord, error) {
	i := 0
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	if i < len(raw) && raw[i] == '{' {
		var w struct {
			Timestamp wireTime        `json:"timestamp"`
			Level     string          `json:"level"`
			RequestID string          `json:"requestId"`
			Message   json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, err
		}
		rec := &LogRecord{
			Object:    raw,
			Timestamp: time.Time(w.Timestamp),
			Level:     w.Level,
			RequestID: w.RequestID,
		}
		if len(w.Message) > 0 && w.Message[0] == '"' {
			if err := json.Unmarshal(w.Message, &rec.Message); err != nil {
				return nil, err
			}
		} else if len(w.Message) > 0 && string(w.Message) != "null" {
			rec.Message = string(w.Message)
		}
		return rec, nil
	}
	rec := &LogRecord{}
	if err := json.Unmarshal(raw, &rec.Text); err != nil {
		return nil, err
	}
	return rec, nil
}
