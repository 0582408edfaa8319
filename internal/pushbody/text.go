package pushbody

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// The Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format)
// is parsed here into family values, accepting and rejecting what the
// reference parser, expfmt.TextParser of github.com/prometheus/common v0.72.1
// with model.UTF8Validation, accepts and rejects, and producing the same
// families, without linking it (it pulls in the protobuf runtime).
//
// A body is lines ending with a line feed ("\n"; a carriage return is part of
// the line). Blanks (spaces and tabs) may lead a line and separate its tokens.
//
//	# HELP <name> <text>        text: the rest of the line, escapes \\ \n \"
//	# TYPE <name> <type>        type: counter, gauge, summary, histogram,
//	                            untyped, gauge_histogram or gaugehistogram, in
//	                            any case (by strings.ToUpper), backslashes
//	                            ignored; nothing else on the line
//	# <anything else>           ignored, as are blank lines
//	<name>[{<labels>}] <value> [<timestamp>]
//	{<labels with the name>} <value> [<timestamp>]
//
// Names are [a-zA-Z_:][a-zA-Z0-9_:]* or a double-quoted string (escapes \\ \n
// \") of valid UTF-8; label names the same without colons. A quoted name may
// also stand alone among the labels, as the metric name ({"my.metric",
// a="b"}). Label values are double-quoted with the same escapes, and a
// trailing comma is allowed. A value is a Go float (strconv.ParseFloat,
// including Inf, +Inf, -Inf, NaN in any case) without the hexadecimal and
// underscore forms; a timestamp is a decimal int64 in milliseconds. The label
// __name__ is reserved; label names must not repeat within a sample.
//
// Each metric name is one family. A HELP or TYPE line must come at most once
// per family, and TYPE before the family's first sample. A sample of an
// undeclared name is an untyped family. For a family h of type histogram or
// gauge histogram, the samples h_bucket (with an le label, the upper bound),
// h_count and h_sum belong to h; for a summary s, the samples s (with a
// quantile label), s_count and s_sum belong to s (and HELP or TYPE lines
// naming them apply to h or s). Such samples with the same labels (le and
// quantile aside) make one metric, whose labels are those of its first
// sample; a bucket or quantile of NaN is ignored; histogram counts must not
// be negative. Counter, gauge and untyped samples are each one metric, even
// when the labels repeat. Families without samples are dropped.
//
// Families come out in the order their names first appear; metrics in the
// order of their first sample; labels, buckets and quantiles as given (le and
// quantile removed from a bucket's or quantile's labels). A histogram's or
// summary's timestamp is the last one given among its samples.
//
// Deliberate divergences from expfmt.TextParser (text_test.go checks that
// they are the only ones):
//
//	D1  summary _count not a whole number in [0, 2^64)
//	    expfmt: truncated to a uint64 (negative, NaN and huge counts become
//	      platform-dependent numbers)
//	    here:   kept as is in Metric.Count
//	D2  sample of family F with the metric name inside the braces
//	    ({"F_bucket", le="1"} 1) when the family last named before it (by a
//	    sample or by a HELP or TYPE line with text) is P ≠ F, and P or F is a
//	    summary or histogram
//	    expfmt: reads le and quantile labels placed before the name as P's,
//	      and groups the sample with state left from P's line: it drops
//	      buckets or quantiles, files the sample under P's metrics, or
//	      panics (nil map)
//	    here:   the sample is read as its own family's, as if the name stood
//	      before the braces (normal output, where the TYPE line or the
//	      previous sample names F, is not concerned)
//	D3  error messages
//	    expfmt: "text format parsing error in line N: ..."
//	    here:   a *ValidationError with the same line N, in its own words
//
// Errors are *ValidationError with the 1-based line (the last line when the
// body does not end with a line feed) and, when known, the family name; a
// failure to read r is returned as is.

// parseText parses a text exposition format body (see above).
func parseText(r io.Reader) ([]family.Family, error) {
	var p textParser
	return p.parse(r)
}

// textFamily is a family being read.
type textFamily struct {
	fam              family.Family
	hasHelp, hasType bool           // HELP seen; type set by TYPE or a sample
	byKey            map[string]int // summary and histogram metrics by label key
}

