#!/usr/bin/env bash
# run.sh - builds the benchmarks if needed and runs them all in one go:
# bench_record (libtracelake: latency, sustained with 1 and 2 producers,
# overload), two supplementary sustained runs (disk spool with 1 MiB buffers,
# spool on tmpfs) that separate the runtime's cost from the file system's, and
# the LTTng-UST peer (bench/run-lttng.sh); then prints one comparison table
# built from the RESULT lines. Timing never makes it fail; a crash or a build
# error does.
#
#   bench/run.sh                 (from anywhere; BUILD=dir to change build/)
# Environment: BUILD (build), BENCH_EVENTS (20000000), BENCH_BATCHES (2000),
# BENCH_DIR (parent of the temporary spool/trace directories; default $TMPDIR
# or /tmp, i.e. on disk), BENCH_NO_LTTNG=1 to skip the peer.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
events=${BENCH_EVENTS:-20000000}
batches=${BENCH_BATCHES:-2000}
jobs=$(nproc 2>/dev/null || echo 2)

# Configure every time: cheap, and it picks up LTTng-UST when
# scripts/bench-deps.sh installed it after the first configure.
cmake -S . -B "$build" >/dev/null || exit 1
targets=(--target bench_record)
grep -q '^LTTNG_UST_FOUND:INTERNAL=1' "$build/CMakeCache.txt" &&
  targets+=(--target bench_lttng)
cmake --build "$build" -j "$jobs" "${targets[@]}" >/dev/null || {
  echo "bench: build failed" >&2
  cmake --build "$build" -j 1 "${targets[@]}" 2>&1 | tail -30 >&2
  exit 1
}

logdir=$(mktemp -d "${TMPDIR:-/tmp}/tlbench-logs-XXXXXX") || exit 1
# Every disk spool of this run lives under one directory removed at the very
# end: deleting thousands of spool files between phases would slow the next
# phase's file creations down on some file systems (see docs/performance.md).
spools=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/tlbench-run-XXXXXX") || exit 1
trap 'rm -rf "$logdir" "$spools"' EXIT
status=0

echo "#### tracelake (bench_record); spools under $spools (removed at the end)"
"$build/bench/bench_record" --events "$events" --batches "$batches" \
  --dir "$spools" --keep | tee "$logdir/record.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The spool sink writes one file per block: the same run with 1 MiB buffers
# (8x fewer, larger blocks) shows how much of the disk figure is per-file cost.
echo
echo "#### tracelake, supplementary: disk spool, 1 MiB buffers"
"$build/bench/bench_record" --phase throughput --threads 2 \
  --events "$events" --buffer-size 1m --dir "$spools" --keep --tag buf1m |
  tee -a "$logdir/record.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The same sustained run with the spool on tmpfs: separates the cost of the
# runtime from the cost of the file system under the spool sink.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  echo
  echo "#### tracelake, supplementary: spool on tmpfs (/dev/shm)"
  "$build/bench/bench_record" --phase throughput --threads 2 \
    --events "$events" --dir /dev/shm --tag tmpfs | tee -a "$logdir/record.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

if [ "${BENCH_NO_LTTNG:-0}" != 1 ]; then
  echo
  echo "#### LTTng-UST peer (bench/run-lttng.sh)"
  BENCH_EVENTS=$events BENCH_BATCHES=$batches bench/run-lttng.sh "$build" |
    tee "$logdir/lttng.log"
else
  : >"$logdir/lttng.log"
fi

# ---- Combined table, from the RESULT lines ---------------------------------
declare -A R
while read -r line; do
  bench="" name=""
  for kv in $line; do
    case $kv in
    bench=*) bench=${kv#bench=} ;;
    name=*) name=${kv#name=} ;;
    esac
  done
  for kv in $line; do
    case $kv in *=*) R["$bench.$name.${kv%%=*}"]=${kv#*=} ;; esac
  done
done < <(grep -h '^RESULT ' "$logdir/record.log" "$logdir/lttng.log")

get() { echo "${R[$1]:-}"; }
# cell BENCH NAME: "p50 (p99)" or "-"
cell() {
  local p50 p99
  p50=$(get "$1.$2.p50_ns") p99=$(get "$1.$2.p99_ns")
  [ -n "$p50" ] && printf '%.2f (%.2f)' "$p50" "$p99" || printf -- '-'
}
ratio() {
  local r
  r=$(get "$1.$2.ratio_rdtsc")
  [ -n "$r" ] && printf '%.2fx' "$r" || printf -- '-'
}
verdict() {
  local t m
  t=$(get "tracelake.$1.target") m=$(get "tracelake.$1.met")
  case $t in
  ratio\<=*) t="<= ${t#ratio<=}x" ;;
  ns\<=*) t="<= ${t#ns<=} ns" ;;
  *) echo "-"; return ;;
  esac
  [ "$m" = yes ] && echo "$t met" || echo "$t MISSED"
}
row() { # label tl_name lttng_name
  printf '%-28s %-18s %-7s %-16s %-18s %-7s\n' "$1" "$(cell tracelake "$2")" \
    "$(ratio tracelake "$2")" "$(verdict "$2")" "$(cell lttng "$3")" \
    "$(ratio lttng "$3")"
}

