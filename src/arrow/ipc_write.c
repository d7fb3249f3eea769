/* ipc_write.c - the Arrow IPC encoder: Schema, DictionaryBatch and
 * RecordBatch messages (metadata version V5) from C Data Interface arrays.
 * A batch is the concatenation of slices of several arrays: each column is
 * walked twice over the same segments, once to size its buffers and once to
 * fill them, so the body is allocated once and fixed-width values, strings
 * and aligned bitmaps are copied with memcpy. */
#include <stdio.h>
#include <stdlib.h>

#include "arrow.h"

enum { MSG_SCHEMA = 1, MSG_DICTIONARY = 2, MSG_BATCH = 3 };
enum { METADATA_V5 = 4 };
/* The Type union of Schema.fbs. */
enum {
  FB_NULL = 1,
  FB_INT,
  FB_FLOAT,
  FB_BINARY,
  FB_UTF8,
  FB_BOOL,
  FB_DECIMAL,
  FB_DATE,
  FB_TIME,
  FB_TIMESTAMP,
  FB_INTERVAL,
  FB_LIST,
  FB_STRUCT,
  FB_UNION,
  FB_FSB,
  FB_FSL,
  FB_MAP,
  FB_DURATION,
  FB_LBINARY,
  FB_LUTF8,
  FB_LLIST
};

/* Rows [start, start+len) of `a`, logical (a->offset not included). */
typedef struct seg {
  const struct ArrowArray *a;
  int64_t start, len;
} seg;

/* FieldNode and Buffer of Message.fbs, laid out as the structs are. */
typedef struct fnode {
  int64_t length, null_count;
} fnode;
typedef struct fbuf {
  int64_t offset, length;
} fbuf;

typedef struct enc {
  int pass; /* 1: measure, 2: write */
  fnode *nodes;
  size_t nn, ncap, ni;
  fbuf *bufs;
  size_t nb, bcap, bi;
  uint64_t body; /* pass 1: bytes so far, buffers padded to 8 */
  uint8_t *out;  /* pass 2: the body */
  char *err;
  size_t errcap;
} enc;

static int efail(enc *e, const tl__plan *p, const char *why) {
  if (e->err && e->errcap)
    snprintf(e->err, e->errcap, "column \"%s\": %s",
             p && p->s && p->s->name ? p->s->name : "?", why);
  return TL_EINVAL;
}

static uint64_t pad8(uint64_t n) {
  return (n + 7) & ~(uint64_t)7;
}

static int64_t bytes_of_bits(int64_t n) {
  return (n + 7) / 8;
}

static int add_node(enc *e, int64_t len, int64_t nulls) {
  if (e->pass == 2) {
    e->ni++;
    return 0;
  }
  if (tl_grow(&e->nodes, &e->ncap, e->nn + 1, sizeof *e->nodes, 16))
    return TL_ENOMEM;
  e->nodes[e->nn++] = (fnode){len, nulls};
  return 0;
}

/* Pass 1 records a buffer of `len` bytes; pass 2 gives where to write it
 * (NULL when it is empty). */
static int add_buf(enc *e, uint64_t len, uint8_t **where) {
  *where = NULL;
  if (e->pass == 2) {
    const fbuf *b = &e->bufs[e->bi++];
    if (b->length)
      *where = e->out + b->offset;
    return 0;
  }
  if (tl_grow(&e->bufs, &e->bcap, e->nb + 1, sizeof *e->bufs, 32))
    return TL_ENOMEM;
  e->bufs[e->nb++] = (fbuf){(int64_t)e->body, (int64_t)len};
  e->body += pad8(len);
  return 0;
}

/* Buffer `i` of the layout (validity is 0), tolerating producers that keep
 * an empty validity slot in front of a union's buffers. */
static const void *cbuf(const struct ArrowArray *a, int layout, int i) {
  if ((layout == TL__L_SUNION || layout == TL__L_DUNION) &&
      a->n_buffers == tl__layout_nbuffers(layout) + 1)
    i++;
  return i < a->n_buffers ? a->buffers[i] : NULL;
}

static bool has_nulls(const struct ArrowArray *a) {
  return a->null_count != 0 && a->n_buffers > 0 && a->buffers[0];
}

static int64_t seg_nulls(const seg *s) {
  const struct ArrowArray *a = s->a;
  if (!has_nulls(a) || !s->len)
    return 0;
  if (s->start == 0 && s->len == a->length && a->null_count > 0)
    return a->null_count;
  return s->len - tl__bits_count(a->buffers[0], a->offset + s->start, s->len);
}

static int64_t load_off(const void *p, int ow, int64_t i) {
  if (ow == 4) {
    int32_t v;
    memcpy(&v, (const uint8_t *)p + i * 4, 4);
    return v;
  }
  int64_t v;
  memcpy(&v, (const uint8_t *)p + i * 8, 8);
  return v;
}

static int col(enc *e, const tl__plan *p, const seg *segs, size_t n);

/* Children of every segment, with the rows each segment maps to. */
static int kid_col(enc *e, const tl__plan *kp, int64_t k, const seg *segs,
                   size_t n, int64_t mul) {
  seg *ks = malloc((n ? n : 1) * sizeof *ks);
  if (!ks)
    return TL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct ArrowArray *a = segs[i].a;
    ks[i] = (seg){a->children[k], (a->offset + segs[i].start) * mul,
                  segs[i].len * mul};
  }
  int rc = col(e, kp, ks, n);
  free(ks);
  return rc;
}

