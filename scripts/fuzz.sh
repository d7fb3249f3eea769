#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for
# FUZZ_SECONDS (default 60), starting from the checked-in seed corpus.
# A crash leaves its input in build-fuzz/ and fails the script.
#   fuzz_decode  every wire decoder
#   fuzz_ingest  the ingestion handler on a temp lake; its inputs are the
#                seeds prefixed with the endpoint byte (0 process, 1 stream,
#                2 block, 3 block after its process and stream)
#   fuzz_flight  FlightData, Any-packed Flight SQL commands, and protobuf-c
#                unpack of every Flight message (30 s, generated seeds)
#   fuzz_ipc     the Arrow IPC decoder, re-encoding what it accepts (30 s,
#                FUZZ_IPC_SECONDS; seeds in fuzz/corpus-ipc)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B build-fuzz -DTL_FUZZ=ON -DTL_BENCH=OFF \
  -DTL_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_decode fuzz_ingest
work=build-fuzz/corpus-decode
mkdir -p "$work"
cp -n fuzz/corpus/* "$work"/ 2>/dev/null || true
echo "fuzz: fuzz_decode for ${seconds}s"
(cd build-fuzz && ./fuzz/fuzz_decode -max_total_time="$seconds" \
  -max_len=65536 -print_final_stats=1 corpus-decode 2>&1 | tail -n 12)

work=build-fuzz/corpus-ingest
mkdir -p "$work"
for f in fuzz/corpus/*; do
  name=$(basename "$f")
  case $name in
  process*) prefix='\000' ;;
  stream*) prefix='\001' ;;
  *) prefix='\003' ;;
  esac
  [ -e "$work/seed-$name" ] || { printf "$prefix"; cat "$f"; } >"$work/seed-$name"
done
echo "fuzz: fuzz_ingest for ${seconds}s"
(cd build-fuzz && ./fuzz/fuzz_ingest -max_total_time="$seconds" \
  -max_len=65536 -print_final_stats=1 corpus-ingest 2>&1 | tail -n 12)

# fuzz_flight: FlightData / Any / Flight SQL command decoding, 30 s.
cmake --build build-fuzz -j "$(nproc)" --target fuzz_flight
work=build-fuzz/corpus-flight
mkdir -p "$work"
printf '\022\004HEAD\302\076\004BODY' >"$work/seed-flightdata"
printf '\012Ctype.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery\022\012\012\010SELECT 1' \
  >"$work/seed-statement"
printf '\012>type.googleapis.com/arrow.flight.protocol.sql.CommandGetTables\022\004\012\000(\001' \
  >"$work/seed-tables"
echo "fuzz: fuzz_flight for 30s"
(cd build-fuzz && ./fuzz/fuzz_flight -max_total_time=30 \
  -max_len=65536 -print_final_stats=1 corpus-flight 2>&1 | tail -n 12)

# fuzz_ipc: the Arrow IPC decoder on encapsulated streams (seeds made by the
# encoder: tests/arrow/ipc_seeds.c), re-encoding what it accepts.
cmake --build build-fuzz -j "$(nproc)" --target fuzz_ipc
work=build-fuzz/corpus-ipc
mkdir -p "$work"
cp -n fuzz/corpus-ipc/* "$work"/ 2>/dev/null || true
ipc_seconds=${FUZZ_IPC_SECONDS:-30}
echo "fuzz: fuzz_ipc for ${ipc_seconds}s"
(cd build-fuzz && ./fuzz/fuzz_ipc -max_total_time="$ipc_seconds" \
  -max_len=65536 -print_final_stats=1 corpus-ipc 2>&1 | tail -n 12)
