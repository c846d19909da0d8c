# syntax=docker/dockerfile:1
#
# One image with every printwatch binary in /usr/local/bin:
#   printwatch-agent, printwatch-notifier, printwatch-inbox, printwatch (CLI).
# It starts the agent by default; run another service by giving its command,
# e.g. `printwatch-notifier --config /etc/printwatch/printwatch.toml`.
#
#   docker build -t printwatch:dev .
#
# The config is one TOML file, mounted at /etc/printwatch/printwatch.toml
# ($PRINTWATCH_CONFIG points there, so `printwatch devices` works in the
# container too). Secrets come as files (`*_file` keys, e.g. /run/secrets/…)
# or the override variables (PRINTWATCH_MAIL_SMTP_PASSWORD, …); see
# docs/configuration.md. Protocol buffers are compiled by protox (pure Rust),
# so the builder needs no protoc.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- builder ----
FROM ${RUST_IMAGE} AS builder
WORKDIR /src

# Dependencies first: only the manifests (and empty targets, so cargo can
# read the workspace), then `cargo fetch`. This layer is reused until
# Cargo.lock or a Cargo.toml changes. Every workspace member's Cargo.toml
# is listed here (deploy/check-manifests.sh checks the list against
# Cargo.toml's `members`).
COPY Cargo.toml Cargo.lock ./
COPY crates/printwatch-proto/Cargo.toml crates/printwatch-proto/
COPY crates/printwatch-events/Cargo.toml crates/printwatch-events/
COPY crates/printwatch-bus/Cargo.toml crates/printwatch-bus/
COPY crates/printwatch-runtime/Cargo.toml crates/printwatch-runtime/
COPY crates/printwatch-agent/Cargo.toml crates/printwatch-agent/
COPY crates/printwatch-cli/Cargo.toml crates/printwatch-cli/
COPY crates/printwatch-config/Cargo.toml crates/printwatch-config/
COPY crates/printwatch-testing/Cargo.toml crates/printwatch-testing/
COPY crates/printwatch-smtp/Cargo.toml crates/printwatch-smtp/
COPY crates/printwatch-notifier/Cargo.toml crates/printwatch-notifier/
COPY crates/printwatch-mailbox/Cargo.toml crates/printwatch-mailbox/
COPY crates/printwatch-inbox/Cargo.toml crates/printwatch-inbox/
COPY tests/Cargo.toml tests/
RUN set -eu; \
    for manifest in crates/*/Cargo.toml tests/Cargo.toml; do \
      dir=$(dirname "$manifest"); \
      mkdir -p "$dir/src"; \
      touch "$dir/src/lib.rs" "$dir/src/main.rs" "$dir/lib.rs"; \
    done; \
    cargo fetch --locked; \
    rm -rf crates tests

# The sources. The stubs above are gone, so no empty target survives.
COPY proto proto
COPY crates crates
COPY tests tests

# Build offline from the fetched registry (--frozen = --locked --offline).
# The target folder is a BuildKit cache, so a rebuild after a source change
# recompiles only what changed; the binaries are copied out of it.
RUN --mount=type=cache,id=printwatch-target,target=/src/target \
    set -eu; \
    cargo build --release --frozen --bins; \
    mkdir -p /out; \
    for bin in printwatch-agent printwatch-notifier printwatch-inbox printwatch; do \
      install -m 0755 "target/release/$bin" /out/; \
    done

# ---------------------------------------------------------------- runtime ----
FROM ${RUNTIME_IMAGE}

# ca-certificates unpinned on purpose: the newest CA bundle of bookworm.
# hadolint ignore=DL3008
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 printwatch; \
    useradd --system --uid 10001 --gid 10001 --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin printwatch; \
    mkdir -p /etc/printwatch

COPY --from=builder /out/ /usr/local/bin/

LABEL org.opencontainers.image.title="printwatch" \
      org.opencontainers.image.description="Fleet-wide e-mail notification for printers: agent, notifier, inbox and the printwatch CLI" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PRINTWATCH_CONFIG=/etc/printwatch/printwatch.toml
# 50051: the agent's gRPC ([agent] grpc_listen); 9090: /healthz, /readyz,
# /metrics ([telemetry] http_listen) on every service.
EXPOSE 50051 9090
USER 10001:10001
CMD ["printwatch-agent", "--config", "/etc/printwatch/printwatch.toml"]
