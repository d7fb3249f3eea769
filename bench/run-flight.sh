#!/usr/bin/env bash
# run-flight.sh - runs bench_flight, the Flight SQL service's benchmark: a
# SELECT 1 round trip through the C client, DoGet of 10 M-row results beside
# raw loopback TCP and the same results fetched in-process from DuckDB, 32
# concurrent clients for 60 s with the server's RSS watched, and the cost of
# the server's self-telemetry (docs/performance.md, "Flight SQL"). It builds
# nothing: `make bench` (or `cmake --build BUILD --target bench_flight
# tracelake`) does. bench_flight starts and stops its own `tracelake serve`
# processes on 127.0.0.1 port 0. Timing never makes it fail; a query error,
# a wrong row count or a crash does.
#
#   bench/run-flight.sh [BUILD_DIR]      (default: $BUILD, else build)
# Environment: BENCH_DIR (parent of the work directory: the servers' lakes;
# default $TMPDIR or /tmp), BENCH_FLIGHT_SECONDS (concurrent phase, 60),
# BENCH_FLIGHT_CLIENTS (32), BENCH_FLIGHT_QUERIES (timed SELECT 1, 2000),
# BENCH_FLIGHT_ROWS (rows of the large results, 10000000),
# BENCH_FLIGHT_REPS (runs of each large result, 3), BENCH_FLIGHT_PHASES
# (latency,throughput,concurrent,overhead,pairs,qrec; default all),
# BENCH_FLIGHT_PAIRS (fresh server pairs of phase 5c, 24) and
# BENCH_FLIGHT_PAIR_ROUNDS (its rounds per pair, 50), BENCH_PERF=1
# (perf record of the server and the client per phase, top symbols
# printed), BENCH_PERF_CALLGRAPH (perf's --call-graph mode, fp; dwarf,16384
# attributes DuckDB's and gRPC's frames too, at a cost),
# BENCH_FLIGHT_SERVE_ARGS (more `tracelake serve` options for both servers,
# e.g. "--maintain-interval-ms 0", for experiments), BENCH_FLIGHT_ROUNDS_CSV
# (a file: phase 5's rounds appended as `phase,round,p50 on,p50 off` in us).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
build=${1:-${BUILD:-build}}
bin=$build/bench/bench_flight
for f in "$bin" "$build/tracelake"; do
  if [ ! -x "$f" ]; then
    echo "bench: $f is not built (cmake --build $build --target" \
         "bench_flight tracelake)" >&2
    exit 1
  fi
done

args=(--tracelake "$build/tracelake"
  --seconds "${BENCH_FLIGHT_SECONDS:-60}"
  --clients "${BENCH_FLIGHT_CLIENTS:-32}"
  --queries "${BENCH_FLIGHT_QUERIES:-2000}"
  --rows "${BENCH_FLIGHT_ROWS:-10000000}"
  --reps "${BENCH_FLIGHT_REPS:-3}"
  --pairs "${BENCH_FLIGHT_PAIRS:-24}"
  --pair-rounds "${BENCH_FLIGHT_PAIR_ROUNDS:-50}"
  --phases "${BENCH_FLIGHT_PHASES:-all}")
[ -n "${BENCH_DIR:-}" ] && args+=(--dir "$BENCH_DIR")
perfdir=""
if [ "${BENCH_PERF:-0}" = 1 ]; then
  if command -v perf >/dev/null; then
    perfdir=$(mktemp -d "${TMPDIR:-/tmp}/tlbench-flight-perf-XXXXXX") ||
      exit 1
    trap 'rm -rf "$perfdir"' EXIT
    args+=(--perf "$perfdir" --callgraph "${BENCH_PERF_CALLGRAPH:-fp}")
  else
    echo "bench: perf not found, BENCH_PERF ignored" >&2
  fi
fi

echo "#### Flight SQL (bench_flight ${args[*]})"
echo "machine load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "${args[@]}"
status=$?

if [ -n "$perfdir" ]; then
  for f in "$perfdir"/*.data; do
    [ -e "$f" ] || continue
    echo
    echo "#### perf: $(basename "$f" .data) (self time by thread name and" \
         "symbol, above 1.5%; tracelake = the server, bench_flight = clients)"
    perf report -i "$f" --stdio --no-children --sort comm,dso,sym -g none \
      --percent-limit 1.5 2>/dev/null | grep '%' | head -25
  done
fi
exit $status
