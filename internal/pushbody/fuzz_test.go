package pushbody_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// Fuzz targets for DecodeBody, one per body format and one over the headers.
// FuzzParseText (text_test.go) covers the text parser against expfmt and
// FuzzDecode (internal/family) the protobuf codec; these check what
// DecodeBody promises its callers whatever the input:
//
//   - it does not panic;
//   - an error is a *ValidationError (with a reason), wraps
//     ErrUnsupportedMediaType, or is an *http.MaxBytesError;
//   - on success the families are sorted by name (each name once), none is
//     without metrics, and every name, label name and label value is valid
//     UTF-8.
//
// Seeds come from testdata/ (copies of ../shared/fixtures/exposition).

// fuzzContentTypes and fuzzEncodings are the header values FuzzDecodeBody
// picks from: readable ones, unsupported ones and unparsable ones.
var fuzzContentTypes = []string{
	"",
	"text/plain; version=0.0.4; charset=utf-8",
	protoType,
	omType,
	"application/openmetrics-text",
	"application/openmetrics-text; version=0.0.1",
	"application/openmetrics-text; version=2.0.0",                                             // 415
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily",                // 415: no encoding
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text", // 415
	"application/json",
	"text/plain; ;;==", // unparsable: read as text
}

// Encodings: index 1 and 5 compress the body in the harness (so the
// decompressed bytes are the fuzzed body), index 2 declares gzip for the raw
// body.
var fuzzEncodings = []string{"", "gzip", "gzip", "identity", "br", "x-gzip", "GZIP "}

func fuzzSeeds(f *testing.F) (text, om, pb [][]byte) {
	f.Helper()
	read := func(glob string) [][]byte {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seed files %s: %v", glob, err)
		}
		var out [][]byte
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	text = read("testdata/text/*.txt")
	om = read("testdata/openmetrics/*.txt")
	pb = read("testdata/protobuf/*.bin")
	om = append(om,
		[]byte("# EOF\n"),
		[]byte("# TYPE a counter\na_total 1\na_created 1.5e9\n# EOF"),
		[]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n# EOF\n"),
		[]byte("# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 2\ng_gcount 2\ng_gsum 1\n# EOF\n"),
		[]byte("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 2\ns_sum 3\n# EOF\n"),
		[]byte("# TYPE x stateset\nx{x=\"a\"} 1\nx{x=\"b\"} 0\n# EOF\n"),
		[]byte("# TYPE b info\nb_info{v=\"1\"} 1\n# EOF\n"),
		[]byte("a_total 1 # {trace_id=\"x\"} 1 1.5\n# EOF\n"),
		[]byte("# TYPE u unknown\n# UNIT u_seconds seconds\nu_seconds 1\n# EOF\n"),
	)
	pb = append(pb, []byte{}, []byte{0}, []byte{0x05, 0x0a, 0x03, 'a', 'b', 'c'})
	return text, om, pb
}

// checkDecoded checks DecodeBody's result against its contract.
func checkDecoded(t *testing.T, fams []family.Family, err error) {
	t.Helper()
	if err != nil {
		var ve *pushbody.ValidationError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &ve):
			if ve.Reason == "" && ve.Err == nil {
				t.Fatalf("ValidationError without a reason: %#v", ve)
			}
		case errors.Is(err, pushbody.ErrUnsupportedMediaType), errors.As(err, &mbe):
		default:
			t.Fatalf("error %v (%T) is neither a *ValidationError, ErrUnsupportedMediaType nor *http.MaxBytesError", err, err)
		}
		if fams != nil {
			t.Fatalf("error %v with %d families", err, len(fams))
		}
		return
	}
	for i := range fams {
		f := &fams[i]
		if i > 0 && fams[i-1].Name >= f.Name {
			t.Fatalf("families not sorted by name or given twice: %q then %q", fams[i-1].Name, f.Name)
		}
		// Names are not checked beyond the format (an empty protobuf name
		// decodes; the gateway refuses it), but they are valid UTF-8.
		if !utf8.ValidString(f.Name) {
			t.Fatalf("family name %q is not valid UTF-8", f.Name)
		}
		if len(f.Metrics) == 0 {
			t.Fatalf("family %q has no metrics", f.Name)
		}
		for _, m := range f.Metrics {
			for _, l := range m.Labels {
				if !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
					t.Fatalf("family %q: label %q=%q is not valid UTF-8", f.Name, l.Name, l.Value)
				}
			}
		}
	}
}

