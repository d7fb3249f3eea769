#!/usr/bin/env bash
# run-lttng.sh - runs bench_lttng, the LTTng-UST peer of bench_record, under
# active LTTng sessions: one session per phase, so that each phase's discarded
# events and trace size are its own. Starts lttng-sessiond if none is running
# (and stops it afterwards); never fails on timing. Prints bench_lttng's
# figures plus `RESULT bench=lttng name=session_<phase> ...` lines.
#
#   bench/run-lttng.sh [BUILD_DIR]      (default: build)
# Environment: BENCH_EVENTS (20000000), BENCH_BATCHES (2000), BENCH_DIR
# (parent of the temporary trace directory, default $TMPDIR or /tmp).
set -uo pipefail

build=${1:-${BUILD:-build}}
bin=${BENCH_LTTNG:-$build/bench/bench_lttng}
events=${BENCH_EVENTS:-20000000}
batches=${BENCH_BATCHES:-2000}

skip() {
  echo "LTTng peer skipped: $*"
  echo "RESULT bench=lttng name=status ran=no reason=\"$*\""
  exit 0
}

[ -x "$bin" ] ||
  skip "$bin not built (liblttng-ust-dev missing at configure time?)"
command -v lttng >/dev/null && command -v lttng-sessiond >/dev/null ||
  skip "lttng-tools is not installed (scripts/bench-deps.sh installs it)"

tmp=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/tlbench-lttng-XXXXXX") ||
  skip "cannot create a temporary directory"
started_pid=""
session=""

cleanup() {
  [ -n "$session" ] && lttng destroy "$session" >/dev/null 2>&1
  if [ -n "$started_pid" ]; then
    kill "$started_pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$started_pid" 2>/dev/null || break
      sleep 0.2
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A session daemon: reuse a running one, or start ours (no kernel modules
# are needed for user-space tracing).
if ! lttng list >/dev/null 2>&1; then
  if ! err=$(lttng-sessiond --daemonize 2>&1); then
    skip "lttng-sessiond --daemonize failed: $err"
  fi
  for pidfile in /var/run/lttng/lttng-sessiond.pid \
                 "$HOME/.lttng/lttng-sessiond.pid"; do
    [ -r "$pidfile" ] && started_pid=$(cat "$pidfile") && break
  done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    lttng list >/dev/null 2>&1 && break
    sleep 0.3
  done
  lttng list >/dev/null 2>&1 ||
    skip "lttng-sessiond started but does not answer:" \
         "$(lttng list 2>&1 | tail -1)"
  echo "lttng-sessiond started (pid ${started_pid:-unknown})"
fi

# Events are listed by name rather than as 'tl_bench:*' --exclude
# 'tl_bench:not_enabled': lttng-sessiond 2.13.9 crashes (general protection
# fault in its client thread) on `lttng list SESSION` when an event rule has
# an exclusion, and `lttng list` is how we read the discarded-event count.
ev_list="tl_bench:static_msg,tl_bench:int_metric,tl_bench:float_metric"
ev_list="$ev_list,tl_bench:span_begin,tl_bench:span_end"

now_ns() { date +%s%N; }

# run_phase NAME CHANNEL_OPTS -- bench_lttng args...
# CHANNEL_OPTS "default" keeps LTTng's default channel (4 x 512 KiB per CPU).
run_phase() {
  local name=$1 chopts=$2
  shift 3
  session="tlbench-$name-$$"
  local out="$tmp/$name" log="$tmp/$name.log" chan="tlbench"
  lttng create "$session" --output="$out" >/dev/null || {
    echo "lttng create failed"; session=""; return 1; }
  if [ "$chopts" = default ]; then
    chan="channel0"
    lttng enable-channel -u "$chan" >/dev/null
  else
    # shellcheck disable=SC2086
    lttng enable-channel -u $chopts "$chan" >/dev/null
  fi
  lttng enable-event -u -c "$chan" "$ev_list" >/dev/null &&
    lttng enable-event -u -c "$chan" 'lttng_ust_tracef:*' >/dev/null &&
    lttng start "$session" >/dev/null || {
      echo "lttng: cannot set up session $session"; return 1; }
  "$bin" "$@" | tee "$log"
  local stop_out t_end listing discarded lost subbuf nsub bytes
  stop_out=$(lttng stop "$session" 2>&1)
  t_end=$(now_ns)
  listing=$(lttng list "$session" 2>&1)
  discarded=$(awk '/Discarded events:/ {s += $3} END {print s + 0}' \
                  <<<"$listing")
  lost=$(awk '/Lost packets:/ {s += $3} END {print s + 0}' <<<"$listing")
  subbuf=$(awk '/Sub-buffer size:/ {print $3; exit}' <<<"$listing")
  nsub=$(awk '/Sub-buffer count:/ {print $3; exit}' <<<"$listing")
  bytes=$(du -sb "$out" 2>/dev/null | awk '{print $1}')
  lttng destroy "$session" >/dev/null 2>&1
  session=""
  grep -i warning <<<"$stop_out"
  local start_ns ev
  start_ns=$(sed -n 's/.*start_realtime_ns=\([0-9]*\).*/\1/p' "$log" |
               tail -1)
  ev=$(sed -n 's/^RESULT .*name=sustained.* events=\([0-9]*\).*/\1/p' \
           "$log" | tail -1)
  echo "  session $name: channel ${nsub:-?} x ${subbuf:-?} bytes per CPU" \
       "(per-user buffers), discarded events ${discarded}, lost packets" \
       "${lost}, trace ${bytes:-0} bytes"
  local extra=""
  if [ -n "$start_ns" ] && [ -n "$ev" ]; then
    # End to end: from the producers' start barrier until `lttng stop`
    # (which waits for the consumer to write the data) returned.
    extra=$(awk -v s="$start_ns" -v e="$t_end" -v n="$ev" -v d="$discarded" \
                -v b="${bytes:-0}" 'BEGIN {
      t = (e - s) / 1e9; r = n - d;
      printf "seconds=%.4f recorded=%d events_per_s=%.0f mb_per_s=%.2f",
             t, r, r / t, b / 1e6 / t }')
    awk -v s="$start_ns" -v e="$t_end" -v n="$ev" -v d="$discarded" 'BEGIN {
      t = (e - s) / 1e9;
      printf "  until `lttng stop` returned (data flushed): %.3f s, " \
             "%.2f M events/s recorded\n", t, (n - d) / t / 1e6 }'
  fi
  echo "RESULT bench=lttng name=session_$name discarded=$discarded" \
       "lost_packets=$lost subbuf_bytes=${subbuf:-0} subbufs=${nsub:-0}" \
       "trace_bytes=${bytes:-0} $extra"
}

big="--subbuf-size=4M --num-subbuf=16"
echo "LTTng-UST peer: $(lttng --version | head -1); sessions write to $tmp"
echo "latency and sustained sessions use a channel of 16 x 4 MiB sub-buffers"
echo "per CPU; the overload session keeps LTTng's default channel."
run_phase latency "$big" -- --phase latency --batches "$batches"
run_phase sustained_1p "$big" -- --phase throughput --threads 1 \
  --events "$events"
run_phase sustained_2p "$big" -- --phase throughput --threads 2 \
  --events "$events"
run_phase overload_2p default -- --phase throughput --threads 2 \
  --events "$events" --tag default_channel
exit 0
