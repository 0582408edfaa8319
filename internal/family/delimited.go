package family

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ContentType is the media type of a protobuf-delimited push body.
const ContentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

// DefaultMaxMessageBytes is the largest message a Decoder accepts when its
// MaxMessageBytes is not set: 32 MiB.
const DefaultMaxMessageBytes = 32 << 20

// Sentinel causes of decoding errors, for errors.Is.
var (
	// ErrMalformed is wrapped by every error about the content of a message:
	// bad wire data, a wrong wire type for a known field, an unknown metric
	// type, a metric without the value its family type needs, invalid UTF-8
	// or an invalid timestamp.
	ErrMalformed = errors.New("malformed MetricFamily message")
	// ErrMessageTooLarge is wrapped when a length prefix exceeds
	// Decoder.MaxMessageBytes (or does not fit a varint of at most 64 bits).
	ErrMessageTooLarge = errors.New("MetricFamily message too large")
)

// malformed is an error about a message's content; it matches ErrMalformed.
type malformed string

func (e malformed) Error() string        { return string(e) }
func (e malformed) Is(target error) bool { return target == ErrMalformed }

func malformedf(format string, args ...any) error { return malformed(fmt.Sprintf(format, args...)) }

// Field numbers of io.prometheus.client (metrics.proto) and
// google.protobuf.Timestamp.
const (
	famName, famHelp, famType, famMetric = 1, 2, 3, 4

	metLabel, metGauge, metCounter, metSummary, metUntyped, metTimestampMs, metHistogram = 1, 2, 3, 4, 5, 6, 7

	labelName, labelValue = 1, 2

	valueValue     = 1 // Gauge.value, Counter.value, Untyped.value
	counterCreated = 3

	sumCount, sumSum, sumQuantile, sumCreated = 1, 2, 3, 4
	quantQuantile, quantValue                 = 1, 2

	histCount, histSum, histBucket, histCountFloat, histCreated = 1, 2, 3, 4, 15

	bktCount, bktUpperBound, bktCountFloat = 1, 2, 4

	tsSeconds, tsNanos = 1, 2
)

// The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// AppendDelimited appends f as one length-delimited
// io.prometheus.client.MetricFamily message (metrics.proto): a varint
// length, then the message, fields in field-number order — the bytes
// protodelim.MarshalTo writes for the equivalent dto.MetricFamily. It
// returns the extended buffer, growing it at most once.
//
// The name and type are always written, the help only when not empty. Each
// metric carries its labels in order, the value message of f.Type and
// timestamp_ms if HasTimestamp:
//
//   - Counter: counter{value, created_timestamp unless Created is zero}.
//   - Gauge, Untyped: gauge{value} or untyped{value}.
//   - Summary: summary{sample_count, sample_sum, quantile..., created_timestamp};
//     sample_count is Count rounded toward zero and clamped to [0, 2^64-1]
//     (NaN gives 0).
//   - Histogram, GaugeHistogram: histogram{sample_count, sample_sum,
//     bucket..., created_timestamp (Histogram only)}. A count (Count or a
//     bucket's Count) that is a whole number in [0, 2^64) is written as the
//     integer field, any other as the float field (sample_count_float,
//     cumulative_count_float), which metrics.proto only honours when > 0:
//     negative and NaN counts read back as 0.
//
// For a Type outside the defined ones no value message is written, and
// decoders reject the type. Strings are written as given; Decoder rejects
// invalid UTF-8.
func AppendDelimited(b []byte, f *Family) []byte {
	n := familySize(f)
	b = slices.Grow(b, protowire.SizeVarint(uint64(n))+n)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendString(b, famName, f.Name)
	if f.Help != "" {
		b = appendString(b, famHelp, f.Help)
	}
	b = protowire.AppendTag(b, famType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Type)))
	for i := range f.Metrics {
		m := &f.Metrics[i]
		b = appendLen(b, famMetric, metricSize(m, f.Type))
		b = appendMetric(b, m, f.Type)
	}
	return b
}

