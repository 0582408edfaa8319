package pushbody

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// OpenMetrics text input (application/openmetrics-text, versions 0.0.1 and
// 1.0.0) is parsed here and converted to the metric families the rest of the
// gateway works on:
//
//	OpenMetrics family foo of type   becomes
//	counter (foo_total, foo_created) counter foo_total; foo_created is its created timestamp
//	gauge (foo)                      gauge foo
//	unknown (foo)                    untyped foo
//	histogram (foo_bucket, _count,   histogram foo; foo_created is its created timestamp
//	  _sum, _created)
//	gaugehistogram (foo_bucket,      gauge histogram foo
//	  _gcount, _gsum)
//	summary (foo, _count, _sum,      summary foo; foo_created is its created timestamp
//	  _created)
//	info (foo_info, value 1)         gauge foo_info, value 1, clear mode family
//	                                 unless the sample has a clear mode label
//	stateset (foo{foo="state"} 0|1)  gauge foo with the state label, clear mode
//	                                 replace (the gauge default)
//
// These are the names and types a Prometheus text-format client writes for
// the same metrics, so a push in either format lands in the same series.
//
// The body must end with "# EOF" (an optional line feed, then nothing);
// lines end with a line feed, never a carriage return; blank lines and
// comments other than # TYPE, # HELP, # UNIT and # EOF are errors, as are
// families or metrics that are not contiguous, metadata after a family's
// samples, and duplicate samples. Sample timestamps are rejected (as in the
// text format). Exemplars are checked for syntax and dropped. A UNIT must be
// a suffix of the family name ("_" + unit) and empty for info and stateset
// families; it is not kept. Histograms (not gauge histograms) need a +Inf
// bucket; their count defaults to it. Every error names the line.

// omVersionOK tells the OpenMetrics versions the parser reads.
func omVersionOK(v string) bool {
	return v == "" || v == "0.0.1" || v == "1.0.0"
}

// omSuffixes are the sample name suffixes each OpenMetrics type uses.
var omSuffixes = map[string][]string{
	"counter":        {"_total", "_created"},
	"gauge":          {""},
	"unknown":        {""},
	"stateset":       {""},
	"info":           {"_info"},
	"histogram":      {"_bucket", "_count", "_sum", "_created"},
	"gaugehistogram": {"_bucket", "_gcount", "_gsum"},
	"summary":        {"", "_count", "_sum", "_created"},
}

// omAllSuffixes are the suffixes of omSuffixes, each once.
var omAllSuffixes = []string{"", "_total", "_created", "_info", "_bucket", "_count", "_sum", "_gcount", "_gsum"}

// omFamily is one OpenMetrics metric family being read.
type omFamily struct {
	name, typ, help, unit     string
	hasType, hasHelp, hasUnit bool
	line                      int // first line
	sampled                   bool
	metrics                   []*omMetric
	byKey                     map[string]*omMetric
}

// omMetric is one metric (label set) of a family with the samples read so far.
type omMetric struct {
	labels []labelPair
	line   int
	seen   map[string]bool // sample suffixes seen (for duplicates)

	value                             float64 // gauge, unknown, stateset, info, counter total
	count, sum, created               float64
	hasValue, hasCount, hasSum, hasCr bool
	buckets                           []omBucket
	quantiles                         []quantile
}

type omBucket struct {
	le, count float64
	line      int
}

type omParser struct {
	line   int
	cur    *omFamily
	seen   map[string]*omFamily // every family started, by OpenMetrics name
	out    []family.Family
	outAt  map[string]int // converted name → line of its family
	lastMK string         // key of the metric the last sample belonged to
}