/* Variable-size binary and lists: offsets rebased to 0 (memcpy when a
 * segment needs no shift), then the values or the child rows. */
static int var_col(enc *e, const tl__plan *p, const seg *segs, size_t n,
                   int64_t total) {
  int layout = p->t.layout;
  int ow = layout == TL__L_VAR64 || layout == TL__L_LIST64 ? 8 : 4;
  bool list = layout == TL__L_LIST32 || layout == TL__L_LIST64;
  int64_t values = 0;
  seg *ks = NULL;
  if (list && !(ks = malloc((n ? n : 1) * sizeof *ks)))
    return TL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct ArrowArray *a = segs[i].a;
    int64_t base = 0, end = 0;
    if (segs[i].len) {
      const void *o = cbuf(a, layout, 1);
      if (!o) {
        free(ks);
        return efail(e, p, "missing offsets buffer");
      }
      base = load_off(o, ow, a->offset + segs[i].start);
      end = load_off(o, ow, a->offset + segs[i].start + segs[i].len);
      if (!list && end > base && !cbuf(a, layout, 2)) {
        free(ks);
        return efail(e, p, "missing values buffer");
      }
    }
    if (base < 0 || end < base || (list && end > a->children[0]->length)) {
      free(ks);
      return efail(e, p, "offsets out of range");
    }
    if (list)
      ks[i] = (seg){a->children[0], base, end - base};
    values += end - base;
  }
  if (ow == 4 && values > INT32_MAX) {
    free(ks);
    return efail(e, p, "over 2 GiB of values in one batch (split it)");
  }
  uint8_t *w;
  int rc = add_buf(e, (uint64_t)(total + 1) * (uint64_t)ow, &w);
  if (!rc && w) {
    int64_t pos = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
      int64_t len = segs[i].len;
      if (!len)
        continue;
      const struct ArrowArray *a = segs[i].a;
      const uint8_t *o = (const uint8_t *)cbuf(a, layout, 1) +
                         (a->offset + segs[i].start) * ow;
      int64_t base = load_off(o, ow, 0);
      uint8_t *d = w + (pos + 1) * ow;
      if (base == run) {
        memcpy(d, o + ow, (size_t)(len * ow));
      } else if (ow == 4) {
        int32_t delta = (int32_t)(run - base);
        for (int64_t j = 0; j < len; j++)
          ((int32_t *)d)[j] = (int32_t)load_off(o, 4, j + 1) + delta;
      } else {
        int64_t delta = run - base;
        for (int64_t j = 0; j < len; j++)
          ((int64_t *)d)[j] = load_off(o, 8, j + 1) + delta;
      }
      run += load_off(o, ow, len) - base;
      pos += len;
    }
  }
  if (!rc && list) {
    rc = col(e, &p->kids[0], ks, n);
  } else if (!rc) {
    rc = add_buf(e, (uint64_t)values, &w);
    if (!rc && w) {
      int64_t run = 0;
      for (size_t i = 0; i < n; i++) {
        if (!segs[i].len)
          continue;
        const struct ArrowArray *a = segs[i].a;
        int64_t at = a->offset + segs[i].start;
        const void *o = cbuf(a, layout, 1);
        int64_t base = load_off(o, ow, at);
        int64_t len = load_off(o, ow, at + segs[i].len) - base;
        if (len)
          memcpy(w + run, (const uint8_t *)cbuf(a, layout, 2) + base,
                 (size_t)len);
        run += len;
      }
    }
  }
  free(ks);
  return rc;
}

/* Dense unions: each child keeps the range of its rows that the segment
 * uses, and offsets are rebased into the concatenated children. */