// Sizes are computed before writing so that each length prefix is written
// once, in place, and the buffer grows once.

func familySize(f *Family) int {
	n := 1 + protowire.SizeBytes(len(f.Name))
	if f.Help != "" {
		n += 1 + protowire.SizeBytes(len(f.Help))
	}
	n += 1 + protowire.SizeVarint(uint64(int64(f.Type)))
	for i := range f.Metrics {
		n += 1 + protowire.SizeBytes(metricSize(&f.Metrics[i], f.Type))
	}
	return n
}

func metricSize(m *Metric, t Type) int {
	n := 0
	for _, l := range m.Labels {
		n += 1 + protowire.SizeBytes(labelSize(l))
	}
	if vs, ok := valueSize(m, t); ok {
		n += 1 + protowire.SizeBytes(vs)
	}
	if m.HasTimestamp {
		n += 1 + protowire.SizeVarint(uint64(m.TimestampMs))
	}
	return n
}

func labelSize(l Label) int {
	return 2 + protowire.SizeBytes(len(l.Name)) + protowire.SizeBytes(len(l.Value))
}

// valueSize is the size of the value message of type t, false if t has none.
func valueSize(m *Metric, t Type) (int, bool) {
	switch t {
	case Counter:
		return 9 + createdSize(m.Created), true
	case Gauge, Untyped:
		return 9, true
	case Summary:
		n := 1 + protowire.SizeVarint(clampUint64(m.Count)) + 9
		n += len(m.Quantiles) * (1 + protowire.SizeBytes(18))
		return n + createdSize(m.Created), true
	case Histogram, GaugeHistogram:
		n := countSize(m.Count) + 9
		for _, bk := range m.Buckets {
			n += 1 + protowire.SizeBytes(countSize(bk.Count)+9)
		}
		if t == Histogram {
			n += createdSize(m.Created)
		}
		return n, true
	}
	return 0, false
}

// countSize is the size of a histogram count field: a varint if whole, else
// a fixed64.
func countSize(c float64) int {
	if u, ok := wholeCount(c); ok {
		return 1 + protowire.SizeVarint(u)
	}
	return 9
}

// createdSize is the size of a created_timestamp field, 0 when t is zero.
func createdSize(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return 1 + protowire.SizeBytes(timestampSize(t))
}

// timestampSize is the size of a google.protobuf.Timestamp, a proto3
// message: zero fields are not written.
func timestampSize(t time.Time) int {
	n := 0
	if s := t.Unix(); s != 0 {
		n += 1 + protowire.SizeVarint(uint64(s))
	}
	if ns := t.Nanosecond(); ns != 0 {
		n += 1 + protowire.SizeVarint(uint64(ns))
	}
	return n
}