// decodeOpenMetrics parses an OpenMetrics text body.
func decodeOpenMetrics(r io.Reader) ([]family.Family, error) {
	p := &omParser{seen: map[string]*omFamily{}, outAt: map[string]int{}}
	br := bufio.NewReader(r)
	for {
		text, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, readError(err)
		}
		if text == "" && errors.Is(err, io.EOF) {
			p.line++
			return nil, p.errorf("", "missing # EOF at the end of the body (OpenMetrics requires it)")
		}
		p.line++
		line, hasLF := strings.CutSuffix(text, "\n")
		if line == "# EOF" {
			if hasLF {
				if rest, rerr := br.ReadString('\n'); rest != "" {
					p.line++
					return nil, p.errorf("", "content after # EOF")
				} else if rerr != nil && !errors.Is(rerr, io.EOF) {
					return nil, readError(rerr)
				}
			}
			if err := p.finish(); err != nil {
				return nil, err
			}
			return p.out, nil
		}
		if !hasLF {
			return nil, p.errorf("", "missing # EOF at the end of the body (OpenMetrics requires it)")
		}
		if err := p.parseLine(line); err != nil {
			return nil, err
		}
	}
}

func (p *omParser) errorf(metric, format string, args ...any) error {
	return &ValidationError{Line: p.line, Metric: metric, Reason: fmt.Sprintf(format, args...)}
}

func (p *omParser) parseLine(line string) error {
	switch {
	case line == "":
		return p.errorf("", "empty line (not allowed in OpenMetrics)")
	case strings.ContainsRune(line, '\r'):
		return p.errorf("", "carriage return (OpenMetrics lines end with a line feed only)")
	case !utf8.ValidString(line):
		return p.errorf("", "invalid UTF-8")
	case line[0] == '#':
		return p.parseDescriptor(line)
	default:
		return p.parseSample(line)
	}
}

// parseDescriptor reads "# TYPE|HELP|UNIT <name> <value>".
func (p *omParser) parseDescriptor(line string) error {
	c := &cursor{s: line}
	kw := ""
	for _, k := range []string{"# TYPE ", "# HELP ", "# UNIT "} {
		if strings.HasPrefix(line, k) {
			kw = k[2:6]
			c.i = len(k)
		}
	}
	if kw == "" {
		return p.errorf("", "unexpected comment (OpenMetrics allows only # TYPE, # HELP, # UNIT and # EOF)")
	}
	name, err := c.name(false)
	if err != nil {
		return p.errorf("", "# %s: %v", kw, err)
	}
	rest := ""
	if !c.done() {
		if c.s[c.i] != ' ' {
			return p.errorf(name, "# %s: expected a space after the name", kw)
		}
		rest = c.s[c.i+1:]
	}
	f, err := p.family(name)
	if err != nil {
		return err
	}
	if f.sampled {
		return p.errorf(name, "# %s after the family's samples", kw)
	}
	switch kw {
	case "TYPE":
		if f.hasType {
			return p.errorf(name, "# TYPE given twice")
		}
		if _, ok := omSuffixes[rest]; !ok {
			return p.errorf(name, "unknown type %q (want counter, gauge, histogram, gaugehistogram, stateset, info, summary or unknown)", rest)
		}
		f.typ, f.hasType = rest, true
	case "HELP":
		if f.hasHelp {
			return p.errorf(name, "# HELP given twice")
		}
		f.help, f.hasHelp = unescapeOM(rest), true
	case "UNIT":
		if f.hasUnit {
			return p.errorf(name, "# UNIT given twice")
		}
		for _, r := range rest {
			if !isNameChar(r, true) {
				return p.errorf(name, "invalid unit %q", rest)
			}
		}
		f.unit, f.hasUnit = rest, true
	}
	return nil
}

