package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestRunBasicAuthAndShutdown runs the command with a web config holding a
// bcrypt basic_auth_users entry: pushes without credentials get 401, with
// them 200; cancelling the context shuts the server down cleanly.
func TestRunBasicAuthAndShutdown(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("basic_auth_users:\n  alice: %s\n", hash)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, "--web.config.file="+cfg)
	req := func(method, path, body string, auth bool) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			r.SetBasicAuth("alice", "s3cret")
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := req(http.MethodPost, "/metrics/job/j", "m_total 1\n", false); code != http.StatusUnauthorized {
		t.Errorf("push without credentials: %d, want 401", code)
	}
	if code, body := req(http.MethodPost, "/metrics/job/j", "m_total 1\n", true); code != http.StatusOK {
		t.Errorf("push with credentials: %d %s", code, body)
	}
	code, body := req(http.MethodGet, "/metrics", "", true)
	if code != http.StatusOK || !strings.Contains(body, `m_total{job="j"} 1`) {
		t.Errorf("scrape: %d, m_total missing:\n%s", code, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after shutdown: %v", err)
	}
}

func TestRunBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"--no-such-flag"}); err == nil {
		t.Error("unknown flag accepted")
	}
}
