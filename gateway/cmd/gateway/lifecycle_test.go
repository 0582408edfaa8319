package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startRun runs the command on a free 127.0.0.1 port with args and waits
// until it is ready. It returns the base URL and run's result channel.
func startRun(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	return startRunWith(t, ctx, "http", http.DefaultClient, args...)
}

// startRunWith is startRun for a scheme (https with a TLS web config) and
// the client that can reach it.
func startRunWith(t *testing.T, ctx context.Context, scheme string, client *http.Client, args ...string) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--web.listen-address=" + addr, "--log.level=error"}, args...))
	}()
	base := scheme + "://" + addr
	// Wait for the listener (a readiness wait, not a timing assertion).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := client.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, done
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway did not come up")
		}
	}
}

func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunQuit: with --web.enable-lifecycle, POST /-/quit answers 200 and run
// returns cleanly without its context being cancelled; the admin API is off
// (404) and /api/v1/status shows the flags.
func TestRunQuit(t *testing.T) {
	base, done := startRun(t, context.Background(), "--web.enable-lifecycle", "--push.ttl=90s")

	if code, _ := call(t, http.MethodPut, base+"/api/v1/admin/wipe"); code != http.StatusNotFound {
		t.Errorf("wipe without --web.enable-admin-api: %d, want 404", code)
	}
	code, body := call(t, http.MethodGet, base+"/api/v1/status")
	var status struct {
		Data struct {
			Flags map[string]string `json:"flags"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &status); code != http.StatusOK || err != nil {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	for name, want := range map[string]string{"push.ttl": "1m30s", "web.enable-lifecycle": "true", "web.enable-admin-api": "false"} {
		if got := status.Data.Flags[name]; got != want {
			t.Errorf("flag %s = %q, want %q (flags %v)", name, got, want, status.Data.Flags)
		}
	}
	if _, ok := status.Data.Flags["help"]; ok {
		t.Error("kingpin's help flag listed")
	}

	if code, body := call(t, http.MethodPost, base+"/-/quit"); code != http.StatusOK {
		t.Fatalf("POST /-/quit: %d %s", code, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after /-/quit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after /-/quit")
	}
}

// TestRunAdminAPI: with --web.enable-admin-api the wipe answers 202 and
// empties the gateway; without --web.enable-lifecycle /-/quit is 403 and the
// server keeps serving.
func TestRunAdminAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, "--web.enable-admin-api")

	req, _ := http.NewRequest(http.MethodPost, base+"/metrics/job/j", strings.NewReader("m_total 1\n"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("push: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code, _ := call(t, http.MethodPut, base+"/-/quit"); code != http.StatusForbidden {
		t.Errorf("/-/quit without --web.enable-lifecycle: %d, want 403", code)
	}
	if code, _ := call(t, http.MethodPut, base+"/api/v1/admin/wipe"); code != http.StatusAccepted {
		t.Errorf("wipe: %d, want 202", code)
	}
	if code, body := call(t, http.MethodGet, base+"/metrics"); code != http.StatusOK || strings.Contains(body, "m_total") || strings.Contains(body, "push_time_seconds{") {
		t.Errorf("after wipe: %d\n%s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after shutdown: %v", err)
	}
}

func TestRunBadTTL(t *testing.T) {
	if err := run(context.Background(), []string{"--push.ttl=-1s"}); err == nil || !strings.Contains(err.Error(), "push.ttl") {
		t.Errorf("negative TTL: %v", err)
	}
}