func appendMetric(b []byte, m *Metric, t Type) []byte {
	for _, l := range m.Labels {
		b = appendLen(b, metLabel, labelSize(l))
		b = appendString(b, labelName, l.Name)
		b = appendString(b, labelValue, l.Value)
	}
	// Field order: gauge 2, counter 3, summary 4, untyped 5, timestamp_ms 6,
	// histogram 7.
	vs, hasValue := valueSize(m, t)
	if hasValue && t != Histogram && t != GaugeHistogram {
		switch t {
		case Counter:
			b = appendLen(b, metCounter, vs)
			b = appendFixed(b, valueValue, m.Value)
			b = appendCreated(b, counterCreated, m.Created)
		case Gauge:
			b = appendLen(b, metGauge, vs)
			b = appendFixed(b, valueValue, m.Value)
		case Untyped:
			b = appendLen(b, metUntyped, vs)
			b = appendFixed(b, valueValue, m.Value)
		case Summary:
			b = appendLen(b, metSummary, vs)
			b = protowire.AppendTag(b, sumCount, protowire.VarintType)
			b = protowire.AppendVarint(b, clampUint64(m.Count))
			b = appendFixed(b, sumSum, m.Sum)
			for _, q := range m.Quantiles {
				b = appendLen(b, sumQuantile, 18)
				b = appendFixed(b, quantQuantile, q.Quantile)
				b = appendFixed(b, quantValue, q.Value)
			}
			b = appendCreated(b, sumCreated, m.Created)
		}
	}
	if m.HasTimestamp {
		b = protowire.AppendTag(b, metTimestampMs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.TimestampMs))
	}
	if hasValue && (t == Histogram || t == GaugeHistogram) {
		b = appendLen(b, metHistogram, vs)
		// Field order: sample_count 1, sample_sum 2, bucket 3,
		// sample_count_float 4, created_timestamp 15.
		u, whole := wholeCount(m.Count)
		if whole {
			b = protowire.AppendTag(b, histCount, protowire.VarintType)
			b = protowire.AppendVarint(b, u)
		}
		b = appendFixed(b, histSum, m.Sum)
		for _, bk := range m.Buckets {
			b = appendLen(b, histBucket, countSize(bk.Count)+9)
			bu, bwhole := wholeCount(bk.Count)
			if bwhole {
				b = protowire.AppendTag(b, bktCount, protowire.VarintType)
				b = protowire.AppendVarint(b, bu)
			}
			b = appendFixed(b, bktUpperBound, bk.UpperBound)
			if !bwhole {
				b = appendFixed(b, bktCountFloat, bk.Count)
			}
		}
		if !whole {
			b = appendFixed(b, histCountFloat, m.Count)
		}
		if t == Histogram {
			b = appendCreated(b, histCreated, m.Created)
		}
	}
	return b
}

func appendLen(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendFixed(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendCreated(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = appendLen(b, num, timestampSize(t))
	if s := t.Unix(); s != 0 {
		b = protowire.AppendTag(b, tsSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s))
	}
	if ns := t.Nanosecond(); ns != 0 {
		b = protowire.AppendTag(b, tsNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(ns))
	}
	return b
}

// wholeCount reports whether c is a whole number in [0, 2^64), and c as an
// integer if so.
func wholeCount(c float64) (uint64, bool) {
	if c >= 0 && c < 1<<64 && c == math.Trunc(c) {
		return uint64(c), true
	}
	return 0, false
}

// clampUint64 converts c to uint64 rounding toward zero, NaN and negatives
// to 0 and values ≥ 2^64 to the maximum (Go leaves those conversions
// implementation-defined).
func clampUint64(c float64) uint64 {
	switch {
	case !(c > 0):
		return 0
	case c >= 1<<64:
		return math.MaxUint64
	}
	return uint64(c)
}

// Decoder reads length-delimited io.prometheus.client.MetricFamily messages
// (metrics.proto), as client_golang pushes them: each a varint length, then
// the message. It buffers its input, so it may read past the last message.
//
// It is meant for untrusted input: a message is read as its bytes arrive
// (a length prefix alone allocates nothing), messages longer than
// MaxMessageBytes are refused, and the content is validated (see Decode).
// It keeps a buffer as large as the largest message it has read. A Decoder
// is not safe for concurrent use.
type Decoder struct {
	// MaxMessageBytes is the largest message length accepted, in bytes,
	// excluding the length prefix; ≤ 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int

	r   *bufio.Reader
	buf []byte // message bytes, reused

	// Scratch reused across messages; copied out into exactly sized
	// allocations per family.
	strs      []byte // all strings of the message, concatenated
	labels    []labelRef
	buckets   []Bucket
	quantiles []Quantile
	spans     []metricSpan
}

// strRef is a string of a message, as a range of Decoder.strs.
type strRef struct{ off, end int }

type labelRef struct{ name, value strRef }

// metricSpan is the range of Decoder.labels, buckets and quantiles that
// belong to one metric.
type metricSpan struct{ l0, l1, b0, b1, q0, q1 int }

// NewDecoder returns a Decoder reading from r (through a bufio.Reader,
// which is r itself if r is one).
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReader(r)} }

