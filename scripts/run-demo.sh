#!/usr/bin/env bash
# The main job (make run): starts tracelake serve on the embedded default
# (SQLite catalog, blobs under BUILD/demo-data), sends the demo workload to
# it over HTTP, stops the server gracefully, prints what was stored and runs
# a few sample queries over it.
set -euo pipefail
build=${1:-build}
bin=$build/tracelake
data=$build/demo-data
rm -rf "$data" "$build/demo-spill"
log=$build/serve.log
"$bin" serve --data "$data" --http 127.0.0.1:0 --flight 127.0.0.1:0 >"$log" 2>&1 &
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

sql() {
  echo
  echo "\$ tracelake sql \"$1\""
  "$bin" sql --data "$data" "$1"
}
echo
echo "sample queries (tracelake sql --data $data \"...\"):"
sql "SELECT level, count(*) AS entries FROM log_entries GROUP BY level ORDER BY level"
sql "SELECT name, unit, count(*) AS n, round(avg(value), 6) AS mean FROM measures WHERE target = 'tracelake::demo' GROUP BY ALL ORDER BY name"
pid=$("$bin" sql --data "$data" --format csv \
  "SELECT process_id FROM processes WHERE list_contains(properties, {'key': 'app', 'value': 'demo'})" | tail -1)
sql "SELECT event_type, name, depth, count(*) AS n FROM view_instance('async_events', '$pid') GROUP BY ALL ORDER BY name, event_type"
