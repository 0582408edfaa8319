package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/dispatcher"
)

// defaultLocalPushAddress is where the local push endpoint listens: the
// Pushgateway's port, so clients configured for localhost:9091 push to the
// extension unchanged; loopback only.
const defaultLocalPushAddress = "127.0.0.1:9091"

// localPushAddress reads LOCAL_PUSH_ADDRESS: unset means the default, "" is
// not distinguishable from unset, "off" disables the endpoint. The host
// must be a loopback address (or localhost): the endpoint takes pushes
// from the function in the same execution environment only.
func localPushAddress(getenv func(string) string) (string, error) {
	v := strings.TrimSpace(getenv("LOCAL_PUSH_ADDRESS"))
	switch strings.ToLower(v) {
	case "":
		return defaultLocalPushAddress, nil
	case "off", "false", "none", "disabled":
		return "", nil
	}
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		return "", errors.New("LOCAL_PUSH_ADDRESS " + `"` + v + `"` + " is not host:port, e.g. 127.0.0.1:9091 (or off)")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", errors.New("LOCAL_PUSH_ADDRESS " + `"` + v + `"` + " must be a loopback address such as 127.0.0.1:9091")
	}
	return v, nil
}

// withLocalPush starts the local push endpoint (before the first event, so
// a function's first push finds it) and returns what the custom Pusher
// gathers: the EMF metrics, plus the function's pushed metrics. Any problem
// is logged and the extension runs without the endpoint.
func withLocalPush(getenv func(string) string, metrics *dispatcher.Metrics, function, version, region string, logger *slog.Logger) dispatcher.Gatherer {
	addr, err := localPushAddress(getenv)
	if err != nil {
		logger.Error("invalid configuration; running without the local push endpoint", "err", err)
		return metrics.CustomGatherer()
	}
	if addr == "" {
		return metrics.CustomGatherer()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("listen for local pushes; running without the local push endpoint", "addr", addr, "err", err)
		return metrics.CustomGatherer()
	}
	lp := dispatcher.NewLocalPush(dispatcher.Labels{FunctionName: function, FunctionVersion: version, Region: region})
	mux := http.NewServeMux()
	mux.Handle("/metrics/", lp)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // lives as long as the process
	logger.Debug("local push endpoint", "addr", ln.Addr().String())
	return dispatcher.CombineGatherers(metrics.CustomGatherer(), lp)
}