// Decode reads the next message into *f, replacing all of it; the slices
// and strings of *f are new and not reused by later calls (the strings of
// one family share one allocation). On error *f is unchanged.
//
// Errors:
//   - io.EOF, unwrapped, when the input ends cleanly before a message.
//   - An error wrapping io.ErrUnexpectedEOF when the input ends inside the
//     length prefix or the message; errors of the reader are wrapped as is.
//   - An error wrapping ErrMessageTooLarge for a length beyond
//     MaxMessageBytes.
//   - An error wrapping ErrMalformed for invalid content: invalid wire data,
//     a wrong wire type for a field the decoder reads, a metric type other
//     than the six defined, a metric without the value message its family
//     type needs (`metric 3 of family "x": counter family without a counter
//     value`, metrics counted from 0), a name, help, label name or label
//     value that is not valid UTF-8 (proto2, and so the generated code,
//     does not check; Prometheus requires UTF-8), or a created_timestamp
//     outside the google.protobuf.Timestamp range (nanos outside [0, 1e9),
//     seconds outside years 1–9999).
//
// Decoding follows metrics.proto: Value comes from the counter, gauge or
// untyped message as the family type says (the others are skipped); Count
// and bucket counts from sample_count_float / cumulative_count_float when
// > 0, else from sample_count / cumulative_count; Created from
// created_timestamp as time.Unix(seconds, nanos).UTC() (counters, summaries
// and histograms; not gauge histograms, which AppendDelimited does not
// write it for); TimestampMs and HasTimestamp from timestamp_ms. Exemplars,
// units and native-histogram fields are skipped, as are unknown fields of
// any valid wire type. Fields may come in any order; a non-repeated field
// that repeats takes its last value, and repeated sub-messages (a counter
// sent twice, say) merge as protobuf merges them: scalars last-wins,
// repeated fields appended.
func (d *Decoder) Decode(f *Family) error {
	n, err := d.readLength()
	if err != nil {
		return err
	}
	msg, err := d.readMessage(n)
	if err != nil {
		return err
	}
	return d.decodeFamily(msg, f)
}

func (d *Decoder) maxBytes() int {
	if d.MaxMessageBytes <= 0 {
		return DefaultMaxMessageBytes
	}
	return d.MaxMessageBytes
}

// readLength reads the varint length prefix, byte by byte so that nothing
// of the message is consumed.
func (d *Decoder) readLength() (int, error) {
	var v uint64
	for i := 0; ; i++ {
		c, err := d.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				if i == 0 {
					return 0, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("reading message length: %w", err)
		}
		if i == 9 && c > 1 { // a 10th byte may only hold bit 63
			return 0, fmt.Errorf("message length: %w: varint overflows 64 bits", ErrMessageTooLarge)
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
	}
	if max := d.maxBytes(); v > uint64(max) {
		return 0, fmt.Errorf("message length %d: %w (limit %d bytes)", v, ErrMessageTooLarge, max)
	}
	return int(v), nil
}

// readMessage reads n bytes into d.buf. The buffer grows with the bytes
// that arrive — by at most doubling, from 64 KiB — rather than to n up
// front, so a lying length prefix costs little.
func (d *Decoder) readMessage(n int) ([]byte, error) {
	buf := d.buf[:0]
	for len(buf) < n {
		chunk := max(cap(buf)-len(buf), len(buf), 64<<10)
		chunk = min(chunk, n-len(buf))
		buf = slices.Grow(buf, chunk)
		m, err := io.ReadFull(d.r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		if err != nil {
			d.buf = buf[:0]
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading message: got %d of %d bytes: %w", len(buf), n, err)
		}
	}
	d.buf = buf
	return buf, nil
}

// next reads the tag of the next field of b and returns it and the rest.
func next(b []byte) (protowire.Number, protowire.Type, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, malformedf("invalid field tag: %v", protowire.ParseError(n))
	}
	return num, typ, b[n:], nil
}

// skip consumes the value of a field the decoder does not read.
func skip(num protowire.Number, typ protowire.Type, b []byte) ([]byte, error) {
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return nil, malformedf("field %d: %v", num, protowire.ParseError(n))
	}
	return b[n:], nil
}

