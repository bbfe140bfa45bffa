#!/usr/bin/env bash
# Creates tests/mcp-servers/py/.venv with the pinned requirements, once.
# Idempotent and quiet: does nothing when the venv matches requirements.txt.
# Usage: bash tests/mcp-servers/py/setup.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "mcp-servers/py/setup.sh: needs Python >= 3.10 (set PYTHON=...)" >&2
    exit 1
fi

stamp=.venv/.requirements.installed
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && cmp -s requirements.txt "$stamp"; then
    exit 0
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
cp requirements.txt "$stamp"
