/* tracelake.h - the libtracelake instrumentation API.
 *
 * Applications record logs, metrics, thread spans and async spans with the
 * TL_* macros; each event costs a few nanoseconds on the calling thread and is
 * shipped by a background flusher to a sink (spool directory, HTTP server or an
 * in-process callback). See README.md for a tour and docs/ for the details.
 */
#ifndef TRACELAKE_TRACELAKE_H
#define TRACELAKE_TRACELAKE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TL_BUILDING_LIBRARY)
#define TL_EXTERN __attribute__((visibility("default")))
#else
#define TL_EXTERN
#endif

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 1
#define TL_VERSION_PATCH 0
#define TL_VERSION_STRING "0.1.0"

#define TL_LIKELY(x) __builtin_expect(!!(x), 1)
#define TL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- Errors ------------------------------------------------------------
 * Every function that can fail returns 0 or one of these negative codes.
 * XX(name, value, message) is the single source of truth for the enum,
 * tl_strerror() and tl_errname(). */
#define TL_ERRNO_MAP(XX)                                                       \
  XX(INVAL, -1, "invalid argument")                                            \
  XX(NOMEM, -2, "out of memory")                                               \
  XX(STATE, -3, "operation not allowed in the current state")                  \
  XX(IO, -4, "input/output error")                                             \
  XX(TRUNCATED, -5, "input is truncated")                                      \
  XX(MALFORMED, -6, "input is malformed")                                      \
  XX(CHECKSUM, -7, "checksum mismatch")                                        \
  XX(VERSION, -8, "unsupported format version")                                \
  XX(TOOBIG, -9, "value exceeds a size limit")                                 \
  XX(NOTFOUND, -10, "not found")                                               \
  XX(CONFLICT, -11, "conflicting data for an existing id")                     \
  XX(UNAVAILABLE, -12, "service unavailable")                                  \
  XX(UNAUTHORIZED, -13, "missing or wrong credentials")                        \
  XX(SYS, -14, "system call failed")                                           \
  XX(CANCELED, -15, "operation canceled")

enum {
#define TL__ERR_ENUM(name, value, msg) TL_E##name = (value),
  TL_ERRNO_MAP(TL__ERR_ENUM)
#undef TL__ERR_ENUM
};

/* Returns a static English description of an error code (never NULL). */
TL_EXTERN const char *tl_strerror(int err);
/* Returns the symbolic name of an error code, e.g. "TL_ECHECKSUM". */
TL_EXTERN const char *tl_errname(int err);

/* ---- Levels -------------------------------------------------------------- */
enum {
  TL_LEVEL_FATAL = 1,
  TL_LEVEL_ERROR = 2,
  TL_LEVEL_WARN = 3,
  TL_LEVEL_INFO = 4,
  TL_LEVEL_DEBUG = 5,
  TL_LEVEL_TRACE = 6
};

/* ---- Configuration ------------------------------------------------------- */

/* The kinds of message a sink receives, in the wire format of
 * docs/wire-format.md. A process message precedes its streams, a stream
 * message precedes that stream's blocks. */
enum { TL_MSG_PROCESS = 1, TL_MSG_STREAM = 2, TL_MSG_BLOCK = 3 };

/* An in-process sink. Called from the flusher thread only, one message at a
 * time. `p` is borrowed for the duration of the call. Returns 0 when the
 * message was accepted, a negative TL_E* code otherwise (the block is then
 * counted in tl_stats.blocks_failed). */
typedef int (*tl_sink_fn)(void *ctx, int kind, const uint8_t *p, size_t n);

/* Optional companion of an in-process sink that stores in groups (a group
 * commit). Called from the flusher thread after each round in which the
 * sink accepted blocks, before a tl_flush waiting on that round returns.
 * The sink may accept blocks before they are durable and make the round's
 * blocks durable here at once. Returns 0, or a negative TL_E* code: then
 * every block the sink accepted since the last call is counted in
 * tl_stats.blocks_failed and its events as dropped (TL_DROP_SINK). */
typedef int (*tl_sink_commit_fn)(void *ctx);

#define TL_CONFIG_NO_ENV 0x1u /* ignore TRACELAKE_* environment variables */

