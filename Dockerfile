# production-agent container image.
#
#   docker build --build-arg VERSION=1.2.3 -t production-agent:1.2.3 .
#   docker run --rm -p 8080:8080 -p 9090:9090 --read-only -v agent-data:/data production-agent:1.2.3
#
# Stage 1 builds a static binary; stage 2 is distroless "static" (no shell,
# no package manager, CA bundle in /etc/ssl/certs, user nonroot = 65532).
# The binary embeds time/tzdata, so the runtime image needs no zoneinfo.

FROM golang:1.26 AS build

WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

# VERSION is stamped into main.version ("production-agent version",
# agent_build_info, /health).
ARG VERSION=dev

# Static (no cgo, no libc), reproducible paths, stripped. /out/data becomes
# the audit volume, owned by nonroot; distroless has no shell to mkdir it.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/production-agent . \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
LABEL org.opencontainers.image.title="production-agent" \
      org.opencontainers.image.description="LLM agent HTTP service with resilience, audit and metrics" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/production-agent /production-agent
COPY config.toml /etc/production-agent/config.toml
COPY --from=build --chown=65532:65532 /out/data /data

# The committed config.toml is the base; audit records go to the /data
# volume so the root file system can be mounted read-only. Environment
# beats the file: see docs/deploy.md for overriding any key.
ENV AGENT_CONFIG=/etc/production-agent/config.toml \
    AGENT_AUDIT_BACKEND=file \
    AGENT_AUDIT_FILE_PATH=/data/audit.jsonl

WORKDIR /data
VOLUME ["/data"]

USER 65532:65532

# 8080: API (POST /chat, /sessions, /health*); 9090: admin (/metrics).
EXPOSE 8080 9090

# No shell in the image: the binary probes itself (GET /health on
# 127.0.0.1:{server.port}) and exits 0 or 1. No --start-period: the
# service is ready within a second, and dockerfilelint rejects that flag.
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
    CMD ["/production-agent", "healthcheck"]

# Exec form: the binary is PID 1 and receives SIGTERM itself; it turns
# readiness 503, drains within server.shutdown_timeout_seconds and exits 0.
ENTRYPOINT ["/production-agent"]
CMD ["serve"]
