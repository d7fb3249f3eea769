#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/deps.sh: LTTng (tools and
# UST headers) for the LTTng-UST peer of bench/run.sh. Debian 12 packages,
# installed with apt-get as root or through sudo, only if missing. The
# benchmarks still build and run without them (the peer is then skipped), so
# a failure here is reported but does not stop `make bench`.
set -uo pipefail
pkgs=(lttng-tools liblttng-ust-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "bench-deps: apt-get not found; install ${missing[*]} by hand" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "bench-deps: not root and no sudo; install ${missing[*]} by hand" >&2
    exit 0
  fi
  sudo="sudo"
fi
echo "bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq &&
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
  echo "bench-deps: could not install ${missing[*]}; the LTTng peer will" \
       "be skipped" >&2
exit 0