/* Zero-initialize, then set what you need; zero fields take defaults. Unless
 * TL_CONFIG_NO_ENV is set, environment variables override the fields:
 * TRACELAKE_URL, TRACELAKE_API_KEY, TRACELAKE_SPOOL, TRACELAKE_LEVEL
 * (fatal|error|warn|info|debug|trace or 1..6), TRACELAKE_PROPERTIES
 * ("k=v,k2=v2", appended to `properties`), TRACELAKE_MEMORY_LIMIT (bytes,
 * k/m/g suffixes), TRACELAKE_FLUSH_PERIOD_MS, TRACELAKE_HTTP_DRAIN_MS and
 * TRACELAKE_SPOOL_FSYNC=1 (fsync spool files). All strings are copied. */
typedef struct tl_config {
  unsigned flags;           /* TL_CONFIG_* */
  int level;                /* most verbose level recorded; default INFO */
  size_t memory_limit;      /* bytes for all event buffers; default 64 MiB */
  size_t buffer_size;       /* bytes per thread buffer (= max block); 128 KiB */
  unsigned flush_period_ms; /* flush buffers older than this; default 1000 */
  const char *spool_dir;    /* spool sink directory; also the HTTP spill dir */
  const char *url;          /* HTTP sink base URL, e.g. http://127.0.0.1:9000 */
  const char *api_key;      /* bearer token for the HTTP sink */
  unsigned http_drain_ms;   /* tl_shutdown waits this long for the HTTP server
                               before spilling what is left; default 5000 */
  const char *properties;   /* process properties "k=v,k2=v2" */
  const char *exe;          /* overrides the executable path reported */
  tl_sink_fn sink; /* in-process sink: takes precedence over url/spool */
  void *sink_ctx;
  tl_sink_commit_fn sink_commit; /* optional, with `sink` */
  int flusher_nice; /* 0..19: the flusher thread's nice value (Linux: per
                       thread); 0 leaves it as the process's. A higher
                       value lets the recording threads run first when
                       the CPUs are busy (the flusher then falls behind,
                       and a full memory limit counts drops) */
} tl_config;

/* Starts the runtime: calibrates the TSC (about 10 ms), gathers process
 * information, starts the flusher thread. `cfg` may be NULL (defaults) and is
 * not retained. Returns 0, TL_ESTATE if already initialized (tl_init may be
 * called once per process), TL_EINVAL for a bad value, TL_ENOMEM, TL_ESYS. */
TL_EXTERN int tl_init(const tl_config *cfg);

/* Synchronous flush: every event recorded (by any thread) before the call has
 * been handed to the sink (and committed, with tl_config.sink_commit) when it
 * returns. Thread-safe; no-op if not running.
 * Must not be called from the in-process sink callback. */
TL_EXTERN void tl_flush(void);

/* Flushes, stops the flusher, and lets the HTTP sink deliver or spill what it
 * holds. Events recorded afterwards are counted as dropped (after_shutdown).
 * Safe to call twice and without tl_init. */
TL_EXTERN void tl_shutdown(void);

/* Drop reasons, indexes into tl_stats.dropped. */
enum {
  TL_DROP_BEFORE_INIT = 0, /* recorded before tl_init */
  TL_DROP_AFTER_SHUTDOWN,  /* recorded after (or racing with) tl_shutdown */
  TL_DROP_NO_MEMORY,       /* the memory limit was reached */
  TL_DROP_TOO_LARGE,       /* one event larger than a buffer */
  TL_DROP_SINK,            /* in a block the sink failed to deliver */
  TL_DROP__COUNT
};

typedef struct tl_stats {
  uint64_t events_recorded; /* accepted into a buffer */
  uint64_t dropped[TL_DROP__COUNT];
  uint64_t blocks;         /* blocks encoded */
  uint64_t bytes;          /* encoded bytes of those blocks */
  uint64_t blocks_failed;  /* blocks the sink could not deliver nor spill */
  uint64_t blocks_spilled; /* blocks written to the spill directory */
  uint64_t blocks_resent;  /* spilled blocks later delivered */
  uint64_t threads;        /* threads registered */
} tl_stats;

/* Fills *out with counters summed over all threads. Thread-safe. */
TL_EXTERN void tl_stats_get(tl_stats *out);

/* Returns the static name of a drop reason ("no_memory", ...). */
TL_EXTERN const char *tl_drop_reason_name(int reason);

/* The process id (16 bytes, UUID v4) of this process once tl_init has run. */
TL_EXTERN int tl_process_id(uint8_t out[16]);

