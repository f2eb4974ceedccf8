#!/usr/bin/env bash
# The whole test suite: unit, property and system tests (real nats-server, real sled
# directories, real processes). Each NATS test starts its own server on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-nats-server.sh
# The Python example's system test (crates/crm-cli/tests/python_example.rs) needs nats-py.
scripts/ensure-python-deps.sh
export PATH="$PATH:/usr/sbin"
exec cargo test --workspace --locked "$@"
