#!/usr/bin/env bash
# Installs tests/mcp-servers/ts/node_modules from package-lock.json (npm ci), once.
# Idempotent and quiet: does nothing when node_modules matches the lock file.
# Usage: bash tests/mcp-servers/ts/setup.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.package-lock.installed
if [ -d node_modules/@modelcontextprotocol/sdk ] && [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >&2
cp package-lock.json "$stamp"
