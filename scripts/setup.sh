#!/usr/bin/env bash
# Set up bd on Debian 12 (as root or with sudo) and build it.
#   scripts/setup.sh            install missing packages, build (Release)
#   scripts/setup.sh test       ... then run the whole suite: plain, then
#                               under ASan + UBSan (warnings are errors)
set -euo pipefail
cd "$(dirname "$0")/.."

# build: compilers, CMake; core: Lua 5.4, OpenBLAS, LAPACKE (PCA), zstd;
# tests: Open MPI (the data-parallel test), clang + its runtime (libFuzzer)
PACKAGES="build-essential cmake pkg-config liblua5.4-dev lua5.4 libopenblas-dev
liblapacke-dev libzstd-dev zstd libopenmpi-dev openmpi-bin clang
libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

jobs=$(nproc)
build() { # build DIR [cmake args...]
    local dir=$1; shift
    cmake -S . -B "$dir" -DBD_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

build build
if [ "${1:-}" = test ]; then
    # ctest runs tests side by side: OpenMP threads that spin while idle
    # would take the cores from each other (3x slower steps when busy).
    export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
    echo "== tests (Release)"
    ctest --test-dir build --output-on-failure -j "$jobs"
    echo "== tests (ASan + UBSan)"
    build build-sanitize -DCMAKE_BUILD_TYPE=Debug -DBD_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-sanitize --output-on-failure -j "$jobs" -LE slow
fi