echo
echo "#### Comparison (one run; ns/event p50 (p99); ratio = p50 / bare-rdtsc p50)"
printf '%-28s %-18s %-7s %-16s %-18s %-7s\n' case "tracelake" "x rdtsc" \
  "target" "LTTng-UST" "x rdtsc"
row "bare rdtsc (baseline)" rdtsc rdtsc
row "empty loop" empty_loop empty_loop
row "static log" static_log static_log
row "static log, cold buffers" static_log_cold none
row "formatted log (\"%d\")" formatted_log formatted_log
row "integer metric" int_metric int_metric
row "float metric" float_metric float_metric
row "span begin+end" span span
row "async span begin+end" async_span none
row "filtered (TL_DEBUG @INFO)" filtered_debug not_enabled
row "TL_DISABLE'd TL_INFO" disabled_info none
echo "(LTTng's filtered row is a tracepoint not enabled in the session. The cold"
echo " row is timed before any warm-up: it pays the first touch of buffer pages.)"
[ "$(get tracelake.latency_drops.dropped)" = 0 ] ||
  echo "WARNING: tracelake dropped events during the latency cases: figures invalid"
[ -z "$(get lttng.latency_session.active)" ] ||
  [ "$(get lttng.latency_session.active)" = yes ] ||
  echo "WARNING: the LTTng session was not active: LTTng figures invalid"
[ -z "$(get lttng.session_latency.discarded)" ] ||
  [ "$(get lttng.session_latency.discarded)" = 0 ] ||
  echo "NOTE: LTTng discarded $(get lttng.session_latency.discarded) events during its latency cases"

mev() { [ -n "$1" ] && awk -v x="$1" 'BEGIN {printf "%.2f", x / 1e6}' || printf -- '-'; }
echo
echo "#### Sustained (events/s until every block is written / LTTng: until \`lttng stop\` returned)"
fmt='%-30s %-10s %-8s %-8s %-7s %-6s | %-10s %-8s %-10s %-6s\n'
printf "$fmt" run "tracelake" "MB/s" "dropped" "target" "other" \
  "LTTng-UST" "MB/s" "discarded" "other"
srow() { # label tracelake-key [lttng-key]
  local k=tracelake.$2 l=${3:+lttng.$3} m
  [ -n "$(get "$k.events_per_s")" ] || return 0
  m=$(get "$k.met")
  printf "$fmt" "$1" "$(mev "$(get "$k.events_per_s")")M" \
    "$(get "$k.mb_per_s")" "$(get "$k.dropped")" \
    "$([ "$m" = yes ] && echo met || echo MISSED)" "$(get "$k.other_cores")" \
    "${l:+$(mev "$(get "$l.events_per_s")")M}" "${l:+$(get "$l.mb_per_s")}" \
    "${l:+$(get "$l.discarded")}" \
    "${l:+$(get "lttng.sustained_${4:-x}.other_cores")}"
}
srow "1 producer, disk spool" sustained_1p session_sustained_1p 1p
srow "2 producers, disk spool" sustained_2p session_sustained_2p 2p
srow "2 producers, disk, 1 MiB bufs" sustained_2p_buf1m
srow "2 producers, tmpfs spool" sustained_2p_tmpfs
echo "(other = cores used by other processes during the run, LTTng's consumer"
echo " daemon included; above ~0.1 the machine was not quiet)"
k=tracelake.overload_2p l=lttng.session_overload_2p
echo "(target: >= 20 M events/s with 0 dropped; MB/s = encoded blocks / LTTng trace files)"
echo
echo "#### Overload (2 producers, ${events} events)"
echo "tracelake, memory limit $(get "$k.memory_mib") MiB: recorded $(get "$k.recorded"), dropped $(get "$k.dropped") (no_memory $(get "$k.dropped_no_memory")), $(mev "$(get "$k.events_per_s")") M events/s recorded, $(mev "$(get "$k.attempted_per_s")") M events/s attempted"
[ -n "$(get "$l.discarded")" ] &&
  echo "LTTng-UST, default channel ($(get "$l.subbufs") x $(get "$l.subbuf_bytes") bytes per CPU): recorded $(get "$l.recorded"), discarded $(get "$l.discarded"), $(mev "$(get "$l.events_per_s")") M events/s recorded"
exit $status
