# The aggregating push gateway as a container image (see deploy/ and the
# README's "Run the stack"):
#
#   docker build -t prometheus-lambda-gateway .
#   docker run -p 9091:9091 prometheus-lambda-gateway
#
# A static binary (CGO_ENABLED=0) on distroless's static base, running as
# its nonroot user (65532). The image has no shell: the HEALTHCHECK runs our
# own static deploy/healthcheck, which GETs /-/ready. ENTRYPOINT is in exec
# form, so the gateway is PID 1 and receives docker stop's SIGTERM itself;
# it shuts down gracefully on it: in-flight requests get up to 10 s, as long
# as docker's default grace period before SIGKILL, so deploy/compose.yaml
# gives it 30 s (docker run: --stop-timeout 30).
# deploy/deploy_test.go checks this file against the real binary.

# Build on the builder's platform and cross-compile for the target's
# (docker buildx build --platform linux/amd64,linux/arm64 .).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/gateway ./gateway/cmd/gateway && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/healthcheck && \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /gateway
COPY --from=build /out/healthcheck /healthcheck
# An empty directory owned by the nonroot user for --persistence.dir, and
# for a volume mounted there (docker copies the ownership into a fresh named
# volume).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
EXPOSE 9091
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/healthcheck", "http://127.0.0.1:9091/-/ready"]
ENTRYPOINT ["/gateway"]
# The gateway's state (write-ahead log and snapshots) goes to /data: mount a
# volume there (docker run -v gateway-data:/data) to keep the aggregated
# counters across container re-creation.
CMD ["--web.listen-address=:9091", "--persistence.dir=/data"]
