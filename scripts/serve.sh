#!/usr/bin/env bash
# The main job: the whole CRM backend on one machine. Starts a local nats-server itself
# unless CRM_NATS_URL (or --nats-url) is given. Extra arguments go to `crm serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The local server is the pinned release (unless CRM_NATS_SERVER_BIN names another).
CRM_NATS_SERVER_BIN="${CRM_NATS_SERVER_BIN:-$(scripts/ensure-nats-server.sh)}"
export CRM_NATS_SERVER_BIN
exec cargo run --release --locked -p crm-cli --bin crm -- serve --data-dir "${CRM_DATA_DIR:-./data}" "$@"