func wantType(num protowire.Number, typ, want protowire.Type) error {
	if typ != want {
		return malformedf("field %d has wire type %d, want %d", num, typ, want)
	}
	return nil
}

func consumeBytes(num protowire.Number, typ protowire.Type, b []byte) (v, rest []byte, err error) {
	if err := wantType(num, typ, protowire.BytesType); err != nil {
		return nil, nil, err
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, nil, malformedf("field %d: %v", num, protowire.ParseError(n))
	}
	return v, b[n:], nil
}

func consumeVarint(num protowire.Number, typ protowire.Type, b []byte) (v uint64, rest []byte, err error) {
	if err := wantType(num, typ, protowire.VarintType); err != nil {
		return 0, nil, err
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, nil, malformedf("field %d: %v", num, protowire.ParseError(n))
	}
	return v, b[n:], nil
}

func consumeFloat(num protowire.Number, typ protowire.Type, b []byte) (v float64, rest []byte, err error) {
	if err := wantType(num, typ, protowire.Fixed64Type); err != nil {
		return 0, nil, err
	}
	u, n := protowire.ConsumeFixed64(b)
	if n < 0 {
		return 0, nil, malformedf("field %d: %v", num, protowire.ParseError(n))
	}
	return math.Float64frombits(u), b[n:], nil
}

// addString validates s as UTF-8 and appends it to d.strs.
func (d *Decoder) addString(s []byte, what string) (strRef, error) {
	if !utf8.Valid(s) {
		return strRef{}, malformedf("%s is not valid UTF-8: %q", what, s)
	}
	off := len(d.strs)
	d.strs = append(d.strs, s...)
	return strRef{off, len(d.strs)}, nil
}

func (d *Decoder) decodeFamily(msg []byte, f *Family) error {
	d.strs, d.labels, d.buckets, d.quantiles, d.spans = d.strs[:0], d.labels[:0], d.buckets[:0], d.quantiles[:0], d.spans[:0]

	// First pass: the scalars, which the metrics need (the type) or their
	// errors name (the name), and the metric count.
	var (
		nameRaw, helpRaw []byte
		hasName, hasHelp bool
		typ              uint64
		nMetrics         int
	)
	for b := msg; len(b) > 0; {
		num, wt, rest, err := next(b)
		if err != nil {
			return fmt.Errorf("family: %w", err)
		}
		switch num {
		case famName:
			nameRaw, b, err = consumeBytes(num, wt, rest)
			hasName = true
		case famHelp:
			helpRaw, b, err = consumeBytes(num, wt, rest)
			hasHelp = true
		case famType:
			typ, b, err = consumeVarint(num, wt, rest)
		case famMetric:
			_, b, err = consumeBytes(num, wt, rest)
			nMetrics++
		default:
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			if hasName {
				return fmt.Errorf("family %q: %w", nameRaw, err)
			}
			return fmt.Errorf("family: %w", err)
		}
	}
	var name, help strRef
	if hasName {
		var err error
		if name, err = d.addString(nameRaw, "name"); err != nil {
			return fmt.Errorf("family: %w", err)
		}
	}
	if hasHelp {
		var err error
		if help, err = d.addString(helpRaw, "help"); err != nil {
			return fmt.Errorf("family %q: %w", nameRaw, err)
		}
	}
	if typ > uint64(GaugeHistogram) {
		return fmt.Errorf("family %q: %w", nameRaw, malformedf("unknown metric type %d", typ))
	}
	t := Type(typ)

	var metrics []Metric
	if nMetrics > 0 {
		metrics = make([]Metric, nMetrics)
		d.spans = slices.Grow(d.spans, nMetrics)[:nMetrics]
	}
	i := 0
	for b := msg; len(b) > 0; {
		num, wt, rest, _ := next(b) // validated by the first pass
		if num != famMetric {
			b, _ = skip(num, wt, rest)
			continue
		}
		v, rest, _ := consumeBytes(num, wt, rest)
		b = rest
		if err := d.decodeMetric(v, t, &metrics[i], &d.spans[i]); err != nil {
			return fmt.Errorf("metric %d of family %q: %w", i, nameRaw, err)
		}
		i++
	}

	// Copy the scratch out: one allocation per kind for the whole family.
	strs := string(d.strs)
	str := func(r strRef) string { return strs[r.off:r.end] }
	var labels []Label
	if len(d.labels) > 0 {
		labels = make([]Label, len(d.labels))
		for j, l := range d.labels {
			labels[j] = Label{Name: str(l.name), Value: str(l.value)}
		}
	}
	buckets := slices.Clone(d.buckets)
	quantiles := slices.Clone(d.quantiles)
	for j := range metrics {
		sp := d.spans[j]
		m := &metrics[j]
		if sp.l1 > sp.l0 {
			m.Labels = labels[sp.l0:sp.l1:sp.l1]
		}
		if sp.b1 > sp.b0 {
			m.Buckets = buckets[sp.b0:sp.b1:sp.b1]
		}
		if sp.q1 > sp.q0 {
			m.Quantiles = quantiles[sp.q0:sp.q1:sp.q1]
		}
	}
	*f = Family{Name: str(name), Help: str(help), Type: t, Metrics: metrics}
	return nil
}