// complex reports whether samples of f group into metrics by label set.
func (f *textFamily) complex() bool {
	return f != nil && (f.fam.Type == family.Summary || f.fam.Type == family.Histogram || f.fam.Type == family.GaugeHistogram)
}

// textResolution is what a sample or comment name designates: a family, and
// whether the name is its _count or _sum (summaries and histograms).
type textResolution struct {
	f          *textFamily
	count, sum bool
}

// textLabel is a label of the line being parsed, pointing into the line or
// into the parser's arena.
type textLabel struct{ name, value []byte }

type textParser struct {
	line   int
	fams   []*textFamily
	byName map[string]*textFamily
	// prev is the family the last name resolution found, the state expfmt
	// carries from line to line (for braceQuirkLine).
	prev *textFamily
	// One-entry cache of resolve: consecutive lines usually name the same
	// family. Resolutions never change once made (see resolve).
	lastName []byte
	lastRes  textResolution

	names  map[string]string // interned label names
	labels []textLabel       // labels of the current line
	sorted []textLabel       // scratch for label keys
	arena  []byte            // unescaped strings of the current line
	key    []byte            // scratch label key
	long   []byte            // scratch for lines longer than the read buffer

	// braceQuirkLine is the first line, if any, where this parser and
	// expfmt may disagree because of expfmt's state left from a previous
	// line (the second divergence in the table above). For the tests.
	braceQuirkLine int
}

func (p *textParser) parse(r io.Reader) ([]family.Family, error) {
	p.byName = map[string]*textFamily{}
	p.names = map[string]string{}
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			p.long = append(p.long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				p.long = append(p.long, b...)
			}
			b = p.long
		}
		if err == nil {
			p.line++
			if perr := p.parseLine(b[:len(b)-1]); perr != nil {
				return nil, perr
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(b) > 0 && skipTextBlanks(b, 0) < len(b) {
			// A last line without its line feed is an error, but one
			// within the line is worth telling first.
			p.line++
			if perr := p.parseLine(b); perr != nil {
				return nil, perr
			}
			return nil, p.errorf("", "unexpected end of input (the last line must end with a line feed)")
		}
		break
	}
	out := make([]family.Family, 0, len(p.fams))
	for _, f := range p.fams {
		if len(f.fam.Metrics) > 0 {
			out = append(out, f.fam)
		}
	}
	return out, nil
}

func (p *textParser) errorf(metric, format string, args ...any) error {
	return &ValidationError{Line: p.line, Metric: metric, Reason: fmt.Sprintf(format, args...)}
}

// parseLine parses one line, without its line feed.
func (p *textParser) parseLine(b []byte) error {
	i := skipTextBlanks(b, 0)
	if i == len(b) {
		return nil
	}
	// Unescaped names and values of the line go to the arena, which never
	// grows within the line (they are shorter than the line), so slices
	// into it stay valid.
	if cap(p.arena) < len(b) {
		p.arena = make([]byte, 0, len(b))
	}
	p.arena = p.arena[:0]
	if b[i] == '#' {
		return p.comment(b, i+1)
	}
	return p.sample(b, i)
}

// comment parses the rest of a comment line after the '#'.
func (p *textParser) comment(b []byte, i int) error {
	i = skipTextBlanks(b, i)
	start := i
	for i < len(b) && !isTextBlank(b[i]) {
		i++
	}
	if i == len(b) {
		return nil
	}
	kw := b[start:i]
	isHelp := string(kw) == "HELP"
	if !isHelp && string(kw) != "TYPE" {
		return nil
	}
	i = skipTextBlanks(b, i)
	name, i, err := p.readName(b, i, true)
	if err != nil || i == len(b) {
		return err
	}
	if !isTextBlank(b[i]) {
		return p.errorf("", "invalid metric name in # %s line", kw)
	}
	res, err := p.resolve(name)
	if err != nil {
		return err
	}
	f := res.f
	p.prev = f
	if i = skipTextBlanks(b, i); i == len(b) {
		return nil
	}
	if isHelp {
		if f.hasHelp {
			return p.errorf(f.fam.Name, "second HELP line for the metric")
		}
		help, err := p.unescapeHelp(b[i:])
		if err != nil {
			return err
		}
		f.fam.Help, f.hasHelp = help, true
		return nil
	}
	if f.hasType {
		return p.errorf(f.fam.Name, "second TYPE line for the metric, or TYPE after its samples")
	}
	// expfmt drops the backslashes of a type (it reads the rest of the line
	// as if for escapes and then ignores them).
	typ := b[i:]
	if bytes.IndexByte(typ, '\\') >= 0 {
		typ = bytes.ReplaceAll(typ, []byte{'\\'}, nil)
	}
	t, ok := parseTextType(typ)
	if !ok {
		return p.errorf(f.fam.Name, "unknown metric type %q", b[i:])
	}
	f.fam.Type, f.hasType = t, true
	return nil
}

