// Command demo runs the whole pipeline on this machine, as `make demo` does:
// it starts bin/gateway on loopback, runs bin/extension under the local
// Lambda emulator on a telemetry scenario (the extension pushes to the
// gateway), prints the gateway's scrape of the aws_lambda_* families, and
// stops everything. It needs no AWS, Docker or network.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
)

func main() {
	extension := flag.String("extension", "bin/extension", "the extension binary")
	gateway := flag.String("gateway", "bin/gateway", "the gateway binary")
	scenario := flag.String("scenario", "testdata/cold-start-four-invocations.json", "the telemetry scenario to replay")
	flag.Parse()
	if err := run(*extension, *gateway, *scenario); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(extension, gatewayBinary, scenarioPath string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sc, err := lambdaemu.LoadScenario(scenarioPath)
	if err != nil {
		return err
	}
	var gatewayLogs bytes.Buffer
	gw, err := harness.StartGateway(ctx, gatewayBinary, &gatewayLogs)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, gatewayLogs.String())
	}
	defer gw.Stop()
	fmt.Printf("gateway listening on %s\n", gw.URL)
	fmt.Printf("scenario: %s\n\n", sc.Description)

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	res, err := lambdaemu.Run(ctx, lambdaemu.Config{
		ExtensionPath: extension,
		Scenario:      sc,
		Env: []string{
			"GATEWAY=" + gw.URL,
			"TELEMETRY_LISTENER_ADDRESS=127.0.0.1:0",
			"EXTENSION_LOG_LEVEL=debug",
		},
		Stdout: os.Stdout,
		Stderr: os.Stdout,
		Logger: logger.With("component", "lambda-emulator"),
	})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	fmt.Printf("\nextension %q exited with code %d, %s after SHUTDOWN; %d telemetry batches delivered\n\n",
		res.ExtensionName, res.ExitCode, res.ShutdownDuration.Round(time.Millisecond), res.Delivered)

	_, text, err := harness.Scrape(ctx, gw.URL, "", "")
	if err != nil {
		return err
	}
	fmt.Printf("--- %s/metrics (aws_lambda_* families) ---\n", gw.URL)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "aws_lambda_") || strings.HasPrefix(line, "# HELP aws_lambda_") || strings.HasPrefix(line, "# TYPE aws_lambda_") {
			fmt.Println(line)
		}
	}
	return nil
}
