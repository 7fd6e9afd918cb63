# syntax=docker/dockerfile:1
#
# Emporium: one image, one binary (`emporium`), every role.
#
#   docker build -t emporium:local .
#   docker build -t emporium:kurrentdb --build-arg CARGO_FEATURES=kurrentdb .
#
# Needs BuildKit (the default builder of Docker 23+ and of `docker compose build`) for the
# cache mounts below.
#
# The image runs `emporium serve` (role `all`, embedded SQLite in /var/lib/emporium) unless
# told otherwise; docker-compose.yml runs it as
# `serve --role command|query|projector|notifier`.

# The workspace needs Rust >= 1.94 (workspace.package rust-version; edition 2024). 1.95 is
# the toolchain the project is developed and tested with.
ARG RUST_VERSION=1.95

############################################################################### builder
FROM rust:${RUST_VERSION}-bookworm AS builder

# Comma-separated cargo features of the `emporium` package, e.g. `kurrentdb` for the
# EventStoreDB / KurrentDB event store. Empty: the default build (SQLite, PostgreSQL).
ARG CARGO_FEATURES=""

WORKDIR /app
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# The whole workspace as .dockerignore filters it: every member (crates/*, command-api,
# projector, query-api, notifier with its templates), their benches and tests (cargo reads
# every member's manifest and wants each declared bench and test target's file to exist),
# and migrations/ (embedded at compile time by sqlx::migrate!). A new workspace member
# needs no change here.
COPY . .

# Dependencies are cached in BuildKit cache mounts instead of a stub-source layer: the
# registry, git checkouts and the target directory survive between builds on the same
# builder, so a source change recompiles only the workspace's own crates. Cache mounts
# are not part of the image, so the binary is copied out in the same step.
#
# Every source file is touched first: cargo decides what to rebuild by modification time,
# and files from a build context (a git checkout, a tarball) may carry times older than a
# cached build's, which would let cargo keep a stale binary. The dependencies are not
# affected. The release profile keeps line tables for backtraces; compressing them shrinks
# the binary to less than half (panics still name file and line).
RUN --mount=type=cache,id=emporium-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=emporium-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=emporium-target,target=/app/target,sharing=locked \
    set -eux; \
    find . -path ./target -prune -o -type f -exec touch {} +; \
    cargo build --release --locked --bin emporium ${CARGO_FEATURES:+--features "$CARGO_FEATURES"}; \
    ./target/release/emporium --version | grep '^emporium '; \
    objcopy --compress-debug-sections=zlib target/release/emporium /usr/local/bin/emporium

############################################################################### runtime
FROM debian:bookworm-slim AS runtime

ARG CARGO_FEATURES=""
LABEL org.opencontainers.image.title="emporium" \
      org.opencontainers.image.description="Emporium: an event-sourced e-commerce backend" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.emporium.cargo-features="${CARGO_FEATURES}"

# ca-certificates for TLS to external services (SMTP, webhooks, S3); curl for the health
# checks only.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 emporium; \
    useradd --system --uid 10001 --gid emporium --home-dir /var/lib/emporium \
        --no-create-home --shell /usr/sbin/nologin emporium; \
    install -d -o emporium -g emporium -m 0750 /var/lib/emporium

COPY --from=builder /usr/local/bin/emporium /usr/local/bin/emporium

# Listen on every interface inside the container; keep state (embedded SQLite, a generated
# signing key, the search index, the notifier's e-mail outbox) in the volume. Both can be
# overridden.
ENV EMPORIUM_ADDR=0.0.0.0:8080 \
    EMPORIUM_DATA_DIR=/var/lib/emporium
VOLUME ["/var/lib/emporium"]
WORKDIR /var/lib/emporium

# Numeric, so orchestrators can check that the user is not root.
USER 10001:10001
EXPOSE 8080

# Readiness (event store and database reachable) on the default port. A container given
# another EMPORIUM_ADDR port needs its own health check (compose sets one anyway).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health/ready"]

ENTRYPOINT ["emporium"]
CMD ["serve"]
