#!/usr/bin/env bash
# What libtracelake writes, as a user would feed it by hand: `tracelake demo`
# into a spool directory, then every file posted with curl, in name order,
# to `tracelake serve` on an ephemeral port. Each is stored (200), posting
# them all again is a no-op (200 "already stored"), the blobs on disk are the
# posted bytes, and the catalog counts the demo's events.
#
# The catalog is DATA/catalog.db, or with TL_TEST_CATALOG=pg a fresh database
# on the server of the ctest fixture (its URI in $TL_TEST_PG_DIR/uri),
# dropped at the end.
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
server=
admin_uri=
db=
cleanup() {
  [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
  if [ -n "$db" ]; then
    "$psql" -q "$admin_uri" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

catalog=() # the default, DATA/catalog.db
if [ "${TL_TEST_CATALOG:-sqlite}" = pg ]; then
  psql=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
  admin_uri=$(cat "${TL_TEST_PG_DIR:?TL_TEST_CATALOG=pg needs TL_TEST_PG_DIR}/uri")
  name=tl_spool_$$_$RANDOM
  "$psql" -q "$admin_uri" -c "CREATE DATABASE $name" || fail "CREATE DATABASE"
  db=$name
  catalog=("--catalog" "${admin_uri%/*}/$db")
fi

"$bin" demo --spool "$tmp/spool" --threads 2 --jobs 300 >"$tmp/demo.txt"
recorded=$(sed -n 's/^recorded \([0-9]*\) events (0 dropped).*/\1/p' "$tmp/demo.txt")
[ -n "$recorded" ] || fail "demo: $(cat "$tmp/demo.txt")"
pdir=$(ls -d "$tmp"/spool/*/ | head -1)
pid=$(basename "$pdir")

# The log exists before the server opens it: the loop below may read it
# first.
: >"$tmp/serve.log"
# shellcheck disable=SC2086 # TL_TEST_SERVE_ARGS: extra options, split
"$bin" serve --data "$tmp/data" "${catalog[@]}" --http 127.0.0.1:0 --flight 127.0.0.1:0 \
  ${TL_TEST_SERVE_ARGS:-} >"$tmp/serve.log" 2>&1 &
server=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|^tracelake: serving http://127.0.0.1:\([0-9]*\) .*|\1|p' "$tmp/serve.log")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || fail "server exited: $(cat "$tmp/serve.log")"
  sleep 0.1
done
[ -n "$port" ] || fail "server did not start: $(cat "$tmp/serve.log")"
url=http://127.0.0.1:$port

post_all() { # $1: expected start of every answer
  local n=0 f kind code
  for f in "$pdir"/*.tl; do
    kind=${f##*-}
    kind=${kind%.tl}
    code=$(curl -s -m 10 -o "$tmp/answer" -w '%{http_code}' \
      -H 'Content-Type: application/octet-stream' --data-binary "@$f" \
      "$url/ingestion/insert_$kind") || fail "curl failed on $f"
    [ "$code" = 200 ] || fail "$f: $code $(cat "$tmp/answer")"
    grep -q "^$1 $kind " "$tmp/answer" || fail "$f: $(cat "$tmp/answer")"
    n=$((n + 1))
  done
  echo "$n"
}
files=$(post_all stored)
[ "$files" -ge 3 ] || fail "only $files spool files"
post_all "already stored" >/dev/null

# The blobs are the posted block files, byte for byte.
nblocks=$(ls "$pdir"/*-block.tl | wc -l)
[ "$(find "$tmp/data/blobs/$pid" -type f | wc -l)" -eq "$nblocks" ] ||
  fail "expected $nblocks blobs under blobs/$pid"
(cd "$pdir" && sha256sum ./*-block.tl | cut -d' ' -f1 | sort) >"$tmp/want"
find "$tmp/data/blobs/$pid" -type f -exec sha256sum {} + | cut -d' ' -f1 |
  sort >"$tmp/got"
cmp -s "$tmp/want" "$tmp/got" || fail "stored blobs differ from the posted blocks"

kill -TERM "$server"
rc=0
wait "$server" || rc=$?
server=
[ "$rc" -eq 0 ] || fail "serve exited $rc after SIGTERM"
grep -q "tracelake: stopped" "$tmp/serve.log" || fail "no 'stopped' in the log"

# The catalog: admin stats counts the demo's events (plus the server's own
# telemetry); with the backend's own shell, exactly the demo's for its
# process.
stats=$("$bin" admin stats --data "$tmp/data" "${catalog[@]}")
events=$(echo "$stats" | sed -n 's/.* blocks, \([0-9]*\) events.*/\1/p')
[ -n "$events" ] && [ "$events" -ge "$recorded" ] ||
  fail "admin stats: $stats (demo recorded $recorded)"
mine=
query="SELECT sum(nb_objects) || ' ' || count(*) FROM blocks WHERE process_id = '$pid'"
if [ -n "$db" ]; then
  mine=$("$psql" -qtA "${catalog[1]}" -c "$query")
elif command -v sqlite3 >/dev/null; then
  mine=$(sqlite3 "$tmp/data/catalog.db" "$query")
fi
if [ -n "$mine" ] || [ -n "$db" ]; then
  [ "$mine" = "$recorded $nblocks" ] ||
    fail "catalog holds '$mine' (events blocks) for the demo, want '$recorded $nblocks'"
fi
echo ok
