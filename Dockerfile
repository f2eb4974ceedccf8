# Builds the `crm` binary; the image runs `crm serve` against the NATS server given in
# CRM_NATS_URL (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p crm-cli --bin crm

FROM debian:bookworm-slim
COPY --from=build /src/target/release/crm /usr/local/bin/crm
VOLUME /data
ENTRYPOINT ["crm", "serve"]
