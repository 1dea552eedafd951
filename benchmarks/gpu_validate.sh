#!/usr/bin/env bash
# The GPU check as one command for the device tool (run from the repository root):
#   bash benchmarks/gpu_validate.sh            (carry: [".gpu-wheels"], timeout_s <= 540)
# The GPU image has torch, transformers, accelerate and nvidia-ml-py but not every
# pure-Python package fleetbench needs; `bash benchmarks/gpu_wheels.sh` (here, with the
# package index) puts those wheels in .gpu-wheels/, which this installs offline first.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d .gpu-wheels ]; then
  "$PY" -m pip install --quiet --no-index --find-links .gpu-wheels .gpu-wheels/*.whl 2>&1 | tail -3
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi -L 2>/dev/null || true
timeout 480 "$PY" benchmarks/gpu_validate.py "$@"
