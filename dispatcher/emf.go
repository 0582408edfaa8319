package dispatcher

import (
	"bytes"
	"encoding/json"
	"strings"
)

// This file finds CloudWatch Embedded Metric Format (EMF) documents in
// function log records and validates them ("Specification: Embedded metric
// format", CloudWatch User Guide). custom.go turns them into metrics.

// EMF limits of the specification.
const (
	emfMaxDimensionKeys = 30   // keys in one DimensionSet
	emfMaxMetrics       = 100  // MetricDefinitions in one MetricDirective
	emfMaxValues        = 100  // values in one target member array
	emfMaxNamespace     = 255  // characters of a Namespace
	emfMaxName          = 1024 // characters of a metric Name
	emfMaxDimensionLen  = 1024 // characters of a dimension value (CloudWatch's limit)
)

// Reasons a document that carries an "_aws" member is not valid EMF: the
// values of aws_lambda_emf_invalid_total's reason label.
const (
	emfInvalidJSON       = "json"       // not a single valid JSON object
	emfInvalidMetadata   = "metadata"   // _aws not an object, CloudWatchMetrics missing or not an array
	emfInvalidTimestamp  = "timestamp"  // _aws.Timestamp missing or not a number
	emfInvalidDirective  = "directive"  // a MetricDirective is malformed (Namespace, Dimensions, Metrics)
	emfInvalidDimensions = "dimensions" // a dimension key is missing at the root, not a string, too long, or clashes as a label
	emfInvalidMetric     = "metric"     // a MetricDefinition is malformed (Name, Unit, StorageResolution)
	emfInvalidValue      = "value"      // a metric's value is missing, not a number or array of 1–100 numbers, or a negative Count
)

// emfDocument is a validated EMF document, reduced to what becomes metrics.
type emfDocument struct {
	directives []emfDirective
}

type emfDirective struct {
	namespace string
	// dimensionSets hold, per DimensionSet, the dimension keys with their
	// values from the root node.
	dimensionSets [][]emfDimension
	metrics       []emfMetric
}

type emfDimension struct{ key, value string }

type emfMetric struct {
	name   string
	unit   *emfUnit
	values []float64 // in the EMF unit; one observation (or addition) each
}

// emfInvalid is the error of a document that is EMF but invalid.
type emfInvalid struct{ reason string }

func (e *emfInvalid) Error() string { return "invalid EMF document: " + e.reason }

func emfInvalidError(reason string) error { return &emfInvalid{reason: reason} }

var emfKey = []byte("_aws")

// emfCandidate is the cheap test every function log record goes through:
// the member name "_aws" followed by its closing quote, plain (JSON log
// format) or escaped (text format: the line is a JSON string). A record
// without it is not EMF.
func emfCandidate(raw []byte) bool {
	for {
		i := bytes.Index(raw, emfKey)
		if i < 0 {
			return false
		}
		raw = raw[i+len(emfKey):]
		if len(raw) > 0 && (raw[0] == '"' || raw[0] == '\\') {
			return true
		}
	}
}

// emfRoot finds the EMF root object in a function log record as the
// Telemetry API delivers it, and decodes it. It returns (nil, nil) when the
// record carries no JSON object with an "_aws" member (not EMF), and an
// *emfInvalid error when it does but the object is not valid JSON.
//
// Where the object sits:
//   - text log format (the record is a JSON string): the whole line, or the
//     part after the first tab that is followed by "{" — runtimes prefix
//     console output with "<time>\t<requestId>\t<LEVEL>\t" (Node.js) or
//     "[LEVEL]\t<time>\t<requestId>\t" (Python);
//   - JSON log format (the record is an object): the record itself when it
//     has an "_aws" member (a JSON line the function wrote to stdout, which
//     Lambda passes through), else its "message": an object, or a string
//     read as a text line.
func emfRoot(raw []byte) (map[string]any, error) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var line string
		if json.Unmarshal(raw, &line) != nil {
			return nil, nil
		}
		return emfRootInLine(line)
	case '{':
		var record map[string]any
		if json.Unmarshal(raw, &record) != nil {
			return nil, nil // not ours to judge: the record itself is broken
		}
		if _, ok := record["_aws"]; ok {
			return record, nil
		}
		switch msg := record["message"].(type) {
		case map[string]any:
			if _, ok := msg["_aws"]; ok {
				return msg, nil
			}
		case string:
			return emfRootInLine(msg)
		}
	}
	return nil, nil
}

