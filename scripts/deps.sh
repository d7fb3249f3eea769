#!/usr/bin/env bash
# Installs the Debian 12 packages tracelake needs, if any is missing. Runs
# apt-get as root, or through sudo.
set -euo pipefail
pkgs=(build-essential cmake pkg-config liblz4-dev libcurl4-openssl-dev
      libmicrohttpd-dev libsqlite3-dev libpq-dev postgresql-15 curl
      clang libclang-rt-14-dev openssl libgrpc-dev protobuf-compiler
      protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
# npm fetches the pinned DuckDB (scripts/duckdb.sh) and the interop tests'
# packages (scripts/interop-deps.sh); Debian's own if absent.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  "$(dirname "$0")/duckdb.sh"
  exec "$(dirname "$0")/interop-deps.sh"
fi
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
"$(dirname "$0")/duckdb.sh"
"$(dirname "$0")/interop-deps.sh"
