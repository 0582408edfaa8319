// Command healthcheck is the gateway container's HEALTHCHECK: the
// distroless image has no shell, curl or wget, so this static binary GETs
// the gateway's readiness endpoint and exits 0 when it answers 200, 1
// otherwise (Docker's healthy and unhealthy).
//
//	healthcheck [URL]    # default http://127.0.0.1:9091/-/ready
//
// /-/ready never asks for credentials, even with a web config's basic auth.
// A gateway serving TLS needs an https URL; the certificate is verified
// unless HEALTHCHECK_INSECURE_SKIP_VERIFY=true (a certificate issued for a
// public name does not cover 127.0.0.1).
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultURL is the gateway's readiness endpoint at its default port.
const DefaultURL = "http://127.0.0.1:9091/-/ready"

// timeout bounds the whole check, below Docker's default HEALTHCHECK
// --timeout of 30s and the Dockerfile's 5s.
const timeout = 4 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Getenv("HEALTHCHECK_INSECURE_SKIP_VERIFY") == "true", os.Stderr))
}

// run checks the URL in args (or DefaultURL) and returns the exit code.
func run(args []string, insecure bool, stderr io.Writer) int {
	url := DefaultURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		fmt.Fprintln(stderr, "usage: healthcheck [URL]")
		return 2
	}
	if err := check(url, insecure); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

func check(url string, insecure bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // a loopback check must not go through HTTP_PROXY
	if insecure {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, for a loopback check
	}
	client := &http.Client{Transport: transport}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
