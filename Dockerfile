# Emporium: one image, one binary (`emporium`), every role.
#
#   docker build -t emporium:local .
#   docker build -t emporium:kurrentdb --build-arg CARGO_FEATURES=kurrentdb .
#
# The image runs `emporium serve` (role `all`, embedded SQLite in /var/lib/emporium) unless
# told otherwise; docker-compose.yml runs it as `serve --role command|query|projector`.

# The toolchain the project is developed and tested with (workspace rust-version: 1.94).
ARG RUST_VERSION=1.95

############################################################################### builder
FROM rust:${RUST_VERSION}-bookworm AS builder

# Comma-separated cargo features of the `emporium` package, e.g. `kurrentdb` for the
# EventStoreDB / KurrentDB event store. Empty: the default build (SQLite, PostgreSQL).
ARG CARGO_FEATURES=""

WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1. Dependencies only: the manifests, the lock file and stub sources, so this layer (the
#    slow part) is rebuilt only when a manifest or Cargo.lock changes. eventstore declares
#    its bench target explicitly, so cargo wants that file to exist too. A new workspace
#    member needs its manifest COPY here, its stub in the loop and its COPY in step 2.
COPY Cargo.toml Cargo.lock ./
COPY crates/domain/Cargo.toml     crates/domain/
COPY crates/eventstore/Cargo.toml crates/eventstore/
COPY crates/web/Cargo.toml        crates/web/
COPY command-api/Cargo.toml       command-api/
COPY projector/Cargo.toml         projector/
COPY query-api/Cargo.toml         query-api/
RUN set -eux; \
    for crate in crates/domain crates/eventstore crates/web command-api projector query-api; do \
        mkdir -p "$crate/src"; \
        : > "$crate/src/lib.rs"; \
    done; \
    mkdir -p src crates/eventstore/benches; \
    echo 'fn main() {}' > src/main.rs; \
    echo 'fn main() {}' > crates/eventstore/benches/eventstore.rs; \
    cargo build --release --locked --bin emporium ${CARGO_FEATURES:+--features "$CARGO_FEATURES"}; \
    rm -rf src crates/domain/src crates/eventstore/src crates/eventstore/benches crates/web/src \
        command-api/src projector/src query-api/src

# 2. The sources. `sqlx::migrate!` embeds migrations/ at compile time, so it is part of the
#    build context. The stubs above were written after the real files' modification
#    times, so every source file is touched: otherwise cargo could take the stub build
#    for an up-to-date one (the stub binary prints nothing for --version, hence the grep).
#    The release profile keeps line tables for backtraces; compressing them shrinks the
#    binary to less than half (panics still name file and line).
COPY migrations migrations
COPY src src
COPY crates crates
COPY command-api command-api
COPY projector projector
COPY query-api query-api
RUN set -eux; \
    find src crates command-api projector query-api migrations -type f -exec touch {} +; \
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

# ca-certificates for TLS to external services; curl for the health check only.
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
# signing key, later the search index) in the volume. Both can be overridden.
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
