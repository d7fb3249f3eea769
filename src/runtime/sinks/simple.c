/* simple.c - the spool sink, the in-process callback sink and the null sink
 * (no destination configured: blocks are counted as failed, never silently
 * discarded). */
#include <stdlib.h>

#include "../runtime.h"
#include "spool.h"

typedef struct spool_sink {
  tl_sink base;
  tl_spool *spool;
} spool_sink;

static int spool_send(tl_sink *s, int kind, const uint8_t *p, size_t n) {
  return tl_spool_write(((spool_sink *)s)->spool, kind, p, n);
}

static void spool_close(tl_sink *s) {
  tl_spool_close(((spool_sink *)s)->spool);
  free(s);
}

int tl__sink_spool_open(tl_sink **out, const char *dir, const uint8_t pid[16],
                        bool fsync_files) {
  spool_sink *s = calloc(1, sizeof *s);
  if (!s)
    return TL_ENOMEM;
  int rc = tl_spool_open(&s->spool, dir, pid, fsync_files);
  if (rc) {
    free(s);
    return rc;
  }
  s->base.send = spool_send;
  s->base.close = spool_close;
  *out = &s->base;
  return 0;
}

typedef struct callback_sink {
  tl_sink base;
  tl_sink_fn fn;
  tl_sink_commit_fn commit;
  void *ctx;
} callback_sink;

static int callback_send(tl_sink *s, int kind, const uint8_t *p, size_t n) {
  callback_sink *c = (callback_sink *)s;
  return c->fn(c->ctx, kind, p, n);
}

static int callback_commit(tl_sink *s) {
  callback_sink *c = (callback_sink *)s;
  return c->commit(c->ctx);
}

static void free_sink(tl_sink *s) {
  free(s);
}

int tl__sink_callback_open(tl_sink **out, tl_sink_fn fn,
                           tl_sink_commit_fn commit, void *ctx) {
  callback_sink *s = calloc(1, sizeof *s);
  if (!s)
    return TL_ENOMEM;
  s->base.send = callback_send;
  s->base.commit = commit ? callback_commit : NULL;
  s->base.close = free_sink;
  s->fn = fn;
  s->commit = commit;
  s->ctx = ctx;
  *out = &s->base;
  return 0;
}

static int null_send(tl_sink *s, int kind, const uint8_t *p, size_t n) {
  (void)s;
  (void)p;
  (void)n;
  /* Process and stream messages have no events to lose; blocks fail. */
  return kind == TL_MSG_BLOCK ? TL_EUNAVAILABLE : 0;
}

int tl__sink_null_open(tl_sink **out) {
  tl_sink *s = calloc(1, sizeof *s);
  if (!s)
    return TL_ENOMEM;
  s->send = null_send;
  s->close = free_sink;
  *out = s;
  return 0;
}
