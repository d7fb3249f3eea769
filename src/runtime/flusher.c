/* flusher.c - the background thread that turns thread buffers into blocks.
 * It drains buffers handed off by producers (full, or from exiting threads),
 * flushes current buffers older than the flush period (or all of them on
 * tl_flush/tl_shutdown), announces streams, and retires exited threads. */
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* Maps call-site pointers to their index in the block being built. Entries
 * from older blocks are recognized by their generation, so nothing is
 * cleared between blocks. */
typedef struct cs_entry {
  const tl_callsite *cs;
  uint32_t gen;
  uint32_t idx;
} cs_entry;

typedef struct flusher {
  tl_block_builder bb;
  tl_bytes out;
  cs_entry *map;
  uint32_t map_cap; /* power of two */
  uint32_t gen;
  const tl_callsite **list; /* this block's call sites, in index order */
  uint32_t nlist, list_cap;
  const tl_callsite *last_cs; /* one-entry cache: loops repeat call sites */
  uint32_t last_idx;
  uint64_t last_reported[TL_DROP__COUNT + 1];
  uint64_t last_report_ticks;
  /* Blocks (and their events) a committing sink accepted this round. */
  uint64_t round_blocks, round_events;
} flusher;

static uint32_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (uint32_t)x;
}

static int map_insert(flusher *f, const tl_callsite *cs, uint32_t idx) {
  uint32_t mask = f->map_cap - 1;
  for (uint32_t h = hash_ptr(cs) & mask;; h = (h + 1) & mask)
    if (f->map[h].gen != f->gen) {
      f->map[h] = (cs_entry){cs, f->gen, idx};
      return 0;
    }
}

static int map_grow(flusher *f) {
  uint32_t cap = f->map_cap ? f->map_cap * 2 : 1024;
  cs_entry *m = calloc(cap, sizeof *m);
  if (!m)
    return TL_ENOMEM;
  free(f->map);
  f->map = m;
  f->map_cap = cap;
  f->gen = 1;
  for (uint32_t i = 0; i < f->nlist; i++)
    map_insert(f, f->list[i], i);
  return 0;
}

/* Returns the call site's index in the current block, adding it if new. */
static int cs_index(flusher *f, const tl_callsite *cs, uint32_t *idx) {
  if (cs == f->last_cs) {
    *idx = f->last_idx;
    return 0;
  }
  uint32_t mask = f->map_cap - 1;
  for (uint32_t h = hash_ptr(cs) & mask;; h = (h + 1) & mask) {
    cs_entry *e = &f->map[h];
    if (e->gen != f->gen)
      break;
    if (e->cs == cs) {
      f->last_cs = cs;
      *idx = f->last_idx = e->idx;
      return 0;
    }
  }
  int rc;
  if (f->nlist == f->list_cap) {
    uint32_t cap = f->list_cap ? f->list_cap * 2 : 256;
    const tl_callsite **l = realloc(f->list, cap * sizeof *l);
    if (!l)
      return TL_ENOMEM;
    f->list = l;
    f->list_cap = cap;
  }
  if ((f->nlist + 1) * 2 > f->map_cap && (rc = map_grow(f)))
    return rc;
  if ((rc = tl_block_builder_callsite(&f->bb, cs)))
    return rc;
  f->list[f->nlist] = cs;
  map_insert(f, cs, f->nlist);
  f->last_cs = cs;
  *idx = f->last_idx = f->nlist++;
  return 0;
}

static void block_begin(flusher *f) {
  tl_block_builder_reset(&f->bb);
  f->nlist = 0;
  f->last_cs = NULL;
  if (++f->gen == 0) { /* wrapped: stale entries could look current */
    memset(f->map, 0, f->map_cap * sizeof *f->map);
    f->gen = 1;
  }
}

static int sink_send(int kind, const uint8_t *p, size_t n) {
  tl_sink *s = tl__rt.sink;
  return s->send(s, kind, p, n);
}

static const char *stream_tag(int kind) {
  return kind == TL_STREAM_LOG       ? "log"
         : kind == TL_STREAM_METRICS ? "metrics"
                                     : "cpu";
}

