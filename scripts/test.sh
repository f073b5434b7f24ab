#!/usr/bin/env bash
# Set up .venv, then lint, type-check and run the doctests and tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -k affine`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

if [[ "${CI:-}" == "true" ]]; then
    # In CI a backend that cannot be imported is an error, not a skip.
    export GEOWARP_REQUIRE_BACKENDS=1
fi

status=0
run() {
    echo "+ $*" >&2
    "$@" || status=1
}

run .venv/bin/ruff check .
run .venv/bin/ruff format --check .
run .venv/bin/mypy
run .venv/bin/python -m pytest geowarp tests "$@"

exit "$status"
