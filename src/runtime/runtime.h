/* runtime.h - internals shared by the recording path, the flusher and the
 * sinks. Nothing here is installed. See docs/runtime.md for the design. */
#ifndef TL_RUNTIME_H
#define TL_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "../common/common.h"
#include "../wire/wire.h"

/* Global lifecycle state, read on the slow path only. */
enum { TL_ST_OFF = 0, TL_ST_RUNNING = 1, TL_ST_STOPPING = 2, TL_ST_DOWN = 3 };

/* The three streams of a thread. */
enum { TL_STREAM_LOG = 0, TL_STREAM_METRICS = 1, TL_STREAM_CPU = 2 };
#define TL_NSTREAMS 3

struct tl_tstream;

/* A fixed-size event buffer from the pool. The producer appends records and
 * publishes `head` with a release store; the flusher consumes [tail, head)
 * with an acquire load. Only the flusher returns a buffer to the pool. */
typedef struct tl_tbuf {
  _Atomic uint32_t head;
  uint32_t tail; /* flusher only */
  uint64_t seq;  /* position in its stream's buffer sequence */
  struct tl_tstream *stream;
  struct tl_tbuf *next;       /* full-queue link */
  _Atomic uint32_t next_free; /* free-stack link: index + 1, 0 = end */
  uint32_t index;
  uint8_t data[] __attribute__((aligned(8)));
} tl_tbuf;

typedef struct tl_thread tl_thread;

typedef struct tl_tstream {
  /* Producer side: touched on every event. */
  uint8_t *data;             /* current buffer's data, NULL before the first */
  uint32_t pos;              /* producer's write offset == buf->head */
  _Atomic uint32_t limit;    /* usable bytes; 0 forces the slow path */
  _Atomic(tl_tbuf *) buf;    /* current buffer (the flusher reads it) */
  _Atomic uint64_t recorded; /* owner-written counters (relaxed) */
  _Atomic uint64_t dropped[TL_DROP__COUNT];
  _Atomic uint64_t next_seq; /* seq of the newest buffer taken */
  /* Flusher side. */
  _Atomic uint64_t flushed; /* events encoded into blocks */
  uint64_t done_seq;        /* last handed-off buffer fully processed */
  uint64_t last_flush_ticks;
  bool announced;
  bool has_id;
  uint8_t stream_id[16];
  int kind; /* TL_STREAM_* */
  tl_thread *thread;
} tl_tstream;

struct tl_thread {
  tl_tstream s[TL_NSTREAMS];
  uint64_t next_span_id, span_id_end; /* owner only */
  int tid;
  char name[32];      /* flusher only: read from /proc when announcing */
  char exit_name[32]; /* written by the thread as it exits */
  _Atomic int exit_name_set;
  _Atomic int exited;
  tl_thread *_Atomic next; /* registry link */
};

/* Pushes a message to the configured sink; called by the flusher thread. */
typedef struct tl_sink tl_sink;
struct tl_sink {
  /* Returns 0 when accepted (delivered, queued or spilled). */
  int (*send)(tl_sink *s, int kind, const uint8_t *p, size_t n);
  /* Optional: makes the blocks accepted since the last call durable (see
   * tl_sink_commit_fn); NULL when `send` already did. */
  int (*commit)(tl_sink *s);
  /* Delivers or spills what is queued (bounded in time), then frees. */
  void (*close)(tl_sink *s);
};

/* `fsync_files`: fsync each file before its rename. */
int tl__sink_spool_open(tl_sink **out, const char *dir, const uint8_t pid[16],
                        bool fsync_files);
/* `drain_ms`: how long close may wait for the server before spilling. */
int tl__sink_http_open(tl_sink **out, const char *url, const char *api_key,
                       const char *spill_dir, const uint8_t pid[16],
                       unsigned drain_ms);
int tl__sink_callback_open(tl_sink **out, tl_sink_fn fn,
                           tl_sink_commit_fn commit, void *ctx);
int tl__sink_null_open(tl_sink **out);

/* Counters kept by the sinks and the runtime, read by tl_stats_get. */
typedef struct tl_global_counters {
  _Atomic uint64_t before_init;
  _Atomic uint64_t blocks, bytes, blocks_failed, blocks_spilled, blocks_resent;
  _Atomic uint64_t threads;
  /* Totals of threads already retired from the registry. */
  _Atomic uint64_t retired_recorded, retired_flushed;
  _Atomic uint64_t retired_dropped[TL_DROP__COUNT];
} tl_global_counters;
extern tl_global_counters tl__counters;

/* Process information (procinfo.c). Strings are owned by the struct. */
typedef struct tl_procinfo {
  tl_wire_process msg; /* slices point into the strings below */
  char *strs[6];
  char *prop_buf;
} tl_procinfo;
int tl__procinfo_collect(tl_procinfo *pi, const char *exe_override,
                         const char *props_cfg, const char *props_env,
                         uint64_t tsc_frequency);
void tl__procinfo_free(tl_procinfo *pi);

/* The runtime singleton. */
typedef struct tl_runtime {
  _Atomic int state;
  tl_config cfg;         /* resolved; strings owned */
  bool spool_fsync;      /* TRACELAKE_SPOOL_FSYNC=1 */
  uint32_t buf_data_cap; /* usable bytes per buffer */
  size_t buf_stride;
  uint32_t nbufs;
  uint8_t *arena;
  _Atomic uint64_t free_top; /* tag << 32 | (index + 1) */
  _Atomic uint32_t fresh;    /* buffers never used yet */
  _Atomic(tl_tbuf *) full;   /* MPSC stack of handed-off buffers */
  tl_thread *_Atomic threads;
  pthread_mutex_t registry_mu; /* flusher unlink vs. stats iteration */
  _Atomic uint64_t span_ids;
  pthread_key_t key;
  tl_procinfo proc;
  tl_clock_ref clock;
  uint64_t period_ticks;
  tl_sink *sink;
  pthread_t flusher;
  pthread_mutex_t mu; /* guards the flush request fields below */
  pthread_cond_t wake, done;
  uint64_t flush_req, flush_done;
  bool stop;
} tl_runtime;
extern tl_runtime tl__rt;

tl_tbuf *tl__pool_pop(void);
void tl__pool_push(tl_tbuf *b);
void *tl__flusher_main(void *arg);

#endif
