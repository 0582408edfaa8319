package clearmode

import (
	"strings"
	"testing"
	"time"
)

func TestParseWindowGrammar(t *testing.T) {
	valid := []struct {
		v    string
		want Window
	}{
		{"mean5m", Window{Stat: Mean, Q: 0, Length: 5 * time.Minute}},
		{"mean_5m", Window{Stat: Mean, Q: 0, Length: 5 * time.Minute}},
		{"mean300s", Window{Stat: Mean, Q: 0, Length: 5 * time.Minute}},
		{"sum30s", Window{Stat: Sum, Q: 0, Length: 30 * time.Second}},
		{"sum_30s", Window{Stat: Sum, Q: 0, Length: 30 * time.Second}},
		{"min1h", Window{Stat: Min, Q: 0, Length: time.Hour}},
		{"max1h", Window{Stat: Max, Q: 0, Length: time.Hour}},
		{"max_1h30m", Window{Stat: Max, Q: 0, Length: 90 * time.Minute}},
		{"median30s", Window{Stat: Quantile, Q: 0.5, Length: 30 * time.Second}},
		{"median_30s", Window{Stat: Quantile, Q: 0.5, Length: 30 * time.Second}},
		{"count1d", Window{Stat: Count, Q: 0, Length: 24 * time.Hour}},
		{"count500ms", Window{Stat: Count, Q: 0, Length: 500 * time.Millisecond}},
		{"mean7d", Window{Stat: Mean, Q: 0, Length: 7 * 24 * time.Hour}},
		{"mean1w", Window{Stat: Mean, Q: 0, Length: 7 * 24 * time.Hour}},
		{"p99_5m", Window{Stat: Quantile, Q: 0.99, Length: 5 * time.Minute}},
		{"p99.9_1h", Window{Stat: Quantile, Q: 99.9 / 100, Length: time.Hour}},
		{"p0_5m", Window{Stat: Quantile, Q: 0, Length: 5 * time.Minute}},
		{"p100_5m", Window{Stat: Quantile, Q: 1, Length: 5 * time.Minute}},
		{"p50_1m", Window{Stat: Quantile, Q: 0.5, Length: time.Minute}},
	}
	for _, tc := range valid {
		mode, spec, err := Parse(tc.v)
		if err != nil || mode != Windowed || spec == nil || *spec != tc.want {
			t.Errorf("Parse(%q) = %v, %+v, %v; want windowed %+v", tc.v, mode, spec, err, tc.want)
		}
	}
	// The plain modes are not windows.
	for _, v := range []string{"sum", "aggregate", "replace", "family", "info"} {
		if mode, spec, err := Parse(v); err != nil || spec != nil || mode == Windowed {
			t.Errorf("Parse(%q) = %v, %v, %v; want a plain mode", v, mode, spec, err)
		}
	}
	malformed := []struct{ v, reason string }{
		{"p99x5m", "underscore"},
		{"p995m", "underscore"},
		{"p99.5m", "underscore"},
		{"p99_", "Prometheus duration"},
		{"p101_5m", "outside [0, 100]"},
		{"p100.5_5m", "outside [0, 100]"},
		{"p9.9.9_5m", "not a number"},
		{"p99._5m", "not a number"},
		{"mean0s", "greater than 0"},
		{"mean0", "greater than 0"},
		{"mean5", "Prometheus duration"},
		{"meanfoo", "Prometheus duration"},
		{"mean_", "Prometheus duration"},
		{"mean__5m", "Prometheus duration"},
		{"mean1.5h", "Prometheus duration"},
		{"mean5M", "Prometheus duration"},
		{"mean-5m", "Prometheus duration"},
		{"mean8d", "exceeds the maximum 7d"},
		{"max1y", "exceeds the maximum 7d"},
		{"summary", "Prometheus duration"},
	}
	for _, tc := range malformed {
		_, _, err := Parse(tc.v)
		if err == nil || !strings.Contains(err.Error(), `"`+tc.v+`"`) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("Parse(%q) = %v; want an error naming it and saying %q", tc.v, err, tc.reason)
		}
	}
	// Not windowed at all: unknown modes, still named.
	for _, v := range []string{"avg5m", "stddev5m", "Mean5m", "p_5m", "5m", "mean"} {
		_, _, err := Parse(v)
		if err == nil || !strings.Contains(err.Error(), "unknown clearmode") || !strings.Contains(err.Error(), `"`+v+`"`) {
			t.Errorf("Parse(%q) = %v; want an unknown-mode error naming it", v, err)
		}
	}
}
