/* disabled.c - call sites compiled with -DTL_DISABLE (see CMakeLists.txt),
 * timed by bench_record to show that a disabled call site costs nothing: the
 * macros expand to unevaluated sizeof expressions, leaving an empty loop. */
#include <tracelake/tracelake.h>

#include "bench.h"

#ifndef TL_DISABLE
#error "disabled.c must be compiled with -DTL_DISABLE"
#endif

void bench_disabled_info(uint32_t n);
void bench_disabled_span(uint32_t n);

__attribute__((noinline)) void bench_disabled_info(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    TL_INFO("disabled static message");
    BENCH_KEEP();
  }
}

__attribute__((noinline)) void bench_disabled_span(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    TL_SPAN_SCOPE("disabled_span");
    BENCH_KEEP();
  }
}
