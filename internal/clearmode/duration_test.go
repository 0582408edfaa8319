package clearmode

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// durationCorpus covers every branch of the grammar: each unit, orders,
// repeats, "0", signs, fractions, spaces, unknown units and overflow.
var durationCorpus = []string{
	"0", "", "00", "0s", "0ms", "1", "5", "5m", "90s", "500ms", "1h30m", "1d", "1w", "1y",
	"1y2w3d4h5m6s7ms", "1h1h", "30m1h", "1ms1s", "1s1ms", "1m1ms", "1mss", "1x", "1 m",
	" 1m", "1m ", "-1m", "+1m", "1.5h", "1e3s", "m", "ms", "5M", "5H", "1µs", "1us", "1ns",
	"7d", "8d", "106751d", "106752d", "292y", "293y", "9223372036854775807ms",
	"9223372036854775808ms", "18446744073709551616ms", "99999999999999999999s",
	"292y24w3d23h47m16s854ms", "292y24w3d23h47m16s855ms", "1h0m", "0h", "01h", "1h_", "_1h",
}

func TestParseDurationMatchesModel(t *testing.T) {
	for _, s := range durationCorpus {
		checkDuration(t, s)
	}
}

func checkDuration(t *testing.T, s string) {
	t.Helper()
	got, err := parseDuration(s)
	want, werr := model.ParseDuration(s)
	if (err == nil) != (werr == nil) {
		t.Fatalf("parseDuration(%q) = %v, %v; model.ParseDuration = %v, %v", s, got, err, want, werr)
	}
	if err == nil && got != time.Duration(want) {
		t.Fatalf("parseDuration(%q) = %v; model.ParseDuration = %v", s, got, time.Duration(want))
	}
	if err != nil && err.Error() != werr.Error() {
		t.Fatalf("parseDuration(%q) error %q; model.ParseDuration error %q", s, err, werr)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range durationCorpus {
		f.Add(s)
	}
	f.Fuzz(checkDuration)
}