// family returns the current family if it is called name, else finishes it
// and starts name (which must not have been seen before).
func (p *omParser) family(name string) (*omFamily, error) {
	if p.cur != nil && p.cur.name == name {
		return p.cur, nil
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if _, dup := p.seen[name]; dup {
		return nil, p.errorf(name, "metric family is not contiguous (its lines must not be interleaved with other families)")
	}
	f := &omFamily{name: name, typ: "unknown", line: p.line, byKey: map[string]*omMetric{}}
	p.seen[name] = f
	p.cur = f
	p.lastMK = ""
	return f, nil
}

// parseSample reads "<name>[{labels}] <value> [<timestamp>] [# {labels} <value> [<timestamp>]]".
func (p *omParser) parseSample(line string) error {
	c := &cursor{s: line}
	name := ""
	if c.peek() != '{' {
		var err error
		if name, err = c.name(false); err != nil {
			return p.errorf("", "%v", err)
		}
	}
	var labels []labelPair
	if c.peek() == '{' {
		var err error
		if labels, err = c.labels(&name); err != nil {
			return p.errorf(name, "%v", err)
		}
	}
	if name == "" {
		return p.errorf("", "sample without a metric name")
	}
	if !c.spaces() {
		return p.errorf(name, "expected a space before the value")
	}
	value, err := parseOMNumber(c.token())
	if err != nil {
		return p.errorf(name, "value: %v", err)
	}
	if c.spaces() && c.peek() != '#' {
		if _, err := parseOMNumber(c.token()); err != nil {
			return p.errorf(name, "timestamp: %v", err)
		}
		return p.errorf(name, "pushed metrics must not carry timestamps")
	}
	if c.peek() == '#' { // Exemplar: checked and dropped.
		if err := c.exemplar(); err != nil {
			return p.errorf(name, "exemplar: %v", err)
		}
	}
	if !c.done() {
		return p.errorf(name, "unexpected %q after the value", c.s[c.i:])
	}
	if dup := duplicateLabel(labels); dup != "" {
		return p.errorf(name, "label %q given twice", dup)
	}

	f, suffix, err := p.familyOf(name)
	if err != nil {
		return err
	}
	f.sampled = true
	return p.addSample(f, name, suffix, labels, value)
}

// familyOf finds the family a sample name belongs to: the current family if
// the name is one of its type's sample names, else a new family of type
// unknown named like the sample.
func (p *omParser) familyOf(name string) (*omFamily, string, error) {
	if f := p.cur; f != nil {
		for _, suf := range omSuffixes[f.typ] {
			if name == f.name+suf {
				return f, suf, nil
			}
		}
		if name == f.name {
			return nil, "", p.errorf(name, "sample name not valid in %s family %s (want %s)", f.typ, f.name, suffixList(f.name, f.typ))
		}
	}
	for _, suf := range omAllSuffixes { // An earlier family's sample?
		base, ok := strings.CutSuffix(name, suf)
		if f := p.seen[base]; ok && f != nil && f != p.cur && slices.Contains(omSuffixes[f.typ], suf) {
			return nil, "", p.errorf(name, "sample of family %s, which is not contiguous (its lines must not be interleaved with other families)", base)
		}
	}
	f, err := p.family(name)
	if err != nil {
		return nil, "", err
	}
	return f, "", nil
}

func suffixList(name, typ string) string {
	var out []string
	for _, s := range omSuffixes[typ] {
		out = append(out, name+s)
	}
	return strings.Join(out, ", ")
}

// addSample records one sample in its family's metric.
func (p *omParser) addSample(f *omFamily, name, suffix string, labels []labelPair, v float64) error {
	// The label that is not part of the metric's identity: le of buckets,
	// quantile of summary quantiles.
	var special string
	switch {
	case suffix == "_bucket":
		special = bucketLabel
	case f.typ == "summary" && suffix == "":
		special = quantileLabel
	}
	var specialValue string
	hasSpecial := false
	if special != "" {
		idx := slices.IndexFunc(labels, func(l labelPair) bool { return l.name == special })
		if idx < 0 {
			return p.errorf(name, "%s sample without a %q label", f.typ, special)
		}
		specialValue, hasSpecial = labels[idx].value, true
		labels = slices.Delete(slices.Clone(labels), idx, idx+1)
	}
	sorted := slices.SortedFunc(slices.Values(labels), func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	key := labelsKey(sorted)
	series := name + labelString(sorted)

	perSample := f.typ == "gauge" || f.typ == "unknown" || f.typ == "stateset" || f.typ == "info"
	m := f.byKey[key]
	if m != nil && (perSample || key != p.lastMK) {
		if perSample {
			return p.errorf(series, "series given twice")
		}
		return p.errorf(series, "samples of one metric must be contiguous")
	}
	if m == nil {
		m = &omMetric{labels: labels, line: p.line, seen: map[string]bool{}}
		f.byKey[key] = m
		f.metrics = append(f.metrics, m)
	}
	p.lastMK = key

	if suffix != "_bucket" && !(f.typ == "summary" && suffix == "") {
		if m.seen[suffix] {
			return p.errorf(series, "sample given twice")
		}
		m.seen[suffix] = true
	}
	switch {
	case hasSpecial && special == bucketLabel:
		le, err := parseOMNumber(specialValue)
		if err != nil || math.IsNaN(le) {
			return p.errorf(series, "invalid le label %q", specialValue)
		}
		if !(v >= 0) {
			return p.errorf(series, "bucket count %v must be ≥ 0", v)
		}
		for _, b := range m.buckets {
			if b.le == le {
				return p.errorf(series, "bucket le=%q given twice", specialValue)
			}
		}
		m.buckets = append(m.buckets, omBucket{le: le, count: v, line: p.line})
	case hasSpecial:
		q, err := parseOMNumber(specialValue)
		if err != nil {
			return p.errorf(series, "invalid quantile label %q", specialValue)
		}
		for _, x := range m.quantiles {
			if x.quantile == q {
				return p.errorf(series, "quantile %q given twice", specialValue)
			}
		}
		m.quantiles = append(m.quantiles, quantile{quantile: q, value: v})
	case suffix == "_count" || suffix == "_gcount":
		if !(v >= 0) {
			return p.errorf(series, "count %v must be ≥ 0", v)
		}
		m.count, m.hasCount = v, true
	case suffix == "_sum" || suffix == "_gsum":
		m.sum, m.hasSum = v, true
	case suffix == "_created":
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return p.errorf(series, "created timestamp %v is not a time", v)
		}
		m.created, m.hasCr = v, true
	default: // counter _total, gauge, unknown, stateset, info
		switch f.typ {
		case "stateset":
			if !slices.ContainsFunc(labels, func(l labelPair) bool { return l.name == f.name }) {
				return p.errorf(series, "stateset sample without the state label %q", f.name)
			}
			if v != 0 && v != 1 {
				return p.errorf(series, "stateset value %v must be 0 or 1", v)
			}
		case "info":
			if v != 1 {
				return p.errorf(series, "info value %v must be 1", v)
			}
		}
		m.value, m.hasValue = v, true
	}
	return nil
}

// finish converts the current family, if any, to a family.Family.
func (p *omParser) finish() error {
	f := p.cur
	if f == nil {
		return nil
	}
	p.cur = nil
	if f.unit != "" {
		if f.typ == "info" || f.typ == "stateset" {
			p.line = f.line
			return p.errorf(f.name, "a %s family must not have a unit", f.typ)
		}
		if !strings.HasSuffix(f.name, "_"+f.unit) {
			p.line = f.line
			return p.errorf(f.name, "unit %q is not a suffix of the family name", f.unit)
		}
	}
	if len(f.metrics) == 0 {
		return nil // Families without samples are ignored, as in the text format.
	}
	savedLine := p.line
	defer func() { p.line = savedLine }()

	name, typ := f.name, family.Untyped
	switch f.typ {
	case "counter":
		name, typ = f.name+"_total", family.Counter
	case "gauge", "stateset":
		typ = family.Gauge
	case "info":
		name, typ = f.name+"_info", family.Gauge
	case "histogram":
		typ = family.Histogram
	case "gaugehistogram":
		typ = family.GaugeHistogram
	case "summary":
		typ = family.Summary
	}
	if at, dup := p.outAt[name]; dup {
		p.line = f.line
		return p.errorf(name, "family %s becomes %s, like the family at line %d", f.name, name, at)
	}
	p.outAt[name] = f.line
	out := family.Family{Name: name, Help: f.help, Type: typ, Metrics: make([]family.Metric, 0, len(f.metrics))}
	for _, m := range f.metrics {
		p.line = m.line
		fm, err := p.convert(f, m)
		if err != nil {
			return err
		}
		out.Metrics = append(out.Metrics, fm)
	}
	p.out = append(p.out, out)
	return nil
}

func (p *omParser) convert(f *omFamily, m *omMetric) (family.Metric, error) {
	fm := family.Metric{Labels: make([]family.Label, 0, len(m.labels)+1)}
	hasMode := false
	for _, l := range m.labels {
		hasMode = hasMode || l.name == ClearModeLabel || l.name == ClearModeLabelAlt
		fm.Labels = append(fm.Labels, family.Label{Name: l.name, Value: l.value})
	}
	id := f.name + labelString(m.labels)
	var created time.Time
	if m.hasCr {
		created = secondsToTime(m.created)
	}
	switch f.typ {
	case "counter":
		if !m.hasValue {
			return family.Metric{}, p.errorf(id, "counter without a %s_total sample", f.name)
		}
		fm.Value, fm.Created = m.value, created
	case "gauge", "stateset":
		fm.Value = m.value
	case "info":
		if !hasMode {
			// An info metric describes its pusher: the latest push's
			// label sets are the family (see the package documentation).
			fm.Labels = append(fm.Labels, family.Label{Name: ClearModeLabel, Value: "family"})
		}
		fm.Value = m.value
	case "unknown":
		fm.Value = m.value
	case "histogram", "gaugehistogram":
		fm.Sum = m.sum
		infAt := slices.IndexFunc(m.buckets, func(b omBucket) bool { return math.IsInf(b.le, +1) })
		fm.Count = m.count
		switch {
		case infAt < 0 && f.typ == "histogram":
			return family.Metric{}, p.errorf(id, "histogram without a +Inf bucket")
		case infAt >= 0 && !m.hasCount:
			fm.Count = m.buckets[infAt].count
		}
		fm.Buckets = make([]family.Bucket, 0, len(m.buckets))
		for _, b := range m.buckets {
			fm.Buckets = append(fm.Buckets, family.Bucket{UpperBound: b.le, Count: b.count})
		}
		if f.typ == "histogram" {
			fm.Created = created
		}
	case "summary":
		if m.hasCount && !isCount(m.count) {
			return family.Metric{}, p.errorf(id, "summary count %v must be a whole number", m.count)
		}
		fm.Count, fm.Sum, fm.Created = m.count, m.sum, created
		fm.Quantiles = make([]family.Quantile, 0, len(m.quantiles))
		for _, q := range m.quantiles {
			fm.Quantiles = append(fm.Quantiles, family.Quantile{Quantile: q.quantile, Value: q.value})
		}
	}
	return fm, nil
}

// isCount reports whether f is a whole number of at most 2^53 (a count a
// float64 holds exactly).
func isCount(f float64) bool { return f >= 0 && f <= 1<<53 && f == math.Trunc(f) }

func duplicateLabel(ls []labelPair) string {
	seen := make(map[string]bool, len(ls))
	for _, l := range ls {
		if seen[l.name] {
			return l.name
		}
		seen[l.name] = true
	}
	return ""
}

// parseOMNumber parses an OpenMetrics number: a decimal real number, or
// [sign] Inf/Infinity or NaN in any case. Go's hexadecimal and underscore
// forms are not numbers here.
func parseOMNumber(s string) (float64, error) {
	if s == "" {
		return 0, errors.New("missing number")
	}
	if strings.ContainsAny(s, "_xXpP") {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	return f, nil
}

// unescapeOM undoes OpenMetrics escaping: \\, \n and \". A backslash before
// any other character is kept as is.
func unescapeOM(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case '"':
				b.WriteByte('"')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isNameChar(r rune, digitOK bool) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == ':' || digitOK && r >= '0' && r <= '9'
}

// cursor scans one line.
type cursor struct {
	s string
	i int
}

func (c *cursor) done() bool { return c.i >= len(c.s) }

func (c *cursor) peek() byte {
	if c.done() {
		return 0
	}
	return c.s[c.i]
}

// spaces skips one or more spaces and reports whether there was any.
func (c *cursor) spaces() bool {
	start := c.i
	for !c.done() && c.s[c.i] == ' ' {
		c.i++
	}
	return c.i > start
}

// token returns the text up to the next space or the end.
func (c *cursor) token() string {
	start := c.i
	for !c.done() && c.s[c.i] != ' ' {
		c.i++
	}
	return c.s[start:c.i]
}

// name reads a metric name (label name when label is true): bare, or a
// quoted string for names outside the legacy character set.
func (c *cursor) name(label bool) (string, error) {
	if c.peek() == '"' {
		s, err := c.quoted()
		if err != nil {
			return "", err
		}
		if s == "" {
			return "", errors.New("empty quoted name")
		}
		return s, nil
	}
	start := c.i
	for !c.done() {
		r := rune(c.s[c.i])
		if !isNameChar(r, c.i > start) || label && r == ':' {
			break
		}
		c.i++
	}
	if c.i == start {
		if c.done() {
			return "", errors.New("missing name")
		}
		return "", fmt.Errorf("invalid character %q where a name was expected", c.s[c.i])
	}
	return c.s[start:c.i], nil
}

// quoted reads a double-quoted escaped string.
func (c *cursor) quoted() (string, error) {
	c.i++ // opening quote
	start := c.i
	for !c.done() {
		switch c.s[c.i] {
		case '\\':
			c.i += 2
			continue
		case '"':
			s := unescapeOM(c.s[start:c.i])
			c.i++
			return s, nil
		}
		c.i++
	}
	return "", errors.New("unterminated quoted string")
}

// labels reads {name="value",…}. When *metric is empty the first element may
// be a lone quoted metric name.
func (c *cursor) labels(metric *string) ([]labelPair, error) {
	c.i++ // {
	var out []labelPair
	if c.peek() == '}' {
		c.i++
		return out, nil
	}
	for {
		quotedName := c.peek() == '"'
		n, err := c.name(true)
		if err != nil {
			return nil, err
		}
		if *metric == "" && quotedName && len(out) == 0 && (c.peek() == ',' || c.peek() == '}') {
			*metric = n // {"metric.name",…}
		} else {
			if c.peek() != '=' {
				return nil, fmt.Errorf("label %q: expected '='", n)
			}
			c.i++
			if c.peek() != '"' {
				return nil, fmt.Errorf("label %q: expected a quoted value", n)
			}
			v, err := c.quoted()
			if err != nil {
				return nil, fmt.Errorf("label %q: %w", n, err)
			}
			out = append(out, labelPair{n, v})
		}
		switch c.peek() {
		case ',':
			c.i++
			if c.peek() == '}' {
				return nil, errors.New("trailing comma in labels")
			}
		case '}':
			c.i++
			return out, nil
		default:
			return nil, errors.New("expected ',' or '}' in labels")
		}
	}
}

// exemplar reads "# {labels} value [timestamp]".
func (c *cursor) exemplar() error {
	if !strings.HasPrefix(c.s[c.i:], "# {") {
		return errors.New(`expected "# {labels} value"`)
	}
	c.i += 2
	var none string
	if _, err := c.labels(&none); err != nil {
		return err
	}
	if none != "" {
		return errors.New("metric name in exemplar labels")
	}
	if !c.spaces() {
		return errors.New("expected a space before the value")
	}
	if _, err := parseOMNumber(c.token()); err != nil {
		return err
	}
	if c.spaces() {
		if _, err := parseOMNumber(c.token()); err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
	}
	return nil
}

// quantile is one summary quantile.
type quantile struct{ quantile, value float64 }
