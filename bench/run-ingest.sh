#!/usr/bin/env bash
# run-ingest.sh - the ingestion service under load, in one go: libtracelake
# sender processes (bench_ingest load) and a direct HTTP client timing every
# acknowledgement (bench_ingest post) against `tracelake serve` on the SQLite
# catalog and on PostgreSQL (a throwaway server from scripts/pg-test.sh, set
# to durable commits), each run on a fresh lake checked afterwards (the
# catalog must hold exactly what was acknowledged); then the baselines that
# explain where the time goes, in the same run on the same disk: a server
# that stores nothing (HTTP only, then HTTP + validation), the store's
# durable-write sequence, and SQLite commits. Prints a table built from the
# `RESULT bench=ingest ...` lines. Timing never makes it fail; lost data, a
# crash or a build error does. Everything listens on 127.0.0.1 only; every
# process it starts is stopped by pid on exit.
#
#   bench/run-ingest.sh          (from anywhere; BUILD=dir to change build/)
# Environment: BUILD (build), BENCH_DIR (parent of the work directory;
# default $TMPDIR or /tmp, i.e. on disk), BENCH_INGEST_EVENTS (events per
# library run, 20000000, at most 5000000 per process), BENCH_INGEST_SECONDS
# (per direct-client run, 3), BENCH_INGEST_RATE (the paced run's total
# events/s, 2400000: 20% over the target) and BENCH_INGEST_PACED_SECONDS
# (8), BENCH_NO_PG=1 to
# skip PostgreSQL, PG_BIN (PostgreSQL binaries, for scripts/pg-test.sh),
# BENCH_PERF=1 to profile the server (perf) during one SQLite run.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
total=${BENCH_INGEST_EVENTS:-20000000}
post_s=${BENCH_INGEST_SECONDS:-3}
rate=${BENCH_INGEST_RATE:-2400000}
paced_s=${BENCH_INGEST_PACED_SECONDS:-8}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PG_BIN
jobs=$(nproc 2>/dev/null || echo 2)
target=2000000

cmake -S . -B "$build" -DTL_BENCH=ON >/dev/null || exit 1
targets=(--target tracelake --target bench_ingest)
cmake --build "$build" -j "$jobs" "${targets[@]}" >/dev/null || {
  echo "bench: build failed" >&2
  cmake --build "$build" -j 1 "${targets[@]}" 2>&1 | tail -30 >&2
  exit 1
}
B=$build/bench/bench_ingest
T=$build/tracelake

# Lakes, spill directories and logs live under one directory removed at the
# very end: deleting thousands of blobs between runs would slow the next
# run's file creations down (ext4 inode allocation skips recently deleted
# inodes; see docs/performance.md).
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/tlingest-XXXXXX") || exit 1
log=$work/results.log
: >"$log"
live=() # pids of the servers we started and have not stopped yet
pgdir=""
status=0

