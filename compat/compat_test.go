// Package compat is the client compatibility suite of the gateway: real
// client libraries (Python prometheus_client, Node prom-client, client_golang
// push) and the clearmode examples of Gravel Gateway's README, pushed with
// curl, against bin/gateway; every case asserts the gateway's scrape, and
// `promtool check metrics` finally lints the exposition of every gateway the
// suite started.
//
// External tools: /usr/bin/python3 with Debian's python3-prometheus-client,
// node with compat/node/node_modules (prom-client, installed by
// `npm ci --prefix compat/node`), curl, and promtool (Debian's prometheus
// package). .ci/run installs them. A missing tool fails the case when CI is
// set (CI=true), and skips it otherwise, naming what to install. The tests
// never run npm themselves: that would need the network and would write into
// the source tree while `go test` may run packages in parallel; a
// node_modules that is absent or holds another prom-client version counts as
// missing.
package compat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
)

var gatewayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "compat-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	gatewayBin, err = harness.Build(ctx, "..", "./gateway/cmd/gateway", dir, "gateway")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Credentials of the gateways started with basic auth.
const (
	authUser     = "pusher"
	authPassword = "correct horse battery staple"
)

// gateway is a bin/gateway process started for the suite.
type gateway struct {
	name           string // for messages
	url            string
	user, password string // basic auth, when the gateway demands it
	logs           *harness.LogBuffer
}

// suite holds every gateway started by TestCompat, so that promtool lints
// each exposition after all the cases.
type suite struct {
	gateways []*gateway
}

// start runs a gateway until the end of the test t (TestCompat itself, so
// that the last case, promtool, still sees it). auth starts it with a bcrypt
// web config demanding authUser/authPassword on every path.
func (s *suite) start(t *testing.T, name string, auth bool) *gateway {
	t.Helper()
	g := &gateway{name: name, logs: &harness.LogBuffer{}}
	var args []string
	if auth {
		hash, err := bcrypt.GenerateFromPassword([]byte(authPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		webConfig := filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(webConfig, fmt.Appendf(nil, "basic_auth_users:\n  %s: %s\n", authUser, hash), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+webConfig)
		g.user, g.password = authUser, authPassword
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := harness.StartGateway(ctx, gatewayBin, g.logs, args...)
	if err != nil {
		t.Fatalf("start gateway %s: %v\n%s", name, err, g.logs)
	}
	g.url = proc.URL
	t.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			t.Errorf("gateway %s did not stop cleanly: %v", name, err)
		}
		if t.Failed() {
			t.Logf("gateway %s output:\n%s", name, g.logs)
		}
	})
	s.gateways = append(s.gateways, g)
	return g
}

// TestCompat runs every case in order, then lints every gateway's
// exposition with promtool. Select one case with e.g.
// -run 'TestCompat/python'; promtool then lints what that case left.
func TestCompat(t *testing.T) {
	s := &suite{}
	open := s.start(t, "shared", false)
	auth := s.start(t, "basic-auth", true)

	t.Run("python", func(t *testing.T) { testPython(t, open) })
	t.Run("python-basic-auth", func(t *testing.T) { testPythonBasicAuth(t, auth) })
	t.Run("node", func(t *testing.T) { testNode(t, open) })
	t.Run("client_golang-protobuf", func(t *testing.T) { testClientGolang(t, open, false) })
	t.Run("client_golang-text", func(t *testing.T) { testClientGolang(t, open, true) })
	t.Run("client_golang-basic-auth", func(t *testing.T) { testClientGolangBasicAuth(t, auth) })
	// Gravel's examples push to the root group and promise the whole scrape:
	// each gets a fresh gateway, started here so that it lives until promtool.
	gravel := make([]*gateway, len(gravelCases))
	for i, c := range gravelCases {
		gravel[i] = s.start(t, "gravel-"+c.name, false)
	}
	for i, c := range gravelCases {
		t.Run("gravel-readme-"+c.name, func(t *testing.T) { c.run(t, gravel[i]) })
	}
	t.Run("promtool", func(t *testing.T) { s.promtool(t) })
}

// inCI tells whether the suite runs in CI, where a missing tool is a failure.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// missing fails (in CI) or skips (locally) a case whose tool is not installed.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI is set, so this fails instead of skipping)", msg)
	}
	t.Skip(msg)
}

// tryRun runs a command with extra environment variables and returns its
// stdout, or an error carrying the command line and its stderr.
func tryRun(stdin, name string, args, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// scrape fetches the gateway's /metrics in the text format, parses it, and
// returns it flattened (see flatten).
func (g *gateway) scrape(t *testing.T) ([]string, map[string]*dto.MetricFamily) {
	t.Helper()
	body := g.scrapeText(t)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape of gateway %s: %v\n%s", g.name, err, body)
	}
	return flatten(t, fams), fams
}

// scrapeText returns GET /metrics in the text format 0.0.4.
func (g *gateway) scrapeText(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if g.user != "" {
		req.SetBasicAuth(g.user, g.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape gateway %s: %v", g.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape gateway %s: %s: %s", g.name, resp.Status, b)
	}
	return string(b)
}

