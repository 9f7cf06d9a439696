#!/usr/bin/env bash
# Run the whole test suite in ./.venv (created and installed on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -q -n 2 "$@"
