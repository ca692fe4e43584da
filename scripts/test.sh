#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: ruff, then pytest (unit + real-model integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check src tests bench
pytest -q "$@"
