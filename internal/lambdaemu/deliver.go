package lambdaemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// sandboxHost is the host name Lambda resolves to the execution environment;
// the emulator resolves it to 127.0.0.1.
const sandboxHost = "sandbox.localdomain"

// deliverer POSTs Telemetry API batches the way Lambda does: at least once,
// retrying a failed POST with exponential backoff.
type deliverer struct {
	client         *http.Client
	attempts       int           // POSTs per batch before giving up
	backoff        time.Duration // wait after the first failure, doubled after each
	attemptTimeout time.Duration // bounds one POST, answer included
	logger         *slog.Logger
}

func newDeliverer(logger *slog.Logger) *deliverer {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	transport := &http.Transport{
		Proxy: nil, // the listener is local: never go through HTTP(S)_PROXY
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && strings.EqualFold(host, sandboxHost) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 1,
	}
	return &deliverer{
		client:         &http.Client{Transport: transport},
		attempts:       5,
		backoff:        50 * time.Millisecond,
		attemptTimeout: 2 * time.Second,
		logger:         logger,
	}
}

// post delivers body to uri. It returns the number of failed attempts and,
// when every attempt failed, ctx ended or stop was closed, the last error.
// Closing stop (the extension exited: nothing listens any more) ends the
// retries but lets a POST under way finish, as its answer may be on the wire.
func (d *deliverer) post(ctx context.Context, uri string, body []byte, stop <-chan struct{}) (failures int, err error) {
	wait := d.backoff
	for attempt := 1; ; attempt++ {
		err = d.postOnce(ctx, uri, body)
		if err == nil {
			return failures, nil
		}
		failures++
		d.logger.Warn("telemetry delivery failed", "uri", uri, "attempt", attempt, "err", err)
		if attempt >= d.attempts {
			return failures, fmt.Errorf("deliver to %s: %d attempts: %w", uri, attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return failures, fmt.Errorf("deliver to %s: %w", uri, ctx.Err())
		case <-stop:
			t.Stop()
			return failures, fmt.Errorf("deliver to %s: extension exited: %w", uri, err)
		}
		wait *= 2
	}
}

func (d *deliverer) postOnce(ctx context.Context, uri string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("listener answered %s", resp.Status)
	}
	return nil
}

func (d *deliverer) close() { d.client.CloseIdleConnections() }
