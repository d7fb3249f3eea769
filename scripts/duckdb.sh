#!/usr/bin/env bash
# Fetches the pinned DuckDB C library (header + shared library) from the npm
# registry into third_party/duckdb/, checking each package's integrity
# against the hash pinned below. Does nothing when already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=third_party/duckdb
header_pkg=duckdb@1.4.4
header_sha512=hEJJ5hyVF0VLj3dmOLpsWrQR0b3d4Ykqtygm6iUXjHJDDnSqg/USKxcb5qvNrOhFYPgktayU6dXCtgPqcmmpog==
lib_pkg=@duckdb/node-bindings-linux-x64@1.4.4-r.4
lib_sha512=jBTL/WvfwxLToFa/pVHfT6elMtltJGnc3wSuxZD9OfMltit9YUdVFS37vBFQzXMT1Z8OWjtSjMh+zPKxOwHLHA==
want_version=v1.4.4

if [ -f "$dest/duckdb.h" ] && [ -f "$dest/libduckdb.so" ] &&
   [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$want_version" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "duckdb: npm is required" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fetch() { # package, expected sha512 (base64) -> path of the tarball
  local pkg=$1 sum=$2 file got
  echo "duckdb: fetching $pkg" >&2
  file=$(cd "$tmp" && npm pack --silent "$pkg" 2>/dev/null | tail -1)
  [ -f "$tmp/$file" ] || { echo "duckdb: npm pack $pkg failed" >&2; exit 1; }
  got=$(openssl dgst -sha512 -binary "$tmp/$file" | base64 -w0)
  if [ "$got" != "$sum" ]; then
    echo "duckdb: $pkg: integrity mismatch (got sha512-$got)" >&2
    exit 1
  fi
  echo "$tmp/$file"
}

h=$(fetch "$header_pkg" "$header_sha512")
l=$(fetch "$lib_pkg" "$lib_sha512")
mkdir -p "$tmp/h" "$tmp/l" "$dest"
tar -xzf "$h" -C "$tmp/h" package/src/duckdb/src/include/duckdb.h
tar -xzf "$l" -C "$tmp/l" package/libduckdb.so
cp "$tmp/h/package/src/duckdb/src/include/duckdb.h" "$dest/duckdb.h"
cp "$tmp/l/package/libduckdb.so" "$dest/libduckdb.so"
echo "$want_version" >"$dest/VERSION"
echo "duckdb: $want_version in $dest" >&2
