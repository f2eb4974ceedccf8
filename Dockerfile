# Builds the `crm` binary; the image runs `crm serve` against the NATS server given in
# CRM_NATS_URL (see docker-compose.yml).
#
# Dependencies are built in a layer of their own, from the manifests alone (every crate's
# sources replaced by stubs), so a change to our code rebuilds only our crates. The layer is
# reused as long as no Cargo.toml and not Cargo.lock change.
FROM rust:1.95-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN set -eu; mkdir /skeleton; \
    cp Cargo.toml Cargo.lock /skeleton/; \
    for manifest in crates/*/Cargo.toml; do \
      crate=$(dirname "$manifest"); \
      mkdir -p "/skeleton/$crate/src"; \
      cp "$manifest" "/skeleton/$crate/"; \
      [ -f "$crate/src/lib.rs" ] && echo "" > "/skeleton/$crate/src/lib.rs"; \
      [ -f "$crate/src/main.rs" ] && echo "fn main() {}" > "/skeleton/$crate/src/main.rs"; \
      true; \
    done

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked -p crm-cli --bin crm
COPY . .
# The stubs' outputs are older than the real sources: cargo rebuilds our crates only.
RUN find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p crm-cli --bin crm

FROM debian:bookworm-slim
# A system user of its own: the service needs no root, only its data directory.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin crm \
    && mkdir -p /data && chown crm:crm /data
COPY --from=build /src/target/release/crm /usr/local/bin/crm
USER crm
VOLUME /data
ENTRYPOINT ["crm"]
CMD ["serve"]
