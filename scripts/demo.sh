#!/usr/bin/env bash
# Set up .venv and run the visual demo; extra arguments go to the demo (e.g. --output PATH).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
.venv/bin/python -m geowarp.demo "$@"
