/* runtime.c - the runtime's lifecycle (init, flush, shutdown), the buffer
 * pool and statistics. The recording path is in record.c, the background
 * work in flusher.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>

#include "runtime.h"

tl_runtime tl__rt;
tl_global_counters tl__counters;
static pthread_mutex_t lifecycle_mu = PTHREAD_MUTEX_INITIALIZER;

void tl__thread_exit(void *arg);

/* ---- Buffer pool ---------------------------------------------------------
 * Buffers live in one arena reserved at init (pages are touched, hence
 * committed, only when a buffer is first used). Free buffers form a
 * lock-free stack whose top carries an ABA tag. */

static tl_tbuf *buf_at(uint32_t i) {
  return (tl_tbuf *)(void *)(tl__rt.arena + (size_t)i * tl__rt.buf_stride);
}

tl_tbuf *tl__pool_pop(void) {
  uint64_t top = atomic_load_explicit(&tl__rt.free_top, memory_order_acquire);
  while ((uint32_t)top) {
    tl_tbuf *b = buf_at((uint32_t)top - 1);
    uint64_t next = ((top >> 32) + 1) << 32 |
                    atomic_load_explicit(&b->next_free, memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&tl__rt.free_top, &top, next,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
      return b;
  }
  uint32_t f = atomic_load_explicit(&tl__rt.fresh, memory_order_relaxed);
  while (f < tl__rt.nbufs) {
    if (atomic_compare_exchange_weak_explicit(&tl__rt.fresh, &f, f + 1,
                                              memory_order_relaxed,
                                              memory_order_relaxed)) {
      tl_tbuf *b = buf_at(f);
      b->index = f;
      return b;
    }
  }
  return NULL;
}

void tl__pool_push(tl_tbuf *b) {
  uint64_t top = atomic_load_explicit(&tl__rt.free_top, memory_order_relaxed);
  uint64_t next;
  do {
    atomic_store_explicit(&b->next_free, (uint32_t)top, memory_order_relaxed);
    next = ((top >> 32) + 1) << 32 | (b->index + 1);
  } while (!atomic_compare_exchange_weak_explicit(&tl__rt.free_top, &top, next,
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

/* ---- Configuration --------------------------------------------------------
 */

static int parse_level(const char *s, int *out) {
  static const char *names[] = {"fatal", "error", "warn",
                                "info",  "debug", "trace"};
  for (int i = 0; i < 6; i++)
    if (!strcasecmp(s, names[i])) {
      *out = i + 1;
      return 0;
    }
  if (s[0] >= '1' && s[0] <= '6' && !s[1]) {
    *out = s[0] - '0';
    return 0;
  }
  if (!strcasecmp(s, "warning")) {
    *out = TL_LEVEL_WARN;
    return 0;
  }
  return TL_EINVAL;
}

static int parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s)
    return TL_EINVAL;
  unsigned long long mul = 1;
  switch (*end) {
  case 'k':
  case 'K':
    mul = 1ull << 10;
    end++;
    break;
  case 'm':
  case 'M':
    mul = 1ull << 20;
    end++;
    break;
  case 'g':
  case 'G':
    mul = 1ull << 30;
    end++;
    break;
  }
  if (*end == 'i' || *end == 'b' || *end == 'B')
    end++;
  if (*end && !(*end == 'B' && !end[1]))
    return TL_EINVAL;
  if (v > SIZE_MAX / mul)
    return TL_EINVAL;
  *out = (size_t)(v * mul);
  return 0;
}

static const char *env(const tl_config *c, const char *name) {
  if (c->flags & TL_CONFIG_NO_ENV)
    return NULL;
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static void config_free(tl_config *c) {
  free((char *)c->spool_dir);
  free((char *)c->url);
  free((char *)c->api_key);
  free((char *)c->properties);
  free((char *)c->exe);
  memset(c, 0, sizeof *c);
}

/* Resolves defaults and environment overrides into `out` (strings owned),
 * and the sink settings that only the environment sets into `rt`. */
static int config_resolve(tl_runtime *rt, const tl_config *in, tl_config *out,
                          const char **props_env) {
  tl_config zero;
  memset(&zero, 0, sizeof zero);
  const tl_config *c = in ? in : &zero;
  *out = *c;
  out->spool_dir = out->url = out->api_key = out->properties = out->exe = NULL;
  if (!out->level)
    out->level = TL_LEVEL_INFO;
  if (!out->memory_limit)
    out->memory_limit = 64u << 20;
  if (!out->buffer_size)
    out->buffer_size = 128u << 10;
  if (!out->flush_period_ms)
    out->flush_period_ms = 1000;
  const char *v;
  if ((v = env(c, "TRACELAKE_LEVEL")) && parse_level(v, &out->level))
    return TL_EINVAL;
  if ((v = env(c, "TRACELAKE_MEMORY_LIMIT")) &&
      parse_size(v, &out->memory_limit))
    return TL_EINVAL;
  if ((v = env(c, "TRACELAKE_FLUSH_PERIOD_MS"))) {
    size_t ms;
    if (parse_size(v, &ms) || ms == 0 || ms > 3600000)
      return TL_EINVAL;
    out->flush_period_ms = (unsigned)ms;
  }
  if (!out->http_drain_ms)
    out->http_drain_ms = 5000;
  if ((v = env(c, "TRACELAKE_HTTP_DRAIN_MS"))) {
    size_t ms;
    if (parse_size(v, &ms) || ms > 3600000)
      return TL_EINVAL;
    out->http_drain_ms = (unsigned)ms;
  }
  v = env(c, "TRACELAKE_SPOOL_FSYNC");
  rt->spool_fsync = v && strcmp(v, "0") != 0;
  if (out->level < TL_LEVEL_FATAL || out->level > TL_LEVEL_TRACE)
    return TL_EINVAL;
  if (out->buffer_size < 4096 || out->buffer_size > (16u << 20))
    return TL_EINVAL;
  if (out->memory_limit / out->buffer_size < 2)
    return TL_EINVAL;
  if (out->flusher_nice < 0 || out->flusher_nice > 19)
    return TL_EINVAL;
  const char *url = env(c, "TRACELAKE_URL");
  const char *key = env(c, "TRACELAKE_API_KEY");
  const char *spool = env(c, "TRACELAKE_SPOOL");
  out->url = dup_or_null(url ? url : c->url);
  out->api_key = dup_or_null(key ? key : c->api_key);
  out->spool_dir = dup_or_null(spool ? spool : c->spool_dir);
  out->properties = dup_or_null(c->properties);
  out->exe = dup_or_null(c->exe);
  *props_env = env(c, "TRACELAKE_PROPERTIES");
  return 0;
}

/* ---- Lifecycle ------------------------------------------------------------
 */

static int open_sink(tl_runtime *rt) {
  const tl_config *c = &rt->cfg;
  const uint8_t *pid = rt->proc.msg.process_id;
  if (c->sink)
    return tl__sink_callback_open(&rt->sink, c->sink, c->sink_commit,
                                  c->sink_ctx);
  if (c->url) {
    char spill[4096];
    if (c->spool_dir)
      snprintf(spill, sizeof spill, "%s", c->spool_dir);
    else
      snprintf(spill, sizeof spill, "%s/tracelake-spool",
               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return tl__sink_http_open(&rt->sink, c->url, c->api_key, spill, pid,
                              c->http_drain_ms);
  }
  if (c->spool_dir)
    return tl__sink_spool_open(&rt->sink, c->spool_dir, pid, rt->spool_fsync);
  return tl__sink_null_open(&rt->sink);
}

/* A child forked without exec has no flusher: recording there would fill the
 * buffers copied from the parent and never deliver them. The child's events
 * are counted as dropped (after_shutdown) instead; its parent's data is the
 * parent's to deliver. Locks that another thread held at fork time are reset.
 */
static void atfork_child(void) {
  tl_runtime *rt = &tl__rt;
  if (atomic_load(&rt->state) == TL_ST_OFF)
    return;
  pthread_mutex_init(&rt->registry_mu, NULL);
  pthread_mutex_init(&rt->mu, NULL);
  tl_cond_init(&rt->wake);
  tl_cond_init(&rt->done);
  atomic_store(&rt->state, TL_ST_DOWN);
  for (tl_thread *t = atomic_load(&rt->threads); t; t = atomic_load(&t->next))
    for (int k = 0; k < TL_NSTREAMS; k++) {
      atomic_store(&t->s[k].limit, 0);
      /* What the parent had recorded is not this process's to account. */
      atomic_store(&t->s[k].recorded, 0);
      atomic_store(&t->s[k].flushed, 0);
      for (int r = 0; r < TL_DROP__COUNT; r++)
        atomic_store(&t->s[k].dropped[r], 0);
    }
  memset(&tl__counters, 0, sizeof tl__counters);
}

TL_EXTERN int tl_init(const tl_config *cfg) {
  tl_runtime *rt = &tl__rt;
  int rc = 0;
  pthread_mutex_lock(&lifecycle_mu);
  if (atomic_load(&rt->state) != TL_ST_OFF) {
    rc = TL_ESTATE;
    goto out;
  }
  const char *props_env = NULL;
  if ((rc = config_resolve(rt, cfg, &rt->cfg, &props_env)))
    goto fail_config;

  rt->buf_stride = (rt->cfg.buffer_size + 63) & ~(size_t)63;
  rt->buf_data_cap = (uint32_t)(rt->buf_stride - sizeof(tl_tbuf));
  rt->nbufs = (uint32_t)(rt->cfg.memory_limit / rt->buf_stride);
  rt->arena =
      mmap(NULL, (size_t)rt->nbufs * rt->buf_stride, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (rt->arena == MAP_FAILED) {
    rt->arena = NULL;
    rc = TL_ENOMEM;
    goto fail_config;
  }
  atomic_store(&rt->free_top, 0);
  atomic_store(&rt->fresh, 0);

  uint64_t freq = tl_ticks_calibrate(10);
  if ((rc = tl__procinfo_collect(&rt->proc, rt->cfg.exe, rt->cfg.properties,
                                 props_env, freq)))
    goto fail_arena;
  rt->clock.start_ticks = rt->proc.msg.start_ticks;
  rt->clock.start_time = rt->proc.msg.start_time;
  rt->clock.tsc_frequency = freq;
  rt->period_ticks =
      (uint64_t)((__int128)freq * rt->cfg.flush_period_ms / 1000);

  if ((rc = open_sink(rt)))
    goto fail_proc;
  if (pthread_key_create(&rt->key, tl__thread_exit)) {
    rc = TL_ESYS;
    goto fail_sink;
  }
  pthread_mutex_init(&rt->registry_mu, NULL);
  pthread_mutex_init(&rt->mu, NULL);
  tl_cond_init(&rt->wake);
  tl_cond_init(&rt->done);
  pthread_atfork(NULL, NULL, atfork_child);
  rt->flush_req = rt->flush_done = 0;
  rt->stop = false;
  __atomic_store_n(&tl__max_level, rt->cfg.level, __ATOMIC_RELAXED);
  atomic_store_explicit(&rt->state, TL_ST_RUNNING, memory_order_release);
  if (pthread_create(&rt->flusher, NULL, tl__flusher_main, NULL)) {
    atomic_store(&rt->state, TL_ST_OFF);
    __atomic_store_n(&tl__max_level, TL_LEVEL_TRACE, __ATOMIC_RELAXED);
    rc = TL_ESYS;
    pthread_key_delete(rt->key);
    goto fail_sink;
  }
  goto out;

fail_sink:
  rt->sink->close(rt->sink);
  rt->sink = NULL;
fail_proc:
  tl__procinfo_free(&rt->proc);
fail_arena:
  munmap(rt->arena, (size_t)rt->nbufs * rt->buf_stride);
  rt->arena = NULL;
fail_config:
  config_free(&rt->cfg);
out:
  pthread_mutex_unlock(&lifecycle_mu);
  return rc;
}

/* Asks the flusher for a forced round and waits for it to complete. */
static void flush_round(tl_runtime *rt, bool stop) {
  pthread_mutex_lock(&rt->mu);
  uint64_t my = ++rt->flush_req;
  if (stop)
    rt->stop = true;
  pthread_cond_signal(&rt->wake);
  while (rt->flush_done < my)
    pthread_cond_wait(&rt->done, &rt->mu);
  pthread_mutex_unlock(&rt->mu);
}

TL_EXTERN void tl_flush(void) {
  tl_runtime *rt = &tl__rt;
  if (atomic_load_explicit(&rt->state, memory_order_acquire) != TL_ST_RUNNING)
    return;
  if (pthread_equal(pthread_self(), rt->flusher))
    return; /* called from a sink callback: the flusher is busy with us */
  flush_round(rt, false);
}

TL_EXTERN void tl_shutdown(void) {
  tl_runtime *rt = &tl__rt;
  pthread_mutex_lock(&lifecycle_mu);
  if (atomic_load(&rt->state) != TL_ST_RUNNING) {
    pthread_mutex_unlock(&lifecycle_mu);
    return;
  }
  atomic_store_explicit(&rt->state, TL_ST_STOPPING, memory_order_release);
  /* Push every producer onto its slow path, where the state is checked. */
  pthread_mutex_lock(&rt->registry_mu);
  for (tl_thread *t = atomic_load_explicit(&rt->threads, memory_order_acquire);
       t; t = atomic_load_explicit(&t->next, memory_order_relaxed))
    for (int k = 0; k < TL_NSTREAMS; k++)
      atomic_store_explicit(&t->s[k].limit, 0, memory_order_relaxed);
  pthread_mutex_unlock(&rt->registry_mu);
  flush_round(rt, true);
  pthread_join(rt->flusher, NULL);
  rt->sink->close(rt->sink);
  rt->sink = NULL;
  atomic_store_explicit(&rt->state, TL_ST_DOWN, memory_order_release);
  pthread_mutex_unlock(&lifecycle_mu);
  /* Thread descriptors and the arena stay mapped: threads still running
   * may touch them, and their events are counted as after_shutdown. */
}

/* ---- Statistics -----------------------------------------------------------
 */

static uint64_t ld(_Atomic uint64_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

TL_EXTERN void tl_stats_get(tl_stats *out) {
  tl_runtime *rt = &tl__rt;
  tl_global_counters *g = &tl__counters;
  memset(out, 0, sizeof *out);
  int st = atomic_load_explicit(&rt->state, memory_order_acquire);
  /* Under the registry lock, a retiring thread is counted exactly once:
   * either still in the list or already in the retired totals. */
  if (st != TL_ST_OFF)
    pthread_mutex_lock(&rt->registry_mu);
  uint64_t recorded = ld(&g->retired_recorded);
  uint64_t flushed = ld(&g->retired_flushed);
  for (int r = 0; r < TL_DROP__COUNT; r++)
    out->dropped[r] = ld(&g->retired_dropped[r]);
  for (tl_thread *t = atomic_load_explicit(&rt->threads, memory_order_acquire);
       t; t = atomic_load_explicit(&t->next, memory_order_relaxed))
    for (int k = 0; k < TL_NSTREAMS; k++) {
      recorded += ld(&t->s[k].recorded);
      flushed += ld(&t->s[k].flushed);
      for (int r = 0; r < TL_DROP__COUNT; r++)
        out->dropped[r] += ld(&t->s[k].dropped[r]);
    }
  if (st != TL_ST_OFF)
    pthread_mutex_unlock(&rt->registry_mu);
  out->dropped[TL_DROP_BEFORE_INIT] += ld(&g->before_init);
  if (st == TL_ST_DOWN && recorded > flushed) {
    /* Recorded but never flushed: raced with tl_shutdown. */
    out->dropped[TL_DROP_AFTER_SHUTDOWN] += recorded - flushed;
    recorded = flushed;
  }
  /* Events in blocks the sink lost are dropped, not recorded. */
  recorded -= out->dropped[TL_DROP_SINK];
  out->events_recorded = recorded;
  out->blocks = ld(&g->blocks);
  out->bytes = ld(&g->bytes);
  out->blocks_failed = ld(&g->blocks_failed);
  out->blocks_spilled = ld(&g->blocks_spilled);
  out->blocks_resent = ld(&g->blocks_resent);
  out->threads = ld(&g->threads);
}

TL_EXTERN const char *tl_drop_reason_name(int reason) {
  static const char *names[TL_DROP__COUNT] = {"before_init", "after_shutdown",
                                              "no_memory", "too_large", "sink"};
  return reason >= 0 && reason < TL_DROP__COUNT ? names[reason] : "unknown";
}

TL_EXTERN int tl_process_id(uint8_t out[16]) {
  if (atomic_load_explicit(&tl__rt.state, memory_order_acquire) == TL_ST_OFF)
    return TL_ESTATE;
  memcpy(out, tl__rt.proc.msg.process_id, 16);
  return 0;
}

TL_EXTERN uint64_t tl_ticks_per_second(void) {
  if (atomic_load_explicit(&tl__rt.state, memory_order_acquire) == TL_ST_OFF)
    return 0;
  return tl__rt.clock.tsc_frequency;
}
