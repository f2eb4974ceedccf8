#!/usr/bin/env bash
# Dependency hygiene with cargo-deny and deny.toml: licenses, bans, sources and advisories.
#
# The RustSec advisory database is a git repository on GitHub, which CI cannot reach, and no
# package registry that CI reaches ships it. The advisories check uses, in this order:
#   - CRM_ADVISORY_DB=/path/to/advisory-db (a git clone of the RustSec database);
#   - CRM_DENY_FETCH=1 on a machine that reaches GitHub (cargo-deny fetches the current one);
#   - a clone left in cargo-deny's own cache by an earlier fetch;
#   - otherwise the dated snapshot committed under .ci/ (its crates/ and rust/ advisories),
#     unpacked into target/tools as a one-commit git repository. The script prints the
#     snapshot's date: advisories filed after it are not covered until someone refreshes it
#     with scripts/refresh-advisory-db.sh where GitHub is reachable. The bans in deny.toml
#     hold the known fixes independently of any database.
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
    if [ -e "$db_dir" ] && [ ! -L "$db_dir" ]; then
        # ln would put the link inside that directory and the check would use the old clone.
        echo "deny: CRM_ADVISORY_DB is set but cargo-deny's cache already holds a database at" \
            "$db_dir; remove that directory or unset CRM_ADVISORY_DB" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$db_dir")"
    ln -sfn "$(cd "$CRM_ADVISORY_DB" && pwd)" "$db_dir"
fi

# A link left by an earlier run to an unpacked snapshot: decide again (a newer one may be here).
if [ -L "$db_dir" ] && readlink "$db_dir" | grep -q '/tools/advisory-db-'; then
    rm -f "$db_dir"
fi

snapshot_tar="$(ls .ci/rustsec-advisory-db-*.tar.xz 2>/dev/null | sort | tail -n 1 || true)"

if [ "${CRM_DENY_FETCH:-0}" = "1" ]; then
    "$deny" check advisories
    exit 0
fi

if ! git -C "$db_dir" rev-parse --git-dir >/dev/null 2>&1; then
    if [ -z "$snapshot_tar" ]; then
        echo "deny: no RustSec advisory database: set CRM_ADVISORY_DB to a clone, or" \
            "CRM_DENY_FETCH=1 where GitHub is reachable" >&2
        exit 1
    fi
    snapshot_date="$(basename "$snapshot_tar" .tar.xz | sed 's/^rustsec-advisory-db-//')"
    snapshot_dir="${CARGO_TARGET_DIR:-$PWD/target}/tools/advisory-db-$snapshot_date"
    if ! git -C "$snapshot_dir" rev-parse --git-dir >/dev/null 2>&1; then
        rm -rf "$snapshot_dir"
        mkdir -p "$snapshot_dir"
        tar -xJf "$snapshot_tar" -C "$snapshot_dir"
        # cargo-deny reads the database as a git repository; the commit carries the date.
        git -C "$snapshot_dir" init -q
        git -C "$snapshot_dir" add -A
        GIT_AUTHOR_DATE="${snapshot_date}T00:00:00Z" GIT_COMMITTER_DATE="${snapshot_date}T00:00:00Z" \
            git -C "$snapshot_dir" -c user.name=crm-ci -c user.email=ci@crm.invalid \
            commit -q -m "RustSec advisory database snapshot of $snapshot_date"
    fi
    mkdir -p "$(dirname "$db_dir")"
    ln -sfn "$snapshot_dir" "$db_dir"
    age_days=$(( ( $(date +%s) - $(date -d "$snapshot_date" +%s) ) / 86400 ))
    echo "deny: advisories against the bundled snapshot of the RustSec database of" \
        "$snapshot_date ($age_days days old; scripts/refresh-advisory-db.sh renews it)"
else
    echo "deny: advisories against the RustSec database at $db_dir" \
        "(last commit $(git -C "$db_dir" log -1 --format=%cs))"
fi
"$deny" --offline check advisories
