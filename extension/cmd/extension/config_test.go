package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/dispatcher"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"GATEWAY": "http://gw:9091/", "AWS_REGION": "eu-west-1"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Gateway:         "http://gw:9091",
		MinBatchSize:    dispatcher.DefaultMinBatchSize,
		Distribution:    dispatcher.Histogram,
		PushTimeout:     dispatcher.DefaultPushTimeout,
		ListenerAddress: "sandbox.localdomain:4243",
		LogLevel:        slog.LevelInfo,
		Region:          "eu-west-1",
	}
	if c != want {
		t.Fatalf("config = %+v\nwant     %+v", c, want)
	}
}

func TestLoadConfigSettings(t *testing.T) {
	c, err := loadConfig(env(map[string]string{
		"GATEWAY":                    "https://gw.example:443",
		"AUTH_SECRET":                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gw-AbCdEf",
		"DISPATCH_MIN_BATCH_SIZE":    "1",
		"METRIC_DISTRIBUTION":        "Summary",
		"PUSH_TIMEOUT":               "250ms",
		"PUSH_RETRY_BACKOFF":         "5s",
		"TELEMETRY_LISTENER_ADDRESS": "127.0.0.1:0",
		"EXTENSION_LOG_LEVEL":        "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MinBatchSize != 1 || c.Distribution != dispatcher.Summary || c.PushTimeout != 250*time.Millisecond || c.RetryBackoff != 5*time.Second ||
		c.ListenerAddress != "127.0.0.1:0" || c.LogLevel != slog.LevelDebug || c.AuthSecret == "" {
		t.Fatalf("config = %+v", c)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	_, err := loadConfig(env(map[string]string{
		"GATEWAY":                 "gw:9091",
		"DISPATCH_MIN_BATCH_SIZE": "0",
		"METRIC_DISTRIBUTION":     "percentiles",
		"PUSH_TIMEOUT":            "soon",
		"PUSH_RETRY_BACKOFF":      "-1s",
		"EXTENSION_LOG_LEVEL":     "chatty",
	}))
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, name := range []string{"GATEWAY", "DISPATCH_MIN_BATCH_SIZE", "METRIC_DISTRIBUTION", "PUSH_TIMEOUT", "PUSH_RETRY_BACKOFF", "EXTENSION_LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if _, err := loadConfig(env(nil)); err == nil || !strings.Contains(err.Error(), "GATEWAY is not set") {
		t.Errorf("missing GATEWAY: %v", err)
	}
}
