#!/usr/bin/env bash
# Build the real llama.cpp for Causette's compatibility tests, and install its Python binding.
#
#   bash tools/llamacpp/build.sh [PYTHON]        (PYTHON: default .venv/bin/python)
#
# Source: PyPI's llama-cpp-python sdist (the only registry this project may reach), which vendors
# a pinned llama.cpp. We build llama.cpp's shared libraries and causette-chat-render with our
# CMakeLists.txt (CPU only, ~3 min on 2 cores), build the binding without its own copy of the
# libraries (LLAMA_BUILD=OFF, seconds), install it into PYTHON's environment and put our
# libraries where the binding loads them (llama_cpp/lib). The build is cached, keyed by the
# version and by this folder's files, so the next run only reinstalls (seconds).
set -euo pipefail

VERSION=0.3.36  # llama-cpp-python; vendors llama.cpp 0c1e57098 (libllama 0.5.0-dev)
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${1:-.venv/bin/python}
KEY=$(cat "$HERE/CMakeLists.txt" "$HERE/chat_render.cpp" "$HERE/build.sh" | sha256sum | cut -c1-12)
CACHE=${CAUSETTE_LLAMACPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/causette/llamacpp}/$VERSION-$KEY
JOBS=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
start=$SECONDS

if [ ! -f "$CACHE/done" ]; then
    echo "llama.cpp: building llama-cpp-python $VERSION into $CACHE (a few minutes, once)"
    rm -rf "$CACHE" && mkdir -p "$CACHE/dl"
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: -d "$CACHE/dl" "llama-cpp-python==$VERSION"
    tar -xzf "$CACHE/dl/llama_cpp_python-$VERSION.tar.gz" -C "$CACHE"
    SRC=$CACHE/llama_cpp_python-$VERSION
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S "$HERE" -B "$CACHE/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CPP_SOURCE="$SRC/vendor/llama.cpp" >"$CACHE/configure.log" 2>&1 \
        || { tail -20 "$CACHE/configure.log"; exit 1; }
    cmake --build "$CACHE/build" -j "$JOBS" --target llama causette-chat-render >"$CACHE/build.log" 2>&1 \
        || { tail -40 "$CACHE/build.log"; exit 1; }
    CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" \
        "$PYTHON" -m pip wheel -q --no-deps -w "$CACHE/wheel" "$SRC"
    rm -rf "$SRC" "$CACHE/dl"  # keep the build and the wheel only
    touch "$CACHE/done"
fi

"$PYTHON" -m pip install -q numpy typing-extensions diskcache jinja2
"$PYTHON" -m pip install -q --no-deps --force-reinstall "$CACHE"/wheel/llama_cpp_python-*.whl
LIB=$("$PYTHON" -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llama_cpp').origin).parent / 'lib')")
mkdir -p "$LIB"
cp -P "$CACHE"/build/bin/lib*.so* "$CACHE/build/bin/causette-chat-render" "$LIB/"
"$PYTHON" -c "import llama_cpp; print('llama.cpp: ready,', llama_cpp.llama_print_system_info().decode().split('|')[0].strip())"
echo "llama.cpp: installed in $LIB ($((SECONDS - start)) s)"
