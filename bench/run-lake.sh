#!/usr/bin/env bash
# run-lake.sh - builds bench_lake if needed and runs it: a lake of 10 M log
# entries (+ metrics) ingested through libtracelake's in-process sink, then
# materialization, queries through the SQL views and freshness, each beside
# plain DuckDB in the same run (docs/performance.md, "Lakehouse"); then
# bench_pending, the catalog's listing of blocks to materialize when there
# are none, from the first block and from a recent insert time. Timing
# never makes it fail; wrong row counts, a crash or a build error do.
#
#   bench/run-lake.sh            (from anywhere; BUILD=dir to change build/)
# Environment: BUILD (build), BENCH_DIR (parent of the lake's temporary
# directory; default $TMPDIR or /tmp, i.e. on disk), BENCH_LAKE_EVENTS
# (log entries, 10000000), BENCH_LAKE_REPS (timed runs per query, 7),
# BENCH_LAKE_ROUNDS (freshness rounds, 100), BENCH_PERF=1 (perf record of
# each phase, top symbols printed), BENCH_PERF_CALLGRAPH (perf's
# --call-graph mode, fp; dwarf,32768 attributes DuckDB's frames too, at a
# cost: use it with fewer events).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B "$build" >/dev/null || exit 1
cmake --build "$build" -j "$jobs" --target bench_lake bench_pending \
  >/dev/null || {
  echo "bench: build failed" >&2
  cmake --build "$build" -j 1 --target bench_lake bench_pending 2>&1 |
    tail -30 >&2
  exit 1
}

args=(--events "${BENCH_LAKE_EVENTS:-10000000}"
  --reps "${BENCH_LAKE_REPS:-7}" --rounds "${BENCH_LAKE_ROUNDS:-100}")
[ -n "${BENCH_DIR:-}" ] && args+=(--dir "$BENCH_DIR")
perfdir=""
if [ "${BENCH_PERF:-0}" = 1 ]; then
  if command -v perf >/dev/null; then
    perfdir=$(mktemp -d "${TMPDIR:-/tmp}/tlbench-lake-perf-XXXXXX") || exit 1
    trap 'rm -rf "$perfdir"' EXIT
    args+=(--perf "$perfdir" --callgraph "${BENCH_PERF_CALLGRAPH:-fp}")
  else
    echo "bench: perf not found, BENCH_PERF ignored" >&2
  fi
fi

echo "#### lakehouse (bench_lake ${args[*]})"
"$build/bench/bench_lake" "${args[@]}"
status=$?
echo
pargs=()
[ -n "${BENCH_DIR:-}" ] && pargs+=(--dir "$BENCH_DIR")
"$build/bench/bench_pending" "${pargs[@]}" || status=1

if [ -n "$perfdir" ]; then
  for f in "$perfdir"/*.data; do
    [ -e "$f" ] || continue
    echo
    echo "#### perf: $(basename "$f" .data) (self time, symbols above 2%)"
    perf report -i "$f" --stdio --no-children --sort dso,sym -g none \
      --percent-limit 2 2>/dev/null | grep '%' | head -15
  done
fi
exit $status
