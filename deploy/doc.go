// Package deploy holds no code: it is the home of the container stack — the
// repository's Dockerfile builds the gateway image, compose.yaml runs it
// with Prometheus (prometheus/prometheus.yml) and Grafana (grafana/:
// provisioned data source and the Lambda dashboard) — and of the tests that
// check that wiring without a Docker engine (deploy_test.go). healthcheck/
// is the image's HEALTHCHECK binary. e2e/dashboard_test.go evaluates every
// query of the dashboard on a real Prometheus.
package deploy
