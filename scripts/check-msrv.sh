#!/usr/bin/env bash
# Fails when a dependency asks for a newer Rust than the workspace's `rust-version` (its
# declared minimum). Only one toolchain is installed here, so the minimum cannot be built
# directly; std APIs newer than it are caught by clippy's `incompatible_msrv` lint, which
# reads the same `rust-version` (.ci/run runs clippy with -D warnings).
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo metadata --format-version 1 --locked --filter-platform "$host" | python3 -c '
import json
import sys

def parse(version):
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
in_graph = {node["id"] for node in meta["resolve"]["nodes"]}
packages = [p for p in meta["packages"] if p["id"] in in_graph]
ours = {p["rust_version"] for p in packages if p["id"] in members}
if len(ours) != 1 or None in ours:
    sys.exit(f"check-msrv: every workspace crate must inherit one rust-version, found {sorted(map(str, ours))}")
msrv = ours.pop()
newer = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in packages
    if p["id"] not in members and p.get("rust_version") and parse(p["rust_version"]) > parse(msrv)
)
for name, version, needs in newer:
    print(f"check-msrv: {name} {version} needs Rust {needs}, above rust-version {msrv}", file=sys.stderr)
if newer:
    sys.exit(1)
needs, name = max(
    (parse(p["rust_version"]), p["name"]) for p in packages if p["id"] not in members and p.get("rust_version")
)
highest = ".".join(map(str, needs))
print(f"check-msrv: rust-version {msrv} covers all {len(packages) - len(members)} dependencies (highest: {name}, {highest})")
'
