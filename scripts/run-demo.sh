#!/usr/bin/env bash
# The main job (make run): starts tracelake serve on the embedded default
# (SQLite catalog, blobs under BUILD/demo-data), sends the demo workload to
# it over HTTP, stops the server gracefully and prints what was stored.
set -euo pipefail
build=${1:-build}
bin=$build/tracelake
data=$build/demo-data
rm -rf "$data" "$build/demo-spill"
log=$build/serve.log
"$bin" serve --data "$data" --http 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*serving http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start:"; cat "$log"; exit 1; }
head -1 "$log"
echo
"$bin" demo --url "http://127.0.0.1:$port" --spool "$build/demo-spill"
echo
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
tail -n +2 "$log"
echo
echo "stored in $data:"
"$bin" admin stats --data "$data"
