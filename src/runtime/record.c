/* record.c - the recording path: what a TL_* macro costs on the caller's
 * thread. A record is written into the thread's own buffer and published with
 * a release store; no lock, no allocation, no system call. The slow path
 * (buffer full, first event of a thread, not running) lives here too.
 *
 * In-buffer record layout (8-byte words; the call-site pointer's low 3 bits
 * carry the TL_EV_* type):
 *   LOG, SPAN_BEGIN, SPAN_END     cs|type, ticks
 *   IMETRIC, FMETRIC              cs|type, ticks, value
 *   LOGF                          cs|type, ticks, length, bytes (padded to 8)
 *   ASYNC_BEGIN, ASYNC_END        cs|type, ticks, id, parent, depth
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

TL_EXTERN int tl__max_level = TL_LEVEL_TRACE;

static __thread tl_thread *tls_thread
    __attribute__((tls_model("initial-exec")));

/* Owner-only counter increment: a plain add, but race-free for readers. */
static inline void bump(_Atomic uint64_t *c) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

static void drop_unregistered(int reason) {
  if (reason == TL_DROP_BEFORE_INIT)
    atomic_fetch_add_explicit(&tl__counters.before_init, 1,
                              memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&tl__counters.retired_dropped[reason], 1,
                              memory_order_relaxed);
}

/* Registers the calling thread: once per thread, on its first event. This is
 * the one place of the recording path that allocates (the thread's small
 * descriptor) and makes a system call (gettid); documented in docs/runtime.md.
 */
static __attribute__((noinline)) tl_thread *thread_register(void) {
  int st = atomic_load_explicit(&tl__rt.state, memory_order_acquire);
  if (st != TL_ST_RUNNING) {
    drop_unregistered(st == TL_ST_OFF ? TL_DROP_BEFORE_INIT
                                      : TL_DROP_AFTER_SHUTDOWN);
    return NULL;
  }
  tl_thread *t = calloc(1, sizeof *t);
  if (!t) {
    drop_unregistered(TL_DROP_NO_MEMORY);
    return NULL;
  }
  for (int k = 0; k < TL_NSTREAMS; k++) {
    t->s[k].kind = k;
    t->s[k].thread = t;
  }
  t->tid = (int)gettid();
  tl_thread *head = atomic_load_explicit(&tl__rt.threads, memory_order_relaxed);
  do
    atomic_store_explicit(&t->next, head, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(
      &tl__rt.threads, &head, t, memory_order_release, memory_order_relaxed));
  atomic_fetch_add_explicit(&tl__counters.threads, 1, memory_order_relaxed);
  pthread_setspecific(tl__rt.key, t);
  tls_thread = t;
  return t;
}

static inline tl_tstream *stream_of(int kind) {
  tl_thread *t = tls_thread;
  if (TL_UNLIKELY(!t) && !(t = thread_register()))
    return NULL;
  return &t->s[kind];
}

static void handoff(tl_tbuf *b) {
  tl_tbuf *head = atomic_load_explicit(&tl__rt.full, memory_order_relaxed);
  do
    b->next = head;
  while (!atomic_compare_exchange_weak_explicit(
      &tl__rt.full, &head, b, memory_order_release, memory_order_relaxed));
}

/* Hands the current buffer (if any) to the flusher and takes a fresh one.
 * Returns where `n` bytes may be written, or NULL with the drop counted. */
static __attribute__((noinline)) uint8_t *reserve_slow(tl_tstream *s,
                                                       uint32_t n) {
  int st = atomic_load_explicit(&tl__rt.state, memory_order_acquire);
  if (st != TL_ST_RUNNING) {
    bump(&s->dropped[TL_DROP_AFTER_SHUTDOWN]);
    return NULL;
  }
  if (n > tl__rt.buf_data_cap) {
    bump(&s->dropped[TL_DROP_TOO_LARGE]);
    return NULL;
  }
  tl_tbuf *old = atomic_load_explicit(&s->buf, memory_order_relaxed);
  if (old) {
    atomic_store_explicit(&s->limit, 0, memory_order_relaxed);
    atomic_store_explicit(&s->buf, NULL, memory_order_relaxed);
    s->data = NULL;
    handoff(old);
  }
  tl_tbuf *b = tl__pool_pop();
  if (!b) {
    bump(&s->dropped[TL_DROP_NO_MEMORY]);
    return NULL;
  }
  atomic_store_explicit(&b->head, 0, memory_order_relaxed);
  b->tail = 0;
  b->stream = s;
  b->seq = atomic_load_explicit(&s->next_seq, memory_order_relaxed) + 1;
  atomic_store_explicit(&s->next_seq, b->seq, memory_order_relaxed);
  s->data = b->data;
  s->pos = 0;
  atomic_store_explicit(&s->buf, b, memory_order_release);
  atomic_store_explicit(&s->limit, tl__rt.buf_data_cap, memory_order_relaxed);
  /* tl_shutdown may have zeroed the limit between our check and here. */
  if (atomic_load_explicit(&tl__rt.state, memory_order_acquire) !=
      TL_ST_RUNNING)
    atomic_store_explicit(&s->limit, 0, memory_order_relaxed);
  return b->data;
}