static void read_thread_name(tl_thread *t) {
  if (!atomic_load_explicit(&t->exit_name_set, memory_order_acquire)) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", t->tid);
    FILE *fp = fopen(path, "r");
    bool ok = fp && fgets(t->name, sizeof t->name, fp);
    if (fp)
      fclose(fp);
    if (ok) {
      t->name[strcspn(t->name, "\n")] = 0;
      return;
    }
  }
  /* Gone from /proc: it exited, and left its name on the way out. */
  if (atomic_load_explicit(&t->exit_name_set, memory_order_acquire) &&
      t->exit_name[0])
    snprintf(t->name, sizeof t->name, "%s", t->exit_name);
  else
    snprintf(t->name, sizeof t->name, "thread-%d", t->tid);
}

/* Sends the stream message before the stream's first block. */
static int announce(flusher *f, tl_tstream *s) {
  tl_thread *t = s->thread;
  if (!s->has_id) { /* once: a retried announce keeps the id */
    tl_uuid_v4(s->stream_id);
    s->has_id = true;
  }
  if (!t->name[0])
    read_thread_name(t);
  char tid[16];
  snprintf(tid, sizeof tid, "%d", t->tid);
  tl_wire_stream m;
  memset(&m, 0, sizeof m);
  memcpy(m.stream_id, s->stream_id, 16);
  memcpy(m.process_id, tl__rt.proc.msg.process_id, 16);
  m.ntags = 1;
  m.tags[0] = tl_slice_str(stream_tag(s->kind));
  m.nprops = 2;
  m.props[0] = (tl_kv){tl_slice_str("thread-id"), tl_slice_str(tid)};
  m.props[1] = (tl_kv){tl_slice_str("thread-name"), tl_slice_str(t->name)};
  f->out.len = 0;
  int rc = tl_stream_encode(&m, &f->out);
  if (!rc)
    rc = sink_send(TL_MSG_STREAM, f->out.p, f->out.len);
  /* Not accepted: try again before the next block rather than send blocks
   * of a stream the receiver does not know. */
  s->announced = rc == 0;
  return rc;
}

static uint32_t record_size(const uint64_t *w) {
  switch (w[0] & 7) {
  case TL_EV_LOG:
  case TL_EV_SPAN_BEGIN:
  case TL_EV_SPAN_END:
    return 16;
  case TL_EV_IMETRIC:
  case TL_EV_FMETRIC:
    return 24;
  case TL_EV_LOGF:
    return 24 + (((uint32_t)w[2] + 7) & ~7u);
  default:
    return 40;
  }
}

/* Finishes the block being built for stream `s` and hands it to the sink,
 * announcing the stream first if needed. `rc` is the building status. A
 * block that cannot be delivered has its `n` events counted as dropped. */
static void send_block(flusher *f, tl_tstream *s, int rc, uint64_t n) {
  tl_global_counters *g = &tl__counters;
  if (!rc && !s->announced)
    rc = announce(f, s);
  if (!rc) {
    tl_wire_block_header h;
    memset(&h, 0, sizeof h);
    tl_uuid_v4(h.block_id);
    memcpy(h.stream_id, s->stream_id, 16);
    memcpy(h.process_id, tl__rt.proc.msg.process_id, 16);
    h.begin_ticks = UINT64_MAX;
    h.end_ticks = tl_ticks();
    f->out.len = 0;
    rc = tl_block_builder_finish(&f->bb, &h, &tl__rt.clock, &f->out);
    if (!rc) {
      atomic_fetch_add_explicit(&g->blocks, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&g->bytes, f->out.len, memory_order_relaxed);
      rc = sink_send(TL_MSG_BLOCK, f->out.p, f->out.len);
    }
  }
  if (rc) {
    atomic_fetch_add_explicit(&g->blocks_failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g->retired_dropped[TL_DROP_SINK], n,
                              memory_order_relaxed);
  } else {
    f->round_blocks++;
    f->round_events += n;
  }
}

/* Ends a round: a committing sink makes the round's blocks durable, or
 * they all count as failed. */
