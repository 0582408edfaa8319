package gateway_test

import (
	"maps"
	"net/http"
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

func TestParseGroupingPath(t *testing.T) {
	tests := []struct {
		path string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"/job/j", map[string]string{"job": "j"}},
		{"/job/j/instance/i/zone/eu", map[string]string{"job": "j", "instance": "i", "zone": "eu"}},
		{"/job/a%20b/x/c+d", map[string]string{"job": "a b", "x": "c+d"}}, // '+' is not a space in a path
		{"/job/a%2Fb", map[string]string{"job": "a/b"}},
		// base64url "a/b" is "YS9i"; "?>" is "Pz4" (URL alphabet), "Pz4=" padded.
		{"/job@base64/YS9i", map[string]string{"job": "a/b"}},
		{"/job/j/path@base64/L3Zhci90bXA", map[string]string{"job": "j", "path": "/var/tmp"}},
		{"/job/j/path@base64/L3Zhci90bXA=", map[string]string{"job": "j", "path": "/var/tmp"}},
		{"/job/j/q@base64/Pz4", map[string]string{"job": "j", "q": "?>"}},
		{"/job/j/q@base64/Pz4=", map[string]string{"job": "j", "q": "?>"}},
		// An empty value is no label, as in Prometheus.
		{"/job/j/empty@base64/=", map[string]string{"job": "j"}},
		{"/job/j/empty@base64/", map[string]string{"job": "j"}},
		{"/job/j/empty@base64//k/v", map[string]string{"job": "j", "k": "v"}},
	}
	for _, tc := range tests {
		got, err := gateway.ParseGroupingPath(tc.path)
		if err != nil {
			t.Errorf("ParseGroupingPath(%q): %v", tc.path, err)
			continue
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("ParseGroupingPath(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestParseGroupingPathInvalid(t *testing.T) {
	for _, path := range []string{
		"/",                     // no job
		"/job",                  // odd
		"/job/",                 // empty job
		"/job@base64/=",         // empty job, base64
		"/instance/i/job/j",     // must start with job
		"/job/j/instance",       // odd
		"/job/j/instance/i/",    // trailing slash: odd
		"/job/j/__x/v",          // reserved name
		"/job/j/a/1/a/2",        // duplicate
		"/job/j/job/k",          // duplicate job
		"/job/j/clearmode/sum",  // clear mode is per sample
		"/job/j/x@base64/!!!",   // bad base64
		"/job/j/x/%zz",          // bad escape
		"/job/j/x@base64/_w",    // decodes to invalid UTF-8
		"/job/j/a@base64/=/a/1", // a label given twice, although the first is empty
	} {
		if got, err := gateway.ParseGroupingPath(path); err == nil {
			t.Errorf("ParseGroupingPath(%q) = %v, want an error", path, got)
		}
	}
}

// Over HTTP: invalid paths are 400, and a base64 grouping label reaches the
// scrape decoded.
func TestGroupingOverHTTP(t *testing.T) {
	g := newTestGateway(t)
	for _, p := range []string{"/metrics/", "/metrics/job/", "/metrics/job/j/x", "/metrics/foo/bar", "/metrics/job/j/__a/b", "/metrics/job/j/a/1/a/2"} {
		g.push(http.MethodPost, p, "m 1\n", http.StatusBadRequest)
		g.push(http.MethodDelete, p, "", http.StatusBadRequest)
	}
	g.push(http.MethodPost, "/metrics/job@base64/YS9i/path@base64/L3Zhci90bXA/e@base64/=", "m 1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`m{job="a/b",path="/var/tmp"}`: 1})
	// The same group spelt with padding and %-escapes is the same group, and
	// so is the group without the empty label e: Prometheus would see
	// m{e="",…} and m{…} as one series exposed twice.
	g.push(http.MethodPost, "/metrics/job/a%2Fb/path@base64/L3Zhci90bXA=/e@base64/", "m 1\n", http.StatusOK)
	g.push(http.MethodPost, "/metrics/job/a%2Fb/path@base64/L3Zhci90bXA", "m 1\n", http.StatusOK)
	assertSamples(t, g.scrape(), map[string]float64{`m{job="a/b",path="/var/tmp"}`: 3})
	g.push(http.MethodDelete, "/metrics/job@base64/YS9i/e@base64/=/path/%2Fvar%2Ftmp", "", http.StatusAccepted)
	assertSamples(t, g.scrape(), map[string]float64{})
}
