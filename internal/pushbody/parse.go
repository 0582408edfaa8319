package pushbody

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// ValidationError is a push rejected for its content; the HTTP API answers
// 400 with its message. The store is unchanged when a push fails with it.
type ValidationError struct {
	Line   int    // 1-based line in a text body, 0 when unknown
	Metric string // metric family or series concerned, "" when none
	Reason string
	Err    error // underlying cause, if any
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Metric != "" {
		fmt.Fprintf(&b, "metric %s: ", e.Metric)
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		if e.Reason != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return e.Err }

// ErrUnsupportedMediaType is wrapped by DecodeBody for a Content-Type or
// Content-Encoding it cannot read (HTTP 415).
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// DefaultMaxBodyBytes bounds a push body after decompression.
const DefaultMaxBodyBytes = 32 << 20

// DecodeBody reads a push body according to its Content-Type and
// Content-Encoding headers and returns its metric families sorted by name,
// without the families that have no samples.
//
// Bodies are the text exposition format 0.0.4 (the default, whatever the
// Content-Type unless one below); when Content-Type is
// "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
// encoding=delimited", length-delimited protobuf MetricFamily messages; when
// it is "application/openmetrics-text" (version 1.0.0, 0.0.1 or none),
// OpenMetrics text (see openmetrics.go for how its types map). Gauge families
// X_created that restate the created time of a counter X_total or histogram
// or summary X of the same push (Python's client writes them in the text
// format) are dropped, their values becoming those series' created
// timestamps. Content-Encoding may be gzip. At most maxBytes bytes are read
// after decompression (≤ 0 means DefaultMaxBodyBytes); beyond that it fails
// with an *http.MaxBytesError (so does a protobuf message whose length
// prefix exceeds maxBytes). Other failures wrap ErrUnsupportedMediaType
// (other OpenMetrics versions, other protobuf encodings, other content
// encodings) or are a *ValidationError (malformed body, with the line for
// text and OpenMetrics bodies, "message N" for protobuf).
//
// Sample timestamps of text and protobuf bodies are kept
// (Metric.HasTimestamp) for the receiver to reject; an OpenMetrics body with
// one fails here. Label names are not checked beyond what the formats
// require (see CheckLabelName).
func DecodeBody(body io.Reader, h http.Header, maxBytes int64) ([]family.Family, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, &ValidationError{Reason: "invalid gzip body", Err: err}
		}
		defer zr.Close()
		body = zr
	default:
		return nil, fmt.Errorf("%w: Content-Encoding %q (want gzip or none)", ErrUnsupportedMediaType, enc)
	}
	body = &limitReader{r: body, left: maxBytes, limit: maxBytes}

	format, err := bodyFormat(h.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	var fams []family.Family
	switch format {
	case formatProtobuf:
		fams, err = decodeProtobuf(body, maxBytes)
	case formatOpenMetrics:
		fams, err = decodeOpenMetrics(body)
	default:
		fams, err = decodeText(body)
	}
	if err != nil {
		return nil, err
	}
	fams = foldCreatedGauges(fams)
	slices.SortFunc(fams, func(a, b family.Family) int { return strings.Compare(a.Name, b.Name) })
	return fams, nil
}

// Body formats told apart by Content-Type.
const (
	formatText = iota
	formatProtobuf
	formatOpenMetrics
)

// bodyFormat tells the body format by Content-Type.
func bodyFormat(contentType string) (int, error) {
	if contentType == "" {
		return formatText, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return formatText, nil // Like the Pushgateway: anything unreadable is tried as text.
	}
	switch mt {
	case "application/vnd.google.protobuf":
		if params["proto"] != "io.prometheus.client.MetricFamily" || params["encoding"] != "delimited" {
			return 0, fmt.Errorf("%w: %q (protobuf must be proto=io.prometheus.client.MetricFamily; encoding=delimited)", ErrUnsupportedMediaType, contentType)
		}
		return formatProtobuf, nil
	case "application/openmetrics-text":
		if v := params["version"]; !omVersionOK(v) {
			return 0, fmt.Errorf("%w: OpenMetrics version %q (want 1.0.0 or 0.0.1)", ErrUnsupportedMediaType, v)
		}
		return formatOpenMetrics, nil
	}
	return formatText, nil
}

// decodeText parses a text-format body (see parseText), dropping the
// families without samples.
func decodeText(r io.Reader) ([]family.Family, error) {
	fams, err := parseText(r)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, readError(err)
	}
	return slices.DeleteFunc(fams, func(f family.Family) bool { return len(f.Metrics) == 0 }), nil
}

// decodeProtobuf reads length-delimited MetricFamily messages, skipping
// those without metrics. A family may come only once. A message longer than
// maxBytes could not be read whole: its length prefix fails the body as too
// large.
func decodeProtobuf(r io.Reader, maxBytes int64) ([]family.Family, error) {
	dec := family.NewDecoder(r)
	dec.MaxMessageBytes = int(min(maxBytes, math.MaxInt))
	seen := map[string]bool{}
	var fams []family.Family
	for n := 1; ; n++ {
		var f family.Family
		if err := dec.Decode(&f); err != nil {
			if err == io.EOF {
				return fams, nil
			}
			if errors.Is(err, family.ErrMessageTooLarge) {
				return nil, &http.MaxBytesError{Limit: maxBytes}
			}
			return nil, readError(fmt.Errorf("message %d: %w", n, err))
		}
		if len(f.Metrics) == 0 {
			continue
		}
		if seen[f.Name] {
			return nil, &ValidationError{Metric: f.Name, Reason: "metric family sent twice in one push"}
		}
		seen[f.Name] = true
		fams = append(fams, f)
	}
}

// readError keeps body-size errors recognisable and makes the rest 400s.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return &ValidationError{Reason: "malformed body", Err: err}
}

// limitReader fails with *http.MaxBytesError once more than limit bytes were
// read, so a small gzip body cannot expand without bound.
type limitReader struct {
	r           io.Reader
	left, limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe for one more byte to tell "exactly at the limit" from "over".
		var one [1]byte
		if n, err := l.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, &http.MaxBytesError{Limit: l.limit}
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
