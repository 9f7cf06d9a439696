#!/usr/bin/env bash
# Every benchmark in one short run and one summary table (scripts/benchmark_all.py; extra arguments go to it).
# On a GPU machine: bash scripts/benchmark_all.sh   (device cuda when available; under ~5 minutes is the target)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python
exec "$PY" scripts/benchmark_all.py "$@"
