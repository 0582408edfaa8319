package pushbody

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

var textInf = math.Inf(1)

// textAccepted are bodies parseText accepts, with the families expected
// (sorted by name; nil Labels, Buckets and Quantiles for none).
var textAccepted = []struct {
	name, body string
	want       []family.Family
}{
	{"empty", "", nil},
	{"blank lines and blanks only", "\n  \n\t\n   ", nil},
	{"comments", "# just a comment\n#\n# \n#HELPER x\n# TYPE\n# HELP\n# HELP foo\n# TYPE foo\n", nil},
	{"untyped", "foo 1\n", []family.Family{{Name: "foo", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
	{"counter with help", "# HELP c_total Requests.\n# TYPE c_total counter\nc_total{code=\"200\",method=\"get\"} 3\nc_total{code=\"500\",method=\"get\"} 1\n", []family.Family{{
		Name: "c_total", Help: "Requests.", Type: family.Counter, Metrics: []family.Metric{
			{Labels: textLabels("code", "200", "method", "get"), Value: 3},
			{Labels: textLabels("code", "500", "method", "get"), Value: 1},
		},
	}}},
	{"gauge, blanks and tabs everywhere", " \t# \tTYPE\tg  gauge\n\t g \t{ a = \"1\" , b=\"2\" , } \t-0.5\t 1700000000000\n", []family.Family{{
		Name: "g", Type: family.Gauge, Metrics: []family.Metric{
			{Labels: textLabels("a", "1", "b", "2"), Value: -0.5, TimestampMs: 1700000000000, HasTimestamp: true},
		},
	}}},
	{"type in any case", "# TYPE g GaUgE\ng 1\n", []family.Family{{Name: "g", Type: family.Gauge, Metrics: []family.Metric{{Value: 1}}}}},
	{"help escapes", "# HELP h a\\\\b\\nc\\\"d \ttrailing \nh 1\n", []family.Family{{Name: "h", Help: "a\\b\nc\"d \ttrailing ", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
	{"label value escapes and UTF-8", "m{v=\"a\\\\b\\\"c\\nd\",w=\"héllo ☃\",e=\"\"} 1\n", []family.Family{{
		Name: "m", Type: family.Untyped, Metrics: []family.Metric{{Labels: textLabels("v", "a\\b\"c\nd", "w", "héllo ☃", "e", ""), Value: 1}},
	}}},
	{"special values", "a +Inf\nb -Inf\nc NaN\nd inf\ne Infinity\nf 1e3\ng -0\nh .5\n", nil},
	{"timestamps", "a 1 -5\nb 2 +7\nc 3 9223372036854775807\n", nil},
	{"no space after labels, value glued", "a{x=\"1\"}2\n", []family.Family{{Name: "a", Type: family.Untyped, Metrics: []family.Metric{{Labels: textLabels("x", "1"), Value: 2}}}}},
	{"duplicate series kept", "a{x=\"1\"} 1\na{x=\"1\"} 2\n", []family.Family{{Name: "a", Type: family.Untyped, Metrics: []family.Metric{{Labels: textLabels("x", "1"), Value: 1}, {Labels: textLabels("x", "1"), Value: 2}}}}},
	{"histogram", `# HELP rt Response time.
# TYPE rt histogram
rt_bucket{path="/",le="0.1"} 1
rt_bucket{path="/",le="1"} 3
rt_bucket{le="+Inf",path="/"} 4
rt_sum{path="/"} 2.5
rt_count{path="/"} 4
rt_bucket{path="/x",le="+Inf"} 0
rt_count{path="/x"} 0
rt_sum{path="/x"} 0
`, []family.Family{{Name: "rt", Help: "Response time.", Type: family.Histogram, Metrics: []family.Metric{
		{Labels: textLabels("path", "/"), Count: 4, Sum: 2.5, Buckets: textBuckets(0.1, 1, 1, 3, textInf, 4)},
		{Labels: textLabels("path", "/x"), Buckets: textBuckets(textInf, 0)},
	}}}},
	{"histogram buckets kept in given order, float counts", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2.5\nh_bucket{le=\"1\"} 1\nh_count 2.5\n",
		[]family.Family{{Name: "h", Type: family.Histogram, Metrics: []family.Metric{{Count: 2.5, Buckets: textBuckets(textInf, 2.5, 1, 1)}}}}},
	{"gauge histogram", "# TYPE gh gaugehistogram\ngh_bucket{le=\"+Inf\"} 3\ngh_count 3\ngh_sum 1\n# TYPE gh2 gauge_histogram\ngh2_bucket{le=\"1\"} 1\n", []family.Family{
		{Name: "gh", Type: family.GaugeHistogram, Metrics: []family.Metric{{Count: 3, Sum: 1, Buckets: textBuckets(textInf, 3)}}},
		{Name: "gh2", Type: family.GaugeHistogram, Metrics: []family.Metric{{Buckets: textBuckets(1, 1)}}},
	}},
	{"summary, interleaved metrics", `# TYPE s summary
s{quantile="0.5",a="x"} 1
s{a="y",quantile="0.5"} 10
s{a="x",quantile="0.9"} 2
s_sum{a="x"} 7
s_count{a="y"} 3
s_count{a="x"} 5
s{a="x",quantile="NaN"} 99
`, []family.Family{{Name: "s", Type: family.Summary, Metrics: []family.Metric{
		{Labels: textLabels("a", "x"), Count: 5, Sum: 7, Quantiles: textQuantiles(0.5, 1, 0.9, 2)},
		{Labels: textLabels("a", "y"), Count: 3, Quantiles: textQuantiles(0.5, 10)},
	}}}},
	{"suffixed names of other types are families", "# TYPE c counter\nc_count 1\nc_sum 2\n# TYPE s summary\ns_bucket{le=\"1\"} 3\n", []family.Family{
		{Name: "c_count", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}},
		{Name: "c_sum", Type: family.Untyped, Metrics: []family.Metric{{Value: 2}}},
		{Name: "s_bucket", Type: family.Untyped, Metrics: []family.Metric{{Labels: textLabels("le", "1"), Value: 3}}},
	}},
	{"histogram timestamps: last one wins", "# TYPE h histogram\nh_bucket{le=\"1\"} 1 10\nh_count 1 20\nh_sum 1\n",
		[]family.Family{{Name: "h", Type: family.Histogram, Metrics: []family.Metric{{Count: 1, Sum: 1, Buckets: textBuckets(1, 1), TimestampMs: 20, HasTimestamp: true}}}}},
	{"help and type via _count of a summary", "# TYPE s summary\n# HELP s_count Help.\ns_count 1\n",
		[]family.Family{{Name: "s", Help: "Help.", Type: family.Summary, Metrics: []family.Metric{{Count: 1}}}}},
	{"quoted UTF-8 names", `# HELP "my.metric" Dotted.
# TYPE "my.metric" gauge
{"my.metric", "label.with.dots"="v", b="w"} 1
{a="1", "my.metric"} 2
{"my.metric"} 3
"my.metric"{"ü"="x"} 4
# TYPE "my.hist" histogram
{"my.hist_bucket", le="1"} 1
{"my.hist_count"} 1
{"my.hist_sum"} 0.5
`, []family.Family{
		{Name: "my.hist", Type: family.Histogram, Metrics: []family.Metric{{Count: 1, Sum: 0.5, Buckets: textBuckets(1, 1)}}},
		{Name: "my.metric", Help: "Dotted.", Type: family.Gauge, Metrics: []family.Metric{
			{Labels: textLabels("label.with.dots", "v", "b", "w"), Value: 1},
			{Labels: textLabels("a", "1"), Value: 2},
			{Value: 3},
			{Labels: textLabels("ü", "x"), Value: 4},
		}},
	}},
	{"quoted name escapes", "{\"a\\\"b\\\\c\\nd\"} 1\n", []family.Family{{Name: "a\"b\\c\nd", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
	{"unquoted name in braces", "{foo, a=\"b\"} 1\n", []family.Family{{Name: "foo", Type: family.Untyped, Metrics: []family.Metric{{Labels: textLabels("a", "b"), Value: 1}}}}},
	{"half-quoted name (as expfmt reads it)", "foo\"bar\" 1\n", []family.Family{{Name: "foobar", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
	{"families without samples dropped", "# HELP a A.\n# TYPE a counter\n# TYPE b gauge\nb 1\n", []family.Family{{Name: "b", Type: family.Gauge, Metrics: []family.Metric{{Value: 1}}}}},
	{"histogram sample without le nor suffix", "# TYPE h histogram\nh{a=\"b\"} 1\n", []family.Family{{Name: "h", Type: family.Histogram, Metrics: []family.Metric{{Labels: textLabels("a", "b")}}}}},
	{"repeated le: last wins", "# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 1\n", []family.Family{{Name: "h", Type: family.Histogram, Metrics: []family.Metric{{Buckets: textBuckets(2, 1)}}}}},
	{"fractional and negative summary count (D1)", "# TYPE s summary\ns_count{a=\"1\"} 2.5\ns_count{a=\"2\"} -1\n", []family.Family{{Name: "s", Type: family.Summary, Metrics: []family.Metric{
		{Labels: textLabels("a", "1"), Count: 2.5}, {Labels: textLabels("a", "2"), Count: -1},
	}}}},
	{"carriage return in help", "# HELP a x\r\na 1\n", []family.Family{{Name: "a", Help: "x\r", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
	{"backslashes in a type are ignored (as expfmt)", "# TYPE g gau\\ge\\\ng 1\n", []family.Family{{Name: "g", Type: family.Gauge, Metrics: []family.Metric{{Value: 1}}}}},
	{"braces name of a histogram after its TYPE", "# TYPE h histogram\n{le=\"1\", \"h_bucket\", a=\"x\"} 1\n{\"h_sum\", a=\"x\"} 2\n", []family.Family{{
		Name: "h", Type: family.Histogram, Metrics: []family.Metric{{Labels: textLabels("a", "x"), Sum: 2, Buckets: textBuckets(1, 1)}},
	}}},
	{"mixed: many families interleaved", "# TYPE s summary\na 1\ns_count 2\nb{x=\"y\"} 3\ns{quantile=\"1\"} 4\n# HELP a A\n", nil},
	{"name with digits and colons", "a:b_1:2 1\n", nil},
	{"NUL and odd bytes in quoted names", "{\"a\\n\x00\x01\"} 1\n", nil},
	{"trailing blanks after the last line", "a 1\n \t", []family.Family{{Name: "a", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}}}},
}

// textRejected are bodies parseText rejects, with the line it names.
var textRejected = []struct {
	name, body string
	line       int
}{
	{"no final line feed", "a 1", 1},
	{"no final line feed after a comment", "a 1\n# c", 2},
	{"second HELP", "# HELP a x\n# HELP a y\n", 2},
	{"second TYPE", "# TYPE a gauge\n# TYPE a counter\n", 2},
	{"TYPE after samples", "a 1\n# TYPE a gauge\n", 2},
	{"TYPE of a summary via _count after TYPE", "# TYPE s summary\n# TYPE s_count counter\n", 2},
	{"unknown type", "# TYPE a foo\n", 1},
	{"type with trailing blank", "# TYPE a gauge \n", 1},
	{"type then garbage", "# TYPE a gauge x\n", 1},
	{"invalid metric name in comment", "# HELP 1a x\n", 1},
	{"invalid help escape", "\n# HELP a x\\t\n", 2},
	{"help ending in a backslash", "# HELP a x\\\n", 1},
	{"empty quoted name in comment", "# HELP \"\" x\n", 1},
	{"missing value", "a\n", 1},
	{"missing value after labels", "a{b=\"c\"}\n", 1},
	{"bad value", "a 1\na x\n", 2},
	{"hex value", "a 0x1p3\n", 1},
	{"hex value without exponent", "a 0x0\n", 1},
	{"underscore value", "a 1_000\n", 1},
	{"out of range value", "a 1e400\n", 1},
	{"bad timestamp", "a 1 1.5\n", 1},
	{"timestamp out of range", "a 1 9223372036854775808\n", 1},
	{"trailing blank after value", "a 1 \n", 1},
	{"spurious after timestamp", "a 1 2 3\n", 1},
	{"trailing blank after timestamp", "a 1 2 \n", 1},
	{"carriage return after value", "a 1\r\n", 1},
	{"invalid metric name", "1a 1\n", 1},
	{"empty quoted metric name", "\"\" 1\n", 1},
	{"duplicate label", "a{b=\"1\",b=\"2\"} 1\n", 1},
	{"duplicate label in a summary", "# TYPE s summary\ns{b=\"1\",quantile=\"0.5\",b=\"2\"} 1\n", 2},
	{"reserved label", "a{__name__=\"x\"} 1\n", 1},
	{"invalid label name", "a{1b=\"1\"} 1\n", 1},
	{"colon in label name", "a{b:c=\"1\"} 1\n", 1},
	{"empty label name", "a{=\"1\"} 1\n", 1},
	{"double comma", "a{b=\"1\",,} 1\n", 1},
	{"unquoted label value", "a{b=1} 1\n", 1},
	{"unterminated label value", "a{b=\"1} 1\n", 1},
	{"invalid label value escape", "a{b=\"\\t\"} 1\n", 1},
	{"invalid UTF-8 label value", "a{b=\"\xff\"} 1\n", 1},
	{"invalid UTF-8 metric name", "{\"\xff\"} 1\n", 1},
	{"invalid UTF-8 label name", "a{\"\xfe\"=\"x\"} 1\n", 1},
	{"unterminated labels", "a{b=\"1\" 1\n", 1},
	{"missing '=' after label name", "a{b} 1\n", 1},
	{"no name in braces", "{a=\"b\"} 1\n", 1},
	{"empty braces", "{} 1\n", 1},
	{"two names in braces", "{\"a\", \"b\"} 1\n", 1},
	{"name in braces then garbage", "{a b} 1\n", 1},
	{"unterminated quoted name", "\"abc 1\n", 1},
	{"bad le", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 2},
	{"empty le", "# TYPE h histogram\nh_bucket{le=\"\"} 1\n", 2},
	{"bad quantile", "# TYPE s summary\ns{quantile=\"0x1\"} 1\n", 2},
	{"negative histogram count", "# TYPE h histogram\nh_count -1\n", 2},
	{"negative bucket count", "# TYPE h histogram\nh_bucket{le=\"1\"} -0.5\n", 2},
	{"negative infinite bucket count", "# TYPE h histogram\nh_bucket{le=\"1\"} -Inf\n", 2},
}

func TestParseTextAccepts(t *testing.T) {
	for _, tc := range textAccepted {
		got, err := parseText(strings.NewReader(tc.body))
		if err != nil {
			t.Errorf("%s: parseText: %v", tc.name, err)
			continue
		}
		sortTextFamilies(got)
		if tc.want != nil || len(got) == 0 {
			if d := diffTextFamilies(got, tc.want); d != "" {
				t.Errorf("%s: %s", tc.name, d)
			}
		}
	}
}

func TestParseTextRejects(t *testing.T) {
	for _, tc := range textRejected {
		_, err := parseText(strings.NewReader(tc.body))
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: parseText error %v, want a *ValidationError", tc.name, err)
			continue
		}
		if ve.Line != tc.line || ve.Reason == "" {
			t.Errorf("%s: parseText error %v at line %d, want line %d", tc.name, err, ve.Line, tc.line)
		}
	}
}

func TestParseTextReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := parseText(&textErrReader{data: "a 1\n", err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("parseText error %v, want the read error", err)
	}
}

type textErrReader struct {
	data string
	err  error
}

func (r *textErrReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestParseTextLongLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	body := "a{v=\"" + long + "\"} 1\nb 2\n"
	fams, err := parseText(strings.NewReader(body))
	if err != nil || len(fams) != 2 || fams[0].Metrics[0].Labels[0].Value != long {
		t.Fatalf("parseText long line: %d families, %v", len(fams), err)
	}
	checkTextDifferential(t, body)
}

// textDivergent are bodies on which parseText deliberately differs from
// expfmt (see the table in text.go).
var textDivergent = []struct{ name, body string }{
	// D2: expfmt carries the untyped family's state into the braces line
	// and panics on a nil map.
	{"braces name of a histogram after another family", "# TYPE h histogram\nx 1\n{\"h_bucket\", a=\"b\", le=\"1\"} 1\n"},
	// D2: expfmt reads le as a plain label (the summary s of the previous
	// line has none) and makes an empty h metric with label le.
	{"braces name after a summary line", "# TYPE s summary\n# TYPE h histogram\ns{quantile=\"0.5\"} 1\n{le=\"1\", \"h_bucket\"} 1\n"},
}

func TestParseTextDivergences(t *testing.T) {
	for _, tc := range textDivergent {
		var p textParser
		if _, err := p.parse(strings.NewReader(tc.body)); err != nil {
			t.Errorf("%s: parseText: %v", tc.name, err)
		}
		if p.braceQuirkLine == 0 {
			t.Errorf("%s: divergence not detected", tc.name)
		}
	}
	// What this parser makes of them.
	fams, err := parseText(strings.NewReader(textDivergent[0].body))
	sortTextFamilies(fams)
	want := []family.Family{
		{Name: "h", Type: family.Histogram, Metrics: []family.Metric{{Labels: textLabels("a", "b"), Buckets: textBuckets(1, 1)}}},
		{Name: "x", Type: family.Untyped, Metrics: []family.Metric{{Value: 1}}},
	}
	if d := diffTextFamilies(fams, want); err != nil || d != "" {
		t.Errorf("divergent body: %v %s", err, d)
	}
}

// textCorpus is every body of the tables and the fixtures.
func textCorpus(t testing.TB) []string {
	var out []string
	for _, tc := range textAccepted {
		out = append(out, tc.body)
	}
	for _, tc := range textRejected {
		out = append(out, tc.body)
	}
	for _, tc := range textDivergent {
		out = append(out, tc.body)
	}
	files, err := filepath.Glob("testdata/text/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/text: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	out = append(out, benchTextBody())
	return out
}

func TestParseTextMatchesExpfmt(t *testing.T) {
	for _, body := range textCorpus(t) {
		checkTextDifferential(t, body)
	}
}

func FuzzParseText(f *testing.F) {
	for _, body := range textCorpus(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		checkTextDifferential(t, body)
	})
}

// checkTextDifferential parses body with parseText and expfmt.TextParser and
// fails unless both reject it at the same line or both accept it with the
// same families, but for the deliberate divergences.
func checkTextDifferential(t testing.TB, body string) {
	t.Helper()
	var p textParser
	got, err := p.parse(strings.NewReader(body))
	want, wantLine, panicked, wantErr := expfmtParse(body)
	if q := p.braceQuirkLine; q > 0 {
		// Divergence D2 from line q on: only the lines before must agree.
		if wantErr != nil && wantLine < q {
			t.Fatalf("body %q: expfmt fails at line %d (%v) before the divergent line %d; parseText: %v", body, wantLine, wantErr, q, err)
		}
		return
	}
	if panicked != nil {
		t.Fatalf("body %q: expfmt panicked (%v) outside a known divergence; parseText: %v", body, panicked, err)
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("body %q: parseText error %v; expfmt error %v", body, err, wantErr)
	}
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Line != wantLine {
			t.Fatalf("body %q: parseText error %v; expfmt error at line %d: %v", body, err, wantLine, wantErr)
		}
		return
	}
	// Divergence D1: expfmt truncates summary counts to uint64.
	for i := range got {
		if got[i].Type == family.Summary {
			for j := range got[i].Metrics {
				c := &got[i].Metrics[j].Count
				*c = float64(uint64(*c))
			}
		}
	}
	sortTextFamilies(got)
	if d := diffTextFamilies(got, want); d != "" {
		t.Fatalf("body %q: parseText and expfmt differ: %s", body, d)
	}
}

// expfmtParse runs the reference parser and converts its output.
func expfmtParse(body string) (fams []family.Family, line int, panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	m, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		var pe expfmt.ParseError
		if errors.As(err, &pe) {
			line = pe.Line
		}
		return nil, line, nil, err
	}
	for _, mf := range m {
		fams = append(fams, textFamilyFromDTO(mf))
	}
	sortTextFamilies(fams)
	return fams, 0, nil, nil
}

func textFamilyFromDTO(mf *dto.MetricFamily) family.Family {
	f := family.Family{Name: mf.GetName(), Help: mf.GetHelp(), Type: family.Type(mf.GetType())}
	for _, dm := range mf.GetMetric() {
		var m family.Metric
		for _, l := range dm.GetLabel() {
			m.Labels = append(m.Labels, family.Label{Name: l.GetName(), Value: l.GetValue()})
		}
		if dm.TimestampMs != nil {
			m.TimestampMs, m.HasTimestamp = dm.GetTimestampMs(), true
		}
		switch f.Type {
		case family.Counter:
			m.Value = dm.GetCounter().GetValue()
		case family.Gauge:
			m.Value = dm.GetGauge().GetValue()
		case family.Untyped:
			m.Value = dm.GetUntyped().GetValue()
		case family.Summary:
			s := dm.GetSummary()
			m.Count, m.Sum = float64(s.GetSampleCount()), s.GetSampleSum()
			for _, q := range s.GetQuantile() {
				m.Quantiles = append(m.Quantiles, family.Quantile{Quantile: q.GetQuantile(), Value: q.GetValue()})
			}
		case family.Histogram, family.GaugeHistogram:
			h := dm.GetHistogram()
			m.Count, m.Sum = float64(h.GetSampleCount()), h.GetSampleSum()
			if h.SampleCountFloat != nil {
				m.Count = h.GetSampleCountFloat()
			}
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					c = b.GetCumulativeCountFloat()
				}
				m.Buckets = append(m.Buckets, family.Bucket{UpperBound: b.GetUpperBound(), Count: c})
			}
		}
		f.Metrics = append(f.Metrics, m)
	}
	return f
}

// textLabels makes labels of name, value pairs.
func textLabels(nv ...string) []family.Label {
	var out []family.Label
	for i := 0; i < len(nv); i += 2 {
		out = append(out, family.Label{Name: nv[i], Value: nv[i+1]})
	}
	return out
}

// textBuckets makes buckets of upper bound, count pairs.
func textBuckets(bc ...float64) []family.Bucket {
	var out []family.Bucket
	for i := 0; i < len(bc); i += 2 {
		out = append(out, family.Bucket{UpperBound: bc[i], Count: bc[i+1]})
	}
	return out
}

// textQuantiles makes quantiles of quantile, value pairs.
func textQuantiles(qv ...float64) []family.Quantile {
	var out []family.Quantile
	for i := 0; i < len(qv); i += 2 {
		out = append(out, family.Quantile{Quantile: qv[i], Value: qv[i+1]})
	}
	return out
}

func sortTextFamilies(fams []family.Family) {
	slices.SortFunc(fams, func(a, b family.Family) int { return strings.Compare(a.Name, b.Name) })
}

// diffTextFamilies describes the first difference between got and want ("" if
// none): floats compare bitwise but for NaN payloads, so -0 ≠ 0.
func diffTextFamilies(got, want []family.Family) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d families %v, want %d %v", len(got), textFamilyNames(got), len(want), textFamilyNames(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Help != w.Help || g.Type != w.Type || len(g.Metrics) != len(w.Metrics) {
			return fmt.Sprintf("family %q: got %q %v %d metrics, want %q %q %v %d metrics", w.Name, g.Help, g.Type, len(g.Metrics), w.Name, w.Help, w.Type, len(w.Metrics))
		}
		for j := range g.Metrics {
			gm, wm := g.Metrics[j], w.Metrics[j]
			same := slices.Equal(gm.Labels, wm.Labels) && sameFloat(gm.Value, wm.Value) && sameFloat(gm.Count, wm.Count) &&
				sameFloat(gm.Sum, wm.Sum) && gm.TimestampMs == wm.TimestampMs && gm.HasTimestamp == wm.HasTimestamp &&
				gm.Created.Equal(wm.Created) &&
				slices.EqualFunc(gm.Buckets, wm.Buckets, func(a, b family.Bucket) bool {
					return sameFloat(a.UpperBound, b.UpperBound) && sameFloat(a.Count, b.Count)
				}) &&
				slices.EqualFunc(gm.Quantiles, wm.Quantiles, func(a, b family.Quantile) bool {
					return sameFloat(a.Quantile, b.Quantile) && sameFloat(a.Value, b.Value)
				})
			if !same {
				return fmt.Sprintf("family %q metric %d: got %+v, want %+v", w.Name, j, gm, wm)
			}
		}
	}
	return ""
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

func textFamilyNames(fams []family.Family) []string {
	var out []string
	for _, f := range fams {
		out = append(out, f.Name)
	}
	return out
}

// benchTextBody is a realistic 200-line push: client_golang-style families
// with HELP and TYPE, counters and gauges with a few labels, a histogram and
// a summary.
func benchTextBody() string {
	var b bytes.Buffer
	b.WriteString("# HELP http_requests_total Total HTTP requests.\n# TYPE http_requests_total counter\n")
	for i := range 60 {
		fmt.Fprintf(&b, "http_requests_total{code=\"%d\",handler=\"/api/v1/item/%d\",method=\"GET\"} %d\n", 200+i%5*100, i, 1000+i*37)
	}
	b.WriteString("# HELP queue_depth Items waiting.\n# TYPE queue_depth gauge\n")
	for i := range 40 {
		fmt.Fprintf(&b, "queue_depth{queue=\"q%d\",region=\"eu-west-1\"} %g\n", i, float64(i)*1.5)
	}
	b.WriteString("# HELP request_duration_seconds Request latency.\n# TYPE request_duration_seconds histogram\n")
	bounds := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	for h := range 6 {
		for i, le := range bounds {
			fmt.Fprintf(&b, "request_duration_seconds_bucket{handler=\"/h%d\",le=\"%s\"} %d\n", h, le, i*10+h)
		}
		fmt.Fprintf(&b, "request_duration_seconds_sum{handler=\"/h%d\"} %g\n", h, 12.75+float64(h))
		fmt.Fprintf(&b, "request_duration_seconds_count{handler=\"/h%d\"} %d\n", h, 110+h)
	}
	b.WriteString("# HELP rpc_durations_seconds RPC latency.\n# TYPE rpc_durations_seconds summary\n")
	for s := range 4 {
		for _, q := range []string{"0.5", "0.9", "0.99"} {
			fmt.Fprintf(&b, "rpc_durations_seconds{service=\"svc%d\",quantile=\"%s\"} %g\n", s, q, 0.01*float64(s+1))
		}
		fmt.Fprintf(&b, "rpc_durations_seconds_sum{service=\"svc%d\"} %g\n", s, 1.5*float64(s))
		fmt.Fprintf(&b, "rpc_durations_seconds_count{service=\"svc%d\"} %d\n", s, 100*s)
	}
	b.WriteString("# HELP process_start_time_seconds Start time.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1.7e+09\n")
	return b.String()
}

func BenchmarkParseText(b *testing.B) {
	body := benchTextBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseText(strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpfmtTextParser(b *testing.B) {
	body := benchTextBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		tp := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := tp.TextToMetricFamilies(strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}