/* The frequency of the ticks in events (the time stamp counter measured at
 * tl_init), in ticks per second; 0 before tl_init. For converting durations
 * measured with the same clock as the events (unit "ticks"). */
TL_EXTERN uint64_t tl_ticks_per_second(void);

/* ---- Call sites (internal to the macros) ---------------------------------
 * One static const object per macro use; only its address is recorded. */
enum {
  TL_CS_LOG = 1,
  TL_CS_IMETRIC = 2,
  TL_CS_FMETRIC = 3,
  TL_CS_SPAN = 4,
  TL_CS_ASYNC = 5
};

typedef struct tl_callsite {
  uint8_t kind;  /* TL_CS_* */
  uint8_t level; /* logs: TL_LEVEL_* */
  uint16_t reserved;
  uint32_t line;
  const char *name;   /* log: message/format; metric/span: name */
  const char *unit;   /* metrics only */
  const char *target; /* TL_TARGET, or NULL: derived from file */
  const char *file;
} __attribute__((aligned(8))) tl_callsite;

/* An async span handle: a value, copy it freely across threads. */
typedef struct tl_async_span {
  uint64_t id;     /* process-unique, never 0 for a begun span */
  uint64_t parent; /* 0 for children of TL_ASYNC_ROOT */
  uint32_t depth;  /* 0 for children of TL_ASYNC_ROOT */
  uint32_t reserved;
  const tl_callsite *cs;
} tl_async_span;

#define TL_ASYNC_ROOT ((tl_async_span){0, 0, 0, 0, 0})

/* Recording entry points used by the macros. Not for direct use. */
TL_EXTERN extern int tl__max_level;
TL_EXTERN void tl__log(const tl_callsite *cs);
TL_EXTERN void tl__logf(const tl_callsite *cs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
TL_EXTERN void tl__logs(const tl_callsite *cs, const char *msg, size_t len);
TL_EXTERN void tl__imetric(const tl_callsite *cs, uint64_t v);
TL_EXTERN void tl__fmetric(const tl_callsite *cs, double v);
TL_EXTERN void tl__span_begin(const tl_callsite *cs);
TL_EXTERN void tl__span_end(const tl_callsite **cs);
TL_EXTERN tl_async_span tl__async_begin(const tl_callsite *cs,
                                        tl_async_span parent);
TL_EXTERN void tl__async_end(tl_async_span s);

#ifdef TL_TARGET
#define TL__TARGET TL_TARGET
#else
#define TL__TARGET ((const char *)0)
#endif

#define TL__CAT2(a, b) a##b
#define TL__CAT(a, b) TL__CAT2(a, b)
#define TL__UNIQ(p) TL__CAT(p, __LINE__)

#define TL__CS(kind_, level_, name_, unit_)                                    \
  static const tl_callsite TL__UNIQ(tl__cs_) = {                               \
      (kind_), (level_), 0, __LINE__, (name_), (unit_), TL__TARGET, __FILE__}

/* Dispatch on "one argument" vs "more than one" (up to 32). */
#define TL__ARG33(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, \
                  _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26,  \
                  _27, _28, _29, _30, _31, _32, _33, ...)                      \
  _33
#define TL__NARGS_KIND(...)                                                    \
  TL__ARG33(__VA_ARGS__, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, \
            N, N, N, N, N, N, N, N, N, N, N, N, N, 1, 0)

/* Compile-time format checking without evaluation. */
static inline __attribute__((format(printf, 1, 2), unused)) int
tl__fmt_check(const char *fmt, ...) {
  (void)fmt;
  return 0;
}

#ifndef TL_DISABLE

#define TL__LOG_1(lvl, msg)                                                    \
  do {                                                                         \
    if ((lvl) <= __atomic_load_n(&tl__max_level, __ATOMIC_RELAXED)) {          \
      TL__CS(TL_CS_LOG, (lvl), "" msg "", 0);                                  \
      tl__log(&TL__UNIQ(tl__cs_));                                             \
    }                                                                          \
  } while (0)
#define TL__LOG_N(lvl, fmt, ...)                                               \
  do {                                                                         \
    if ((lvl) <= __atomic_load_n(&tl__max_level, __ATOMIC_RELAXED)) {          \
      TL__CS(TL_CS_LOG, (lvl), "" fmt "", 0);                                  \
      tl__logf(&TL__UNIQ(tl__cs_), fmt, __VA_ARGS__);                          \
    }                                                                          \
  } while (0)