cleanup() {
  local p
  for p in "${live[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${live[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  [ -n "$pgdir" ] && scripts/pg-test.sh stop "$pgdir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server LOG COMMAND...: runs a server on port 0, waits (10 s at most)
# for its "serving http://127.0.0.1:PORT" line; sets SPID and PORT.
start_server() {
  local slog=$1
  shift
  "$@" >"$slog" 2>&1 &
  SPID=$!
  live+=("$SPID")
  PORT=""
  for _ in $(seq 100); do
    PORT=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' \
      "$slog")
    [ -n "$PORT" ] && return 0
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: the server did not start:" >&2
  cat "$slog" >&2
  return 1
}

# stop_server: SIGTERM (the server stores its last telemetry), 30 s at most.
stop_server() {
  local p
  kill -TERM "$SPID" 2>/dev/null
  for _ in $(seq 300); do
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  local keep=()
  for p in "${live[@]}"; do
    [ "$p" = "$SPID" ] || keep+=("$p")
  done
  live=("${keep[@]}")
}

# ---- PostgreSQL --------------------------------------------------------------
pg_uri=""
if [ "${BENCH_NO_PG:-0}" = 1 ]; then
  echo "PostgreSQL skipped (BENCH_NO_PG=1)"
elif [ ! -x "$PG_BIN/initdb" ]; then
  echo "PostgreSQL skipped: no binaries in $PG_BIN (apt-get install" \
       "postgresql-15, or set PG_BIN)"
else
  pgdir=$work/pg
  if scripts/pg-test.sh start "$pgdir" >"$work/pg-start.log" 2>&1; then
    pg_port=$(cat "$pgdir/port")
    pg_uri=postgresql://postgres@127.0.0.1:$pg_port
    psql_() { "$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -Atq "$@"; }
    # pg-test.sh makes a throwaway server without durability (fsync off):
    # turn it back on, so that a 200 means what it means with SQLite.
    psql_ -d tracelake_test -c "ALTER SYSTEM SET fsync = on" \
      -c "ALTER SYSTEM SET synchronous_commit = on" \
      -c "ALTER SYSTEM SET full_page_writes = on" \
      -c "SELECT pg_reload_conf()" >/dev/null &&
      sleep 0.5 &&
      [ "$(psql_ -d tracelake_test -c 'SHOW fsync')" = on ] || {
      echo "PostgreSQL skipped: could not make it durable" >&2
      pg_uri=""
    }
    pg_pid=$(head -1 "$(cat "$pgdir/datadir")/postmaster.pid" 2>/dev/null)
    [ -n "$pg_uri" ] &&
      echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')" \
           "on 127.0.0.1:$pg_port (scripts/pg-test.sh; set to fsync=on," \
           "synchronous_commit=on, full_page_writes=on;" \
           "wal_sync_method=$(psql_ -d tracelake_test -c 'SHOW wal_sync_method'))"
  else
    echo "PostgreSQL skipped: scripts/pg-test.sh start failed:"
    tail -5 "$work/pg-start.log"
    pgdir=""
  fi
fi

# ---- One run -----------------------------------------------------------------
nlake=0
# new_lake BACKEND [SYNC]: a fresh --data directory and, for PostgreSQL, a
# fresh database (SYNC=off: commits of that database do not wait for the
# WAL flush, a comparison that is not durable). Sets DATA and CAT.
new_lake() {
  nlake=$((nlake + 1))
  DATA=$work/lake-$nlake
  mkdir -p "$DATA/spill"
  CAT=()
  PGPID=()
  if [ "$1" = postgresql ]; then
    [ -n "${pg_pid:-}" ] && PGPID=(--pg-pid "$pg_pid")
    local db=bench_$nlake
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db" || return 1
    [ "${2:-on}" = off ] &&
      psql_ -d "$db" -c "ALTER DATABASE $db SET synchronous_commit = off"
    CAT=(--catalog "$pg_uri/$db")
  fi
}

# check_lake NAME: after the server stopped, the catalog must hold exactly
# what the senders counted as acknowledged, every blob whole; `tracelake
# admin stats` must agree.
check_lake() {
  local name=$1 out stats
  out=$(timeout 120 "$B" verify --data "$DATA" "${CAT[@]}" \
    --senders "$DATA/senders" --tag "verify_$name")
  local rc=$?
  echo "$out" | grep -v '^RESULT'
  echo "$out" | grep '^RESULT' >>"$log"
  stats=$(timeout 60 "$T" admin stats --data "$DATA" "${CAT[@]}")
  echo "  tracelake admin stats: $stats"
  local ev bl
  ev=$(echo "$out" | sed -n 's/.* total_events=\([0-9]*\).*/\1/p')
  bl=$(echo "$out" | sed -n 's/.* total_blocks=\([0-9]*\).*/\1/p')
  if [ $rc -ne 0 ] || ! echo "$stats" | grep -q " $bl blocks, $ev events"; then
    echo "  CHECK FAILED: the catalog does not hold what was acknowledged"
    status=1
  fi
}

# run_load NAME BACKEND HTTP_THREADS PROCESSES THREADS [RATE_PER_PROCESS
# SECONDS [SYNC]]
run_load() {
  local name=$1 backend=$2 ht=$3 np=$4 nt=$5 r=${6:-0} secs=${7:-0}
  local ev=$((total / np))
  [ $ev -gt 5000000 ] && ev=5000000
  [ "$r" != 0 ] && ev=$((r * secs))
  echo
  echo "## $name: $backend, $np process(es) x $nt thread(s)," \
       "--http-threads $ht, $ev events per process" \
       "$([ "$r" != 0 ] && echo "paced at $r events/s per process")"
  new_lake "$backend" "${8:-on}" || { status=1; return; }
  start_server "$DATA/server.log" "$T" serve --data "$DATA" "${CAT[@]}" \
    --http 127.0.0.1:0 --flight off --http-threads "$ht" || { status=1; return; }
  local out
  out=$(timeout 600 "$B" load --url "http://127.0.0.1:$PORT" \
    --dir "$DATA/spill" --processes "$np" --threads "$nt" --events "$ev" \
    --rate "$r" --senders "$DATA/senders" --server-pid "$SPID" "${PGPID[@]}" \
    --timeout 500 --tag "$name" \
    --meta "backend=$backend http_threads=$ht sync=${8:-on}") || status=1
  echo "$out" | grep -v '^RESULT'
  echo "$out" | grep '^RESULT' >>"$log"
  stop_server
  check_lake "$name"
}

# run_post NAME BACKEND HTTP_THREADS CONNECTIONS [SYNC]
run_post() {
  local name=$1 backend=$2 ht=$3 nc=$4
  echo
  echo "## $name: $backend, direct client, $nc keep-alive connection(s)," \
       "--http-threads $ht, ${post_s} s"
  new_lake "$backend" "${5:-on}" || { status=1; return; }
  start_server "$DATA/server.log" "$T" serve --data "$DATA" "${CAT[@]}" \
    --http 127.0.0.1:0 --flight off --http-threads "$ht" || { status=1; return; }
  local perf_pids=() secs=$post_s
  if [ "${BENCH_PERF:-0}" = 1 ] && [ "$name" = sqlite_post_16 ] &&
    command -v perf >/dev/null; then
    # Both start once the client is posting and end well before it does
    # (perf takes a while to write its data after the period).
    secs=$((post_s > 5 ? post_s : 5))
    (sleep 1 && perf record -q -e cpu-clock -F 999 -g -p "$SPID" \
      -o "$work/perf-cpu.data" -- sleep 1.5 >/dev/null 2>&1) &
    perf_pids+=($!)
    (sleep 1 && perf sched record -q -g -p "$SPID" \
      -o "$work/perf-sched.data" -- sleep 0.5 >/dev/null 2>&1) &
    perf_pids+=($!)
  fi
  local out
  out=$(timeout 300 "$B" post --url "http://127.0.0.1:$PORT" \
    --connections "$nc" --seconds "$secs" --events 1000000 \
    --senders "$DATA/senders" --server-pid "$SPID" "${PGPID[@]}" \
    --tag "$name" \
    --meta "backend=$backend http_threads=$ht sync=${5:-on}") || status=1
  echo "$out" | grep -v '^RESULT'
  echo "$out" | grep '^RESULT' >>"$log"
  local p
  for p in "${perf_pids[@]}"; do
    wait "$p"
  done
  stop_server
  check_lake "$name"
  [ ${#perf_pids[@]} -gt 0 ] && profile_report
}

# What the perf recordings say: on-CPU by symbol and by library, off-CPU
# time of the HTTP workers by why they slept (from sched_switch call chains
# and the next switch-in's wait time).
profile_report() {
  echo
  echo "#### Profile of the server during sqlite_post_16 (perf)"
  echo "on-CPU (cpu-clock, all server threads), by module, then by symbol:"
  perf report -i "$work/perf-cpu.data" --no-children --sort dso --stdio \
    -g none 2>/dev/null | grep '%' | head -8
  perf report -i "$work/perf-cpu.data" --no-children --sort sym --stdio \
    -g none 2>/dev/null | grep '%' | head -25
  echo "off-CPU and on-CPU time of the HTTP worker threads (perf sched):"
  perf sched timehist -i "$work/perf-sched.data" -g --max-stack 8 \
    2>/dev/null | awk '
    function why(cs) {
      if (index(cs, "epoll_wait")) return "idle: waiting for a request"
      if (index(cs, "futex")) return "futex: group commit / locks"
      if (index(cs, "blkdev_issue_flush")) return "fsync: device cache flush"
      if (index(cs, "folio_wait") || index(cs, "fdatawait"))
        return "fsync: waiting for data write-back"
      if (index(cs, "sync_dirty_buffer") || index(cs, "bit_wait_io"))
        return "fsync: waiting for inode/dir buffers"
      if (index(cs, "exit_to_user_mode") || index(cs, "irqentry_exit"))
        return "preempted: waiting for a CPU"
      if (index(cs, "io_schedule")) return "other I/O wait"
      return "other"
    }
    $3 ~ /^MHD-worker\[/ {
      tid = $3; sub(/.*\[/, "", tid); sub(/\/.*/, "", tid)
      cs = ""; for (i = 7; i <= NF; i++) cs = cs " " $i
      if (tid in last) t[last[tid]] += $4 - $5
      t["waiting for a CPU after a wake-up"] += $5
      t["running"] += $6
      last[tid] = why(cs)
    }
    END {
      for (k in t) all += t[k]
      for (k in t) if (all > 0)
        printf "  %8.1f ms %5.1f%%  %s\n", t[k], 100 * t[k] / all, k
    }' | sort -rn
}

# ---- The runs ----------------------------------------------------------------
fs=$(findmnt -n -o FSTYPE,OPTIONS -T "$work" 2>/dev/null ||
  stat -f -c %T "$work")
backends=(sqlite)
[ -n "$pg_uri" ] && backends+=(postgresql)
for be in "${backends[@]}"; do
  echo
  echo "#### tracelake serve, catalog $be (blobs under --data on $fs)"
  run_load "${be}_lib_1x1" "$be" 8 1 1
  run_load "${be}_lib_1x4" "$be" 8 1 4
  run_load "${be}_lib_2x2" "$be" 8 2 2
  run_load "${be}_lib_4x2" "$be" 8 4 2
  run_load "${be}_lib_8x1" "$be" 8 8 1
  run_load "${be}_lib_16x1" "$be" 8 16 1
  run_load "${be}_lib_16x1_h16" "$be" 16 16 1
  run_load "${be}_lib_paced" "$be" 8 2 2 $((rate / 2)) "$paced_s"
  run_post "${be}_post_1" "$be" 8 1
  run_post "${be}_post_4" "$be" 8 4
  run_post "${be}_post_16" "$be" 8 16
  run_post "${be}_post_16_h16" "$be" 16 16
done
if [ -n "$pg_uri" ]; then
  echo
  echo "#### PostgreSQL with synchronous_commit=off (NOT durable; for comparison)"
  run_load postgresql_nosync_lib_4x2 postgresql 8 4 2 0 0 off
  run_post postgresql_nosync_post_16 postgresql 8 16 off
fi

# ---- Baselines ---------------------------------------------------------------
declare -A R
load_results() {
  local line kv name
  R=()
  while read -r line; do
    name=""
    for kv in $line; do
      case $kv in name=*) name=${kv#name=} ;; esac
    done
    for kv in $line; do
      case $kv in *=*) R["$name.${kv%%=*}"]=${kv#*=} ;; esac
    done
  done <"$log"
}
get() { echo "${R[$1]:-}"; }
load_results
bsize=$(get sqlite_lib_2x2.bytes_per_block)
bevents=$(get sqlite_lib_2x2.events_per_block)
bsize=${bsize:-16000}
bevents=${bevents:-6000}

echo
echo "#### Baselines: the same blocks without storage, and raw durable writes"
echo "## raw loopback HTTP: a libmicrohttpd server that answers 200 and stores nothing"
for mode in plain decode; do
  nlake=$((nlake + 1))
  DATA=$work/lake-$nlake
  mkdir -p "$DATA/spill"
  flag=()
  [ $mode = decode ] && flag=(--decode)
  start_server "$DATA/server.log" "$B" null-server --port 0 "${flag[@]}" ||
    { status=1; continue; }
  head -1 "$DATA/server.log"
  for nc in 1 16; do
    out=$(timeout 300 "$B" post --url "http://127.0.0.1:$PORT" \
      --connections "$nc" --seconds "$post_s" --events 1000000 \
      --server-pid "$SPID" --tag "null_${mode}_post_$nc" \
      --meta "backend=none http_threads=8") || status=1
    echo "$out" | grep -v '^RESULT'
    echo "$out" | grep '^RESULT' >>"$log"
  done
  if [ $mode = plain ]; then
    out=$(timeout 300 "$B" load --url "http://127.0.0.1:$PORT" \
      --dir "$DATA/spill" --processes 2 --threads 2 --events 5000000 \
      --server-pid "$SPID" --tag null_plain_lib_2x2 \
      --meta "backend=none http_threads=8") || status=1
    echo "$out" | grep -v '^RESULT'
    echo "$out" | grep '^RESULT' >>"$log"
  fi
  stop_server
done

echo
echo "## raw durable writes on the same disk: blobs of $bsize bytes"
for spec in "1 seq" "8 seq" "1 plain"; do
  set -- $spec
  nlake=$((nlake + 1))
  mkdir -p "$work/lake-$nlake"
  flag=()
  [ "$2" = plain ] && flag=(--plain)
  out=$(timeout 300 "$B" fsync --dir "$work/lake-$nlake" --threads "$1" \
    --ops $((1600 / $1)) --size "$bsize" --events-per-block "$bevents" \
    "${flag[@]}" --tag "fsync_$2_$1") || status=1
  echo "$out" | grep -v '^RESULT'
  echo "$out" | grep '^RESULT' >>"$log"
done
# The same sequence right after 20 000 files were deleted on the file
# system (a retention pass, another program's cleanup): on ext4 without a
# journal, allocating an inode then skips every recently deleted one.
load_results
if [ -n "$(get fsync_seq_1.kind)" ]; then
  nlake=$((nlake + 1))
  mkdir -p "$work/lake-$nlake/churn"
  (cd "$work/lake-$nlake/churn" && seq 20000 | xargs touch && cd .. &&
    rm -rf churn)
  out=$(timeout 300 "$B" fsync --dir "$work/lake-$nlake" --threads 1 \
    --ops 1600 --size "$bsize" --events-per-block "$bevents" \
    --tag fsync_seq_1_churn) || status=1
  echo "  (right after 20000 files were deleted nearby:)"
  echo "$out" | grep -v '^RESULT'
  echo "$out" | grep '^RESULT' >>"$log"
fi
nlake=$((nlake + 1))
mkdir -p "$work/lake-$nlake"
out=$(timeout 300 "$B" sqlite --dir "$work/lake-$nlake" --ops 2000 \
  --tag sqlite_commit_1) || status=1
echo "$out" | grep -v '^RESULT'
echo "$out" | grep '^RESULT' >>"$log"

# ---- Table -------------------------------------------------------------------
load_results
mev() { [ -n "$1" ] && awk -v x="$1" 'BEGIN {printf "%.2f", x / 1e6}' || printf -- '-'; }
verdict() { # name
  local eps ok v
  eps=$(get "$1.events_per_s") ok=$(get "verify_$1.ok") v=$(get "$1.valid")
  [ -z "$eps" ] && { echo "-"; return; }
  if [ "$v" != yes ] || [ "$ok" != yes ]; then
    echo "INVALID"
  elif awk -v x="$eps" -v t=$target 'BEGIN {exit !(x >= t)}'; then
    echo "met"
  else
    echo "MISSED"
  fi
}
fmt='%-20s %-9s %-17s %6s %5s %5s %-15s %-15s %-14s %-6s %s\n'
echo
echo "#### Ingestion: accepted events/s = events acknowledged with 200 / first record (or send) to last ack"
printf "$fmt" run catalog load "M ev/s" "MB/s" "drain" "client ack ms" \
  "handler ms" "cores: server" verified "target >= 2M/s"
printf "$fmt" "" "" "" "" "" "s" "p50 / p99" "p50 / p99" "/ pg / other" "" ""
row() { # name
  local n=$1 kind load cl hd drain
  kind=$(get "$n.kind")
  [ -n "$kind" ] || return 0
  if [ "$kind" = library ]; then
    load="$(get "$n.processes")p x $(get "$n.threads")t"
    cl="-"
    drain=$(awk -v a="$(get "$n.seconds")" -v b="$(get "$n.producer_seconds")" \
      'BEGIN {printf "%.2f", a - b}')
  else
    load="$(get "$n.connections") conn"
    cl="$(get "$n.p50_ms") / $(get "$n.p99_ms")"
    drain="-"
  fi
  [ "$(get "$n.http_threads")" = 16 ] && load="$load h16"
  [ "$(get "$n.rate")" != "" ] && [ "$(get "$n.rate")" != 0 ] &&
    load="$load paced"
  hd="-"
  [ -n "$(get "verify_$n.server_p50_ms")" ] &&
    hd="$(get "verify_$n.server_p50_ms") / $(get "verify_$n.server_p99_ms")"
  local be
  be=$(get "$n.backend")
  [ "$(get "$n.sync")" = off ] && be="pg-nosync"
  [ "$be" = postgresql ] && be=pg
  local v
  v=$(verdict "$n")
  [ "$(get "$n.quiet")" = no ] && v="$v (NOT QUIET)"
  printf "$fmt" "${n#*_}" "$be" "$load" "$(mev "$(get "$n.events_per_s")")" \
    "$(printf %.1f "$(get "$n.mb_per_s")")" "$drain" "$cl" "$hd" \
    "$(get "$n.server_cores") / $(get "$n.pg_cores") / $(get "$n.other_cores")" \
    "$([ "$(get "verify_$n.ok")" = yes ] && echo exact || echo "-")" "$v"
}
for be in "${backends[@]}"; do
  for r in lib_1x1 lib_1x4 lib_2x2 lib_4x2 lib_8x1 lib_16x1 lib_16x1_h16 \
    lib_paced post_1 post_4 post_16 post_16_h16; do
    row "${be}_$r"
  done
done
row postgresql_nosync_lib_4x2
row postgresql_nosync_post_16
echo "(p = sender processes, t = recording threads each, paced = recording at"
echo " $(mev "$rate") M events/s in all, else as fast as possible; conn = direct-"
echo " client connections; h16 = --http-threads 16; drain = last ack minus end of"
echo " recording; client ack = POST to 200 as the client saw it; handler = the"
echo " server's own ingest_block_duration; cores: used by the server, by"
echo " PostgreSQL, and by other processes (above 0.25: NOT QUIET), of $(nproc);"
echo " verified = the catalog holds exactly what was acknowledged, every blob"
echo " whole, and tracelake admin stats agrees)"
echo
echo "#### Baselines (same run, same machine; blocks of $bsize bytes, $bevents events)"
bfmt='%-46s %10s %9s %-17s %s\n'
printf "$bfmt" baseline "M ev/s" "blocks/s" "ms p50 / p99" "note"
brow() { # label name note
  local n=$2
  [ -n "$(get "$n.kind")" ] || return 0
  local bps
  bps=$(get "$n.blocks_per_s")
  [ -z "$bps" ] && bps=$(get "$n.ops_per_s")
  [ -z "$bps" ] && bps=$(get "$n.commits_per_s")
  [ -z "$bps" ] && bps=$(awk -v b="$(get "$n.blocks")" -v s="$(get "$n.seconds")" \
    'BEGIN {if (s > 0) printf "%.0f", b / s}')
  printf "$bfmt" "$1" "$(mev "$(get "$n.events_per_s")")" "$bps" \
    "$(get "$n.p50_ms") / $(get "$n.p99_ms")" "$3"
}
brow "HTTP only, 1 connection" null_plain_post_1 "server stores nothing"
brow "HTTP only, 16 connections" null_plain_post_16 ""
brow "HTTP only, library 2p x 2t" null_plain_lib_2x2 "library's own limit"
brow "HTTP + decode/validate, 1 connection" null_decode_post_1 ""
brow "HTTP + decode/validate, 16 connections" null_decode_post_16 ""
brow "store sequence (temp, fsync, link, fsync dir), 1 thr" fsync_seq_1 \
  "$(get fsync_seq_1.cpu_us_per_op) us CPU/blob"
brow "store sequence, 8 threads" fsync_seq_8 \
  "$(get fsync_seq_8.cpu_us_per_op) us CPU/blob"
brow "store sequence, 1 thr, after 20000 deletions" fsync_seq_1_churn \
  "$(get fsync_seq_1_churn.cpu_us_per_op) us CPU/blob"
brow "write + fsync only, 1 thread" fsync_plain_1 ""
brow "SQLite WAL commit of 1 row (synchronous=FULL)" sqlite_commit_1 \
  "per commit"

echo
echo "(every RESULT line:)"
cat "$log"
echo "(run-ingest.sh took $SECONDS s)"
exit $status