// parseTextType reads a TYPE line's type, in any case (as expfmt, by
// strings.ToUpper).
func parseTextType(b []byte) (family.Type, bool) {
	s := string(b)
	for range 2 {
		switch s {
		case "counter", "COUNTER":
			return family.Counter, true
		case "gauge", "GAUGE":
			return family.Gauge, true
		case "summary", "SUMMARY":
			return family.Summary, true
		case "untyped", "UNTYPED":
			return family.Untyped, true
		case "histogram", "HISTOGRAM":
			return family.Histogram, true
		case "gauge_histogram", "gaugehistogram", "GAUGE_HISTOGRAM", "GAUGEHISTOGRAM":
			return family.GaugeHistogram, true
		}
		s = strings.ToUpper(s)
	}
	return 0, false
}

// unescapeHelp undoes the escapes of a HELP text: \\, \n and \" (expfmt
// accepts \" too); any other backslash is an error.
func (p *textParser) unescapeHelp(b []byte) (string, error) {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b), nil
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' {
			var err error
			if c, err = p.unescape(b, i); err != nil {
				return "", err
			}
			i++
		}
		out = append(out, c)
	}
	return string(out), nil
}

// unescape returns the character the escape sequence at b[i] (a backslash)
// stands for: \\, \n or \".
func (p *textParser) unescape(b []byte, i int) (byte, error) {
	if i+1 == len(b) {
		return 0, p.errorf("", `invalid escape sequence '\' at the end of the line`)
	}
	switch c := b[i+1]; c {
	case '\\', '"':
		return c, nil
	case 'n':
		return '\n', nil
	}
	return 0, p.errorf("", `invalid escape sequence '\%c'`, b[i+1])
}

// readName reads a metric name (label name unless metric) at b[i]: legacy
// characters, possibly followed by one double-quoted part that ends it (so
// "a.b", but also a"b" which is ab, as expfmt reads them). It returns the
// unquoted, unescaped name, empty if b[i] cannot start one, and the index
// after it.
func (p *textParser) readName(b []byte, i int, metric bool) ([]byte, int, error) {
	if i == len(b) || !isTextNameStart(b[i], metric) && b[i] != '"' {
		return nil, i, nil
	}
	start := i
	for i < len(b) && (isTextNameStart(b[i], metric) || b[i] >= '0' && b[i] <= '9') {
		i++
	}
	if i == len(b) || b[i] != '"' {
		return b[start:i], i, nil
	}
	at := len(p.arena)
	p.arena = append(p.arena, b[start:i]...)
	for i++; ; i++ {
		if i == len(b) {
			what := "label"
			if metric {
				what = "metric"
			}
			return nil, i, p.errorf("", "%s name %q contains an unescaped line feed", what, p.arena[at:])
		}
		c := b[i]
		switch c {
		case '"':
			return p.arena[at:], i + 1, nil
		case '\\':
			var err error
			if c, err = p.unescape(b, i); err != nil {
				return nil, i, err
			}
			i++
		}
		p.arena = append(p.arena, c)
	}
}

