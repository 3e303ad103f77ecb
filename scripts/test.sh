#!/usr/bin/env bash
# The test command: installs everything, brings the real stack up, runs the tests, and brings
# down what it started. Extra arguments go to pytest (e.g. -m "not chaos", -k simulator).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
dp=.venv/bin/deskpulse

started=0
if ! $dp stack status >/dev/null 2>&1; then
  started=1
fi
cleanup() {
  if [ "$started" = 1 ] && [ -z "${DESKPULSE_KEEP_STACK:-}" ]; then
    $dp stack down || true
  fi
}
trap cleanup EXIT
$dp stack up
$dp stack status
# the wallboard's browser test drives a real headless Chromium (Debian package chromium)
.venv/bin/python -c 'from deskpulse.stack.install import ensure_debian; ensure_debian(["chromium"], print)'
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
