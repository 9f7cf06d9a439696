#!/usr/bin/env bash
# The main job on a fresh machine: create ./.venv, install, then on the built-in body model and the
# built-in synthetic dataset (no licensed file needed): check the data root, pose the body model,
# train PyMAF on the CPU for a few minutes, evaluate it, report the gain over the mean pose, and draw
# logs/quickstart/result.png (GT and predicted meshes at the start and the end, the validation curve).
# Extra arguments go to train.py (e.g. --opts train.max_steps=50).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python
$PY scripts/check_data.py || true   # report only: missing licensed files are expected here
$PY scripts/pose_body.py
$PY train.py --cfg configs/quickstart.yaml --overwrite "$@"   # a rerun replaces the previous quickstart run
$PY eval.py --dataset synthetic-val --checkpoint logs/quickstart/checkpoints/best.pt --out-dir logs/quickstart/eval
$PY scripts/result_figure.py --log-dir logs/quickstart   # logs/quickstart/result.png: meshes at start/end, curve
