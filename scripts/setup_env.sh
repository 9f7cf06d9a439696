#!/usr/bin/env bash
# Create ./.venv (once) and install the pinned requirements and the package into it.
# Used by quickstart.sh, test.sh and .ci/run. Python 3.10-3.12: set PYTHON=python3.12 to choose one.
# PyPI's torch for Linux x86_64 is a CUDA build (~6 GiB installed). Where the project's disk has less
# than that free, the environment is made on the first of $PYMAF_VENV_DIR, $TMPDIR, /tmp, /dev/shm, $HOME
# with room, and ./.venv is a link to it (CI once ran out of disk with 3.9 GiB free in the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1; then PY="$c"; break; fi
  done
fi
need_kb=7000000
free_kb() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {print $4}'; }

if [ -L .venv ] && [ ! -e .venv ]; then
  rm .venv  # a link to an environment that is gone (a cleared /tmp): make it again
fi
if [ ! -x .venv/bin/python ]; then
  here=$(free_kb .)
  if [ ! -e .venv ] && [ -n "$here" ] && [ "$here" -lt "$need_kb" ]; then
    for dir in "${PYMAF_VENV_DIR:-}" "${TMPDIR:-}" /tmp /dev/shm "${HOME:-}"; do
      [ -n "$dir" ] && [ -d "$dir" ] && [ -w "$dir" ] || continue
      room=$(free_kb "$dir")
      if [ -n "$room" ] && [ "$room" -ge "$need_kb" ]; then
        target="$dir/pymaf-venv-$(pwd | cksum | cut -d' ' -f1)"
        echo "note: $((here / 1024)) MiB free here; making the environment in $target ($((room / 1024)) MiB free), linked as .venv" >&2
        "$PY" -m venv "$target"
        ln -s "$target" .venv
        break
      fi
    done
  fi
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
fi
stamp=.venv/.pymaf-installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  room=$(free_kb .venv/)
  if [ -n "$room" ] && [ "$room" -lt "$need_kb" ]; then
    echo "warning: $((room / 1024)) MiB free for .venv; installing the requirements needs about 7 GiB" \
         "(set PYMAF_VENV_DIR to a folder on a larger disk)" >&2
  fi
  # pip unpacks into TMPDIR: keep it beside the environment, where the room was found.
  export TMPDIR="$(cd .venv/ && pwd -P)"
  # --no-cache-dir: no second copy of the wheels in ~/.cache/pip.
  pip_install=(.venv/bin/python -m pip install -q --no-cache-dir)
  "${pip_install[@]}" --upgrade pip
  "${pip_install[@]}" -r requirements.txt
  "${pip_install[@]}" --no-deps -e .
  touch "$stamp"
fi