// tsState accumulates a created_timestamp across repeated occurrences, which
// protobuf merges.
type tsState struct {
	seen  bool
	sec   int64
	nanos int32
}

// histState accumulates a histogram's counts across repeated histogram
// messages.
type histState struct {
	count      uint64
	countFloat float64
}

// decodeMetric decodes the Metric message b of a family of type t into m,
// recording its labels, buckets and quantiles in d's scratch.
func (d *Decoder) decodeMetric(b []byte, t Type, m *Metric, sp *metricSpan) error {
	sp.l0, sp.b0, sp.q0 = len(d.labels), len(d.buckets), len(d.quantiles)
	var (
		hasValue bool
		created  tsState
		hist     histState
	)
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch num {
		case metLabel:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err != nil {
				return err
			}
			if err := d.decodeLabel(v); err != nil {
				return fmt.Errorf("label %d: %w", len(d.labels)-sp.l0, err)
			}
		case metGauge, metCounter, metSummary, metUntyped, metHistogram:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err != nil {
				return err
			}
			if num != valueField(t) {
				continue // another type's value: not ours to read
			}
			hasValue = true
			switch t {
			case Counter, Gauge, Untyped:
				err = decodeValue(v, t, m, &created)
			case Summary:
				err = d.decodeSummary(v, m, &created)
			case Histogram, GaugeHistogram:
				err = d.decodeHistogram(v, t, m, &hist, &created)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
		case metTimestampMs:
			var v uint64
			if v, b, err = consumeVarint(num, wt, rest); err != nil {
				return err
			}
			m.TimestampMs, m.HasTimestamp = int64(v), true
		default:
			if b, err = skip(num, wt, rest); err != nil {
				return err
			}
		}
	}
	if !hasValue {
		return malformedf("%s family without a %s value", t, valueName(t))
	}
	if t == Histogram || t == GaugeHistogram {
		if hist.countFloat > 0 {
			m.Count = hist.countFloat
		} else {
			m.Count = float64(hist.count)
		}
	}
	if created.seen {
		if created.nanos < 0 || created.nanos >= 1e9 {
			return malformedf("created_timestamp: nanos %d outside [0, 1e9)", created.nanos)
		}
		if created.sec < minTimestampSeconds || created.sec > maxTimestampSeconds {
			return malformedf("created_timestamp: seconds %d outside years 1 to 9999", created.sec)
		}
		m.Created = time.Unix(created.sec, int64(created.nanos)).UTC()
	}
	sp.l1, sp.b1, sp.q1 = len(d.labels), len(d.buckets), len(d.quantiles)
	return nil
}

// valueField is the Metric field holding the value message of type t.
func valueField(t Type) protowire.Number {
	switch t {
	case Counter:
		return metCounter
	case Gauge:
		return metGauge
	case Summary:
		return metSummary
	case Untyped:
		return metUntyped
	}
	return metHistogram
}

