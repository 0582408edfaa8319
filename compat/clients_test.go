package compat

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every client pushes the same four metrics (the scripts and pushedGo build
// them the same way), so one expectation serves them all:
//
//	<prefix>requests_total{code="200"} 3, {code="500"} 1   counter
//	<prefix>temperature_celsius 21.5                       gauge
//	<prefix>latency_seconds: buckets 0.3, 1; observations 0.25, 0.5, 2
//	<prefix>payload_bytes: one observation, 200             summary
//
// Counters, histograms and summaries aggregate (default clearmode), the gauge
// is replaced.
//
// Python's client also writes a gauge X_created beside each counter X_total,
// histogram and summary X in the text format; the gateway folds those into
// the created timestamps of the series they restate (see gateway.DecodeBody),
// so they do not appear in the scrape.
type flavour struct {
	prefix    string // metric name prefix, e.g. compat_py_
	quantiles bool   // the summary has quantiles 0.5 and 0.9 (a single observation: both 200)
}

// pushes is how many times each kind of metric was pushed into a group.
type pushes struct{ counter, gauge, histogram, summary int }

// expected is the text exposition the gateway should serve for a group with
// the grouping labels grouping (`job="x",path="/y"`, sorted or not).
func (f flavour) expected(grouping string, n pushes) string {
	var b strings.Builder
	p := f.prefix
	if n.counter > 0 {
		fmt.Fprintf(&b, "# TYPE %srequests_total counter\n", p)
		fmt.Fprintf(&b, "%srequests_total{%s,code=\"200\"} %d\n", p, grouping, 3*n.counter)
		fmt.Fprintf(&b, "%srequests_total{%s,code=\"500\"} %d\n", p, grouping, n.counter)
	}
	if n.gauge > 0 {
		fmt.Fprintf(&b, "# TYPE %stemperature_celsius gauge\n%stemperature_celsius{%s} 21.5\n", p, p, grouping)
	}
	if k := n.histogram; k > 0 {
		fmt.Fprintf(&b, "# TYPE %slatency_seconds histogram\n", p)
		fmt.Fprintf(&b, "%slatency_seconds_bucket{%s,le=\"0.3\"} %d\n", p, grouping, k)
		fmt.Fprintf(&b, "%slatency_seconds_bucket{%s,le=\"1\"} %d\n", p, grouping, 2*k)
		fmt.Fprintf(&b, "%slatency_seconds_bucket{%s,le=\"+Inf\"} %d\n", p, grouping, 3*k)
		fmt.Fprintf(&b, "%slatency_seconds_sum{%s} %g\n", p, grouping, 2.75*float64(k))
		fmt.Fprintf(&b, "%slatency_seconds_count{%s} %d\n", p, grouping, 3*k)
	}
	if k := n.summary; k > 0 {
		fmt.Fprintf(&b, "# TYPE %spayload_bytes summary\n", p)
		if f.quantiles {
			fmt.Fprintf(&b, "%spayload_bytes{%s,quantile=\"0.5\"} 200\n", p, grouping)
			fmt.Fprintf(&b, "%spayload_bytes{%s,quantile=\"0.9\"} 200\n", p, grouping)
		}
		fmt.Fprintf(&b, "%spayload_bytes_sum{%s} %d\n", p, grouping, 200*k)
		fmt.Fprintf(&b, "%spayload_bytes_count{%s} %d\n", p, grouping, k)
	}
	return b.String()
}

// groups is the expected scrape of several groups: expositions concatenated
// per family would repeat TYPE lines, so each is flattened on its own.
func groups(t *testing.T, expositions ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, e := range expositions {
		for _, l := range parseExpected(t, e) {
			if strings.HasPrefix(l, "# TYPE ") {
				if seen[l] {
					continue
				}
				seen[l] = true
			}
			out = append(out, l)
		}
	}
	return out
}

// Python prometheus_client, from Debian's python3-prometheus-client, run by
// Debian's interpreter (a python3 earlier on PATH, e.g. pyenv's, would not
// see the package).
const debianPython = "/usr/bin/python3"

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		missing(t, "%s not found: install the Debian packages python3 and python3-prometheus-client", debianPython)
	}
	if out, err := exec.Command(debianPython, "-c", "import prometheus_client").CombinedOutput(); err != nil {
		missing(t, "%s cannot import prometheus_client (%v: %s): install the Debian package python3-prometheus-client", debianPython, err, strings.TrimSpace(string(out)))
	}
}