static void commit_round(flusher *f) {
  tl_sink *s = tl__rt.sink;
  if (f->round_blocks && s->commit && s->commit(s)) {
    tl_global_counters *g = &tl__counters;
    atomic_fetch_add_explicit(&g->blocks_failed, f->round_blocks,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&g->retired_dropped[TL_DROP_SINK],
                              f->round_events, memory_order_relaxed);
  }
  f->round_blocks = f->round_events = 0;
}

/* Encodes records [from, to) of buffer `b` as one block and sends it. */
static void flush_range(flusher *f, tl_tstream *s, tl_tbuf *b, uint32_t from,
                        uint32_t to) {
  block_begin(f);
  int rc = 0;
  uint64_t n = 0;
  for (uint32_t pos = from; pos < to && !rc;) {
    const uint64_t *w = (const uint64_t *)(const void *)(b->data + pos);
    tl_wire_event ev;
    const tl_callsite *cs = (const tl_callsite *)(uintptr_t)(w[0] & ~7ull);
    ev.type = (int)(w[0] & 7);
    ev.ticks = w[1];
    switch (ev.type) {
    case TL_EV_LOGF:
      ev.v.msg.p = b->data + pos + 24;
      ev.v.msg.n = (size_t)w[2];
      break;
    case TL_EV_IMETRIC:
      ev.v.u = w[2];
      break;
    case TL_EV_FMETRIC:
      memcpy(&ev.v.f, &w[2], 8);
      break;
    case TL_EV_ASYNC_BEGIN:
    case TL_EV_ASYNC_END:
      ev.v.async.id = w[2];
      ev.v.async.parent = w[3];
      ev.v.async.depth = (uint32_t)w[4];
      break;
    }
    uint32_t idx;
    if (!(rc = cs_index(f, cs, &idx)))
      rc = tl_block_builder_event(&f->bb, idx, &ev);
    pos += record_size(w);
    n++;
  }
  atomic_store_explicit(
      &s->flushed, atomic_load_explicit(&s->flushed, memory_order_relaxed) + n,
      memory_order_relaxed);
  send_block(f, s, rc, n);
}

/* Encodes what remains of every handed-off buffer, then recycles it.
 * Returns the number of buffers processed. */
static unsigned drain_full(flusher *f) {
  tl_tbuf *list =
      atomic_exchange_explicit(&tl__rt.full, NULL, memory_order_acquire);
  tl_tbuf *fifo = NULL;
  while (list) { /* the stack is newest-first: reverse it */
    tl_tbuf *next = list->next;
    list->next = fifo;
    fifo = list;
    list = next;
  }
  unsigned n = 0;
  while (fifo) {
    tl_tbuf *b = fifo;
    fifo = b->next;
    tl_tstream *s = b->stream;
    uint32_t head = atomic_load_explicit(&b->head, memory_order_acquire);
    if (head > b->tail)
      flush_range(f, s, b, b->tail, head);
    s->done_seq = b->seq;
    tl__pool_push(b);
    n++;
  }
  return n;
}

/* Flushes a thread's current buffer if it is old enough (or `forced`). */
static void flush_current(flusher *f, tl_tstream *s, bool forced,
                          uint64_t now) {
  tl_tbuf *b;
  for (;;) {
    b = atomic_load_explicit(&s->buf, memory_order_acquire);
    if (!b) {
      /* No current buffer: either none yet, or the producer is between
       * dropping its full buffer and queueing it (memory limit reached, or
       * thread exit). A forced flush waits for that buffer. */
      if (!forced || s->done_seq >= atomic_load_explicit(&s->next_seq,
                                                         memory_order_relaxed))
        return;
      if (!drain_full(f))
        sched_yield();
      continue;
    }
    if (b->seq <= s->done_seq + 1)
      break;
    /* An older buffer of this stream is still queued: blocks must leave in
     * order, so drain the queue first (or wait for the next round). */
    if (!forced)
      return;
    drain_full(f);
  }
  uint32_t head = atomic_load_explicit(&b->head, memory_order_acquire);
  if (head == b->tail) {
    s->last_flush_ticks = now;
    return;
  }
  if (!forced && now - s->last_flush_ticks < tl__rt.period_ticks)
    return;
  flush_range(f, s, b, b->tail, head);
  b->tail = head;
  s->last_flush_ticks = now;
}