static int dunion_col(enc *e, const tl__plan *p, const seg *segs, size_t n,
                      int64_t total) {
  int nk = (int)p->nkids;
  int map[256];
  for (int i = 0; i < 256; i++)
    map[i] = -1;
  for (int k = 0; k < nk; k++)
    map[(uint8_t)p->t.ids[k]] = k;
  size_t cells = (n ? n : 1) * (size_t)(nk ? nk : 1);
  int64_t *lo = malloc(cells * sizeof *lo), *cnt = malloc(cells * sizeof *cnt);
  seg *ks = malloc((n ? n : 1) * sizeof *ks);
  int rc = 0;
  if (!lo || !cnt || !ks) {
    rc = TL_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    const struct ArrowArray *a = segs[i].a;
    int64_t *l = lo + i * (size_t)nk, *c = cnt + i * (size_t)nk;
    for (int k = 0; k < nk; k++) {
      l[k] = INT64_MAX;
      c[k] = -1; /* the highest offset, for now */
    }
    const int8_t *ids = cbuf(a, TL__L_DUNION, 0);
    const uint8_t *offs = cbuf(a, TL__L_DUNION, 1);
    if (segs[i].len && (!ids || !offs))
      rc = efail(e, p, "missing union buffers");
    for (int64_t j = 0; j < segs[i].len && !rc; j++) {
      int k = map[(uint8_t)ids[a->offset + segs[i].start + j]];
      int32_t o;
      memcpy(&o, offs + (a->offset + segs[i].start + j) * 4, 4);
      if (k < 0 || o < 0) {
        rc = efail(e, p, "undeclared union type id or negative offset");
        break;
      }
      if (o < l[k])
        l[k] = o;
      if (o > c[k])
        c[k] = o;
    }
    for (int k = 0; k < nk && !rc; k++) {
      if (c[k] < 0) {
        l[k] = 0;
        c[k] = 0;
      } else if (c[k] >= a->children[k]->length) {
        rc = efail(e, p, "union offset beyond its child");
      } else {
        c[k] = c[k] - l[k] + 1;
      }
    }
  }
  uint8_t *w;
  if (!rc)
    rc = add_buf(e, (uint64_t)total, &w);
  if (!rc && w) {
    int64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
      const struct ArrowArray *a = segs[i].a;
      if (segs[i].len)
        memcpy(w + pos,
               (const int8_t *)cbuf(a, TL__L_DUNION, 0) + a->offset +
                   segs[i].start,
               (size_t)segs[i].len);
      pos += segs[i].len;
    }
  }
  if (!rc)
    rc = add_buf(e, (uint64_t)total * 4, &w);
  if (!rc && w) {
    int64_t base[TL__MAX_UNION] = {0}, pos = 0;
    for (size_t i = 0; i < n; i++) {
      const struct ArrowArray *a = segs[i].a;
      const int64_t *l = lo + i * (size_t)nk, *c = cnt + i * (size_t)nk;
      if (segs[i].len) {
        const int8_t *ids = (const int8_t *)cbuf(a, TL__L_DUNION, 0) +
                            a->offset + segs[i].start;
        const uint8_t *offs = (const uint8_t *)cbuf(a, TL__L_DUNION, 1) +
                              (a->offset + segs[i].start) * 4;
        for (int64_t j = 0; j < segs[i].len; j++) {
          int k = map[(uint8_t)ids[j]];
          int32_t o;
          memcpy(&o, offs + j * 4, 4);
          ((int32_t *)w)[pos + j] = (int32_t)(o - l[k] + base[k]);
        }
      }
      for (int k = 0; k < nk; k++)
        base[k] += c[k];
      pos += segs[i].len;
    }
  }
  for (int k = 0; k < nk && !rc; k++) {
    for (size_t i = 0; i < n; i++)
      ks[i] = (seg){segs[i].a->children[k], lo[i * (size_t)nk + (size_t)k],
                    cnt[i * (size_t)nk + (size_t)k]};
    rc = col(e, &p->kids[k], ks, n);
  }
done:
  free(lo);
  free(cnt);
  free(ks);
  return rc;
}

static int col(enc *e, const tl__plan *p, const seg *segs, size_t n) {
  int layout = p->t.layout;
  int nominal = tl__layout_nbuffers(layout);
  int64_t total = 0, nulls = 0;
  for (size_t i = 0; i < n; i++) {
    const struct ArrowArray *a = segs[i].a;
    if (!a || (layout != TL__L_NULL && a->n_buffers < nominal) ||
        a->n_children != p->nkids || (p->nkids && !a->children) ||
        a->offset < 0 || segs[i].start < 0 || segs[i].len < 0 ||
        segs[i].start > a->length - segs[i].len)
      return efail(e, p, "array does not match its schema");
    total += segs[i].len;
  }
  if (layout == TL__L_NULL)
    return add_node(e, total, total);
  bool validity = layout != TL__L_SUNION && layout != TL__L_DUNION;
  if (validity)
    for (size_t i = 0; i < n; i++)
      nulls += seg_nulls(&segs[i]);
  int rc = add_node(e, total, nulls);
  uint8_t *w;
  if (!rc && validity) {
    rc = add_buf(e, nulls ? (uint64_t)bytes_of_bits(total) : 0, &w);
    if (!rc && w) {
      int64_t pos = 0;
      for (size_t i = 0; i < n; i++) {
        const struct ArrowArray *a = segs[i].a;
        if (has_nulls(a))
          tl__bits_copy(w, pos, a->buffers[0], a->offset + segs[i].start,
                        segs[i].len);
        else
          tl__bits_set(w, pos, segs[i].len);
        pos += segs[i].len;
      }
    }
  }
  if (rc)
    return rc;
  switch (layout) {
  case TL__L_FIXED:
  case TL__L_BOOL: {
    bool bits = layout == TL__L_BOOL;
    size_t wd = (size_t)p->t.width;
    uint64_t len = bits ? (uint64_t)bytes_of_bits(total) : (uint64_t)total * wd;
    if ((rc = add_buf(e, len, &w)) || !w)
      return rc;
    int64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
      const struct ArrowArray *a = segs[i].a;
      const uint8_t *src = cbuf(a, layout, 1);
      if (!segs[i].len || (!bits && !wd))
        continue;
      if (!src)
        return efail(e, p, "missing values buffer");
      int64_t at = a->offset + segs[i].start;
      if (bits)
        tl__bits_copy(w, pos, src, at, segs[i].len);
      else
        memcpy(w + (size_t)pos * wd, src + (size_t)at * wd,
               (size_t)segs[i].len * wd);
      pos += segs[i].len;
    }
    return 0;
  }
  case TL__L_VAR32:
  case TL__L_VAR64:
  case TL__L_LIST32:
  case TL__L_LIST64:
    return var_col(e, p, segs, n, total);
  case TL__L_FSL:
    return kid_col(e, &p->kids[0], 0, segs, n, p->t.size);
  case TL__L_STRUCT:
    for (int64_t k = 0; k < p->nkids && !rc; k++)
      rc = kid_col(e, &p->kids[k], k, segs, n, 1);
    return rc;
  case TL__L_SUNION: {
    if ((rc = add_buf(e, (uint64_t)total, &w)))
      return rc;
    int64_t pos = 0;
    bool declared[256] = {false};
    for (int k = 0; k < p->t.nids; k++)
      declared[(uint8_t)p->t.ids[k]] = true;
    for (size_t i = 0; i < n; i++) {
      const struct ArrowArray *a = segs[i].a;
      const int8_t *ids = cbuf(a, layout, 0);
      if (!segs[i].len)
        continue;
      if (!ids)
        return efail(e, p, "missing union type ids");
      ids += a->offset + segs[i].start;
      for (int64_t j = 0; j < segs[i].len; j++)
        if (!declared[(uint8_t)ids[j]])
          return efail(e, p, "undeclared union type id");
      if (w)
        memcpy(w + pos, ids, (size_t)segs[i].len);
      pos += segs[i].len;
    }
    for (int64_t k = 0; k < p->nkids && !rc; k++)
      rc = kid_col(e, &p->kids[k], k, segs, n, 1);
    return rc;
  }
  case TL__L_DUNION:
    return dunion_col(e, p, segs, n, total);
  }
  return efail(e, p, "unsupported layout");
}

