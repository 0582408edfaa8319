package telemetryapi

import (
	"encoding/json"
	"time"
)

// Event is one telemetry event of a batch: {"time","type","record"}.
type Event struct {
	// Time is when the event happened; the zero time when the sender's
	// timestamp was missing or unparsable (see Event.UnmarshalJSON).
	Time time.Time `json:"time"`
	// Type is the event type, e.g. TypePlatformReport or TypeFunction. It is
	// an open set: Lambda adds types over time.
	Type string `json:"type"`
	// Record is the undecoded record; see DecodeRecord.
	Record json.RawMessage `json:"record"`
}

// UnmarshalJSON decodes an event, parsing its time leniently (see
// parseTimeJSON): a bad timestamp yields the zero time, never an error.
func (e *Event) UnmarshalJSON(data []byte) error {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = w.event()
	return nil
}

// wireEvent is the decoding form of Event: its fields decode without
// failing on odd timestamps and without allocating for known type names.
type wireEvent struct {
	Time   wireTime        `json:"time"`
	Type   wireType        `json:"type"`
	Record json.RawMessage `json:"record"`
}

func (w *wireEvent) event() Event {
	return Event{Time: time.Time(w.Time), Type: string(w.Type), Record: w.Record}
}

type wireTime time.Time

func (t *wireTime) UnmarshalJSON(data []byte) error {
	*t = wireTime(parseTimeJSON(data))
	return nil
}

type wireType string

// UnmarshalJSON maps the known event types to their constants, which saves
// an allocation per event; other names are decoded as usual.
func (t *wireType) UnmarshalJSON(data []byte) error {
	if n := len(data); n >= 2 && data[0] == '"' && data[n-1] == '"' {
		if s, ok := knownType(data[1 : n-1]); ok {
			*t = wireType(s)
			return nil
		}
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*t = wireType(s)
	return nil
}

func knownType(b []byte) (string, bool) {
	switch string(b) { // no allocation: the compiler compares the bytes in place
	case TypePlatformInitStart:
		return TypePlatformInitStart, true
	case TypePlatformInitRuntimeDone:
		return TypePlatformInitRuntimeDone, true
	case TypePlatformInitReport:
		return TypePlatformInitReport, true
	case TypePlatformStart:
		return TypePlatformStart, true
	case TypePlatformRuntimeDone:
		return TypePlatformRuntimeDone, true
	case TypePlatformReport:
		return TypePlatformReport, true
	case TypePlatformRestoreStart:
		return TypePlatformRestoreStart, true
	case TypePlatformRestoreRuntimeDone:
		return TypePlatformRestoreRuntimeDone, true
	case TypePlatformRestoreReport:
		return TypePlatformRestoreReport, true
	case TypePlatformExtension:
		return TypePlatformExtension, true
	case TypePlatformTelemetrySubscription:
		return TypePlatformTelemetrySubscription, true
	case TypePlatformLogsDropped:
		return TypePlatformLogsDropped, true
	case TypeFunction:
		return TypeFunction, true
	case TypeExtension:
		return TypeExtension, true
	}
	return "", false
}

// parseTimeJSON parses a JSON timestamp leniently and returns the zero time
// instead of failing: a timestamp only orders and dates an event, so a bad
// one must not cost the event. Accepted: RFC 3339 with or without fractional
// seconds; a colon instead of the decimal point ("12:01:23:521Z", printed in
// the AWS event schema reference); a space instead of "T"; no zone (UTC).
func parseTimeJSON(data []byte) time.Time {
	var t time.Time
	if t.UnmarshalJSON(data) == nil { // fast path, no allocation; null → zero
		return t
	}
	n := len(data)
	if n < 2 || data[0] != '"' || data[n-1] != '"' {
		return time.Time{}
	}
	return parseTimeLenient(string(data[1 : n-1]))
}

var lenientLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

func parseTimeLenient(s string) time.Time {
	// "2006-01-02T15:04:05:999Z": the 20th byte should be the decimal point.
	if len(s) > 20 && s[19] == ':' {
		s = s[:19] + "." + s[20:]
	}
	for _, layout := range lenientLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
