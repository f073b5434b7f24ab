#!/usr/bin/env bash
# Create .venv (if missing) and install geowarp with every extra the demo and tests use.
# Idempotent: re-running it only checks that everything is installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    if command -v python3.11 >/dev/null 2>&1; then
        python=python3.11
    else
        python=python3
    fi
    echo "setup: creating .venv with $("$python" --version 2>&1)" >&2
    "$python" -m venv .venv
fi

# torch is pinned on the same command line so pip resolves the CPU wheel together
# with everything else instead of pulling a CUDA build.
echo "setup: installing geowarp and its extras into .venv" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    torch==2.13.0 -e ".[jax,tensorflow,keras,dask,numba,test,demo,bench,lint,docs]"
