/* test_disabled.c - with -DTL_DISABLE every macro compiles to nothing (the
 * arguments are still type-checked): nothing is recorded, and the arguments
 * are not evaluated. */
#include "collector.h"
#include "test.h"
#include "tracelake/tracelake.h"

#ifndef TL_DISABLE
#error "this file must be compiled with -DTL_DISABLE"
#endif

static int evaluated;
static int side_effect(void) {
  return ++evaluated;
}

static void function_with_span(void) {
  TL_SPAN_FN();
}

TEST(disabled_macros_record_nothing) {
  collector c;
  collector_init(&c, false);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.sink = collector_sink;
  cfg.sink_ctx = &c;
  CHECK_EQ(tl_init(&cfg), 0);
  for (int i = 0; i < 100; i++) {
    TL_INFO("static");
    TL_ERROR("formatted %d %s", side_effect(), "x");
    TL_IMETRIC("m", "count", side_effect());
    TL_FMETRIC("f", "ratio", 0.5 * side_effect());
    TL_LOG_STR(TL_LEVEL_INFO, "verbatim", (size_t)side_effect());
    TL_SPAN_SCOPE("scope");
    function_with_span();
    tl_async_span s = TL_ASYNC_BEGIN("async", TL_ASYNC_ROOT);
    tl_async_span child = TL_ASYNC_BEGIN("child", s);
    TL_ASYNC_END(child);
    TL_ASYNC_END(s);
  }
  tl_shutdown();
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.events_recorded, 0);
  CHECK_U64(c.events, 0);
  CHECK_EQ(evaluated, 0);
}

TL_TEST_MAIN()
