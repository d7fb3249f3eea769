/* helpers.h - what the Arrow tests share: hand-made C Data Interface
 * structs over static buffers, a value-as-text shortcut, and an encode and
 * decode round trip through an in-memory IPC stream. */
#ifndef TL_TEST_ARROW_HELPERS_H
#define TL_TEST_ARROW_HELPERS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "arrow/arrow.h"
#include "test.h"

/* Hand-made structs own nothing: their release only marks them released. */
static inline void noop_array(struct ArrowArray *a) {
  a->release = NULL;
}
static inline void noop_schema(struct ArrowSchema *s) {
  s->release = NULL;
}

static inline struct ArrowSchema mk_schema(const char *format, const char *name,
                                           int64_t flags, int64_t n,
                                           struct ArrowSchema **kids) {
  struct ArrowSchema s = {format, name, NULL,        flags, n,
                          kids,   NULL, noop_schema, NULL};
  return s;
}

static inline struct ArrowArray mk_array(int64_t len, int64_t nulls,
                                         int64_t off, int64_t nbuf,
                                         const void **bufs, int64_t n,
                                         struct ArrowArray **kids) {
  struct ArrowArray a = {len,  nulls, off,  nbuf,       n,
                         bufs, kids,  NULL, noop_array, NULL};
  return a;
}

/* Row `row` of column `col` as text, "NULL" for a null, "ERR n" on
 * failure. The result lives until 16 more calls. */
static inline const char *cell(const struct ArrowSchema *s,
                               const struct ArrowArray *a, int64_t col,
                               int64_t row) {
  static char ring[16][8192];
  static int next;
  char *o = ring[next++ & 15];
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  bool is_null = false;
  int rc = tl_arrow_value_text(s, a, col, row, &b, &is_null);
  if (rc)
    snprintf(o, 8192, "ERR %d", rc);
  else if (is_null)
    snprintf(o, 8192, "NULL");
  else
    snprintf(o, 8192, "%.*s", (int)b.len, b.p ? (const char *)b.p : "");
  tl_bytes_free(&b);
  return o;
}

typedef struct roundtrip {
  tl_ipc_reader *r;
  struct ArrowArray batch;
  size_t bytes;
} roundtrip;

/* Encodes `a` as a stream of one batch and decodes it back. */
static inline void roundtrip_run(const struct ArrowSchema *s,
                                 const struct ArrowArray *a, roundtrip *rt) {
  tl_bytes b;
  char err[256] = "";
  tl_bytes_init(&b, (size_t)1 << 30);
  int rc = tl_ipc_stream_bytes(s, a, &b, err, sizeof err);
  if (rc)
    FAILF("encode: %s (%s)", tl_errname(rc), err);
  rt->bytes = b.len;
  CHECK_EQ(tl_ipc_reader_new(&rt->r), 0);
  rc =
      tl_ipc_reader_feed_stream(rt->r, b.p, b.len, NULL, NULL, err, sizeof err);
  if (rc)
    FAILF("decode: %s (%s)", tl_errname(rc), err);
  CHECK_EQ(tl_ipc_reader_take(rt->r, &rt->batch), 0);
  tl_bytes_free(&b);
}

static inline void roundtrip_done(roundtrip *rt) {
  tl_arrow_array_release(&rt->batch);
  tl_ipc_reader_free(rt->r);
}

static inline void same_schema(const struct ArrowSchema *x,
                               const struct ArrowSchema *y) {
  CHECK_STR(x->format, y->format);
  CHECK_STR(x->name ? x->name : "", y->name ? y->name : "");
  CHECK_EQ(x->flags & ~(int64_t)0, y->flags);
  CHECK_EQ(x->n_children, y->n_children);
  for (int64_t i = 0; i < x->n_children; i++)
    same_schema(x->children[i], y->children[i]);
  CHECK_EQ(x->dictionary != NULL, y->dictionary != NULL);
  if (x->dictionary)
    CHECK_STR(x->dictionary->format, y->dictionary->format);
}

/* Every value of `a` (rows [from, from+n)) equals the value of `b` at the
 * same row minus `from` plus `at`. */
static inline void same_values(const struct ArrowSchema *sa,
                               const struct ArrowArray *a, int64_t from,
                               const struct ArrowSchema *sb,
                               const struct ArrowArray *b, int64_t at,
                               int64_t n) {
  CHECK_EQ(sa->n_children, sb->n_children);
  for (int64_t c = 0; c < sa->n_children; c++)
    for (int64_t r = 0; r < n; r++) {
      const char *x = cell(sa, a, c, from + r), *y = cell(sb, b, c, at + r);
      if (strcmp(x, y))
        FAILF("column %" PRId64 " row %" PRId64 ": \"%s\" != \"%s\"", c, r, x,
              y);
    }
}

#endif
