# Builds the `crm` binary; the image runs `crm serve` against the NATS server given in
# CRM_NATS_URL (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p crm-cli --bin crm

FROM debian:bookworm-slim
# A system user of its own: the service needs no root, only its data directory.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin crm \
    && mkdir -p /data && chown crm:crm /data
COPY --from=build /src/target/release/crm /usr/local/bin/crm
USER crm
VOLUME /data
ENTRYPOINT ["crm", "serve"]
