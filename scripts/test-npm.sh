#!/bin/sh
# Install the npm packages the tests use (tests/mcp: the official MCP
# TypeScript SDK client), pinned by tests/mcp/package-lock.json, from the
# npm registry. Idempotent: nothing to do when the lockfile has not changed.
set -eu
dir="$(dirname "$0")/../tests/mcp"
stamp="$dir/node_modules/.airlock-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
        echo "test-npm: npm is missing (scripts/deps.sh installs it)" >&2
        exit 1
fi
echo "test-npm: npm ci in tests/mcp" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "$want" > "$stamp"
