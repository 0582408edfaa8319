# Prometheus metrics out of AWS Lambda: the extension (layer binary) and the
# aggregating push gateway. `make demo` runs the pipeline locally, `make test`
# runs the whole test suite.

GO        ?= go
BIN       := bin
GOFLAGS_BUILD := -trimpath -ldflags="-s -w"
SCENARIO  ?= testdata/cold-start-four-invocations.json

.PHONY: all build demo test test-deps vet fmt bench clean

all: build

build: $(BIN)/extension $(BIN)/gateway

# Static, stripped binaries: the extension runs on Amazon Linux 2023 and the
# gateway in a scratch/distroless container.
$(BIN)/extension: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $@ ./extension/cmd/extension

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

clean:
	rm -rf $(BIN) dist

FORCE:
