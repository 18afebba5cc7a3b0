# syntax=docker/dockerfile:1
#
# The jxp server in a container: built with the official Rust image, run as a non-root user on
# slim Debian, with the database on the /data volume.
#
#   docker build -t jxp .
#   docker run -d --name jxp -p 4001:4001 -v jxp-data:/data jxp
#   docker exec jxp jxp add-admin --email admin@example.com --password 'a long secret' --name Admin
#
# Your own models: mount them over the samples, `-v "$PWD/models:/app/models:ro"`. Settings are
# environment variables (`-e API_URL=https://api.example.com`, `--env-file .env`); the README
# lists them. `DATABASE_URL=postgres://…` uses PostgreSQL instead of the SQLite file in /data.

# Any release from the Cargo.toml's rust-version (1.89) on builds jxp; this is the one it is
# tested with. The build and runtime images share a Debian release, so the binary finds the C
# library it was linked against.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary is copied out of
# the cached target in the same step. SQLite is compiled in by the image's C compiler.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p jxp \
    && install -m 0755 target/release/jxp /usr/local/bin/jxp

FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: the public roots for PostgreSQL over TLS and for SMTP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin jxp \
    && mkdir -p /app /data \
    && chown jxp:jxp /data
COPY --from=build /usr/local/bin/jxp /usr/local/bin/jxp
COPY models/ /app/models/

# The container's defaults: `-e` and `--env-file` override them. A `.env` mounted in /app is read
# too, but only for variables the environment does not set, so not for these.
ENV HOST=0.0.0.0 \
    PORT=4001 \
    MODEL_DIR=/app/models \
    DATABASE_URL=/data/jxp.db
WORKDIR /app
VOLUME ["/data"]
EXPOSE 4001
USER jxp

# /healthz answers 200 {"status":"ok"} once the database answers too. The image has no curl: bash
# speaks the one HTTP request itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-4001} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# The other commands run in the same container: `docker exec jxp jxp add-admin …`.
ENTRYPOINT ["jxp"]
CMD ["serve"]
