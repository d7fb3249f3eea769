#!/usr/bin/env bash
# make install's promise: headers, static and shared libraries, pkg-config
# file and the binary land under PREFIX, and a user's program builds with
# `cc app.c $(pkg-config --cflags --libs tracelake)` and records events.
set -euo pipefail
build=$1
cc=${2:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in include/tracelake/tracelake.h lib/libtracelake.a lib/libtracelake.so \
         lib/pkgconfig/tracelake.pc bin/tracelake; do
  [ -e "$tmp/prefix/$f" ] || fail "missing $f"
done
cat >"$tmp/app.c" <<'APP'
#include <tracelake/tracelake.h>
#include <stdio.h>
static void work(int i) {
  TL_SPAN_FN();
  TL_INFO("item %d", i);
  TL_IMETRIC("items", "count", i);
}
int main(void) {
  tl_config cfg = {0};
  if (tl_init(&cfg)) return 1;
  for (int i = 0; i < 100; i++) work(i);
  tl_shutdown();
  tl_stats st;
  tl_stats_get(&st);
  printf("%llu\n", (unsigned long long)st.events_recorded);
  return 0;
}
APP
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/app" "$tmp/app.c" \
  $(pkg-config --cflags --libs tracelake)
out=$(TRACELAKE_SPOOL="$tmp/spool" "$tmp/app")
[ "$out" = "400" ] || fail "app recorded $out events, want 400"
"$tmp/prefix/bin/tracelake" dump --summary "$tmp/spool" | grep -q "400 events" ||
  fail "installed tracelake cannot read the app's spool"
# Static linking works too.
"$cc" -std=c11 -o "$tmp/app_static" "$tmp/app.c" -I"$tmp/prefix/include" \
  "$tmp/prefix/lib/libtracelake.a" -llz4 -lcurl -lpthread
TRACELAKE_SPOOL="$tmp/spool2" "$tmp/app_static" >/dev/null
echo "ok"
