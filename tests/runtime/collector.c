/* collector.c - see collector.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

void collector_init(collector *c, bool keep) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  c->keep = keep;
}

void collector_free(collector *c) {
  free(c->ev);
  pthread_mutex_destroy(&c->mu);
}

static void copy_slice(char *dst, size_t cap, tl_slice s) {
  size_t n = s.n < cap - 1 ? s.n : cap - 1;
  memcpy(dst, s.p, n);
  dst[n] = 0;
}

static void error(collector *c, const char *what) {
  c->errors++;
  snprintf(c->last_error, sizeof c->last_error, "%s", what);
}

typedef struct block_ctx {
  collector *c;
  int stream;
} block_ctx;

static int on_event(void *ctx, const tl_wire_event *e) {
  block_ctx *b = ctx;
  collector *c = b->c;
  c->events++;
  c->by_type[e->type & 7]++;
  c->streams[b->stream].events++;
  if (c->count_prefix && e->cs->name.n >= strlen(c->count_prefix) &&
      !memcmp(e->cs->name.p, c->count_prefix, strlen(c->count_prefix)))
    c->named_events++;
  if (!c->keep)
    return 0;
  if (c->nev == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 1024;
    c->ev = realloc(c->ev, c->cap * sizeof *c->ev);
  }
  coll_event *o = &c->ev[c->nev++];
  memset(o, 0, sizeof *o);
  o->type = e->type;
  o->stream = b->stream;
  o->level = e->cs->level;
  o->ticks = e->ticks;
  copy_slice(o->name, sizeof o->name, e->cs->name);
  copy_slice(o->target, sizeof o->target, e->cs->target);
  switch (e->type) {
  case TL_EV_LOG:
  case TL_EV_LOGF:
    copy_slice(o->msg, sizeof o->msg, e->v.msg);
    o->u = e->v.msg.n; /* the whole message's length */
    break;
  case TL_EV_IMETRIC:
    o->u = e->v.u;
    break;
  case TL_EV_FMETRIC:
    o->f = e->v.f;
    break;
  case TL_EV_ASYNC_BEGIN:
  case TL_EV_ASYNC_END:
    o->u = e->v.async.id;
    o->parent = e->v.async.parent;
    o->depth = e->v.async.depth;
    break;
  }
  return 0;
}

int collector_sink(void *ctx, int kind, const uint8_t *p, size_t n) {
  collector *c = ctx;
  tl_wire_error err = {0};
  pthread_mutex_lock(&c->mu);
  if (kind == TL_MSG_PROCESS) {
    if (tl_process_decode(p, n, &c->process, &err))
      error(c, err.reason);
    c->processes++;
  } else if (kind == TL_MSG_STREAM) {
    tl_wire_stream m;
    if (tl_stream_decode(p, n, &m, &err)) {
      error(c, err.reason);
    } else if (!c->processes ||
               memcmp(m.process_id, c->process.process_id, 16)) {
      error(c, "stream message before its process message");
    } else if (c->nstreams < 512) {
      coll_stream *s = &c->streams[c->nstreams++];
      memset(s, 0, sizeof *s);
      memcpy(s->id, m.stream_id, 16);
      if (m.ntags)
        copy_slice(s->tag, sizeof s->tag, m.tags[0]);
      for (uint32_t i = 0; i < m.nprops; i++) {
        if (m.props[i].key.n == 9 && !memcmp(m.props[i].key.p, "thread-id", 9))
          copy_slice(s->thread_id, sizeof s->thread_id, m.props[i].value);
        if (m.props[i].key.n == 11 &&
            !memcmp(m.props[i].key.p, "thread-name", 11))
          copy_slice(s->thread_name, sizeof s->thread_name, m.props[i].value);
      }
    }
  } else {
    tl_wire_block_header h;
    int idx = -1;
    if (tl_block_header_decode(p, n, &h, &err) == 0)
      for (int i = 0; i < c->nstreams; i++)
        if (!memcmp(c->streams[i].id, h.stream_id, 16))
          idx = i;
    if (idx < 0) {
      error(c, err.reason[0] ? err.reason : "block of an unannounced stream");
    } else {
      block_ctx b = {c, idx};
      tl_block_visitor v = {&b, NULL, on_event};
      if (tl_block_decode(p, n, NULL, &err) || tl_block_decode(p, n, &v, &err))
        error(c, err.reason);
      c->blocks++;
    }
  }
  unsigned delay = c->delay_us;
  pthread_mutex_unlock(&c->mu);
  if (delay && kind == TL_MSG_BLOCK)
    usleep(delay);
  return 0;
}

uint64_t collector_events(collector *c) {
  pthread_mutex_lock(&c->mu);
  uint64_t n = c->events;
  pthread_mutex_unlock(&c->mu);
  return n;
}

const coll_stream *collector_stream(collector *c, int idx) {
  return idx >= 0 && idx < c->nstreams ? &c->streams[idx] : NULL;
}