static void retire(tl_thread *t) {
  tl_global_counters *g = &tl__counters;
  for (int k = 0; k < TL_NSTREAMS; k++) {
    tl_tstream *s = &t->s[k];
    atomic_fetch_add(&g->retired_recorded, atomic_load(&s->recorded));
    atomic_fetch_add(&g->retired_flushed, atomic_load(&s->flushed));
    for (int r = 0; r < TL_DROP__COUNT; r++)
      atomic_fetch_add(&g->retired_dropped[r], atomic_load(&s->dropped[r]));
  }
}

/* Keeps the next few never-used buffers' pages populated, so that the
 * first write to a fresh buffer does not take page faults on the recording
 * thread (about 2 us each in a VM). MADV_POPULATE_WRITE maps the pages
 * without touching their contents, so a buffer a producer is already
 * writing is unaffected; kernels without it (before 5.14) just skip this. */
static void warm_fresh_buffers(uint32_t *populated) {
  tl_runtime *rt = &tl__rt;
  enum { WARM = 8 };
  uint32_t fresh = atomic_load_explicit(&rt->fresh, memory_order_relaxed);
  uint32_t target = fresh + WARM < rt->nbufs ? fresh + WARM : rt->nbufs;
  if (*populated < fresh)
    *populated = fresh;
  if (*populated >= target)
    return;
#ifdef MADV_POPULATE_WRITE
  madvise(rt->arena + (size_t)*populated * rt->buf_stride,
          (size_t)(target - *populated) * rt->buf_stride, MADV_POPULATE_WRITE);
#endif
  *populated = target;
}

/* Unlinks and frees threads that exited; their buffers were drained. Only
 * the flusher unlinks, producers only push at the head. */
