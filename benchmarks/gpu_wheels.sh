#!/usr/bin/env bash
# Fetch (here, where the package index is reachable) the wheels of fleetbench's
# dependencies that the device tool's GPU image lacks, for its Python 3.12 on x86_64,
# into .gpu-wheels/ (ignored by git; name it in the run's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
version=$("$PY" -c "import pydantic; print(pydantic.VERSION)")
rm -rf .gpu-wheels && mkdir .gpu-wheels
"$PY" -m pip download --quiet --dest .gpu-wheels --only-binary :all: \
  --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  "pydantic==$version"
ls .gpu-wheels