/* Runs both passes of `walk`; *body gets the malloc'd body. */
typedef int (*walk_fn)(enc *e, const void *arg);

static int encode(enc *e, walk_fn walk, const void *arg, uint8_t **body) {
  e->pass = 1;
  int rc = walk(e, arg);
  if (rc)
    return rc;
  if (e->body > (uint64_t)SIZE_MAX / 2)
    return TL_ETOOBIG;
  *body = calloc(1, e->body ? (size_t)e->body : 1);
  if (!*body)
    return TL_ENOMEM;
  e->pass = 2;
  e->out = *body;
  rc = walk(e, arg);
  if (rc) {
    free(*body);
    *body = NULL;
  }
  return rc;
}

static void enc_free(enc *e) {
  free(e->nodes);
  free(e->bufs);
}

/* The Message of a RecordBatch, or of a DictionaryBatch when dict_id >= 0;
 * *hdr is malloc'd. */
static int batch_message(const enc *e, int64_t length, int64_t dict_id,
                         uint8_t **hdr, size_t *hlen) {
  tl__fbb b;
  tl__fbb_init(&b);
  uint32_t nodes = tl__fbb_vec(&b, e->nodes, e->nn, sizeof(fnode), 8);
  uint32_t bufs = tl__fbb_vec(&b, e->bufs, e->nb, sizeof(fbuf), 8);
  tl__fbb_start(&b);
  tl__fbb_scalar(&b, 0, &length, 8);
  tl__fbb_ref(&b, 1, nodes);
  tl__fbb_ref(&b, 2, bufs);
  uint32_t header = tl__fbb_end(&b);
  uint8_t type = MSG_BATCH;
  if (dict_id >= 0) {
    tl__fbb_start(&b);
    tl__fbb_scalar(&b, 0, &dict_id, 8);
    tl__fbb_ref(&b, 1, header);
    header = tl__fbb_end(&b);
    type = MSG_DICTIONARY;
  }
  int16_t version = METADATA_V5;
  int64_t body_len = (int64_t)e->body;
  tl__fbb_start(&b);
  tl__fbb_scalar(&b, 0, &version, 2);
  tl__fbb_scalar(&b, 1, &type, 1);
  tl__fbb_ref(&b, 2, header);
  tl__fbb_scalar(&b, 3, &body_len, 8);
  uint32_t msg = tl__fbb_end(&b);
  const uint8_t *p;
  size_t n;
  int rc = tl__fbb_finish(&b, msg, &p, &n);
  if (!rc) {
    if ((*hdr = malloc(n))) {
      memcpy(*hdr, p, n);
      *hlen = n;
    } else {
      rc = TL_ENOMEM;
    }
  }
  tl__fbb_free(&b);
  return rc;
}

/* ---- Schema message ------------------------------------------------------ */

/* custom_metadata from a C Data Interface metadata string (0: none). */
static uint32_t fb_metadata(tl__fbb *b, const char *m) {
  if (!m)
    return 0;
  int32_t n;
  memcpy(&n, m, 4);
  if (n <= 0)
    return 0;
  uint32_t *refs = malloc((size_t)n * 3 * sizeof *refs);
  if (!refs) {
    b->oom = true;
    return 0;
  }
  size_t at = 4;
  for (int32_t i = 0; i < 2 * n; i++) {
    int32_t len;
    memcpy(&len, m + at, 4);
    if (len < 0)
      len = 0;
    refs[i] = tl__fbb_string(b, m + at + 4, (size_t)len);
    at += 4 + (size_t)len;
  }
  for (int32_t i = 0; i < n; i++) {
    tl__fbb_start(b);
    tl__fbb_ref(b, 0, refs[2 * i]);
    tl__fbb_ref(b, 1, refs[2 * i + 1]);
    refs[2 * n + i] = tl__fbb_end(b);
  }
  uint32_t v = tl__fbb_vec_refs(b, refs + 2 * n, (size_t)n);
  free(refs);
  return v;
}

static void add_i16(tl__fbb *b, int f, int v) {
  int16_t x = (int16_t)v;
  tl__fbb_scalar(b, f, &x, 2);
}
static void add_i32(tl__fbb *b, int f, int32_t v) {
  tl__fbb_scalar(b, f, &v, 4);
}
static void add_bool(tl__fbb *b, int f, bool v) {
  uint8_t x = v;
  tl__fbb_scalar(b, f, &x, 1);
}

