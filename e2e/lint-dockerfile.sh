#!/usr/bin/env bash
# lint-dockerfile.sh — dockerfilelint (npm) over the repository's
# Dockerfile; exits non-zero on any issue. Installs the pinned version
# globally with npm when it is missing (CI: called from .ci/run).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=1.8.0
if ! command -v dockerfilelint >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { echo "lint-dockerfile.sh: npm not found (apt-get install -y npm)" >&2; exit 1; }
  npm install -g --no-audit --no-fund "dockerfilelint@$VERSION" >/dev/null
fi
dockerfilelint "$ROOT/Dockerfile"
