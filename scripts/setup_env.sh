#!/usr/bin/env bash
# Create ./.venv (once) and install the pinned requirements and the package into it.
# Used by quickstart.sh, test.sh and .ci/run. Python 3.10-3.12: set PYTHON=python3.12 to choose one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1; then PY="$c"; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.pymaf-installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # PyPI's torch for Linux x86_64 is a CUDA build: ~6 GB in .venv. Say so before pip fails half-way.
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt 8000000 ]; then
    echo "warning: $((free_kb / 1024)) MiB free on $(pwd); installing the requirements needs about 7 GiB" >&2
  fi
  # --no-cache-dir: no second copy of the wheels in ~/.cache/pip (CI once ran out of disk).
  pip_install=(.venv/bin/python -m pip install -q --no-cache-dir)
  "${pip_install[@]}" --upgrade pip
  "${pip_install[@]}" -r requirements.txt
  "${pip_install[@]}" --no-deps -e .
  touch "$stamp"
fi