// emfRootInLine finds the EMF object in a text log line.
func emfRootInLine(line string) (map[string]any, error) {
	obj := strings.TrimSpace(line)
	if !strings.HasPrefix(obj, "{") {
		obj = ""
		for i := 0; i < len(line); i++ {
			if line[i] != '\t' {
				continue
			}
			if rest := strings.TrimSpace(line[i+1:]); strings.HasPrefix(rest, "{") {
				obj = rest
				break
			}
		}
		if obj == "" {
			return nil, nil
		}
	}
	if !strings.Contains(obj, `"_aws"`) {
		return nil, nil
	}
	var root map[string]any
	if err := json.Unmarshal([]byte(obj), &root); err != nil {
		return nil, emfInvalidError(emfInvalidJSON)
	}
	if _, ok := root["_aws"]; !ok {
		return nil, nil
	}
	return root, nil
}

// parseEMF validates an EMF root node against the specification. Member
// names are case-sensitive; members the specification does not define are
// ignored, as it requires.
func parseEMF(root map[string]any) (*emfDocument, error) {
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		return nil, emfInvalidError(emfInvalidMetadata)
	}
	if _, ok := meta["Timestamp"].(float64); !ok {
		return nil, emfInvalidError(emfInvalidTimestamp)
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok {
		return nil, emfInvalidError(emfInvalidMetadata)
	}
	doc := &emfDocument{directives: make([]emfDirective, 0, len(directives))}
	for _, d := range directives {
		dir, err := parseDirective(root, d)
		if err != nil {
			return nil, err
		}
		doc.directives = append(doc.directives, dir)
	}
	return doc, nil
}

func parseDirective(root map[string]any, directive any) (emfDirective, error) {
	var dir emfDirective
	d, ok := directive.(map[string]any)
	if !ok {
		return dir, emfInvalidError(emfInvalidDirective)
	}
	if dir.namespace, ok = d["Namespace"].(string); !ok || dir.namespace == "" || len(dir.namespace) > emfMaxNamespace {
		return dir, emfInvalidError(emfInvalidDirective)
	}

	sets, ok := d["Dimensions"].([]any)
	if !ok {
		return dir, emfInvalidError(emfInvalidDirective)
	}
	if len(sets) == 0 {
		sets = []any{[]any{}} // no DimensionSet: the metric alone
	}
	dir.dimensionSets = make([][]emfDimension, 0, len(sets))
	for _, s := range sets {
		set, ok := s.([]any)
		if !ok || len(set) > emfMaxDimensionKeys {
			return dir, emfInvalidError(emfInvalidDirective)
		}
		dims := make([]emfDimension, 0, len(set))
		for _, k := range set {
			key, ok := k.(string)
			if !ok || key == "" {
				return dir, emfInvalidError(emfInvalidDirective)
			}
			value, ok := root[key].(string)
			if !ok || len(value) > emfMaxDimensionLen {
				return dir, emfInvalidError(emfInvalidDimensions)
			}
			dims = append(dims, emfDimension{key: key, value: value})
		}
		dir.dimensionSets = append(dir.dimensionSets, dims)
	}

	defs, ok := d["Metrics"].([]any)
	if !ok || len(defs) > emfMaxMetrics {
		return dir, emfInvalidError(emfInvalidDirective)
	}
	dir.metrics = make([]emfMetric, 0, len(defs))
	for _, md := range defs {
		def, ok := md.(map[string]any)
		if !ok {
			return dir, emfInvalidError(emfInvalidMetric)
		}
		var m emfMetric
		if m.name, ok = def["Name"].(string); !ok || m.name == "" || len(m.name) > emfMaxName {
			return dir, emfInvalidError(emfInvalidMetric)
		}
		unit := "None"
		if u, present := def["Unit"]; present {
			if unit, ok = u.(string); !ok {
				return dir, emfInvalidError(emfInvalidMetric)
			}
		}
		if m.unit = emfUnits[unit]; m.unit == nil {
			return dir, emfInvalidError(emfInvalidMetric)
		}
		if r, present := def["StorageResolution"]; present && r != 1.0 && r != 60.0 {
			return dir, emfInvalidError(emfInvalidMetric)
		}
		var err error
		if m.values, err = targetValues(root[m.name]); err != nil {
			return dir, err
		}
		if m.unit.kind == emfCounter {
			for _, v := range m.values {
				if v < 0 {
					return dir, emfInvalidError(emfInvalidValue)
				}
			}
		}
		dir.metrics = append(dir.metrics, m)
	}
	return dir, nil
}

