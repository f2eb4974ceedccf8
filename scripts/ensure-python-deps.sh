#!/usr/bin/env bash
# Installs the Python examples' pinned requirements (examples/python/requirements.txt) into
# target/tools/python with `pip install --target`: project-local, no sudo, nothing but PyPI.
# The system tests of the examples find them there through PYTHONPATH. A stamp file holding
# the requirements' checksum makes a second run a no-op until the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=examples/python/requirements.txt
target=target/tools/python
stamp="$target/.requirements.sha256"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "$python not found: the Python examples and their test need CPython 3.8 or later with pip." >&2
    echo "Install it (for example Debian's python3 and python3-pip), or set PYTHON to one, then run this again." >&2
    exit 1
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "$python has no pip: install pip for it (for example Debian's python3-pip), then run this again." >&2
    exit 1
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "installing the Python examples' requirements into $target" >&2
# A fresh directory: pip --target does not upgrade what is already there.
rm -rf "$target"
mkdir -p "$target"
PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
    --target "$target" --requirement "$requirements"
echo "$want" > "$stamp"
