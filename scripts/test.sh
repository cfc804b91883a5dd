#!/usr/bin/env bash
# Builds qstudy (Release, with tests) and runs the whole test suite, fuzz smoke runs included.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQSTUDY_BUILD_TESTS=ON
cmake --build "$BUILD" -j "$JOBS"
ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 900

# libFuzzer smoke runs: parsers of outside files are fuzzed briefly from their seed corpora.
if command -v clang++ >/dev/null 2>&1 && [ "${QSTUDY_SKIP_FUZZ:-0}" != "1" ]; then
  FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
  # -O1 with line tables only: the usual libFuzzer build, quicker to compile than -O2 -g (build and
  # fuzz runs take 11 min on 2 cores).
  CC=clang CXX=clang++ cmake -S . -B "$FUZZ_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DQSTUDY_FUZZ=ON -DQSTUDY_BUILD_TESTS=OFF -DQSTUDY_BUILD_BENCH=OFF
  cmake --build "$FUZZ_BUILD" -j "$JOBS" --target fuzzers
  ctest --test-dir "$FUZZ_BUILD" -L fuzz -j "$JOBS" --output-on-failure
fi
