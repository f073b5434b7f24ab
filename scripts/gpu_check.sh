#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run of a few minutes, on a machine whose
# python3 has PyTorch with CUDA, numpy, scikit-image and Pillow (no network needed):
#
#   1. CUDA agrees with the CPU: warps of every family, forward and gradients, and a
#      registration, on the same inputs (benchmarks/gpu_parity.py);
#   2. 64 torch pairs registered in one call against one call per pair, on the GPU
#      (benchmarks/bench_registration.py --device cuda --batched-only).
#
# geowarp's own pure-Python dependencies (array-api-compat, array-api-extra, tqdm)
# are taken from wheels in .whl/ where that folder exists; fetch them beforehand on a
# machine with the package registry, e.g.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       -d .whl array-api-compat==1.16.0 array-api-extra==0.11.5 tqdm==4.70.1
# Results go to $OUT when it is set (else benchmarks/results/).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/geowarp-site .whl/*.whl
    export PYTHONPATH="/tmp/geowarp-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
results="${OUT:-benchmarks/results}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_parity.py
python3 benchmarks/bench_registration.py --device cuda --batched-only --results-dir "$results"
