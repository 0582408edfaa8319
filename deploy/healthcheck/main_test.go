package main

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
)

func TestDockerHealthcheckAgainstTheRealGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, "../..", "./gateway/cmd/gateway", t.TempDir(), "gateway")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := harness.StartGateway(ctx, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := gw.URL + "/-/ready"
	var stderr strings.Builder
	if code := run([]string{url}, false, &stderr); code != 0 {
		t.Fatalf("healthcheck of a ready gateway exited %d: %s", code, stderr.String())
	}
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{url}, false, &stderr); code != 1 {
		t.Fatalf("healthcheck of a stopped gateway exited %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "healthcheck:") {
		t.Errorf("failure not explained on stderr: %q", stderr.String())
	}
}

func TestDockerHealthcheckStatuses(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/-/ready" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	var stderr strings.Builder
	for _, c := range []struct {
		status, want int
	}{{200, 0}, {503, 1}, {401, 1}} {
		status = c.status
		if got := run([]string{srv.URL + "/-/ready"}, false, &stderr); got != c.want {
			t.Errorf("answer %d: exit %d, want %d", c.status, got, c.want)
		}
	}
	if got := run([]string{"a", "b"}, false, &stderr); got != 2 {
		t.Errorf("two arguments: exit %d, want 2 (usage)", got)
	}
}

func TestDockerHealthcheckTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	var stderr strings.Builder
	if got := run([]string{srv.URL}, false, &stderr); got != 1 {
		t.Errorf("self-signed certificate accepted without HEALTHCHECK_INSECURE_SKIP_VERIFY: exit %d", got)
	}
	if got := run([]string{srv.URL}, true, &stderr); got != 0 {
		t.Errorf("insecure check of a TLS server: exit %d: %s", got, stderr.String())
	}
}

func TestDockerHealthcheckDefaultURL(t *testing.T) {
	if !strings.HasPrefix(DefaultURL, "http://127.0.0.1:9091/") {
		t.Fatalf("DefaultURL %s does not match the gateway's default --web.listen-address :9091", DefaultURL)
	}
}