static void reap(tl_thread **dead, unsigned ndead) {
  tl_runtime *rt = &tl__rt;
  pthread_mutex_lock(&rt->registry_mu);
  for (unsigned i = 0; i < ndead; i++) {
    tl_thread *t = dead[i];
    tl_thread *next = atomic_load_explicit(&t->next, memory_order_relaxed);
    tl_thread *head = t;
    if (!atomic_compare_exchange_strong_explicit(&rt->threads, &head, next,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
      tl_thread *p = head;
      while (atomic_load_explicit(&p->next, memory_order_relaxed) != t)
        p = atomic_load_explicit(&p->next, memory_order_relaxed);
      atomic_store_explicit(&p->next, next, memory_order_relaxed);
    }
    retire(t);
    free(t);
  }
  pthread_mutex_unlock(&rt->registry_mu);
}

/* Reports drop counters as metrics when they change, so that drops are
 * visible in the data itself. The flusher builds these blocks directly, on a
 * metrics stream of its own: they take no buffer, so they cannot be dropped
 * for lack of memory, and they are not counted as recorded events. */
static void report_drops(flusher *f, tl_tstream *self, uint64_t now,
                         bool force) {
  static const tl_callsite cs[TL_DROP__COUNT + 1] = {
      {TL_CS_IMETRIC, 0, 0, __LINE__, "tracelake_dropped_before_init", "count",
       "tracelake", __FILE__},
      {TL_CS_IMETRIC, 0, 0, __LINE__, "tracelake_dropped_after_shutdown",
       "count", "tracelake", __FILE__},
      {TL_CS_IMETRIC, 0, 0, __LINE__, "tracelake_dropped_no_memory", "count",
       "tracelake", __FILE__},
      {TL_CS_IMETRIC, 0, 0, __LINE__, "tracelake_dropped_too_large", "count",
       "tracelake", __FILE__},
      {TL_CS_IMETRIC, 0, 0, __LINE__, "tracelake_dropped_sink", "count",
       "tracelake", __FILE__},
      {TL_CS_IMETRIC, 0, 0, __LINE__, "tracelake_blocks_failed", "count",
       "tracelake", __FILE__},
  };
  if (!force && now - f->last_report_ticks < tl__rt.period_ticks)
    return;
  f->last_report_ticks = now;
  tl_stats st;
  tl_stats_get(&st);
  uint64_t cur[TL_DROP__COUNT + 1];
  memcpy(cur, st.dropped, sizeof st.dropped);
  cur[TL_DROP__COUNT] = st.blocks_failed;
  block_begin(f);
  int rc = 0;
  uint64_t n = 0;
  for (int i = 0; i <= TL_DROP__COUNT && !rc; i++) {
    if (cur[i] == f->last_reported[i])
      continue;
    f->last_reported[i] = cur[i];
    tl_wire_event ev = {TL_EV_IMETRIC, NULL, now, {0}};
    ev.v.u = cur[i];
    uint32_t idx;
    if (!(rc = cs_index(f, &cs[i], &idx)))
      rc = tl_block_builder_event(&f->bb, idx, &ev);
    n++;
  }
  if (n)
    send_block(f, self, rc, 0);
}

void *tl__flusher_main(void *arg) {
  (void)arg;
  tl_runtime *rt = &tl__rt;
  flusher f;
  memset(&f, 0, sizeof f);
  tl_block_builder_init(&f.bb);
  tl_bytes_init(&f.out, (size_t)TL_WIRE_MAX_PAYLOAD * 2 + 4096);
  if (map_grow(&f)) {
    /* Without the map nothing can be encoded; blocks will fail below. */
  }
  if (!tl_process_encode(&rt->proc.msg, &f.out))
    sink_send(TL_MSG_PROCESS, f.out.p, f.out.len);
  pthread_setname_np(pthread_self(), "tl-flusher");
  /* Best effort: a failure leaves the process's priority. */
  if (rt->cfg.flusher_nice)
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), rt->cfg.flusher_nice);
  /* The flusher's own metrics stream (never registered, never recorded). */
  static tl_thread self;
  memset(&self, 0, sizeof self);
  self.tid = (int)gettid();
  snprintf(self.name, sizeof self.name, "tl-flusher");
  self.s[TL_STREAM_METRICS].kind = TL_STREAM_METRICS;
  self.s[TL_STREAM_METRICS].thread = &self;

  tl_thread *dead[64];
  bool busy = false;
  uint32_t populated = 0;
  for (;;) {
    pthread_mutex_lock(&rt->mu);
    if (!rt->stop && rt->flush_req == rt->flush_done) {
      uint64_t wait_ms = busy ? 1 : 10;
      if (wait_ms > rt->cfg.flush_period_ms)
        wait_ms = rt->cfg.flush_period_ms;
      struct timespec ts = tl_deadline_in(wait_ms * 1000000u);
      pthread_cond_timedwait(&rt->wake, &rt->mu, &ts);
    }
    uint64_t req = rt->flush_req;
    bool stop = rt->stop;
    pthread_mutex_unlock(&rt->mu);
    bool forced = stop || req != rt->flush_done;

    uint64_t now = tl_ticks();
    /* Threads seen exited before the drain below can be freed after it. */
    unsigned ndead = 0;
    for (tl_thread *t =
             atomic_load_explicit(&rt->threads, memory_order_acquire);
         t; t = atomic_load_explicit(&t->next, memory_order_relaxed))
      if (ndead < 64 && atomic_load_explicit(&t->exited, memory_order_acquire))
        dead[ndead++] = t;
    busy = drain_full(&f) > 0;
    for (tl_thread *t =
             atomic_load_explicit(&rt->threads, memory_order_acquire);
         t; t = atomic_load_explicit(&t->next, memory_order_relaxed))
      for (int k = 0; k < TL_NSTREAMS; k++)
        flush_current(&f, &t->s[k], forced, now);
    if (ndead)
      reap(dead, ndead);
    report_drops(&f, &self.s[TL_STREAM_METRICS], now, stop);
    commit_round(&f);
    if (!stop)
      warm_fresh_buffers(&populated);

    if (forced) {
      pthread_mutex_lock(&rt->mu);
      rt->flush_done = req;
      pthread_cond_broadcast(&rt->done);
      pthread_mutex_unlock(&rt->mu);
    }
    if (stop)
      break;
  }
  tl_block_builder_free(&f.bb);
  tl_bytes_free(&f.out);
  free(f.map);
  free(f.list);
  return NULL;
}