func FuzzDecodeOpenMetrics(f *testing.F) {
	_, om, _ := fuzzSeeds(f)
	for _, b := range om {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fams, err := pushbody.DecodeBody(bytes.NewReader(body), ct(omType), 1<<20)
		checkDecoded(t, fams, err)
		if errors.Is(err, pushbody.ErrUnsupportedMediaType) {
			t.Fatalf("supported content type answered %v", err)
		}
		// OpenMetrics bodies never carry timestamps past the parser.
		for _, fam := range fams {
			for _, m := range fam.Metrics {
				if m.HasTimestamp {
					t.Fatalf("family %q: OpenMetrics sample with a timestamp accepted", fam.Name)
				}
			}
		}
	})
}

func FuzzDecodeProtobuf(f *testing.F) {
	_, _, pb := fuzzSeeds(f)
	for _, b := range pb {
		f.Add(b)
		if len(b) > 2 {
			f.Add(b[:len(b)/2]) // truncated
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fams, err := pushbody.DecodeBody(bytes.NewReader(body), ct(protoType), 1<<20)
		checkDecoded(t, fams, err)
		if errors.Is(err, pushbody.ErrUnsupportedMediaType) {
			t.Fatalf("supported content type answered %v", err)
		}
		// Whatever decodes re-encodes to a body that decodes the same.
		if err == nil {
			again, err := pushbody.DecodeBody(bytes.NewReader(delimited(fams...)), ct(protoType), 1<<20)
			if err != nil {
				t.Fatalf("re-encoded families do not decode: %v", err)
			}
			if !reflect.DeepEqual(normalise(again), normalise(fams)) {
				t.Fatalf("re-encoded families decode differently:\n%+v\n%+v", again, fams)
			}
		}
	})
}

// normalise makes nil and empty slices alike for comparisons.
func normalise(fams []family.Family) []family.Family {
	out := make([]family.Family, len(fams))
	for i, f := range fams {
		out[i] = f
		out[i].Metrics = make([]family.Metric, len(f.Metrics))
		for j, m := range f.Metrics {
			if len(m.Labels) == 0 {
				m.Labels = nil
			}
			if len(m.Buckets) == 0 {
				m.Buckets = nil
			}
			if len(m.Quantiles) == 0 {
				m.Quantiles = nil
			}
			out[i].Metrics[j] = m
		}
	}
	return out
}

func FuzzDecodeBody(f *testing.F) {
	text, om, pb := fuzzSeeds(f)
	for i, b := range text {
		f.Add(uint8(i), uint8(i), uint16(0), b)
	}
	for i, b := range om {
		f.Add(uint8(3+i%3), uint8(i), uint16(i*7), b)
	}
	for i, b := range pb {
		f.Add(uint8(2), uint8(i), uint16(i), b)
	}
	f.Fuzz(func(t *testing.T, ctIdx, ceIdx uint8, limit uint16, body []byte) {
		h := http.Header{}
		if c := fuzzContentTypes[int(ctIdx)%len(fuzzContentTypes)]; c != "" {
			h.Set("Content-Type", c)
		}
		enc := int(ceIdx) % len(fuzzEncodings)
		if e := fuzzEncodings[enc]; e != "" {
			h.Set("Content-Encoding", e)
		}
		wire := body
		compressed := enc == 1 || enc == 5
		if compressed {
			wire = gzipped(body)
		}
		maxBytes := int64(limit) // 0: the default
		fams, err := pushbody.DecodeBody(bytes.NewReader(wire), h, maxBytes)
		checkDecoded(t, fams, err)

		effective := maxBytes
		if effective <= 0 {
			effective = pushbody.DefaultMaxBodyBytes
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) && int64(len(body)) <= effective && mbe.Limit == effective && !strings.HasPrefix(h.Get("Content-Type"), "application/vnd.google.protobuf") {
			t.Fatalf("body of %d bytes refused as larger than %d", len(body), effective)
		}
		if err == nil && int64(len(body)) > effective {
			t.Fatalf("body of %d bytes accepted with a limit of %d", len(body), effective)
		}
		unsupported := errors.Is(err, pushbody.ErrUnsupportedMediaType)
		if enc == 4 && !unsupported {
			t.Fatalf("Content-Encoding br: got %v, want ErrUnsupportedMediaType", err)
		}
		if compressed {
			// Decompression is transparent: the same result as the plain body.
			h.Del("Content-Encoding")
			plain, perr := pushbody.DecodeBody(bytes.NewReader(body), h, maxBytes)
			if (err == nil) != (perr == nil) || (err != nil && err.Error() != perr.Error()) {
				t.Fatalf("gzip body: %v; plain body: %v", err, perr)
			}
			if err == nil && !reflect.DeepEqual(normalise(fams), normalise(plain)) {
				t.Fatalf("gzip body decodes differently:\n%+v\n%+v", fams, plain)
			}
		}
	})
}
