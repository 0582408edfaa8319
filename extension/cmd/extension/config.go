package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/dispatcher"
)

// defaultListenerAddress is where the Telemetry API listener binds in Lambda.
// The subscription URI must name sandbox.localdomain (Telemetry API guide);
// 9001 is reserved, and 4243 is what AWS's sample extensions use.
const defaultListenerAddress = "sandbox.localdomain:4243"

// config is the extension's configuration, read from the function's
// environment variables (extensions share them with the function).
type config struct {
	Gateway         string                  // GATEWAY: base URL of the push gateway
	AuthSecret      string                  // AUTH_SECRET: Secrets Manager secret name or ARN; empty: no auth
	MinBatchSize    int                     // DISPATCH_MIN_BATCH_SIZE
	Distribution    dispatcher.Distribution // METRIC_DISTRIBUTION: histogram (default) or summary
	PushTimeout     time.Duration           // PUSH_TIMEOUT: bound of a push at an INVOKE
	RetryBackoff    time.Duration           // PUSH_RETRY_BACKOFF: INVOKEs skip pushing this long after a failed dispatch; 0: dispatcher.DefaultRetryBackoff
	ListenerAddress string                  // TELEMETRY_LISTENER_ADDRESS: host:port of the Telemetry API listener
	LogLevel        slog.Level              // EXTENSION_LOG_LEVEL: debug, info, warn, error
	Region          string                  // AWS_REGION, set by Lambda

	Prices dispatcher.PriceOverrides // PRICE_PER_GB_SECOND, PRICE_PER_MILLION_REQUESTS: USD; unset: defaults per architecture

	DispatchInterval time.Duration // DISPATCH_INTERVAL: push period on Lambda Managed Instances; 0: dispatcher.DefaultDispatchInterval
}

// loadConfig reads the configuration; every problem is reported, joined.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Gateway:         strings.TrimRight(getenv("GATEWAY"), "/"),
		AuthSecret:      getenv("AUTH_SECRET"),
		MinBatchSize:    dispatcher.DefaultMinBatchSize,
		PushTimeout:     dispatcher.DefaultPushTimeout,
		ListenerAddress: defaultListenerAddress,
		Region:          getenv("AWS_REGION"),
	}
	var errs []error
	if c.Gateway == "" {
		errs = append(errs, errors.New("GATEWAY is not set: set it to the push gateway's URL, e.g. http://gateway.internal:9091"))
	} else if u, err := url.Parse(c.Gateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("GATEWAY %q is not an http(s) URL", c.Gateway))
	}
	if v := getenv("DISPATCH_MIN_BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("DISPATCH_MIN_BATCH_SIZE %q is not a whole number ≥ 1", v))
		}
		c.MinBatchSize = n
	}
	if v := getenv("DISPATCH_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("DISPATCH_INTERVAL %q is not a positive duration such as 10s", v))
		}
		c.DispatchInterval = d
	}
	if v := getenv("METRIC_DISTRIBUTION"); v != "" {
		d, err := dispatcher.ParseDistribution(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("METRIC_DISTRIBUTION: %w", err))
		}
		c.Distribution = d
	}
	if v := getenv("PUSH_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("PUSH_TIMEOUT %q is not a positive duration such as 500ms", v))
		}
		c.PushTimeout = d
	}
	if v := getenv("PUSH_RETRY_BACKOFF"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("PUSH_RETRY_BACKOFF %q is not a positive duration such as 1s", v))
		}
		c.RetryBackoff = d
	}
	if v := getenv("TELEMETRY_LISTENER_ADDRESS"); v != "" {
		c.ListenerAddress = v
	}
	if v := getenv("EXTENSION_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("EXTENSION_LOG_LEVEL: %w", err))
		}
	}
	prices, err := dispatcher.ParsePriceOverrides(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.Prices = prices
	return c, errors.Join(errs...)
}