// pyPush runs compat/python/push.py; creds adds GATEWAY_USERNAME and
// GATEWAY_PASSWORD (user, password), so the script uses basic_auth_handler.
func pyPush(g *gateway, action, job string, grouping map[string]string, metrics string, creds ...string) error {
	gk, err := json.Marshal(grouping)
	if err != nil {
		return err
	}
	var env []string
	if len(creds) == 2 {
		env = []string{"GATEWAY_USERNAME=" + creds[0], "GATEWAY_PASSWORD=" + creds[1]}
	}
	args := []string{"python/push.py", action, g.url, job, string(gk)}
	if metrics != "" {
		args = append(args, metrics)
	}
	_, err = tryRun("", debianPython, args, env)
	return err
}

var pyFlavour = flavour{prefix: "compat_py_"}

// testPython: push_to_gateway, pushadd_to_gateway and delete_from_gateway,
// with grouping keys whose values need @base64: one containing '/', one
// empty (the client sends "shard@base64/="; an empty label value is no label,
// so the scrape shows no shard label).
func testPython(t *testing.T, g *gateway) {
	needPython(t)
	const job = "compat-python"
	orders := map[string]string{"path": "/api/orders", "shard": ""}
	health := map[string]string{"path": "/healthz", "shard": ""}
	ordersLabels := `job="compat-python",path="/api/orders"`
	healthLabels := `job="compat-python",path="/healthz"`
	keep := withPrefix(pyFlavour.prefix)
	step := func(name, action string, grouping map[string]string, metrics string, want ...string) {
		t.Helper()
		if err := pyPush(g, action, job, grouping, metrics); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.checkScrape(t, name, keep, groups(t, want...))
	}

	step("pushadd_to_gateway", "pushadd", orders, "",
		pyFlavour.expected(ordersLabels, pushes{1, 1, 1, 1}))
	step("pushadd_to_gateway again: aggregated, gauge replaced", "pushadd", orders, "",
		pyFlavour.expected(ordersLabels, pushes{2, 1, 2, 2}))
	step("push_to_gateway (PUT) of the counter: the group keeps only its families", "push", orders, "counter",
		pyFlavour.expected(ordersLabels, pushes{counter: 3}))
	step("pushadd_to_gateway into a second group", "pushadd", health, "gauge",
		pyFlavour.expected(ordersLabels, pushes{counter: 3}), pyFlavour.expected(healthLabels, pushes{gauge: 1}))
	step("delete_from_gateway of the second group", "delete", health, "",
		pyFlavour.expected(ordersLabels, pushes{counter: 3}))

	// {"shard": ""} and no shard at all are the same label set for
	// Prometheus. A push that leaves the empty value out must not expose a
	// second copy of the group's series (flatten fails on a series exposed
	// twice): the gateway may reject it (400, nothing changes) or merge it
	// into the same series.
	const name = "pushadd_to_gateway with the empty grouping value left out"
	if err := pyPush(g, "pushadd", job, map[string]string{"path": "/api/orders"}, "counter"); err != nil {
		if !strings.Contains(err.Error(), "400") {
			t.Fatalf("%s: want success or HTTP Error 400, got %v", name, err)
		}
		g.checkScrape(t, name+" (rejected)", keep, groups(t, pyFlavour.expected(ordersLabels, pushes{counter: 3})))
	} else {
		g.checkScrape(t, name+" (accepted)", keep, groups(t, pyFlavour.expected(ordersLabels, pushes{counter: 4})))
	}
}