// valueName names the value message of type t in errors.
func valueName(t Type) string {
	if t == GaugeHistogram {
		return "histogram"
	}
	return t.String()
}

func (d *Decoder) decodeLabel(b []byte) error {
	var name, value []byte
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch num {
		case labelName:
			name, b, err = consumeBytes(num, wt, rest)
		case labelValue:
			value, b, err = consumeBytes(num, wt, rest)
		default:
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return err
		}
	}
	n, err := d.addString(name, "label name")
	if err != nil {
		return err
	}
	v, err := d.addString(value, "label value")
	if err != nil {
		return err
	}
	d.labels = append(d.labels, labelRef{n, v})
	return nil
}

// decodeValue decodes a Counter, Gauge or Untyped message.
func decodeValue(b []byte, t Type, m *Metric, created *tsState) error {
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch {
		case num == valueValue:
			m.Value, b, err = consumeFloat(num, wt, rest)
		case num == counterCreated && t == Counter:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err == nil {
				err = created.decode(v)
			}
		default:
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) decodeSummary(b []byte, m *Metric, created *tsState) error {
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch num {
		case sumCount:
			var v uint64
			v, b, err = consumeVarint(num, wt, rest)
			m.Count = float64(v)
		case sumSum:
			m.Sum, b, err = consumeFloat(num, wt, rest)
		case sumQuantile:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err == nil {
				err = d.decodeQuantile(v)
			}
		case sumCreated:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err == nil {
				err = created.decode(v)
			}
		default:
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) decodeQuantile(b []byte) error {
	var q Quantile
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch num {
		case quantQuantile:
			q.Quantile, b, err = consumeFloat(num, wt, rest)
		case quantValue:
			q.Value, b, err = consumeFloat(num, wt, rest)
		default:
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return fmt.Errorf("quantile: %w", err)
		}
	}
	d.quantiles = append(d.quantiles, q)
	return nil
}

func (d *Decoder) decodeHistogram(b []byte, t Type, m *Metric, h *histState, created *tsState) error {
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch {
		case num == histCount:
			h.count, b, err = consumeVarint(num, wt, rest)
		case num == histCountFloat:
			h.countFloat, b, err = consumeFloat(num, wt, rest)
		case num == histSum:
			m.Sum, b, err = consumeFloat(num, wt, rest)
		case num == histBucket:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err == nil {
				err = d.decodeBucket(v)
			}
		case num == histCreated && t == Histogram:
			var v []byte
			if v, b, err = consumeBytes(num, wt, rest); err == nil {
				err = created.decode(v)
			}
		default: // native-histogram fields, exemplars, unknown
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) decodeBucket(b []byte) error {
	var (
		bk    Bucket
		count uint64
		cf    float64
	)
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		switch num {
		case bktCount:
			count, b, err = consumeVarint(num, wt, rest)
		case bktCountFloat:
			cf, b, err = consumeFloat(num, wt, rest)
		case bktUpperBound:
			bk.UpperBound, b, err = consumeFloat(num, wt, rest)
		default: // exemplar, unknown
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return fmt.Errorf("bucket: %w", err)
		}
	}
	if cf > 0 {
		bk.Count = cf
	} else {
		bk.Count = float64(count)
	}
	d.buckets = append(d.buckets, bk)
	return nil
}

// decode merges a google.protobuf.Timestamp message into s; validation
// waits for the merged value.
func (s *tsState) decode(b []byte) error {
	s.seen = true
	for len(b) > 0 {
		num, wt, rest, err := next(b)
		if err != nil {
			return err
		}
		var v uint64
		switch num {
		case tsSeconds:
			v, b, err = consumeVarint(num, wt, rest)
			s.sec = int64(v)
		case tsNanos:
			v, b, err = consumeVarint(num, wt, rest)
			s.nanos = int32(v) // as protobuf decodes an int32
		default:
			b, err = skip(num, wt, rest)
		}
		if err != nil {
			return fmt.Errorf("created_timestamp: %w", err)
		}
	}
	return nil
}
