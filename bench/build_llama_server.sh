#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` (continuous batching over --parallel N slots) from the llama.cpp
# source bundled in the llama-cpp-python source package, for bench_generation.py / bench_client.py.
#
# Usage: bench/build_llama_server.sh OUT_DIR [LLAMA_CPP_PYTHON_VERSION]
#   -> OUT_DIR/llama-server plus the shared libraries it loads (RPATH set to $ORIGIN).
# Env: SDIST_DIR (where to download/unpack the sdist; default OUT_DIR/src), JOBS (default: nproc),
#      NICE (default 19: build at lowest priority on a shared machine; NICE=0 to disable).
# Needs: pip, cmake >= 3.14, a C/C++ compiler. Takes ~5-10 min on 2 cores. No network beyond PyPI
# (the web UI download, OpenSSL and libcurl are switched off).
set -euo pipefail

OUT=${1:?usage: $0 OUT_DIR [llama-cpp-python version]}
VERSION=${2:-0.3.36}
SDIST_DIR=${SDIST_DIR:-$OUT/src}
JOBS=${JOBS:-$(nproc)}
NICE=${NICE:-19}
run() { if [ "$NICE" != 0 ]; then nice -n "$NICE" "$@"; else "$@"; fi; }

mkdir -p "$OUT" "$SDIST_DIR"
OUT=$(cd "$OUT" && pwd)
SDIST_DIR=$(cd "$SDIST_DIR" && pwd)
TARBALL="$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz"
if [ ! -f "$TARBALL" ]; then
    run python -m pip download --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$SDIST_DIR"
fi
SRC="$SDIST_DIR/llama_cpp_python-$VERSION"
[ -d "$SRC/vendor/llama.cpp" ] || tar -xzf "$TARBALL" -C "$SDIST_DIR"
cd "$SRC/vendor/llama.cpp"

run cmake -B build \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_BUILD_RPATH='$ORIGIN' -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON
run cmake --build build --target llama-server -j"$JOBS"

BIN=$(find build -type f -name llama-server -perm -u+x | head -n1)
[ -n "$BIN" ] || { echo "llama-server not found under build/" >&2; exit 1; }
cp -f "$BIN" "$OUT/llama-server"
# shared libraries built alongside (libllama, libggml*, libmtmd ...), if the build made any
find build -name '*.so*' \( -type f -o -type l \) -exec cp -Pf {} "$OUT/" \;
echo "built $OUT/llama-server"
if command -v ldd >/dev/null; then
    if LD_LIBRARY_PATH="$OUT${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$OUT/llama-server" | grep 'not found'; then
        echo "warning: unresolved libraries above; run with LD_LIBRARY_PATH=$OUT" >&2
    fi
fi
"$OUT/llama-server" --version 2>&1 | tail -n 2 || LD_LIBRARY_PATH="$OUT" "$OUT/llama-server" --version 2>&1 | tail -n 2
