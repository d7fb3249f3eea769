/* tl_bench_tp.h - the LTTng-UST tracepoint provider of bench_lttng: one
 * event per kind of record bench_record times with libtracelake, so that the
 * two tracers are compared on the same workload. Read several times by
 * <lttng/tracepoint-event.h>, hence the unusual include guard. */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER tl_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./tl_bench_tp.h"

#if !defined(TL_BENCH_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define TL_BENCH_TP_H

#include <stdint.h>

#include <lttng/tracepoint.h>

/* A static message: the event itself is the message (no payload), like a
 * TL_INFO("literal") record (call site + timestamp). */
LTTNG_UST_TRACEPOINT_EVENT(tl_bench, static_msg, LTTNG_UST_TP_ARGS(),
                           LTTNG_UST_TP_FIELDS())

LTTNG_UST_TRACEPOINT_EVENT(
    tl_bench, int_metric, LTTNG_UST_TP_ARGS(uint64_t, value),
    LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(uint64_t, value, value)))

LTTNG_UST_TRACEPOINT_EVENT(
    tl_bench, float_metric, LTTNG_UST_TP_ARGS(double, value),
    LTTNG_UST_TP_FIELDS(lttng_ust_field_float(double, value, value)))

LTTNG_UST_TRACEPOINT_EVENT(tl_bench, span_begin, LTTNG_UST_TP_ARGS(),
                           LTTNG_UST_TP_FIELDS())

LTTNG_UST_TRACEPOINT_EVENT(tl_bench, span_end, LTTNG_UST_TP_ARGS(),
                           LTTNG_UST_TP_FIELDS())

/* Never enabled by bench/run-lttng.sh: the cost of a tracepoint compiled in
 * but not enabled in the session (LTTng's equivalent of a filtered site). */
LTTNG_UST_TRACEPOINT_EVENT(tl_bench, not_enabled, LTTNG_UST_TP_ARGS(),
                           LTTNG_UST_TP_FIELDS())

#endif /* TL_BENCH_TP_H */

#include <lttng/tracepoint-event.h>