// readValue reads a label value after its opening quote at b[i-1] and returns
// it unescaped with the index after the closing quote.
func (p *textParser) readValue(b []byte, i int) ([]byte, int, error) {
	start := i
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return b[start:i], i + 1, nil
		case '\\':
			at := len(p.arena)
			p.arena = append(p.arena, b[start:i]...)
			for ; i < len(b); i++ {
				c := b[i]
				switch c {
				case '"':
					return p.arena[at:], i + 1, nil
				case '\\':
					var err error
					if c, err = p.unescape(b, i); err != nil {
						return nil, i, err
					}
					i++
				}
				p.arena = append(p.arena, c)
			}
			return nil, i, p.errorf("", "label value %q contains an unescaped line feed", p.arena[at:])
		}
	}
	return nil, i, p.errorf("", "label value %q contains an unescaped line feed", b[start:])
}

// resolve finds or creates the family a metric name designates, as expfmt
// does: the family of that name if any, else (for x_count, x_sum) a summary
// or histogram x, or (for x_bucket) a histogram x, else a new family of that
// name without a type. The answer for a name never changes afterwards: a
// family is never removed and its type, once set, never changes, and a name
// that found x would have found its own family first if it existed (it can
// only be created by a resolution of that name).
func (p *textParser) resolve(name []byte) (textResolution, error) {
	if p.lastRes.f != nil && bytes.Equal(name, p.lastName) {
		return p.lastRes, nil
	}
	if len(name) == 0 || !utf8.Valid(name) {
		return textResolution{}, p.errorf("", "invalid metric name %q", name)
	}
	res := textResolution{f: p.byName[string(name)]}
	if res.f == nil {
		n := len(name)
		var base []byte
		bucket := false
		switch {
		case n > 6 && string(name[n-6:]) == "_count":
			base, res.count = name[:n-6], true
		case n > 4 && string(name[n-4:]) == "_sum":
			base, res.sum = name[:n-4], true
		case n > 7 && string(name[n-7:]) == "_bucket":
			base, bucket = name[:n-7], true
		}
		if f := p.byName[string(base)]; base != nil && f.complex() && !(bucket && f.fam.Type == family.Summary) {
			res.f = f
		} else {
			res = textResolution{f: &textFamily{fam: family.Family{Name: string(name)}}}
			p.fams = append(p.fams, res.f)
			p.byName[res.f.fam.Name] = res.f
		}
	}
	p.lastName = append(p.lastName[:0], name...)
	p.lastRes = res
	return res, nil
}

// sampleFamily resolves a sample's name, making the family untyped if it has
// no type yet.
func (p *textParser) sampleFamily(name []byte) (textResolution, error) {
	res, err := p.resolve(name)
	if err != nil {
		return res, err
	}
	p.prev = res.f
	if !res.f.hasType {
		res.f.fam.Type, res.f.hasType = family.Untyped, true
	}
	return res, nil
}