static inline uint8_t *reserve(tl_tstream *s, uint32_t n) {
  if (TL_LIKELY(s->pos + n <=
                atomic_load_explicit(&s->limit, memory_order_relaxed)))
    return s->data + s->pos;
  return reserve_slow(s, n);
}

static inline void commit(tl_tstream *s, uint32_t n) {
  s->pos += n;
  tl_tbuf *b = atomic_load_explicit(&s->buf, memory_order_relaxed);
  atomic_store_explicit(&b->head, s->pos, memory_order_release);
  bump(&s->recorded);
}

/* The slow path of a fixed-size record: registers the thread if needed and
 * exchanges buffers, then writes the record. Kept out of line so that the
 * fast path below needs no stack frame. */
static __attribute__((noinline)) void record_slow(int kind, const uint64_t *w,
                                                  uint32_t nwords) {
  tl_tstream *s = stream_of(kind);
  if (TL_UNLIKELY(!s))
    return;
  uint8_t *p = reserve(s, nwords * 8);
  if (TL_UNLIKELY(!p))
    return;
  memcpy(p, w, nwords * 8);
  commit(s, nwords * 8);
}

/* Appends a record of `nwords` words (a constant at every call) to the
 * calling thread's `kind` stream. */
static inline __attribute__((always_inline)) void
record(int kind, const uint64_t *w, uint32_t nwords) {
  tl_thread *t = tls_thread;
  if (TL_LIKELY(t != NULL)) {
    tl_tstream *s = &t->s[kind];
    uint32_t pos = s->pos, end = pos + nwords * 8;
    if (TL_LIKELY(end <=
                  atomic_load_explicit(&s->limit, memory_order_relaxed))) {
      uint64_t *dst = (uint64_t *)(void *)(s->data + pos);
      for (uint32_t i = 0; i < nwords; i++)
        dst[i] = w[i];
      s->pos = end;
      tl_tbuf *b = atomic_load_explicit(&s->buf, memory_order_relaxed);
      atomic_store_explicit(&b->head, end, memory_order_release);
      bump(&s->recorded);
      return;
    }
  }
  record_slow(kind, w, nwords);
}

TL_EXTERN void tl__log(const tl_callsite *cs) {
  uint64_t w[2] = {(uint64_t)(uintptr_t)cs | TL_EV_LOG, tl_ticks()};
  record(TL_STREAM_LOG, w, 2);
}

TL_EXTERN void tl__imetric(const tl_callsite *cs, uint64_t v) {
  uint64_t w[3] = {(uint64_t)(uintptr_t)cs | TL_EV_IMETRIC, tl_ticks(), v};
  record(TL_STREAM_METRICS, w, 3);
}

TL_EXTERN void tl__fmetric(const tl_callsite *cs, double v) {
  uint64_t w[3] = {(uint64_t)(uintptr_t)cs | TL_EV_FMETRIC, tl_ticks(), 0};
  memcpy(&w[2], &v, 8);
  record(TL_STREAM_METRICS, w, 3);
}

TL_EXTERN void tl__span_begin(const tl_callsite *cs) {
  uint64_t w[2] = {(uint64_t)(uintptr_t)cs | TL_EV_SPAN_BEGIN, tl_ticks()};
  record(TL_STREAM_CPU, w, 2);
}

TL_EXTERN void tl__span_end(const tl_callsite **cs) {
  uint64_t w[2] = {(uint64_t)(uintptr_t)*cs | TL_EV_SPAN_END, tl_ticks()};
  record(TL_STREAM_CPU, w, 2);
}

static inline void put2(uint8_t *p, uint64_t a, uint64_t b) {
  uint64_t *w = (uint64_t *)(void *)p;
  w[0] = a;
  w[1] = b;
}

/* Longest formatted message kept; longer ones are truncated. */
#define TL_MAX_MESSAGE 8192u

