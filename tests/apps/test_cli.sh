#!/usr/bin/env bash
# The tracelake command as a user runs it: demo into a spool, dump it as
# JSON lines, and clear errors (exit 1, reason on stderr) for corrupt files.
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --help | grep -q "dump" || fail "help lists no dump command"
"$bin" nonsense 2>/dev/null && fail "unknown command accepted"

"$bin" demo --spool "$tmp/spool" --threads 2 --jobs 500 >"$tmp/demo.txt"
grep -q "0 dropped" "$tmp/demo.txt" || fail "demo dropped events: $(cat "$tmp/demo.txt")"
grep -q "async spans 1000 begin / 1000 end" "$tmp/demo.txt" ||
  fail "demo summary lacks the async spans: $(cat "$tmp/demo.txt")"

"$bin" dump "$tmp/spool" >"$tmp/all.jsonl"
[ "$(grep -c '"kind":"process"' "$tmp/all.jsonl")" -eq 1 ] || fail "one process"
[ "$(grep -c '"kind":"async_begin","time"' "$tmp/all.jsonl")" -eq 1000 ] ||
  fail "1000 async begins"
grep -q '"kind":"log","time":[0-9]*,"ticks":[0-9]*,"target":"tracelake::demo","level":"warn","msg":"job 100 took the slow path' \
  "$tmp/all.jsonl" || fail "formatted warning not found"
grep -q '"name":"job_payload","unit":"bytes","value":[0-9]' "$tmp/all.jsonl" ||
  fail "int metric not found"
# Every line is one JSON object.
bad=$(grep -cv '^{.*}$' "$tmp/all.jsonl" || true)
[ "$bad" -eq 0 ] || fail "$bad lines are not JSON objects"

# A corrupt block: flip one byte in the payload.
block=$(ls "$tmp"/spool/*/*-block.tl | head -1)
cp "$block" "$tmp/bad.tl"
printf '\xff' | dd of="$tmp/bad.tl" bs=1 seek=120 conv=notrunc status=none
if "$bin" dump "$tmp/bad.tl" >/dev/null 2>"$tmp/err.txt"; then
  fail "corrupt block accepted"
fi
grep -q "checksum mismatch" "$tmp/err.txt" || fail "no reason: $(cat "$tmp/err.txt")"
# A truncated block.
head -c 60 "$block" >"$tmp/short.tl"
if "$bin" dump "$tmp/short.tl" 2>"$tmp/err.txt"; then fail "truncated accepted"; fi
grep -q "truncated" "$tmp/err.txt" || fail "no reason: $(cat "$tmp/err.txt")"
# Not a tracelake file at all.
echo "hello" >"$tmp/text.tl"
if "$bin" dump "$tmp/text.tl" 2>"$tmp/err.txt"; then fail "text accepted"; fi
grep -q "not a tracelake message" "$tmp/err.txt" || fail "no reason for text"
# Bad serve options: exit 2 and a reason, before anything is opened.
for args in "--retention 0" "--retention 5x" "--retention 5d --maintain-interval-ms 0"; do
  # shellcheck disable=SC2086
  if "$bin" serve --data "$tmp/never" $args 2>"$tmp/err.txt"; then
    fail "serve $args accepted"
  fi
  grep -q "retention" "$tmp/err.txt" || fail "serve $args: no reason: $(cat "$tmp/err.txt")"
done
[ ! -e "$tmp/never" ] || fail "serve made its data directory despite bad options"
"$bin" serve --help | grep -q -- "--retention AGE" || fail "serve --help lacks --retention"
echo "ok"