// sample parses a sample line from its first non-blank byte b[i].
func (p *textParser) sample(b []byte, i int) error {
	p.labels = p.labels[:0]
	var res textResolution
	var err error
	if b[i] == '{' {
		if i, err = p.readLabels(b, i+1, &res); err != nil {
			return err
		}
	} else {
		var name []byte
		if name, i, err = p.readName(b, i, true); err != nil {
			return err
		}
		if len(name) == 0 {
			return p.errorf("", "invalid metric name")
		}
		if res, err = p.sampleFamily(name); err != nil {
			return err
		}
		if i = skipTextBlanks(b, i); i < len(b) && b[i] == '{' {
			if i, err = p.readLabels(b, i+1, &res); err != nil {
				return err
			}
		}
	}
	f := res.f

	// The label that is not part of the metric's identity.
	var special string
	switch f.fam.Type {
	case family.Summary:
		special = "quantile"
	case family.Histogram, family.GaugeHistogram:
		special = "le"
	}
	bound := math.NaN() // le or quantile
	kept := p.labels[:0]
	for _, l := range p.labels {
		if special != "" && string(l.name) == special {
			v, err := parseTextFloat(l.value)
			if err != nil {
				return p.errorf(f.fam.Name, "expected a float as the value of label %s, got %q", special, l.value)
			}
			bound = v // The last one counts; they may repeat.
			continue
		}
		kept = append(kept, l)
	}
	if dup := duplicateTextLabel(kept); dup != nil {
		return p.errorf(f.fam.Name, "duplicate label name %q", dup)
	}

	// Value and timestamp.
	start := i
	for i < len(b) && !isTextBlank(b[i]) {
		i++
	}
	v, err := parseTextFloat(b[start:i])
	if err != nil {
		return p.errorf(f.fam.Name, "expected a float as the value, got %q", b[start:i])
	}
	var ts int64
	hasTS := i < len(b)
	if hasTS {
		start = skipTextBlanks(b, i)
		for i = start; i < len(b) && !isTextBlank(b[i]); i++ {
		}
		if ts, err = strconv.ParseInt(string(b[start:i]), 10, 64); err != nil {
			return p.errorf(f.fam.Name, "expected an integer as the timestamp, got %q", b[start:i])
		}
		if i < len(b) {
			return p.errorf(f.fam.Name, "spurious string after the timestamp: %q", b[i:])
		}
	}

	var m *family.Metric
	switch f.fam.Type {
	case family.Summary:
		m = p.group(f, kept)
		switch {
		case res.count:
			m.Count = v
		case res.sum:
			m.Sum = v
		case !math.IsNaN(bound):
			m.Quantiles = append(m.Quantiles, family.Quantile{Quantile: bound, Value: v})
		}
	case family.Histogram, family.GaugeHistogram:
		m = p.group(f, kept)
		switch {
		case res.count:
			if v < 0 {
				return p.errorf(f.fam.Name, "negative histogram count %v", v)
			}
			m.Count = textPositiveZero(v)
		case res.sum:
			m.Sum = v
		case !math.IsNaN(bound):
			if v < 0 {
				return p.errorf(f.fam.Name, "negative histogram bucket count %v", v)
			}
			m.Buckets = append(m.Buckets, family.Bucket{UpperBound: bound, Count: textPositiveZero(v)})
		}
	default:
		f.fam.Metrics = append(f.fam.Metrics, family.Metric{Labels: p.makeLabels(kept), Value: v})
		m = &f.fam.Metrics[len(f.fam.Metrics)-1]
	}
	if hasTS {
		m.TimestampMs, m.HasTimestamp = ts, true
	}
	return nil
}

// readLabels reads a label set after its '{' at b[i-1], into p.labels, and
// returns the index of the value (after the '}' and blanks). When res.f is
// nil the metric name must be among the labels: a name without "=value",
// which it resolves into *res.
func (p *textParser) readLabels(b []byte, i int, res *textResolution) (int, error) {
	braces := res.f == nil
	for {
		i = skipTextBlanks(b, i)
		if i < len(b) && b[i] == '}' {
			if res.f == nil {
				return i, p.errorf("", "invalid metric name (none before or inside the braces)")
			}
			return skipTextBlanks(b, i+1), nil
		}
		ln, j, err := p.readName(b, i, false)
		if err != nil {
			return j, err
		}
		if len(ln) == 0 {
			return j, p.errorf(p.famName(res), "invalid label name at %q", b[j:])
		}
		i = skipTextBlanks(b, j)
		if i == len(b) || b[i] != '=' {
			if !braces {
				return i, p.errorf(p.famName(res), "expected '=' after label name %q, found %q", ln, textLineByte(b, i))
			}
			if res.f != nil {
				return i, p.errorf(res.f.fam.Name, "multiple metric names (second %q)", ln)
			}
			if c := textLineByte(b, i); c != ',' && c != '}' {
				return i, p.errorf("", "unexpected end of metric name %q, found %q", ln, c)
			}
			prev := p.prev
			if *res, err = p.sampleFamily(ln); err != nil {
				return i, err
			}
			if res.f != prev && (prev.complex() || res.f.complex()) && p.braceQuirkLine == 0 {
				p.braceQuirkLine = p.line
			}
			if b[i] == '}' {
				return skipTextBlanks(b, i+1), nil
			}
			i++
			continue
		}
		if string(ln) == "__name__" {
			return i, p.errorf(p.famName(res), `label name "__name__" is reserved`)
		}
		if !utf8.Valid(ln) {
			return i, p.errorf(p.famName(res), "invalid label name %q", ln)
		}
		if i = skipTextBlanks(b, i+1); i == len(b) || b[i] != '"' {
			return i, p.errorf(p.famName(res), "expected '\"' at the start of the value of label %q, found %q", ln, textLineByte(b, i))
		}
		v, j, err := p.readValue(b, i+1)
		if err != nil {
			return j, err
		}
		if !utf8.Valid(v) {
			return j, p.errorf(p.famName(res), "invalid label value %q", v)
		}
		p.labels = append(p.labels, textLabel{ln, v})
		switch i = skipTextBlanks(b, j); textLineByte(b, i) {
		case ',':
			i++
		case '}':
			if res.f == nil {
				return i, p.errorf("", "invalid metric name (none before or inside the braces)")
			}
			return skipTextBlanks(b, i+1), nil
		default:
			return i, p.errorf(p.famName(res), "unexpected end of label value %q", v)
		}
	}
}

