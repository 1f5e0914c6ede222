#!/bin/sh
# Install the Debian packages airlock needs to build, test and demo, when
# they are missing. Idempotent; quiet when everything is present.
#   scripts/deps.sh          build + test + demo dependencies
#   scripts/deps.sh --bench  also the benchmark peers
set -eu

# python3-mypy: the strict type check of clients/python (tests/e2e/python-client.t)
pkgs="gcc make pkg-config libc6-dev libseccomp-dev libjansson-dev perl
libsqlite3-dev libsodium-dev libcurl4-openssl-dev libcurl4 sqlite3
libtree-sitter-dev libcmark-dev libidn2-dev libunistring-dev libmicrohttpd-dev libmicrohttpd12 curl ca-certificates
python3 python3-numpy python3-pandas python3-matplotlib python3-mypy python3-venv nodejs bash
python3-jsonschema python3-prometheus-client openssl
iproute2 procps file"
if [ "${1:-}" = "--bench" ]; then
        pkgs="$pkgs bubblewrap firejail"
fi

missing=""
for p in $pkgs; do
        # dpkg-query prints "install ok installed" for a present package
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$st" in
        *" installed") ;;
        *) missing="$missing $p" ;;
        esac
done
# npm: Debian's package, unless a node that brings its own is installed
# (NodeSource's nodejs has npm inside and conflicts with Debian's npm)
if ! command -v npm >/dev/null 2>&1; then
        missing="$missing npm"
fi
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
        echo "deps: not root; run as root: apt-get install -y$missing" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh once, then install.
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
