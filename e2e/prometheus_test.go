package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
)

// Helpers of dashboard_test.go: a real Prometheus (Debian's package, as
// .ci/install-test-deps installs it) on loopback, configured from the
// compose stack's deploy/prometheus/prometheus.yml, and its query API.

const stackPrometheusConfig = "../deploy/prometheus/prometheus.yml"

// inCI tells whether the suite runs in CI, where a missing tool is a failure.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// prometheusBinary finds Debian's prometheus; locally a missing one skips
// the test, in CI (CI=true) it fails it.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		msg := "prometheus not installed (make test-deps installs Debian's package)"
		if inCI() {
			t.Fatalf("%s (CI is set, so this fails instead of skipping)", msg)
		}
		t.Skip(msg)
	}
	return bin
}

// stackConfigFor parses the stack's prometheus.yml and rewrites only what
// must differ on a test machine: the gateway job's target becomes
// gatewayAddr (host:port) and the intervals 1s. It returns the YAML and the
// gateway job's name. Everything else, honor_labels included, is the
// stack's own.
func stackConfigFor(t *testing.T, gatewayAddr string) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(stackPrometheusConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg yaml.MapSlice
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", stackPrometheusConfig, err)
	}
	job := ""
	for i := range cfg {
		switch cfg[i].Key {
		case "global":
			global, _ := cfg[i].Value.(yaml.MapSlice)
			for j := range global {
				switch global[j].Key {
				case "scrape_interval", "evaluation_interval", "scrape_timeout":
					global[j].Value = "1s"
				}
			}
			cfg[i].Value = global
		case "scrape_configs":
			scrapes, _ := cfg[i].Value.([]any)
			for _, sc := range scrapes {
				sc, _ := sc.(yaml.MapSlice)
				name := ""
				for _, kv := range sc {
					if kv.Key == "job_name" {
						name, _ = kv.Value.(string)
					}
				}
				for _, kv := range sc {
					if kv.Key != "static_configs" {
						continue
					}
					statics, _ := kv.Value.([]any)
					for _, st := range statics {
						st, _ := st.(yaml.MapSlice)
						for k := range st {
							if st[k].Key != "targets" {
								continue
							}
							targets, _ := st[k].Value.([]any)
							for n, target := range targets {
								if host, _, err := net.SplitHostPort(fmt.Sprint(target)); err == nil && host == "gateway" {
									targets[n] = gatewayAddr
									job = name
								}
							}
						}
					}
				}
			}
		}
	}
	if job == "" {
		t.Fatalf("%s: no scrape config targets the gateway service", stackPrometheusConfig)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out, job
}

type promServer struct {
	URL  string
	cmd  *exec.Cmd
	done chan error
}

// startPrometheus runs bin with config on a free loopback port, its TSDB in
// a temporary directory, and waits until it is ready.
func startPrometheus(t *testing.T, bin string, config []byte, logs *harness.LogBuffer) *promServer {
	t.Helper()
	dir := t.TempDir()
	confFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confFile, config, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin,
		"--config.file="+confFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &promServer{URL: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("prometheus exited before it was ready: %v\n%s", err, logs)
		case <-ctx.Done():
			t.Fatalf("prometheus not ready within 60s\n%s", logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sample is one element of an instant vector result.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates an instant query now. A PromQL error (parse or
// evaluation) is returned as an error; the result must be a vector or
// scalar.
func (p *promServer) query(ctx context.Context, expr string) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/query",
		strings.NewReader(url.Values{"query": {expr}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: decode answer (%s): %w", expr, resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s: %s", expr, body.ErrorType, body.Error)
	}
	var out []sample
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		for _, v := range vec {
			f, err := parseValue(v.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Metric: v.Metric, Value: f})
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parseValue(v[1])
		if err != nil {
			return nil, err
		}
		out = append(out, sample{Value: f})
	default:
		return nil, fmt.Errorf("%s: result type %s, want a vector", expr, body.Data.ResultType)
	}
	return out, nil
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, errors.New("sample value is not a string")
	}
	return strconv.ParseFloat(s, 64) // also "NaN", "+Inf", "-Inf"
}
