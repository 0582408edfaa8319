// Package harness runs the real binaries of the pipeline on loopback for the
// end-to-end tests and `make demo`: it builds them, starts bin/gateway as a
// process, waits until it is ready, and scrapes it.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ExtensionTags are the build tags of the layer binary (see the Makefile):
// net/http without HTTP/2, which no peer of the extension speaks.
const ExtensionTags = "nethttpomithttp2"

// Build compiles the module's package pkg (e.g. "./gateway/cmd/gateway")
// into dir/<name>. moduleRoot is where go.mod lives; extra flags go to go
// build. Under the race detector the binary is built with -race too.
func Build(ctx context.Context, moduleRoot, pkg, dir, name string, flags ...string) (string, error) {
	out := filepath.Join(dir, name)
	args := append([]string{"build", "-o", out}, raceFlags...)
	args = append(args, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// BuildExtension compiles the layer binary as the layer ships it
// (ExtensionTags) into dir/<name>; its registered name is name.
func BuildExtension(ctx context.Context, moduleRoot, dir, name string, flags ...string) (string, error) {
	return Build(ctx, moduleRoot, "./extension/cmd/extension", dir, name, append([]string{"-tags", ExtensionTags}, flags...)...)
}

// Gateway is a running bin/gateway process.
type Gateway struct {
	URL  string // http://127.0.0.1:<port>
	cmd  *exec.Cmd
	done chan error
}

// StartGateway starts the gateway binary on a free loopback port with the
// extra args, and waits (until ctx ends) for /-/ready to answer (200, or
// 401 when a web config demands basic auth everywhere). Its
// output goes to logs (nil: discarded).
func StartGateway(ctx context.Context, binary string, logs io.Writer, args ...string) (*Gateway, error) {
	addr, err := freeLoopbackAddress()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	g := &Gateway{URL: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { g.done <- cmd.Wait() }()
	if err := g.waitReady(ctx); err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) waitReady(ctx context.Context) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			// 401: up, but behind basic auth (exporter-toolkit guards every path).
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case err := <-g.done:
			return fmt.Errorf("gateway exited before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("gateway not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM, waits up to five seconds for a graceful exit, then
// kills. It returns the process's exit error, if any.
func (g *Gateway) Stop() error {
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-g.done:
		return err
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		return errors.New("gateway did not stop within 5s of SIGINT; killed")
	}
}

// Kill sends SIGKILL (no graceful shutdown: a crash) and waits for the
// process to exit.
func (g *Gateway) Kill() {
	_ = g.cmd.Process.Kill()
	<-g.done
}

// Scrape fetches GET /metrics in the text format and parses it into
// families by name. user and password, when set, go as basic auth.
func Scrape(ctx context.Context, baseURL, user, password string) (map[string]*dto.MetricFamily, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("scrape: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("scrape: %s: %s", resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, "", fmt.Errorf("parse scrape: %w", err)
	}
	return families, string(body), nil
}

func freeLoopbackAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// LogBuffer collects the output of several processes; it may be written and
// read concurrently (output copiers keep writing after a test's last line).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