// flatten renders families as sorted lines, one "# TYPE <name> <type>" per
// family and one "<name>{<labels sorted by name>} <value>" per sample
// (histograms as _bucket/_sum/_count, summaries as quantiles/_sum/_count),
// values in Go's shortest float format, so that expectations are exact and
// differences readable.
//
// Labels are rendered as Prometheus ingests them: a label with an empty
// value is no label (the gateway, like the Pushgateway, exposes an empty
// grouping value as l=""), so two samples may flatten to the same series
// (checkScrape fails on that).
func flatten(t *testing.T, fams map[string]*dto.MetricFamily) []string {
	t.Helper()
	var lines []string
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for name, mf := range fams {
		lines = append(lines, fmt.Sprintf("# TYPE %s %s", name, strings.ToLower(mf.GetType().String())))
		for _, m := range mf.GetMetric() {
			series := func(suffix string, extra *dto.LabelPair, v string) {
				ls := slices.DeleteFunc(slices.Clone(m.GetLabel()), func(l *dto.LabelPair) bool { return l.GetValue() == "" })
				if extra != nil {
					ls = append(ls, extra)
				}
				slices.SortFunc(ls, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
				parts := make([]string, len(ls))
				for i, l := range ls {
					parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
				}
				lines = append(lines, fmt.Sprintf("%s%s{%s} %s", name, suffix, strings.Join(parts, ","), v))
			}
			pair := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: &n, Value: &v} }
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				series("", nil, f(m.GetCounter().GetValue()))
			case dto.MetricType_GAUGE:
				series("", nil, f(m.GetGauge().GetValue()))
			case dto.MetricType_UNTYPED:
				series("", nil, f(m.GetUntyped().GetValue()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					series("_bucket", pair("le", f(b.GetUpperBound())), f(float64(b.GetCumulativeCount())))
				}
				series("_sum", nil, f(h.GetSampleSum()))
				series("_count", nil, f(float64(h.GetSampleCount())))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					series("", pair("quantile", f(q.GetQuantile())), f(q.GetValue()))
				}
				series("_sum", nil, f(s.GetSampleSum()))
				series("_count", nil, f(float64(s.GetSampleCount())))
			default:
				t.Errorf("%s: unexpected type %v", name, mf.GetType())
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// parseExpected parses a text exposition (testdata or an inline string) and
// flattens it.
func parseExpected(t *testing.T, text string) []string {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse expectation: %v\n%s", err, text)
	}
	return flatten(t, fams)
}

// ownFamily tells the gateway's own metrics (its push counter, the scrape
// handler's, the Go and process collectors', and the per-group
// push_time_seconds and push_failure_time_seconds it writes like the
// Pushgateway) from pushed ones.
func ownFamily(name string) bool {
	if name == "push_time_seconds" || name == "push_failure_time_seconds" {
		return true
	}
	for _, p := range []string{"gateway_", "promhttp_", "go_", "process_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// selectLines keeps the flattened lines of the families that keep accepts.
func selectLines(lines []string, keep func(name string) bool) []string {
	var out []string
	for _, l := range lines {
		name := strings.TrimPrefix(l, "# TYPE ")
		name, _, _ = strings.Cut(name, " ")
		name, _, _ = strings.Cut(name, "{")
		name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if keep(name) {
			out = append(out, l)
		}
	}
	return out
}

// checkScrape asserts that the gateway's flattened scrape, restricted to the
// families keep accepts, is exactly want (flattened lines, any order), and
// that no series of those families is exposed twice: Prometheus, for which
// l="" is no label l, would reject the second sample as a duplicate.
func (g *gateway) checkScrape(t *testing.T, step string, keep func(string) bool, want []string) {
	t.Helper()
	lines, _ := g.scrape(t)
	got := selectLines(lines, keep)
	seen := map[string]bool{}
	for _, l := range got {
		if strings.HasPrefix(l, "# ") {
			continue
		}
		series := l[:strings.LastIndexByte(l, ' ')]
		if seen[series] {
			t.Errorf("%s: gateway %s exposes series %s twice (a label with an empty value is no label in Prometheus)", step, g.name, series)
		}
		seen[series] = true
	}
	want = slices.Sorted(slices.Values(want))
	if slices.Equal(got, want) {
		return
	}
	var extra, lack []string
	for _, l := range got {
		if !slices.Contains(want, l) {
			extra = append(extra, l)
		}
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			lack = append(lack, l)
		}
	}
	t.Errorf("%s: scrape of gateway %s differs\nunexpected:\n  %s\nmissing:\n  %s",
		step, g.name, strings.Join(extra, "\n  "), strings.Join(lack, "\n  "))
}

// withPrefix selects the families whose name starts with prefix.
func withPrefix(prefix string) func(string) bool {
	return func(name string) bool { return strings.HasPrefix(name, prefix) }
}

// promtool lints each gateway's exposition with `promtool check metrics`:
// any complaint (printed on stderr, non-zero exit) fails.
func (s *suite) promtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		missing(t, "promtool not found: install the Debian package prometheus (apt-get install prometheus)")
	}
	for _, g := range s.gateways {
		body := g.scrapeText(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("promtool check metrics on gateway %s: %v\n%s", g.name, err, out)
		}
	}
}
