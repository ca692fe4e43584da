#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: ruff, then pytest (unit + real-model integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests start real llama.cpp servers: build llama-cpp-python[server] too (~5 min once; CULTUREALIGN_WITH_LLAMACPP=0
# skips it and those tests).
CULTUREALIGN_WITH_LLAMACPP=${CULTUREALIGN_WITH_LLAMACPP:-1} bash scripts/setup.sh
. .venv/bin/activate
ruff check src tests bench
pytest -q "$@"
