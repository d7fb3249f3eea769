/* tl_bench_tp.c - instantiates the tl_bench tracepoint provider (the probes
 * and the tracepoint definitions) inside bench_lttng, as LTTng-UST wants it:
 * in one translation unit of its own. */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "tl_bench_tp.h"
