#!/usr/bin/env bash
# Renews the RustSec advisory database snapshot that scripts/deny.sh uses where the database
# cannot be fetched (CI). Run it where cargo-deny can fetch its database, or give a clone of the
# database as $1; then commit the new .ci/rustsec-advisory-db-<date>.tar.xz and delete the old.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-}"
if [ -z "$src" ]; then
    deny="$(scripts/ensure-cargo-deny.sh)"
    "$deny" fetch db
    src="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
fi
date="$(git -C "$src" log -1 --format=%cs)"
out=".ci/rustsec-advisory-db-$date.tar.xz"
tar -cJf "$out" -C "$src" crates rust support.toml LICENSE.txt
echo "wrote $out (database as of $date, commit $(git -C "$src" rev-parse --short HEAD))"
