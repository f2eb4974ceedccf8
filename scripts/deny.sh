#!/usr/bin/env bash
# Dependency hygiene with cargo-deny and deny.toml: licenses, bans and sources always;
# advisories when the RustSec advisory database is on this machine.
#
# The database is a git repository on GitHub, which CI cannot reach, and no package registry
# that CI reaches ships it. So advisories run only when a clone is present:
#   - CRM_ADVISORY_DB=/path/to/advisory-db (a git clone of the RustSec database), or
#   - one left by an earlier `cargo deny fetch db` in cargo-deny's own cache, or
#   - CRM_DENY_FETCH=1 on a machine that reaches GitHub (cargo-deny fetches it).
# Otherwise the advisories check is skipped, loudly; the bans in deny.toml still hold the
# known fixes (lru, async-nats, rustls-webpki), and docs/DEPENDENCIES.md records the last
# check by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

deny="$(scripts/ensure-cargo-deny.sh)"
"$deny" --version

# Not --offline: crates of the other target in deny.toml may not be in cargo's cache yet.
"$deny" --locked check licenses bans sources

# Where cargo-deny 0.20 keeps the default database (its directory name is derived from the
# database URL; see deny.toml [advisories]).
db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
if [ -n "${CRM_ADVISORY_DB:-}" ]; then
    mkdir -p "$(dirname "$db_dir")"
    ln -sfn "$(cd "$CRM_ADVISORY_DB" && pwd)" "$db_dir"
fi

if [ "${CRM_DENY_FETCH:-0}" = "1" ]; then
    "$deny" check advisories
elif git -C "$db_dir" rev-parse --git-dir >/dev/null 2>&1; then
    echo "deny: advisories against the local RustSec database at $db_dir" \
        "(last commit $(git -C "$db_dir" log -1 --format=%cs))"
    "$deny" --offline check advisories
else
    echo "deny: advisories SKIPPED: no RustSec advisory database at $db_dir and none can be" \
        "fetched here (set CRM_ADVISORY_DB to a clone, or CRM_DENY_FETCH=1 where GitHub is" \
        "reachable). Known fixes are held by the bans in deny.toml; the last check by hand is" \
        "in docs/DEPENDENCIES.md."
fi
