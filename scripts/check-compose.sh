#!/usr/bin/env bash
# Checks docker-compose.yml with the compose tool when this machine has one (`docker compose`
# or `docker-compose`), using placeholder passwords. Without one it says so and succeeds: the
# file's references are also checked by crates/crm-cli/tests/ops.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "check-compose: no compose tool on this machine; docker-compose.yml not checked by it"
  exit 0
fi
env_file=$(mktemp)
trap 'rm -f "$env_file"' EXIT
sed -n 's/^\(CRM_NATS_PASSWORD_[A-Z_]*\)=.*/\1=placeholder0/p' deploy/nats/.env.example >"$env_file"
"${compose[@]}" --env-file "$env_file" -f docker-compose.yml config --quiet
echo "check-compose: docker-compose.yml accepted by ${compose[*]}"