static uint32_t fb_int(tl__fbb *b, int width, bool is_signed) {
  tl__fbb_start(b);
  add_i32(b, 0, width * 8);
  add_bool(b, 1, is_signed);
  return tl__fbb_end(b);
}

/* The type table of `p` (its value type); *type_id gets its union tag. */
static uint32_t fb_type(tl__fbb *b, const tl__plan *p, uint8_t *type_id) {
  const tl__atype *t = &p->t;
  uint32_t tz = 0, ids = 0;
  if (t->id == TL__T_INT) {
    *type_id = FB_INT;
    return fb_int(b, t->width, t->is_signed);
  }
  if (t->id == TL__T_TIMESTAMP && t->tz[0])
    tz = tl__fbb_string(b, t->tz, strlen(t->tz));
  if (t->id == TL__T_UNION) {
    int32_t v[TL__MAX_UNION];
    for (int i = 0; i < t->nids; i++)
      v[i] = t->ids[i];
    ids = tl__fbb_vec(b, v, (size_t)t->nids, 4, 4);
  }
  tl__fbb_start(b);
  switch (t->id) {
  case TL__T_NULL:
    *type_id = FB_NULL;
    break;
  case TL__T_BOOL:
    *type_id = FB_BOOL;
    break;
  case TL__T_FLOAT:
    *type_id = FB_FLOAT;
    add_i16(b, 0, t->width == 2 ? 0 : t->width == 4 ? 1 : 2);
    break;
  case TL__T_BINARY:
    *type_id = FB_BINARY;
    break;
  case TL__T_LBINARY:
    *type_id = FB_LBINARY;
    break;
  case TL__T_UTF8:
    *type_id = FB_UTF8;
    break;
  case TL__T_LUTF8:
    *type_id = FB_LUTF8;
    break;
  case TL__T_FSB:
    *type_id = FB_FSB;
    add_i32(b, 0, t->size);
    break;
  case TL__T_DATE32:
  case TL__T_DATE64:
    *type_id = FB_DATE;
    add_i16(b, 0, t->unit);
    break;
  case TL__T_TIME:
    *type_id = FB_TIME;
    add_i16(b, 0, t->unit);
    add_i32(b, 1, t->width * 8);
    break;
  case TL__T_TIMESTAMP:
    *type_id = FB_TIMESTAMP;
    add_i16(b, 0, t->unit);
    if (tz)
      tl__fbb_ref(b, 1, tz);
    break;
  case TL__T_DURATION:
    *type_id = FB_DURATION;
    add_i16(b, 0, t->unit);
    break;
  case TL__T_INTERVAL:
    *type_id = FB_INTERVAL;
    add_i16(b, 0, t->unit);
    break;
  case TL__T_DECIMAL:
    *type_id = FB_DECIMAL;
    add_i32(b, 0, t->precision);
    add_i32(b, 1, t->scale);
    add_i32(b, 2, t->width * 8);
    break;
  case TL__T_LIST:
    *type_id = FB_LIST;
    break;
  case TL__T_LLIST:
    *type_id = FB_LLIST;
    break;
  case TL__T_FSLIST:
    *type_id = FB_FSL;
    add_i32(b, 0, t->size);
    break;
  case TL__T_STRUCT:
    *type_id = FB_STRUCT;
    break;
  case TL__T_MAP:
    *type_id = FB_MAP;
    add_bool(b, 0, (p->s->flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0);
    break;
  case TL__T_UNION:
    *type_id = FB_UNION;
    add_i16(b, 0, t->layout == TL__L_DUNION ? 1 : 0);
    tl__fbb_ref(b, 1, ids);
    break;
  }
  return tl__fbb_end(b);
}

static uint32_t fb_field(tl__fbb *b, const tl__plan *p) {
  const tl__plan *vp = p->dict ? p->dict : p; /* type and children */
  uint32_t kids = 0, *refs = NULL;
  if (vp->nkids) {
    if (!(refs = malloc((size_t)vp->nkids * sizeof *refs))) {
      b->oom = true;
      return 0;
    }
    for (int64_t i = 0; i < vp->nkids; i++)
      refs[i] = fb_field(b, &vp->kids[i]);
  }
  kids = tl__fbb_vec_refs(b, refs, (size_t)vp->nkids);
  free(refs);
  const char *name = p->s->name ? p->s->name : "";
  uint32_t nm = tl__fbb_string(b, name, strlen(name));
  uint8_t type_id = 0;
  uint32_t type = fb_type(b, vp, &type_id);
  uint32_t dict = 0;
  if (p->dict) {
    uint32_t idx = fb_int(b, p->t.width, p->t.is_signed);
    int64_t id = p->dict_slot;
    tl__fbb_start(b);
    tl__fbb_scalar(b, 0, &id, 8);
    tl__fbb_ref(b, 1, idx);
    add_bool(b, 2, (p->s->flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0);
    dict = tl__fbb_end(b);
  }
  uint32_t meta = fb_metadata(b, p->s->metadata);
  tl__fbb_start(b);
  tl__fbb_ref(b, 0, nm);
  add_bool(b, 1, (p->s->flags & ARROW_FLAG_NULLABLE) != 0);
  tl__fbb_scalar(b, 2, &type_id, 1);
  tl__fbb_ref(b, 3, type);
  if (dict)
    tl__fbb_ref(b, 4, dict);
  tl__fbb_ref(b, 5, kids);
  if (meta)
    tl__fbb_ref(b, 6, meta);
  return tl__fbb_end(b);
}

static int schema_message(const tl__plan *root, uint8_t **hdr, size_t *hlen) {
  tl__fbb b;
  tl__fbb_init(&b);
  uint32_t *refs =
      malloc((size_t)(root->nkids ? root->nkids : 1) * sizeof *refs);
  if (!refs)
    return TL_ENOMEM;
  for (int64_t i = 0; i < root->nkids; i++)
    refs[i] = fb_field(&b, &root->kids[i]);
  uint32_t fields = tl__fbb_vec_refs(&b, refs, (size_t)root->nkids);
  free(refs);
  uint32_t meta = fb_metadata(&b, root->s->metadata);
  tl__fbb_start(&b);
  add_i16(&b, 0, 0); /* little endian */
  tl__fbb_ref(&b, 1, fields);
  if (meta)
    tl__fbb_ref(&b, 2, meta);
  uint32_t schema = tl__fbb_end(&b);
  int16_t version = METADATA_V5;
  uint8_t type = MSG_SCHEMA;
  int64_t body_len = 0;
  tl__fbb_start(&b);
  tl__fbb_scalar(&b, 0, &version, 2);
  tl__fbb_scalar(&b, 1, &type, 1);
  tl__fbb_ref(&b, 2, schema);
  tl__fbb_scalar(&b, 3, &body_len, 8);
  uint32_t msg = tl__fbb_end(&b);
  const uint8_t *p;
  size_t n;
  int rc = tl__fbb_finish(&b, msg, &p, &n);
  if (!rc) {
    if ((*hdr = malloc(n))) {
      memcpy(*hdr, p, n);
      *hlen = n;
    } else {
      rc = TL_ENOMEM;
    }
  }
  tl__fbb_free(&b);
  return rc;
}

/* ---- The writer ---------------------------------------------------------- */

typedef struct wdict {
  const tl__plan *p; /* the dictionary-encoded field */
  int path[TL__MAX_DEPTH + 2];
  int depth;
  uint8_t *hdr, *body; /* the last one sent */
  size_t hlen, blen;
  bool sent;
} wdict;

struct tl_ipc_writer {
  const struct ArrowSchema *schema;
  tl__plan *plan;
  int ndicts;
  wdict *dicts;
};

static void find_dicts(tl_ipc_writer *w, const tl__plan *p, int *path,
                       int depth) {
  if (p->dict) {
    wdict *d = &w->dicts[p->dict_slot];
    d->p = p;
    d->depth = depth;
    memcpy(d->path, path, (size_t)depth * sizeof *path);
    return;
  }
  for (int64_t i = 0; i < p->nkids && depth <= TL__MAX_DEPTH; i++) {
    path[depth] = (int)i;
    find_dicts(w, &p->kids[i], path, depth + 1);
  }
}

int tl_ipc_writer_new(tl_ipc_writer **out, const struct ArrowSchema *schema,
                      char *err, size_t errcap) {
  tl_ipc_writer *w = calloc(1, sizeof *w);
  if (!w)
    return TL_ENOMEM;
  w->schema = schema;
  int rc = tl__plan_new(schema, &w->plan, &w->ndicts, err, errcap);
  if (!rc && w->ndicts &&
      !(w->dicts = calloc((size_t)w->ndicts, sizeof *w->dicts)))
    rc = TL_ENOMEM;
  if (rc) {
    tl_ipc_writer_free(w);
    return rc;
  }
  int path[TL__MAX_DEPTH + 2];
  find_dicts(w, w->plan, path, 0);
  *out = w;
  return 0;
}

void tl_ipc_writer_free(tl_ipc_writer *w) {
  if (!w)
    return;
  for (int i = 0; i < w->ndicts; i++) {
    free(w->dicts[i].hdr);
    free(w->dicts[i].body);
  }
  free(w->dicts);
  tl__plan_free(w->plan);
  free(w);
}

static int emit_owned(tl_ipc_emit_fn emit, void *ctx, const uint8_t *hdr,
                      size_t hlen, uint8_t *body, size_t blen) {
  bool take = false;
  int rc = emit(ctx, hdr, hlen, body, blen, &take);
  if (!take)
    free(body);
  return rc;
}

int tl_ipc_writer_schema(tl_ipc_writer *w, tl_ipc_emit_fn emit, void *ctx) {
  uint8_t *hdr;
  size_t hlen;
  int rc = schema_message(w->plan, &hdr, &hlen);
  if (rc)
    return rc;
  rc = emit_owned(emit, ctx, hdr, hlen, NULL, 0);
  free(hdr);
  return rc;
}

typedef struct batch_arg {
  const tl__plan *root;
  const seg *segs;
  size_t n;
} batch_arg;

static int walk_batch(enc *e, const void *arg) {
  const batch_arg *b = arg;
  int rc = 0;
  for (int64_t k = 0; k < b->root->nkids && !rc; k++)
    rc = kid_col(e, &b->root->kids[k], k, b->segs, b->n, 1);
  return rc;
}

static int walk_dict(enc *e, const void *arg) {
  const batch_arg *b = arg; /* root: the value type, segs: the dictionary */
  return col(e, b->root, b->segs, b->n);
}

static int emit_batch(tl_ipc_writer *w, const seg *segs, size_t n,
                      tl_ipc_emit_fn emit, void *ctx, char *err,
                      size_t errcap) {
  enc e = {0};
  e.err = err;
  e.errcap = errcap;
  batch_arg arg = {w->plan, segs, n};
  uint8_t *body = NULL, *hdr = NULL;
  size_t hlen = 0;
  int64_t rows = 0;
  for (size_t i = 0; i < n; i++)
    rows += segs[i].len;
  int rc = encode(&e, walk_batch, &arg, &body);
  if (!rc)
    rc = batch_message(&e, rows, -1, &hdr, &hlen);
  if (!rc) {
    rc = emit_owned(emit, ctx, hdr, hlen, body, (size_t)e.body);
    body = NULL;
  }
  free(body);
  free(hdr);
  enc_free(&e);
  return rc;
}

/* The dictionary of field `d` in the batch `root`, or NULL. */
static const struct ArrowArray *dict_of(const wdict *d,
                                        const struct ArrowArray *root) {
  const struct ArrowArray *a = root;
  for (int i = 0; i < d->depth; i++) {
    if (!a || d->path[i] >= a->n_children || !a->children)
      return NULL;
    a = a->children[d->path[i]];
  }
  return a ? a->dictionary : NULL;
}

typedef struct dmsg {
  uint8_t *hdr, *body;
  size_t hlen, blen;
  const struct ArrowArray *src;
} dmsg;

static void dmsg_free(dmsg *m) {
  free(m->hdr);
  free(m->body);
  memset(m, 0, sizeof *m);
}

/* The DictionaryBatch message of `dict` (NULL: an empty dictionary). */
static int dict_message(const wdict *d, const struct ArrowArray *dict, dmsg *m,
                        char *err, size_t errcap) {
  memset(m, 0, sizeof *m);
  m->src = dict;
  if (dict && !dict->release) {
    if (err && errcap)
      snprintf(err, errcap, "column \"%s\": released dictionary",
               d->p->s->name ? d->p->s->name : "?");
    return TL_EINVAL;
  }
  enc e = {0};
  e.err = err;
  e.errcap = errcap;
  seg s = {dict, 0, dict ? dict->length : 0};
  batch_arg arg = {d->p->dict, &s, dict ? 1 : 0};
  int rc = encode(&e, walk_dict, &arg, &m->body);
  if (!rc)
    rc = batch_message(&e, s.len, d->p->dict_slot, &m->hdr, &m->hlen);
  m->blen = (size_t)e.body;
  enc_free(&e);
  if (rc)
    dmsg_free(m);
  return rc;
}

static bool dmsg_same(const dmsg *m, const uint8_t *hdr, size_t hlen,
                      const uint8_t *body, size_t blen) {
  return m->hlen == hlen && m->blen == blen && !memcmp(m->hdr, hdr, hlen) &&
         (!blen || !memcmp(m->body, body, blen));
}

/* Emits the candidate dictionaries that differ from the last ones sent and
 * keeps them as the last ones sent. */
static int send_dicts(tl_ipc_writer *w, dmsg *cand, tl_ipc_emit_fn emit,
                      void *ctx) {
  for (int i = 0; i < w->ndicts; i++) {
    wdict *d = &w->dicts[i];
    dmsg *m = &cand[i];
    if (!m->hdr) /* not a candidate */
      continue;
    if (d->sent && dmsg_same(m, d->hdr, d->hlen, d->body, d->blen))
      continue;
    uint8_t *copy = malloc(m->blen ? m->blen : 1);
    if (!copy)
      return TL_ENOMEM;
    if (m->blen)
      memcpy(copy, m->body, m->blen);
    int rc = emit_owned(emit, ctx, m->hdr, m->hlen, copy, m->blen);
    if (rc)
      return rc;
    free(d->hdr);
    free(d->body);
    d->hdr = m->hdr;
    d->hlen = m->hlen;
    d->body = m->body;
    d->blen = m->blen;
    d->sent = true;
    m->hdr = m->body = NULL;
  }
  return 0;
}

int tl_ipc_writer_batch(tl_ipc_writer *w, const tl_ipc_slice *slices, size_t n,
                        tl_ipc_emit_fn emit, void *ctx, char *err,
                        size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  seg *segs = malloc((n ? n : 1) * sizeof *segs);
  dmsg *cand = calloc((size_t)(w->ndicts ? w->ndicts : 1), sizeof *cand);
  int rc = 0;
  size_t m = 0;
  if (!segs || !cand) {
    rc = TL_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ArrowArray *a = slices[i].array;
    if (!a || !a->release || a->n_children != w->plan->nkids ||
        slices[i].offset < 0 || slices[i].length < 0 ||
        slices[i].offset > a->length - slices[i].length) {
      if (err && errcap)
        snprintf(err, errcap, "slice %zu does not fit its array or schema", i);
      rc = TL_EINVAL;
      goto done;
    }
    if (slices[i].length)
      segs[m++] = (seg){a, slices[i].offset, slices[i].length};
  }
  if (!w->ndicts) {
    rc = emit_batch(w, segs, m, emit, ctx, err, errcap);
    goto done;
  }
  if (!m) { /* still make sure every dictionary was sent once */
    for (int d = 0; d < w->ndicts && !rc; d++)
      if (!w->dicts[d].sent)
        rc = dict_message(&w->dicts[d], NULL, &cand[d], err, errcap);
    if (!rc)
      rc = send_dicts(w, cand, emit, ctx);
    if (!rc)
      rc = emit_batch(w, segs, 0, emit, ctx, err, errcap);
    goto done;
  }
  /* Runs of slices sharing their dictionaries, each preceded by the
   * dictionaries that changed. */
  for (size_t i = 0; i < m && !rc;) {
    for (int d = 0; d < w->ndicts && !rc; d++) {
      const struct ArrowArray *da = dict_of(&w->dicts[d], segs[i].a);
      if (!da) {
        if (err && errcap)
          snprintf(err, errcap, "column \"%s\": no dictionary",
                   w->dicts[d].p->s->name ? w->dicts[d].p->s->name : "?");
        rc = TL_EINVAL;
      } else {
        rc = dict_message(&w->dicts[d], da, &cand[d], err, errcap);
      }
    }
    size_t j = i + 1;
    for (; j < m && !rc; j++) {
      bool same = true;
      for (int d = 0; d < w->ndicts && same && !rc; d++) {
        const struct ArrowArray *da = dict_of(&w->dicts[d], segs[j].a);
        if (da == cand[d].src)
          continue;
        dmsg other;
        if (!da) {
          same = false;
          break;
        }
        rc = dict_message(&w->dicts[d], da, &other, err, errcap);
        if (!rc)
          same = dmsg_same(&cand[d], other.hdr, other.hlen, other.body,
                           other.blen);
        dmsg_free(&other);
      }
      if (!same)
        break;
    }
    if (!rc)
      rc = send_dicts(w, cand, emit, ctx);
    if (!rc)
      rc = emit_batch(w, segs + i, j - i, emit, ctx, err, errcap);
    for (int d = 0; d < w->ndicts; d++)
      dmsg_free(&cand[d]);
    i = j;
  }
done:
  if (cand)
    for (int d = 0; d < w->ndicts; d++)
      dmsg_free(&cand[d]);
  free(cand);
  free(segs);
  if (rc == TL_ENOMEM && err && errcap && !err[0])
    snprintf(err, errcap, "out of memory");
  return rc;
}

uint64_t tl_ipc_body_size(const struct ArrowSchema *schema,
                          const struct ArrowArray *array, int64_t offset,
                          int64_t length) {
  tl__plan *plan;
  if (tl__plan_new(schema, &plan, NULL, NULL, 0))
    return UINT64_MAX;
  enc e = {0};
  e.pass = 1;
  seg s = {array, offset, length};
  batch_arg arg = {plan, &s, 1};
  uint64_t n = UINT64_MAX;
  if (array && array->release && offset >= 0 && length >= 0 &&
      offset <= array->length - length && array->n_children == plan->nkids &&
      !walk_batch(&e, &arg))
    n = e.body;
  enc_free(&e);
  tl__plan_free(plan);
  return n;
}

/* ---- Encapsulated streams in memory -------------------------------------- */

typedef struct bytes_ctx {
  tl_bytes *out;
} bytes_ctx;

static int append_message(void *ctx, const uint8_t *hdr, size_t hlen,
                          uint8_t *body, size_t blen, bool *take) {
  tl_bytes *out = ((bytes_ctx *)ctx)->out;
  (void)take;
  size_t padded = (hlen + 7) & ~(size_t)7;
  if (padded > INT32_MAX)
    return TL_ETOOBIG;
  uint8_t pre[8];
  tl_put_u32(pre, 0xFFFFFFFFu);
  tl_put_u32(pre + 4, (uint32_t)padded);
  static const uint8_t zeros[8];
  int rc = tl_bytes_append(out, pre, 8);
  if (!rc)
    rc = tl_bytes_append(out, hdr, hlen);
  if (!rc)
    rc = tl_bytes_append(out, zeros, padded - hlen);
  if (!rc && blen)
    rc = tl_bytes_append(out, body, blen);
  return rc;
}

static int stream_bytes(const struct ArrowSchema *schema,
                        const struct ArrowArray *array, tl_bytes *out,
                        char *err, size_t errcap) {
  size_t len0 = out->len;
  tl_ipc_writer *w;
  int rc = tl_ipc_writer_new(&w, schema, err, errcap);
  if (rc)
    return rc;
  bytes_ctx c = {out};
  rc = tl_ipc_writer_schema(w, append_message, &c);
  if (!rc && array) {
    tl_ipc_slice s = {array, 0, array->length};
    rc = tl_ipc_writer_batch(w, &s, 1, append_message, &c, err, errcap);
  }
  if (!rc) {
    uint8_t eos[8];
    tl_put_u32(eos, 0xFFFFFFFFu);
    tl_put_u32(eos + 4, 0);
    rc = tl_bytes_append(out, eos, 8);
  }
  if (rc) {
    out->len = len0;
    if (err && errcap && !err[0])
      snprintf(err, errcap, "%s", tl_strerror(rc));
  }
  tl_ipc_writer_free(w);
  return rc;
}

int tl_ipc_schema_bytes(const struct ArrowSchema *schema, tl_bytes *out,
                        char *err, size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  return stream_bytes(schema, NULL, out, err, errcap);
}

int tl_ipc_stream_bytes(const struct ArrowSchema *schema,
                        const struct ArrowArray *array, tl_bytes *out,
                        char *err, size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  if (!array)
    return TL_EINVAL;
  return stream_bytes(schema, array, out, err, errcap);
}