// testPythonBasicAuth: the same calls through basic_auth_handler against a
// gateway demanding basic auth (bcrypt web config); without or with wrong
// credentials the client gets 401 and nothing changes.
func testPythonBasicAuth(t *testing.T, g *gateway) {
	needPython(t)
	const job = "compat-python-auth"
	fn1 := map[string]string{"instance": "fn-1"}
	fn2 := map[string]string{"instance": "fn-2"}
	fn1Labels := `instance="fn-1",job="compat-python-auth"`
	fn2Labels := `instance="fn-2",job="compat-python-auth"`
	keep := withPrefix(pyFlavour.prefix)
	ok := func(name, action string, grouping map[string]string, metrics string, want ...string) {
		t.Helper()
		if err := pyPush(g, action, job, grouping, metrics, g.user, g.password); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.checkScrape(t, name, keep, groups(t, want...))
	}
	refused := func(name, action string, grouping map[string]string, want []string, creds ...string) {
		t.Helper()
		err := pyPush(g, action, job, grouping, "", creds...)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: want HTTP Error 401, got %v", name, err)
		}
		g.checkScrape(t, name+" changes nothing", keep, groups(t, want...))
	}

	ok("pushadd_to_gateway with basic_auth_handler", "pushadd", fn1, "",
		pyFlavour.expected(fn1Labels, pushes{1, 1, 1, 1}))
	after := []string{pyFlavour.expected(fn1Labels, pushes{1, 1, 1, 1})}
	refused("pushadd_to_gateway without credentials", "pushadd", fn1, after)
	refused("push_to_gateway with a wrong password", "push", fn1, after, g.user, "guess")
	ok("push_to_gateway (PUT) of the counter with basic_auth_handler", "push", fn1, "counter",
		pyFlavour.expected(fn1Labels, pushes{counter: 2}))
	ok("pushadd_to_gateway into a second group", "pushadd", fn2, "gauge",
		pyFlavour.expected(fn1Labels, pushes{counter: 2}), pyFlavour.expected(fn2Labels, pushes{gauge: 1}))
	refused("delete_from_gateway without credentials", "delete", fn2,
		[]string{pyFlavour.expected(fn1Labels, pushes{counter: 2}), pyFlavour.expected(fn2Labels, pushes{gauge: 1})})
	ok("delete_from_gateway with basic_auth_handler", "delete", fn2, "",
		pyFlavour.expected(fn1Labels, pushes{counter: 2}))
}

// Node prom-client, the version pinned in compat/node/package-lock.json.
const promClientVersion = "15.1.3"

func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node not found: install Node.js (Debian package nodejs) and run npm ci --prefix compat/node")
	}
	b, err := os.ReadFile(filepath.Join("node", "node_modules", "prom-client", "package.json"))
	if err != nil {
		missing(t, "prom-client is not installed in compat/node/node_modules: run npm ci --prefix compat/node")
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil || pkg.Version != promClientVersion {
		missing(t, "compat/node/node_modules holds prom-client %q, want %s: run npm ci --prefix compat/node", pkg.Version, promClientVersion)
	}
	return node
}

var nodeFlavour = flavour{prefix: "compat_node_", quantiles: true}

// testNode: prom-client's Pushgateway push (PUT), pushAdd (POST, also
// gzipped) and delete, with grouping labels, one holding '/' (prom-client
// percent-encodes it as %2F; it has no @base64 encoding).
func testNode(t *testing.T, g *gateway) {
	node := needNode(t)
	const job = "compat-node"
	fn1 := `{"instance":"fn-1","route":"/api/orders"}`
	fn2 := `{"instance":"fn-2","route":"/api/orders"}`
	fn1Labels := `instance="fn-1",job="compat-node",route="/api/orders"`
	fn2Labels := `instance="fn-2",job="compat-node",route="/api/orders"`
	keep := withPrefix(nodeFlavour.prefix)
	step := func(name string, args []string, want ...string) {
		t.Helper()
		if _, err := tryRun("", node, append([]string{"node/push.js"}, args...), nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.checkScrape(t, name, keep, groups(t, want...))
	}

	step("pushAdd", []string{"pushAdd", g.url, job, fn1},
		nodeFlavour.expected(fn1Labels, pushes{1, 1, 1, 1}))
	step("pushAdd gzipped: aggregated, gauge replaced", []string{"pushAdd", g.url, job, fn1, "-", "gzip"},
		nodeFlavour.expected(fn1Labels, pushes{2, 1, 2, 2}))
	step("push (PUT) of the counter: the group keeps only its families", []string{"push", g.url, job, fn1, "counter"},
		nodeFlavour.expected(fn1Labels, pushes{counter: 3}))
	step("pushAdd into a second group", []string{"pushAdd", g.url, job, fn2, "gauge"},
		nodeFlavour.expected(fn1Labels, pushes{counter: 3}), nodeFlavour.expected(fn2Labels, pushes{gauge: 1}))
	step("delete of the second group", []string{"delete", g.url, job, fn2},
		nodeFlavour.expected(fn1Labels, pushes{counter: 3}))
}
