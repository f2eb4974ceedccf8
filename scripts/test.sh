#!/usr/bin/env bash
# The whole test suite: unit, property and system tests (real nats-server, real sled
# directories, real processes). Each NATS test starts its own server on a free port, from
# the release scripts/ensure-nats-server.sh pins and installs under target/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
# The pinned nats-server release, for the test kit and every `crm serve` the tests start
# (CRM_NATS_SERVER_BIN set beforehand runs the suite on another binary instead).
CRM_NATS_SERVER_BIN="${CRM_NATS_SERVER_BIN:-$(scripts/ensure-nats-server.sh)}"
export CRM_NATS_SERVER_BIN
# The Python example's system test (crates/crm-cli/tests/python_example.rs) needs nats-py.
scripts/ensure-python-deps.sh
exec cargo test --workspace --locked "$@"