#define TL_LOG_STR(lvl, msg, len)                                              \
  do {                                                                         \
    if ((lvl) <= __atomic_load_n(&tl__max_level, __ATOMIC_RELAXED)) {          \
      TL__CS(TL_CS_LOG, (lvl), "%s", 0);                                       \
      tl__logs(&TL__UNIQ(tl__cs_), (msg), (len));                              \
    }                                                                          \
  } while (0)
#define TL_IMETRIC(name, unit, value)                                          \
  do {                                                                         \
    TL__CS(TL_CS_IMETRIC, 0, "" name "", "" unit "");                          \
    tl__imetric(&TL__UNIQ(tl__cs_), (uint64_t)(value));                        \
  } while (0)
#define TL_FMETRIC(name, unit, value)                                          \
  do {                                                                         \
    TL__CS(TL_CS_FMETRIC, 0, "" name "", "" unit "");                          \
    tl__fmetric(&TL__UNIQ(tl__cs_), (double)(value));                          \
  } while (0)

#define TL__SPAN_SCOPE(name_)                                                  \
  TL__CS(TL_CS_SPAN, 0, name_, 0);                                             \
  const tl_callsite *TL__UNIQ(tl__span_)                                       \
      __attribute__((cleanup(tl__span_end), unused)) = &TL__UNIQ(tl__cs_);     \
  tl__span_begin(&TL__UNIQ(tl__cs_))
#define TL_SPAN_SCOPE(name) TL__SPAN_SCOPE("" name "")
#define TL_SPAN_FN() TL__SPAN_SCOPE(__func__)

#define TL_ASYNC_BEGIN(name, parent)                                           \
  __extension__({                                                              \
    TL__CS(TL_CS_ASYNC, 0, "" name "", 0);                                     \
    tl__async_begin(&TL__UNIQ(tl__cs_), (parent));                             \
  })
#define TL_ASYNC_END(span) tl__async_end(span)

#else /* TL_DISABLE: nothing is recorded, arguments are still type-checked */

#define TL__LOG_1(lvl, msg) ((void)sizeof("" msg ""))
#define TL__LOG_N(lvl, fmt, ...)                                               \
  ((void)sizeof(tl__fmt_check("" fmt "", __VA_ARGS__)))
#define TL_LOG_STR(lvl, msg, len)                                              \
  ((void)sizeof(lvl), (void)sizeof(*(msg)), (void)sizeof((size_t)(len)))
#define TL_IMETRIC(name, unit, value)                                          \
  ((void)sizeof("" name "" unit ""), (void)sizeof((uint64_t)(value)))
#define TL_FMETRIC(name, unit, value)                                          \
  ((void)sizeof("" name "" unit ""), (void)sizeof((double)(value)))
#define TL_SPAN_SCOPE(name) ((void)sizeof("" name ""))
#define TL_SPAN_FN() ((void)0)
#define TL_ASYNC_BEGIN(name, parent)                                           \
  ((void)sizeof("" name ""), (void)sizeof((parent).id), TL_ASYNC_ROOT)
#define TL_ASYNC_END(span) ((void)sizeof((span).id))

#endif

/* A message without arguments is recorded as is, without formatting (a '%'
 * in it is kept literally); with arguments it is printf-formatted. */
#define TL__LOG(lvl, ...)                                                      \
  TL__CAT(TL__LOG_, TL__NARGS_KIND(__VA_ARGS__))(lvl, __VA_ARGS__)

#define TL_FATAL(...) TL__LOG(TL_LEVEL_FATAL, __VA_ARGS__)
#define TL_ERROR(...) TL__LOG(TL_LEVEL_ERROR, __VA_ARGS__)
#define TL_WARN(...) TL__LOG(TL_LEVEL_WARN, __VA_ARGS__)
#define TL_INFO(...) TL__LOG(TL_LEVEL_INFO, __VA_ARGS__)
#define TL_DEBUG(...) TL__LOG(TL_LEVEL_DEBUG, __VA_ARGS__)
#define TL_TRACE(...) TL__LOG(TL_LEVEL_TRACE, __VA_ARGS__)
/* TL_LOG_STR(TL_LEVEL_INFO, msg, len): a message built at run time, `len`
 * bytes of `msg` recorded verbatim (no formatting, no NUL needed; at most
 * 8 KiB kept), e.g. a line assembled by the caller. */

#ifdef __cplusplus
}
#endif
#endif /* TRACELAKE_TRACELAKE_H */