// targetValues reads a metric's target member: a number, or an array of
// 1 to 100 numbers.
func targetValues(member any) ([]float64, error) {
	switch v := member.(type) {
	case float64:
		return []float64{v}, nil
	case []any:
		if len(v) == 0 || len(v) > emfMaxValues {
			return nil, emfInvalidError(emfInvalidValue)
		}
		out := make([]float64, len(v))
		for i, e := range v {
			f, ok := e.(float64)
			if !ok {
				return nil, emfInvalidError(emfInvalidValue)
			}
			out[i] = f
		}
		return out, nil
	}
	return nil, emfInvalidError(emfInvalidValue)
}

// emfKind is what a unit turns a metric into.
type emfKind int

const (
	emfHistogram emfKind = iota
	emfCounter
)

// emfUnit maps a CloudWatch unit to a Prometheus base unit.
type emfUnit struct {
	name   string // the CloudWatch unit, e.g. "Milliseconds"
	kind   emfKind
	factor float64 // multiplies an EMF value into the base unit
	suffix string  // appended to the metric name ("" for none)
	// strip are name endings that already state the unit and are replaced
	// by suffix, so "LatencyMs" in Milliseconds is latency_seconds.
	strip   []string
	buckets []float64 // histogram buckets, in the base unit
}

const (
	emfKilo = 1e3
	emfMega = 1e6
	emfGiga = 1e9
	emfTera = 1e12
)

var (
	// emfSecondsBuckets span a millisecond to the 900 s limit of a Lambda invocation.
	emfSecondsBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	// emfBytesBuckets are powers of 4 from 256 B to 1 GiB.
	emfBytesBuckets = []float64{1 << 8, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30}
	// emfRatioBuckets suit a percentage (as a ratio, 0–1 and above).
	emfRatioBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1}
	// emfPlainBuckets suit values of unknown scale (None, Count/Second).
	emfPlainBuckets = []float64{0.001, 0.01, 0.1, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 1e4, 1e5, 1e6}
)

var (
	emfTimeEndings  = []string{"_seconds", "_secs", "_sec", "_milliseconds", "_millis", "_ms", "_microseconds", "_micros", "_us"}
	emfBytesEndings = []string{"_bytes", "_kilobytes", "_megabytes", "_gigabytes", "_terabytes", "_kb", "_mb", "_gb", "_tb",
		"_bits", "_kilobits", "_megabits", "_gigabits", "_terabits"}
	emfRateEndings    = []string{"_bytes_per_second", "_bits_per_second", "_per_second", "_per_sec", "_bps"}
	emfPercentEndings = []string{"_percent", "_percentage", "_pct", "_ratio"}
	emfCountEndings   = []string{"_total", "_count"}
)

