# Prometheus metrics out of AWS Lambda: the extension (layer binary) and the
# aggregating push gateway. `make demo` runs the pipeline locally, `make test`
# runs the whole test suite.

GO        ?= go
BIN       := bin
GOFLAGS_BUILD := -trimpath -ldflags="-s -w"
# The extension speaks HTTP/1.1 only (Extensions, Telemetry and Secrets
# Manager APIs, pushes): leaving net/http's bundled HTTP/2 out saves 0.5 MB.
EXTENSION_TAGS := nethttpomithttp2
BENCH_COUNT ?= 6
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
SCENARIO  ?= testdata/cold-start-four-invocations.json

.PHONY: all build demo test test-deps vet fmt bench bench-extension bench-compare clean fuzz
.PHONY: layer build-PrometheusLambdaLayerX8664 build-PrometheusLambdaLayerArm64 build-ExampleFunction

all: build

build: $(BIN)/extension $(BIN)/gateway

# Static, stripped binaries: the extension runs on Amazon Linux 2023 and the
# gateway in a scratch/distroless container.
$(BIN)/extension: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -tags $(EXTENSION_TAGS) -o $@ ./extension/cmd/extension

$(BIN)/gateway: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $@ ./gateway/cmd/gateway

# The Lambda layer: dist/prometheus-lambda-x86_64.zip and
# dist/prometheus-lambda-arm64.zip, each holding extensions/prometheus-lambda
# (the extension, static and stripped). Reproducible: the same source and Go
# toolchain give the same zip bytes. The build flags live in layer/layer.go
# (layer/cmd/mklayer runs them), so `make layer`, SAM and the layer's tests
# build the same binary.
LAYER_NAME   := prometheus-lambda
LAYER_ARCHES := x86_64 arm64
DIST         := dist

layer: $(foreach a,$(LAYER_ARCHES),$(DIST)/$(LAYER_NAME)-$(a).zip)

$(DIST)/$(LAYER_NAME)-%.zip: FORCE
	$(GO) run ./layer/cmd/mklayer -go $(GO) -arch $* -zip $@

# SAM (`sam build`, template.yaml) runs these in the CodeUri/ContentUri
# directory, the repository root, with ARTIFACTS_DIR set: a layer's content
# goes to $(ARTIFACTS_DIR)/extensions/, a provided.al2023 function's
# executable to $(ARTIFACTS_DIR)/bootstrap. SAM zips them itself.
build-PrometheusLambdaLayerX8664:
	$(GO) run ./layer/cmd/mklayer -go $(GO) -arch x86_64 -dir "$(ARTIFACTS_DIR)"

build-PrometheusLambdaLayerArm64:
	$(GO) run ./layer/cmd/mklayer -go $(GO) -arch arm64 -dir "$(ARTIFACTS_DIR)"

# The example function (examples/function), arm64. lambda.norpc leaves out
# aws-lambda-go's RPC mode, which only the retired go1.x runtime used.
build-ExampleFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it" >&2; exit 1; }
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags lambda.norpc \
		-ldflags="-s -w" -o "$(ARTIFACTS_DIR)/bootstrap" ./examples/function

# Runs bin/extension under the local Lambda emulator on the bundled telemetry
# scenario, pushing to a locally started bin/gateway, and prints the
# gateway's scrape of the aws_lambda_* families. Needs no AWS, Docker or network.
demo: build
	$(GO) run ./internal/demo --extension $(BIN)/extension --gateway $(BIN)/gateway --scenario $(SCENARIO)

# The whole suite: vet, then every test under the race detector (end-to-end
# tests build the real binaries themselves).
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# Installs the compatibility suite's tools (Debian packages need root; npm
# packages from compat/node/package-lock.json). .ci/run does this too.
test-deps:
	bash .ci/install-test-deps

fmt:
	gofmt -l -w .

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Every fuzz target in the repository, one after the other, each for
# FUZZTIME (default 60s; CI runs FUZZTIME=5000x: a count, because Go 1.26's
# fuzz coordinator can fail a duration run at its deadline with "context
# deadline exceeded" and no input, golang/go#75804, fixed in Go 1.27). New
# crashers land in the package's testdata/fuzz/<target>/ and then run with
# go test as regressions.
FUZZTIME ?= 60s
FUZZ_TARGETS := \
	./internal/pushbody:FuzzParseText \
	./internal/pushbody:FuzzDecodeOpenMetrics \
	./internal/pushbody:FuzzDecodeProtobuf \
	./internal/pushbody:FuzzDecodeBody \
	./internal/family:FuzzDecode \
	./internal/clearmode:FuzzParseDuration \
	./gateway:FuzzPushHandler

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name$$' -fuzztime $(FUZZTIME) $$pkg/"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg/; \
	done

# The extension's overhead on bin/extension itself (internal/overhead): start
# time, INVOKE -> /event/next with and without a dispatch, memory after
# 10,000 invocations, binary size; BENCH_COUNT runs of each, in benchstat's
# input format in $(BIN)/bench-extension.txt, then summarised by benchstat
# (fetched through the Go module proxy; skipped when that fails).
bench-extension: $(BIN)/extension
	$(GO) test -run '^$$' -bench . -benchtime 1x -count $(BENCH_COUNT) ./internal/overhead/ \
		-args -extension=$(abspath $(BIN)/extension) > $(BIN)/bench-extension.txt; \
		status=$$?; cat $(BIN)/bench-extension.txt; exit $$status
	-$(GO) run $(BENCHSTAT) $(BIN)/bench-extension.txt

# bin/gateway against Debian's prometheus-pushgateway (apt-get install
# prometheus-pushgateway) on this machine, one after the other: pushes/s,
# p50/p99 latency and the ratio (internal/benchcompare; --help for its flags,
# e.g. BENCH_COMPARE_ARGS='--concurrency 8,32 --rounds 3').
bench-compare: build
	$(GO) run ./internal/benchcompare --gateway-bin $(BIN)/gateway $(BENCH_COMPARE_ARGS)

clean:
	rm -rf $(BIN) dist

FORCE:
