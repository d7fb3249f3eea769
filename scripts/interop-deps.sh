#!/usr/bin/env bash
# Installs the npm packages of the Flight SQL interop tests (tests/interop:
# @grpc/grpc-js, @grpc/proto-loader, apache-arrow, pinned in its
# package-lock.json) into tests/interop/node_modules, with `npm ci`. Does
# nothing when node_modules was installed from the same package-lock.json
# (its hash is kept in node_modules/.tl-lock-hash). Safe to run from
# parallel tests: a lock serializes the installs.
set -euo pipefail
dir=$(cd "$(dirname "$0")/../tests/interop" && pwd)
command -v npm >/dev/null 2>&1 || { echo "interop-deps: npm is required" >&2; exit 1; }
lock_hash() { sha256sum "$dir/package-lock.json" | cut -d' ' -f1; }
current() { [ "$(cat "$dir/node_modules/.tl-lock-hash" 2>/dev/null)" = "$(lock_hash)" ]; }
current && exit 0
exec 9>"${TMPDIR:-/tmp}/tracelake-interop-deps.lock"
flock 9
current && exit 0 # installed by whoever held the lock
echo "interop-deps: npm ci in $dir" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
lock_hash >"$dir/node_modules/.tl-lock-hash"
