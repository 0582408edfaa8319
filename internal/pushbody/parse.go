package pushbody

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
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
// with an *http.MaxBytesError. Other failures wrap ErrUnsupportedMediaType
// (other OpenMetrics versions, other protobuf encodings, other content
// encodings) or are a *ValidationError (malformed body, with the line for
// text and OpenMetrics bodies).
func DecodeBody(body io.Reader, h http.Header, maxBytes int64) ([]*dto.MetricFamily, error) {
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
	var fams []*dto.MetricFamily
	switch format {
	case formatProtobuf:
		fams, err = decodeProtobuf(body)
	case formatOpenMetrics:
		fams, err = decodeOpenMetrics(body)
	default:
		fams, err = decodeText(body)
	}
	if err != nil {
		return nil, err
	}
	fams = foldCreatedGauges(fams)
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
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

func decodeText(r io.Reader) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(r)
	if err != nil {
		var pe expfmt.ParseError
		if errors.As(err, &pe) {
			return nil, &ValidationError{Line: pe.Line, Reason: pe.Msg}
		}
		return nil, readError(err)
	}
	fams := make([]*dto.MetricFamily, 0, len(m))
	for _, mf := range m { // The parser already dropped empty families.
		fams = append(fams, mf)
	}
	return fams, nil
}

func decodeProtobuf(r io.Reader) ([]*dto.MetricFamily, error) {
	br := bufio.NewReader(r)
	opts := protodelim.UnmarshalOptions{MaxSize: -1} // The body is bounded by limitReader.
	seen := map[string]bool{}
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := opts.UnmarshalFrom(br, mf); err != nil {
			if errors.Is(err, io.EOF) {
				return fams, nil
			}
			return nil, readError(fmt.Errorf("message %d: %w", len(fams)+1, err))
		}
		if len(mf.GetMetric()) == 0 {
			continue
		}
		if seen[mf.GetName()] {
			return nil, &ValidationError{Metric: mf.GetName(), Reason: "metric family sent twice in one push"}
		}
		seen[mf.GetName()] = true
		fams = append(fams, mf)
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
