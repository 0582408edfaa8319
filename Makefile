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

all: build

build: $(BIN)/extension $(BIN)/gateway

# Static, stripped binaries: the extension runs on Amazon Linux 2023 and the
# gateway in a scratch/distroless container.
$(BIN)/extension: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -tags $(EXTENSION_TAGS) -o $@ ./extension/cmd/extension

$(BIN)/gateway: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $@ ./gateway/cmd/gateway

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
# FUZZTIME (default 60s; CI runs FUZZTIME=10s). New crashers land in the
# package's testdata/fuzz/<target>/ and then run with go test as regressions.
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
