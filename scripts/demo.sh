#!/usr/bin/env bash
# The demo: installs everything, brings the local stack up, runs a simulated desk into it and
# shows it live. Ctrl-C stops the simulator; `.venv/bin/deskpulse stack down` stops the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/deskpulse demo "$@"