func (p *textParser) famName(res *textResolution) string {
	if res.f == nil {
		return ""
	}
	return res.f.fam.Name
}

// group returns the metric of a summary or histogram with these labels,
// creating it.
func (p *textParser) group(f *textFamily, labels []textLabel) *family.Metric {
	p.sorted = append(p.sorted[:0], labels...)
	s := p.sorted
	for i := 1; i < len(s); i++ { // Insertion sort: label sets are small.
		for j := i; j > 0 && bytes.Compare(s[j].name, s[j-1].name) < 0; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	// Valid UTF-8 never holds 0xff, so the key is unambiguous.
	p.key = p.key[:0]
	for _, l := range s {
		p.key = append(p.key, l.name...)
		p.key = append(p.key, 0xff)
		p.key = append(p.key, l.value...)
		p.key = append(p.key, 0xff)
	}
	if idx, ok := f.byKey[string(p.key)]; ok {
		return &f.fam.Metrics[idx]
	}
	if f.byKey == nil {
		f.byKey = map[string]int{}
	}
	f.byKey[string(p.key)] = len(f.fam.Metrics)
	f.fam.Metrics = append(f.fam.Metrics, family.Metric{Labels: p.makeLabels(labels)})
	return &f.fam.Metrics[len(f.fam.Metrics)-1]
}

func (p *textParser) makeLabels(labels []textLabel) []family.Label {
	if len(labels) == 0 {
		return nil
	}
	out := make([]family.Label, len(labels))
	for i, l := range labels {
		name, ok := p.names[string(l.name)]
		if !ok {
			name = string(l.name)
			p.names[name] = name
		}
		out[i] = family.Label{Name: name, Value: string(l.value)}
	}
	return out
}

// duplicateTextLabel returns a label name that occurs twice, or nil.
func duplicateTextLabel(ls []textLabel) []byte {
	if len(ls) <= 16 {
		for i := 1; i < len(ls); i++ {
			for j := range i {
				if bytes.Equal(ls[i].name, ls[j].name) {
					return ls[i].name
				}
			}
		}
		return nil
	}
	seen := make(map[string]struct{}, len(ls))
	for _, l := range ls {
		if _, dup := seen[string(l.name)]; dup {
			return l.name
		}
		seen[string(l.name)] = struct{}{}
	}
	return nil
}

// parseTextFloat parses a sample value or an le or quantile label as expfmt
// does: strconv.ParseFloat (so also Inf, +Inf, -Inf, Infinity, NaN in any
// case) without hexadecimal floats or underscores.
func parseTextFloat(b []byte) (float64, error) {
	for _, c := range b {
		if c == 'p' || c == 'P' || c == '_' {
			return 0, errors.New("unsupported character in float")
		}
	}
	return strconv.ParseFloat(string(b), 64)
}

// isTextNameStart reports whether c may start a legacy metric name (label name
// unless metric). Digits may continue one.
func isTextNameStart(c byte, metric bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || metric && c == ':'
}

// textPositiveZero returns v with -0 made 0 (expfmt stores counts as integers).
func textPositiveZero(v float64) float64 {
	if v == 0 {
		return 0
	}
	return v
}

func isTextBlank(c byte) bool { return c == ' ' || c == '\t' }

func skipTextBlanks(b []byte, i int) int {
	for i < len(b) && isTextBlank(b[i]) {
		i++
	}
	return i
}

// textLineByte returns b[i], or '\n' at the end of the line.
func textLineByte(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return '\n'
}
