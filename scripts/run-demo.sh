#!/usr/bin/env bash
# The main job (make run): starts tracelake serve on the embedded default
# (SQLite catalog, blobs under BUILD/demo-data), sends the demo workload to
# it over HTTP, runs sample queries through Flight SQL with `tracelake
# query` (recent errors, a metric over time, the slowest spans of a thread,
# an async span tree), prints the per-phase latency of those queries from
# the server's own telemetry, then stops the server gracefully.
set -euo pipefail
build=${1:-build}
bin=$build/tracelake
data=$build/demo-data
rm -rf "$data" "$build/demo-spill"
log=$build/serve.log
: >"$log" # before the server opens it: the loop below may read it first
"$bin" serve --data "$data" --http 127.0.0.1:0 --flight 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
line=""
for _ in $(seq 100); do
  line=$(grep -m1 'serving http://' "$log" || true)
  [ -n "$line" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$line" ] || { echo "server did not start:"; cat "$log"; exit 1; }
port=$(echo "$line" | sed -n 's/.*serving http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p')
fport=$(echo "$line" | sed -n 's/.* and grpc:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p')
echo "$line"
echo
"$bin" demo --url "http://127.0.0.1:$port" --spool "$build/demo-spill"

server="grpc://127.0.0.1:$fport"
query() {
  echo
  echo "\$ tracelake query --server $server $*"
  "$bin" query --server "$server" "$@"
}
echo
echo "sample queries through Flight SQL:"
query "SELECT time, level, target, msg FROM log_entries WHERE level <= 3 ORDER BY time DESC LIMIT 5"
query "SELECT time_bucket(INTERVAL 100 MILLISECONDS, time) AS t, name, count(*) AS n, round(avg(value), 6) AS mean FROM measures WHERE target = 'tracelake::demo' GROUP BY ALL ORDER BY t, name LIMIT 12"
stream=$("$bin" query --server "$server" --format csv \
  "SELECT s.stream_id FROM streams s JOIN processes p USING (process_id) WHERE list_contains(p.properties, {'key': 'app', 'value': 'demo'}) AND list_contains(s.tags, 'cpu') AND list_contains(s.properties, {'key': 'thread-name', 'value': 'demo-worker'}) ORDER BY s.stream_id LIMIT 1" | tail -1)
query "SELECT name, depth, round(duration / 1e3, 1) AS us, \"begin\" FROM view_instance('thread_spans', '$stream') ORDER BY duration DESC LIMIT 5"
demo=$("$bin" query --server "$server" --format csv \
  "SELECT process_id FROM processes WHERE list_contains(properties, {'key': 'app', 'value': 'demo'})" | tail -1)
query "SELECT e.name, e.depth, count(*) FILTER (e.event_type = 'begin') AS begun, count(*) FILTER (e.event_type = 'end') AS ended, (SELECT any_value(p.name) FROM view_instance('async_events', '$demo') p WHERE p.span_id = any_value(e.parent_span_id)) AS parent FROM view_instance('async_events', '$demo') e GROUP BY e.name, e.depth ORDER BY e.depth, e.name"

# The server observed every one of those queries: its own metrics (ticks,
# shown in seconds by the view) and its query log.
sleep 1 # the server flushes its own telemetry every 500 ms
echo
echo "latency of the queries above, per phase, from the server's own telemetry:"
query "SELECT name, count(*) AS n, round(quantile_cont(value, 0.5) * 1e3, 3) AS p50_ms, round(quantile_cont(value, 0.95) * 1e3, 3) AS p95_ms FROM measures WHERE target = 'tracelake::query' AND unit = 'seconds' GROUP BY name ORDER BY p50_ms"
query --slow --limit 5

kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
echo
tail -n +2 "$log"
echo
echo "stored in $data:"
"$bin" admin stats --data "$data"