// emfUnits are the CloudWatch units (MetricDatum's StandardUnit), case
// as in the specification. Prefixes are decimal, as CloudWatch maps them
// to UCUM (Kilobytes is kBy, 1000 bytes); bits become bytes (÷ 8).
var emfUnits = func() map[string]*emfUnit {
	duration := func(f float64) *emfUnit {
		return &emfUnit{factor: f, suffix: "_seconds", strip: emfTimeEndings, buckets: emfSecondsBuckets}
	}
	size := func(f float64) *emfUnit {
		return &emfUnit{factor: f, suffix: "_bytes", strip: emfBytesEndings, buckets: emfBytesBuckets}
	}
	rate := func(f float64) *emfUnit {
		return &emfUnit{factor: f, suffix: "_bytes_per_second", strip: emfRateEndings, buckets: emfBytesBuckets}
	}
	units := map[string]*emfUnit{
		"Count":   {kind: emfCounter, factor: 1, suffix: "_total", strip: emfCountEndings},
		"None":    {factor: 1, buckets: emfPlainBuckets},
		"Percent": {factor: 0.01, suffix: "_ratio", strip: emfPercentEndings, buckets: emfRatioBuckets},

		"Seconds": duration(1), "Milliseconds": duration(1e-3), "Microseconds": duration(1e-6),

		"Bytes": size(1), "Kilobytes": size(emfKilo), "Megabytes": size(emfMega), "Gigabytes": size(emfGiga), "Terabytes": size(emfTera),
		"Bits": size(1.0 / 8), "Kilobits": size(emfKilo / 8), "Megabits": size(emfMega / 8), "Gigabits": size(emfGiga / 8), "Terabits": size(emfTera / 8),

		"Bytes/Second": rate(1), "Kilobytes/Second": rate(emfKilo), "Megabytes/Second": rate(emfMega),
		"Gigabytes/Second": rate(emfGiga), "Terabytes/Second": rate(emfTera),
		"Bits/Second": rate(1.0 / 8), "Kilobits/Second": rate(emfKilo / 8), "Megabits/Second": rate(emfMega / 8),
		"Gigabits/Second": rate(emfGiga / 8), "Terabits/Second": rate(emfTera / 8),

		"Count/Second": {factor: 1, suffix: "_per_second", strip: emfRateEndings, buckets: emfPlainBuckets},
	}
	for name, u := range units {
		u.name = name
	}
	return units
}()

// emfSnakeCase turns an EMF name into a Prometheus name part: ASCII letters
// and digits in lower case, words split at case changes ("HTTPRequests" →
// "http_requests", "S3Bytes" → "s3_bytes"), every other run of characters
// one "_", none leading or trailing; a leading digit gets a "_" before it.
// It returns "" when nothing is left.
func emfSnakeCase(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		upper, lower, digit := 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9'
		if !upper && !lower && !digit {
			sep = true
			continue
		}
		if upper && i > 0 {
			p := s[i-1]
			prevLowerOrDigit := ('a' <= p && p <= 'z') || ('0' <= p && p <= '9')
			acronymEnd := 'A' <= p && p <= 'Z' && i+1 < len(s) && 'a' <= s[i+1] && s[i+1] <= 'z'
			if prevLowerOrDigit || acronymEnd {
				sep = true
			}
		}
		if b.Len() == 0 && digit {
			b.WriteByte('_')
		} else if sep && b.Len() > 0 {
			b.WriteByte('_')
		}
		sep = false
		if upper {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// emfMetricName is the Prometheus name of an EMF metric in unit u: its
// snake_case name with a unit ending replaced by, or else followed by, the
// unit's suffix. "" when the name has no letter or digit.
func emfMetricName(name string, u *emfUnit) string {
	n := emfSnakeCase(name)
	if n == "" {
		return ""
	}
	for _, end := range u.strip {
		if len(n) > len(end) && strings.HasSuffix(n, end) {
			n = n[:len(n)-len(end)]
			break
		}
	}
	return n + u.suffix
}
