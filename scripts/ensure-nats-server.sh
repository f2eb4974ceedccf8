#!/usr/bin/env bash
# Installs nats-server from Debian's package when it is not on this machine. As root it runs
# apt-get itself; otherwise it says what to run and fails (no sudo is assumed).
set -euo pipefail
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "nats-server not found. Install Debian's nats-server package as root, for example:" >&2
    echo "    apt-get update && apt-get install -y nats-server" >&2
    echo "or put a nats-server binary on PATH, then run this again." >&2
    exit 1
fi
echo "nats-server not found: installing Debian's nats-server package" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