TL_EXTERN void tl__logf(const tl_callsite *cs, const char *fmt, ...) {
  tl_tstream *s = stream_of(TL_STREAM_LOG);
  if (TL_UNLIKELY(!s))
    return;
  uint64_t ts = tl_ticks();
  va_list ap;
  va_start(ap, fmt);
  uint32_t lim = atomic_load_explicit(&s->limit, memory_order_relaxed);
  int len = -1;
  /* First try formatting straight into the free space of the buffer. */
  if (s->pos + 24 + 64 <= lim) {
    size_t room = lim - s->pos - 24;
    if (room > TL_MAX_MESSAGE + 1)
      room = TL_MAX_MESSAGE + 1;
    va_list aq;
    va_copy(aq, ap);
    len = vsnprintf((char *)s->data + s->pos + 24, room, fmt, aq);
    va_end(aq);
    if (len < 0)
      len = 0;
    if ((size_t)len >= room && room <= TL_MAX_MESSAGE)
      len = -len - 1; /* did not fit: reserve below */
  } else {
    va_list aq;
    va_copy(aq, ap);
    len = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (len < 0)
      len = 0;
    len = -len - 1;
  }
  uint8_t *p;
  if (len < 0) {
    uint32_t want = (uint32_t)(-(len + 1));
    if (want > TL_MAX_MESSAGE)
      want = TL_MAX_MESSAGE;
    p = reserve(s, 24 + ((want + 1 + 7) & ~7u));
    if (!p) {
      va_end(ap);
      return;
    }
    vsnprintf((char *)p + 24, want + 1, fmt, ap);
    len = (int)want;
  } else {
    p = s->data + s->pos;
    if ((uint32_t)len > TL_MAX_MESSAGE)
      len = TL_MAX_MESSAGE;
  }
  va_end(ap);
  put2(p, (uint64_t)(uintptr_t)cs | TL_EV_LOGF, ts);
  ((uint64_t *)(void *)p)[2] = (uint64_t)len;
  commit(s, 24 + (((uint32_t)len + 7) & ~7u));
}

TL_EXTERN void tl__logs(const tl_callsite *cs, const char *msg, size_t len) {
  tl_tstream *s = stream_of(TL_STREAM_LOG);
  if (TL_UNLIKELY(!s))
    return;
  uint64_t ts = tl_ticks();
  uint32_t n = len > TL_MAX_MESSAGE ? TL_MAX_MESSAGE : (uint32_t)len;
  uint32_t size = 24 + ((n + 7) & ~7u);
  uint8_t *p = reserve(s, size);
  if (!p)
    return;
  memcpy(p + 24, msg, n);
  put2(p, (uint64_t)(uintptr_t)cs | TL_EV_LOGF, ts);
  ((uint64_t *)(void *)p)[2] = n;
  commit(s, size);
}

static uint64_t new_span_id(tl_thread *t) {
  if (t->next_span_id == t->span_id_end) {
    uint64_t base =
        atomic_fetch_add_explicit(&tl__rt.span_ids, 4096, memory_order_relaxed);
    t->next_span_id = base + 1;
    t->span_id_end = base + 4097;
  }
  return t->next_span_id++;
}

static inline void record_async(const tl_async_span *sp, int type) {
  uint64_t w[5] = {(uint64_t)(uintptr_t)sp->cs | (uint64_t)type, tl_ticks(),
                   sp->id, sp->parent, sp->depth};
  record(TL_STREAM_CPU, w, 5);
}

TL_EXTERN tl_async_span tl__async_begin(const tl_callsite *cs,
                                        tl_async_span parent) {
  tl_async_span sp;
  sp.parent = parent.id;
  sp.depth = parent.id ? parent.depth + 1 : 0;
  sp.reserved = 0;
  sp.cs = cs;
  tl_tstream *s = stream_of(TL_STREAM_CPU);
  if (TL_UNLIKELY(!s)) {
    /* Not recorded, but the handle stays unique so that TL_ASYNC_END and
     * children remain consistent. */
    sp.id = (uint64_t)1 << 63 | atomic_fetch_add_explicit(&tl__rt.span_ids, 1,
                                                          memory_order_relaxed);
    return sp;
  }
  sp.id = new_span_id(s->thread);
  record_async(&sp, TL_EV_ASYNC_BEGIN);
  return sp;
}

TL_EXTERN void tl__async_end(tl_async_span sp) {
  if (!sp.cs)
    return; /* TL_ASYNC_ROOT or a handle that was never begun */
  record_async(&sp, TL_EV_ASYNC_END);
}

/* Called by pthreads when a registered thread exits: hands the thread's
 * pending events to the flusher, which frees the descriptor afterwards. */
void tl__thread_exit(void *arg) {
  tl_thread *t = arg;
  /* The flusher may announce this thread's streams after it is gone from
   * /proc: leave its name behind (exit is not the recording path). */
  if (pthread_getname_np(pthread_self(), t->exit_name, sizeof t->exit_name))
    t->exit_name[0] = 0;
  atomic_store_explicit(&t->exit_name_set, 1, memory_order_release);
  for (int k = 0; k < TL_NSTREAMS; k++) {
    tl_tstream *s = &t->s[k];
    atomic_store_explicit(&s->limit, 0, memory_order_relaxed);
    tl_tbuf *b = atomic_load_explicit(&s->buf, memory_order_relaxed);
    if (b) {
      atomic_store_explicit(&s->buf, NULL, memory_order_relaxed);
      s->data = NULL;
      handoff(b);
    }
  }
  if (tls_thread == t)
    tls_thread = NULL; /* a later event (another destructor) re-registers */
  atomic_store_explicit(&t->exited, 1, memory_order_release);
}
