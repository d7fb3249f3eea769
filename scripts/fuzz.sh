#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for
# FUZZ_SECONDS (default 60), starting from the checked-in seed corpus.
# A crash leaves its input in build-fuzz/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B build-fuzz -DTL_FUZZ=ON -DTL_BENCH=OFF \
  -DTL_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_decode
work=build-fuzz/corpus-decode
mkdir -p "$work"
cp -n fuzz/corpus/* "$work"/ 2>/dev/null || true
echo "fuzz: fuzz_decode for ${seconds}s"
(cd build-fuzz && ./fuzz/fuzz_decode -max_total_time="$seconds" \
  -max_len=65536 -print_final_stats=1 corpus-decode 2>&1 | tail -n 12)
